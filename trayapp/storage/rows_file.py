"""The rows file beside today's CSV (``csv_dump/.daily_dump.rows``): each CSV row's numbers as
float64, appended by the writer as it writes the line, with the CRC-32 of both files as written;
the recorder's midnight and the window read today from it once those checksums agree.

Imports numpy, ``tables``, ``layout`` and ``jsonfile``: never Arrow (the tray app writes and
reads it), never the writer.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trayapp.jsonfile import atomically, open_own, remove_quietly, replace_atomically
from trayapp.storage.layout import TIMESTAMP
from trayapp.storage.tables import floats, stamps_us

log = logging.getLogger("trayapp.storage")

ROWS_NAME = ".daily_dump.rows"
ROWS_CHUNK = 8192  # rows to one read of a rows file, and to a row group of a day file written at midnight
_READ = 1 << 16  # bytes to one read of a file whose CRC-32 is taken


def rows_path(csv_path: Path) -> Path:
    return csv_path.with_name(ROWS_NAME)


def crc_of(path: Path) -> tuple[int, int]:
    """(CRC-32, size) of a file, read through one small buffer (the app's heap stays as it was)."""
    crc, size = 0, 0
    buffer = bytearray(_READ)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            crc = zlib.crc32(view[:n], crc)
            size += n
    return crc, size


def write_rows(csv_path: Path, content: Any) -> dict[str, Any] | None:
    """In the child that read the CSV (``csv_file.parse_csv``'s content): the rows file for it,
    when every line is a row read in full, in strictly rising time; returns what the parent
    needs to take it over (``RowsFile.adopt``), else None (and no file)."""

    path = rows_path(csv_path)
    remove_quietly(path)
    if content is None:  # no CSV yet (a first start, or every row rolled over): rows from the first
        try:
            if csv_path.stat().st_size:
                return None
        except FileNotFoundError:
            pass
        replace_atomically(path, b"", durable=False)
        return {"names": [], "count": 0, "crc": 0, "size": 0, "rows_crc": 0}
    table = content.table
    if content.bad or content.lossy or content.blank or content.narrow or len(content.lines) != table.num_rows:
        return None
    ts = stamps_us(table.column(TIMESTAMP))
    if len(ts) > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        return None
    names = [n for n in table.column_names if n != TIMESTAMP]
    columns = [floats(table.column(name)) for name in names]
    crc, size = crc_of(csv_path)
    rows_crc = 0
    with atomically(path, durable=False) as f:  # a block at a time, never the day as one array
        block = np.empty((ROWS_CHUNK, 1 + len(names)))
        for a in range(0, len(ts), ROWS_CHUNK):
            n = min(ROWS_CHUNK, len(ts) - a)
            block[:n, 0] = ts[a:a + n]
            for i, values in enumerate(columns):
                block[:n, 1 + i] = values[a:a + n]
            data = block[:n].tobytes()
            rows_crc = zlib.crc32(data, rows_crc)
            f.write(data)
    return {"names": names, "count": len(ts), "crc": crc, "size": size, "rows_crc": rows_crc}


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))


class RowsFile:
    """The CSV's rows as float64 (the time in µs, exact below 2**53, then each column's value as
    the CSV has it, NaN for an empty field), appended beside it by the writer, with the CSV's
    CRC-32 and size as it writes, and the CRC-32 of the rows file's own bytes: a copy is checked
    against it before anything is made from it. Only the process that holds the writer lock
    trusts it."""

    def __init__(self, path: Path, names: list[str], count: int, crc: int, size: int, fd: int, rows_crc: int) -> None:
        self.path, self.crc, self.size, self._fd = path, crc, size, fd
        self.count, self.rows_crc = count, rows_crc
        self._columns(names)
        self._view = self._make_view()

    def _make_view(self) -> RowsView:
        if self._fd is not None and getattr(self, "_inode_of", None) != self._fd:  # once per file opened, not per row
            self._inode, self._inode_of = os.fstat(self._fd).st_ino, self._fd
        return RowsView(self.path, tuple(self.names), self.count, self.rows_crc, getattr(self, "_inode", 0))

    @property
    def dropped(self) -> bool:
        """The file was given up (a failed write, a cut it could not follow): nothing trusts it."""
        return self._fd is None

    def view(self) -> RowsView | None:
        """The rows a reader on another thread may use now (one object, replaced whole as rows
        are added, so its count and checksum always belong together); None once dropped."""
        return self._view if self._fd is not None else None

    def _columns(self, names: list[str]) -> None:
        self.names = list(names)
        self._pack = struct.Struct(f"<{1 + len(names)}d").pack

    @property
    def width(self) -> int:
        return 1 + len(self.names)

    @classmethod
    def adopt(cls, csv_path: Path, info: dict[str, Any] | None, header: list[str]) -> RowsFile | None:
        """The rows file a child wrote, when the CSV and the file are still as it left them."""
        if not info or ([TIMESTAMP, *info["names"]] if info.get("names") else []) != header:
            return None
        path = rows_path(csv_path)
        try:
            if csv_path.stat().st_size != info["size"] or path.stat().st_size != info["count"] * len(header) * 8:
                return None
            fd = _open_append(path)
        except (OSError, KeyError, TypeError):
            return None
        try:
            return cls(path, list(info["names"]), int(info["count"]), int(info["crc"]), int(info["size"]), fd, int(info["rows_crc"]))
        except (KeyError, TypeError, ValueError):
            os.close(fd)
            return None

    def begin(self, line: bytes, names: list[str]) -> bool:
        """The CSV was empty and got its header ``line``: rows of these columns from now on."""
        if self.count or self.size:
            self.drop()
            return False
        self._columns(names)
        self.crc, self.size = zlib.crc32(line), len(line)
        self._view = self._make_view()
        return True

    def add(self, line: bytes, t_us: int, values: list[float | None]) -> bool:
        """The row just written to the CSV as ``line``; False (the file is dropped) on a failure."""
        if self._fd is None:
            return False
        try:
            data = self._pack(t_us, *(np.nan if v is None else v for v in values))
            if os.write(self._fd, data) != len(data):
                raise OSError("short write")
        except (OSError, struct.error):
            self.drop()
            return False
        self.crc = zlib.crc32(line, self.crc)
        self.size += len(line)
        self.rows_crc = zlib.crc32(data, self.rows_crc)
        self.count += 1
        self._view = self._make_view()
        return True

    def widen(self, names: list[str], csv_content: bytes) -> None:
        """The CSV was rewritten to ``csv_content`` with columns added after the others (a GPU
        appeared), empty in every row so far: the rows get them as NaN. Raises ValueError for
        any other change of columns, OSError when the file cannot be rewritten."""
        if names[: len(self.names)] != self.names or len(names) < len(self.names):
            raise ValueError("columns were not only added at the end")
        old = self.width
        self.close()  # Windows renames over no open file
        rows_crc = 0
        with atomically(self.path, durable=False) as out:
            wide = np.full((ROWS_CHUNK, 1 + len(names)), np.nan)
            for _, block in self.blocks(0, self.count):  # read to the end before the rename
                wide[: len(block), :old] = block
                data = wide[: len(block)].tobytes()
                rows_crc = zlib.crc32(data, rows_crc)
                out.write(data)
        self._fd = _open_append(self.path)
        self._columns(names)
        self.crc, self.size, self.rows_crc = zlib.crc32(csv_content), len(csv_content), rows_crc
        self._view = self._make_view()

    def drop(self) -> None:
        self.close()
        remove_quietly(self.path)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._inode_of = None  # the next file opened may get the same descriptor number

    def matches(self, csv_path: Path) -> bool:
        """The CSV is byte for byte what these rows were made from."""
        try:
            return self._fd is not None and crc_of(csv_path) == (self.crc, self.size)
        except OSError:
            return False

    def intact(self) -> bool:
        """The rows file is byte for byte what was appended to it (its CRC-32 as written): a copy
        changed in place, even at the same size, is not used."""
        try:
            return self._fd is not None and crc_of(self.path) == (self.rows_crc, self.count * self.width * 8)
        except OSError:
            return False

    def blocks(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """Rows ``start:stop`` a block of up to ``ROWS_CHUNK`` at a time: (first row, (rows, width)
        float64 view). One buffer serves every block: it is overwritten by the next."""
        with open(self.path, "rb", buffering=0) as f:
            yield from row_blocks(f, start, stop, self.width, self.path)

    def times(self) -> np.ndarray:
        out = np.empty(self.count, dtype=np.int64)
        for a, block in self.blocks(0, self.count):
            out[a:a + len(block)] = block[:, 0]
        return out

    def keep_from(self, first: int, csv_content: bytes) -> None:
        """After the CSV was rewritten to ``csv_content`` (its header and rows ``first`` on)."""
        with open(self.path, "rb") as f:
            f.seek(first * self.width * 8)
            tail = f.read()
        self.close()
        replace_atomically(self.path, tail, durable=False)
        self._fd = _open_append(self.path)
        self.count -= first
        self.crc, self.size, self.rows_crc = zlib.crc32(csv_content), len(csv_content), zlib.crc32(tail)
        self._view = self._make_view()


@dataclass(frozen=True)
class RowsView:
    """What a reader of the rows file may trust, taken at one moment: its first ``count`` rows of
    ``names`` (after the time), whose bytes have CRC-32 ``rows_crc``."""

    path: Path
    names: tuple[str, ...]
    count: int
    rows_crc: int
    inode: int = 0  # the file these rows are in: one put in its place since (midnight, a GPU appearing) is another



def row_blocks(f: Any, start: int, stop: int, width: int, name: Any = "the rows file") -> Iterator[tuple[int, np.ndarray]]:
    """Rows ``start:stop`` of an open rows file (``width`` float64 a row), ``ROWS_CHUNK`` at a
    time: (first row, (rows, width) view). One buffer serves every block: the next overwrites it.
    Raises OSError where the file is shorter than its rows."""
    buffer = np.empty((ROWS_CHUNK, width))
    f.seek(start * width * 8)
    for a in range(start, stop, ROWS_CHUNK):
        view = buffer[: min(ROWS_CHUNK, stop - a)]
        into, done = memoryview(view).cast("B"), 0
        while done < len(into):  # a read may return less than asked
            n = f.readinto(into[done:])
            if not n:
                raise OSError(f"{name} is shorter than its rows")
            done += n
        yield a, view


class RowsReader:
    """The rows of a writer's rows file in ``[start_us, end_us)``, once its bytes are checked
    against the CRC-32 the writer kept: read through one block buffer, never whole."""

    def __init__(self, view: RowsView, start_us: int, end_us: int) -> None:
        self.view, self.start_us, self.end_us = view, start_us, end_us
        self.width = 1 + len(view.names)
        self.first_us = end_us
        self.count = 0
        self._file: Any = None  # opened once: the recorder may put another file in its place (a rename) meanwhile

    def open(self) -> bool:
        """False when the file is no longer the one the view is of (replaced since)."""
        self._file = open_own(self.view.path, self.view.count * self.width * 8 + (1 << 30))
        return not self.view.inode or os.fstat(self._file.fileno()).st_ino == self.view.inode

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _blocks(self) -> Iterator[np.ndarray]:
        for _, block in row_blocks(self._file, 0, self.view.count, self.width, self.view.path):
            yield block

    def check(self) -> bool:
        """True when the file's first ``count`` rows are what the writer wrote; notes the first
        row's time and how many rows fall in the range."""
        crc = 0
        first = np.inf
        count = 0
        for block in self._blocks():
            crc = zlib.crc32(block.data, crc)
            t = block[:, 0]
            if len(t):
                first = min(first, float(t.min()))
            count += int(np.count_nonzero((t >= self.start_us) & (t < self.end_us)))
        if crc != self.view.rows_crc:
            return False
        self.first_us = int(first) if np.isfinite(first) else self.end_us
        self.count = count
        return True

    def parts(self) -> Iterator[tuple[np.ndarray, dict]]:
        """Each block's rows in the range as bins of one sample: (epoch seconds, {metric: (value,
        value, value, 1 or 0)}), for ``add_tier_curves``."""
        for block in self._blocks():
            inside = block[(block[:, 0] >= self.start_us) & (block[:, 0] < self.end_us)]
            if not len(inside):
                continue
            stats = {}
            for i, name in enumerate(self.view.names):
                v = inside[:, 1 + i].copy()
                stats[name] = (v, v, v, np.isfinite(v).astype(np.int64))
            yield inside[:, 0] / 1e6, stats

    def arrays(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The rows in the range as arrays, sorted by time (only for a few of them)."""
        kept = [block[(block[:, 0] >= self.start_us) & (block[:, 0] < self.end_us)].copy() for block in self._blocks()]
        table = np.concatenate(kept) if kept else np.empty((0, self.width))
        table = table[np.argsort(table[:, 0], kind="stable")]
        return table[:, 0] / 1e6, {name: table[:, 1 + i] for i, name in enumerate(self.view.names)}


def rows_reader(view: RowsView | None, start_us: int, end_us: int) -> RowsReader | None:
    """A reader of the rows file for the range, or None when there is none or it is not what the
    writer wrote (changed in place, cut short): then minutes are read instead."""
    if view is None:
        return None
    reader = RowsReader(view, start_us, end_us)
    try:
        if not reader.open():  # the recorder put a new one in its place a moment ago: not a fault
            reader.close()
            return None
        if reader.check():
            return reader
    except (OSError, ValueError) as exc:
        reader.close()
        log.warning("the rows file %s could not be read (%s); minute bins are shown instead", view.path, exc)
        return None
    reader.close()
    log.warning("the rows file %s is not what the recorder wrote to it; minute bins are shown instead", view.path)
    return None
