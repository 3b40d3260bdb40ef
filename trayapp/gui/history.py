"""The history window: a live view (last 10 minutes, from memory) and 36 h / 7 d / 30 d / 1 y from disk; a remote machine's from Prometheus.

Imports Qt, pyqtgraph, numpy and the core. In the recorder's process it reads through
``history.prepare_history`` with the recorder's minute bins and rows file, which never loads
pyarrow or pandas. Every plot item is made once and updated in place: the window stays open for months.
"""

from __future__ import annotations

import html
import logging
import subprocess
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPoint, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics, QKeySequence, QPainterPath, QPalette, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from trayapp import self_command
from trayapp.attribution import describe_contributors
from trayapp.engine import rule_keys
from trayapp.gui.live import LIVE_SECONDS, LiveBuffer
from trayapp.storage import MinuteBins, Series, clock_or_day, median, plotted_columns, prepare_history, series_from_memory
from trayapp.gui.now import NowPanel
from trayapp.heap import release_memory
from trayapp.model import Level, RuleResult, format_value, metric_label, metric_range, metric_unit
from trayapp.rules import Rule, human_duration
from trayapp.settings import Config
from trayapp.gui.plotlib import import_pyqtgraph

pg = import_pyqtgraph()  # Qt's classes created as used, not all at once (plotlib)

log = logging.getLogger(__name__)

RANGES = (("Live", LIVE_SECONDS), ("36 h", 36 * 3600), ("7 d", 7 * 86400), ("30 d", 30 * 86400), ("1 y", 365 * 86400))
LEVEL_COLORS = {Level.RED: "#d93025", Level.ORANGE: "#f29900", Level.OK: "#1e8e3e", Level.UNKNOWN: "#80868b"}
ORANGE, RED = LEVEL_COLORS[Level.ORANGE], LEVEL_COLORS[Level.RED]
ZOOM_REREAD = 0.4  # a zoom to less than this share of what was read reads finer data for it
LOADING = "Loading…"
LOADING_FINER = "Loading finer data…"
TIME_MIN, TIME_MAX = 946684800.0, 4102444800.0  # 2000-01-01 and 2100-01-01, UTC
LEFT_WIDTH = 40  # the value axes: at least this wide
MARGIN_WIDTH = 96  # the right margin's labels (thresholds, a rule's average): at least this wide
NOW_MIN_HEIGHT = 560  # a window shorter than this hides the Now panel: the plots need the room
FEW = 0.02  # a range whose first sample is this share of it from its end says how little it holds
REMOTE_LIVE_EVERY = 5.0  # seconds between reads of a remote machine's live view (Prometheus scrapes every 15 s by default)
THIS_MACHINE = "This machine"
HINT = "Hover for values · drag across a stretch, Ctrl+wheel or +/− zoom · Shift+drag or ←/→ pan · double-click resets"
ZOOM_STEP = 1.5  # +/− and a wheel notch with Ctrl zoom time by this factor
PAN_STEP = 0.25  # ←/→ move the view by this share of its width


@dataclass(frozen=True)
class Theme:
    """Colours for the plots, from the system palette (light or dark)."""

    dark: bool
    background: str
    foreground: str
    muted: str
    line: str
    mean: str
    band: tuple[int, int, int, int]

    @property
    def band_edge(self) -> tuple[int, int, int, int]:
        """The band's colour, twice as opaque: its edges, and its swatch in the legend."""
        return (*self.band[:3], min(255, self.band[3] * 2))

    @classmethod
    def from_palette(cls, palette: QPalette) -> "Theme":
        if palette.color(QPalette.ColorRole.Window).lightness() < 128:
            return cls(True, palette.color(QPalette.ColorRole.Base).name(), "#e8eaed", "#9aa0a6",
                       "#8ab4f8", "#d2e3fc", (138, 180, 248, 85))
        return cls(False, "#ffffff", "#202124", "#5f6368", "#1a73e8", "#174ea6", (26, 115, 232, 75))


class DayAxis(pg.DateAxisItem):
    """A time axis that says which day it is: ``Mon 24``, ``Tue 25 06:00``, ``14:30``."""

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        low, high = self.range
        return day_labels(values, spacing, high - low, low)


def day_labels(values, spacing: float, shown: float = 0.0, low: float | None = None) -> list[str]:
    """Labels for ticks at ``values`` (epoch seconds), ``spacing`` seconds apart, in local time,
    on an axis showing ``shown`` seconds from ``low``.

    Month ticks say the month (and the year in January), year ticks the year; in a view of a few
    weeks a month's tick is a day like the others (``Tue 01``). Day ticks say the day; finer ticks
    say the time, and the day as well at midnight and on the first tick, so every view tells which
    day it shows; not on the first tick when that day's midnight is on screen (pyqtgraph labels
    each level of ticks apart, and a coarser level's midnight already says it)."""
    out = []
    for i, value in enumerate(values):
        try:
            moment = datetime.fromtimestamp(float(value))
        except (OverflowError, OSError, ValueError):
            out.append("")
            continue
        if spacing >= 28 * 86400 and shown and shown < 60 * 86400:
            out.append(moment.strftime("%a %d"))
        elif spacing >= 365 * 86400:
            out.append(moment.strftime("%Y"))
        elif spacing >= 28 * 86400:
            out.append(moment.strftime("%b %Y" if moment.month == 1 else "%b"))
        elif spacing >= 86400:
            out.append(moment.strftime("%a %d"))
        elif (moment.hour, moment.minute, moment.second) == (0, 0, 0):
            out.append(moment.strftime("%a %d"))
        else:
            clock = moment.strftime("%H:%M:%S" if spacing < 60 else "%H:%M")
            said = low is not None and moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() >= low
            out.append(f"{moment.strftime('%a %d')} {clock}" if i == 0 and spacing >= 3600 and not said else clock)
    return out


def span_text(start: float, end: float) -> str:
    """The stretch on screen, for people: ``Thu 3 Dec 14:00 – Fri 4 Dec 02:00 (12 h)``; seconds
    where the view is that short, the year where it is not this one."""
    try:
        a, b = datetime.fromtimestamp(start), datetime.fromtimestamp(end)
    except (OverflowError, OSError, ValueError):
        return ""
    clock = "%H:%M:%S" if end - start < 600 else "%H:%M"
    year = " %Y" if a.year != datetime.now().year or b.year != a.year else ""
    first = a.strftime(f"%a %d %b{year} {clock}")
    last = b.strftime(clock if b.date() == a.date() else f"%a %d %b{year} {clock}")
    seconds = max(end - start, 0.0)
    if seconds < 600:  # a short view says its length exactly: 1 min 30 s, not 2 min
        minutes, rest = divmod(int(round(seconds)), 60)
        length = " ".join(filter(None, [f"{minutes} min" if minutes else "", f"{rest} s" if rest or not minutes else ""]))
    else:
        length = human_duration(seconds)
    return f"{first} – {last} ({length})"


class MarginAxis(pg.AxisItem):
    """The right-hand axis: threshold and average labels in the margin, each in its own colour,
    pushed apart where they would overlap, so no label ever sits on the data or on another."""

    def __init__(self) -> None:
        super().__init__("right")
        self.marks: list[tuple[float, str, str]] = []  # (value, text, colour)
        self.setWidth(MARGIN_WIDTH)

    def needed_width(self) -> int:
        """Room for the longest label (``30 min avg 100``) beside the 7 px tick."""
        return widest_text(self, [text for _, text, _ in self.marks]) + 12 if self.marks else 0

    def set_marks(self, marks: list[tuple[float, str, str]]) -> None:
        marks = sorted(marks)
        if marks != self.marks:
            self.marks = marks
            self.picture = None
            self.update()

    def tickValues(self, minVal, maxVal, size):  # noqa: N802,N803 (pyqtgraph's names)
        return [(1.0, [v for v, _, _ in self.marks if minVal <= v <= maxVal])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        return ["" for _ in values]  # drawn by drawPicture, where they do not overlap

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):  # noqa: N802
        p.setRenderHint(p.RenderHint.TextAntialiasing, True)
        for pen, p1, p2 in tickSpecs:
            p.setPen(pen)
            p.drawLine(p1, p2)
        view = self.linkedView()
        if view is None or not self.marks:
            return
        height = p.fontMetrics().height()
        low, high = view.viewRange()[1]
        placed: list[list] = []  # [y, text, colour], top to bottom
        for value, text, colour in sorted(self.marks, reverse=True):
            if low <= value <= high:
                y = self.mapFromScene(view.mapViewToScene(pg.Point(0, value))).y()
                placed.append([y, text, colour])
        for i in range(1, len(placed)):  # push each label below the one above it
            placed[i][0] = max(placed[i][0], placed[i - 1][0] + height)
        bottom = self.boundingRect().bottom() - height / 2
        for i in range(len(placed) - 1, -1, -1):  # and back up from the bottom edge
            limit = bottom if i == len(placed) - 1 else placed[i + 1][0] - height
            placed[i][0] = min(placed[i][0], limit)
        for y, text, colour in placed:
            p.setPen(pg.mkPen(colour))
            p.drawText(pg.QtCore.QRectF(7, y - height / 2, self.width() - 7, height),
                       int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)


class UnitAxis(pg.AxisItem):
    """A value axis in the metric's own units: ``740 KB/s``, ``12 MB/s``, ``1,850 RPM``."""

    def __init__(self, column: str) -> None:
        super().__init__("left")
        self.column = column

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        return [format_value(self.column, v).replace(" RPM", "") for v in values]


def widest_text(axis: pg.AxisItem, texts: list[str]) -> int:
    """The widest of ``texts`` in the font ``axis`` draws its labels in."""
    metrics = QFontMetrics(axis.style.get("tickFont") or QApplication.font())
    return max(metrics.horizontalAdvance(text) for text in texts)


PLOT_MIN_HEIGHT = 64  # the least a plot needs to read; more plots than fit scroll
PLOT_MAX_HEIGHT = 150
PLOTS_IN_VIEW = 6  # as many plots as fit are shown at once, down to PLOT_MIN_HEIGHT each


class TimeViewBox(pg.ViewBox):
    """A plot's view of time, as on the rest of a desktop: the wheel scrolls the page (Ctrl+wheel
    zooms), a drag across a stretch zooms to it (Shift+drag or the middle button pans)."""

    def wheelEvent(self, ev, axis=None):  # noqa: N802 (pyqtgraph's name)
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
        else:
            ev.ignore()  # to the scroll area: the next plot, not a zoom out

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802
        pan = ev.button() == Qt.MouseButton.MiddleButton or bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if axis is not None or pan or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        down = ev.buttonDownPos(ev.button())
        box = self.boundingRect()
        if not ev.isFinish():
            self.updateScaleBox(pg.Point(down.x(), box.top()), pg.Point(ev.pos().x(), box.bottom()))
            return
        self.rbScaleBox.hide()
        if abs(ev.pos().x() - down.x()) >= 4:  # a stretch, not a shaky click
            a, b = sorted((self.mapToView(down).x(), self.mapToView(ev.pos()).x()))
            self.setXRange(a, b, padding=0)


def recorded_since(series: Series) -> float | None:
    """The earliest moment any curve of ``series`` has a value at, or None if none has one."""
    firsts = [float(t[np.flatnonzero(np.isfinite(y))[0]]) for t, y in series.curves.values() if len(t) and np.isfinite(y).any()]
    return min(firsts) if firsts else None


def band_path(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> QPainterPath:
    """The area between ``lo`` and ``hi`` as one path: a polygon per run of bins that have a
    value (out along ``hi``, back along ``lo``), a gap where a bin has none. Built in one
    vectorised call; pyqtgraph's FillBetweenItem walks its two curves' paths in Python (~4 ms a
    plot and a range)."""
    ok = ~(np.isnan(lo) | np.isnan(hi))
    if not ok.any():
        return QPainterPath()
    edges = np.diff(np.r_[0, ok.astype(np.int8), 0])
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    xs, ys, connect = [], [], []
    for a, b in zip(starts, stops):
        xs += [x[a:b], x[a:b][::-1]]
        ys += [hi[a:b], lo[a:b][::-1]]
        joined = np.ones(2 * (b - a), dtype=np.int32)
        joined[-1] = 0  # the next run starts a new polygon
        connect.append(joined)
    return pg.arrayToQPath(np.concatenate(xs), np.concatenate(ys), connect=np.concatenate(connect))


class LitePlot(pg.GraphicsLayout):
    """What the window uses of pyqtgraph's ``PlotItem``, laid out as it lays it out (a title row,
    the view box between its left and right axes, the time axis below), without what it builds
    for its options panel and menus (~0.5 MB a plot, a dozen plots: issue 10's 150 MB)."""

    sigXRangeChanged = Signal(object, object)

    def __init__(self, axisItems: dict[str, pg.AxisItem]) -> None:  # noqa: N803 - PlotItem's keyword
        super().__init__()
        layout = self.layout
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setHorizontalSpacing(0)
        layout.setVerticalSpacing(0)
        self.vb = TimeViewBox(parent=self, enableMenu=False)
        self.vb.sigXRangeChanged.connect(self.sigXRangeChanged)
        layout.addItem(self.vb, 2, 1)
        self.axes: dict[str, pg.AxisItem] = {}
        for side, pos in (("bottom", (3, 1)), ("left", (2, 0)), ("right", (2, 2))):
            axis = axisItems.get(side) or pg.AxisItem(orientation=side, parent=self)
            axis.linkToView(self.vb)
            layout.addItem(axis, *pos)
            axis.setZValue(0.5)  # over images, under what draws over the axes (as PlotItem)
            axis.setFlag(QGraphicsItem.GraphicsItemFlag.ItemNegativeZStacksBehindParent)
            self.axes[side] = axis
        self.titleLabel = pg.LabelItem("", size="11pt", parent=self)
        layout.addItem(self.titleLabel, 0, 1)
        self.titleLabel.setVisible(False)
        for i in range(4):
            layout.setRowPreferredHeight(i, 0)
            layout.setRowMinimumHeight(i, 0)
            layout.setRowSpacing(i, 0)
            layout.setRowStretchFactor(i, 1)
        for i in range(3):
            layout.setColumnPreferredWidth(i, 0)
            layout.setColumnMinimumWidth(i, 0)
            layout.setColumnSpacing(i, 0)
            layout.setColumnStretchFactor(i, 1)
        layout.setRowStretchFactor(2, 100)
        layout.setColumnStretchFactor(1, 100)
        layout.setRowFixedHeight(0, 0)

    def getAxis(self, side: str) -> pg.AxisItem:  # noqa: N802 - PlotItem's names, so callers read alike
        return self.axes[side]

    def addItem(self, item: Any, ignoreBounds: bool = False) -> None:  # noqa: N802, N803
        self.vb.addItem(item, ignoreBounds=ignoreBounds)

    def removeItem(self, item: Any) -> None:  # noqa: N802
        self.vb.removeItem(item)

    def plot(self, **kwargs: Any) -> pg.PlotDataItem:
        item = pg.PlotDataItem(**kwargs)
        self.vb.addItem(item)
        return item

    def setTitle(self, title: str, **args: Any) -> None:  # noqa: N802
        self.titleLabel.setText(title, **args)
        self.titleLabel.setVisible(True)

    def showGrid(self, x: bool, y: bool, alpha: float) -> None:  # noqa: N802
        value = int(np.clip(alpha, 0, 1) * 255)  # PlotItem's grid: x on the time axis, y on both sides
        self.axes["bottom"].setGrid(value if x else False)
        for side in ("left", "right"):
            self.axes[side].setGrid(value if y else False)

    def setLabel(self, side: str, text: str | None = None, **args: Any) -> None:  # noqa: N802
        self.axes[side].setLabel(text, **args)

    def setXLink(self, other: "LitePlot") -> None:  # noqa: N802
        self.vb.setXLink(other.vb)

    def viewRange(self) -> list:  # noqa: N802
        return self.vb.viewRange()

    def setXRange(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        self.vb.setXRange(*args, **kwargs)

    def setYRange(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        self.vb.setYRange(*args, **kwargs)

    def setLimits(self, **kwargs: Any) -> None:  # noqa: N802
        self.vb.setLimits(**kwargs)

    def enableAutoRange(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        self.vb.enableAutoRange(*args, **kwargs)

    def setMouseEnabled(self, x: bool, y: bool) -> None:  # noqa: N802
        self.vb.setMouseEnabled(x=x, y=y)


class MetricPlot:
    """One metric's plot: a min–max band, the sample line, hourly (or daily) means, thresholds and each
    rule's window average. Everything is created here once and updated in place."""

    def __init__(self, window: "HistoryWindow", name: str, row: int) -> None:
        self.name = name
        self.unit = metric_unit(name)
        self._axis_width: int | None = None
        self.margin = MarginAxis()
        axes = {"bottom": DayAxis(orientation="bottom"), "right": self.margin}
        if self.unit not in ("%", "°C"):
            axes["left"] = UnitAxis(name)
        self.plot = LitePlot(axes)  # no pyqtgraph menus: the window's own menu replaces them
        window.graphics.addItem(self.plot, row=row, col=0)
        plot = self.plot
        # above the plot (a left label would not fit a short plot); rates say their unit on the axis
        self.title = metric_label(name) if self.unit in ("B/s", "") else f"{metric_label(name)} ({self.unit})"
        plot.getAxis("left").setWidth(LEFT_WIDTH)  # then as wide as the widest plot's needs (``_align_axes``)
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setMouseEnabled(x=True, y=False)
        # time stays between 2000 and 2100 and no narrower than 10 s, however far a wheel turns
        plot.setLimits(xMin=TIME_MIN, xMax=TIME_MAX, minXRange=10)
        if self.unit == "%":
            plot.setYRange(0, 105, padding=0)
            plot.setLimits(yMin=-5, yMax=110)
            # 0, 50 and 100 labelled, a grid line every 25: a 64 px plot had 20, 40, 60, 80 on top of each other
            plot.getAxis("left").setTickSpacing(levels=[(50.0, 0.0), (25.0, 0.0)])
            plot.getAxis("left").setStyle(maxTextLevel=0)
        else:  # rates, °C, RPM, W: scaled to what is shown (rates from 0)
            plot.enableAutoRange(axis="y")
            if self.unit in ("B/s", "RPM", "W"):
                plot.setLimits(yMin=0)
            # no span narrower than the units read whole: an idle network (all zeros) was ticked
            # 0, 0, 1, 1 B/s, each tick rounded to the unit
            plot.setLimits(minYRange={"B/s": 1024.0, "RPM": 10.0}.get(self.unit, 1.0))
        self.lo = pg.PlotCurveItem(connect="finite")
        self.hi = pg.PlotCurveItem(connect="finite")
        self.band = QGraphicsPathItem()  # filled between lo and hi (band_path): no FillBetweenItem rebuild per edge
        plot.addItem(self.band)
        for edge in (self.lo, self.hi):  # the band's edges: where min = max (one sample a bin) it is a line
            plot.addItem(edge)
        self.line = plot.plot(connect="finite")
        self.mean = plot.plot(connect="finite")
        self.cross = pg.InfiniteLine(angle=90, movable=False)
        self.cross.setVisible(False)
        plot.addItem(self.cross, ignoreBounds=True)
        self.rules: dict[str, tuple[pg.InfiniteLine, pg.InfiniteLine, pg.PlotDataItem]] = {}
        self.binned = False
        self.style(window.theme)

    def value_axis_width(self) -> int:
        """Room for the widest tick label this plot's value axis can show (``1.50 MB/s``); measured
        once (the window aligns the axes at every tick while it is open)."""
        if self._axis_width is None:
            self._axis_width = self._measure_value_axis()
        return self._axis_width

    def _measure_value_axis(self) -> int:
        axis = self.plot.getAxis("left")
        if isinstance(axis, UnitAxis):
            top = metric_range(self.name)[1]
            labels = axis.tickStrings([1.5 * 10.0 ** k for k in range(13) if 1.5 * 10.0 ** k <= top] or [1.0], 1.0, 1.0)
        else:
            labels = ["100"]
        return widest_text(axis, labels) + 14  # the tick and the gap beside it

    def show_value(self, text: str, theme: Theme) -> None:
        """The value under the pointer beside the plot's title (``CPU (%) · 42.0 %``), so every
        plot says it where a readout line would be cut; '' puts the title back."""
        shown = f"{html.escape(self.title)} &nbsp;<b>{html.escape(text)}</b>" if text else html.escape(self.title)
        if shown != self._title_shown:
            self._title_shown = shown
            self.plot.setTitle(shown, justify="left", size="9pt", color=theme.foreground)

    def style(self, theme: Theme) -> None:
        self._title_shown = html.escape(self.title)
        self.plot.setTitle(self._title_shown, justify="left", size="9pt", color=theme.foreground)
        self.plot.titleLabel.setMaximumHeight(18)  # pyqtgraph reserves 30 px: too much for six plots
        self.plot.layout.setRowFixedHeight(0, 18)
        for side in ("left", "bottom", "right"):
            axis = self.plot.getAxis(side)
            axis.setPen(pg.mkPen(theme.muted))
            axis.setTextPen(pg.mkPen(theme.foreground))
        self.band.setBrush(pg.mkBrush(theme.band))
        self.band.setPen(pg.mkPen(None))
        edge = pg.mkPen(theme.band_edge, width=1)
        self.lo.setPen(edge)
        self.hi.setPen(edge)
        self.line.setPen(pg.mkPen(theme.line, width=1.2))
        self.mean.setPen(pg.mkPen(theme.mean, width=2.5))
        self.cross.setPen(pg.mkPen(theme.muted, width=1))

    # --- data

    def show_series(self, series: Series) -> None:
        x, y = series.curves.get(self.name, (np.empty(0), np.empty(0)))
        means = series.means.get(self.name)
        if self.name in series.binned:  # (x, y) are min/max pairs per bin: drawn as a band
            self._show(band=((x[0::2] + x[1::2]) / 2, y[0::2], y[1::2]), mean=means)
        else:
            self._show(line=(x, y), mean=means)

    def show_live(self, t: np.ndarray, values: np.ndarray | None) -> None:
        self._show(line=None if values is None else (t, values))

    def _show(self, line: tuple | None = None, band: tuple | None = None, mean: tuple | None = None) -> None:
        """Every data item of the plot set at once: what is not given is emptied, so nothing a
        previous range drew (its band edges, its means) is left on screen under another range."""
        empty = np.empty(0)
        self.binned = band is not None
        centres, lo, hi = band if band is not None else (empty, empty, empty)
        self.lo.setData(centres, lo, connect="finite")
        self.hi.setData(centres, hi, connect="finite")
        self.band.setPath(band_path(centres, lo, hi) if band is not None else QPainterPath())
        self.band.setVisible(band is not None)
        lx, ly = line if line is not None else (empty, empty)
        self.line.setData(lx, ly, connect="finite")
        mx, my = mean if mean is not None else (empty, empty)
        self.mean.setData(mx, my, connect="finite")
        # one whole hour in a short zoom is a single point, which a line does not draw: no mean then
        self.mean.setVisible(mean is not None and int(np.isfinite(np.asarray(my, dtype=float)).sum()) >= 2)

    def drawn(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The data of every item that draws samples, as it is on screen now (tests read it)."""
        out = {}
        for key, item in (("lo", self.lo), ("hi", self.hi), ("line", self.line), ("mean", self.mean)):
            x, y = item.getData() if item.isVisible() else (None, None)
            out[key] = (np.empty(0) if x is None else np.asarray(x), np.empty(0) if y is None else np.asarray(y))
        return out

    def value_at(self, x: float) -> str:
        """What this plot shows at time ``x``, in words ('' when it has nothing there)."""
        if self.binned:
            cx, lo = self.lo.getData()
            _, hi = self.hi.getData()
        else:
            cx, lo = self.line.getData()
            hi = lo
        if cx is None or not len(cx):
            return ""
        i = int(np.clip(np.searchsorted(cx, x), 1, len(cx) - 1))
        i = i - 1 if abs(cx[i - 1] - x) <= abs(cx[i] - x) else i
        steps = np.diff(cx)
        steps = steps[np.isfinite(steps)]
        step = median(steps) if len(steps) > 1 else 0.0
        if np.isnan(lo[i]) or (step and abs(cx[i] - x) > 2 * step):
            return f"{metric_label(self.name)} —"
        if self.unit not in ("%", "°C"):  # rates and the like in their own words: 740 KB/s
            low, high = format_value(self.name, lo[i]), format_value(self.name, hi[i])
            return f"{metric_label(self.name)} {low}" + (f"–{high}" if self.binned and high != low else "")
        if self.binned and f"{lo[i]:.0f}" != f"{hi[i]:.0f}":  # the spread of the samples in that bin
            return f"{metric_label(self.name)} {lo[i]:.0f}–{hi[i]:.0f} {self.unit}"
        return f"{metric_label(self.name)} {(lo[i] + hi[i]) / 2:.1f} {self.unit}"

    # --- rules

    def sync_rules(self, rules: dict[str, Rule], results: dict[str, RuleResult], live: bool, now: float) -> None:
        """Thresholds and window averages of the rules on this metric, updated in place."""
        mine = {k: r for k, r in rules.items() if r.metric == self.name}
        for key in [k for k in self.rules if k not in mine]:
            for item in self.rules.pop(key):
                self.plot.removeItem(item)
        marks = []
        for key, rule in mine.items():
            if key not in self.rules:
                orange = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(ORANGE, width=1, style=Qt.PenStyle.DashLine))
                red = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(RED, width=1, style=Qt.PenStyle.DashLine))
                avg = pg.PlotDataItem()
                for item in (orange, red, avg):
                    self.plot.addItem(item, ignoreBounds=True)
                self.rules[key] = (orange, red, avg)
            orange, red, avg = self.rules[key]
            orange.setValue(rule.orange)
            red.setValue(rule.red)
            words = (lambda v: f"{v:g}") if self.unit in ("%", "°C") else (lambda v: format_value(self.name, v))
            # a rule that watches a value fall says which way: red under its line, orange at it or under
            at, past = ("≤ ", "< ") if rule.direction == "below" else ("", "")
            marks += [(rule.red, f"red {past}{words(rule.red)}", RED), (rule.orange, f"orange {at}{words(rule.orange)}", ORANGE)]
            result = results.get(key)
            # the window average means something over its window, not on the 10-minute view
            if result is not None and result.average is not None and not live:
                colour = LEVEL_COLORS[result.level]
                # over the stretch it averages: its window, or less while the window is filling
                span = min(rule.window_seconds, max(result.coverage_seconds, 0.0))
                avg.setData([now - span, now], [result.average, result.average])
                avg.setPen(pg.mkPen(colour, width=2.5, style=Qt.PenStyle.DotLine))
                avg.setVisible(True)
                shown = f"{result.average:.0f}" if self.unit in ("%", "°C") else format_value(self.name, result.average)
                marks.append((result.average, f"{human_duration(rule.window_seconds)} avg {shown}", colour))
            else:
                avg.setVisible(False)
        self.margin.set_marks(marks)

    def rule_items(self) -> list:
        return [item for items in self.rules.values() for item in items]


def _settings_flag(key: str) -> bool:
    value = QSettings("trayapp", "trayapp").value(key, False)
    return value in (True, "true", "1", 1)


def names_in(text: str) -> list[str]:
    """``"cpu_percent, swap_percent"`` → its metric names, in order, once each."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


class StatusLine(QLabel):
    """A line for what a person should know now (loading, an empty range, an export's outcome);
    it takes no room while it has nothing to say."""

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self.setVisible(bool(text))


class PinnedTimeAxis(pg.GraphicsLayoutWidget):
    """The time axis under the scroll area of plots, linked to their views: it stays on screen
    whichever plots are scrolled into view, with the day where it changes."""

    def __init__(self) -> None:
        super().__init__()
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.axis = DayAxis(orientation="bottom")
        self.axis.setStyle(tickLength=-4)
        self.axis.setHeight(QFontMetrics(QApplication.font()).height() + 8)
        self.ci.layout.setContentsMargins(0, 0, 0, 0)
        self.ci.layout.setSpacing(0)
        self.before = pg.GraphicsWidget()
        self.ci.addItem(self.before, row=0, col=0)
        self.ci.addItem(self.axis, row=0, col=1)
        self.after = pg.GraphicsWidget()
        self.ci.addItem(self.after, row=0, col=2)
        self.setFixedHeight(int(self.axis.height()) + 2)

    def link(self, view: pg.ViewBox) -> None:
        self.axis.linkToView(view)

    def place(self, left: float, width: float) -> None:
        """The axis from ``left`` for ``width`` pixels of this widget, as the plots' views are."""
        left, width = max(0, int(round(left))), max(1, int(round(width)))
        self.before.setFixedWidth(left)
        self.axis.setFixedWidth(width)
        self.after.setFixedWidth(max(0, self.width() - left - width))

    def style_with(self, theme: "Theme") -> None:
        self.setBackground(theme.background)
        self.axis.setPen(pg.mkPen(theme.muted))
        self.axis.setTextPen(pg.mkPen(theme.foreground))


class _Bridge(QObject):
    loaded = Signal(object)
    exported = Signal(str)


class HistoryWindow(QWidget):
    """One plot per metric with linked time axes, a hover readout, zoom that can be undone."""

    range_loaded = Signal(object)  # Series, once drawn (tests and the benchmark wait on it)
    layout_changed = Signal(str, str)  # hidden plots and plot order, as the config's [window] keys say them
    first_paint = Signal(float)  # a window that is not the recorder's drew the rule metrics from memory before its first read

    def __init__(
        self,
        data_dir: Path,
        live: LiveBuffer,
        config: Config,
        quick: Callable[[float], dict] | None = None,
        minutes: Callable[[Path], Any] | None = None,
        starting: Callable[[Path], bool] | None = None,
        rows: Callable[[Path], Any] | None = None,
        arrow: bool = True,
        processes: Callable[[float], str] | None = None,
        processes_over: Callable[[float, float], str] | None = None,
    ) -> None:
        """``quick(span)``: samples already in memory for ``span`` (the sampler's rule windows).
        ``minutes(data_dir)``: the recorder's minute bins of its CSV for that folder, or None
        (``Store.minutes``): tiered ranges read today from them, and the tiers' numpy copies,
        so the window loads neither the CSV nor Arrow. ``starting(data_dir)``: True while the
        recorder for that folder is still opening it (no minute bins yet): a read waits for
        ``recorder_ready`` rather than parse the CSV with Arrow, which the app would keep.
        ``rows(data_dir)``: the recorder's rows file for that folder (``DayRows.view``), or None:
        a zoom short enough for raw samples reads today's from it. ``arrow=False`` (the tray
        app): never read with Arrow, even when the recorder has no minute bins to give (its
        start-up failed): today is then left out, and the window says so. ``processes(t)``: the
        busiest processes of the minute holding ``t`` (the recorder's records), for the hover.
        ``processes_over(start, end)``: who used the machine over the range on screen (the same
        records), under the span line."""
        super().__init__()
        pg.setConfigOptions(antialias=True)
        self.setWindowTitle("trayapp — history")
        self.data_dir = Path(data_dir)
        self.processes = processes
        self.processes_over = processes_over
        self.live = live
        self.config = config
        self.results: tuple[RuleResult, ...] = ()
        self.quick = quick
        self.minutes = minutes
        self.starting = starting
        self.rows = rows
        self.arrow = arrow
        self._waiting: tuple[float, float | None, float | None] | None = None  # a read held until the recorder is up
        self.span = RANGES[1][1]
        self.theme = Theme.from_palette(self.palette())
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trayapp-history")
        # a remote machine's reads wait on Prometheus: a thread of their own, so a slow server never holds a local read
        self._remote_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trayapp-remote-history")
        self.machine: str | None = None  # the remote machine shown (its Prometheus instance), None for this machine
        self.machine_name = ""
        self._fleet_key: tuple | None = None  # the [fleet] settings the remote reads use
        self._server: Any = None  # fleet.Prometheus for those settings, made on the remote thread
        self._remote_rules: tuple[Rule, ...] = ()
        self._remote_results: tuple[RuleResult, ...] = ()
        self._remote_busy = False  # a remote live read under way
        self._remote_read_at = 0.0  # monotonic time of the last remote live read
        self._local_notes: list[str] | None = None
        self._bridge = _Bridge()
        self._bridge.loaded.connect(self._draw_history)
        self._bridge.exported.connect(self._exported)
        self._request = 0
        self._shown: Series | None = None  # the whole range as read (what Reset goes back to)
        self.shown_series: Series | None = None  # what the plots draw now (a zoom's read, or the range's)
        self._note = ""  # the status line's note on how the range on screen was read
        self._zoomed = False
        self._placed = False
        self.metric_plots: dict[str, MetricPlot] = {}  # the plots shown, in their order
        self._parked: dict[str, MetricPlot] = {}  # plots a person hid, kept to show again
        self._master: MetricPlot | None = None  # the plot the others' time axes follow (the first shown)
        self.hidden = set(names_in(config.window_hidden_plots))
        self.preferred = names_in(config.window_plot_order)
        self._mean_period = "hourly"  # daily for a range read from the hour tier (a year)
        self._read_once = False  # until the first read has drawn (see ``show_range``)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(3)
        top = QHBoxLayout()
        self.picker = QComboBox()  # this machine or one that the [fleet] Prometheus scrapes; shown only with a fleet
        self.picker.setToolTip("Whose history: this machine, or a machine that the Prometheus server in Settings → Machines scrapes")
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.picker.addItem(THIS_MACHINE, None)
        self.picker.setVisible(False)
        self.picker.activated.connect(lambda i: self.choose_machine(self.picker.itemData(i)))
        top.addWidget(self.picker)
        self.span_label = QLabel("")  # the stretch on screen in words, on every zoom and pan
        self.span_label.setTextFormat(Qt.TextFormat.RichText)
        self.span_label.setWordWrap(True)
        self.span_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.span_processes = QLabel("")  # who used the machine over the range on screen
        self.span_processes.setWordWrap(True)
        self.span_processes.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.span_processes.setToolTip("The busiest processes over the time on screen, as % of the whole machine, "
                                       "and the largest by memory (the recorder's minute records)")
        self.span_processes.hide()
        self._span_timer = QTimer(self)  # once the view rests: a drag moves it many times a second
        self._span_timer.setSingleShot(True)
        self._span_timer.setInterval(300)
        self._span_timer.timeout.connect(self._say_span_processes)
        self.summary = QLabel("…")  # a row of its own, full width, so it wraps rather than being cut
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.buttons = QButtonGroup(self)
        self.buttons.setExclusive(False)  # a zoomed view checks none of them (``_mark_range``)
        for i, (label, seconds) in enumerate(RANGES):
            button = QPushButton(label)
            button.setMinimumWidth(36)  # six buttons fit a narrow window at 2x scale
            button.setCheckable(True)
            button.setChecked(seconds == self.span)
            self.buttons.addButton(button, i)
            top.addWidget(button)
        self.buttons.idClicked.connect(lambda i: self.show_range(RANGES[i][1]))
        self._mark_range(self.span)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to the whole range (or double-click a plot)")
        self.reset_button.clicked.connect(self.reset_view)
        self.reset_button.setEnabled(False)  # until the view is zoomed or panned
        top.addWidget(self.reset_button)
        self.now_button = QPushButton("Now")  # folds the Now panel away; remembered
        self.now_button.setCheckable(True)
        self.now_button.setToolTip("Show or hide this second's numbers and the top processes")
        self.now_button.setChecked(not _settings_flag("history/now_folded"))
        self.now_button.toggled.connect(self._fold_now)
        top.addWidget(self.now_button)
        top.addStretch(1)
        layout.addLayout(top)
        layout.addWidget(self.span_label)
        layout.addWidget(self.span_processes)
        self.now = NowPanel()  # this second: big numbers, per-core bars, the top processes
        layout.addWidget(self.now)
        layout.addWidget(self.summary)
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.legend)
        self.readout = QLabel(HINT)  # the hover readout, or a hint: one line (each plot's title has its value too)
        self.readout.setWordWrap(False)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        layout.addWidget(self.readout)
        self.status = StatusLine()  # loading, an empty range, a failed read or export: for people
        self.status.setWordWrap(True)  # a long line wraps rather than widen the window
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.status)
        self.graphics = pg.GraphicsLayoutWidget()
        # pyqtgraph caches the background in a pixmap the size of the view, here every plot together
        # (2 MB at 1x, four times that at 2x) for a plain fill that costs nothing to paint
        self.graphics.setCacheMode(QGraphicsView.CacheModeFlag.CacheNone)
        self.graphics.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.graphics.customContextMenuRequested.connect(self._context_menu)
        self.graphics.scene().sigMouseClicked.connect(self._clicked)
        self._hover = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._moved)
        self.graphics.viewport().installEventFilter(self)
        self.scroll = QScrollArea()  # many metrics (a GPU box, sensors) scroll rather than squash
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(self.graphics)
        layout.addWidget(self.scroll, 1)
        self.time_axis = PinnedTimeAxis()  # under the plots, whichever of them are scrolled into view
        layout.addWidget(self.time_axis)
        self._zoom_timer = QTimer(self)
        self._zoom_timer.setSingleShot(True)
        self._zoom_timer.setInterval(300)
        self._zoom_timer.timeout.connect(self._zoom_read)
        # each sequence once: where the platform's Close is Ctrl+W too, two shortcuts for one key
        # are ambiguous to Qt and neither fires
        closing = [QKeySequence(Qt.Key.Key_Escape), QKeySequence("Ctrl+W"), *QKeySequence.keyBindings(QKeySequence.StandardKey.Close)]
        for keys in {keys.toString(): keys for keys in closing if not keys.isEmpty()}.values():
            QShortcut(keys, self, self.close)
        for key, action in (("+", lambda: self.zoom_by(1 / ZOOM_STEP)), ("=", lambda: self.zoom_by(1 / ZOOM_STEP)),
                            ("-", lambda: self.zoom_by(ZOOM_STEP)), ("Left", lambda: self.pan_by(-PAN_STEP)),
                            ("Right", lambda: self.pan_by(PAN_STEP)), ("0", self.reset_view)):
            QShortcut(QKeySequence(key), self, action)
        self._restyle()
        # plots for every metric measured now, so none arrive later and push the others around; a
        # rule's metric this machine does not measure gets a plot only if the range has data of it
        for name in plotted_columns(self.live.measured()):
            self._plot_for(name)

    # --- plots

    @property
    def plots(self) -> dict[str, LitePlot]:
        return {name: mp.plot for name, mp in self.metric_plots.items()}

    def show_metric(self, name: str) -> None:
        """Scroll the plots to ``name``'s (a panel item was clicked), once the layout has placed it;
        a plot the person hid stays hidden."""
        mp = self._plot_for(name)
        if mp is None:
            return

        def scroll() -> None:
            rect = self.graphics.mapFromScene(mp.plot.sceneBoundingRect()).boundingRect()
            self.scroll.ensureVisible(rect.center().x(), rect.center().y(), 0, rect.height() // 2)

        QTimer.singleShot(0, scroll)

    def _plot_for(self, name: str) -> MetricPlot | None:
        """The plot of ``name``, made (or shown again) where it belongs; None for one a person hid."""
        if name in self.metric_plots:
            return self.metric_plots[name]
        if name in self.hidden:
            return None
        mp = self._parked.pop(name, None)
        if mp is None:
            mp = MetricPlot(self, name, len(self.metric_plots))
            mp.plot.getAxis("bottom").setStyle(showValues=False)  # its grid only: the pinned axis says the time
        else:
            self.graphics.addItem(mp.plot, row=len(self.metric_plots), col=0)
        self.metric_plots[name] = mp
        order = self._ordered(list(self.metric_plots))
        if list(self.metric_plots) != order:  # a metric that came up late (a sensor, a rate): in its place
            self._relayout(order)
        self._relink()
        self._fit_readout()
        self._fit_plots()
        self._sync_rules()
        return mp

    def _ordered(self, names: list[str]) -> list[str]:
        """``names`` in the order a person chose, then the usual order (CPU, memory, disk, …)."""
        chosen = [n for n in self.preferred if n in names]
        return chosen + [n for n in plotted_columns(names) if n not in chosen] + [n for n in names if n not in chosen and n not in plotted_columns(names)]

    def _relayout(self, order: list[str]) -> None:
        """The plots again in ``order``."""
        for mp in self.metric_plots.values():
            self.graphics.removeItem(mp.plot)
        self.metric_plots = {name: self.metric_plots[name] for name in order}
        for row, mp in enumerate(self.metric_plots.values()):
            self.graphics.addItem(mp.plot, row=row, col=0)
        self._relink()

    def _relink(self) -> None:
        """Every plot's time follows the first one shown; it drives the pinned axis and the window."""
        plots = list(self.metric_plots.values())
        if not plots:
            return
        master = plots[0]
        if master is not self._master:
            if self._master is not None:
                try:
                    self._master.plot.sigXRangeChanged.disconnect(self._x_range_changed)
                except (RuntimeError, TypeError):  # never connected
                    pass
            master.plot.vb.setXLink(None)
            if self._view is not None:  # a plot shown again keeps no view of its own: the one on screen
                master.plot.vb.blockSignals(True)
                try:
                    master.plot.setXRange(*self._view, padding=0)
                finally:
                    master.plot.vb.blockSignals(False)
            master.plot.sigXRangeChanged.connect(self._x_range_changed)
            self.time_axis.link(master.plot.vb)
            self._master = master
        for mp in plots[1:]:
            if mp.plot.vb.linkedView(0) is not master.plot.vb:
                mp.plot.setXLink(master.plot)

    # --- a person's choice of plots

    def hide_plot(self, name: str) -> None:
        mp = self.metric_plots.get(name)
        if mp is None or len(self.metric_plots) == 1:
            return  # the last plot stays: a window of none shows nothing to bring them back from
        self.hidden.add(name)
        mp.cross.setVisible(False)
        self.graphics.removeItem(mp.plot)
        self._parked[name] = self.metric_plots.pop(name)
        self._relayout(list(self.metric_plots))
        self._fit_plots()
        self._say_layout()

    def show_plot(self, name: str) -> None:
        """A hidden plot back in its place, with the range on screen drawn in it."""
        self.hidden.discard(name)
        mp = self._plot_for(name)
        if mp is not None:
            if self.shown_series is not None:
                mp.show_series(self.shown_series)
            elif self.span == LIVE_SECONDS:
                self.refresh_live()
        self._say_layout()

    def move_plot(self, name: str, step: int) -> None:
        """``name`` one place up (-1) or down (+1) among the plots shown."""
        order = list(self.metric_plots)
        if name not in order:
            return
        i = order.index(name)
        j = min(max(i + step, 0), len(order) - 1)
        if i == j:
            return
        order.insert(j, order.pop(i))
        self.preferred = order + [n for n in self.preferred if n not in order]
        self._relayout(order)
        self._say_layout()

    def set_layout(self, hidden: str, order: str) -> None:
        """The plots hidden and their order as the settings say them now (the dialog's OK)."""
        wanted = set(names_in(hidden))
        self.preferred = names_in(order)
        for name in [n for n in self.metric_plots if n in wanted]:
            self.hide_plot(name)
        for name in [n for n in self.hidden if n not in wanted]:
            self.show_plot(name)
        self.hidden = wanted
        self._relayout(self._ordered(list(self.metric_plots)))

    def _say_layout(self) -> None:
        self.layout_changed.emit(", ".join(sorted(self.hidden)), ", ".join(self.preferred))

    def _sync_rules(self) -> None:
        cpu = next((r for r in self.config.rules if r.metric == "cpu_percent" and r.direction == "above"), None)
        self.now.bars.thresholds = (cpu.orange, cpu.red) if cpu is not None else None  # a core is coloured only past these
        if self.machine is not None:  # the remote machine's own rules, as its recorder serves them
            keys = rule_keys(self._remote_rules)
            rules = dict(zip(keys, self._remote_rules))
            results = dict(zip(keys, self._remote_results))
        else:
            rules = dict(zip(rule_keys(self.config.rules), self.config.rules))
            results = dict(zip(rule_keys(self.config.rules), self._results_by_rule(rules)))
        now = time.time()
        for mp in self.metric_plots.values():
            mp.sync_rules(rules, results, self.span == LIVE_SECONDS, now)
        self._align_axes()

    def _align_axes(self) -> None:
        """One left and one right axis width for every plot, so that their time axes line up,
        each wide enough for its longest label: a value axis's ticks (pyqtgraph drops a tick label
        that does not fit, so a rate axis at 64 px showed no numbers) and the margin's labels."""
        plots = list(self.metric_plots.values())
        left = max([LEFT_WIDTH, *(mp.value_axis_width() for mp in plots)])
        right = max([MARGIN_WIDTH, *(mp.margin.needed_width() for mp in plots)])
        for mp in plots:
            axis = mp.plot.getAxis("left")
            if axis.width() != left:
                axis.setWidth(left)
            if mp.margin.width() != right:
                mp.margin.setWidth(right)
        QTimer.singleShot(0, self._place_time_axis)  # once the layout has taken the new widths

    def _results_by_rule(self, rules: dict[str, Rule]) -> list:
        by = {(r.metric, float(r.window_seconds)): r for r in self.results}
        return [by.get((rule.metric, float(rule.window_seconds))) for rule in rules.values()]

    @property
    def rule_lines(self) -> dict[str, list]:
        return {name: mp.rule_items() for name, mp in self.metric_plots.items()}

    # --- look

    def _restyle(self) -> None:
        theme = self.theme
        self.graphics.setBackground(theme.background)
        self.time_axis.style_with(theme)
        for mp in self.metric_plots.values():
            mp.style(theme)
        for label in (self.readout, self.status):
            label.setStyleSheet(f"color: {theme.muted}")
        self.now.set_muted(theme.muted)
        self._legend()

    def _legend(self) -> None:
        """What the lines are; the live view draws no means (ten minutes have no hourly mean)."""
        theme = self.theme
        band = "rgba({},{},{},{})".format(*theme.band_edge)
        means = self.span != LIVE_SECONDS and any(mp.mean.isVisible() for mp in self.metric_plots.values())
        mean = f"<span style='color:{theme.mean}'><b>━</b></span> {self._mean_period} mean &nbsp; " if means else ""
        self.legend.setText(
            f"<span style='color:{band}'>■</span> min–max &nbsp; "
            f"<span style='color:{theme.line}'>━</span> samples &nbsp; " + mean
            + f"<span style='color:{ORANGE}'>╍</span><span style='color:{RED}'>╍</span> thresholds &nbsp; "
            f"<b>┈</b> a rule's window average"
        )

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit_readout()
        self._fit_now()
        self._fit_plots()
        QTimer.singleShot(0, self._place_time_axis)

    def _fit_plots(self) -> None:
        """Each plot as tall as lets ``PLOTS_IN_VIEW`` of them fit the view at once, but no
        shorter than ``PLOT_MIN_HEIGHT``: more plots than fit scroll."""
        n = max(1, len(self.metric_plots))
        room = self.scroll.viewport().height()
        per = int(min(PLOT_MAX_HEIGHT, max(PLOT_MIN_HEIGHT, room / min(n, PLOTS_IN_VIEW) - 4)))  # the layout spaces them a little
        if self.graphics.minimumHeight() != per * n:
            self.graphics.setMinimumHeight(per * n)

    def _place_time_axis(self) -> None:
        """The pinned time axis exactly under the plots' views, however wide their value axes
        and whether or not the scroll bar shows."""
        if not self.metric_plots:
            return
        vb = next(iter(self.metric_plots.values())).plot.vb
        rect = self.graphics.mapFromScene(vb.sceneBoundingRect()).boundingRect()
        left = self.time_axis.mapFromGlobal(self.graphics.viewport().mapToGlobal(rect.topLeft())).x()
        self.time_axis.place(left, rect.width())

    def _fold_now(self, shown: bool) -> None:
        QSettings("trayapp", "trayapp").setValue("history/now_folded", not shown)
        self._fit_now()

    def _fit_now(self) -> None:
        """A short window (a small screen at 2x) gives the Now panel's room to the plots, and
        stops its process scans; the tray's tooltip still has this second's numbers. So does a
        person who folded it away."""
        room = self.height() >= NOW_MIN_HEIGHT and self.now_button.isChecked()
        if room == self.now.isVisibleTo(self):
            return
        self.now.setVisible(room)
        if room and self.isVisible():
            self.now.start()
        else:
            self.now.stop()

    def _fit_readout(self) -> None:
        """One line, its height fixed before any hover, so that hovering never moves the plots;
        what does not fit it is in each plot's title."""
        self.readout.setFixedHeight(self.readout.fontMetrics().lineSpacing() + 2)

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            theme = Theme.from_palette(QApplication.palette() if event.type() == QEvent.Type.ApplicationPaletteChange else self.palette())
            if theme != self.theme:
                self.theme = theme
                self._restyle()
        super().changeEvent(event)

    # --- data

    def set_results(self, results: tuple[RuleResult, ...], config: Config | None = None, notes: list[str] | None = None) -> None:
        """Each rule's current window average (from the sampler), drawn and summarised.

        ``notes``: what follows each rule's average in the summary, as the tooltip says it (the
        first hour's "collecting data: first verdict in 52 min", where the average is heading)."""
        if config is not None:
            self.config = config
        changed = results != self.results or config is not None
        self.results = results
        self._local_notes = notes
        if self.machine is not None:
            return  # the summary and thresholds are the remote machine's until "This machine" is chosen again
        self._summarise(results, notes)
        if changed:
            self._sync_rules()

    def _summarise(self, results: tuple[RuleResult, ...], notes: list[str] | None = None) -> None:
        """The summary line: each rule's window average and level."""
        parts = []
        for i, r in enumerate(results):
            avg = "n/a" if r.average is None else f"{r.average:.1f} {metric_unit(r.metric)}"
            nb = lambda text: text.replace(" ", "&nbsp;")  # noqa: E731 (a number stays with its unit)
            note = f"{r.level.value} (over {nb(human_duration(r.coverage_seconds))} of data)"
            if notes is not None and len(notes) == len(results) and " — " in notes[i]:
                note = html.escape(notes[i].split(" — ", 1)[1]).replace("≈ ", "≈&nbsp;")
            if r.contributors:  # who made the average over the rule's window
                note += f" · by {html.escape(describe_contributors(r.contributors, count=3))}"
            parts.append(
                f"<span style='color:{LEVEL_COLORS[r.level]}'>●</span> {nb(human_duration(r.window_seconds))} avg "
                f"{metric_label(r.metric)} <b>{nb(avg)}</b> — {note}"
            )
        self.summary.setText("<br>".join(parts) or "no rules")

    def show_range(self, span: float) -> None:
        self.span = span
        self._legend()
        self._zoomed = False
        self.reset_button.setEnabled(False)
        self._mark_range(span)
        self._sync_rules()
        if span == LIVE_SECONDS:
            self._request += 1  # a read in flight is no longer wanted
            self.status.setText("")
            if self.machine is not None:  # the remote machine's last ten minutes: read now, then polled
                self._remote_busy, self._remote_read_at = False, 0.0
                self.status.setText(LOADING)
            self.refresh_live()
            return
        self.status.setText(LOADING)
        self._read(span)
        # In the recorder's own window (minute bins at hand) a read takes tens of milliseconds:
        # one read, one paint. Only a window that is not the recorder's, whose first read parses
        # the CSV with Arrow, paints the rule metrics from memory while it waits.
        if self._read_once or self.quick is None or self._minutes() is not None or self.machine is not None:
            return
        recent = self.quick(span)
        if recent:
            self._draw(series_from_memory(recent, span, time.time()))
            self.first_paint.emit(span)

    # --- whose history

    def set_fleet(self, state: Any, config: Config) -> None:
        """The machines the ``[fleet]`` Prometheus scrapes (a ``fleet.FleetState``, None without
        one) in the picker, after "This machine"; a poll that failed leaves the list as it was.
        Other fleet settings, or none, bring the window back to this machine."""
        key = ((config.fleet_url, config.fleet_user, config.fleet_password, config.fleet_token, config.fleet_verify_tls, config.fleet_job)
               if config.fleet_url else None)
        if key != self._fleet_key:
            self._fleet_key = key
            if self.machine is not None:
                self.choose_machine(None)
            self._fill_picker([])
        if key is None or state is None or state.error:
            return
        self._fill_picker([(m.name, m.instance, m.level.value) for m in state.machines])

    def _fill_picker(self, machines: list[tuple[str, str, str]]) -> None:
        """The picker's items: this machine, then each machine with its level; the machine shown stays chosen."""
        self.picker.blockSignals(True)
        try:
            self.picker.clear()
            self.picker.addItem(THIS_MACHINE, None)
            for name, instance, level in machines:
                self.picker.addItem(f"{name} — {level}", instance)
                self.picker.setItemData(self.picker.count() - 1, name, Qt.ItemDataRole.UserRole + 1)
            if self.machine is not None and self.picker.findData(self.machine) < 0:  # gone from this poll: still shown
                self.picker.addItem(self.machine_name, self.machine)
                self.picker.setItemData(self.picker.count() - 1, self.machine_name, Qt.ItemDataRole.UserRole + 1)
            self.picker.setCurrentIndex(max(0, self.picker.findData(self.machine)) if self.machine is not None else 0)
        finally:
            self.picker.blockSignals(False)
        self.picker.setVisible(self.picker.count() > 1)

    def choose_machine(self, instance: str | None) -> None:
        """Show ``instance``'s history (a machine the fleet's Prometheus scrapes), or this
        machine's (None): every range, the rules' thresholds and averages, the Now panel."""
        if instance == self.machine:
            return
        index = self.picker.findData(instance) if instance is not None else 0
        if instance is not None and (index < 0 or self._fleet_key is None):
            return  # not a machine of this fleet
        self.machine = instance
        self.machine_name = str(self.picker.itemData(index, Qt.ItemDataRole.UserRole + 1) or instance) if instance is not None else ""
        self.picker.setCurrentIndex(index)
        self._request += 1  # what was read for the other machine is not drawn
        self._remote_rules, self._remote_results = (), ()
        self._remote_read_at = 0.0
        self._shown = self.shown_series = None
        self._note = ""
        self.setWindowTitle(f"trayapp — history of {self.machine_name}" if instance is not None else "trayapp — history")
        self.now.show_machine(self.machine_name if instance is not None else None)
        now = time.time()
        self._draw(Series(self.span, now - self.span, now))  # nothing of the other machine stays on screen
        if instance is None:
            self._park_all_but(set(plotted_columns(self.live.measured())))
            self._summarise(self.results, self._local_notes)
            if self.live.samples:
                self.now.show_sample(self.live.samples[-1])
            if self.now.isVisible():
                self.now.start()
        else:
            self.summary.setText(f"Reading {html.escape(self.machine_name)}'s rules from Prometheus…")
        self.show_range(self.span)

    def _park_all_but(self, names: set[str]) -> None:
        """Plots of other metrics than ``names`` put away (another machine measures other
        things); kept to show again, and not counted as hidden by a person."""
        park = [n for n in self.metric_plots if n not in names]
        if not park or len(park) == len(self.metric_plots):
            return
        for name in park:
            mp = self.metric_plots.pop(name)
            mp.cross.setVisible(False)
            self.graphics.removeItem(mp.plot)
            self._parked[name] = mp
        self._relayout(list(self.metric_plots))
        self._fit_plots()

    def _mark_range(self, span: float | None) -> None:
        """The range shown: its button checked and in bold, which every palette and style shows
        (a checked button alone was hard to tell in a dark Fusion palette); none while zoomed."""
        for i, (_, seconds) in enumerate(RANGES):
            button = self.buttons.button(i)
            button.setChecked(seconds == span)
            font = button.font()
            font.setBold(seconds == span)
            button.setFont(font)

    def _read(self, span: float, start: float | None = None, end: float | None = None) -> None:
        self._request += 1
        request = self._request
        if self.machine is not None:
            self._read_remote(request, span, start, end)
            return
        if self.starting is not None and self.starting(self.data_dir):
            self._waiting = (span, start, end)  # the latest wins; ``recorder_ready`` reads it
            return
        self._waiting = None
        rows = self.rows(self.data_dir) if self.rows is not None else None
        minutes = self._minutes()
        without_today = minutes is None and not self.arrow
        if without_today:  # no minute bins of today to read, and Arrow is not to be loaded here
            minutes = MinuteBins()
        try:
            future = self._pool.submit(self._load, self.data_dir, span, start, end, minutes, rows, without_today)
        except RuntimeError:  # shut down already (the app is quitting)
            return
        future.add_done_callback(lambda f: self._bridge.loaded.emit((request, f, start is not None)))

    def _read_remote(self, request: int, span: float, start: float | None, end: float | None) -> None:
        """The remote machine's range (or zoom) from Prometheus, on the remote thread."""
        until = end if end is not None else time.time()
        since = start if start is not None else until - span
        zoom = start is not None or (span == LIVE_SECONDS and self._zoomed)  # a live poll keeps a person's zoom
        try:
            future = self._remote_pool.submit(self._load_remote, self._fleet_key, self.machine, span, since, until)
        except RuntimeError:  # shut down already (the app is quitting)
            return
        self._remote_busy = True
        self._remote_read_at = time.monotonic()
        future.add_done_callback(lambda f: self._bridge.loaded.emit((request, f, zoom, True)))

    def _load_remote(self, key: tuple, instance: str, span: float, start: float, end: float) -> Any:
        """On the remote thread: the machine's range, rules and latest sample (``remote_history``).
        The client is made here too: its TLS context reads the system's certificates."""
        from trayapp import remote_history
        from trayapp.fleet import Prometheus

        url, user, password, token, verify_tls, job = key
        if self._server is None or self._server[0] != key:
            self._server = (key, Prometheus(url, user, password, token, verify_tls))  # ValueError: a URL that is not one
        return remote_history.read_machine(self._server[1], instance, job, span, start, end)

    def recorder_ready(self) -> None:
        """The recorder has opened the folder (or given up): a read held for it goes now, unless
        another range was asked for meanwhile."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None and waiting[0] == self.span:
            self._read(*waiting)

    def _minutes(self) -> Any:
        return self.minutes(self.data_dir) if self.minutes is not None else None

    @staticmethod
    def _load(data_dir: Path, span: float, start: float | None, end: float | None, minutes: Any = None, rows: Any = None,
              without_today: bool = False) -> Series:
        """On the worker thread: the range from the tier that fits it (``history``)."""
        moment = {k: None if v is None else datetime.fromtimestamp(v, timezone.utc) for k, v in (("start", start), ("end", end))}
        series = prepare_history(data_dir, span, now=moment["end"], start=moment["start"], minutes=minutes, rows=rows)
        if without_today:
            series.note = "; ".join(filter(None, [series.note, "today's samples left out (the recorder could not prepare them at start; see its log)"]))
        release_memory()  # a read's buffers (and, the first time, what importing Arrow cached) go back now
        return series

    def _draw_history(self, item: tuple) -> None:
        request, future, zoom, *remote_read = item
        remote = bool(remote_read)  # a remote machine's read (``_read_remote``)
        if remote:
            self._remote_busy = False
        if request != self._request:
            return  # a newer range was asked for meanwhile
        try:
            result = future.result()
        except Exception as exc:  # a read that failed: say so, keep the window
            if remote:  # Prometheus down, slow, refusing, or answering garbage: one line, the window stays usable
                why = " ".join(str(exc).split()) or type(exc).__name__
                if self._note != f"Could not read {self.machine_name} from Prometheus: {why}":
                    log.warning("history of %s: %s", self.machine_name, why)  # once, not at every live poll
                self._note = f"Could not read {self.machine_name} from Prometheus: {why}"  # the next read that works replaces it
                self.status.setText(self._note)
            else:
                self.status.setText(f"Could not read history: {exc}")
            return
        if remote:
            series: Series = result.series
            self._remote_rules, self._remote_results = result.rules, result.results
            self._summarise(result.results)
            self._sync_rules()
            if result.sample is not None:
                self.now.show_sample(result.sample)
            if not zoom and series.curves:
                self._park_all_but(set(series.curves))
        else:
            series = result
        self._draw(series, keep_view=zoom)
        self._read_once = True
        self._release_later()  # what building and drawing the plots freed goes back too
        if not zoom:
            self._shown = series
        label = next((lbl for lbl, s in RANGES if s == series.span), "")
        since = recorded_since(series)
        if not series.rows and remote:
            last = label if series.span != LIVE_SECONDS else "10 minutes"
            self._note = (f"Prometheus holds no samples of {self.machine_name} in the last {last}." if not zoom
                          else f"Prometheus holds no samples of {self.machine_name} in this stretch.")
            self.status.setText(self._note)
        elif not series.rows:
            self.status.setText(f"Nothing recorded in the last {label} yet." if not zoom else "Nothing recorded in this stretch.")
        elif remote and not zoom and since is not None and series.end - since < FEW * series.span:
            self._note = f"Prometheus holds samples of {self.machine_name} only since {clock_or_day(since)} (its scrapes and retention)."
            self.status.setText(self._note)
        elif not zoom and since is not None and series.end - since < FEW * series.span:
            self.status.setText(  # a first run: a sliver at the right edge that no one would see
                f"Recorded only since {'about ' if series.binned else ''}{clock_or_day(since)}:"
                f" the {label} view fills in as trayapp records; Live shows the last 10 minutes.")  # 'about': a bin's start
        elif self.status.text() in (LOADING, LOADING_FINER) or self.status.text() == self._note:  # not an export's outcome
            self._note = f"Shown as {series.note}." if series.note else ""
            self.status.setText(self._note)
        self.range_loaded.emit(series)

    def _draw(self, series: Series, keep_view: bool = False) -> None:
        if series.mean_period != self._mean_period:
            self._mean_period = series.mean_period
            self._restyle()
        for name in plotted_columns(list(series.curves)):
            self._plot_for(name)
        self.shown_series = series
        for mp in self.metric_plots.values():
            mp.show_series(series)
        self._legend()  # the mean line only where one is drawn
        if not keep_view:
            self._set_x(series.start, series.end)

    def _set_x(self, start: float, end: float) -> None:
        if self.metric_plots:
            first = next(iter(self.metric_plots.values())).plot
            self._programmatic = True
            self._expected = (start, end)
            try:
                first.setXRange(start, end, padding=0)
            finally:
                self._programmatic = False

    def show_now(self, sample) -> None:
        """This tick's sample in the Now panel (called on each tick while the window is shown)."""
        if self.machine is None:
            self.now.show_sample(sample)

    def refresh_live(self) -> None:
        """Redraw the live view from memory (called on each tick while it is shown); a remote
        machine's from Prometheus, every ``REMOTE_LIVE_EVERY`` seconds, one read at a time."""
        if self.span != LIVE_SECONDS:
            return
        if self.machine is not None:
            if not self._remote_busy and time.monotonic() - self._remote_read_at >= REMOTE_LIVE_EVERY:
                self._read(LIVE_SECONDS)
            return
        self.shown_series = None
        t, columns = self.live.arrays()
        for name in plotted_columns(list(columns)):
            if not np.isnan(columns[name]).all():
                self._plot_for(name)
        for name, mp in self.metric_plots.items():
            mp.show_live(t, columns.get(name))
        if not self._zoomed:
            now = time.time()
            self._set_x(now - LIVE_SECONDS, now)

    # --- zoom, pan, hover, menu

    _programmatic = False
    _expected: tuple[float, float] | None = None  # the range the window set last
    _view: tuple[float, float] | None = None  # the time on screen, whichever plot drives it

    def _say_span(self, start: float, end: float) -> None:
        label = next((lbl for lbl, s in RANGES if s == self.span), "")
        text = html.escape(span_text(start, end))
        whose = f" · <b>{html.escape(self.machine_name)}</b> (from Prometheus)" if self.machine is not None else ""
        self.span_label.setText(f"<b>{text}</b> · zoomed from {label}; Reset goes back{whose}" if self._zoomed else f"<b>{text}</b> · {label}{whose}")
        self._span_shown = (start, end)
        self._span_timer.start()

    _span_shown: tuple[float, float] | None = None

    def _say_span_processes(self) -> None:
        """Who used the machine over the range on screen, under the span line (this machine's
        records only: a remote machine's processes are not in Prometheus)."""
        found = ""
        if self.processes_over is not None and self.machine is None and self._span_shown is not None:
            found = self.processes_over(*self._span_shown)
        self.span_processes.setText(f"Over this span: {found}" if found else "")
        self.span_processes.setVisible(bool(found))

    def _x_range_changed(self, _plot, view: tuple[float, float]) -> None:
        start, end = view
        now = time.time()
        self._view = (start, end)
        if self.readout.text() != HINT and not start <= next(iter(self.metric_plots.values())).cross.value() <= end:
            self.hover_at(None)  # the moment the readout names has left the view
        expected = self._expected
        # before the window set a range, and when a resize re-emits the one it set: not a person's zoom
        same = expected is None or abs(start - expected[0]) + abs(end - expected[1]) <= 1e-6 * max(end - start, 1.0)
        if not self._programmatic and not same:
            self._zoomed = True  # the person moved the view: keep it until Reset
            self._mark_range(None)
            self.reset_button.setEnabled(True)
            if self.span != LIVE_SECONDS:
                self._zoom_timer.start()
            if end > now + 1:  # a view never runs into the future: the same width, ending now
                self._set_x(max(TIME_MIN, start - (end - now)), now)
                return
            if self.span == LIVE_SECONDS and end - start > LIVE_SECONDS + 1:  # the live view holds ten minutes
                self._set_x(end - LIVE_SECONDS, end)
                return
        self._say_span(start, min(end, now))

    def zoom_by(self, factor: float) -> None:
        """Time on screen times ``factor`` (below 1 zooms in), around the middle of the view, or
        keeping its end at now when it ends now."""
        start, end = self.visible_range()
        now = time.time()
        width = min(max((end - start) * factor, 10.0), TIME_MAX - TIME_MIN)
        if end >= now - 1:
            self._move_to(now - width, now)
        else:
            middle = (start + end) / 2
            self._move_to(middle - width / 2, middle + width / 2)

    def pan_by(self, share: float) -> None:
        """The view moved by ``share`` of its width (negative: back in time), never past now."""
        start, end = self.visible_range()
        step = (end - start) * share
        now = time.time()
        step = min(step, now - end)
        self._move_to(start + step, end + step)

    def _move_to(self, start: float, end: float) -> None:
        """What a person's zoom or pan does: the view changes as if by the mouse."""
        if self.metric_plots:
            next(iter(self.metric_plots.values())).plot.setXRange(start, end, padding=0)

    def _zoom_read(self) -> None:
        """After a zoom or pan: the data that fits the view. Finer data for a view much narrower
        than what is drawn; the range's own read again, or a wider one, for a view that reaches
        past what is drawn (a zoom out after a fine zoom would show gaps where there is data)."""
        shown = self._shown
        if shown is None or self.span == LIVE_SECONDS or not self._zoomed:
            return
        start, end = self.visible_range()
        drawn = self.shown_series or shown
        slack = (drawn.end - drawn.start) / 1000  # a bin's width: not worth a read
        covered = drawn.start - slack <= start and end <= drawn.end + slack
        if covered and end - start >= ZOOM_REREAD * (drawn.end - drawn.start):
            return  # what is drawn fits the view
        if drawn is not shown and shown.start - slack <= start and end <= shown.end + slack \
                and end - start >= ZOOM_REREAD * (shown.end - shown.start):
            self._request += 1  # back within the range's own read: drawn again from it, no read
            self._draw(shown, keep_view=True)
            if self.status.text() == self._note:
                self._note = f"Shown as {shown.note}." if shown.note else ""
                self.status.setText(self._note)
            return
        self.status.setText(LOADING_FINER)
        self._read(self.span, max(start, TIME_MIN), min(end, time.time()))

    def reset_view(self) -> None:
        self._zoomed = False
        self._mark_range(self.span)
        self.reset_button.setEnabled(False)
        if self.span == LIVE_SECONDS:
            self.refresh_live()
        elif self._shown is not None:
            self._request += 1  # drop a zoom read in flight
            self._draw(self._shown)
            self.status.setText("")
        else:
            self.show_range(self.span)

    def _clicked(self, event) -> None:
        if event.double() and event.button() == Qt.MouseButton.LeftButton:
            self.reset_view()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Leave:
            self.hover_at(None)
        elif event.type() == QEvent.Type.Wheel and not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            QApplication.sendEvent(self.scroll.verticalScrollBar(), event)  # the page scrolls; Ctrl+wheel zooms
            return True
        elif event.type() == QEvent.Type.NativeGesture and event.gestureType() == Qt.NativeGestureType.ZoomNativeGesture:
            self.zoom_by(1 / (1 + event.value()) if event.value() > -1 else ZOOM_STEP)  # a pinch on a touchpad
            return True
        return False

    def _moved(self, args) -> None:
        pos = args[0]
        for mp in self.metric_plots.values():
            if mp.plot.sceneBoundingRect().contains(pos):
                self.hover_at(mp.plot.vb.mapSceneToView(pos).x())
                return
        self.hover_at(None)

    def hover_at(self, x: float | None) -> None:
        """The crosshair on every plot at time ``x``, and what each metric was then."""
        for mp in self.metric_plots.values():
            mp.cross.setVisible(x is not None)
            if x is not None:
                mp.cross.setValue(x)
            else:
                mp.show_value("", self.theme)
        if x is None:
            self.readout.setText(HINT)
            return
        try:
            moment = datetime.fromtimestamp(x)  # the year too where it is not this one (the 1 y view)
            when = moment.strftime("%a %d %b %H:%M:%S" if moment.year == datetime.now().year else "%a %d %b %Y %H:%M:%S")
        except (OverflowError, OSError, ValueError):
            return
        values = []
        for mp in self.metric_plots.values():
            text = mp.value_at(x)
            known = bool(text) and not text.endswith(" —")
            mp.show_value(text.removeprefix(metric_label(mp.name)).strip() if known else "—", self.theme)
            if known:
                values.append(text)
        values = values or ["no samples at this time"]
        busiest = self.processes(x) if self.processes is not None else ""
        if busiest:
            values.append(f"busiest: {busiest}")
        self.readout.setText(f"{when}   " + "   ".join(values))

    def _context_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        here = self.graphics.mapToScene(pos)
        name = next((n for n, mp in self.metric_plots.items() if mp.plot.sceneBoundingRect().contains(here)), None)
        if name is not None:
            order = list(self.metric_plots)
            hide = menu.addAction(f"Hide {metric_label(name)}", lambda: self.hide_plot(name))
            hide.setEnabled(len(order) > 1)
            menu.addAction("Move up", lambda: self.move_plot(name, -1)).setEnabled(order.index(name) > 0)
            menu.addAction("Move down", lambda: self.move_plot(name, 1)).setEnabled(order.index(name) < len(order) - 1)
        if self.hidden:
            shown = menu.addMenu("Show hidden plot")
            for hidden in sorted(self.hidden, key=metric_label):
                shown.addAction(metric_label(hidden), lambda h=hidden: self.show_plot(h))
        menu.addSeparator()
        menu.addAction("Reset view", self.reset_view)
        menu.addSeparator()
        for text, fmt in (("Export this range as CSV…", "csv"), ("Export this range as Parquet…", "parquet")):
            # this machine's data folder: a remote machine's own ``trayapp export`` writes its samples
            menu.addAction(text, lambda f=fmt: self.export_range(f)).setEnabled(self.machine is None)
        menu.exec(self.graphics.mapToGlobal(pos))

    def visible_range(self) -> tuple[float, float]:
        if not self.metric_plots:
            now = time.time()
            return now - self.span, now
        start, end = next(iter(self.metric_plots.values())).plot.viewRange()[0]
        return start, min(end, time.time())

    def export_range(self, fmt: str, output: str | None = None) -> None:
        """What the plots show now, written by ``trayapp export`` (the same code, in a child)."""
        start, end = self.visible_range()
        if output is None:
            stamp = lambda t: datetime.fromtimestamp(t).strftime("%Y%m%d-%H%M")  # noqa: E731
            suggested = str(Path.home() / f"trayapp-{stamp(start)}-{stamp(end)}.{fmt}")
            output, _ = QFileDialog.getSaveFileName(self, "Export this range", suggested)
            if not output:
                return
        iso = lambda t: datetime.fromtimestamp(t, timezone.utc).isoformat()  # noqa: E731
        argv = [*self_command(), "--data-dir", str(self.data_dir), "export",
                "--since", iso(start), "--until", iso(end), "--format", fmt, "--output", output]
        self.status.setText(f"Exporting to {output}…")
        self._pool.submit(self._run_export, argv).add_done_callback(lambda f: self._bridge.exported.emit(f.result()))

    @staticmethod
    def _run_export(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"Export failed: {exc}"
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1].removeprefix("trayapp: ") if lines else "done"
        return (last[:1].upper() + last[1:]) if done.returncode == 0 else f"Export failed: {last}"

    def _exported(self, message: str) -> None:
        self.status.setText(message)

    # --- show, hide, place

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if not self._placed:
            self._placed = True
            self._place()
        super().showEvent(event)
        if self.live.samples and self.machine is None:
            self.now.show_sample(self.live.samples[-1])
        if self.now.isVisibleTo(self):
            self.now.start()  # the process list is read only while the panel is shown
        self.show_range(self.span)

    @property
    def _geometry_key(self) -> str:
        """Where the window was, per data folder: one folder's maximised window does not open another's so."""
        folder = f"{zlib.crc32(str(self.data_dir.resolve()).encode()):08x}"  # not hashlib: it loads OpenSSL (~3.5 MB) for a name
        return f"history/geometry-{folder}"

    def _place(self) -> None:
        """Where the person left it (for this data folder), else centred and sized to the screen;
        never larger than the screen or off it."""
        saved = QSettings("trayapp", "trayapp").value(self._geometry_key)
        screen = (self.screen() or QApplication.primaryScreen()).availableGeometry()
        if saved is None or not self.restoreGeometry(saved):  # six plots at once where the screen has the room
            self.resize(min(1100, max(int(screen.width() * 0.6), min(screen.width(), 900))), min(1000, int(screen.height() * 0.9)))
        frame = self.frameGeometry()  # the title bar and borders, where the platform knows them already
        extra_w, extra_h = max(frame.width() - self.width(), 0), max(frame.height() - self.height(), 0)
        width, height = min(self.width(), screen.width() - extra_w), min(self.height(), screen.height() - max(30, extra_h))
        self.resize(width, height)
        outer_w, outer_h = width + extra_w, height + extra_h  # ``move`` places the frame's corner
        x = min(max(self.x(), screen.left()), screen.right() - outer_w + 1)
        y = min(max(self.y(), screen.top()), screen.bottom() - outer_h + 1)
        if saved is None:
            x, y = screen.left() + (screen.width() - outer_w) // 2, screen.top() + (screen.height() - outer_h) // 2
        self.move(x, y)

    def hideEvent(self, event) -> None:  # noqa: N802
        QSettings("trayapp", "trayapp").setValue(self._geometry_key, self.saveGeometry())
        self._request += 1  # drop any read in flight
        self.hover_at(None)
        self.now.stop()
        self._release_later()  # what the reads freed goes back to the OS, not kept for months
        super().hideEvent(event)

    def _release_later(self) -> None:
        """``release_memory`` on the worker thread (a few ms there, none on this one)."""
        try:
            self._pool.submit(release_memory)
        except RuntimeError:  # shut down already (the app is quitting)
            pass

    def shutdown(self) -> None:
        self._zoom_timer.stop()
        self.now.shutdown()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._remote_pool.shutdown(wait=False, cancel_futures=True)
