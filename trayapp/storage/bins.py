"""Binned statistics in numpy, with no Arrow: the maths of the rollup tiers, the window's numpy
copies of the tier files, and the minute bins a recorder keeps of its CSV as it writes.

- ``aggregate``, ``combine``, ``merge_parts``: min / mean / max / count per UTC-aligned bin; means
  combine exactly through their counts. ``rollups`` builds the Parquet tiers with them.
- The copies (``Rollups/.window/minute/<day>.npz``, ``Rollups/.window/hour/<year>-<month>.npz``):
  whoever writes a tier file writes the same bins here, uncompressed, with the same record of
  the day files they came from. numpy loads one in well under a millisecond, where reading the
  Parquet tier first costs the process pyarrow (~40 MB it keeps for good, ~80 ms to import). A
  copy is used only while those day files are as they were and its content matches the CRC-32
  its ``.json`` holds (``checksum``: the metric names, the record and every value); anything else
  is read from the Parquet tier or the day file, with one warning. Minute copies are kept for the last ``MINUTE_DAYS``
  (the window reads minutes up to 62 days), hour copies for every month. They are disposable:
  the next start rebuilds what is missing.
- ``MinuteBins``: the CSV's rows as minute bins, kept by the writer as it appends (RRDtool's
  consolidation at write time), so the window reads today without parsing the CSV.

Imports numpy and the standard library only: the tray app's window reads through here.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROLLUPS_DIR = "Rollups"
CACHE_DIR = ".window"
CACHE_VERSION = 2  # 2: the copy's ``.json`` holds the CRC-32 of its content
MAX_BINS = 1500  # a tier file's bins: a day of minutes is at most 1500 (25 h), a month of hours 745
MAX_META_BYTES = 4_000_000  # a copy's ``.json``, or ``tiers.json``: names and day-file records
MINUTE_DAYS = 63  # minute copies kept this many days back: the window reads minutes up to 62 days
TIERS = {"minute": 60_000_000, "hour": 3_600_000_000}  # bin width in microseconds

Stats = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # min, mean, max (NaN = none), count


# ------------------------------------------------------------ aggregation


def median(values: Any) -> float:
    """The median of a non-empty array without NaN. ``np.median`` imports numpy.ma (~12 ms and
    ~2 MB, for a check this code never needs) in every process that calls it."""
    values = np.asarray(values, dtype=np.float64)
    half = len(values) // 2
    if len(values) % 2:
        return float(np.partition(values, half)[half])
    pair = np.partition(values, [half - 1, half])
    return float((pair[half - 1] + pair[half]) / 2)


def aggregate(ts_us: np.ndarray, values: dict[str, np.ndarray], width_us: int) -> tuple[np.ndarray, dict[str, Stats]]:
    """Bin raw samples (int64 µs, float values with NaN for none) into UTC-aligned bins: each
    sample is a bin of its own (min = mean = max = the value, count 1, or 0 when not finite),
    folded by ``combine`` like any finer tier."""
    per_sample: dict[str, Stats] = {}
    for name, raw in values.items():
        v = np.asarray(raw, dtype=np.float64)
        ok = np.isfinite(v)  # NaN and ±inf are "not available", as in the store
        v = np.where(ok, v, np.nan)
        per_sample[name] = (v, v, v, ok.astype(np.int64))
    return combine(ts_us, per_sample, width_us)


def combine(bins_us: np.ndarray, stats: dict[str, Stats], width_us: int) -> tuple[np.ndarray, dict[str, Stats]]:
    """Fold bins (of any finer or equal width, in any order, repeats allowed) into ``width_us`` bins;
    means combine exactly through their counts."""
    bins_us = np.asarray(bins_us, dtype=np.int64)
    order = np.argsort(bins_us, kind="stable")
    bins = (bins_us[order] // width_us) * width_us
    if not len(bins):
        return bins, {name: empty_stats() for name in stats}
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    out: dict[str, Stats] = {}
    for name, (low, mean, high, count) in stats.items():
        low, mean, high, count = low[order], mean[order], high[order], count[order]
        some = count > 0
        total = np.add.reduceat(np.where(some, mean * count, 0.0), starts)
        n = np.add.reduceat(count, starts)
        lo = np.minimum.reduceat(np.where(some & ~np.isnan(low), low, np.inf), starts)
        hi = np.maximum.reduceat(np.where(some & ~np.isnan(high), high, -np.inf), starts)
        out[name] = _finish(lo, total, hi, n)
    return bins[starts], out


def _finish(low: np.ndarray, total: np.ndarray, high: np.ndarray, count: np.ndarray) -> Stats:
    none = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(none, np.nan, total / np.maximum(count, 1))
    return np.where(none, np.nan, low), mean, np.where(none, np.nan, high), count.astype(np.int64)


def empty_stats() -> Stats:
    return np.empty(0), np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)


def nan_stats(n: int) -> Stats:
    nan = np.full(n, np.nan)
    return nan, nan.copy(), nan.copy(), np.zeros(n, dtype=np.int64)


def concat_parts(parts: list[tuple[np.ndarray, dict[str, Stats]]], names: list[str]) -> tuple[np.ndarray, dict[str, Stats]]:
    """Bins of several files end to end, each metric's stats beside them (empty where a file
    lacks the metric: a GPU that came later)."""
    bins = np.concatenate([b for b, _ in parts])
    stats: dict[str, Stats] = {}
    for name in names:
        cols = [s[name] if name in s else nan_stats(len(b)) for b, s in parts]
        stats[name] = tuple(np.concatenate([c[i] for c in cols]) for i in range(4))  # type: ignore[assignment]
    return bins, stats


def merge_parts(parts: list[tuple[np.ndarray, dict[str, Stats]]], names: list[str], width: int) -> tuple[np.ndarray, dict[str, Stats]]:
    """Parts (bin starts in µs) as one set of bins in order, a bin two parts share combined;
    returns bin starts in epoch seconds."""
    if not parts:
        return np.empty(0), {n: empty_stats() for n in names}
    if len(parts) == 1 and all(n in parts[0][1] for n in names):
        bins, stats = parts[0]  # one part: no copy
        stats = {n: stats[n] for n in names}
    else:
        bins, stats = concat_parts(parts, names)
    sorted_unique = len(bins) < 2 or bool(np.all(bins[1:] > bins[:-1]))
    if not sorted_unique:  # a bin two files share (a :30 zone's hour across a month's end)
        bins, stats = combine(bins, stats, width)
    return bins / 1e6, stats


def in_range(bins: np.ndarray, stats: dict[str, Stats], start_us: int, end_us: int) -> tuple[np.ndarray, dict[str, Stats]]:
    """The bins that start in ``[start_us, end_us)``: a slice (no copy) when they are in order."""
    if len(bins) < 2 or bool(np.all(bins[1:] > bins[:-1])):
        lo, hi = np.searchsorted(bins, [start_us, end_us])
        if (lo, hi) == (0, len(bins)):
            return bins, stats
        return bins[lo:hi], {n: tuple(a[lo:hi] for a in s) for n, s in stats.items()}  # type: ignore[misc]
    keep = (bins >= start_us) & (bins < end_us)
    return bins[keep], {n: tuple(a[keep] for a in s) for n, s in stats.items()}  # type: ignore[misc]


# ------------------------------------------------------------ the tier files


def minute_path(data_dir: str | os.PathLike[str], day: date) -> Path:
    """A day's minute tier file (``rollups`` builds it; the tray app's midnight too)."""
    return Path(data_dir) / ROLLUPS_DIR / "minute" / f"Year={day.year}" / f"Month={day.month}" / f"{day.day}.parquet"


def hour_path(data_dir: str | os.PathLike[str], year: int, month: int) -> Path:
    """A local month's hour tier file."""
    return Path(data_dir) / ROLLUPS_DIR / "hour" / f"Year={year}" / f"{month}.parquet"


def minute_files(data_dir: str | os.PathLike[str]) -> dict[date, Path]:
    """Every minute tier file there is, by day."""
    found: dict[date, Path] = {}
    for path in (Path(data_dir) / ROLLUPS_DIR / "minute").glob("Year=*/Month=*/*.parquet"):
        try:
            found[date(int(path.parent.parent.name[5:]), int(path.parent.name[6:]), int(path.stem))] = path
        except ValueError:
            continue
    return found


def tier_path(data_dir: str | os.PathLike[str], tier: str, key: Any) -> Path:
    """``minute_path`` of a day or ``hour_path`` of a (year, month), by ``tier``."""
    return minute_path(data_dir, key) if tier == "minute" else hour_path(data_dir, *key)


def write_tier(data_dir: str | os.PathLike[str], tier: str, key: Any, bins_us: np.ndarray, stats: dict[str, Stats], sources: dict[str, Any]) -> None:
    """The tier file of ``key`` (a day's minutes, a (year, month)'s hours) from these bins, and
    the day files they came from (``sources``); atomic and durable like the day files. Raises
    OSError. Whoever writes one writes its window copy next (``write_copy``)."""
    from trayapp.jsonfile import replace_atomically

    path = tier_path(data_dir, tier, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, tier_file(bins_us, stats, {"tier": tier, "sources": sources}))


def write_copy(data_dir: str | os.PathLike[str], tier: str, key: Any, bins_us: np.ndarray, stats: dict[str, Stats], sources: dict[str, Any]) -> None:
    """The window's copy of that tier file, when the window reads that tier for ``key``. Raises
    OSError."""
    if cache_wanted(tier, key):
        write_cache(cache_path(data_dir, tier, key), bins_us, stats, sources)


# ------------------------------------------------------------ the window's copies of the tiers


def stamp(path: Path) -> list[int] | None:
    """A file's (size, mtime in ns): what a tier records of each day file it was built from."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


TIER_KEY = "trayapp.rollup"  # the tier file's key/value metadata: {"tier": ..., "sources": {day: stamp}}


def tier_file(bins_us: np.ndarray, stats: dict[str, Stats], meta: dict[str, Any]) -> bytes:
    """A tier file's bytes: ``timestamp`` (the bin starts, UTC µs), then ``<metric>_min``,
    ``_mean``, ``_max`` (null where the bin had no value) and ``_count`` of each metric; ``meta``
    as JSON under ``TIER_KEY``. Written by ``trayapp.storage.parquet_writer``: no Arrow in the writer's process."""
    from trayapp.storage import parquet_writer as parquet

    columns = [("timestamp", parquet.TIMESTAMP_US)]
    arrays = [np.asarray(bins_us, dtype=np.int64)]
    for name, (low, mean, high, count) in stats.items():
        none = np.asarray(count) == 0
        for stat, values in (("min", low), ("mean", mean), ("max", high)):
            columns.append((f"{name}_{stat}", parquet.FLOAT64))
            arrays.append(np.where(none, np.nan, values))
        columns.append((f"{name}_count", parquet.INT64))
        arrays.append(np.asarray(count, dtype=np.int64))
    meta = {**meta, "crc": {column: column_crc(values) for (column, _), values in zip(columns, arrays)}}
    return parquet.write_bytes(columns, arrays, {TIER_KEY: json.dumps(meta, sort_keys=True)})


def column_crc(values: np.ndarray) -> int:
    """CRC-32 of a tier column as written and as any reader gets it back: int64 as they are,
    float64 with every NaN (a null in the file) as numpy's own NaN."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        values = np.where(np.isnan(values), np.nan, values.astype("<f8"))
    else:
        values = values.astype("<i8")
    return zlib.crc32(np.ascontiguousarray(values).tobytes())


def cache_path(data_dir: str | os.PathLike[str], tier: str, key: Any) -> Path:
    """The copy's values (``.npy``); beside it, ``.json``: its metric names and the day files it
    was built from. ``key``: the day (minutes) or (year, month) (hours)."""
    name = key.isoformat() if tier == "minute" else f"{key[0]:04d}-{key[1]:02d}"
    return Path(data_dir) / ROLLUPS_DIR / CACHE_DIR / tier / f"{name}.npy"


def cache_wanted(tier: str, key: Any, today: date | None = None) -> bool:
    """Hour copies always; minute copies for the days the window reads minutes of."""
    return tier == "hour" or key >= (today or date.today()) - timedelta(days=MINUTE_DAYS)


def write_cache(path: Path, bins_us: np.ndarray, stats: dict[str, Stats], sources: dict[str, Any]) -> None:
    """The copy of one tier file: one float64 array (row 0 the bin starts in µs, exact below
    2**53; then min, mean, max, count of each metric), and the ``.json`` beside it, written last,
    with the CRC-32 of the whole (``checksum``), computed as the rows are written. Atomic, not
    fsynced: a copy is used only when the ``.json``'s record of the day files matches them and
    its content its CRC, so a torn or altered pair reads as stale, and the next start rebuilds
    it. Written a row at a time (the tray app writes copies at midnight: no second copy of the
    table in its memory). Raises OSError."""
    from trayapp.jsonfile import atomically, replace_atomically

    names = list(stats)
    n = len(bins_us)
    crc = _meta_crc(names, n, sources)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomically(path, durable=False) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (1 + 4 * len(names), n)})
        for row in (bins_us, *(values for name in names for values in stats[name])):
            data = np.asarray(row, dtype="<f8").tobytes()
            crc = zlib.crc32(data, crc)
            f.write(data)
    meta = {"version": CACHE_VERSION, "names": names, "bins": n, "sources": sources, "crc": crc}
    replace_atomically(path.with_suffix(".json"), json.dumps(meta, sort_keys=True).encode(), durable=False)


def _meta_crc(names: list[str], bins: Any, sources: Any) -> int:
    """The CRC-32 a copy's values continue: of its names, bin count and record, so a name
    swapped or a record changed in the ``.json`` fails the check like a value changed."""
    return zlib.crc32(json.dumps([names, bins, sources], sort_keys=True).encode())


def cache_meta(path: Path) -> dict[str, Any] | None:
    """The copy's ``.json``, or None when there is no readable one of this version (a FIFO, a
    device, a folder or a huge file there is not read: ``jsonfile.read_own``)."""
    from trayapp.jsonfile import read_own

    try:
        meta = json.loads(read_own(path.with_suffix(".json"), MAX_META_BYTES))
    except (OSError, ValueError, RecursionError) as exc:
        if not isinstance(exc, FileNotFoundError):
            _distrust(path, f"its .json cannot be read ({_why(exc)})")
        return None
    if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION:
        return None
    names, n = meta.get("names"), meta.get("bins")
    if not (isinstance(names, list) and all(isinstance(x, str) for x in names) and isinstance(n, int) and 0 <= n <= MAX_BINS
            and isinstance(meta.get("crc"), int) and isinstance(meta.get("sources") or {}, dict)):
        _distrust(path, "its .json is not one trayapp wrote")
        return None
    return meta


def _why(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))[:120]


def _distrust(path: Path, why: str) -> None:
    """One warning per copy: it is not used, and the writer's next start rebuilds it."""
    from trayapp.jsonfile import warn_once

    warn_once(f"copy:{path}", f"the window's copy {path} is not used: {why}; read from the tier or day files instead, rebuilt at the next start")


def _load_checked(path: Path, meta: dict[str, Any]) -> np.ndarray | None:
    """The copy's table once its header, size and CRC-32 agree with ``meta``; else None (one
    warning when the file is there but wrong)."""
    from trayapp.jsonfile import open_own

    names: list[str] = meta["names"]
    rows, n = 1 + 4 * len(names), meta["bins"]
    try:
        with open_own(path, 4096 + rows * n * 8) as f:
            reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(np.lib.format.read_magic(f))
            if reader is None:
                raise ValueError("not a .npy file")
            shape, fortran, dtype = reader(f)
            if fortran or dtype != np.float64 or shape != (rows, n) or os.fstat(f.fileno()).st_size != f.tell() + rows * n * 8:
                raise ValueError("its shape is not what its .json says")
            table = np.empty((rows, n), dtype="<f8")
            if f.readinto(memoryview(table).cast("B")) != table.nbytes:
                raise ValueError("shorter than its .json says")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        _distrust(path, _why(exc))
        return None
    if zlib.crc32(table, _meta_crc(names, n, meta.get("sources") or {})) != meta["crc"]:
        _distrust(path, "its content does not match its checksum (changed since it was written)")
        return None
    return table


def cache_intact(path: Path) -> dict[str, Any] | None:
    """The copy's record of its day files when the copy is whole and matches its checksum;
    else None."""
    meta = cache_meta(path)
    if meta is None or _load_checked(path, meta) is None:
        return None
    return meta.get("sources") or {}


def read_cache(path: Path, metrics: list[str] | None = None) -> tuple[np.ndarray, dict[str, Stats], dict[str, Any]] | None:
    """(bin starts in µs, {metric: stats}, the day files it was built from), or None when the
    copy is missing, cannot be read or does not match its checksum (the caller reads the
    Parquet tier instead)."""
    meta = cache_meta(path)
    if meta is None:
        return None
    table = _load_checked(path, meta)
    if table is None:
        return None
    return (*from_table(table, list(meta["names"]), metrics), meta.get("sources") or {})


def to_table(bins_us: np.ndarray, stats: dict[str, Stats]) -> tuple[list[str], np.ndarray]:
    """Bins as one float64 array: row 0 the bin starts in µs (exact below 2**53), then min,
    mean, max and count of each metric; with the metric names."""
    names = list(stats)
    table = np.empty((1 + 4 * len(names), len(bins_us)))
    table[0] = bins_us
    for i, name in enumerate(names):
        for j in range(4):
            table[1 + 4 * i + j] = stats[name][j]
    return names, table


def from_table(table: np.ndarray, names: list[str], metrics: list[str] | None = None) -> tuple[np.ndarray, dict[str, Stats]]:
    """``to_table`` undone (views, no copy, but the counts); a metric not there is all NaN."""
    bins = table[0].astype(np.int64)
    index = {name: i for i, name in enumerate(names)}
    stats: dict[str, Stats] = {}
    for name in names if metrics is None else metrics:
        i = index.get(name)
        if i is None:
            stats[name] = nan_stats(len(bins))
        else:
            r = 1 + 4 * i
            stats[name] = (table[r], table[r + 1], table[r + 2], table[r + 3].astype(np.int64))
    return bins, stats


def prune_caches(data_dir: str | os.PathLike[str], today: date | None = None) -> None:
    """Drop minute copies older than ``MINUTE_DAYS`` and any temporary file a killed writer left."""
    from trayapp.jsonfile import remove_quietly

    root = Path(data_dir) / ROLLUPS_DIR / CACHE_DIR
    for tmp in [*root.glob(".*.tmp"), *root.glob("*/.*.tmp")]:
        remove_quietly(tmp)
    for path in root.glob("minute/*.*"):
        try:
            day = date.fromisoformat(path.stem)
        except ValueError:
            continue
        if not cache_wanted("minute", day, today):
            remove_quietly(path)


def remove_cache(data_dir: str | os.PathLike[str], tier: str, key: Any) -> None:
    from trayapp.jsonfile import remove_quietly

    path = cache_path(data_dir, tier, key)
    remove_quietly(path.with_suffix(".json"))
    remove_quietly(path)


# ------------------------------------------------------------ the CSV's rows, as minutes


@dataclass(frozen=True)
class RowsView:
    """What a reader of the rows file may trust, taken at one moment: its first ``count`` rows of
    ``names`` (after the time), whose bytes have CRC-32 ``rows_crc``."""

    path: Path
    names: tuple[str, ...]
    count: int
    rows_crc: int
    inode: int = 0  # the file these rows are in: one put in its place since (midnight, a GPU appearing) is another


ROWS_CHUNK = 8192  # rows to one read of a rows file (~1.2 MB for 18 columns)


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


class MinuteBins:
    """The rows a writer has in its CSV, as minute bins per metric, kept as it appends: the
    window reads today from here instead of parsing the CSV. Thread-safe: the sampler adds,
    the window's reader takes a ``snapshot``. A day of 20 metrics is ~1 MB."""

    WIDTH = TIERS["minute"]
    _EMPTY = (np.inf, 0.0, -np.inf, 0.0)  # min, sum, max, count of a bin with no value

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: list[str] = []
        self._bins = np.empty(0, dtype=np.int64)  # bin starts, µs, as they came (normally rising)
        self._cells = np.empty((0, 0, 4))  # [bin, metric] -> min, sum, max, count
        self._n = 0

    def seed(self, bins_us: np.ndarray, stats: dict[str, Stats]) -> None:
        """Start from the CSV as it was read (its rows binned by ``aggregate``)."""
        with self._lock:
            self._names = list(stats)
            n = len(bins_us)
            self._bins = np.array(bins_us, dtype=np.int64)
            self._cells = np.empty((n, len(self._names), 4))
            self._cells[:] = self._EMPTY
            for i, name in enumerate(self._names):
                lo, mean, hi, count = stats[name]
                some = np.asarray(count) > 0
                self._cells[some, i, 0] = lo[some]
                self._cells[some, i, 1] = mean[some] * count[some]
                self._cells[some, i, 2] = hi[some]
                self._cells[some, i, 3] = count[some]
            self._n = n

    def add(self, t_us: int, values: dict[str, float | None]) -> None:
        """One row written to the CSV."""
        b = t_us // self.WIDTH * self.WIDTH
        with self._lock:
            new = [name for name in values if name not in self._names]
            if new:  # a column that appeared (a GPU came): empty before
                self._names += new
                grown = np.empty((len(self._cells), len(self._names), 4))
                grown[:] = self._EMPTY
                grown[:, : self._cells.shape[1]] = self._cells
                self._cells = grown
            k = self._slot(b)
            v = np.array([values.get(name) for name in self._names], dtype=np.float64)
            ok = np.isfinite(v)
            cell = self._cells[k]
            cell[ok, 0] = np.minimum(cell[ok, 0], v[ok])
            cell[ok, 1] += v[ok]
            cell[ok, 2] = np.maximum(cell[ok, 2], v[ok])
            cell[ok, 3] += 1

    def _slot(self, b: int) -> int:
        n = self._n
        if n and self._bins[n - 1] == b:
            return n - 1
        if n and b < self._bins[n - 1]:  # the clock went back: an earlier bin may be there
            found = np.flatnonzero(self._bins[:n] == b)
            if len(found):
                return int(found[0])
        if n == len(self._bins):  # full: double
            cap = max(64, 2 * n)
            bins = np.empty(cap, dtype=np.int64)
            bins[:n] = self._bins[:n]
            cells = np.empty((cap, len(self._names), 4))
            cells[:n] = self._cells[:n]
            self._bins, self._cells = bins, cells
        self._bins[n] = b
        self._cells[n] = self._EMPTY
        self._n = n + 1
        return n

    def drop_before(self, t_us: int) -> None:
        """Forget the bins that start before ``t_us`` (their rows left the CSV at midnight)."""
        with self._lock:
            keep = self._bins[: self._n] >= t_us
            self._bins = self._bins[: self._n][keep]
            self._cells = self._cells[: self._n][keep]
            self._n = len(self._bins)

    def snapshot(self, metrics: list[str] | None = None) -> tuple[np.ndarray, dict[str, Stats]]:
        """(bin starts in µs, in order; {metric: (min, mean, max, count)}), copied."""
        with self._lock:
            order = np.argsort(self._bins[: self._n], kind="stable")
            bins = self._bins[: self._n][order]
            cells = self._cells[: self._n][order]  # fancy indexing: a copy
            names = list(self._names)
        out: dict[str, Stats] = {}
        for name in names if metrics is None else metrics:
            if name not in names:
                out[name] = nan_stats(len(bins))
                continue
            i = names.index(name)
            out[name] = _finish(cells[:, i, 0], cells[:, i, 1], cells[:, i, 2], cells[:, i, 3].astype(np.int64))
        return bins, out
