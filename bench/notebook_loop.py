"""The seed notebook's sampling loop (cell 28 of seed/000_69e08577dc3d65ed.txt) as it runs there:
its imports, psutil's cpu/memory/disk, csv.DictWriter reopening the file per sample, the 00:00 check.

The CPU baseline of bench_cpu. Arguments: a folder for its CSV and Parquet files, the interval in
seconds (the notebook's is 2). Its folders are made portable; a run across local midnight does the
notebook's rollover every second of that minute, as the notebook would, and is no fair comparison."""

import csv
import os
import os.path
import sys
import time
from datetime import datetime

import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

BASE_DIR = sys.argv[1]
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
PARQUET_DATASET = "Monitoring"
CSV_FILENAME = os.path.join(BASE_DIR, "daily_dump.csv")
os.makedirs(os.path.join(BASE_DIR, PARQUET_DATASET), exist_ok=True)


def daily_csv_to_parquet(timestamp, base_dir, parquet_dataset):
    month_path = os.path.join(base_dir, parquet_dataset, f"Year={timestamp.year}", f"Month={timestamp.month}")
    os.makedirs(month_path, exist_ok=True)
    table = pa.Table.from_pandas(pd.read_csv(CSV_FILENAME))
    pq.write_table(table, os.path.join(month_path, f"{timestamp.day}.parquet"), compression="snappy")


while True:
    time.sleep(interval)
    timestamp = datetime.now()
    time_str = timestamp.strftime("%Y-%m-%d %H:%M")
    cpu_percent = psutil.cpu_percent(interval=0)
    memory_percent = psutil.virtual_memory()[2]
    disk_percent = psutil.disk_usage("/")[3]
    dic = {"timestamp": timestamp, "cpu_percent": cpu_percent, "memory_percent": memory_percent, "disk_percent": disk_percent}
    file_exists = os.path.isfile(CSV_FILENAME)
    with open(CSV_FILENAME, "a") as csvfile:
        headers = ["timestamp", "cpu_percent", "memory_percent", "disk_percent"]
        writer = csv.DictWriter(csvfile, delimiter=",", lineterminator="\n", fieldnames=headers)
        if not file_exists:
            writer.writeheader()
        writer.writerow({"timestamp": dic["timestamp"], "cpu_percent": dic["cpu_percent"],
                         "memory_percent": dic["memory_percent"], "disk_percent": dic["disk_percent"]})
    if time_str[-5:] == "00:00":
        daily_csv_to_parquet(timestamp, BASE_DIR, PARQUET_DATASET)
        os.remove(CSV_FILENAME)
