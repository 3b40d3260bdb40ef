"""The history window's "Now" panel: big current numbers, per-core bars, the top processes.

Imports Qt, psutil, ``model`` and ``storage`` (the plots' order). Fed each tick's sample by the
window; the process list is read on a worker thread every few seconds, and only while the panel is
visible (nothing runs when closed).
"""

from __future__ import annotations

import html
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import psutil
from PySide6.QtCore import QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QCursor, QFontMetrics, QPainter
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QToolTip, QVBoxLayout, QWidget

from trayapp import privacy

from trayapp.storage import plotted_columns
from trayapp.model import Sample, format_value, metric_label, metric_range, metric_unit

PROCESS_EVERY_MS = 3000
TOP = 5


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str
    cpu: float  # share of the whole machine, %
    memory: float  # share of RAM, %
    command: str = ""  # its command line, secrets masked ('' where it cannot be read)

    @property
    def short(self) -> str:
        """What a person calls it: ``python train.py`` rather than ``python``; the name alone
        where the command line says no more."""
        words = self.command.split()
        if len(words) >= 2 and os.path.basename(words[0]).startswith(self.name[:15]):
            script = next((w for w in words[1:] if not w.startswith("-")), "")
            if script:
                return f"{self.name} {os.path.basename(script.rstrip('/'))}"
        return self.name


def top_processes(count: int = TOP) -> tuple[list[Proc], list[Proc]]:
    """The busiest processes by CPU (since the previous call: psutil keeps the processes it
    yields, so each one's CPU time is measured between two calls) and by memory, with the
    command lines of those shown (read for those only)."""
    cores = psutil.cpu_count() or 1
    procs = []
    handles = {}
    for p in psutil.process_iter(["name", "memory_percent"]):
        try:
            cpu = p.cpu_percent(None) / cores
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        info = p.info
        procs.append(Proc(p.pid, info.get("name") or "?", cpu, info.get("memory_percent") or 0.0))
        handles[p.pid] = p
    by_cpu = sorted(procs, key=lambda q: q.cpu, reverse=True)[:count]
    by_memory = sorted(procs, key=lambda q: q.memory, reverse=True)[:count]
    commands: dict[int, str] = {}
    for proc in {q.pid: q for q in by_cpu + by_memory}.values():
        try:
            commands[proc.pid] = privacy.redact_command(" ".join(handles[proc.pid].cmdline()))
        except (psutil.Error, OSError):  # another user's, or gone: its name says what is known
            commands[proc.pid] = ""
    with_command = lambda rows: [replace(q, command=commands.get(q.pid, "")) for q in rows]  # noqa: E731
    return with_command(by_cpu), with_command(by_memory)


class CoreBars(QWidget):
    """One thin bar per logical core, in a neutral colour: a busy core is work, not an alarm.
    Only past the CPU rule's thresholds is a bar orange or red; hovering says the core's load.
    A 128-core server still fits."""

    NEUTRAL = "#7f8fa6"

    def __init__(self) -> None:
        super().__init__()
        self.cores: tuple[float, ...] = ()
        self.thresholds: tuple[float, float] | None = None  # the CPU rule's orange and red, if it has one
        self.setMinimumSize(120, 36)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)

    def colour(self, load: float) -> QColor:
        if self.thresholds is not None:
            orange, red = self.thresholds
            if load > red:
                return QColor("#d93025")
            if load >= orange:
                return QColor("#f29900")
        return QColor(self.NEUTRAL)

    def core_at(self, x: float) -> int | None:
        if not self.cores or not 0 <= x < self.width():
            return None
        return min(int(x / (self.width() / len(self.cores))), len(self.cores) - 1)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        i = self.core_at(event.position().x())
        if i is not None:
            QToolTip.showText(event.globalPosition().toPoint(), f"core {i}: {self.cores[i]:.0f} %", self)
        super().mouseMoveEvent(event)

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
            p.fillRect(QRectF(x, h - fill, max(step - 1, 1), fill), self.colour(load))
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
        self._rows: dict[QLabel, tuple[str, list[Proc], Any]] = {}  # what each list shows, to lay it out again at another width
        self._commands: dict[int, str] = {}
        for label in (self.top_cpu, self.top_memory):
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setAlignment(Qt.AlignmentFlag.AlignTop)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            label.linkHovered.connect(self._hovered)  # a process's name: its command line on hover
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
        self.remote: str | None = None  # the remote machine whose latest numbers are shown; None: this machine

    def show_machine(self, name: str | None) -> None:
        """Whose numbers: this machine's (None: each tick's, and its top processes) or a remote
        machine's latest sample, as Prometheus last scraped it (no process list: that is this
        machine's). The numbers of the machine shown before go."""
        self.remote = name
        for widget in self._cells.values():
            self.numbers.removeWidget(widget)
            widget.deleteLater()
        self._cells.clear()
        self.values.clear()
        self._titles.clear()
        self.bars.set_cores(())
        self.bars.setVisible(False)
        if name is not None:
            self.stop()
        self._fit(place=True)

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
        for label in self._rows:
            self._render(label)

    def _fit(self, place: bool = False) -> None:
        """A narrow window: the process lists go (a PID with no name says nothing) and the
        numbers take fewer columns, so none is cut ('busiest co', '1.8 \'')."""
        narrow = self.width() < LISTS_MIN_WIDTH
        for label in (self.top_cpu, self.top_memory):
            label.setVisible(not narrow and self.remote is None)
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
        if not self.timer.isActive() and self.remote is None:
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
        self._commands = {p.pid: p.command for p in by_cpu + by_memory}
        if self._primed:
            self._rows[self.top_cpu] = ("Top CPU", by_cpu, lambda p: f"{p.cpu:.1f} %")
            self._render(self.top_cpu)
        self._primed = True
        self._rows[self.top_memory] = ("Top memory", by_memory, lambda p: f"{p.memory:.1f} %")
        self._render(self.top_memory)

    def _render(self, label: QLabel) -> None:
        """A list as a table, the numbers first and each name elided to the room left (never
        cut by the edge); a name links to its PID and command line, shown on hover."""
        if label not in self._rows:
            return
        title, rows, value = self._rows[label]
        me = os.getpid()
        bold = label.font()
        bold.setBold(True)
        wide, plain = QFontMetrics(bold), label.fontMetrics()
        room = label.width() - max((wide.horizontalAdvance(value(p)) for p in rows), default=0) - 2 * plain.horizontalAdvance("\u00a0") - 6
        lines = "".join(  # the PID is on hover, with the command line: the name gets the room
            f"<tr><td align=right><b>{value(p)}</b>&nbsp;</td>"
            f"<td><a href='pid:{p.pid}' style='color: palette(window-text); text-decoration: none'>"
            f"{html.escape(plain.elidedText('trayapp' if p.pid == me else p.short, Qt.TextElideMode.ElideRight, max(room, 20)))}"
            f"</a></td></tr>"
            for p in rows
        )
        label.setText(f"<b>{title}</b><table cellspacing=0>{lines}</table>")

    def _hovered(self, link: str) -> None:
        if not link.startswith("pid:"):
            QToolTip.hideText()
            return
        pid = int(link[4:])
        command = self._commands.get(pid) or "(its command line cannot be read)"
        QToolTip.showText(QCursor.pos(), f"PID {pid}: {command}", self)

    def shutdown(self) -> None:
        self.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
