"""The data folder's writer lock (``.writer.lock``, with ``.writer.pid`` beside it): one recorder
a folder, let go however the process ends.

Imports ``jsonfile`` and the standard library (filelock only where ``flock`` is missing).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from trayapp.jsonfile import is_regular_or_missing, read_own, set_aside, warn_once
from trayapp.storage.layout import StoreError

LOCK_NAME = ".writer.lock"


PID_NAME = ".writer.pid"


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
    ``secrets``, which loads OpenSSL: ~4 MB resident for a recorder that never needs it);
    elsewhere filelock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._other: Any = None

    def acquire(self) -> bool:
        """True when taken; False when another process holds it."""
        try:
            import fcntl
        except ImportError:  # Windows
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
        import filelock

        self._other = filelock.FileLock(str(self.path))
        try:
            self._other.acquire(timeout=0)
        except filelock.Timeout:
            return False
        return True

    def release(self) -> None:
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
