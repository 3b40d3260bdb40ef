"""Asking a running tray app for its window without Qt (``trayapp/instance.py``): the socket path
is the one Qt's QLocalServer listens on, and the answer is Qt's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtNetwork")

from trayapp import instance  # noqa: E402

pytestmark = pytest.mark.skipif(os.name != "posix", reason="QLocalServer is a Unix socket on POSIX only")


def short_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 0700 folder with a path short enough for a socket in it (pytest's are long)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="t23-", dir="/tmp"))
    import atexit

    atexit.register(shutil.rmtree, folder, True)
    return folder


def test_the_socket_is_where_qt_listens_and_a_show_is_answered(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtNetwork import QLocalServer

    monkeypatch.setenv("TMPDIR", str(tmp_path) + "/")  # Qt cleans the trailing slash; so must we
    run = short_folder(tmp_path, monkeypatch)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    name = instance.instance_name(tmp_path / "data")
    assert name.startswith(str(run / "trayapp") + "/")
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


@pytest.fixture
def private_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    run = short_folder(tmp_path, monkeypatch)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    return run


def test_a_runtime_folder_others_may_write_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = short_folder(tmp_path, monkeypatch)
    os.chmod(shared, 0o1777)  # like /tmp
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    monkeypatch.setenv("XDG_CACHE_HOME", str(short_folder(tmp_path, monkeypatch)))
    name = instance.instance_name(tmp_path / "data")
    assert not name.startswith(str(shared))
    folder = Path(name).parent
    assert folder.is_dir() and (folder.stat().st_mode & 0o777) == 0o700 and folder.stat().st_uid == os.getuid()


def _listener(path: str, answer: bytes = b"ok\n"):
    import socket
    from threading import Thread

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    got: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(2)
            try:
                got.append(conn.recv(64))
                conn.sendall(answer)
            except OSError:
                pass

    Thread(target=serve, daemon=True).start()
    return server, got


def test_an_answer_from_another_user_is_not_trusted(private_runtime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import socket

    name = instance.instance_name(tmp_path / "data")
    server, got = _listener(name)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:  # the real SO_PEERCRED: this user
            probe.connect(name)
            assert instance.peer_uid(probe) == os.getuid()
        server2, got2 = server, got
        # the same socket, held by "another user": the peer's real uid is not the one expected
        monkeypatch.setattr(instance, "_own_uid", lambda: os.getuid() + 1)
        assert instance.ask_running(name) is False
        assert instance.ask_running(name) is False
    finally:
        server.close()
    err = capsys.readouterr().err
    assert err.count("held by another user") == 1 and f"uid {os.getuid()}" in err
    assert b"show" not in b"".join(got2)  # nothing was sent to it


def test_a_stale_socket_is_nobody(private_runtime: Path, tmp_path: Path) -> None:
    import socket

    name = instance.instance_name(tmp_path / "data")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(name)  # bound, never listening, closed: what a crash leaves
    dead.close()
    assert os.path.exists(name)
    assert instance.ask_running(name) is False
    assert instance.wait_for_running(name, None, seconds=0.3) is False


def test_an_answer_from_this_user_is_trusted(private_runtime: Path, tmp_path: Path) -> None:
    name = instance.instance_name(tmp_path / "data")
    server, got = _listener(name)
    try:
        assert instance.ask_running(name, "30d") is True
    finally:
        server.close()
    assert got == [b"show 30d\n"]
