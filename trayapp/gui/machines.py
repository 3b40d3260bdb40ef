"""The fleet poller of the tray app: ``fleet.FleetReader`` on a thread of its own, its answers delivered by a signal.

Imports Qt and ``fleet``; never pyarrow or pandas. Nothing here blocks the GUI thread: a slow server holds only its thread.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from trayapp.fleet import FleetReader, FleetState
from trayapp.rules import parse_duration


class FleetWatcher(QObject):
    """Asks the ``[fleet]`` server every ``interval`` and emits ``updated(FleetState)`` on the
    GUI thread (a queued signal). New settings start a new poller; the old one's late answer is
    dropped, never shown."""

    updated = Signal(object)  # FleetState
    _answered = Signal(int, object)  # (generation, FleetState), emitted on the poller's thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._generation = 0
        self._stop: threading.Event | None = None
        self._key: tuple | None = None
        self._interval = 30.0
        self._answered.connect(self._deliver)  # same-object signal from another thread: queued to this one

    @property
    def running(self) -> bool:
        return self._stop is not None

    def apply(self, config) -> None:  # noqa: ANN001 - settings.Config
        """Poll as ``config`` says; no URL: stop. A changed interval alone keeps the poller."""
        self._interval = parse_duration(config.fleet_interval)
        key = (config.fleet_url, config.fleet_user, config.fleet_password, config.fleet_token, config.fleet_verify_tls,
               config.fleet_job)
        if key == self._key and (self._stop is not None) == bool(config.fleet_url):
            return
        self.stop()
        self._key = key
        if not config.fleet_url:
            return
        self._stop = stop = threading.Event()
        generation = self._generation
        threading.Thread(target=self._poll, args=(config, stop, generation), name="trayapp-fleet", daemon=True).start()

    def stop(self) -> None:
        """Stop polling; returns at once (a request under way ends by its timeout, unheard)."""
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        self._generation += 1
        self._key = None

    def _poll(self, config, stop: threading.Event, generation: int) -> None:  # noqa: ANN001 - settings.Config
        reader = FleetReader.from_config(config)  # here: its TLS context reads the system's certificates
        while not stop.is_set():
            state = reader.poll()  # never raises: a fault is state.error
            if stop.is_set():
                return
            try:
                self._answered.emit(generation, state)
            except RuntimeError:  # the app went away between the check and the emit
                return
            stop.wait(self._interval)

    def _deliver(self, generation: int, state: FleetState) -> None:
        if generation == self._generation:
            self.updated.emit(state)
