"""CPU of `trayapp run --headless` at 1 s sampling against the seed notebook's own loop at 1 s,
both running side by side in each run: schedstat CPU over a window after start-up, ratio per run.

Target: <= x1.5 the notebook's loop. BENCH_SECONDS sets the window (60), BENCH_RUNS the runs (4);
BENCH_COMPARE_TREE=<a checkout> adds that tree's recorder to every run (before/after in one run)."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.common import save

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
RUNS = int(os.environ.get("BENCH_RUNS", "4"))
SETTLE = 5.0  # after the first sample: the start-up child, imports and first-tick work are done
START_TIMEOUT = 60.0


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """Nanoseconds on CPU of each thread of ``pid``, from ``/proc/<pid>/task/*/schedstat``
    (``cpu_times()`` counts 10 ms ticks, too coarse for a process that uses 0.1 % of a core)."""
    out = {}
    tasks = f"/proc/{pid}/task"
    for tid in os.listdir(tasks):
        try:
            with open(f"{tasks}/{tid}/schedstat", "rb") as f:
                out[int(tid)] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended between the listing and the read
    return out


def cpu_between(before: dict[int, int], after: dict[int, int]) -> tuple[float, int]:
    """(seconds of CPU used between two readings, threads that ended in between). A thread that
    began in between counts whole; one that ended is not counted at all (its share is unknown)."""
    used = sum(ns - before.get(tid, 0) for tid, ns in after.items())
    return used / 1e9, len(set(before) - set(after))


@dataclass
class Contender:
    """One process of a run: its command, environment, and the file its first sample lands in."""

    name: str
    argv: list[str]
    env: dict[str, str]
    first_sample: Path
    cwd: Path | None = None
    proc: subprocess.Popen | None = None
    percents: list[float] = field(default_factory=list)


def recorder(name: str, tree: Path, tmp: Path, extra_env: dict[str, str] | None = None, gui: bool = False) -> Contender:
    """trayapp from ``tree`` at 1 s sampling, default settings (every metric on), its own folder."""
    folder = tmp / name
    folder.mkdir()
    config = folder / "config.toml"
    config.write_text("[sampling]\ninterval_seconds = 1.0\n")
    env = {**os.environ, **(extra_env or {}), "TRAYAPP_CONFIG": str(config), "PYTHONPATH": str(tree)}
    argv = [sys.executable, "-m", "trayapp.cli", "--data-dir", str(folder / "data")]
    if not gui:
        argv += ["run", "--headless", "--interval", "1"]
    # -m puts the working folder first on sys.path: run in the tree, or another tree's code is measured
    return Contender(name, argv, env, folder / "data" / "csv_dump" / "daily_dump.csv", cwd=tree)


def notebook(tmp: Path) -> Contender:
    folder = tmp / "notebook"
    return Contender("notebook loop", [sys.executable, str(ROOT / "bench" / "notebook_loop.py"), str(folder), "1"],
                     dict(os.environ), folder / "daily_dump.csv")


def has_a_sample_since(path: Path, since: datetime) -> bool:
    """The file's last row was sampled at or after ``since`` (rows seeded before do not count)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        stamp = datetime.fromisoformat(last.split(b",", 1)[0].decode())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return stamp.astimezone() >= since  # naive (the notebook's): local time


def side_by_side(contenders: list[Contender], seconds: float, settle: float = SETTLE,
                 after: Callable[[], object] | None = None) -> dict[str, float]:
    """Start every contender at once; once each has written a sample and ``settle`` seconds
    passed, measure each one's CPU over ``seconds``, as % of one core; call ``after`` while
    they still run, then stop them all."""
    launched = datetime.now().astimezone()
    for c in contenders:
        c.proc = subprocess.Popen(c.argv, env=c.env, cwd=c.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not all(has_a_sample_since(c.first_sample, launched) for c in contenders):
            late = [c.name for c in contenders if c.proc.poll() is not None or time.monotonic() > deadline]
            if late:
                raise RuntimeError(f"{', '.join(late)} did not start recording")
            time.sleep(0.2)
        time.sleep(settle)
        before = {c.name: thread_cpu_ns(c.proc.pid) for c in contenders}
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        end = {c.name: thread_cpu_ns(c.proc.pid) for c in contenders}
        if after is not None:
            after()
    finally:
        started = [c for c in contenders if c.proc is not None]
        for c in started:
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        for c in started:
            try:
                c.proc.wait(20)
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()
    out = {}
    for c in contenders:
        used, ended = cpu_between(before[c.name], end[c.name])
        if ended:
            print(f"  ({c.name}: {ended} thread(s) ended in the window; their CPU is not counted)", file=sys.stderr)
        out[c.name] = 100 * used / elapsed
    return out


def summary(runs: list[dict[str, float]], name: str, baseline: str) -> dict:
    ratios = [r[name] / r[baseline] for r in runs]
    return {
        "percent_of_core_median": round(statistics.median(r[name] for r in runs), 3),
        "percent_of_core_runs": [round(r[name], 3) for r in runs],
        f"ratio_over_{baseline.replace(' ', '_')}_runs": [round(x, 2) for x in ratios],
        f"ratio_over_{baseline.replace(' ', '_')}_median": round(statistics.median(ratios), 2),
    }


def main() -> None:
    compare = os.environ.get("BENCH_COMPARE_TREE")
    runs: list[dict[str, float]] = []
    for i in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            contenders = [recorder("trayapp", ROOT, tmp), notebook(tmp)]
            if compare:
                contenders.append(recorder("trayapp (compare tree)", Path(compare).resolve(), tmp))
            result = side_by_side(contenders, SECONDS)
        runs.append(result)
        line = "  ".join(f"{name} {pct:.3f} %" for name, pct in result.items())
        ratios = "  ".join(f"{name} ×{pct / result['notebook loop']:.2f}" for name, pct in result.items() if name != "notebook loop")
        print(f"run {i + 1}/{RUNS}: {line}  |  {ratios}", file=sys.stderr)
    out = {
        "interval_s": 1, "window_s": SECONDS, "runs": RUNS, "settle_after_first_sample_s": SETTLE,
        "notebook loop": {"percent_of_core_median": round(statistics.median(r["notebook loop"] for r in runs), 3),
                          "percent_of_core_runs": [round(r["notebook loop"], 3) for r in runs]},
        "trayapp": summary(runs, "trayapp", "notebook loop"),
    }
    if compare:
        out["compare_tree"] = compare
        out["trayapp (compare tree)"] = summary(runs, "trayapp (compare tree)", "notebook loop")
    save("cpu_headless", out)


if __name__ == "__main__":
    main()
