"""The panel items: the metrics a person picked, each its own tray icon beside the level icon, as a number or a 2-minute graph.

Imports Qt, ``model``, ``engine.describe`` and the level icon's colours; never the store or Slack.
"""

# One QSystemTrayIcon per metric is the portable way to put several items in a panel (XEmbed trays,
# StatusNotifier hosts, Windows, macOS all show one icon per QSystemTrayIcon, in the order they were
# shown; trayer packs each new one on the left of those before). An item's icon is a function of a
# small key (the short text or the graph's bucketed heights, its level), drawn once per key at the
# size the tray shows it (every tray size until the tray says) and cached, and set only when the
# key changes: on a tick where what an item shows stays the same it costs a few comparisons.
#
# Legibility on any panel: light glyphs inside a dark halo (numbers) or on a dark plate (graphs).
# A metric with a rule at orange shows orange glyphs underlined (number) or framed (graph); at red,
# white glyphs on a red plate: the shape says the level as well as the colour.

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache

from PySide6.QtCore import QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QGuiApplication, QIcon, QImage, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QSystemTrayIcon

from trayapp.engine import describe
from trayapp.gui.icon import COLORS, EDGE, GLYPH_LIGHT
from trayapp.model import Level, RuleResult, Sample, format_value, metric_label, metric_unit

SIZES = (16, 22, 24, 32, 44, 48)  # 32, 44 and 48 are 16, 22 and 24 at a 2x device pixel ratio
GRAPH_SECONDS = 120.0  # what a mini graph spans
GRAPH_BUCKETS = 8  # bars (or line points) in a graph: 15 s each, 2 px a bar at 16 px
GRAPH_STEPS = 16  # heights a bar can take: the graph is redrawn only when one moves a step
TOOLTIP_EVERY = 10.0  # seconds: an item's tooltip is set at least this often (it says the time of its reading)
TOOLTIP_AFTER = 3.0  # seconds: and once this old after the item was redrawn, not with every redraw
SIZE_EVERY = 60.0  # seconds: how long the tray's size for an item is taken as known
_SUFFIXES = ("", "K", "M", "G", "T")

renders = 0  # item images drawn since start (one key at one size each): tests count them


def short_number(value: float) -> str:
    """A number in at most four characters, whole (a decimal point does not read at 16 px; the
    tooltip has the exact value): ``7``, ``512``, ``1K``, ``12M``, ``740K``."""
    for suffix in _SUFFIXES:
        if abs(value) < 999.5 or suffix == _SUFFIXES[-1]:
            break
        value /= 1000.0
    return f"{value:.0f}{suffix}"


def short_text(metric: str, value: float | None) -> str:
    """What a number item shows for ``value``: ``34`` (%), ``61`` (°C), ``12M`` (B/s); the unit is on hover."""
    if value is None or not math.isfinite(value):
        return "–"
    if metric == "battery_plugged":
        return "AC" if value >= 0.5 else "bat"
    return short_number(value) if metric_unit(metric) in ("B/s", "RPM", "W") else f"{value:.0f}"


def metric_level(metric: str, results: tuple[RuleResult, ...]) -> Level | None:
    """ORANGE or RED where a rule on ``metric`` is there now; None otherwise (no rule, ok, unknown)."""
    level = Level.worst([r.level for r in results if r.metric == metric])
    return level if level in (Level.ORANGE, Level.RED) else None


def add_peak(peaks: "deque[tuple[int, float]]", at: float, value: float) -> bool:
    """Keep each 15-second bucket's highest value (a spike stays visible), the last
    ``GRAPH_BUCKETS`` of them, buckets on the clock's steps so that a graph moves a bucket at a
    time: O(1) a sample. True when a peak changed or a bucket began."""
    bucket = int(at // (GRAPH_SECONDS / GRAPH_BUCKETS))
    if peaks and bucket < peaks[-1][0]:
        peaks.clear()  # the clock went back: start again rather than draw the future
    if peaks and peaks[-1][0] == bucket:
        if value <= peaks[-1][1]:
            return False
        peaks[-1] = (bucket, value)
    else:
        peaks.append((bucket, value))
    while peaks[0][0] <= bucket - GRAPH_BUCKETS:
        peaks.popleft()
    return True


def graph_heights(peaks: "deque[tuple[int, float]]", now: float, metric: str) -> tuple[int | None, ...]:
    """The last ``GRAPH_SECONDS`` as ``GRAPH_BUCKETS`` heights from 0 to ``GRAPH_STEPS`` (None: no
    data then); shares on 0–100, anything else on 0–its peak in the graph."""
    last = int(now // (GRAPH_SECONDS / GRAPH_BUCKETS))
    slots: list[float | None] = [None] * GRAPH_BUCKETS
    for bucket, peak in peaks:
        i = bucket - last + GRAPH_BUCKETS - 1
        if 0 <= i < GRAPH_BUCKETS:
            slots[i] = peak
    top = 100.0 if metric_unit(metric) == "%" else max([p for p in slots if p is not None] + [0.0])
    if top <= 0:
        return tuple(None if p is None else 0 for p in slots)
    return tuple(None if p is None else max(0, min(GRAPH_STEPS, round(p / top * GRAPH_STEPS))) for p in slots)


# --------------------------------------------------------------------------- drawing


@lru_cache(maxsize=512)
def _fitted(text: str, width: float, height: float) -> tuple[QFont, QPointF]:
    """A bold font that makes ``text`` fill a ``width`` × ``height`` box (whichever binds), and
    where to draw it from for its ink to be centred there."""
    font = QFont()
    font.setBold(True)
    font.setPixelSize(100)
    ink = QFontMetricsF(font).tightBoundingRect(text)
    if ink.isEmpty():
        return font, QPointF(0, 0)
    font.setPixelSize(max(5, int(100 * min(width / ink.width(), height / ink.height()))))
    ink = QFontMetricsF(font).tightBoundingRect(text)
    return font, QPointF((width - ink.width()) / 2 - ink.left(), (height - ink.height()) / 2 - ink.top())


def _text(p: QPainter, text: str, box: QRectF, colour: QColor, halo: float = 0.0) -> None:
    """``text`` filling ``box``, in ``colour``, inside a dark ``halo`` px wide: the text drawn
    once in the edge colour and that image laid 12 times round it (far cheaper than stroking
    the glyphs' outline or drawing the text 12 times)."""
    font, at = _fitted(text, box.width(), box.height())
    at = at + box.topLeft()
    if halo > 0:
        device = p.device()
        edge = QImage(device.width(), device.height(), QImage.Format.Format_ARGB32_Premultiplied)
        edge.fill(Qt.GlobalColor.transparent)
        q = QPainter(edge)
        q.setFont(font)
        q.setPen(EDGE)
        q.drawText(at, text)
        q.end()
        p.save()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        for k in range(12):
            angle = 2 * math.pi * k / 12
            p.drawImage(QPointF(halo * math.cos(angle), halo * math.sin(angle)), edge)
        p.restore()
    p.setFont(font)
    p.setPen(colour)
    p.drawText(at, text)


def _plate(p: QPainter, s: float, colour: QColor, border: QColor | None = None) -> QRectF:
    rect = QRectF(0.5, 0.5, s - 1.0, s - 1.0)
    width = max(1.0, s / 16) * 1.5
    p.setPen(QPen(border, width) if border is not None else Qt.PenStyle.NoPen)
    p.setBrush(colour)
    if border is not None:
        rect = rect.adjusted(width / 2, width / 2, -width / 2, -width / 2)
    p.drawRoundedRect(rect, s / 8, s / 8)
    return rect


def render_number(text: str, level: Level | None, size: int) -> QImage:
    """A number item at ``size`` px: light bold digits in a dark halo; orange: orange digits
    underlined; red: white digits on a red plate."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = float(size)
    halo = max(1.25, s / 14)
    height = s * (0.7 if len(text) <= 2 else 0.6)
    if level is Level.RED:
        _plate(p, s, COLORS[Level.RED], EDGE)
        _text(p, text, QRectF(s * 0.12, (s - height) / 2, s * 0.76, height), GLYPH_LIGHT)
    else:
        bar = max(2.0, round(s / 8)) if level is Level.ORANGE else 0.0
        top = (s - bar - height) / 2 if bar else (s - height) / 2
        colour = COLORS[Level.ORANGE] if level is Level.ORANGE else GLYPH_LIGHT
        _text(p, text, QRectF(halo, top, s - 2 * halo, height), colour, halo)
        if bar:  # the underline: the shape that says "orange" without the hue
            line = QRectF(halo, s - bar - halo / 2, s - 2 * halo, bar)
            p.setPen(QPen(EDGE, halo))
            p.setBrush(colour)
            p.drawRoundedRect(line, bar / 3, bar / 3)
    p.end()
    return image


def render_graph(heights: tuple[int | None, ...], kind: str, level: Level | None, size: int) -> QImage:
    """A graph item at ``size`` px: bars (or a line) on a dark plate; orange: orange bars in an
    orange frame; red: white bars on a red plate."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = float(size)
    if level is Level.RED:
        inner = _plate(p, s, COLORS[Level.RED], EDGE)
        colour = GLYPH_LIGHT
    elif level is Level.ORANGE:
        inner = _plate(p, s, EDGE, COLORS[Level.ORANGE])
        colour = COLORS[Level.ORANGE]
    else:
        inner = _plate(p, s, EDGE)
        colour = GLYPH_LIGHT
    pad = max(1.0, s / 16)
    area = inner.adjusted(pad, pad, -pad, -pad)
    step = area.width() / len(heights)
    if kind == "line":
        points = [QPointF(area.left() + step * (i + 0.5), area.bottom() - area.height() * h / GRAPH_STEPS)
                  for i, h in enumerate(heights) if h is not None]
        p.setPen(QPen(colour, max(1.5, s / 12), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        p.setBrush(Qt.BrushStyle.NoBrush)
        if len(points) == 1:
            p.drawPoint(points[0])
        else:
            p.drawPolyline(QPolygonF(points))
    else:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        gap = 0.0 if s < 20 else max(1.0, step * 0.2)  # at 16 px a gap would eat half a bar
        for i, h in enumerate(heights):
            if h is None:
                continue
            height = max(1.0, area.height() * h / GRAPH_STEPS)  # a zero still shows as a floor line
            p.drawRect(QRectF(area.left() + step * i + gap / 2, area.bottom() - height, step - gap, height))
    p.end()
    return image


@lru_cache(maxsize=384)
def item_icon(kind: str, shown: "str | tuple[int | None, ...]", level: Level | None, sides: tuple[int, ...] = SIZES) -> QIcon:
    """The icon for one key, drawn at ``sides`` (the tray's own size once it is known, every tray
    size until then), cached: a number that comes back costs nothing."""
    global renders
    result = QIcon()
    for side in sides:
        renders += 1
        image = render_number(shown, level, side) if kind == "number" else render_graph(shown, kind, level, side)  # type: ignore[arg-type]
        result.addPixmap(QPixmap.fromImage(image))
    return result


# --------------------------------------------------------------------------- the items


class PanelItem:
    """One metric in the panel: its tray icon, the last key drawn, its last 2 minutes (graphs)."""

    def __init__(self, metric: str, kind: str, on_click: Callable[[str], None], parent: QObject) -> None:
        self.metric = metric
        self.kind = kind
        self.key: tuple | None = None
        self.redraws = 0  # setIcon calls: at most one a tick, none when nothing changed
        self.peaks: deque[tuple[int, float]] = deque()  # the graph's buckets: (bucket number, highest value)
        self._bucket = 0  # the graph bucket of the last sample
        self._sides_known: tuple[int, ...] | None = None  # the tray's size for this item, once it says
        self._sized_at = 0.0
        self.seeded = False  # a graph's 2 minutes filled from memory (once)
        self._tipped = -math.inf  # when the tooltip was last set
        self._tipped_key: tuple | None = None  # what the item showed then
        self.value: float | None = None  # as last sampled, for a redraw when the kind changes
        self.level: Level | None = None
        self.tray = QSystemTrayIcon(parent)
        self.tray.activated.connect(lambda reason: on_click(metric) if reason == QSystemTrayIcon.ActivationReason.Trigger else None)
        self._draw(self._key(None, None, time.time()))
        self.tray.setToolTip(f"{metric_label(metric)}: waiting for the first sample")

    def set_kind(self, kind: str) -> None:
        if kind != self.kind:
            self.kind = kind
            self.key = None

    def _key(self, value: float | None, level: Level | None, now: float) -> tuple:
        if self.kind == "number":
            return ("number", short_text(self.metric, value), level)
        return (self.kind, graph_heights(self.peaks, now, self.metric), level)

    def _draw(self, key: tuple) -> None:
        if key == self.key:
            return  # the same pixels: nothing to do
        self.key = key
        self.redraws += 1
        self.tray.setIcon(item_icon(*key, self._sides()))

    def _sides(self) -> tuple[int, ...]:
        """The size in pixels the tray shows this item at (one drawing, no scaling), where the
        tray says; every tray size where it does not (not shown yet, some StatusNotifier hosts).
        Asked of the tray at most every ``SIZE_EVERY`` seconds: on X11 it is a round trip."""
        now = time.monotonic()
        if self._sides_known is not None and now < self._sized_at + SIZE_EVERY:
            return self._sides_known
        area = self.tray.geometry()
        screen = QGuiApplication.primaryScreen()
        ratio = screen.devicePixelRatio() if screen is not None else 1.0
        self._sides_known = None if area.isEmpty() else (round(min(area.width(), area.height()) * ratio),)
        self._sized_at = now
        return self._sides_known or SIZES

    def seed(self, samples: "Iterable[Sample]") -> None:
        """A graph's last 2 minutes from samples already in memory (the live view's), so that a
        graph added in Settings, or shown at start, is not empty for 2 minutes."""
        for sample in samples:
            value = sample.values().get(self.metric)
            if value is not None and math.isfinite(value):
                add_peak(self.peaks, sample.timestamp.timestamp(), value)
        self.seeded = True

    def update(self, values: dict[str, float | None], results: tuple[RuleResult, ...], at: datetime) -> None:
        """One sample: the icon redrawn if what it shows changed; the tooltip once it is
        ``TOOLTIP_AFTER`` seconds old and the icon changed since, and at least every
        ``TOOLTIP_EVERY`` seconds (it says the time of its reading)."""
        now = at.timestamp()
        value = values.get(self.metric)
        level = metric_level(self.metric, results)
        if self.kind == "number":
            key = ("number", short_text(self.metric, value), level)
        else:  # the heights are worked out again only when a peak or the buckets moved
            moved = value is not None and math.isfinite(value) and add_peak(self.peaks, now, value)
            bucket = int(now // (GRAPH_SECONDS / GRAPH_BUCKETS))
            if moved or bucket != self._bucket or level != self.level or self.key is None or self.key[0] != self.kind:
                key = self._key(value, level, now)
            else:
                key = self.key
            self._bucket = bucket
        self.value, self.level = value, level
        self._draw(key)
        age = now - self._tipped
        if not 0 <= age < TOOLTIP_EVERY or (key != self._tipped_key and age >= TOOLTIP_AFTER):
            self._tipped, self._tipped_key = now, key
            self.tray.setToolTip(self.tooltip(value, results, at))

    def tooltip(self, value: float | None, results: tuple[RuleResult, ...], at: datetime) -> str:
        label = metric_label(self.metric)
        lines = [f"{label[:1].upper()}{label[1:]} {format_value(self.metric, value)}"]
        lines += [describe(r, for_people=True) for r in results if r.metric == self.metric]
        lines.append(f"at {time.strftime('%H:%M:%S', time.localtime(at.timestamp()))}; click for its history")
        return "\n".join(lines)


class Panel(QObject):
    """The panel items in the order asked, shown while the tray is; fed each tick."""

    def __init__(self, on_click: Callable[[str], None], parent: QObject | None = None,
                 recent: "Callable[[], Iterable[Sample]] | None" = None) -> None:
        """``recent``: the samples in memory (oldest first), that a new graph starts from."""
        super().__init__(parent)
        self.on_click = on_click
        self.recent = recent
        self.items: list[PanelItem] = []
        self.shown = False

    def set_items(self, wanted: tuple[tuple[str, str], ...]) -> None:
        """Add, remove and reorder items to match ``wanted`` ((metric, kind), …). Trays place icons
        in the order they are shown, so a new order is every item hidden, then shown in order."""
        if [(i.metric, i.kind) for i in self.items] == list(wanted):
            return
        old = {item.metric: item for item in self.items}
        was_order = [i.metric for i in self.items]
        items = []
        for metric, kind in wanted:
            item = old.pop(metric, None) or PanelItem(metric, kind, self.on_click, self)
            item.set_kind(kind)
            if item.key is None:  # a kind changed: drawn again at once, from what it has
                item._draw(item._key(item.value, item.level, time.time()))
            items.append(item)
        for gone in old.values():
            gone.tray.hide()
            gone.tray.deleteLater()
        self.items = items
        if self.shown:
            kept = [m for m in was_order if m in {i.metric for i in items}]
            same_start = [i.metric for i in items[:len(kept)]] == kept
            if not same_start:  # reordered: all go, then each in turn; only added at the end: those alone
                for item in items:
                    item.tray.hide()
            for item in items:
                item.tray.show()

    def apply(self, panel: tuple[tuple[str, str], ...]) -> None:
        self.set_items(panel)

    def on_tick(self, values: dict[str, float | None], results: tuple[RuleResult, ...], at: datetime) -> None:
        for item in self.items:
            if item.kind != "number" and not item.seeded and self.recent is not None:
                start = at.timestamp() - GRAPH_SECONDS
                item.seed(s for s in self.recent() if s.timestamp.timestamp() > start)
            item.update(values, results, at)

    def show(self) -> None:
        """After the level icon, so that the items sit beside it in order."""
        self.shown = True
        for item in self.items:
            item.tray.show()

    def shutdown(self) -> None:
        self.shown = False
        for item in self.items:
            item.tray.hide()
