"""The rollup tiers' files (``Rollups/minute``, ``Rollups/hour``) written from numpy bins, and the
window's numpy copies of them (``Rollups/.window``), checked before they are trusted.

Imports numpy, ``bins``, ``parquet_writer`` and ``jsonfile``: never Arrow (the tray app writes
tiers at midnight and reads the copies).
"""

from __future__ import annotations

import json
import os
import zlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from trayapp.jsonfile import atomically, open_own, read_own, remove_quietly, replace_atomically, warn_once
from trayapp.storage.bins import Stats, unstack_bins
from trayapp.storage.parquet_writer import FLOAT64, INT64, TIMESTAMP_US, write_bytes

ROLLUPS_DIR = "Rollups"
CACHE_DIR = ".window"
CACHE_VERSION = 2  # 2: the copy's ``.json`` holds the CRC-32 of its content
MAX_BINS = 1500  # a tier file's bins: a day of minutes is at most 1500 (25 h), a month of hours 745
MAX_META_BYTES = 4_000_000  # a copy's ``.json``, or ``tiers.json``: names and day-file records
MINUTE_DAYS = 63  # minute copies kept this many days back: the window reads minutes up to 62 days


def minute_path(data_dir: str | os.PathLike[str], day: date) -> Path:
    """A day's minute tier file (``tier_builder`` builds it; the recorder's midnight too)."""
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

    path = tier_path(data_dir, tier, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, tier_file(bins_us, stats, {"tier": tier, "sources": sources}))


def write_copy(data_dir: str | os.PathLike[str], tier: str, key: Any, bins_us: np.ndarray, stats: dict[str, Stats], sources: dict[str, Any]) -> None:
    """The window's copy of that tier file, when the window reads that tier for ``key``. Raises
    OSError."""
    if cache_wanted(tier, key):
        write_cache(cache_path(data_dir, tier, key), bins_us, stats, sources)


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

    columns = [("timestamp", TIMESTAMP_US)]
    arrays = [np.asarray(bins_us, dtype=np.int64)]
    for name, (low, mean, high, count) in stats.items():
        none = np.asarray(count) == 0
        for stat, values in (("min", low), ("mean", mean), ("max", high)):
            columns.append((f"{name}_{stat}", FLOAT64))
            arrays.append(np.where(none, np.nan, values))
        columns.append((f"{name}_count", INT64))
        arrays.append(np.asarray(count, dtype=np.int64))
    meta = {**meta, "crc": {column: column_crc(values) for (column, _), values in zip(columns, arrays)}}
    return write_bytes(columns, arrays, {TIER_KEY: json.dumps(meta, sort_keys=True)})


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

    warn_once(f"copy:{path}", f"the window's copy {path} is not used: {why}; read from the tier or day files instead, rebuilt at the next start")


def _load_checked(path: Path, meta: dict[str, Any]) -> np.ndarray | None:
    """The copy's table once its header, size and CRC-32 agree with ``meta``; else None (one
    warning when the file is there but wrong)."""

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
    return (*unstack_bins(table, list(meta["names"]), metrics), meta.get("sources") or {})


def prune_caches(data_dir: str | os.PathLike[str], today: date | None = None) -> None:
    """Drop minute copies older than ``MINUTE_DAYS`` and any temporary file a killed writer left."""

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
    path = cache_path(data_dir, tier, key)
    remove_quietly(path.with_suffix(".json"))
    remove_quietly(path)
