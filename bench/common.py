"""Shared by the benchmarks: history generation in the real layout, timing, and result files."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def runs() -> int:
    return int(os.environ.get("BENCH_RUNS", "5"))


def median_time(fn: Callable[[], object], repeat: int | None = None, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat or runs()):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def day_table(day: date, step: float, zone, cpu: float = 50.0, with_gpu: bool = False):
    """One local day of samples every ``step`` seconds, as a rollover would have written it."""
    import numpy as np
    import pyarrow as pa

    start = datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone).timestamp()
    t = np.arange(start, end, step)
    rng = np.random.default_rng(int(start))
    cols = {
        "timestamp": pa.array((t * 1e6).astype("int64"), type=pa.timestamp("us", tz="UTC")),
        "cpu_percent": pa.array(np.clip(rng.normal(cpu, 10, len(t)), 0, 100).round(1)),
        "memory_percent": pa.array(np.clip(rng.normal(60, 5, len(t)), 0, 100).round(1)),
        "disk_percent": pa.array(np.full(len(t), 40.0)),
    }
    if with_gpu:
        cols["gpu0_util_percent"] = pa.array(np.clip(rng.normal(70, 20, len(t)), 0, 100).round(0))
        cols["gpu0_memory_percent"] = pa.array(np.full(len(t), 30.0))
        cols["gpu0_temperature_c"] = pa.array(np.full(len(t), 55.0))
    return pa.table(cols)


def make_history(data_dir: Path, days: int, step: float = 2.0, today_hours: float | None = None) -> int:
    """``days`` full days of Parquet day files before today, and today so far in the CSV."""
    import pyarrow.parquet as pq

    from trayapp.storage import Store
    from trayapp.storage import csv_field
    from trayapp.storage import local_zone

    zone = local_zone()
    store = Store(data_dir)
    today = datetime.now(timezone.utc).astimezone(zone).date()
    rows = 0
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        table = day_table(day, step, zone)
        path = store.day_path(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")
        rows += table.num_rows
    now = datetime.now(timezone.utc)
    table = day_table(today, step, zone)
    stamps = table.column("timestamp").to_pylist()
    cols = [table.column(n).to_pylist() for n in ("cpu_percent", "memory_percent", "disk_percent")]
    store.csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(store.csv_path, "w") as f:
        f.write("timestamp,cpu_percent,memory_percent,disk_percent\n")
        for i, ts in enumerate(stamps):
            if ts > now:
                break
            f.write(",".join([ts.astimezone(zone).isoformat(timespec="microseconds"), *(csv_field(c[i]) for c in cols)]) + "\n")
            rows += 1
    return rows


def save(name: str, result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    result = {"benchmark": name, "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), **result}
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
