"""The tray icon, drawn: one shape per level (reads without colour), a CPU load bar, badges.

Imports Qt and ``model`` only; never the engine, the store or Slack.
"""

# ok: a ring with a check; orange: a triangle with "!"; red: an octagon with "!"; unknown (not
# enough data yet): a ring of dots. The colours are the contract (``COLORS``); the shapes say the
# same to someone who cannot tell them apart. Below the shape (20 px and up) a horizontal bar
# shows the CPU load; badges in the top corners say "sampling paused" (two bars, top right) and
# "alerts snoozed" (a "z", top left); bottom right, "a remote machine is the cause" (two stacked
# bars, a rack of servers). A dark edge on the filled shapes and a light glyph keep it
# readable on light and dark panels. The app icon for packaging is ``resources/trayapp.svg``.

from __future__ import annotations

import math
from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPainterPath, QPainterPathStroker, QPen, QPixmap, QPolygonF

from trayapp.model import Level

COLORS = {
    Level.RED: QColor("#d93025"),
    Level.ORANGE: QColor("#f29900"),
    Level.OK: QColor("#1e8e3e"),  # a calm green
    Level.UNKNOWN: QColor("#80868b"),
}
SIZES = (16, 22, 24, 32, 44, 48, 64)  # 32 and 44 are 16 and 22 at a 2x device pixel ratio
EDGE = QColor(20, 20, 20, 230)  # the dark edge that shows the shape on a light panel
GLYPH_DARK = QColor(32, 33, 36)
GLYPH_LIGHT = QColor(255, 255, 255)
BAR_FROM = 20  # px: below this the load bar is left out (the shape needs every pixel)


def bucket(value: float | None, steps: int = 8) -> int | None:
    """Load in eighths: the icon only changes when what it shows changes."""
    if value is None:
        return None
    return max(0, min(steps, round(value / 100 * steps)))


def _polygon(cx: float, cy: float, radius: float, corners: int, turn: float) -> QPainterPath:
    points = [QPointF(cx + radius * math.cos(turn + 2 * math.pi * i / corners),
                      cy + radius * math.sin(turn + 2 * math.pi * i / corners)) for i in range(corners)]
    path = QPainterPath()
    path.addPolygon(QPolygonF(points))
    path.closeSubpath()
    return path


def _stroke(path: QPainterPath, width: float, cap=Qt.PenCapStyle.RoundCap) -> QPainterPath:
    """The outline of ``path`` drawn with a pen of ``width``, as a fillable area."""
    stroker = QPainterPathStroker()
    stroker.setWidth(width)
    stroker.setCapStyle(cap)
    stroker.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return stroker.createStroke(path).simplified()


def _edged(p: QPainter, area: QPainterPath, colour: QColor, edge: float) -> None:
    """Fill ``area`` with ``colour`` on top of a dark edge ``edge`` px wide all round."""
    p.setPen(QPen(EDGE, 2 * edge, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawPath(area)
    p.fillPath(area, colour)


def _bang(p: QPainter, cx: float, top: float, bottom: float, width: float, colour: QColor) -> None:
    """An exclamation mark: a bar from ``top`` and a dot ending at ``bottom``."""
    dot = width * 1.05
    gap = max(1.0, width * 0.45)
    bar = QPainterPath()
    bar.addRoundedRect(QRectF(cx - width / 2, top, width, bottom - top - dot - gap), width / 3, width / 3)
    bar.addEllipse(QRectF(cx - dot / 2, bottom - dot, dot, dot))
    p.fillPath(bar, colour)


def _shape(p: QPainter, level: Level, x: float, y: float, a: float) -> None:
    """The level's shape in the square (x, y, a × a)."""
    colour = COLORS[level]
    edge = max(1.0, a / 20)
    cx, cy = x + a / 2, y + a / 2
    if level is Level.RED:
        # a stop sign: a filled octagon, flat top, a white "!"
        radius = (a / 2 - edge) / math.cos(math.pi / 8)
        octagon = _polygon(cx, cy, min(radius, a / 2 - edge * 0.5), 8, math.pi / 8)
        _edged(p, octagon, colour, edge)
        _bang(p, cx, y + a * 0.2, y + a * 0.8, max(1.6, a * 0.17), GLYPH_LIGHT)
    elif level is Level.ORANGE:
        # a warning sign: a filled triangle, point up, a dark "!"
        top, base = y + edge * 1.2, y + a - edge * 1.2
        half = (base - top) / math.sqrt(3) * 1.08
        path = QPainterPath(QPointF(cx, top))
        path.lineTo(QPointF(cx + min(half, a / 2 - edge), base))
        path.lineTo(QPointF(cx - min(half, a / 2 - edge), base))
        path.closeSubpath()
        rounded = path.united(_stroke(path, edge * 0.8))  # soften the corners a little
        _edged(p, rounded, colour, edge)
        _bang(p, cx, top + (base - top) * 0.34, base - (base - top) * 0.1, max(1.6, a * 0.15), GLYPH_DARK)
    else:
        # a ring: whole with a check for ok, of dots and empty for "not enough data yet"
        ring_width = max(1.6, a * 0.13)
        radius = a / 2 - ring_width / 2 - 0.5
        circle = QPainterPath()
        circle.addEllipse(QPointF(cx, cy), radius, radius)
        if level is Level.OK:
            ring = _stroke(circle, ring_width)
            check = QPainterPath(QPointF(x + a * 0.31, y + a * 0.52))
            check.lineTo(QPointF(x + a * 0.45, y + a * 0.66))
            check.lineTo(QPointF(x + a * 0.70, y + a * 0.36))
            # no dark edge: the green stands out from light and dark panels by itself, and
            # the panel showing inside the ring is what tells it from a filled shape
            p.fillPath(ring, colour)
            p.fillPath(_stroke(check, max(1.5, a * 0.12)), colour)
        else:
            # a ring of separate dots, like a "still working on it" spinner; grey stands out
            # from light and dark panels alike, so no dark edge to blur the dots together
            dot = max(1.3, ring_width * 0.62)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            for i in range(8):
                angle = 2 * math.pi * i / 8
                p.drawEllipse(QPointF(cx + radius * math.cos(angle), cy + radius * math.sin(angle)), dot, dot)


def _load_bar(p: QPainter, s: float, top: float, height: float, load: int) -> None:
    track = QRectF(0.5, top, s - 1.0, height)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(EDGE)
    p.drawRoundedRect(track, height / 3, height / 3)
    inner = track.adjusted(1.0, 1.0, -1.0, -1.0) if height >= 4 else track.adjusted(0.5, 0.5, -0.5, -0.5)
    if load > 0:
        inner.setWidth(inner.width() * load / 8)
        p.setBrush(GLYPH_LIGHT)
        p.drawRect(inner)


def _badge(p: QPainter, cx: float, cy: float, radius: float, kind: str) -> None:
    """A dark disc with a thin light rim in a corner: "paused" (two bars), "remote" (two stacked bars) or "snoozed" (a z),
    the glyph as large and as thick as the disc allows, so it reads at 22 px."""
    rim = max(0.75, radius * 0.12)
    p.setPen(QPen(GLYPH_LIGHT, rim))
    p.setBrush(GLYPH_DARK)
    p.drawEllipse(QPointF(cx, cy), radius, radius)
    inner = radius * 0.56
    pen = QPen(GLYPH_LIGHT, max(1.25, radius * 0.3), Qt.PenStyle.SolidLine, Qt.PenCapStyle.FlatCap, Qt.PenJoinStyle.MiterJoin)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    if kind == "paused":
        for dx in (-inner * 0.55, inner * 0.55):
            p.drawLine(QPointF(cx + dx, cy - inner), QPointF(cx + dx, cy + inner))
    elif kind == "remote":
        for dy in (-inner * 0.55, inner * 0.55):
            p.drawLine(QPointF(cx - inner, cy + dy), QPointF(cx + inner, cy + dy))
    else:
        z = QPainterPath(QPointF(cx - inner, cy - inner))
        z.lineTo(QPointF(cx + inner, cy - inner))
        z.lineTo(QPointF(cx - inner, cy + inner))
        z.lineTo(QPointF(cx + inner, cy + inner))
        p.drawPath(z)


def render(level: Level, load: int | None = None, size: int = 64, paused: bool = False, snoozed: bool = False,
           remote: bool = False) -> QImage:
    """The icon at ``size`` px. ``load`` is the CPU load as a ``bucket`` (None: no bar);
    ``paused``/``snoozed``/``remote`` (the level is another machine's) add their badges."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = float(size)
    if load is not None and size >= BAR_FROM:
        bar = max(3.0, round(s / 8))
        a = s - bar - max(1.0, round(s / 24))
        _shape(p, level, (s - a) / 2, 0.0, a)
        _load_bar(p, s, s - bar, bar, load)
    else:
        _shape(p, level, 0.0, 0.0, s)
    radius = max(5.0, s * 0.28) if size < 32 else s * 0.22  # a badge legible at 16-24 px takes more of the icon
    if paused:
        _badge(p, s - radius, radius, radius, "paused")
    if snoozed:
        _badge(p, radius, radius, radius, "snoozed")
    if remote:
        _badge(p, s - radius, s - radius, radius, "remote")
    p.end()
    return image


@lru_cache(maxsize=256)
def icon(level: Level, load: int | None = None, paused: bool = False, snoozed: bool = False, remote: bool = False) -> QIcon:
    """A QIcon with every tray size drawn crisp, cached per (level, load bucket, badges)."""
    result = QIcon()
    for size in SIZES:
        result.addPixmap(QPixmap.fromImage(render(level, load, size, paused, snoozed, remote)))
    return result
