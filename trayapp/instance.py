"""One tray app per data folder: its instance socket, in a folder only the user can write, and
asking a running one to show its window without Qt (``trayapp gui`` asks before it opens the data
folder and before Qt is loaded).

Imports the standard library, ``jsonfile`` and, to tell what holds a data folder, psutil.
The running app listens with Qt's ``QLocalServer`` (``gui.app``) on the full path
``instance_name`` gives: a Unix socket in ``$XDG_RUNTIME_DIR/trayapp`` when that folder is the
user's own and 0700, else in a 0700 folder of the user's cache folder. It answers ``show [RANGE]``
with ``ok`` once its window is shown. An answer counts only from a process of the same user
(``SO_PEERCRED``); anything else listening there is said in one line and not trusted: the app
starts normally, taking the name over (the folder is the user's: only the user could have put a
socket there, so nothing of another user's is removed). Elsewhere (Windows: named pipes)
``ask_running`` cannot tell, and the Qt check in ``gui.app.run_gui`` is the only one.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
import time
from pathlib import Path

try:  # CPython's own SHA-1, as random.py does for SHA-512: hashlib loads OpenSSL (~3.5 MB resident) for one hash
    from _sha1 import sha1 as _sha1
except ImportError:  # another Python
    from hashlib import sha1 as _sha1

TRAY_START_S = 20.0  # a tray app that holds the folder answers within this long of taking it
_SUN_PATH_MAX = 103  # a Unix socket's path and its NUL: 104 bytes on macOS, 108 on Linux


def _own_uid() -> int:
    return os.getuid()


def _private(folder: Path) -> bool:
    """``folder`` is a real folder (not a link), the user's, that nobody else may write into."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == _own_uid() and not info.st_mode & 0o077


def _make_private(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = os.lstat(folder)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == _own_uid() and info.st_mode & 0o077:
            os.chmod(folder, 0o700)  # ours, made wider by someone's umask or hand
    except OSError:
        return False
    return _private(folder)


def runtime_dir() -> Path | None:
    """The folder the instance socket goes in: ``$XDG_RUNTIME_DIR/trayapp`` when
    ``$XDG_RUNTIME_DIR`` is the user's own 0700 folder, else ``<user cache>/trayapp/run``, else
    (a path too long for a socket) ``<tmp>/trayapp-<uid>`` if it is the user's 0700 folder;
    None when no such folder can be had."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    candidates = []
    if xdg and os.path.isabs(xdg) and _private(Path(xdg)):
        candidates.append(Path(xdg) / "trayapp")
    try:
        import platformdirs

        candidates.append(Path(platformdirs.user_cache_dir("trayapp", appauthor=False)) / "run")
    except Exception:  # noqa: BLE001 - no platformdirs, no home: the next place
        pass
    candidates.append(Path(os.path.normpath(os.environ.get("TMPDIR") or "/tmp")) / f"trayapp-{_own_uid()}")
    for folder in candidates:
        if len(os.fsencode(folder)) + 1 + len(_socket_name("0" * 12)) <= _SUN_PATH_MAX and _make_private(folder):
            return folder
    return None


def _socket_name(digest: str) -> str:
    return f"trayapp-{_own_uid()}-{digest}"


def instance_name(folder: Path) -> str:
    """The instance socket's full path for data folder ``folder`` (what ``QLocalServer.listen``
    takes); a bare name (Qt's temporary folder) only where no private folder can be had."""
    digest = _sha1(str(Path(folder).resolve()).encode()).hexdigest()[:12]
    if os.name != "posix":
        return f"trayapp-{digest}"
    where = runtime_dir()
    name = _socket_name(digest)
    return str(where / name) if where is not None else name


def socket_path(name: str) -> str:
    """Where Qt's ``QLocalServer.listen(name)`` puts its socket on Unix: ``name`` itself when it is
    a full path, else in ``QDir::tempPath()``."""
    if os.path.isabs(name):
        return name
    return os.path.join(os.path.normpath(os.environ.get("TMPDIR") or "/tmp"), name)


def peer_uid(conn: object) -> int | None:
    """The user id of the process at the other end of a connected Unix socket: ``SO_PEERCRED``
    on Linux, ``LOCAL_PEERCRED`` on the BSDs and macOS; None where it cannot be told."""
    import socket

    try:
        if hasattr(socket, "SO_PEERCRED"):
            _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))  # type: ignore[attr-defined]
            return uid
        if hasattr(socket, "LOCAL_PEERCRED"):  # struct xucred: version, uid, ...
            raw = conn.getsockopt(0, socket.LOCAL_PEERCRED, 76)  # type: ignore[attr-defined]
            return struct.unpack_from("Ii", raw)[1]
    except OSError:
        return None
    return None


def trusted_fd(fd: int, path: str) -> bool:
    """Whether the peer of the connected socket ``fd`` (Qt's ``socketDescriptor``) is this user."""
    import socket

    probe = socket.socket(fileno=os.dup(fd))
    try:
        return _trusted(probe, path)
    finally:
        probe.close()


_said_untrusted: set[str] = set()


def _trusted(conn: object, path: str) -> bool:
    """The peer is this user (where that can be told: else the socket file's owner is); one line
    on stderr when it is not."""
    uid = peer_uid(conn)
    if uid is None:
        try:
            uid = os.stat(path).st_uid
        except OSError:
            uid = -1
    if uid == _own_uid():
        return True
    if path not in _said_untrusted:
        _said_untrusted.add(path)
        print(f"trayapp: {path} is held by another user (uid {uid}); not trusting it, starting here", file=sys.stderr)
    return False


def ask_running(name: str, history: str | None = None) -> bool | None:
    """Ask the running tray app ``name`` to show its window (on ``history``, a range name); True
    if one of this user's answered, False if none listens (or what listens is not this user's),
    None where this cannot be told without Qt."""
    if os.name != "posix":
        return None
    import socket

    path = socket_path(name)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(0.5)
        try:
            conn.connect(path)
        except OSError:  # no socket, or a stale one a crash left: nobody listens
            return False
        if not _trusted(conn, path):
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

        from trayapp.jsonfile import read_own

        pid = int(read_own(Path(data_dir) / ".writer.pid", 64).decode().strip())
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
