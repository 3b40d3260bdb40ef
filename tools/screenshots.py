"""Screenshots for the README: the real app under Xvfb with trayer, on made-up but plausible data.

    .venv/bin/python tools/screenshots.py   # writes docs/screenshots/*.png
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.xsession import XSession  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def make_data(data_dir: Path) -> None:
    import numpy as np

    from trayapp.synthetic import write_history

    now = datetime.now(timezone.utc)
    rng = np.random.default_rng(3)

    def cpu(t):
        hours = (t - t[0]) / 3600
        busy = (hours % 12 > 5).astype(float) * 55
        return np.clip(30 + busy + 8 * np.sin(hours) + rng.normal(0, 6, len(t)), 0, 100)

    def gpu(t):
        hours = (t - t[0]) / 3600
        return np.where(hours % 12 > 4, np.clip(rng.normal(97, 2, len(t)), 0, 100), rng.normal(2, 1, len(t)).clip(0))

    cols = {
        "cpu_percent": cpu,
        "memory_percent": lambda t: np.clip(82 + 4 * np.sin((t - t[0]) / 20000) + rng.normal(0, 1, len(t)), 0, 100),
        "disk_percent": 61.0,
        "cpu_core_max_percent": lambda t: np.clip(cpu(t) + 12, 0, 100),
        "load_percent": lambda t: np.clip(cpu(t) * 0.9, 0, 150),
        "swap_percent": 4.0,
        "disk_read_bytes_per_s": lambda t: np.abs(rng.lognormal(11, 1.5, len(t))),
        "disk_write_bytes_per_s": lambda t: np.abs(rng.lognormal(12, 1.2, len(t))),
        "net_recv_bytes_per_s": lambda t: np.abs(rng.lognormal(10, 2.0, len(t))),
        "net_sent_bytes_per_s": lambda t: np.abs(rng.lognormal(9, 1.5, len(t))),
        "cpu_temperature_c": lambda t: 45 + cpu(t) * 0.35,
        "gpu0_util_percent": gpu,
        "gpu0_memory_percent": lambda t: np.where(gpu(t) > 50, 71.0, 1.7),
        "gpu0_temperature_c": lambda t: np.where(gpu(t) > 50, 62.0, 31.0),
    }
    # a year before that, every 10 minutes, busier from late spring (the 1 y view reads hour tiers)
    season = lambda t: np.clip(cpu(t) * (0.6 + 0.4 * np.sin((t - t[0]) / (365 * 86400) * np.pi)), 0, 100)  # noqa: E731
    write_history(data_dir, now - timedelta(days=365), now - timedelta(days=2), 600, {**cols, "cpu_percent": season}, today_in_csv=False)
    write_history(data_dir, now - timedelta(hours=40), now - timedelta(hours=21), 20, cols)
    write_history(data_dir, now - timedelta(hours=18), now, 20, cols)  # a gap: the box was off


def main() -> None:
    os.environ.pop("QT_QPA_PLATFORM", None)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, XSession(1280, 860) as x:
        data_dir = Path(tmp) / "data"
        make_data(data_dir)
        env = {**x.env, "TRAYAPP_DATA_DIR": str(data_dir), "TRAYAPP_CONFIG": str(Path(tmp) / "c.toml"), "TRAYAPP_NO_KEYRING": "1"}
        code = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from PySide6.QtWidgets import QApplication
from PySide6.QtGui import QColor, QPalette
from PySide6.QtCore import QTimer
from trayapp.gui.app import TrayApp
from trayapp.settings import Loaded, Config
import subprocess
app = QApplication([])
app.setQuitOnLastWindowClosed(False)
light = app.palette()
dark = QPalette(light)
for role, colour in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.Base, "#2b2c2f"),
                     (QPalette.ColorRole.Button, "#303134"), (QPalette.ColorRole.WindowText, "#e8eaed"),
                     (QPalette.ColorRole.Text, "#e8eaed"), (QPalette.ColorRole.ButtonText, "#e8eaed")):
    dark.setColor(role, QColor(colour))
config = Config(sampling_interval_seconds=1.0, alerts_desktop_notifications=True)
t = TrayApp(Loaded(config, Path({str(Path(tmp) / 'c.toml')!r}), []), Path({str(data_dir)!r}), Path({str(Path(tmp) / 'c.toml')!r}))
t.start()
def shoot(name, widget=None):
    args = ["import", "-window", "root"]
    if widget is not None:
        g = widget.frameGeometry()
        args += ["-crop", f"{{g.width()}}x{{g.height()}}+{{g.x()}}+{{g.y()}}"]
    subprocess.run(args + [{str(OUT)!r} + "/" + name], check=True)
def hover():
    g = t.window.geometry()
    subprocess.run(["xdotool", "mousemove", str(g.x() + int(g.width() * 0.62)), str(g.y() + int(g.height() * 0.42))])
steps = [
    lambda: (t.show_history(), t.window.setGeometry(40, 40, 1100, 760)),
    lambda: shoot("history.png", t.window),
    hover,
    lambda: shoot("history-hover.png", t.window),
    lambda: (subprocess.run(["xdotool", "mousemove", "5", "700"]), t.window.show_range(7 * 86400)),
    lambda: shoot("history-7d.png", t.window),
    lambda: t.window.show_range(365 * 86400),
    lambda: shoot("history-1y.png", t.window),
    lambda: (app.setPalette(dark), t.window.show_range(36 * 3600)),
    lambda: shoot("history-dark.png", t.window),
    lambda: (app.setPalette(light), t.window.show_range(36 * 3600)),
    lambda: [t.window.zoom_by(1 / 1.5) for _ in range(3)],  # +++: 10.7 h, raw samples
    lambda: t.window.pan_by(-0.5),
    lambda: shoot("history-zoom.png", t.window),
    lambda: t.window.show_range(30 * 86400),
    lambda: t.window.show_range(365 * 86400),
    lambda: t.window.show_range(600),  # the live view after other ranges: only its own samples
    lambda: shoot("history-live.png", t.window),
    lambda: (t.window.hide(), t.show_settings(), t.dialog.move(300, 120), t.dialog.tabs.setCurrentIndex(1)),
    lambda: shoot("settings-rules.png", t.dialog),
    lambda: t.dialog.tabs.setCurrentIndex(0),
    lambda: shoot("settings.png", t.dialog),
    lambda: (t.dialog.reject(), subprocess.run(["xdotool", "mousemove", "1268", "12"])),
    lambda: (shoot("tray.png"), t.quit()),
]
for i, f in enumerate(steps):
    QTimer.singleShot(4000 + 2500 * i, f)
app.exec()
"""
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=180)
        small_screen(data_dir, Path(tmp))
    subprocess.run(["convert", str(OUT / "tray.png"), "-crop", "600x110+680+0", "+repage", str(OUT / "tray.png")], check=True)
    print("\n".join(str(p) for p in sorted(OUT.glob("*.png"))))




def small_screen(data_dir: Path, tmp: Path) -> None:
    """The window on a 1366×768 screen at 2× (a laptop's HiDPI setting): history-2x.png."""
    with XSession(1366, 768) as x:
        env = {**x.env, "TRAYAPP_DATA_DIR": str(data_dir), "TRAYAPP_CONFIG": str(tmp / "c.toml"), "TRAYAPP_NO_KEYRING": "1",
               "QT_SCALE_FACTOR": "2"}
        code = f"""
import sys, subprocess
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QTimer
from trayapp.gui.app import TrayApp
from trayapp.settings import Loaded, Config
app = QApplication([])
app.setQuitOnLastWindowClosed(False)
t = TrayApp(Loaded(Config(sampling_interval_seconds=1.0), Path({str(tmp / 'c.toml')!r}), []), Path({str(data_dir)!r}), Path({str(tmp / 'c.toml')!r}))
t.start()
steps = [lambda: t.show_history(36 * 3600), lambda: subprocess.run(["import", "-window", "root", {str(OUT / "history-2x.png")!r}], check=True), t.quit]
for i, f in enumerate(steps):
    QTimer.singleShot(5000 + 3000 * i, f)
app.exec()
"""
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


if __name__ == "__main__":
    main()
    subprocess.run([sys.executable, str(ROOT / "tools" / "icon_sheet.py")], check=True)  # docs/screenshots/icons.png
