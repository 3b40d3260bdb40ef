"""Rollover of a full day's CSV (2 s and 1 s sampling) into its Parquet day file, beside the
notebook's daily_csv_to_parquet on the same CSV. Also: rule evaluation per sample (target <= 100 µs)."""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import day_table, median_time, save


def write_day_csv(path: Path, step: float) -> datetime:
    from trayapp.storage import csv_field
    from trayapp.storage import local_zone

    zone = local_zone()
    day = (datetime.now(timezone.utc).astimezone(zone) - timedelta(days=1)).date()
    table = day_table(day, step, zone)
    stamps = table.column("timestamp").to_pylist()
    cols = [table.column(n).to_pylist() for n in ("cpu_percent", "memory_percent", "disk_percent")]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write("timestamp,cpu_percent,memory_percent,disk_percent\n")
        for i, ts in enumerate(stamps):
            f.write(",".join([ts.astimezone(zone).isoformat(timespec="microseconds"), *(csv_field(c[i]) for c in cols)]) + "\n")
    return datetime.now(timezone.utc)


def trayapp_rollover(src: Path, work: Path):
    from trayapp.storage import Store
    from trayapp.storage import local_zone

    def run():
        shutil.rmtree(work, ignore_errors=True)
        (work / "csv_dump").mkdir(parents=True)
        shutil.copy(src, work / "csv_dump" / "daily_dump.csv")
        store = Store(work)
        store._tz = local_zone()
        store._open_csv()
        t0 = time.perf_counter()
        moved = store.rollover(datetime.now(timezone.utc).astimezone(store._tz).date())
        took = time.perf_counter() - t0
        store.close()
        assert moved > 0
        return took

    return run


def notebook_rollover(src: Path, work: Path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    def run():
        t0 = time.perf_counter()
        df = pd.read_csv(src)
        pq.write_table(pa.Table.from_pandas(df), work / "nb.parquet", compression="snappy")
        return time.perf_counter() - t0

    return run


def rule_eval_us() -> float:
    from trayapp.rules import AlertTracker, Rule, RuleState

    state, tracker = RuleState(Rule("cpu_percent")), AlertTracker(hysteresis=2.0)
    now = datetime.now(timezone.utc)
    t = now.timestamp() - 36 * 3600
    for i in range(36 * 3600):  # a full 36 h window of 1 s samples
        state.window.add(t + i, 50.0)
    t += 36 * 3600
    n = 100_000
    t0 = time.perf_counter()
    for i in range(n):
        state.window.add(t + i, 50.0 + (i % 7))
        tracker.update("k", state.result(tracker.alert.get("k"), 2.0), now)
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for step in (2.0, 1.0):
            src = tmp_path / f"day-{step}.csv"
            write_day_csv(src, step)
            rows = sum(1 for _ in open(src)) - 1
            ours = sorted(trayapp_rollover(src, tmp_path / "work")() for _ in range(5))[2]
            theirs, _ = median_time(notebook_rollover(src, tmp_path))
            out[f"every_{step:g}s"] = {"rows": rows, "csv_mb": round(src.stat().st_size / 1e6, 1),
                                       "trayapp_ms": round(ours * 1000, 1), "notebook_ms": round(theirs * 1000, 1)}
    out["rule_evaluation_us_per_sample"] = round(sorted(rule_eval_us() for _ in range(3))[1], 2)
    save("rollover", out)


if __name__ == "__main__":
    main()
