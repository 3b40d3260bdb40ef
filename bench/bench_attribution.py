"""CPU of `trayapp run --headless` at 1 s sampling with process attribution on against off, both
running side by side in each run, on a machine filled up to ~300 processes; and the storage the
process records take per day (the day CSV, and the Parquet file a finished day becomes).

Target: on <= x1.25 off (medians of the runs), storage <= 2 MB a day. BENCH_SECONDS sets the window
(60), BENCH_RUNS the runs (3), BENCH_PROCESSES the processes to reach with idle `sleep`s (300)."""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_cpu import Contender, side_by_side
from bench.common import save

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
PROCESSES = int(os.environ.get("BENCH_PROCESSES", "300"))


def recorder(name: str, tmp: Path, attribution: bool) -> Contender:
    folder = tmp / name
    folder.mkdir()
    config = folder / "config.toml"
    config.write_text(f"[sampling]\ninterval_seconds = 1.0\n[processes]\nattribution = {'true' if attribution else 'false'}\n")
    env = {**os.environ, "TRAYAPP_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "trayapp.cli", "--data-dir", str(folder / "data"), "run", "--headless", "--interval", "1"]
    return Contender(name, argv, env, folder / "data" / "csv_dump" / "daily_dump.csv", cwd=ROOT)


def fill_up(target: int) -> list[subprocess.Popen]:
    """Idle processes until the machine has ``target`` (a desktop's count), for a fair scan."""
    have = sum(1 for name in os.listdir("/proc") if name.isdigit())
    return [subprocess.Popen(["sleep", "900"]) for _ in range(max(0, target - have))]


def storage_per_day(data_dir: Path) -> dict[str, float]:
    """The records a day takes: the minutes the "on" recorder wrote, scaled to a day (as the
    day CSV, and as Parquet from those minutes repeated over a day), and the most a day can take:
    every minute at the cap (``TOP_CPU`` + ``TOP_MEMORY`` groups), with this machine's real
    process names and command lines and random figures (nothing for zstd to fold)."""
    import random

    import pyarrow.parquet as pq

    from trayapp import attribution, attribution_days

    def parquet_bytes(records: list) -> int:
        sink = io.BytesIO()
        pq.write_table(attribution_days._table(records), sink, compression="zstd")
        return len(sink.getvalue())

    paths = sorted((data_dir / attribution.FOLDER / attribution.CSV_FOLDER).glob("*.csv"))
    records = [r for path in paths for r in attribution.read_csv(path)]
    out: dict[str, float] = {}
    if records:
        csv_bytes = sum(path.stat().st_size for path in paths)
        day = [attribution.MinuteRecord(records[0].minute + i, *list(vars_of(records[i % len(records)]))[1:]) for i in range(1440)]
        out.update({"minutes": len(records), "groups_per_minute_median": statistics.median(len(r.keys) for r in records),
                    "csv_mb_per_day": round(csv_bytes * 1440 / len(records) / 1e6, 3),
                    "parquet_mb_per_day": round(parquet_bytes(day) / 1e6, 3)})
    scanner = attribution.Scanner(True)
    scanner.scan()
    groups = list(scanner.scan()[1])
    cap = attribution.TOP_CPU + attribution.TOP_MEMORY
    groups += [(f"worker{i}", f"/usr/lib/app/worker{i} --queue=jobs-{i} --threads 4") for i in range(max(0, cap - len(groups)))]
    rng = random.Random(1)
    worst = []
    for minute in range(1440):
        chosen = rng.sample(groups, min(len(groups), attribution.TOP_CPU + attribution.TOP_MEMORY))
        cpu = {k: 1.0 + rng.random() for k in chosen[:attribution.TOP_CPU]}
        cpu.update({(f"tail{i}", ""): 0.5 for i in range(100)})  # a long tail: 95 % is never reached, the cap decides
        rss = {k: (1e9 if i >= attribution.TOP_CPU else 1e6) * (1 + rng.random()) for i, k in enumerate(chosen)}
        worst.append(attribution.make_record(minute, cpu, rss, {k: [rng.randrange(1, 1 << 22)] for k in chosen},
                                             rng.random() * 60, rng.random() * 1e10))
    out["worst_groups_per_minute"] = len(worst[0].keys)
    out["worst_parquet_mb_per_day"] = round(parquet_bytes(worst) / 1e6, 3)
    return out


def vars_of(record) -> tuple:
    return tuple(getattr(record, name) for name in record.__slots__)


def main() -> None:
    runs: list[dict[str, float]] = []
    storage: dict[str, float] = {}
    sleepers = fill_up(PROCESSES)
    try:
        processes = sum(1 for name in os.listdir("/proc") if name.isdigit())
        for i in range(RUNS):
            with tempfile.TemporaryDirectory() as tmp_name:
                tmp = Path(tmp_name)
                contenders = [recorder("attribution on", tmp, True), recorder("attribution off", tmp, False)]
                result = side_by_side(contenders, SECONDS)
                storage = storage_per_day(tmp / "attribution on" / "data") or storage
            runs.append(result)
            print(f"run {i + 1}/{RUNS}: on {result['attribution on']:.3f} %  off {result['attribution off']:.3f} %  "
                  f"×{result['attribution on'] / result['attribution off']:.2f}", file=sys.stderr)
    finally:
        for proc in sleepers:
            proc.kill()
            proc.wait()
    on = statistics.median(r["attribution on"] for r in runs)
    off = statistics.median(r["attribution off"] for r in runs)
    save("attribution", {
        "interval_s": 1, "window_s": SECONDS, "runs": RUNS, "processes": processes,
        "on_percent_of_core_median": round(on, 3), "off_percent_of_core_median": round(off, 3),
        "on_percent_of_core_runs": [round(r["attribution on"], 3) for r in runs],
        "off_percent_of_core_runs": [round(r["attribution off"], 3) for r in runs],
        "ratio_of_medians": round(on / off, 2), "storage": storage,
    })


if __name__ == "__main__":
    main()
