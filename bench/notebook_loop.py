"""The seed notebook's sampling loop, verbatim in substance (psutil, csv.DictWriter reopening the
file per sample, pandas imported), at a configurable interval: the CPU baseline."""

import csv
import os
import sys
import time
from datetime import datetime

import pandas as pd  # noqa: F401  (the notebook imports it in the same process)
import psutil
import pyarrow as pa  # noqa: F401

interval = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
CSV_FILENAME = os.path.join(sys.argv[1], "daily_dump.csv")
os.makedirs(sys.argv[1], exist_ok=True)
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
        writer.writerow(dic)
