"""A zoom in the history window on 1 s data, as the tray app reads it (the recorder's rows file for
today, the minute tier's copies before it, never Arrow) against the raw read with Arrow that the
window did before, in the same run: medians of BENCH_RUNS reads each. Target: <= 300 ms.

    python -m bench.bench_zoom          # writes bench/results/zoom.json

Each read runs in the same process, one after the other, on the same folder: a day of 1 s samples
recorded today by a real writer (its CSV and rows file), and the day before in day files and tiers.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from bench.common import runs, save
from trayapp.storage import child_job as dataset_jobs, ranges as history, tier_builder as rollups
from trayapp.storage import local_zone
from trayapp.model import Sample
from trayapp.storage import Store
from trayapp.synthetic import write_history
from trayapp.storage import window_series

ZOOMS = (("10 min", 600), ("1 h", 3600), ("6 h", 6 * 3600), ("20 h", 20 * 3600))


def recorder(data_dir: Path) -> tuple[Store, datetime]:
    """Yesterday in day files and tiers; today from 00:00 to 23:00 at 1 s through a real writer."""
    zone = local_zone()
    today = datetime.now(zone).date() - timedelta(days=1)  # a whole past day as "today": the writer is opened on it
    midnight = datetime(today.year, today.month, today.day, tzinfo=zone).astimezone(timezone.utc)
    rng = np.random.default_rng(7)
    wobble = lambda t: np.clip(50 + 30 * np.sin(t / 3000) + rng.normal(0, 5, len(t)), 0, 100)  # noqa: E731
    write_history(data_dir, midnight - timedelta(days=1), midnight - timedelta(seconds=1), 1,
                  {"cpu_percent": wobble, "memory_percent": wobble, "disk_percent": 60.0}, today_in_csv=False)
    rollups.ensure(data_dir)
    store = Store(data_dir, jobs=dataset_jobs.run_job, minutes=True)
    store.open_writer(midnight)
    values = wobble(np.arange(23 * 3600, dtype=float))
    for k in range(23 * 3600):
        store.append(Sample(midnight + timedelta(seconds=k), float(values[k]), float(values[-k - 1]), 60.0, load_percent=float(k % 100)))
    return store, midnight + timedelta(hours=23)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        store, end = recorder(data_dir)
        rows = {}
        try:
            for label, span in ZOOMS:
                start = end - timedelta(seconds=span)
                for name, read in (
                    ("app", lambda: window_series.prepare_history(data_dir, 36 * 3600, now=end, start=start, minutes=store.minutes, rows=store.rows.view())),
                    ("arrow", lambda: window_series.prepare_history(data_dir, 36 * 3600, now=end, start=start)),
                ):
                    read()  # warm: the page cache, and for Arrow its import
                    times = []
                    for _ in range(runs()):
                        t0 = time.perf_counter()
                        read()
                        times.append((time.perf_counter() - t0) * 1000)
                    rows.setdefault(label, {})[name] = round(statistics.median(times), 1)
                rows[label]["ratio"] = round(rows[label]["app"] / rows[label]["arrow"], 2)
                print(f"{label:>7}: app {rows[label]['app']:7.1f} ms   Arrow raw read {rows[label]['arrow']:7.1f} ms   ratio {rows[label]['ratio']}")
        finally:
            store.close()
    save("zoom", {"median_ms": rows, "runs": runs(), "target_ms": 300,
                  "what": "a zoom on 23 h of 1 s samples today plus a day before: the tray app's read (rows file, minute copies) vs Arrow's raw read"})


if __name__ == "__main__":
    main()
