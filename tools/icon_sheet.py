"""The tray icon sheet for the README: docs/screenshots/icons.png (every level × tray size).

    .venv/bin/python tools/icon_sheet.py [OUT.png] [--zoom N]

Rows: a light panel and a dark panel at 16, 22 and 24 px and at 2× (32, 44, 48 px), then the
same dark and light 24 px and 2x rows as seen with deuteranopia and with protanopia (Machado
2009, tests/cvd.py). Columns: ok, orange, red, unknown, then ok with load, sampling paused,
alerts snoozed. No data folder, no display needed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

from tests import cvd  # noqa: E402

LIGHT, DARK = (0xF1 / 255, 0xF3 / 255, 0xF4 / 255), (0x20 / 255, 0x21 / 255, 0x24 / 255)


def columns():
    from trayapp.model import Level

    return [
        ("ok", dict(level=Level.OK)),
        ("orange", dict(level=Level.ORANGE)),
        ("red", dict(level=Level.RED)),
        ("no verdict yet", dict(level=Level.UNKNOWN)),
        ("ok, CPU 40 %", dict(level=Level.OK, load=3)),
        ("red, CPU 90 %, paused", dict(level=Level.RED, load=7, paused=True)),
        ("orange, snoozed", dict(level=Level.ORANGE, load=5, snoozed=True)),
    ]


def band(background, sizes, cell: int) -> np.ndarray:
    """One panel colour: a row per size, a cell per column, as an (h, w, 3) array."""
    from trayapp.gui.icon import render

    cols = columns()
    out = np.empty((cell * len(sizes), cell * len(cols), 3))
    out[...] = background
    for row, size in enumerate(sizes):
        for col, (_, kw) in enumerate(cols):
            kw = dict(kw)
            level = kw.pop("level")
            rgba = cvd.image_rgba(render(level, size=size, **kw))
            y, x = row * cell + (cell - size) // 2, col * cell + (cell - size) // 2
            out[y:y + size, x:x + size] = cvd.composite(rgba, background)
    return out


def sheet(cell: int = 56) -> np.ndarray:
    sizes = (16, 22, 24, 32, 44, 48)
    normal = [band(LIGHT, sizes, cell), band(DARK, sizes, cell)]
    seen = [band(LIGHT, (24, 48), cell), band(DARK, (24, 48), cell)]
    rule = np.full((4, normal[0].shape[1], 3), 0.5)
    parts = [*normal]
    for kind in ("deuteranopia", "protanopia"):
        parts += [rule] + [cvd.simulate(b, kind) for b in seen]
    return np.concatenate(parts, axis=0)


def main() -> None:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])  # noqa: F841 (QPainter needs it)
    args = [a for a in sys.argv[1:] if not a.startswith("--zoom")]
    zoom = int(next((a.split("=")[1] for a in sys.argv[1:] if a.startswith("--zoom=")), "1"))
    out = Path(args[0]) if args else ROOT / "docs" / "screenshots" / "icons.png"
    pixels = sheet()
    if zoom > 1:
        pixels = pixels.repeat(zoom, axis=0).repeat(zoom, axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    cvd.from_array(pixels).save(str(out))
    print(out)


if __name__ == "__main__":
    main()
