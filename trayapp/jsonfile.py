"""The small JSON files beside the dataset (alert state, snooze, Slack outbox) and the one atomic
file replacement every writer uses. Standard library only: imports nothing of trayapp, never Qt.

Writes are atomic (a unique temporary dot-file in the same folder, fsynced, renamed into place),
so a crash leaves the old file or the new one, never half of one, two writers never share a
temporary file, and a failed write leaves no temporary file behind.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
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
    path.parent.mkdir(parents=True, exist_ok=True)
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

    Any content reads: bytes that are not UTF-8, ``NaN``, deep nesting, a huge file — it is
    unreadable, never an exception."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
        if len(data) > _MAX_BYTES:
            raise ValueError(f"larger than {_MAX_BYTES // 1_000_000} MB")
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        if warn:
            log.warning("%s is unreadable (%s); starting from scratch", path, str(exc)[:160])
        return {}
    return value if isinstance(value, dict) else {}


_MAX_BYTES = 16_000_000


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
