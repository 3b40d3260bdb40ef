"""One tray app per data folder: its instance name, and asking a running one to show its window
without Qt (``trayapp gui`` asks before it opens the data folder and before Qt is loaded).

Imports the standard library and, to tell what holds a data folder, psutil.
The running app listens with Qt's ``QLocalServer`` (``gui.app``), a Unix socket at
``$TMPDIR/<name>`` (``/tmp`` without ``TMPDIR``); it answers ``show [RANGE]`` with ``ok`` once its
window is shown. Elsewhere (Windows: named pipes) ``ask_running`` cannot tell, and the Qt check in
``gui.app.run_gui`` is the only one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

try:  # CPython's own SHA-1, as random.py does for SHA-512: hashlib loads OpenSSL (~3.5 MB resident) for one hash
    from _sha1 import sha1 as _sha1
except ImportError:  # another Python
    from hashlib import sha1 as _sha1

TRAY_START_S = 20.0  # a tray app that holds the folder answers within this long of taking it


def instance_name(folder: Path) -> str:
    digest = _sha1(str(Path(folder).resolve()).encode()).hexdigest()[:12]
    return f"trayapp-{os.getuid() if hasattr(os, 'getuid') else 'u'}-{digest}"


def socket_path(name: str) -> str:
    """Where Qt's ``QLocalServer.listen(name)`` puts its socket on Unix (``QDir::tempPath()``)."""
    return os.path.join(os.path.normpath(os.environ.get("TMPDIR") or "/tmp"), name)


def ask_running(name: str, history: str | None = None) -> bool | None:
    """Ask the running tray app ``name`` to show its window (on ``history``, a range name); True
    if one answered, False if none listens, None where this cannot be told without Qt."""
    if os.name != "posix":
        return None
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(0.5)
        try:
            conn.connect(socket_path(name))
        except OSError:  # no socket, or a stale one a crash left: nobody listens
            return False
        try:
            conn.sendall(f"show {history or ''}".strip().encode() + b"\n")
            conn.settimeout(3.0)
            conn.recv(16)  # "ok" once the window is shown
        except OSError:
            pass  # connected: it is there, busy or not
    return True


ALREADY_RUNNING = "trayapp: already running for this data folder; brought its window forward"


def writer_process(data_dir: Path) -> tuple[int, list[str]] | None:
    """The process the folder's ``.writer.pid`` names, with its command line; None without a
    file, a number, such a process, or leave to look at it. A crash leaves the file behind, and
    its number may belong to another program by now: callers look at the command."""
    try:
        import psutil

        pid = int((Path(data_dir) / ".writer.pid").read_text().strip())
        return pid, psutil.Process(pid).cmdline()
    except Exception:  # noqa: BLE001 - OSError, ValueError, psutil.Error: nobody to name
        return None


def holder_is_tray_app(data_dir: Path) -> bool:
    """Whether the process in the folder's ``.writer.pid`` is a ``trayapp gui`` (not a headless
    recorder, which has no window to bring forward)."""
    writer = writer_process(data_dir)
    return writer is not None and "gui" in writer[1][1:]


def wait_for_running(name: str, history: str | None, seconds: float = TRAY_START_S) -> bool:
    """``ask_running`` until a tray app that is still starting (opening the folder, loading Qt)
    answers, for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        answer = ask_running(name, history)
        if answer is not False:  # True, or None: not to be told here (the Qt check in run_gui is then the one)
            return bool(answer)
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)
