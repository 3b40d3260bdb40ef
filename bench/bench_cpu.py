"""CPU used by `trayapp run --headless` at 1 s sampling, as % of one core, measured over a window
after start-up, beside the notebook's own loop at the same interval, both running at once.
Target: <= 0.1 % of one core. BENCH_SECONDS sets the window (default 60), BENCH_RUNS the runs."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import save

SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
RUNS = int(os.environ.get("BENCH_CPU_RUNS", "3"))
WARMUP = 5.0


def cpu_seconds(proc: psutil.Process) -> float:
    """CPU time of every thread, in ns resolution from /proc/*/schedstat where there is one
    (cpu_times() counts 10 ms ticks, too coarse for a process that uses 0.1 %)."""
    tasks = Path(f"/proc/{proc.pid}/task")
    if tasks.is_dir():
        total = 0
        for task in tasks.iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return total / 1e9
    times = proc.cpu_times()
    return times.user + times.system


def one_run(tmp: Path) -> tuple[float, float]:
    env = {**os.environ, "TRAYAPP_CONFIG": str(tmp / "config.toml"), "TRAYAPP_NO_KEYRING": "1"}
    ours = subprocess.Popen(
        [sys.executable, "-m", "trayapp.cli", "--data-dir", str(tmp / "data"), "run", "--headless", "--interval", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    theirs = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("notebook_loop.py")), str(tmp / "nb"), "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(WARMUP)  # start-up (imports, seeding) is not the steady state
        p_ours, p_theirs = psutil.Process(ours.pid), psutil.Process(theirs.pid)
        a0, b0 = cpu_seconds(p_ours), cpu_seconds(p_theirs)
        t0 = time.monotonic()
        time.sleep(SECONDS)
        elapsed = time.monotonic() - t0
        a1, b1 = cpu_seconds(p_ours), cpu_seconds(p_theirs)
    finally:
        ours.send_signal(signal.SIGTERM)
        theirs.kill()
        ours.wait(20)
        theirs.wait(20)
    return 100 * (a1 - a0) / elapsed, 100 * (b1 - b0) / elapsed


def main() -> None:
    ours_runs, theirs_runs = [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            a, b = one_run(Path(tmp))
            ours_runs.append(a)
            theirs_runs.append(b)
            print(f"trayapp {a:.3f} %  notebook loop {b:.3f} %", file=sys.stderr)
    ours, theirs = statistics.median(ours_runs), statistics.median(theirs_runs)
    save("cpu_headless", {
        "interval_s": 1, "window_s": SECONDS, "runs": RUNS,
        "trayapp_percent_of_core": round(ours, 3),
        "notebook_percent_of_core": round(theirs, 3),
        "ratio_trayapp_over_notebook": round(ours / theirs, 2) if theirs else None,
        "trayapp_runs": [round(x, 3) for x in ours_runs],
        "notebook_runs": [round(x, 3) for x in theirs_runs],
    })


if __name__ == "__main__":
    main()
