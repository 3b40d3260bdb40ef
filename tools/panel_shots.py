"""Screenshots of panel items for the README: the real app in trayer under Xvfb, light and dark panel.

    .venv/bin/python tools/panel_shots.py   # writes docs/screenshots/panel-1x.png and panel-2x.png

36 hours of CPU at 85 % (its rule orange) and memory at 95 % (red) are written first, so that
those numbers show their levels; the disk, the busiest core and the load have no rule and stay
plain. The four sessions (1x and 2x, light and dark) run at once for a little over 2 minutes, so
that the graphs are full. Each picture is the tray cropped, the light panel above the dark one.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.xsession import XSession  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
ITEMS = "cpu_percent:number, memory_percent:number, disk_percent:number, cpu_core_max_percent:bars, load_percent:line"
PANELS = {"light": "0xe8e8e8", "dark": "0x202124"}
SCALES = (1, 2)


def start(stack: ExitStack, tmp: Path, scale: int, panel: str) -> XSession:
    from trayapp.synthetic import write_history

    data = tmp / f"data-{scale}-{panel}"
    now = datetime.now(timezone.utc)
    write_history(data, now - timedelta(hours=36), now, 60, {"cpu_percent": 85.0, "memory_percent": 95.0, "disk_percent": 40.0})
    config = tmp / "config.toml"
    config.write_text(f'[sampling]\ninterval_seconds = 1.0\n[alerts]\ndesktop_notifications = false\n[panel]\nitems = "{ITEMS}"\n')
    x = stack.enter_context(XSession(tray=False))
    x.procs.append(subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", str(24 * scale),
         "--SetDockType", "true", "--transparent", "true", "--alpha", "0", "--tint", PANELS[panel]],
        env=x.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    env = {**x.env, "TRAYAPP_DATA_DIR": str(data), "TRAYAPP_CONFIG": str(config), "TRAYAPP_NO_KEYRING": "1",
           "QT_SCALE_FACTOR": str(scale)}
    x.procs.append(subprocess.Popen([sys.executable, "-m", "trayapp.cli"], env=env, stderr=subprocess.DEVNULL))
    return x


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        sessions = {(scale, panel): start(stack, Path(tmp), scale, panel) for scale in SCALES for panel in PANELS}
        time.sleep(130)  # the graphs' 2 minutes
        crops = {}
        for (scale, panel), x in sessions.items():
            shot = x.screenshot(Path(tmp) / f"screen-{scale}-{panel}.png")
            height = 24 * scale
            width = 7 * height
            crops[scale, panel] = Path(tmp) / f"panel-{scale}-{panel}.png"
            subprocess.run(["convert", str(shot), "-crop", f"{width}x{height}+{1024 - width}+0", "+repage",
                            str(crops[scale, panel])], check=True)
        for scale in SCALES:
            subprocess.run(["convert", *(str(crops[scale, panel]) for panel in PANELS), "-append",
                            str(OUT / f"panel-{scale}x.png")], check=True)


if __name__ == "__main__":
    main()
