"""The sampler thread: a QThread around the core's engine and the Slack courier.

Imports Qt and the core. It emits immutable values (ticks, messages) through signals; it never
touches a widget. Seeding from disk happens here, so the icon appears before history is read.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from trayapp.engine import EarlyOpen, Engine
from trayapp.settings import Config
from trayapp.slack import Courier
from trayapp.storage import StoreError

log = logging.getLogger(__name__)


class Sampler(QThread):
    ready = Signal(object)  # the Engine's data folder (Path) once seeded
    ticked = Signal(object)  # trayapp.engine.Tick
    failed = Signal(str)  # could not start: one line for the user
    slack_status = Signal(str)  # '' when all is well
    started_up = Signal()  # the first open is over, recording or not (after ``ready`` or ``failed``)

    def __init__(self, config: Config, data_dir: Path, parent=None, early: EarlyOpen | None = None) -> None:
        """``early``: the store's opening, begun before Qt was loaded (``cli.cmd_gui``)."""
        super().__init__(parent)
        self._early = early
        self.setObjectName("trayapp-sampler")
        self._config = config
        self._data_dir = Path(data_dir)
        self._wake = threading.Event()
        self._stopping = False
        self._paused = False
        self._pending: tuple[Config, Path] | None = None
        self.engine: Engine | None = None
        self.courier: Courier | None = None
        self._starting = True  # until the first open of the folder has succeeded or failed
        self.listeners: list = []  # extra tick listeners run on this thread (Prometheus)

    # --- called from the GUI thread
    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        self._wake.set()

    def apply(self, config: Config, data_dir: Path) -> None:
        self._pending = (config, Path(data_dir))
        self._wake.set()

    def stop(self, wait_ms: int = 10000) -> None:
        self._stopping = True
        self._wake.set()
        self.wait(wait_ms)

    @property
    def paused(self) -> bool:
        return self._paused

    def recent(self, span: float) -> dict:
        """What the rule windows hold for ``span`` (see ``Engine.recent``); ``{}`` before start."""
        engine = self.engine
        return engine.recent(span) if engine is not None else {}

    def starting(self, data_dir: Path) -> bool:
        """True while this sampler is still opening ``data_dir`` at start-up (``ready`` or
        ``failed`` comes next)."""
        return self._starting and Path(data_dir).resolve() == self._data_dir.resolve()

    def processes_at(self, t: float) -> str:
        """The busiest processes of the minute holding ``t`` (``Engine.processes_at``)."""
        engine = self.engine
        return engine.processes_at(t) if engine is not None else ""

    def processes_over(self, start: float, end: float) -> str:
        """Who used the machine over a stretch of time (``Engine.processes_over``)."""
        engine = self.engine
        return engine.processes_over(start, end) if engine is not None else ""

    def minutes(self, data_dir: Path):
        """The store's minute bins of its CSV (``Store.minutes``) when it records into
        ``data_dir``, else None: the window reads today from them."""
        engine = self.engine
        if engine is None or engine.data_dir.resolve() != Path(data_dir).resolve():
            return None
        return engine.store.minutes

    def rows(self, data_dir: Path):
        """The store's rows file of its CSV (``RowsFile.view``) when it records into ``data_dir``,
        else None: a zoom reads today's raw samples from it."""
        engine = self.engine
        if engine is None or engine.data_dir.resolve() != Path(data_dir).resolve():
            return None
        day_rows = engine.store.rows
        return day_rows.view() if day_rows is not None else None

    # --- the thread
    def _open(self, config: Config, data_dir: Path) -> bool:
        early, self._early = self._early, None
        if early is not None and early.engine.data_dir == data_dir:
            engine = early.engine
            early.wait()
        else:
            if early is not None:  # opened for another folder: let it go
                early.close()
            early = None
            engine = Engine(config, data_dir, dataset_in_child=True, keep_minutes=True)
        engine.contributors_each_tick = True  # the tooltip names them
        try:
            if early is not None and early.error is not None:
                raise early.error
            engine.start()
        except (StoreError, OSError) as exc:
            self.failed.emit(str(exc))
            return False
        courier = Courier(data_dir, lambda: engine.config, on_status=self.slack_status.emit)
        engine.listeners.append(courier.on_tick)
        engine.listeners.append(self.ticked.emit)
        engine.listeners.extend(self.listeners)
        courier.start()
        self.engine, self.courier = engine, courier
        self._data_dir = data_dir
        self.ready.emit(data_dir)
        return True

    def _close(self) -> None:
        if self.engine is not None:
            self.engine.stop()
        if self.courier is not None:
            self.courier.stop(timeout=3.0)
        self.engine = self.courier = None

    def run(self) -> None:
        try:
            opened = self._open(self._config, self._data_dir)
        finally:
            self._starting = False
            self.started_up.emit()
        if not opened:
            return
        next_at = time.monotonic()
        try:
            while not self._stopping:
                if self._pending is not None:
                    config, data_dir = self._pending
                    self._pending = None
                    self._switch(config, data_dir)
                    if self.engine is None:
                        return
                if not self._paused:
                    try:
                        self.engine.tick()
                    except Exception:  # keep sampling whatever one tick hit
                        log.exception("a tick failed")
                step = self.engine.config.sampling_interval_seconds
                next_at += step
                delay = next_at - time.monotonic()
                if delay < 0:
                    next_at, delay = time.monotonic(), 0.0
                self._wake.wait(delay)
                if self._wake.is_set():
                    self._wake.clear()
                    next_at = time.monotonic() if self._pending is None else next_at
        finally:
            self._close()

    def _switch(self, config: Config, data_dir: Path) -> None:
        assert self.engine is not None
        if data_dir.resolve() == self._data_dir.resolve():
            self.engine.apply(config)
            return
        old_config, old_dir = self.engine.config, self._data_dir
        self._close()
        if not self._open(config, data_dir):
            self._open(old_config, old_dir)  # keep recording where it was
