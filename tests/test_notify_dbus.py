"""Notifications with buttons on a real (private) D-Bus session bus: a notification service
written here with jeepney records what trayapp sends and presses its buttons."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")
pytest.importorskip("jeepney")
if not shutil.which("dbus-daemon") and not os.environ.get("CI"):
    pytest.skip("needs dbus-daemon", allow_module_level=True)

from jeepney import DBusAddress, HeaderFields, MessageType, message_bus, new_method_return, new_signal  # noqa: E402
from jeepney.io.blocking import open_dbus_connection  # noqa: E402

from trayapp.engine import Tick  # noqa: E402
from trayapp.gui.app import TrayApp  # noqa: E402
from trayapp.model import Level, RuleResult, Sample, Transition  # noqa: E402
from trayapp.settings import Config, Loaded  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")
NAME, PATH = "org.freedesktop.Notifications", "/org/freedesktop/Notifications"


class NotificationService:
    """The freedesktop notification service, as much as trayapp uses of it."""

    def __init__(self, capabilities: list[str]) -> None:
        self.capabilities = capabilities
        self.shown: list[tuple] = []
        self.connection = open_dbus_connection(bus="SESSION")
        reply = self.connection.send_and_get_reply(message_bus.RequestName(NAME), timeout=5)
        assert reply.body[0] == 1  # primary owner
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                message = self.connection.receive()
            except (OSError, ValueError):
                return
            if message.header.message_type != MessageType.method_call:
                continue
            member = message.header.fields.get(HeaderFields.member)
            if member == "GetCapabilities":
                self.connection.send(new_method_return(message, "as", (self.capabilities,)))
            elif member == "Notify":
                self.shown.append(message.body)
                self.connection.send(new_method_return(message, "u", (len(self.shown),)))

    def press(self, notification: int, key: str) -> None:
        address = DBusAddress(PATH, interface=NAME)
        self.connection.send(new_signal(address, "ActionInvoked", "us", (notification, key)))

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def session_bus(monkeypatch: pytest.MonkeyPatch):
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address = daemon.stdout.readline().strip()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    yield address
    daemon.terminate()
    daemon.wait(10)
    daemon.stdout.close()


def _red_tick() -> Tick:
    now = datetime.now(timezone.utc)
    result = RuleResult("cpu_percent", 129600, 95.0, 100, 14 * 3600, Level.RED, 80.0, 90.0)
    return Tick(Sample(now, 99.0, 40.0, 70.0), (result,), Level.RED, (Transition("cpu_percent/36h", Level.OK, Level.RED, result, now),), True)


@pytest.mark.slow  # over a second or two: `make test-all`
def test_notification_buttons_open_the_history_and_snooze(qtbot, session_bus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = NotificationService(["actions", "body"])
    app = TrayApp(Loaded(Config(), tmp_path / "config.toml", []), tmp_path / "data", tmp_path / "config.toml")
    opened: list = []
    monkeypatch.setattr(app, "show_history", lambda *a: opened.append(a))
    monkeypatch.setattr(app.tray, "showMessage", lambda *a: pytest.fail("Qt's message instead of D-Bus"))
    try:
        app._open_notifier()
        assert app.notifier is not None
        app.on_tick(_red_tick())
        qtbot.waitUntil(lambda: len(service.shown) == 1, timeout=5000)
        app_name, _, _, title, body, actions, hints, timeout = service.shown[0]
        assert (app_name, title) == ("trayapp", "CPU red")
        assert body.startswith("36 h avg CPU 95 % — red")
        assert actions == ["default", "Open history", "open", "Open history", "snooze", "Snooze 1 h"]
        assert hints["urgency"] == ("y", 2) and timeout == 8000
        service.press(1, "open")
        qtbot.waitUntil(lambda: opened == [()], timeout=5000)
        service.press(1, "snooze")
        qtbot.waitUntil(app.is_snoozed, timeout=5000)
        assert (tmp_path / "data" / "state" / "snooze.json").exists()  # Slack's courier reads the same
        service.press(99, "open")  # someone else's notification: not ours to act on
        app.on_tick(_red_tick())  # snoozed: nothing shown
        qtbot.wait(1500)
        assert opened == [()] and len(service.shown) == 1
    finally:
        app.shutdown()
        service.close()


def test_without_buttons_or_a_service_qt_messages_are_used(qtbot, session_bus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = TrayApp(Loaded(Config(), tmp_path / "config.toml", []), tmp_path / "data", tmp_path / "config.toml")
    shown: list = []
    monkeypatch.setattr(app.tray, "showMessage", lambda title, *a: shown.append(title))
    try:
        app._open_notifier()  # nobody owns the name on this bus
        assert app.notifier is None
        service = NotificationService(["body"])  # a service that cannot show buttons
        try:
            app._open_notifier()
            assert app.notifier is None
        finally:
            service.close()
        app.on_tick(_red_tick())
        assert shown == ["CPU red"]
    finally:
        app.shutdown()
