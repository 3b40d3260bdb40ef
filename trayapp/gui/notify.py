"""Desktop notifications with buttons ("Open history", "Snooze 1 h") through the freedesktop
notification service on D-Bus (jeepney), where the desktop has one; imports Qt, never the engine."""

from __future__ import annotations

import logging
import queue
import threading

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

ACTIONS = ("default", "Open history", "open", "Open history", "snooze", "Snooze 1 h")
_PATH, _NAME = "/org/freedesktop/Notifications", "org.freedesktop.Notifications"


class DBusNotifier(QObject):
    """Sends notifications and reports their buttons (``invoked``: ``open``, ``snooze`` or
    ``default`` for a click on the text). One thread owns the D-Bus connection, so no call
    ever waits on the GUI thread; it wakes once a second to see whether it should stop."""

    invoked = Signal(str)

    def __init__(self, connection, address) -> None:
        super().__init__()
        self._connection = connection
        self._address = address
        self._outgoing: queue.SimpleQueue = queue.SimpleQueue()
        self._ids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trayapp-notify", daemon=True)

    @classmethod
    def open(cls, timeout: float = 2.0) -> "DBusNotifier | None":
        """A notifier if the session bus has a notification service that shows buttons; else None."""
        try:
            from jeepney import DBusAddress, new_method_call
            from jeepney.io.blocking import open_dbus_connection

            connection = open_dbus_connection(bus="SESSION")
        except Exception as exc:  # no jeepney, no session bus, refused: Qt's own messages then
            log.debug("no D-Bus notifications: %s", exc)
            return None
        address = DBusAddress(_PATH, bus_name=_NAME, interface=_NAME)
        try:
            reply = connection.send_and_get_reply(new_method_call(address, "GetCapabilities"), timeout=timeout)
            capabilities = list(reply.body[0])
        except Exception as exc:  # no notification service on this bus
            log.debug("no D-Bus notification service: %s", exc)
            connection.close()
            return None
        if "actions" not in capabilities:
            connection.close()
            return None
        notifier = cls(connection, address)
        notifier._thread.start()
        return notifier

    def notify(self, title: str, text: str, urgency: int = 1, timeout_ms: int = 8000) -> None:
        """Queue a notification (urgency 0 low, 1 normal, 2 critical); returns at once."""
        self._outgoing.put((title, text, urgency, timeout_ms))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(3.0)

    def _run(self) -> None:
        from jeepney import HeaderFields, MatchRule, message_bus, new_method_call

        connection = self._connection
        rule = MatchRule(type="signal", interface=_NAME, path=_PATH)
        try:
            connection.send_and_get_reply(message_bus.AddMatch(rule), timeout=2.0)
            with connection.filter(rule) as signals:
                while not self._stop.is_set():
                    while not self._outgoing.empty():
                        title, text, urgency, timeout_ms = self._outgoing.get()
                        call = new_method_call(self._address, "Notify", "susssasa{sv}i", (
                            "trayapp", 0, "", title, text, list(ACTIONS), {"urgency": ("y", urgency)}, timeout_ms))
                        try:
                            self._ids.add(int(connection.send_and_get_reply(call, timeout=2.0).body[0]))
                        except Exception as exc:  # the service went away: this one is lost, say so
                            log.warning("desktop notification not shown: %s", exc)
                    try:
                        message = connection.recv_until_filtered(signals, timeout=1.0)
                    except TimeoutError:
                        continue
                    if message.header.fields.get(HeaderFields.member) == "ActionInvoked":
                        nid, key = message.body
                        if nid in self._ids:
                            self.invoked.emit(str(key))
        except Exception as exc:  # the bus closed under us: notifications stop, the app goes on
            log.warning("desktop notifications stopped: %s", exc)
        finally:
            connection.close()
