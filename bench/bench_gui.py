"""The desktop app: CPU with the window closed (beside headless, same runs), resident memory after
start and after opening/closing the history window ten times, and the time to open a 36-hour
window of 1-second data (beside plotting the raw samples with pyqtgraph, the naive way).
Runs under Xvfb with trayer (a real tray). Targets: <= x2 headless's CPU, <= 150 MB, <= 300 ms."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_cpu import RUNS, recorder, side_by_side  # noqa: E402
from bench.common import save  # noqa: E402
from tests.xsession import XSession  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))


def history_36h_1s(data_dir: Path) -> None:
    import numpy as np

    from trayapp.synthetic import write_history

    now = datetime.now(timezone.utc)
    rng = np.random.default_rng(1)
    write_history(data_dir, now - timedelta(hours=36), now, 1.0, {
        "cpu_percent": lambda t: rng.uniform(0, 100, len(t)).round(1),
        "memory_percent": lambda t: rng.uniform(40, 60, len(t)).round(1),
        "disk_percent": 50.0,
    })


def cpu_window_closed(x: XSession) -> dict:
    """The tray app, its window never opened, beside `run --headless`, both at 1 s on the same
    36 h of history, side by side in each of BENCH_RUNS runs: CPU after start-up, ratio per run.
    BENCH_COMPARE_TREE=<a checkout> runs that tree's pair in the same runs too."""
    compare = os.environ.get("BENCH_COMPARE_TREE")
    trees = {"": ROOT, **({" (compare tree)": Path(compare).resolve()} if compare else {})}
    runs, rss = [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            contenders = []
            for suffix, tree in trees.items():
                contenders += [recorder(f"tray app{suffix}", tree, tmp, extra_env=x.env, gui=True),
                               recorder(f"headless{suffix}", tree, tmp)]
            for c in contenders:
                history_36h_1s(c.first_sample.parent.parent)
            # start-up and the pyqtgraph preload (15 s after start) are not the steady state
            result = side_by_side(contenders, SECONDS, settle=20.0, after=lambda: rss.append(
                {c.name: psutil.Process(c.proc.pid).memory_info().rss for c in contenders}))
        runs.append(result)
        print("  ".join(f"tray app{s} {result[f'tray app{s}']:.3f} %  headless{s} {result[f'headless{s}']:.3f} %  "
                        f"×{result[f'tray app{s}'] / result[f'headless{s}']:.2f}" for s in trees), file=sys.stderr)
    out: dict = {"cpu_runs": RUNS, **({"compare_tree": compare} if compare else {})}
    for suffix in trees:
        key = suffix.strip(" ()").replace(" ", "_")
        key = f"_{key}" if key else ""
        ratios = [r[f"tray app{suffix}"] / r[f"headless{suffix}"] for r in runs]
        out.update({
            f"gui_percent_of_core{key}": round(statistics.median(r[f"tray app{suffix}"] for r in runs), 3),
            f"headless_percent_of_core{key}": round(statistics.median(r[f"headless{suffix}"] for r in runs), 3),
            f"gui_percent_of_core_runs{key}": [round(r[f"tray app{suffix}"], 3) for r in runs],
            f"headless_percent_of_core_runs{key}": [round(r[f"headless{suffix}"], 3) for r in runs],
            f"ratio_gui_over_headless_runs{key}": [round(x, 2) for x in ratios],
            f"ratio_gui_over_headless_median{key}": round(statistics.median(ratios), 2),
        })
    out["gui_rss_mb_after_window_s"] = round(statistics.median(r["tray app"] for r in rss) / 2**20, 1)
    out["headless_rss_mb"] = round(statistics.median(r["headless"] for r in rss) / 2**20, 1)
    return out


WINDOW_SCRIPT = r"""
import json, sys, time, gc
sys.path.insert(0, ROOT)
from pathlib import Path
import psutil
from trayapp.cli import _few_malloc_arenas
_few_malloc_arenas()  # as the trayapp command does before any thread starts
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QEventLoop, QTimer
app = QApplication([])
app.setQuitOnLastWindowClosed(False)
from trayapp.gui.app import TrayApp
from trayapp.settings import Loaded, Config
proc = psutil.Process()
config = Config(sampling_interval_seconds=1.0)
tray = TrayApp(Loaded(config, Path(CONFIG), []), Path(DATA), Path(CONFIG))
tray.start()
def spin(ms):
    loop = QEventLoop(); QTimer.singleShot(ms, loop.quit); loop.exec()
spin(3000)
out = {"rss_mb_after_start": proc.memory_info().rss / 2**20}
spin(15000)  # the app loads pyqtgraph once it has settled
out["rss_mb_after_preload"] = proc.memory_info().rss / 2**20
opens = []
firsts = []
for i in range(10):
    loop = QEventLoop()
    t0 = time.perf_counter()
    tray.show_history()  # paints the rule metrics from memory before it returns
    tray.window.graphics.grab()
    firsts.append(time.perf_counter() - t0)
    tray.window.range_loaded.connect(loop.quit)
    QTimer.singleShot(10000, loop.quit)
    loop.exec()
    app.processEvents()  # the frame with the curves drawn
    tray.window.graphics.grab()  # force a full paint of every plot
    opens.append(time.perf_counter() - t0)
    tray.window.range_loaded.disconnect(loop.quit)
    out["rss_mb_window_open_max"] = max(out.get("rss_mb_window_open_max", 0.0), proc.memory_info().rss / 2**20)
    tray.window.close()
    spin(300)
gc.collect()
spin(1000)
out["rss_mb_after_10_opens"] = proc.memory_info().rss / 2**20
out["open_first_ms"] = opens[0] * 1000
out["first_paint_first_open_ms"] = firsts[0] * 1000
out["first_paint_warm_ms"] = sorted(firsts[1:])[len(firsts[1:]) // 2] * 1000
out["open_warm_ms"] = sorted(opens[1:])[len(opens[1:]) // 2] * 1000
# the naive way, same process, same data: every raw sample handed to pyqtgraph
import pyqtgraph as pg
from trayapp.storage import ranges as history
from datetime import datetime, timedelta, timezone
naive = []
for i in range(3):
    t0 = time.perf_counter()
    now = datetime.now(timezone.utc)
    table = history.read(Path(DATA), now - timedelta(hours=36), now)
    w = pg.GraphicsLayoutWidget()
    t = table.column("timestamp").cast("int64").to_numpy() / 1e6
    for row, name in enumerate(("cpu_percent", "memory_percent", "disk_percent")):
        w.addPlot(row=row, col=0, axisItems={"bottom": pg.DateAxisItem()}).plot(t, table.column(name).to_numpy())
    w.show(); app.processEvents(); w.grab()
    naive.append(time.perf_counter() - t0)
    w.close(); w.deleteLater(); spin(200)
out["naive_open_ms"] = sorted(naive)[1] * 1000
tray.quit()
print("RESULT " + json.dumps(out))
"""


def window_numbers(x: XSession, tmp: Path) -> dict:
    data_dir = tmp / "data-w"
    history_36h_1s(data_dir)
    code = WINDOW_SCRIPT.replace("ROOT", repr(str(ROOT))).replace("CONFIG", repr(str(tmp / "w.toml"))).replace("DATA", repr(str(data_dir)))
    env = {**x.env, "TRAYAPP_NO_KEYRING": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(done.stderr[-2000:])
    return {k: round(v, 1) for k, v in json.loads(line[7:]).items()}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, XSession() as x:
        result = {"window_s": SECONDS, **cpu_window_closed(x), **window_numbers(x, Path(tmp))}
    result["open_speedup_vs_naive"] = round(result["naive_open_ms"] / result["open_warm_ms"], 1)
    save("gui", result)


if __name__ == "__main__":
    main()
