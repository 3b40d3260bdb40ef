"""The small JSON files beside the dataset (alert state, snooze, Slack outbox), the one atomic
file replacement every writer uses, and the one safe way trayapp opens a file or folder of its own.
Standard library only: imports nothing of trayapp, never Qt.

Writes are atomic (a unique temporary dot-file in the same folder, fsynced, renamed into place),
so a crash leaves the old file or the new one, never half of one, two writers never share a
temporary file, and a failed write leaves no temporary file behind.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger(__name__)


def replace_atomically(path: Path, content: bytes, mode: int | None = None, durable: bool = True) -> None:
    """Replace ``path`` with ``content``: a unique temporary dot-file beside it (``mkstemp``),
    fsynced, renamed over it, the folder fsynced. Raises OSError; then nothing is left behind.
    ``durable=False`` (a cache that can be rebuilt and is checked before use): no fsyncs."""
    with atomically(path, mode, durable) as f:
        f.write(content)


@contextmanager
def atomically(path: Path, mode: int | None = None, durable: bool = True) -> Iterator[BinaryIO]:
    """``replace_atomically`` for content written a piece at a time: a file to write to, which
    replaces ``path`` when the block ends, or is removed when it raises."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        try:
            os.replace(tmp, path)
        except OSError as exc:  # a folder where the file goes: kept aside, the file written
            if exc.errno not in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST) or not os.path.isdir(path) or set_aside(path, "a folder, not a file") is None:
                raise
            os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def remove_quietly(path: str | os.PathLike[str]) -> None:
    """Remove a file if it is there; a failure to remove it is not worth an error."""
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX; elsewhere a no-op)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` atomically; raises OSError. A non-finite number is
    written as ``null``: the file is always JSON (never ``NaN`` or ``Infinity``)."""
    make_folder(path.parent)
    replace_atomically(path, json.dumps(finite(value), indent=1, sort_keys=True, allow_nan=False).encode("utf-8"))


def finite(value: Any) -> Any:
    """``value`` with every NaN and ±inf inside it (dicts, lists, tuples) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def read_dict(path: Path, warn: bool = False) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when it is missing or unreadable (said once if ``warn``).

    Any content reads: bytes that are not UTF-8, ``NaN``, deep nesting, a huge file, a FIFO, a
    device — it is unreadable, never an exception and never a wait."""
    try:
        value = json.loads(read_own(path, _MAX_BYTES).decode("utf-8"), parse_constant=_no_constant)
    except FileNotFoundError:
        return {}
    except NotRegular as exc:
        warn_once(f"json:{path}", f"{path} is unreadable ({exc.strerror}); ignored")
        return {}
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        if warn:
            log.warning("%s is unreadable (%s); starting from scratch", path, str(exc)[:160])
        return {}
    return value if isinstance(value, dict) else {}


_MAX_BYTES = 16_000_000


# ------------------------------------------------------------ files and folders of trayapp's own


class NotRegular(OSError):
    """A path of trayapp's holds something it must not read: a FIFO (a read would wait for a
    writer forever), a device (``/dev/zero`` never ends), a folder, or a file too large to be
    one of its own."""


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


def open_own(path: str | os.PathLike[str], max_bytes: int) -> BinaryIO:
    """``path`` opened for reading, once it is known to be a regular file of at most
    ``max_bytes``: opened without blocking (a FIFO with no writer would hold ``open`` and then
    ``read`` forever), then looked at with ``fstat`` (what was opened, not what the name pointed
    to a moment before). Raises FileNotFoundError when missing, ``NotRegular`` for anything else
    there, OSError when it cannot be opened. Every file trayapp reads of its own goes through here."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular(errno.EINVAL, f"not a regular file ({_kind(info.st_mode)})", str(path))
        if info.st_size > max_bytes:
            raise NotRegular(errno.EFBIG, f"{info.st_size} bytes, more than a file of this kind holds ({max_bytes})", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_own(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of ``path`` through ``open_own``; a file that grew past ``max_bytes`` while it
    was read is refused too."""
    with open_own(path, max_bytes) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise NotRegular(errno.EFBIG, f"more than {max_bytes} bytes", str(path))
    return data


def is_regular_or_missing(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a regular file (a symlink followed) or nothing at all."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return not os.path.islink(path)  # a dangling link is something, not nothing
    except OSError:
        return False


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def set_aside(path: str | os.PathLike[str], why: str) -> Path | None:
    """Rename what is at ``path`` to ``.<name>.unreadable-<time>`` beside it (kept for a person
    to look at, skipped by every reader: a dot-name), with one warning; None (and one warning)
    when it cannot be renamed. Never raises."""
    path = Path(path)
    aside = path.with_name(f".{path.name}.unreadable-{int(time.time())}")
    n = 1
    while os.path.lexists(aside):
        n += 1
        aside = path.with_name(f".{path.name}.unreadable-{int(time.time())}-{n}")
    try:
        os.replace(path, aside)
    except OSError as exc:
        warn_once(f"aside:{path}", f"{path} is {why} and cannot be set aside ({exc.strerror or exc}); left as it is")
        return None
    log.warning("%s was %s; kept it aside as %s", path, why, aside.name)
    return aside


def make_folder(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None, mode: int = 0o777) -> Path:
    """``path`` as a folder, made with its parents: any of them from ``root`` (trayapp's own
    folder, ``path``'s top when None) down that is something else (a file, a FIFO, a link to
    nowhere) is set aside first (``set_aside``) and the folder made again. Raises OSError when
    it cannot be made."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=mode)
        if path.is_dir():
            return path
    except (FileExistsError, NotADirectoryError):
        pass
    top = Path(root) if root is not None else path
    chain = [path, *path.parents]
    if top in chain:
        chain = chain[: chain.index(top) + 1]
    else:
        chain = [path]
    for folder in reversed(chain):  # from the top down: a file high up hides everything below it
        if os.path.lexists(folder) and not folder.is_dir():
            set_aside(folder, "not a folder")
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    return path


def warn_once(key: str, message: str) -> None:
    """Log ``message`` the first time ``key`` is seen in this process."""
    if key not in _said:
        _said.add(key)
        log.warning(message)


_said: set[str] = set()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
