"""The history window: a live view (last 10 minutes, from memory) and 36 h / 7 d / 30 d from disk.

Imports Qt, pyqtgraph, numpy and the core. History is read and binned on a worker thread; the
GUI thread only hands arrays to pyqtgraph. Gaps in the data stay gaps (NaN breaks the line).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from trayapp.dataset_jobs import JobFailed, Reader
from trayapp.engine import rule_keys
from trayapp.gui.live import LIVE_SECONDS, LiveBuffer
from trayapp.history_data import Series, plotted_columns, prepare_history, series_from_memory
from trayapp.model import Level, RuleResult, metric_label, metric_unit
from trayapp.rules import human_duration
from trayapp.settings import Config

log = logging.getLogger(__name__)

RANGES = (("Live", LIVE_SECONDS), ("36 h", 36 * 3600), ("7 d", 7 * 86400), ("30 d", 30 * 86400))
LINE = QColor("#1a73e8")
HOURLY = QColor("#174ea6")
LEVEL_COLORS = {Level.RED: "#d93025", Level.ORANGE: "#f29900", Level.OK: "#1e8e3e", Level.UNKNOWN: "#80868b"}


class _Bridge(QObject):
    loaded = Signal(object)


class HistoryWindow(QWidget):
    """Plots per metric with linked time axes; thresholds and each rule's window average drawn."""

    range_loaded = Signal(object)  # Series, once drawn (tests and the benchmark wait on it)
    first_paint = Signal(float)  # the rule metrics were drawn from memory, before the disk read

    def __init__(
        self,
        data_dir: Path,
        live: LiveBuffer,
        config: Config,
        reader: Reader | None = None,
        quick: Callable[[float], dict] | None = None,
    ) -> None:
        """``quick(span)``: samples already in memory for ``span`` (the sampler's rule windows)."""
        super().__init__()
        pg.setConfigOptions(antialias=True, background="w", foreground="#202124")
        self.setWindowTitle("trayapp — history")
        self.resize(900, 640)
        self.data_dir = Path(data_dir)
        self.live = live
        self.config = config
        self.results: tuple[RuleResult, ...] = ()
        self.quick = quick
        self.span = RANGES[1][1]
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trayapp-history")
        # History is read by a child that stays up while the window is in use and leaves a
        # while after it closes, so the app does not keep Arrow loaded for months.
        self.reader = reader or Reader()
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.timeout.connect(self._reader_idle)
        self._bridge = _Bridge()
        self._bridge.loaded.connect(self._draw_history)
        self._request = 0
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.hourly: dict[str, pg.PlotDataItem] = {}
        self.rule_lines: dict[str, list] = {}

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.summary = QLabel("…")
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        top.addWidget(self.summary, 1)
        self.buttons = QButtonGroup(self)
        for i, (label, seconds) in enumerate(RANGES):
            button = QPushButton(label)
            button.setCheckable(True)
            button.setChecked(seconds == self.span)
            self.buttons.addButton(button, i)
            top.addWidget(button)
        self.buttons.idClicked.connect(lambda i: self.show_range(RANGES[i][1]))
        layout.addLayout(top)
        self.status = QLabel("")
        self.status.setStyleSheet("color: #5f6368")
        layout.addWidget(self.status)
        self.graphics = pg.GraphicsLayoutWidget()
        layout.addWidget(self.graphics, 1)

    # --- plots

    def _plot_for(self, name: str) -> pg.PlotItem:
        if name in self.plots:
            return self.plots[name]
        row = len(self.plots)
        plot = self.graphics.addPlot(row=row, col=0, axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        plot.setLabel("left", f"{metric_label(name)} ({metric_unit(name)})")
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setMouseEnabled(x=True, y=False)
        plot.setYRange(0, 110, padding=0)
        plot.hideButtons()
        if self.plots:
            plot.setXLink(next(iter(self.plots.values())))
        self.plots[name] = plot
        self.curves[name] = plot.plot(pen=pg.mkPen(LINE, width=1), connect="finite", name="samples")
        self.hourly[name] = plot.plot(pen=pg.mkPen(HOURLY, width=2.5), connect="finite", name="hourly mean")
        self._draw_rules(name)
        return plot

    def _draw_rules(self, name: str) -> None:
        plot = self.plots[name]
        for item in self.rule_lines.pop(name, []):
            plot.removeItem(item)
        items = []
        by_key = dict(zip(rule_keys(self.config.rules), self.config.rules))
        results = {r.metric + str(r.window_seconds): r for r in self.results}
        for key, rule in by_key.items():
            if rule.metric != name:
                continue
            # red's label above its line, orange's below: the two lines are often close together
            for value, color, word, anchor in ((rule.orange, "#f29900", "orange", (1, 0)), (rule.red, "#d93025", "red", (1, 1))):
                line = pg.InfiniteLine(pos=value, angle=0, pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine),
                                       label=f"{word} {value:g}", labelOpts={"position": 0.99, "color": color, "anchors": [anchor, anchor]})
                plot.addItem(line)
                items.append(line)
            result = results.get(rule.metric + str(rule.window_seconds))
            if result is not None and result.average is not None:
                color = LEVEL_COLORS[result.level]
                avg = pg.InfiniteLine(pos=result.average, angle=0, pen=pg.mkPen(color, width=2, style=Qt.PenStyle.DotLine),
                                      label=f"{human_duration(rule.window_seconds)} avg {result.average:.1f}",
                                      labelOpts={"position": 0.01, "color": color, "anchors": [(0, 0), (0, 0)], "fill": (255, 255, 255, 200)})
                plot.addItem(avg)
                items.append(avg)
        self.rule_lines[name] = items

    # --- data

    def set_results(self, results: tuple[RuleResult, ...], config: Config | None = None) -> None:
        """Each rule's current window average (from the sampler), drawn and summarised."""
        if config is not None:
            self.config = config
        changed = [r.average for r in results] != [r.average for r in self.results]
        self.results = results
        parts = []
        for r in results:
            avg = "n/a" if r.average is None else f"{r.average:.1f} {metric_unit(r.metric)}"
            parts.append(
                f"<span style='color:{LEVEL_COLORS[r.level]}'>●</span> {human_duration(r.window_seconds)} avg "
                f"{metric_label(r.metric)} <b>{avg}</b> — {r.level.value} (over {human_duration(r.coverage_seconds)} of data)"
            )
        self.summary.setText("<br>".join(parts) or "no rules")
        if changed and self.isVisible():
            for name in self.plots:
                self._draw_rules(name)

    def show_range(self, span: float) -> None:
        self.span = span
        for i, (_, seconds) in enumerate(RANGES):
            self.buttons.button(i).setChecked(seconds == span)
        if span == LIVE_SECONDS:
            self.refresh_live()
            return
        self._request += 1
        request = self._request
        self.status.setText("reading history…")
        self._idle.stop()
        future = self._pool.submit(self._load, self.data_dir, span)
        future.add_done_callback(lambda f: self._bridge.loaded.emit((request, f)))
        recent = self.quick(span) if self.quick is not None else {}
        if recent:  # the rule metrics are in memory already: paint them now, the rest follows
            self._draw(series_from_memory(recent, span, time.time()))
            self.status.setText("36 h of the rule metrics from memory; reading the rest from disk…")
            self.first_paint.emit(span)

    def _load(self, data_dir: Path, span: float) -> Series:
        """On the worker thread: the child reads; if it cannot run, read here instead."""
        try:
            meta, arrays = self.reader.request({"job": "history", "data_dir": str(data_dir), "span": span})
            return Series.from_arrays(meta, arrays)
        except JobFailed as exc:
            log.warning("history reader: %s; reading in this process", exc)
            return prepare_history(data_dir, span)

    def _reader_idle(self) -> None:
        if not self.isVisible() and not self.reader.close_if_idle():
            self._idle.start(int(self.reader.idle_seconds * 1000))

    def _draw_history(self, item: tuple) -> None:
        request, future = item
        if request != self._request:
            return  # a newer range was asked for meanwhile
        try:
            series: Series = future.result()
        except Exception as exc:  # a read that failed: say so, keep the window
            self.status.setText(f"could not read history: {exc}")
            return
        self._draw(series)
        label = next(lbl for lbl, s in RANGES if s == series.span)
        self.status.setText(f"{label}: {series.rows} samples, read in {series.took * 1000:.0f} ms; dark line: hourly means")
        self.range_loaded.emit(series)

    def _draw(self, series: Series) -> None:
        for name in plotted_columns(list(series.curves)):
            self._plot_for(name)
        for name, curve in self.curves.items():
            x, y = series.curves.get(name, (np.empty(0), np.empty(0)))
            curve.setData(x, y, connect="finite")
            hx, hy = series.hourly.get(name, (np.empty(0), np.empty(0)))
            self.hourly[name].setData(hx, hy, connect="finite")
            self.hourly[name].setVisible(True)
        for plot in self.plots.values():
            plot.setXRange(series.start, series.end, padding=0)

    def refresh_live(self) -> None:
        """Redraw the live view from memory (called on each tick while it is shown)."""
        if self.span != LIVE_SECONDS:
            return
        t, columns = self.live.arrays()
        for name in plotted_columns(list(columns)):
            if not np.isnan(columns[name]).all():
                self._plot_for(name)
        for name, curve in self.curves.items():
            curve.setData(t, columns.get(name, np.full(len(t), np.nan)), connect="finite")
            self.hourly[name].setVisible(False)
        now = time.time()
        for plot in self.plots.values():
            plot.setXRange(now - LIVE_SECONDS, now, padding=0)
        self.status.setText(f"Live: last {LIVE_SECONDS // 60} minutes, {len(t)} samples, updating each sample")

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self.show_range(self.span)

    def hideEvent(self, event) -> None:  # noqa: N802
        self._request += 1  # drop any read in flight
        self._idle.start(int(self.reader.idle_seconds * 1000) + 1000)
        super().hideEvent(event)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.reader.close()
