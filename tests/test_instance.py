"""Asking a running tray app for its window without Qt (``trayapp/instance.py``): the socket path
is the one Qt's QLocalServer listens on, and the answer is Qt's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtNetwork")

from trayapp import instance  # noqa: E402

pytestmark = pytest.mark.skipif(os.name != "posix", reason="QLocalServer is a Unix socket on POSIX only")


def test_the_socket_is_where_qt_listens_and_a_show_is_answered(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtNetwork import QLocalServer

    monkeypatch.setenv("TMPDIR", str(tmp_path) + "/")  # Qt cleans the trailing slash; so must we
    name = instance.instance_name(tmp_path / "data")
    server = QLocalServer()
    assert server.listen(name), server.errorString()
    try:
        assert server.fullServerName() == instance.socket_path(name)
        asked: list[bytes] = []

        def on_connection() -> None:
            conn = server.nextPendingConnection()

            def answer() -> None:
                asked.append(bytes(conn.readAll().data()))
                conn.write(b"ok\n")
                conn.flush()

            conn.readyRead.connect(answer)

        server.newConnection.connect(on_connection)
        from threading import Thread

        got: list[bool | None] = []
        asker = Thread(target=lambda: got.append(instance.ask_running(name, "7d")))
        asker.start()
        qtbot.waitUntil(lambda: not asker.is_alive(), timeout=10000)
        assert got == [True] and asked == [b"show 7d\n"]
    finally:
        server.close()
    assert instance.ask_running(name) is False  # nobody listens now


def test_where_it_cannot_be_told_the_wait_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instance, "ask_running", lambda name, history=None: None)
    assert instance.wait_for_running("trayapp-x", None, seconds=30) is False  # at once: run_gui's Qt check decides


def test_only_a_tray_app_holding_the_folder_is_waited_for(tmp_path: Path) -> None:
    (tmp_path / ".writer.pid").write_text(str(os.getpid()))  # this test process: not `trayapp gui`
    assert instance.holder_is_tray_app(tmp_path) is False
    (tmp_path / ".writer.pid").write_text("not a pid")
    assert instance.holder_is_tray_app(tmp_path) is False
