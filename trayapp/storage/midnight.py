"""Midnight's rollover done by the recorder itself (the tray app, ``run --headless``), with no
Arrow and no child process.

The store's rollover reads the CSV with Arrow, which a process keeps (~40 MB) once loaded; so a
long-running recorder hands it to a one-shot child, which holds 110-180 MB for half a second beside
it. For the usual midnight that is not needed: the recorder wrote every row of the CSV. So, as it
appends a row, it also appends the row's numbers, as float64, to ``csv_dump/.daily_dump.rows``
(``DayRows``; the start-up child writes the file for the rows that were there). At midnight:

- the CSV must be byte for byte what those rows were made from (its size and CRC-32, kept as it
  was written), its rows in strictly rising time, and no day file there yet for the days that
  leave it (a merge is Arrow's work); else ``roll`` says so and the child does it, as before;
- the rows go to the day file through ``trayapp.storage.parquet_writer`` in row groups of ``CHUNK`` rows,
  written atomically and read back (its timestamps decoded from the disk's bytes), then to the
  day's minute tier and its month's hour tier (from the window's numpy copies of the month's
  other days), then the CSV is rewritten with today's rows; so a crash at any moment leaves
  what the child's rollover mends (the CSV is cut last, and merging is idempotent);
- memory: a row group's block (~3 MB for 25 metrics) and the compressed file, not the day.

Imports numpy, zstandard (through ``parquet``) and the standard library: never Arrow, never Qt.
The store calls it with itself (``Store._roll_here``); this module does not import the store.
"""

from __future__ import annotations

import bisect
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from trayapp.storage import bins, parquet_writer as parquet
from trayapp.storage.bins import RowsView
from trayapp.storage.day_files import _EARLIEST_US, _LATEST_US, EARLIEST, TIMESTAMP, _micros, day_path
from trayapp.jsonfile import atomically, remove_quietly, replace_atomically

log = logging.getLogger("trayapp.storage.writer")

ROWS_NAME = ".daily_dump.rows"
CHUNK = bins.ROWS_CHUNK  # rows to a row group (and to a read of the rows file): ~1.7 MB for 25 metrics
_READ = 1 << 16


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


# ------------------------------------------------------------ the rows beside the CSV


def write_rows(csv_path: Path, content: Any) -> dict[str, Any] | None:
    """In the child that read the CSV (``files.parse_csv``'s content): the rows file for it,
    when every line is a row read in full, in strictly rising time; returns what the parent
    needs to take it over (``DayRows.adopt``), else None (and no file)."""
    from trayapp.storage.day_files import floats, stamps_us

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
    with atomically(path, durable=False) as f:  # a block at a time: a day of 25 metrics is 18 MB as one
        block = np.empty((CHUNK, 1 + len(names)))
        for a in range(0, len(ts), CHUNK):
            n = min(CHUNK, len(ts) - a)
            block[:n, 0] = ts[a:a + n]
            for i, values in enumerate(columns):
                block[:n, 1 + i] = values[a:a + n]
            data = block[:n].tobytes()
            rows_crc = zlib.crc32(data, rows_crc)
            f.write(data)
    return {"names": names, "count": len(ts), "crc": crc, "size": size, "rows_crc": rows_crc}


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))


class DayRows:
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
    def adopt(cls, csv_path: Path, info: dict[str, Any] | None, header: list[str]) -> DayRows | None:
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
            wide = np.full((CHUNK, 1 + len(names)), np.nan)
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
        """Rows ``start:stop`` a block of up to ``CHUNK`` at a time: (first row, (rows, width)
        float64 view). One buffer serves every block: it is overwritten by the next."""
        with open(self.path, "rb", buffering=0) as f:
            yield from bins.row_blocks(f, start, stop, self.width, self.path)

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


# ------------------------------------------------------------ midnight


def _local_day(us: int, tz: Any) -> date:
    return (EARLIEST + timedelta(microseconds=us)).astimezone(tz).date()


def _midnight_us(day: date, tz: Any) -> int:
    """The moment ``day`` begins in ``tz``, in µs since the epoch."""
    return _micros(datetime.combine(day, time(), tz))


class NotHere(Exception):
    """This midnight is not one for ``roll``: the child does it (the message says why)."""


def roll(store: Any, today: date) -> None:
    """Move every row of a day before ``today`` from the CSV into its day file and tiers, in this
    process; raises ``NotHere`` before anything is written when it is the child's to do, and
    OSError (and whatever a bug raises) after, when the child then finishes what is left."""
    rows = store.rows
    if rows is None:
        raise NotHere("no rows file")
    if not rows.matches(store.csv_path):
        raise NotHere("the CSV is not what the rows file was made from")
    if not rows.intact():
        log.warning("%s is not what was written to it (changed in place?); the day goes to a child that reads the CSV", rows.path)
        raise NotHere("the rows file is not what was written to it")
    ts = rows.times()
    if len(ts) > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        raise NotHere("rows out of order")
    if len(ts) and (ts[0] < _EARLIEST_US or ts[-1] >= _LATEST_US):
        raise NotHere("a time before 1970 or after 2199 (a clock far off): such rows are kept aside")
    tz = store._tz
    n = len(ts)
    keys = range(n)

    def day_of(i: int) -> date:
        return _local_day(int(ts[i]), tz)

    first = bisect.bisect_left(keys, today, key=day_of)
    groups: list[tuple[date, int, int]] = []
    lo = 0
    while lo < first:
        day = day_of(lo)
        hi = bisect.bisect_right(keys, day, lo, first, key=day_of)
        groups.append((day, lo, hi))
        lo = hi
    for day, _, _ in groups:
        if day_path(store.data_dir, day).exists():
            raise NotHere(f"{day} has a day file to merge into")
        if not _month_fresh(store.data_dir, day):
            raise NotHere(f"the window's copies of {day:%Y-%m} are not all fresh")
    for day, lo, hi in groups:
        _write_day(store, rows, day, ts[lo:hi], lo, hi)
    if groups and not (rows.matches(store.csv_path) and rows.intact()):
        # the rows changed under the writing: the day files made from them go (none was there
        # before), and the child writes them from the CSV, which is cut only after that
        for day, _, _ in groups:
            remove_quietly(day_path(store.data_dir, day))
        raise OSError("the rows file changed while the day files were written from it")
    if first:
        _cut_csv(store, rows, first)
    if store.minutes is not None:
        store.minutes.drop_before(_midnight_us(today, tz))
    store._min_day = day_of(first) if first < n else None


def _write_day(store: Any, rows: DayRows, day: date, ts: np.ndarray, lo: int, hi: int) -> None:
    data_dir = store.data_dir
    path = day_path(data_dir, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts: dict[str, list[Any]] = {name: [] for name in rows.names}  # per metric: its minute bins of each block
    with atomically(path) as sink:  # the pages go to disk as they are made
        writer = parquet.Writer(sink, [(TIMESTAMP, parquet.TIMESTAMP_US), *((name, parquet.FLOAT64) for name in rows.names)])
        for _, block in rows.blocks(lo, hi):
            t = block[:, 0].astype(np.int64)
            columns = [block[:, 1 + i] for i in range(len(rows.names))]
            writer.add_row_group([t, *columns])
            for name, values in zip(rows.names, columns):  # a metric at a time: a small peak
                b, stats = bins.aggregate(t, {name: values}, bins.TIERS["minute"])
                parts[name].append((b, stats[name]))
            del columns
        writer.finish()
    try:  # from the disk: only rows found there leave the CSV
        back = parquet.read_back(path, writer, 0)
    except ValueError:
        back = None
    if back is None or not np.array_equal(back, ts):
        remove_quietly(path)
        raise OSError(f"{path} did not read back as written")
    minute_bins, minute_stats = np.empty(0, np.int64), {}
    for name in rows.names:  # blocks cut minutes: a minute two blocks share is combined
        pieces = parts.pop(name)
        joined = tuple(np.concatenate([p[1][i] for p in pieces]) for i in range(4))
        minute_bins, stats = bins.combine(np.concatenate([p[0] for p in pieces]), {name: joined}, bins.TIERS["minute"])
        minute_stats[name] = stats[name]
    sources = {day.isoformat(): bins.stamp(path)}
    bins.write_tier(data_dir, "minute", day, minute_bins, minute_stats, sources)
    bins.write_copy(data_dir, "minute", day, minute_bins, minute_stats, sources)
    month = _month_parts(data_dir, day)
    if month is None:  # checked before: a copy changed since
        raise OSError(f"the window's copies of {day:%Y-%m} changed during the rollover")
    parts_, month_sources = month
    parts_.append(bins.combine(minute_bins, minute_stats, bins.TIERS["hour"]))
    month_sources.update(sources)
    names = list(dict.fromkeys(n for _, stats in parts_ for n in stats))
    hour_bins, hour_stats = bins.combine(*bins.concat_parts(parts_, names), bins.TIERS["hour"])
    bins.write_tier(data_dir, "hour", (day.year, day.month), hour_bins, hour_stats, month_sources)
    bins.write_copy(data_dir, "hour", (day.year, day.month), hour_bins, hour_stats, month_sources)


def _others(data_dir: Path, day: date) -> list[date]:
    """The other days of ``day``'s month that have a minute tier."""
    return [d for d in sorted(bins.minute_files(data_dir)) if (d.year, d.month) == (day.year, day.month) and d != day]


def _month_fresh(data_dir: Path, day: date) -> bool:
    """Every other day of the month has a whole copy of its minute tier, made from its day file
    as it is (a look at each copy's header, not its values)."""
    for other in _others(data_dir, day):
        sources = bins.cache_intact(bins.cache_path(data_dir, "minute", other))
        if sources is None or sources.get(other.isoformat()) != bins.stamp(day_path(data_dir, other)):
            return False
    return True


def _month_parts(data_dir: Path, skip: date) -> tuple[list[Any], dict[str, Any]] | None:
    """The hour bins of every other day of ``skip``'s month that has a minute tier, each from the
    window's copy of it (one day at a time: a month of minutes is never held), and their
    sources; None when a copy is missing or stale (the child rebuilds from the tier files)."""
    parts: list[Any] = []
    sources: dict[str, Any] = {}
    for day in _others(data_dir, skip):
        copy = bins.read_cache(bins.cache_path(data_dir, "minute", day))
        if copy is None or copy[2].get(day.isoformat()) != bins.stamp(day_path(data_dir, day)):
            return None
        parts.append(bins.combine(copy[0], copy[1], bins.TIERS["hour"]))
        sources.update(copy[2])
    return parts, sources


def _cut_csv(store: Any, rows: DayRows, first: int) -> None:
    """The CSV with its header and rows ``first`` on (each row one line: ``matches`` said so)."""
    content = last_lines(store.csv_path, rows.count - first)
    store._replace_csv(content)
    try:
        rows.keep_from(first, content)
    except OSError:
        rows.drop()
        store.rows = None


def last_lines(path: Path, keep: int) -> bytes:
    """The file's first line and its last ``keep`` lines (a CSV ending in a newline). Today's rows
    are a few at midnight: they are found from the end of the file, not by reading the day."""
    with open(path, "rb") as f:
        header = f.readline()
        end = f.seek(0, os.SEEK_END)
        tail = b""
        while tail.count(b"\n") <= keep and f.tell() > len(header):
            step = min(_READ, f.tell() - len(header))
            f.seek(-step, os.SEEK_CUR)
            tail = f.read(step) + tail
            f.seek(-step, os.SEEK_CUR)
    cut = len(tail)
    for _ in range(keep):  # back to the start of each kept line, from the newline that ends it
        cut = tail.rfind(b"\n", 0, cut - 1) + 1 if cut > 1 else 0
    rest = tail[cut:] if keep else b""
    if rest.count(b"\n") != keep or end - len(rest) < len(header):
        raise OSError(f"{path} has fewer lines than its rows")
    return header + rest


def retention(store: Any, today: date) -> None:
    """The store's retention, with the tiers of the days it removes: their minute tiers go, and
    their hours leave the month's hour tier (cut from the window's copy of it, which must be
    fresh, and possible only where the zone's days are whole UTC hours). ``NotHere`` before
    anything is removed when that cannot be done here (the child's ``ensure`` does it)."""
    if store.retention_days <= 0:
        return
    cutoff = today - timedelta(days=store.retention_days)
    going = sorted(day for day, _ in store.day_files() if day < cutoff)
    if not going:
        return
    hour = bins.TIERS["hour"]
    months: dict[tuple[int, int], Any] = {}
    spans: dict[date, tuple[int, int]] = {}  # each going day, from its midnight to the next
    for day in going:
        key = (day.year, day.month)
        if key not in months:
            copy = bins.read_cache(bins.cache_path(store.data_dir, "hour", key))
            if copy is None or any(stamp != bins.stamp(day_path(store.data_dir, date.fromisoformat(d))) for d, stamp in copy[2].items()):
                raise NotHere(f"the window's copy of the hour tier of {day:%Y-%m} is not fresh")
            months[key] = copy
        start, end = spans[day] = (_midnight_us(day, store._tz), _midnight_us(day + timedelta(days=1), store._tz))
        if start % hour or end % hour:
            raise NotHere("this zone's days are not whole UTC hours")
    store._apply_retention(today)
    for day in going:
        if not day_path(store.data_dir, day).exists():
            remove_quietly(bins.minute_path(store.data_dir, day))
            bins.remove_cache(store.data_dir, "minute", day)
    for (year, month), (hour_bins, stats, sources) in months.items():
        keep = np.ones(len(hour_bins), dtype=bool)
        for day in going:
            if (day.year, day.month) == (year, month) and not day_path(store.data_dir, day).exists():
                start, end = spans[day]
                keep &= (hour_bins < start) | (hour_bins >= end)
                sources.pop(day.isoformat(), None)
        path = bins.hour_path(store.data_dir, year, month)
        if not sources:
            remove_quietly(path)
            bins.remove_cache(store.data_dir, "hour", (year, month))
            continue
        kept = {name: tuple(a[keep] for a in s) for name, s in stats.items()}
        bins.write_tier(store.data_dir, "hour", (year, month), hour_bins[keep], kept, sources)
        bins.write_copy(store.data_dir, "hour", (year, month), hour_bins[keep], kept, sources)
