"""36-hour rule averages from disk: trayapp's range read against the notebook's whole-dataset read,
with 2 days and with 365 days of 2-second history. Target: <= 20 ms, flat in history length."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.common import make_history, median_time, save


def evaluate_from_disk(store, rules, now=None):
    """Each rule's result from what is on disk now: no state, no hysteresis."""
    from datetime import datetime, timezone

    from trayapp.engine import window_request
    from trayapp.rules import evaluate_arrays

    now = now or datetime.now(timezone.utc)
    request = window_request(rules, now)
    if request is None:
        return []
    stamps, columns = store.arrays(*request)
    return [evaluate_arrays(rule, stamps, columns[rule.metric], now.timestamp()) for rule in rules]


def trayapp_status(data_dir: Path):
    from trayapp.rules import DEFAULT_RULES
    from trayapp.storage import Store

    return lambda: evaluate_from_disk(Store(data_dir), DEFAULT_RULES)


def notebook_status(data_dir: Path):
    """The seed notebook's way: read the whole dataset and today's CSV, hourly means, last 36 h."""
    import pandas as pd
    import pyarrow.parquet as pq

    def run():
        full_df = pq.ParquetDataset(str(data_dir / "Monitoring")).read().to_pandas()
        full_df["timestamp"] = pd.to_datetime(full_df.timestamp)
        full_df = full_df.set_index("timestamp")[["cpu_percent", "memory_percent", "disk_percent"]].resample("h").mean()
        cur = pd.read_csv(data_dir / "csv_dump" / "daily_dump.csv")
        cur["timestamp"] = pd.to_datetime(cur.timestamp, utc=True)
        cur = cur.set_index("timestamp").resample("h").mean()
        final = pd.concat([full_df, cur])
        return final.tail(36).mean()

    return run


def main() -> None:
    out = {}
    for days in (2, 365):
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            rows = make_history(data_dir, days)
            ours, ours_all = median_time(trayapp_status(data_dir))
            theirs, theirs_all = median_time(notebook_status(data_dir), repeat=3 if days > 30 else None)
            out[f"{days}_days"] = {
                "rows": rows,
                "trayapp_ms": round(ours * 1000, 2),
                "notebook_ms": round(theirs * 1000, 1),
                "speedup": round(theirs / ours, 1),
                "trayapp_runs_ms": [round(t * 1000, 2) for t in ours_all],
            }
            print(f"{days} days ({rows} rows): trayapp {ours*1000:.1f} ms, notebook {theirs*1000:.0f} ms", file=sys.stderr)
    out["flatness_365_vs_2"] = round(out["365_days"]["trayapp_ms"] / out["2_days"]["trayapp_ms"], 2)
    save("averages", out)


if __name__ == "__main__":
    main()
