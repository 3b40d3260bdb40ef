"""The tray app's CPU with four panel items beside the level icon, against the same app with none, both
running at once in one real tray (Xvfb + trayer), 1 s sampling, window closed. Medians of BENCH_RUNS runs
of BENCH_SECONDS each; the target is with items within 10 % of without."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_cpu import cpu_between, thread_cpu_ns  # noqa: E402
from bench.common import save  # noqa: E402
from tests.xsession import XSession  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
WARMUP = 20.0  # start-up and the pyqtgraph preload (at 15 s) are not the steady state
ITEMS = "cpu_percent:number, memory_percent:number, cpu_core_max_percent:bars, net_recv_bytes_per_s:line"


def one_run(x: XSession, tmp: Path) -> tuple[float, float]:
    procs = []
    for name, items in (("none", ""), ("four", ITEMS)):
        config = tmp / f"{name}.toml"
        config.write_text(f'[sampling]\ninterval_seconds = 1.0\n[alerts]\ndesktop_notifications = false\n[panel]\nitems = "{items}"\n')
        env = {**x.env, "TRAYAPP_CONFIG": str(config), "TRAYAPP_NO_KEYRING": "1"}
        procs.append(subprocess.Popen([sys.executable, "-m", "trayapp.cli", "--data-dir", str(tmp / name)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        time.sleep(WARMUP)
        before = [thread_cpu_ns(p.pid) for p in procs]
        t0 = time.monotonic()
        time.sleep(SECONDS)
        elapsed = time.monotonic() - t0
        after = [thread_cpu_ns(p.pid) for p in procs]
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(20)
    none, four = (100 * cpu_between(a, b)[0] / elapsed for a, b in zip(before, after))
    return none, four


def main() -> None:
    nones, fours = [], []
    with XSession() as x:
        for i in range(RUNS):
            with tempfile.TemporaryDirectory() as tmp:
                none, four = one_run(x, Path(tmp))
            nones.append(none)
            fours.append(four)
            print(f"none {none:.3f} %  four {four:.3f} %  ×{four / none:.2f}", file=sys.stderr)
    none, four = statistics.median(nones), statistics.median(fours)
    save("panel", {
        "window_s": SECONDS,
        "runs": RUNS,
        "items": ITEMS,
        "no_items_percent_of_core": round(none, 3),
        "four_items_percent_of_core": round(four, 3),
        "four_over_none": round(statistics.median(f / n for f, n in zip(fours, nones)), 3),  # the median of the runs' ratios
        "four_over_none_runs": [round(f / n, 3) for f, n in zip(fours, nones)],
        "runs_no_items": [round(v, 3) for v in nones],
        "runs_four_items": [round(v, 3) for v in fours],
        "target": "four_over_none <= 1.10",
    })


if __name__ == "__main__":
    main()
