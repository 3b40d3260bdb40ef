"""The data folder's writer lock (``.writer.lock``, with ``.writer.pid`` beside it): one recorder
a folder, let go however the process ends.

Imports ``jsonfile`` and the standard library (filelock only where ``flock`` is missing).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from trayapp.jsonfile import is_regular_or_missing, read_own, replace_atomically, set_aside, warn_once
from trayapp.storage.layout import StoreError

try:
    import fcntl
except ImportError:  # Windows: filelock instead
    fcntl = None  # type: ignore[assignment]


LOCK_NAME = ".writer.lock"
PID_NAME = ".writer.pid"  # the holder's process id, a courtesy to whoever asks who records here


def only_a_file(path: Path, max_bytes: int = 1 << 40) -> None:
    """Set aside whatever is at ``path`` that is not a regular file of at most ``max_bytes``
    (a folder, a FIFO, a device, a link to one): a file of trayapp's goes there."""
    if os.path.lexists(path) and not is_regular_or_missing(path):
        set_aside(path, "not a regular file")
    else:
        try:
            if path.stat().st_size > max_bytes:
                set_aside(path, f"larger than a file of trayapp's ({max_bytes} bytes)")
        except OSError:
            pass


class WriterLock:
    """The data folder's writer lock: an OS lock on ``.writer.lock``, let go when the process
    ends however it ends. POSIX: ``flock`` from the standard library (filelock imports
    ``secrets``, which loads OpenSSL, for a recorder that never needs it); elsewhere filelock."""

    def __init__(self, path: Path, pid_path: Path | None = None) -> None:
        self.path = path
        self.pid_path = pid_path  # removed on release, when the holder wrote it
        self._fd: int | None = None
        self._other: Any = None

    def acquire(self) -> bool:
        """True when taken; False when another process holds it."""
        if fcntl is None:  # Windows
            return self._acquire_filelock()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):  # held (some filesystems say EACCES)
                return False
            if exc.errno in (errno.ENOSYS, errno.EOPNOTSUPP):  # no file locks on this filesystem (some FUSE mounts)
                warn_once(f"nolock:{self.path}", f"{self.path.parent} is on a filesystem without file locks: nothing stops "
                           "a second trayapp from recording into it too; keep to one")
                return True  # recording unguarded beats not recording (a lock file of our own would outlive a crash)
            raise
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def _acquire_filelock(self) -> bool:
        import filelock  # lazy: only where flock is missing (it imports secrets, which loads OpenSSL)

        self._other = filelock.FileLock(str(self.path))
        try:
            self._other.acquire(timeout=0)
        except filelock.Timeout:
            return False
        return True

    def release(self) -> None:
        if self.pid_path is not None:
            try:
                self.pid_path.unlink(missing_ok=True)
            except OSError:
                pass
        if self._other is not None:
            self._other.release()
            self._other = None
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor lets go of the flock
            self._fd = None


def read_pid(path: Path) -> str | None:
    """A small text file of trayapp's (a pid), or None when it is not one."""
    try:
        return read_own(path, 4096).decode("utf-8", errors="replace").strip()
    except OSError:
        return None


class DataDirBusy(StoreError):
    """Another process already writes to this data folder."""


def take_writer_lock(data_dir: Path) -> WriterLock:
    """The folder's writer lock, with this process's id written beside it; raises ``DataDirBusy``
    (naming the holder's process id) when another process holds it."""
    for path in (data_dir / LOCK_NAME, data_dir / PID_NAME):
        only_a_file(path)
    lock = WriterLock(data_dir / LOCK_NAME)
    if not lock.acquire():
        pid = read_pid(data_dir / PID_NAME) or "unknown"
        raise DataDirBusy(
            f"another trayapp (pid {pid}) is already recording into {data_dir}; "
            "only one may write a data folder at a time"
        ) from None
    lock.pid_path = data_dir / PID_NAME
    try:
        replace_atomically(lock.pid_path, str(os.getpid()).encode(), durable=False)
    except OSError as exc:  # only a courtesy to whoever asks who records here
        warn_once(f"pid:{data_dir}", f"cannot write {lock.pid_path} ({exc.strerror or exc})")
    return lock
