"""The history window's "Now" panel: big current numbers, per-core bars, the top processes.

Imports Qt, psutil, ``model`` and ``history`` (the plots' order). Fed each tick's sample by the
window; the process list is read on a worker thread every few seconds, and only while the panel is
visible (nothing runs when closed).
"""

from __future__ import annotations

import html
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psutil
from PySide6.QtCore import QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from trayapp.history import plotted_columns
from trayapp.model import Sample, format_value, metric_label, metric_range, metric_unit

PROCESS_EVERY_MS = 3000
TOP = 5


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str
    cpu: float  # share of the whole machine, %
    memory: float  # share of RAM, %


def top_processes(count: int = TOP) -> tuple[list[Proc], list[Proc]]:
    """The busiest processes by CPU (since the previous call: psutil keeps the processes it
    yields, so each one's CPU time is measured between two calls) and by memory."""
    cores = psutil.cpu_count() or 1
    procs = []
    for p in psutil.process_iter(["name", "memory_percent"]):
        try:
            cpu = p.cpu_percent(None) / cores
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        info = p.info
        procs.append(Proc(p.pid, info.get("name") or "?", cpu, info.get("memory_percent") or 0.0))
    by_cpu = sorted(procs, key=lambda q: q.cpu, reverse=True)[:count]
    by_memory = sorted(procs, key=lambda q: q.memory, reverse=True)[:count]
    return by_cpu, by_memory


class CoreBars(QWidget):
    """One thin bar per logical core, coloured by load: a 128-core server still fits."""

    def __init__(self) -> None:
        super().__init__()
        self.cores: tuple[float, ...] = ()
        self.setMinimumSize(120, 44)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("each logical core's load now")

    def set_cores(self, cores: tuple[float, ...]) -> None:
        if cores != self.cores:
            self.cores = cores
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if not self.cores:
            return
        p = QPainter(self)
        w, h = self.width(), self.height()
        step = w / len(self.cores)
        back = self.palette().color(self.backgroundRole()).darker(115)
        for i, load in enumerate(self.cores):
            x = i * step
            p.fillRect(QRectF(x, 0, max(step - 1, 1), h), back)
            fill = max(0.0, min(load, 100.0)) / 100 * h
            colour = QColor("#d93025") if load > 90 else QColor("#f29900") if load >= 80 else QColor("#1a73e8")
            p.fillRect(QRectF(x, h - fill, max(step - 1, 1), fill), colour)
        p.end()


class _Bridge(QObject):
    processes = Signal(object)


LISTS_MIN_WIDTH = 720  # a Now panel narrower than this shows no process lists
_SAMPLES = (0.0, 1.0, 8.88, 88.8, 100.0, 888.0, 8888.0, 88.8e3, 888e3, 88.8e6, 888e6)  # format_value's widest texts


def _texts(name: str) -> list[str]:
    """The texts a metric's big number can show: '88.8 MB/s', '8,888 RPM', 'plugged in', 'n/a'
    (fans and power as machines have them, under 10,000, not as far as a rule may reach)."""
    top = metric_range(name)[1]
    top = min(top, 9999.0) if metric_unit(name) in ("RPM", "W") else max(top, 1.0)
    return ["n/a", *(format_value(name, v) for v in _SAMPLES if v <= top)]


class NowPanel(QFrame):
    """What the machine is doing this second, above the plots."""

    def __init__(self) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        numbers = QWidget()  # may be cut in a narrow window rather than make the window wider
        numbers.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.numbers = QGridLayout(numbers)
        self.numbers.setContentsMargins(0, 0, 0, 0)
        self.numbers.setHorizontalSpacing(14)
        self.values: dict[str, QLabel] = {}
        self._columns = 5  # numbers a row: fewer in a narrow window
        self._muted = "palette(placeholder-text)"  # the titles' colour, until the window's theme says (set_muted)
        self._titles: list[QLabel] = []
        self._cells: dict[str, QWidget] = {}  # each number with its title
        left = QVBoxLayout()
        left.addWidget(numbers)
        self.bars = CoreBars()
        left.addWidget(self.bars)
        layout.addLayout(left, 5)
        self.top_cpu = QLabel()
        self.top_memory = QLabel()
        for label in (self.top_cpu, self.top_memory):
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setAlignment(Qt.AlignmentFlag.AlignTop)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            layout.addWidget(label, 2)
        self.top_cpu.setMinimumWidth(10)
        self.refreshes = 0  # process scans done (tests check that none run while hidden)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trayapp-processes")
        self._bridge = _Bridge()
        self._bridge.processes.connect(self._show_processes)
        self._busy = False
        self._primed = False  # a first scan has no CPU shares yet (all 0 %): not shown
        self.timer = QTimer(self)
        self.timer.setInterval(PROCESS_EVERY_MS)
        self.timer.timeout.connect(self.refresh_processes)
        self._second = QTimer(self)  # the scan that gives the first CPU shares, a second after start
        self._second.setSingleShot(True)
        self._second.setInterval(1000)
        self._second.timeout.connect(self.refresh_processes)

    # --- the numbers

    def show_sample(self, sample: Sample) -> None:
        values = {name: v for name, v in sample.values().items() if v is not None}
        new = [name for name in values if name not in self.values]
        for name in new:
            self._add_number(name)
        if new:
            self._fit(place=True)  # a new cell may be the widest
        for name, value in values.items():
            self.values[name].setText(format_value(name, value))
        for name, label in self.values.items():
            if name not in values:
                label.setText("n/a")
        self.bars.set_cores(sample.cores)
        self.bars.setVisible(bool(sample.cores))

    def set_muted(self, colour: str) -> None:
        """The numbers' titles in the window's muted colour: a palette without its own placeholder
        colour (many dark ones) left them dark on dark."""
        self._muted = colour
        for title in self._titles:
            title.setStyleSheet(f"color: {colour}; font-size: 8pt")

    def _add_number(self, name: str) -> None:
        widget = QWidget()
        cell = QVBoxLayout(widget)
        cell.setContentsMargins(0, 0, 0, 0)
        title = QLabel(metric_label(name))
        title.setStyleSheet(f"color: {self._muted}; font-size: 8pt")
        self._titles.append(title)
        value = QLabel("n/a")
        font = value.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        value.setFont(font)
        cell.addWidget(title)
        cell.addWidget(value)
        self._cells[name] = widget
        self.values[name] = value

    def _place_numbers(self) -> None:
        """In the plots' order, whatever came first: the rates and the busiest core come a tick
        after CPU and memory, sensors ten seconds later."""
        order = plotted_columns(list(self._cells))
        order += [name for name in self._cells if name not in order]  # not plotted (on mains power)
        for widget in self._cells.values():
            self.numbers.removeWidget(widget)
        for i, name in enumerate(order):
            self.numbers.addWidget(self._cells[name], i // self._columns, i % self._columns)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit()

    def _fit(self, place: bool = False) -> None:
        """A narrow window: the process lists go (a PID with no name says nothing) and the
        numbers take fewer columns, so none is cut ('busiest co', '1.8 \'')."""
        narrow = self.width() < LISTS_MIN_WIDTH
        for label in (self.top_cpu, self.top_memory):
            label.setVisible(not narrow)
        room = self.width() - 24 if narrow else (self.width() - 24) * 5 // 9  # the numbers' share beside the lists (5 : 2 : 2)
        columns = max(2, min(5, (room + 14) // (self._number_width() + 14)))
        if columns != self._columns or place:
            self._columns = columns
            self._place_numbers()

    def _number_width(self) -> int:
        """What the widest cell needs: its title, or the widest text its number can show (``_texts``)."""
        widths = [80]
        for name, value in self.values.items():
            title = self._cells[name].findChild(QLabel)
            metrics = value.fontMetrics()
            widths += [title.fontMetrics().horizontalAdvance(title.text()), *(metrics.horizontalAdvance(text) for text in _texts(name))]
        return max(widths)

    # --- the processes

    def start(self) -> None:
        if not self.timer.isActive():
            self._primed = False
            self.refresh_processes()  # CPU shares need two scans: this one only starts the clock
            self._second.start()
            self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self._second.stop()

    def refresh_processes(self) -> None:
        if self._busy or self.top_cpu.isHidden():
            return  # a slow scan is still running, or the lists are not shown (a narrow window)
        self._busy = True
        self.refreshes += 1
        self._pool.submit(top_processes).add_done_callback(lambda f: self._bridge.processes.emit(f))

    def _show_processes(self, future) -> None:
        self._busy = False
        try:
            by_cpu, by_memory = future.result()
        except Exception:  # noqa: BLE001 (a scan that failed shows nothing rather than stopping)
            return
        me = os.getpid()

        def table(title: str, rows: list[Proc], value) -> str:
            # the numbers first, the name last: a narrow window clips the right edge, which must
            # cut a name's tail, never a share or a PID
            lines = "".join(
                f"<tr><td align=right><b>{value(p)}</b>&nbsp;</td>"
                f"<td align=right>{p.pid}&nbsp;</td>"
                f"<td>{html.escape(p.name[:22])}{' (trayapp)' if p.pid == me else ''}</td></tr>"
                for p in rows
            )
            return f"<b>{title}</b><table cellspacing=0>{lines}</table>"

        if self._primed:
            self.top_cpu.setText(table("Top CPU", by_cpu, lambda p: f"{p.cpu:.1f} %"))
        self._primed = True
        self.top_memory.setText(table("Top memory", by_memory, lambda p: f"{p.memory:.1f} %"))

    def shutdown(self) -> None:
        self.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
