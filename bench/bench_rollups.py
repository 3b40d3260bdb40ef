"""Rollup tiers: rollover of a day of 1 s samples with tiers vs without (same run), building the
tiers of a month from scratch, and reading 36 h / 7 d / 30 d from the minute tier vs the raw rows."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.bench_rollover import trayapp_rollover, write_day_csv
from bench.common import make_history, save


def rollover_ms(src: Path, work: Path, tiers: bool, repeat: int = 5) -> float:
    from trayapp.storage import writer as store_module

    original = store_module._rollup_day
    if not tiers:
        store_module._rollup_day = lambda *args, **kwargs: None
    try:
        run = trayapp_rollover(src, work)
        run()  # warm-up
        took = [run() for _ in range(repeat)]
    finally:
        store_module._rollup_day = original
    if tiers:  # the tiers really were written
        assert list((work / "Rollups" / "minute").rglob("*.parquet")) and list((work / "Rollups" / "hour").rglob("*.parquet"))
    return statistics.median(took) * 1000


def read_ms(data_dir: Path, span_h: float, repeat: int = 5) -> dict:
    from tests.tier_reads import read_tier_files
    from trayapp.storage import Store

    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=span_h)
    metrics = ["cpu_percent", "memory_percent", "disk_percent"]

    def tier() -> int:
        t, _ = read_tier_files(data_dir, "minute", start, end, metrics)
        return len(t)

    def raw() -> int:
        return Store(data_dir).read(start, end, columns=metrics).num_rows

    out = {}
    for name, fn in (("minute_tier", tier), ("raw_rows", raw)):
        rows = fn()
        took = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            took.append(time.perf_counter() - t0)
        out[f"{name}_ms"] = round(statistics.median(took) * 1000, 1)
        out[f"{name}_rows"] = rows
    return out


def main() -> None:
    from trayapp.storage import tier_builder as rollups

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        src = tmp_path / "day-1s.csv"
        write_day_csv(src, 1.0)
        without = rollover_ms(src, tmp_path / "work", tiers=False)
        with_tiers = rollover_ms(src, tmp_path / "work", tiers=True)
        out["rollover_day_1s"] = {"rows": sum(1 for _ in open(src)) - 1, "without_tiers_ms": round(without, 1),
                                  "with_tiers_ms": round(with_tiers, 1), "ratio": round(with_tiers / without, 2)}
        shutil.rmtree(tmp_path / "work", ignore_errors=True)
        data = tmp_path / "history"
        rows = make_history(data, 31, step=1.0)
        t0 = time.perf_counter()
        built = rollups.ensure(data)
        out["ensure_from_scratch"] = {"days": built, "rows": rows, "s": round(time.perf_counter() - t0, 2)}
        t0 = time.perf_counter()
        assert rollups.ensure(data) == 0
        out["ensure_nothing_to_do_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        for label, hours in (("36h", 36), ("7d", 7 * 24), ("30d", 30 * 24)):
            out[f"read_{label}"] = read_ms(data, hours)
    save("rollups", out)


if __name__ == "__main__":
    main()
