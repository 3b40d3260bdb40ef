"""The tray icon, drawn: a disc in the level's colour with two small load bars (CPU, memory).

Imports Qt and ``model``. A light ring and a dark outline keep it readable on light and dark
panels at 16–24 px. The source art for packaging is ``resources/trayapp.svg``.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPainterPath, QPen, QPixmap

from trayapp.model import Level

COLORS = {
    Level.RED: QColor("#d93025"),
    Level.ORANGE: QColor("#f29900"),
    Level.OK: QColor("#1e8e3e"),  # a calm green
    Level.UNKNOWN: QColor("#80868b"),
}
SIZES = (16, 22, 24, 32, 48, 64)


def bucket(value: float | None, steps: int = 8) -> int | None:
    """Load in eighths: the icon only changes when what it shows changes."""
    if value is None:
        return None
    return max(0, min(steps, round(value / 100 * steps)))


def render(level: Level, cpu: int | None = None, memory: int | None = None, size: int = 64) -> QImage:
    """The icon at ``size`` px; ``cpu``/``memory`` are buckets from ``bucket`` (None: no bar)."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = float(size)
    outline = max(1.0, s / 16)
    disc = QRectF(outline / 2, outline / 2, s - outline, s - outline)
    p.setPen(QPen(QColor(20, 20, 20, 230), outline))
    p.setBrush(COLORS[level])
    p.drawEllipse(disc)
    inner = disc.adjusted(outline, outline, -outline, -outline)
    p.setPen(QPen(QColor(255, 255, 255, 150), outline * 0.75))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawEllipse(inner)
    bars = [b for b in (cpu, memory) if b is not None]
    if bars and size >= 16:
        # two white bars standing in the disc: their height is the load
        width = s * 0.16
        gap = s * 0.08
        bottom = s * 0.76
        full = s * 0.50
        left = s / 2 - width - gap / 2
        for i, b in enumerate((cpu, memory)):
            if b is None:
                continue
            x = left + i * (width + gap)
            height = max(outline, full * b / 8)
            path = QPainterPath()
            path.addRoundedRect(QRectF(x, bottom - full, width, full), width / 3, width / 3)
            p.fillPath(path, QColor(0, 0, 0, 70))
            bar = QPainterPath()
            bar.addRoundedRect(QRectF(x, bottom - height, width, height), width / 3, width / 3)
            p.fillPath(bar, QColor(255, 255, 255, 235))
    elif level is Level.UNKNOWN:
        p.setPen(QPen(QColor(255, 255, 255, 235), max(1.0, s / 10), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        p.drawPoint(QPointF(s / 2, s / 2))
    p.end()
    return image


@lru_cache(maxsize=256)
def icon(level: Level, cpu: int | None = None, memory: int | None = None) -> QIcon:
    """A QIcon with every tray size drawn crisp, cached per (level, cpu, memory) bucket."""
    result = QIcon()
    for size in SIZES:
        result.addPixmap(QPixmap.fromImage(render(level, cpu, memory, size)))
    return result
