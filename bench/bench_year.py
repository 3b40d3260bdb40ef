"""A year of 1 s history on disk (31.5 M rows): every range first and warm, from the tiers beside
today's way (raw samples read and binned), the tray app's memory through the window's life,
`trayapp status`, rollover with tiers, 36 h averages. Targets: issue 10. Dataset cached in bench/.cache."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import day_table, median_time, runs, save  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"
VERSION = 2  # bump when the generated layout changes: the cache is rebuilt (2: the tiers' numpy copies)
DAYS = 365
METRICS = ["cpu_percent", "memory_percent", "disk_percent", "gpu0_util_percent", "gpu0_memory_percent", "gpu0_temperature_c"]
SPANS = (("10 min", 600), ("36 h", 36 * 3600), ("7 d", 7 * 86400), ("30 d", 30 * 86400), ("1 y", 365 * 86400))
PY = sys.executable


def _env(base: dict | None = None, **extra: str) -> dict:
    """The environment of every measured process: trayapp's bytecode cached (in its gitignored
    __pycache__ folders) as an installed package has it, even where PYTHONDONTWRITEBYTECODE is set
    (this machine sets it: trayapp's modules were compiled from source in every process, ~40 ms
    of a `status`). Python checks each cached file against its source, so an edit is never missed."""
    env = {**(os.environ if base is None else base), **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _prime_bytecode() -> None:
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "trayapp"), str(ROOT / "bench"), str(ROOT / "tests" / "xsession.py")],
                   env=_env(), check=True, stdout=subprocess.DEVNULL)


# ----------------------------------------------------------------- the dataset


def _today():
    from trayapp.storage import local_zone

    zone = local_zone()
    return zone, datetime.now(timezone.utc).astimezone(zone).date()


def _csv_lines(t, seed: int) -> list[str]:
    """CSV lines for epoch seconds ``t``, columns in the order the store writes them."""
    import numpy as np

    from trayapp.storage import column_order, local_zone
    from trayapp.storage import csv_field

    zone = local_zone()
    rng = np.random.default_rng(seed)
    n = len(t)
    values = {
        "cpu_percent": np.clip(rng.normal(50, 10, n), 0, 100).round(1),
        "memory_percent": np.clip(rng.normal(60, 5, n), 0, 100).round(1),
        "disk_percent": np.full(n, 40.0),
        "gpu0_util_percent": np.clip(rng.normal(70, 20, n), 0, 100).round(0),
        "gpu0_memory_percent": np.full(n, 30.0),
        "gpu0_temperature_c": np.full(n, 55.0),
    }
    names = [c for c in column_order(["timestamp", *METRICS]) if c != "timestamp"]
    cols = [values[name].tolist() for name in names]
    return [",".join([datetime.fromtimestamp(float(t[i]), zone).isoformat(timespec="microseconds"), *(csv_field(c[i]) for c in cols)])
            for i in range(n)]


def _csv_header() -> str:
    from trayapp.storage import column_order

    return ",".join(column_order(["timestamp", *METRICS]))


def _build(data_dir: Path) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    from trayapp.storage import tier_builder as rollups
    from trayapp.storage import CSV_DIR, CSV_NAME, day_path
    from trayapp.storage.tiers import ROLLUPS_DIR

    zone, today = _today()
    t0 = time.perf_counter()
    rows = 0
    for back in range(DAYS, 0, -1):
        day = today - timedelta(days=back)
        table = day_table(day, 1.0, zone, with_gpu=True)
        path = day_path(data_dir, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")
        rows += table.num_rows
    midnight = datetime(today.year, today.month, today.day, tzinfo=zone).timestamp()
    t = np.arange(midnight, time.time(), 1.0)
    csv = data_dir / CSV_DIR / CSV_NAME
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text(_csv_header() + "\n" + "".join(line + "\n" for line in _csv_lines(t, int(midnight))))
    written = time.perf_counter() - t0
    t0 = time.perf_counter()
    built = rollups.ensure(data_dir)
    ensure_s = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in (data_dir / "Monitoring").rglob("*.parquet"))
    tier_bytes = sum(p.stat().st_size for p in (data_dir / ROLLUPS_DIR).rglob("*.parquet"))
    return {"day_files": DAYS, "rows_in_day_files": rows, "day_files_mb": round(size / 2**20, 1),
            "rollups_mb": round(tier_bytes / 2**20, 1), "generate_s": round(written, 1),
            "ensure_from_scratch": {"days_built": built, "s": round(ensure_s, 2)}}


def _top_up_csv(data_dir: Path) -> int:
    """Today's CSV carries on to now (the cache was built earlier today): 1 s rows since its last."""
    import numpy as np

    from trayapp.storage import CSV_DIR, CSV_NAME

    csv = data_dir / CSV_DIR / CSV_NAME
    with open(csv, "rb") as f:
        f.seek(max(0, csv.stat().st_size - 4096))
        last = f.read().splitlines()[-1].decode()
    last_t = datetime.fromisoformat(last.split(",", 1)[0]).timestamp()
    t = np.arange(last_t + 1.0, time.time(), 1.0)
    if len(t):
        with open(csv, "a") as f:
            f.write("".join(line + "\n" for line in _csv_lines(t, int(last_t))))
    return len(t)


def dataset() -> tuple[Path, dict]:
    """The year's data folder (built once a day, in one process), today's CSV topped up to now."""
    _, today = _today()
    folder = CACHE / f"year-{today.isoformat()}-v{VERSION}"
    data_dir = folder / "data"
    meta_path = folder / "built.json"
    if not meta_path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        for old in CACHE.glob("year-*"):  # another day's (or a half-built) year: ~1 GB each
            shutil.rmtree(old, ignore_errors=True)
        print(f"building {DAYS} days of 1 s history in {folder} (minutes; cached for today)", file=sys.stderr)
        meta = _build(data_dir)
        meta_path.write_text(json.dumps(meta))
    meta = json.loads(meta_path.read_text())
    _top_up_csv(data_dir)
    from trayapp.storage import CSV_DIR, CSV_NAME

    with open(data_dir / CSV_DIR / CSV_NAME, "rb") as f:
        meta["csv_rows_today"] = sum(1 for _ in f) - 1  # grows through the day: up to 86,400 (its read is in every range)
    return data_dir, meta


def _link_copy(src: Path, dst: Path) -> None:
    """A working copy a writer may touch: day files and tiers hard-linked (the app replaces files by
    renaming, never in place), today's CSV copied (it is appended to)."""
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.suffix == ".csv":
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)


# ----------------------------------------------------------------- every range


def _has_tiers_keyword() -> bool:
    from trayapp.storage import prepare_history

    return "tiers" in inspect.signature(prepare_history).parameters


# WRITER: read as the tray app does: a process that records (numpy and the store loaded, its
# start-up child has seeded the CSV's minute bins), so the window reads today from memory and
# the tiers' numpy copies. Otherwise a reader process (``trayapp gui`` alone, export): the CSV
# parsed with Arrow, the copies for the rest.
OPEN_WRITER = r"""
sys.path.insert(0, ROOT)
from pathlib import Path
kw = dict(KW)
if WRITER:
    from trayapp.storage import run_job as run
    from trayapp.storage import Store
    store = Store(Path(DATA), jobs=run, minutes=True)
    store.open_writer()
    kw["minutes"] = store.minutes
"""

FIRST_OPEN = r"""
import json, sys, time
t0 = time.perf_counter()
""" + OPEN_WRITER + r"""
if WRITER:
    t0 = time.perf_counter()  # the recorder was running before the window opened
from trayapp.storage import prepare_history
t1 = time.perf_counter()
series = prepare_history(Path(DATA), SPAN, **kw)
t2 = time.perf_counter()
print("RESULT " + json.dumps({"import_ms": (t1 - t0) * 1000, "read_ms": (t2 - t1) * 1000, "ms": (t2 - t0) * 1000,
      "rows": series.rows, "tier": series.tier, "curves": len(series.curves),
      "peak_rss_mb": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024, "pandas_loaded": "pandas" in sys.modules,
      "pyarrow_loaded": "pyarrow" in sys.modules}))
"""

WARM = r"""
import json, statistics, sys, time
""" + OPEN_WRITER + r"""
from trayapp.storage import prepare_history
out = {}
for label, span, repeat, warmup in SPANS:
    for _ in range(warmup):
        prepare_history(Path(DATA), span, **kw)
    took = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        prepare_history(Path(DATA), span, **kw)
        took.append((time.perf_counter() - t0) * 1000)
    out[label] = {"ms": statistics.median(took), "runs_ms": took}
print("RESULT " + json.dumps(out))
"""


def _script(code: str, **values: object) -> str:
    for name, value in values.items():
        code = code.replace(name, repr(value))
    return code


def _run_result(code: str, timeout: float = 600) -> tuple[dict, float]:
    t0 = time.perf_counter()
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=timeout, env=_env())
    wall = time.perf_counter() - t0
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(line[7:]), wall


def _warm_runs(span: float, tiers: bool) -> tuple[int, int]:
    """(runs, warm-up calls): BENCH_RUNS after one warm-up, except today's way over a month or
    more (seconds a call, GBs): 3 runs, no warm-up (the median of 3 is the warm figure)."""
    return (runs(), 1) if tiers or span < 30 * 86400 else (min(runs(), 3), 0)


def _modes() -> list[tuple[str, dict, bool]]:
    """(label, prepare_history's keywords, read in a writer): the tray app's way, a reader
    process's, and today's way (raw samples)."""
    if not _has_tiers_keyword():
        return [("default", {}, False)]
    return [("app", {"tiers": True}, True), ("tiers", {"tiers": True}, False), ("raw", {"tiers": False}, False)]


def ranges(data_dir: Path) -> dict:
    modes = _modes()
    out: dict = {"tiers_keyword": _has_tiers_keyword()}
    for label, span in SPANS:
        row: dict = {}
        for mode, kw, writer in modes:
            first, wall = _run_result(_script(FIRST_OPEN, ROOT=str(ROOT), DATA=str(data_dir), SPAN=span, KW=kw, WRITER=writer))
            row[f"{mode}_first"] = {k: round(v, 1) if isinstance(v, float) else v for k, v in first.items()}
            row[f"{mode}_first"]["process_wall_ms"] = round(wall * 1000, 1)
            print(f"first open {label} {mode}: {first['ms']:.0f} ms (import {first['import_ms']:.0f}), {first['rows']:,} rows "
                  f"from {first['tier']}, peak {first['peak_rss_mb']:.0f} MB", file=sys.stderr)
        out[label] = row
    for mode, kw, writer in modes:
        spans = [(label, span, *_warm_runs(span, kw.get("tiers", True))) for label, span in SPANS]
        warm, _ = _run_result(_script(WARM, ROOT=str(ROOT), DATA=str(data_dir), SPANS=spans, KW=kw, WRITER=writer), timeout=900)
        for label, _span in SPANS:
            out[label][f"{mode}_warm_ms"] = round(warm[label]["ms"], 1)
            out[label][f"{mode}_warm_runs_ms"] = [round(v, 1) for v in warm[label]["runs_ms"]]
            print(f"warm {label} {mode}: {warm[label]['ms']:.1f} ms", file=sys.stderr)
    if "raw" in [m for m, *_ in modes]:
        for label, _span in SPANS:
            r = out[label]
            r["first_ratio_raw_over_tiers"] = round(r["raw_first"]["ms"] / r["tiers_first"]["ms"], 1)
            r["warm_ratio_raw_over_tiers"] = round(r["raw_warm_ms"] / r["tiers_warm_ms"], 1)
            r["first_ratio_raw_over_app"] = round(r["raw_first"]["ms"] / r["app_first"]["ms"], 1)
            r["warm_ratio_raw_over_app"] = round(r["raw_warm_ms"] / r["app_warm_ms"], 1)
    return out


# ----------------------------------------------------------------- the tray app's memory


WINDOW_LIFE = r"""
import gc, json, sys, time
sys.path.insert(0, ROOT)
from pathlib import Path
def phase(name, **kw):
    print("PHASE " + json.dumps({"name": name, "t": time.monotonic(), **kw}), flush=True)
from trayapp.cli import _few_malloc_arenas, open_early
_few_malloc_arenas()  # as the trayapp command does before any thread starts
from trayapp.settings import Loaded, Config
loaded = Loaded(Config(sampling_interval_seconds=1.0), Path(CONFIG), [])
early = open_early(loaded.config, Path(DATA))  # as `trayapp gui` does: the dataset child before Qt
phase("folder opened")
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QEventLoop, QTimer
app = QApplication([])
app.setQuitOnLastWindowClosed(False)
from trayapp.gui.app import TrayApp
from trayapp.gui.history import RANGES, LIVE_SECONDS
tray = TrayApp(loaded, Path(DATA), Path(CONFIG), early=early)
tray.start()
phase("started")
def spin(ms):
    loop = QEventLoop(); QTimer.singleShot(ms, loop.quit); loop.exec()
def loaded_within(start, timeout_ms=10000):
    # run start(), then wait for the window's range_loaded (or the timeout); ms to a painted window
    loop = QEventLoop()
    got = []
    def done(series):
        got.append(series); loop.quit()
    t0 = time.perf_counter()
    start()
    tray.window.range_loaded.connect(done)
    QTimer.singleShot(timeout_ms, loop.quit)
    if not got:
        loop.exec()
    tray.window.range_loaded.disconnect(done)
    app.processEvents()
    # paint every plot now, into the window's own backing store, as the screen gets it (grab()
    # would paint into an extra full-window pixmap that the app never allocates)
    tray.window.graphics.viewport().repaint()
    ms = (time.perf_counter() - t0) * 1000
    return ms, (got[0].tier if got else None), not got, (got[0].took * 1000 if got else None)
spin(3000)
phase("3 s after start")
spin(15000)
phase("idle 18 s after start")
ms, tier, timed_out, read_ms = loaded_within(tray.show_history)
phase("window open", ms=ms, tier=tier, timed_out=timed_out, read_ms=read_ms)
for label, span in RANGES:
    if span == LIVE_SECONDS:  # drawn from memory, nothing read: no range_loaded
        t0 = time.perf_counter()
        tray.window.show_range(span)
        app.processEvents(); tray.window.graphics.viewport().repaint()
        phase(f"range {label}", ms=(time.perf_counter() - t0) * 1000, tier="memory", timed_out=False, read_ms=None)
    else:
        ms, tier, timed_out, read_ms = loaded_within(lambda: tray.window.show_range(span))
        phase(f"range {label}", ms=ms, tier=tier, timed_out=timed_out, read_ms=read_ms)
    spin(1000)
tray.window.close()
spin(2000)
gc.collect()
phase("2 s after close")
spin(5000)
phase("7 s after close")
tray.quit()
print("RESULT {}", flush=True)
"""


def _tree_rss(proc) -> tuple[int, int]:
    import psutil

    total, n = 0, 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
            n += 1
        except psutil.Error:
            pass
    return total, n


def _loaded(pid: int) -> dict:
    """Which of the heavy libraries the app process has mapped now (from /proc/PID/maps)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return {}
    return {"pyarrow_loaded": "libarrow.so" in maps, "pandas_loaded": "/pandas/_libs/" in maps}


def window_life(data_dir: Path) -> dict:
    """The real TrayApp under Xvfb and trayer on a working copy of the year; the summed RSS of it
    and its children sampled every 50 ms from this process while the script walks the phases."""
    import psutil

    from tests.xsession import XSession

    work = Path(tempfile.mkdtemp(prefix="window-", dir=CACHE))
    try:
        _link_copy(data_dir, work / "data")
        code = _script(WINDOW_LIFE, ROOT=str(ROOT), CONFIG=str(work / "w.toml"), DATA=str(work / "data"))
        with XSession() as x:
            env = _env(x.env, TRAYAPP_NO_KEYRING="1")
            proc = subprocess.Popen([PY, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            ps = psutil.Process(proc.pid)
            samples: list[tuple[float, int, int]] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set() and proc.poll() is None:
                    try:
                        rss, n = _tree_rss(ps)
                    except psutil.Error:
                        break
                    samples.append((time.monotonic(), rss, n))
                    stop.wait(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            err: list[str] = []
            reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
            reader.start()
            phases = []
            try:
                for line in proc.stdout:
                    if line.startswith("PHASE "):
                        phases.append({**json.loads(line[6:]), **_loaded(proc.pid)})
                proc.wait(120)
            finally:
                stop.set()
                if proc.poll() is None:
                    proc.kill()
                sampler.join(5)
                reader.join(5)
        if not phases or phases[-1]["name"] != "7 s after close":
            raise RuntimeError("the window script stopped early: " + "".join(err)[-3000:])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mb = 2**20
    out: dict = {"peak_mb": round(max(s[1] for s in samples) / mb, 1), "samples": len(samples),
                 "most_processes": max(s[2] for s in samples), "phases": []}
    before = samples[0][0]
    for ph in phases:
        upto = [s for s in samples if s[0] <= ph["t"]]
        during = [s for s in samples if before < s[0] <= ph["t"]] or upto[-1:]
        at = upto[-1] if upto else samples[0]
        row = {"phase": ph["name"], "mb": round(at[1] / mb, 1), "peak_since_last_mb": round(max(s[1] for s in during) / mb, 1),
               "processes": at[2], **{k: ph[k] for k in ("pyarrow_loaded", "pandas_loaded") if k in ph}}
        if "ms" in ph:
            row.update(ms=round(ph["ms"], 1), tier=ph["tier"], timed_out=ph["timed_out"],
                       read_ms=None if ph["read_ms"] is None else round(ph["read_ms"], 1))
        out["phases"].append(row)
        before = ph["t"]
        print(f"memory {ph['name']}: {row['mb']} MB (peak since last {row['peak_since_last_mb']} MB)"
              + f" [pyarrow {'in' if row.get('pyarrow_loaded') else 'out'}, pandas {'in' if row.get('pandas_loaded') else 'out'}]"
            + (f", {row['ms']} ms to painted from {row['tier']} (read {row['read_ms']} ms)" if "ms" in row else ""), file=sys.stderr)
    return out


# ----------------------------------------------------------------- trayapp status


# `trayapp ARGS` that reports its own peak RSS (VmHWM) last on stderr as it exits. Not wait4's
# ru_maxrss: Linux counts the parent's RSS at the fork in it, and this bench process is larger
# than what it measures.
PEAK_OF_TRAYAPP = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: sys.stderr.write('VMHWM %s\\n' % open('/proc/self/status').read().split('VmHWM:')[1].split()[0]))\n"
    "sys.argv = ['trayapp', *sys.argv[1:]]\n"
    "runpy.run_module('trayapp.cli', run_name='__main__', alter_sys=True)\n"
)


def trayapp_command(*args: str) -> list[str]:
    return [PY, "-P", "-c", PEAK_OF_TRAYAPP, *args]


def _peak_mb(stderr: bytes) -> float:
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.startswith("VMHWM ")]
    if not lines:
        raise RuntimeError("the measured process did not say its peak: " + stderr.decode(errors="replace")[-2000:])
    return int(lines[-1].split()[1]) / 1024


def _timed_process(args: list[str], env: dict, stdin: bytes = b"") -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB of the process, stdout), for ``trayapp_command(...)``."""
    t0 = time.perf_counter()
    proc = subprocess.run(args, input=stdin, capture_output=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1, 2, 3):
        raise RuntimeError(f"{args} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return wall, _peak_mb(proc.stderr), proc.stdout.decode(errors="replace")  # a job answers in binary


def _time_only(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


PANDAS_CHECK = r"""
import sys
sys.argv = ["trayapp", "--data-dir", DATA, "status"]
from trayapp.cli import main
try:
    main()
except SystemExit:
    pass
print("PANDAS", "pandas" in sys.modules)
"""


def status(data_dirs: dict[str, Path]) -> dict:
    env = _env(TRAYAPP_NO_KEYRING="1")
    out: dict = {}
    for label, data_dir in data_dirs.items():
        args = trayapp_command("--data-dir", str(data_dir), "status")
        _timed_process(args, env)  # the page cache warm for this folder
        took = [_timed_process(args, env) for _ in range(3)]
        out[label] = {"ms": round(statistics.median(t[0] for t in took) * 1000, 1), "runs_ms": [round(t[0] * 1000, 1) for t in took],
                      "peak_rss_mb": round(max(t[1] for t in took), 1)}
        print(f"status, {label}: {out[label]['ms']} ms, peak {out[label]['peak_rss_mb']} MB", file=sys.stderr)
    year = next(iter(data_dirs.values()))
    done = subprocess.run([PY, "-c", _script(PANDAS_CHECK, DATA=str(year))], capture_output=True, text=True, env=env, timeout=120)
    out["pandas_loaded"] = "PANDAS True" in done.stdout
    floor = [_time_only([PY, "-c", "import numpy, pyarrow"], env) for _ in range(3)]
    out["python_numpy_pyarrow_import_ms"] = round(statistics.median(floor) * 1000, 1)
    return out


# ----------------------------------------------------------------- rollover, averages


def _short_copy(data_dir: Path, dst: Path, days: int) -> Path:
    """The last ``days`` day files of the year (hard links) and today's CSV: the same recent data,
    without the year behind it."""
    from trayapp.storage import CSV_DIR, CSV_NAME, day_path

    _, today = _today()
    for back in range(days, 0, -1):
        src = day_path(data_dir, today - timedelta(days=back))
        target = day_path(dst, today - timedelta(days=back))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, target)
    (dst / CSV_DIR).mkdir(parents=True, exist_ok=True)
    shutil.copy2(data_dir / CSV_DIR / CSV_NAME, dst / CSV_DIR / CSV_NAME)
    return dst


def rollover_beside_year(src: Path, data_dir: Path, work: Path, tiers: bool, repeat: int = 5) -> float:
    """``bench_rollups.rollover_ms`` with the year on disk: yesterday's CSV rolled into a folder that
    holds the other 364 days and their tiers, so the month's hour tier is rebuilt from its days."""
    from trayapp.storage import tier_builder as rollups
    from trayapp.storage import writer as store_module
    from trayapp.storage import CSV_DIR, CSV_NAME, day_path, local_zone
    from trayapp.storage.tiers import minute_path
    from trayapp.storage import Store

    _, today = _today()
    yesterday = today - timedelta(days=1)
    _link_copy(data_dir, work)
    fresh = [day_path(work, yesterday), minute_path(work, yesterday)]
    original = store_module._rollup_day
    if not tiers:
        store_module._rollup_day = lambda *args, **kwargs: None
    took = []
    try:
        for _ in range(repeat + 1):  # the first is a warm-up
            for path in fresh:
                path.unlink(missing_ok=True)
            shutil.copy(src, work / CSV_DIR / CSV_NAME)
            store = Store(work)
            store._tz = local_zone()
            store._open_csv()
            t0 = time.perf_counter()
            moved = store.rollover(today)
            took.append(time.perf_counter() - t0)
            store.close()
            assert moved > 0
    finally:
        store_module._rollup_day = original
    if tiers:  # the tier of the day rolled over was written
        assert minute_path(work, yesterday).exists()
    return statistics.median(took[1:]) * 1000


def _midnights(src: Path, data_dir: Path, work: Path, repeat: int):
    """``repeat`` times: ``work`` (a copy of the year) as it is just before midnight, with ``src``
    as yesterday's CSV and no day file or minute tier for yesterday; yields yesterday."""
    from trayapp.storage import tier_builder as rollups
    from trayapp.storage import CSV_DIR, CSV_NAME, day_path
    from trayapp.storage.tiers import minute_path

    _, today = _today()
    yesterday = today - timedelta(days=1)
    _link_copy(data_dir, work)
    for _ in range(repeat):
        day_path(work, yesterday).unlink(missing_ok=True)
        minute_path(work, yesterday).unlink(missing_ok=True)
        shutil.copy(src, work / CSV_DIR / CSV_NAME)
        yield yesterday


def midnight_child(src: Path, data_dir: Path, work: Path, repeat: int = 3) -> dict:
    """A midnight the recorder hands to the one-shot dataset child: yesterday's CSV rolled over
    with the job ``Store._roll`` sends then, beside the year. Its peak RSS (its own VmHWM) and
    wall time."""
    from trayapp.storage.child_job import child_command
    from trayapp.storage import day_path

    _, today = _today()
    job = json.dumps({"job": "maintain", "data_dir": str(work), "retention_days": 0, "today": today.isoformat(), "minutes": True, "rows": True}).encode()
    assert child_command()[-1] == "dataset-job"  # what trayapp_command runs below, measured
    peaks, walls = [], []
    for yesterday in _midnights(src, data_dir, work, repeat):
        wall, peak, _ = _timed_process(trayapp_command("dataset-job"), _env(), stdin=job)
        if not day_path(work, yesterday).exists():
            raise RuntimeError("the midnight child did not write the day file")
        walls.append(wall)
        peaks.append(peak)
    return {"child_peak_mb": round(statistics.median(peaks), 1), "child_ms": round(statistics.median(walls) * 1000, 1)}


def _wide_day_csv(path: Path) -> None:
    """Yesterday at 1 s with every column a GPU workstation records (25 metrics, two GPUs; battery
    and fan empty, as on a desktop): the widest CSV the midnight handles."""
    import numpy as np

    from trayapp.storage import column_order
    from trayapp.storage import csv_field
    from trayapp.model import GpuReading, Sample

    zone, today = _today()
    start = datetime(today.year, today.month, today.day, tzinfo=zone) - timedelta(days=1)
    t = np.arange(start.timestamp(), datetime(today.year, today.month, today.day, tzinfo=zone).timestamp(), 1.0) + 0.25
    probe = Sample(datetime.now(timezone.utc), 1, 2, 3, gpus=(GpuReading(0, "x", 1, 2, 3, 4, 5), GpuReading(1, "x", 1, 2, 3, 4, 5)))
    names = column_order(probe.values())
    rng = np.random.default_rng(7)
    cols = []
    for name in names:
        if name in ("battery_percent", "battery_plugged", "fan_rpm"):
            cols.append([None] * len(t))
        elif name.endswith("bytes_per_s"):
            cols.append((rng.exponential(2e5, len(t))).round(4).tolist())
        else:
            cols.append(np.clip(rng.normal(50, 15, len(t)), 0, 100).round(1).tolist())
    with open(path, "w") as f:
        f.write(",".join(["timestamp", *names]) + "\n")
        for i in range(len(t)):
            f.write(",".join([datetime.fromtimestamp(float(t[i]), zone).isoformat(timespec="microseconds"), *(csv_field(c[i]) for c in cols)]) + "\n")


# In a process holding what the tray app holds (Qt, pyqtgraph, numpy, its window's modules), a
# recorder opened the way the tray app opens one (its start-up child writes the rows file), the
# day's last second appended, then the first sample of today: the midnight. The peak over what
# the process held just before it is what midnight adds to the app (VmHWM, reset first).
_MIDNIGHT_IN_APP = r"""
import gc, json, sys, time
from datetime import datetime, timedelta
from pathlib import Path
import trayapp.gui.app, trayapp.gui.history  # noqa: F401 - what the tray app has loaded
from trayapp.storage import child_job as dataset_jobs
from trayapp.storage import local_zone
from trayapp.heap import release_memory
from trayapp.model import Sample
from trayapp.storage import Store

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

work, today = Path(sys.argv[1]), datetime.fromisoformat(sys.argv[2])
zone = local_zone()
midnight = datetime(today.year, today.month, today.day, tzinfo=zone)
store = Store(work, jobs=dataset_jobs.run_job, minutes=True)
store.open_writer(midnight - timedelta(seconds=1))
assert store.rows is not None, "no rows file"
gc.collect()
release_memory()
before = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # VmHWM from here
t0 = time.perf_counter()
store.append(Sample(midnight + timedelta(seconds=0.5), 1.0, 2.0, 3.0))
took = time.perf_counter() - t0
peak = status("VmHWM:")
day = store.day_path((midnight - timedelta(days=1)).date())
print(json.dumps({"ms": took * 1000, "before_mb": before, "added_mb": peak - before, "ours": b"trayapp parquet writer" in day.read_bytes()[-400:],
                  "pyarrow": "pyarrow" in sys.modules}))
"""


def midnight_in_app(src: Path, data_dir: Path, work: Path, repeat: int = 3) -> dict:
    """The tray app's midnight as it is done now (``trayapp.storage.midnight``, in the app), on ``src``
    beside the year: what it adds to the app's resident memory at its peak, and its time."""
    _, today = _today()
    added, walls = [], []
    for _ in _midnights(src, data_dir, work, repeat):
        done = subprocess.run([PY, "-P", "-c", _MIDNIGHT_IN_APP, str(work), today.isoformat()], capture_output=True, env=_env(QT_QPA_PLATFORM="offscreen"), timeout=600)
        if done.returncode:
            raise RuntimeError("midnight in the app failed: " + done.stderr.decode(errors="replace")[-2000:])
        out = json.loads(done.stdout.decode().strip().splitlines()[-1])
        if not out["ours"] or out["pyarrow"]:
            raise RuntimeError(f"midnight did not go the app's way: {out}")
        added.append(out["added_mb"])
        walls.append(out["ms"])
    return {"added_mb": round(statistics.median(added), 1), "ms": round(statistics.median(walls), 1)}


def rollover(data_dir: Path) -> dict:
    from bench.bench_rollover import write_day_csv
    from bench.bench_rollups import rollover_ms

    out: dict = {}
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        tmp_path = Path(tmp)
        src = tmp_path / "day-1s.csv"
        write_day_csv(src, 1.0)
        rows = sum(1 for _ in open(src)) - 1
        empty = {t: rollover_ms(src, tmp_path / "work", tiers=t) for t in (False, True)}
        shutil.rmtree(tmp_path / "work", ignore_errors=True)
        year = {t: rollover_beside_year(src, data_dir, tmp_path / f"year-{t}", tiers=t) for t in (False, True)}
        wide = tmp_path / "day-1s-wide.csv"
        _wide_day_csv(wide)
        out["midnight"] = midnight_child(wide, data_dir, tmp_path / "midnight")
        out["midnight"].update(midnight_in_app(wide, data_dir, tmp_path / "midnight-app"))
        out["midnight"]["narrow"] = midnight_in_app(src, data_dir, tmp_path / "midnight-narrow")  # the CSV of the rows above
    out["rows"] = rows
    out["empty_folder"] = {"without_tiers_ms": round(empty[False], 1), "with_tiers_ms": round(empty[True], 1)}
    out["year_on_disk"] = {"without_tiers_ms": round(year[False], 1), "with_tiers_ms": round(year[True], 1)}
    print(f"rollover of {rows:,} rows: empty folder {empty[True]:.1f} ms with tiers ({empty[False]:.1f} without); "
          f"year on disk {year[True]:.1f} ms ({year[False]:.1f} without); the tray app's midnight child "
          f"{out['midnight']['child_ms']} ms, peak {out['midnight']['child_peak_mb']} MB; in the app {out['midnight']['ms']} ms, "
          f"+{out['midnight']['added_mb']} MB", file=sys.stderr)
    return out


def averages(data_dirs: dict[str, Path]) -> dict:
    from bench.bench_averages import trayapp_status

    out = {}
    for label, data_dir in data_dirs.items():
        ms, all_ = median_time(trayapp_status(data_dir))
        out[label] = {"ms": round(ms * 1000, 2), "runs_ms": [round(t * 1000, 2) for t in all_]}
        print(f"36 h averages, {label}: {ms * 1000:.1f} ms", file=sys.stderr)
    return out


def ensure_nothing_to_do(data_dir: Path) -> dict:
    """``tier_builder.ensure`` on the cached year: nothing to do, unless trayapp changed the tiers since
    the cache was built (then it rebuilds them first, timed, and the next call is the figure)."""
    from trayapp.storage import tier_builder as rollups

    out = {}
    for _ in range(2):
        t0 = time.perf_counter()
        built = rollups.ensure(data_dir)
        took = round((time.perf_counter() - t0) * 1000, 1)
        if not built:
            out["ms"] = took
            return out
        out["rebuilt_first"] = {"days": built, "ms": took}
    raise RuntimeError(f"rollups.ensure rebuilt {built} days twice in a row")


# ----------------------------------------------------------------- all of it


def table(r: dict) -> list[str]:
    """The rows of docs/benchmarks.md for this benchmark (Markdown)."""
    rows = ["| with 1 year of 1 s history on disk | trayapp, in the tray app | a reader process | today's way (raw samples), same run | target |",
            "| --- | --- | --- | --- | --- |"]
    ranges_ = r["ranges"]
    for label, _span in SPANS:
        x = ranges_[label]
        if "app_first" in x:
            arrow = " (loads Arrow)" if x["app_first"].get("pyarrow_loaded") else ""
            rows.append(f"| {label}: first open / warm | {x['app_first']['ms']} / {x['app_warm_ms']} ms ({x['app_first']['tier']}{arrow}) "
                        f"| {x['tiers_first']['ms']} / {x['tiers_warm_ms']} ms | {x['raw_first']['ms']:,} / {x['raw_warm_ms']:,} ms "
                        f"(×{x['first_ratio_raw_over_app']} / ×{x['warm_ratio_raw_over_app']}) | ≤ 150 / ≤ 50 ms |")
    mem = r["window_memory"]
    phases = {p["phase"]: p for p in mem["phases"]}
    opens = [p for p in mem["phases"] if "ms" in p]
    start_peak = max(phases[name]["peak_since_last_mb"] for name in ("folder opened", "started", "3 s after start"))
    rows.append(f"| tray app, all its processes, resident: peak from start through open, every range, close | {mem['peak_mb']} MB | "
                f"start-up (its dataset child before Qt) {start_peak} MB; idle before the window "
                f"{phases['idle 18 s after start']['mb']} MB; window open {min(p['mb'] for p in opens)}–{max(p['mb'] for p in opens)} MB; "
                f"closed {phases['7 s after close']['mb']} MB | ≤ 150 MB |")
    night = r["rollover_day_1s"].get("midnight")
    if night and "added_mb" in night:
        idle = phases["idle 18 s after start"]["mb"]
        top = max(p["peak_since_last_mb"] for p in mem["phases"] if p["phase"] != "folder opened")
        worst = round(top + night["added_mb"], 1)
        rows.append(f"| tray app at midnight: it rolls a day of 1 s samples (25 metrics) over itself, no Arrow, no child | "
                    f"{round(idle + night['added_mb'], 1)}–{worst} MB, {night['ms']:.0f} ms | "
                    f"+{night['added_mb']} MB at its peak on the app idle {idle} MB (window never opened) or at its highest, window open, {top} MB; "
                    f"the one-shot Arrow child it replaces: {night['child_peak_mb']} MB beside the app for {night['child_ms']:.0f} ms "
                    f"| ≤ 150 MB{'' if worst <= 150 else ' (not met)'} |")
    rows.append("| history window in the tray app, to painted (its read on the worker thread) | "
                + ", ".join(f"{p['phase'].replace('range ', '')} {p['ms']:.0f} ms" + (f" ({p['read_ms']:.0f})" if p.get("read_ms") else "") for p in opens)
                + " | — | ≤ 150 ms |")
    st = r["status"]
    rows.append(f"| `trayapp status` (whole process) | {st['1 year']['ms']} ms, peak {st['1 year']['peak_rss_mb']} MB | "
                f"2 days on disk: {st['2 days']['ms']} ms; `python -c 'import numpy, pyarrow'` {st['python_numpy_pyarrow_import_ms']} ms | ≤ 300 ms |")
    ro = r["rollover_day_1s"]
    rows.append(f"| rollover of a day of 1 s samples ({ro['rows']:,} rows), tiers included, beside the year | {ro['year_on_disk']['with_tiers_ms']} ms | "
                f"without tiers {ro['year_on_disk']['without_tiers_ms']} ms; into an empty folder {ro['empty_folder']['with_tiers_ms']} ms | ≤ 150 ms |")
    narrow = (night or {}).get("narrow")
    if narrow:
        rows.append(f"| … the same day at midnight in the tray app or `run --headless` (no Arrow: `trayapp/storage/midnight.py`) | {narrow['ms']} ms, +{narrow['added_mb']} MB | "
                    f"25 metrics: {night['ms']} ms | ≤ 150 ms{'' if narrow['ms'] <= 150 else ' (not met)'} |")
    av = r["averages_36h"]
    rows.append(f"| 36 h averages from disk | {av['1 year']['ms']} ms | 2 days on disk: {av['2 days']['ms']} ms (×{av['flatness_year_vs_2_days']}) | ≤ 20 ms, flat |")
    ds = r["dataset"]
    rows.append(f"| rollup tiers of the year built from scratch (`tier_builder.ensure`, {ds['rows_in_day_files']:,} rows) | "
                f"{ds['ensure_from_scratch']['s']} s | nothing to do: {r['ensure_nothing_to_do']['ms']} ms | — |")
    return rows


def main() -> None:
    t0 = time.perf_counter()
    data_dir, meta = dataset()
    _prime_bytecode()
    result: dict = {"dataset": meta, "page_cache": "warm: the year's files sit in the OS page cache (first open = a fresh process, not a cold disk)",
                    "bytecode": "cached, as installed (PYTHONDONTWRITEBYTECODE unset for the measured processes)",
                    "bench_runs": runs()}
    result["ensure_nothing_to_do"] = ensure_nothing_to_do(data_dir)
    result["ranges"] = ranges(data_dir)
    result["window_memory"] = window_life(data_dir)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        short = _short_copy(data_dir, Path(tmp) / "short", 2)
        dirs = {"1 year": data_dir, "2 days": short}
        result["status"] = status(dirs)
        result["averages_36h"] = averages(dirs)
    result["averages_36h"]["flatness_year_vs_2_days"] = round(result["averages_36h"]["1 year"]["ms"] / result["averages_36h"]["2 days"]["ms"], 2)
    result["rollover_day_1s"] = rollover(data_dir)
    result["bench_s"] = round(time.perf_counter() - t0, 1)
    save("year", result)
    print("\n".join(table(result)))


if __name__ == "__main__":
    main()
