"""The rollup tiers built, mended and read with Arrow: from the day files at a rollover and at
start-up (``ensure``), and read from their Parquet files where no fresh numpy copy is there.

Imports numpy and pyarrow at the top (never pandas, never Qt): only the child, one-shot readers and
a window that already loaded Arrow import it, each where it is needed.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trayapp.jsonfile import NotRegular, open_own, read_own, remove_quietly, replace_atomically, warn_once
from trayapp.storage.bins import TIERS, Stats, aggregate, combine, concat_parts, in_range, merge_parts
from trayapp.storage.day_files import read_day_file
from trayapp.storage.layout import DAY_FILE_MAX, EARLIEST_US, LATEST_US, TIMESTAMP, aside_path, day_files, day_path
from trayapp.storage.tables import floats, numpy_of, sample_arrays, stamps_us
from trayapp.storage.tiers import (
    CACHE_DIR, MAX_META_BYTES, ROLLUPS_DIR, TIER_KEY, cache_intact, cache_path, cache_wanted, column_crc,
    hour_path, minute_files, minute_path, prune_caches, read_cache, remove_cache, stamp, write_copy, write_tier,
)

log = logging.getLogger("trayapp.storage")

STATS = ("min", "mean", "max", "count")
META_KEY = TIER_KEY.encode()


# ------------------------------------------------------------------ paths


def _day_files(data_dir: Path) -> dict[date, Path]:
    return dict(day_files(data_dir))


def _hour_files(data_dir: Path) -> dict[tuple[int, int], Path]:
    found: dict[tuple[int, int], Path] = {}
    for path in (data_dir / ROLLUPS_DIR / "hour").glob("Year=*/*.parquet"):
        try:
            found[(int(path.parent.name[5:]), int(path.stem))] = path
        except ValueError:
            continue
    return found


# pyarrow imports pandas from pa.array, pa.scalar and to_numpy: arrays go in and out of Arrow
# here through their buffers only (``tables.numpy_of``, ``tables.stamps_us``).


def _read_day(source: Path) -> pa.Table | None:
    """A day file in the store's own format (UTC timestamps, float metrics) is read here without
    pandas; anything else (the notebook's, a bad file) goes to the store's reader, which warns."""
    try:
        open_own(source, DAY_FILE_MAX).close()  # a FIFO or a device is refused here, never waited on by Arrow
        with pq.ParquetFile(source) as parquet:
            schema = parquet.schema_arrow
            ts = schema.field(TIMESTAMP).type
            own = pa.types.is_timestamp(ts) and ts.tz is not None and all(
                pa.types.is_floating(f.type) for f in schema if f.name != TIMESTAMP and not f.name.startswith("__"))
            table = parquet.read() if own else None
    except Exception:  # noqa: BLE001 - the store's reader says what is wrong with it
        table = None
    if table is not None:
        table = table.select([n for n in table.column_names if not n.startswith("__")])
        us = stamps_us(table.column(TIMESTAMP))
        if table.column(TIMESTAMP).null_count == 0 and bool(np.all((us >= EARLIEST_US) & (us < LATEST_US))):
            return table
    return read_day_file(source, None)


# ------------------------------------------------------------ tier files


def _metrics_of(names: Iterable[str]) -> list[str]:
    return [n[: -len("_count")] for n in names if n.endswith("_count")]


def _bins_of_tier_table(table: pa.Table, metrics: list[str] | None = None) -> tuple[np.ndarray, dict[str, Stats]]:
    bins = stamps_us(table.column(TIMESTAMP))
    names = _metrics_of(table.column_names) if metrics is None else metrics
    out: dict[str, Stats] = {}
    n = len(bins)
    for name in names:
        if f"{name}_count" not in table.column_names:
            nan = np.full(n, np.nan)
            out[name] = (nan, nan.copy(), nan.copy(), np.zeros(n, dtype=np.int64))
            continue
        parts = [floats(table.column(f"{name}_{stat}")) for stat in ("min", "mean", "max")]
        count = table.column(f"{name}_count")
        parts.append(numpy_of(count if count.type == pa.int64() else count.cast(pa.int64()), np.int64))
        out[name] = (parts[0], parts[1], parts[2], parts[3])
    return bins, out


MAX_TIER_BYTES = 1 << 30  # far more than a tier file holds; a larger one is not trayapp's


class Altered(ValueError):
    """A tier file's content does not match the CRC-32 its footer records of it."""


class OlderTier(Altered):
    """A tier file written by a trayapp from before tiers had a checksum: not damaged, only
    older; it is rebuilt in place, quietly, once."""


def _put_aside_unless_older(path: Path, exc: BaseException) -> None:
    """A tier file that failed to read: set aside with one warning, unless it is only older
    (then the rebuild writes over it, and one line says so for all of them)."""
    if isinstance(exc, OlderTier):
        _say_older_once()
    else:
        _set_tier_aside(path, str(exc)[:120])


_older_said = False


def _say_older_once() -> None:
    global _older_said
    if not _older_said:
        _older_said = True
        log.info("tier files from an earlier trayapp are rebuilt once, with a checksum of their content")


def _read_file(path: Path, metrics: list[str] | None = None) -> pa.Table:
    """The tier file's columns (all, or ``metrics``'), each checked against the CRC-32 its
    footer holds; raises ``Altered`` for a mismatch, ``NotRegular`` for what is not a file of
    trayapp's, and whatever Arrow raises for bytes that are not Parquet."""
    with read_own_file(path) as f, pq.ParquetFile(f) as parquet:
        if metrics is None:
            table = parquet.read()
        else:
            have = set(parquet.schema_arrow.names)
            table = parquet.read(columns=[TIMESTAMP] + [f"{n}_{s}" for n in metrics for s in STATS if f"{n}_count" in have])
    _check(table)
    return table


def read_own_file(path: Path) -> Any:
    """A tier file opened without blocking, once it is a regular file of a plausible size."""
    return open_own(path, MAX_TIER_BYTES)


def _check(table: pa.Table) -> None:
    """Every column of ``table`` against the CRC-32 its footer records (``tiers.column_crc``)."""
    meta = json.loads((table.schema.metadata or {})[META_KEY])
    crcs = meta.get("crc") if isinstance(meta, dict) else None
    if not isinstance(crcs, dict):
        raise OlderTier("no checksum of its content (written before tiers had one)")
    for name in table.column_names:
        column = table.column(name)
        if name == TIMESTAMP:
            values = stamps_us(column)
        elif name.endswith("_count"):
            values = numpy_of(column if column.type == pa.int64() else column.cast(pa.int64()), np.int64)
        else:
            values = floats(column)
        if crcs.get(name) != column_crc(values):
            raise Altered(f"column {name} does not match its checksum (changed since it was written)")


def _read_meta(path: Path) -> dict[str, Any] | None:
    """The tier file's record, or None when the file cannot be read or its content does not
    match its checksum (read whole: this is asked only of a file not seen before as it is)."""
    try:
        return json.loads((_read_file(path).schema.metadata or {})[META_KEY])
    except OlderTier:  # sound but older: rebuilt over, not set aside
        _say_older_once()
        return {"older": True}
    except Exception:  # noqa: BLE001 - any bytes may be there: the tier is unreadable
        return None


INDEX_VERSION = 2  # 2: with the CRC-32 of its records; tier files with the CRC-32 of each column


def _well_formed(meta: Any) -> bool:
    """A tier's record as ``ensure`` uses it: ``sources``, day → [size, mtime] (or null)."""
    sources = meta.get("sources") if isinstance(meta, dict) else None
    return isinstance(sources, dict) and all(v is None or (isinstance(v, list) and len(v) == 2) for v in sources.values())


class _Footers:
    """What ``ensure`` read from each tier file's footer, kept in ``Rollups/.window/tiers.json``
    with the file's size and mtime: a tier file that has neither changed since is not opened
    again. Disposable like the copies beside it: missing, torn or of another version, every
    footer is read."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / ROLLUPS_DIR
        self.path = self.root / CACHE_DIR / "tiers.json"
        known: dict[str, Any] = {}
        try:
            raw = json.loads(read_own(self.path, MAX_META_BYTES))
            if raw.get("version") == INDEX_VERSION and isinstance(raw.get("files"), dict):
                if raw.get("crc") == _index_crc(raw["files"]):
                    known = raw["files"]
                else:
                    warn_once(f"index:{self.path}", f"{self.path} does not match its checksum; every tier's footer is read instead")
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError, KeyError, TypeError, RecursionError) as exc:
            if isinstance(exc, NotRegular):
                warn_once(f"index:{self.path}", f"{self.path} is not a file of trayapp's ({exc.strerror}); every tier's footer is read instead")
        self.known = known
        self.seen: dict[str, Any] = {}

    def meta(self, path: Path) -> dict[str, Any] | None:
        """``_read_meta(path)``, from the index while the file is as it was when it was read."""
        key = path.relative_to(self.root).as_posix()
        now = stamp(path)
        entry = self.known.get(key)
        if now is not None and isinstance(entry, dict) and entry.get("stamp") == now and _well_formed(entry.get("meta")):
            meta: dict[str, Any] | None = entry["meta"]
        else:
            meta = _read_meta(path)
        if meta is not None and now is not None:
            self.seen[key] = {"stamp": now, "meta": meta}
        return meta

    def save(self) -> None:
        """What was seen this time (a file built since is read once, next time)."""
        if self.seen == self.known:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            index = {"version": INDEX_VERSION, "files": self.seen, "crc": _index_crc(self.seen)}
            replace_atomically(self.path, json.dumps(index, sort_keys=True).encode(), durable=False)
        except OSError:
            pass  # the next start reads the footers, as it would without an index


def _index_crc(files: dict[str, Any]) -> int:
    """CRC-32 of the index's records, as ``json`` writes them sorted."""
    return zlib.crc32(json.dumps(files, sort_keys=True).encode())


def _set_tier_aside(path: Path, why: str) -> None:
    aside = aside_path(path)
    try:
        os.replace(path, aside)
        log.warning("rollup file %s could not be read (%s); kept it aside as %s and rebuilt it", path, why, aside)
    except OSError as exc:
        log.warning("rollup file %s could not be read (%s) nor set aside (%s)", path, why, exc)


# ------------------------------------------------------------------ build


def build_day(data_dir: str | os.PathLike[str], day: date, table: pa.Table | None = None, hours: bool = True) -> bool:
    """Write ``day``'s minute tier from its raw day file (``table``: that file's rows, already
    read) and, with ``hours``, rebuild its month's hour tier. False (one warning) when the day
    file cannot be read; never raises for what is on disk."""
    data_dir = Path(data_dir)
    source = day_path(data_dir, day)
    try:
        recorded = stamp(source)  # before reading: a change after this makes the tier stale, not wrong
        if recorded is None:
            return False
        if table is None:
            table = _read_day(source)
            if table is None:
                log.warning("rollup: day file %s cannot be read; no rollup for %s", source, day.isoformat())
                return False
        ts, values = sample_arrays(table)
        bins, stats = aggregate(ts, values, TIERS["minute"])
        sources = {day.isoformat(): recorded}
        write_tier(data_dir, "minute", day, bins, stats, sources)
        _copy_for_window(data_dir, "minute", day, bins, stats, sources)
        if hours:
            build_month(data_dir, day.year, day.month, {day: (bins, stats)})
        return True
    except Exception as exc:  # noqa: BLE001 - a rollup must never fail a rollover
        log.warning("rollup of %s failed (%s: %s); it is rebuilt at the next start", day.isoformat(), type(exc).__name__, str(exc)[:160])
        return False


def build_month(data_dir: str | os.PathLike[str], year: int, month: int, fresh: dict[date, tuple[np.ndarray, dict[str, Stats]]] | None = None) -> None:
    """Rebuild the hour tier of local month ``year``-``month`` from its days' minute tiers."""
    data_dir = Path(data_dir)
    fresh = fresh or {}
    sources: dict[str, Any] = {}
    parts: list[tuple[np.ndarray, dict[str, Stats]]] = []
    for day, path in sorted(minute_files(data_dir).items()):
        if (day.year, day.month) != (year, month):
            continue
        if day in fresh:
            parts.append(fresh[day])
            sources[day.isoformat()] = stamp(day_path(data_dir, day))
            continue
        copy = read_cache(cache_path(data_dir, "minute", day))  # the same bins, read faster than from Parquet
        if copy is not None and copy[2].get(day.isoformat()) == stamp(day_path(data_dir, day)):
            parts.append(copy[:2])
            sources.update(copy[2])
            continue
        try:
            table = _read_file(path)
            meta = json.loads((table.schema.metadata or {})[META_KEY])
        except Exception as exc:  # noqa: BLE001 - any bytes may be there: the day file is the truth
            _put_aside_unless_older(path, exc)
            table = _read_day(day_path(data_dir, day)) if day_path(data_dir, day).exists() else None
            if table is None or not build_day(data_dir, day, table, hours=False):
                continue
            ts, values = sample_arrays(table)
            parts.append(aggregate(ts, values, TIERS["minute"]))
            sources[day.isoformat()] = stamp(day_path(data_dir, day))
            continue
        parts.append(_bins_of_tier_table(table))
        sources.update(meta.get("sources", {}))
    target = hour_path(data_dir, year, month)
    if not parts:
        remove_quietly(target)
        remove_cache(data_dir, "hour", (year, month))
        return
    names = list(dict.fromkeys(n for _, stats in parts for n in stats))
    hb, hs = combine(*concat_parts(parts, names), TIERS["hour"])
    write_tier(data_dir, "hour", (year, month), hb, hs, sources)
    _copy_for_window(data_dir, "hour", (year, month), hb, hs, sources)


def _copy_for_window(data_dir: Path, tier: str, key: Any, bins: np.ndarray, stats: dict[str, Stats], sources: dict[str, Any]) -> None:
    """The tier file's numpy copy (``tiers``), when the window reads that tier for ``key``; a
    failure costs the window speed, never data (it reads the Parquet tier instead)."""
    try:
        write_copy(data_dir, tier, key, bins, stats, sources)
    except OSError as exc:
        warn_once(f"cache:{exc.errno}", f"cannot write the window's copy of a rollup ({exc.strerror or exc}); it reads the Parquet tier instead")


def ensure(data_dir: str | os.PathLike[str]) -> int:
    """Bring every tier up to date with the dataset: build what is missing, stale (its day file's
    size or mtime changed) or unreadable (set aside as a dot-file first); drop tiers whose day
    file is gone. Costs stat calls and footers when nothing is to do. Returns days rebuilt."""
    data_dir = Path(data_dir)
    try:
        return _ensure(data_dir)
    except Exception as exc:  # noqa: BLE001 - start-up must go on without tiers
        log.warning("rollups of %s could not be brought up to date (%s: %s)", data_dir, type(exc).__name__, str(exc)[:160])
        remove_quietly(data_dir / ROLLUPS_DIR / CACHE_DIR / "tiers.json")  # whatever it was, the next start reads the footers
        return 0


def _ensure(data_dir: Path) -> int:
    root = data_dir / ROLLUPS_DIR
    for tmp in [*root.glob("minute/Year=*/Month=*/.*.tmp"), *root.glob("hour/Year=*/.*.tmp")]:
        remove_quietly(tmp)  # left by a killed writer; only the writer-lock holder writes here
    days = _day_files(data_dir)
    stamps = {day: stamp(path) for day, path in days.items()}
    minutes = minute_files(data_dir)
    footers = _Footers(data_dir)
    rebuilt = 0
    months_touched: set[tuple[int, int]] = set()
    for day, path in minutes.items():
        if day not in days:
            remove_quietly(path)
            remove_cache(data_dir, "minute", day)  # the window's copy of it too
            months_touched.add((day.year, day.month))
    for day in sorted(days):
        path = minutes.get(day)
        if path is not None:
            meta = footers.meta(path)
            if meta is None:
                _set_tier_aside(path, "its footer cannot be read, or its content does not match its checksum")
            elif meta.get("sources", {}).get(day.isoformat()) == stamps[day]:
                if _mend_copy(data_dir, "minute", day, path, meta["sources"]):
                    continue
                footers.seen.pop(path.relative_to(footers.root).as_posix(), None)
        if build_day(data_dir, day, hours=False):
            rebuilt += 1
        else:
            remove_quietly(minute_path(data_dir, day))
        months_touched.add((day.year, day.month))
    wanted: dict[tuple[int, int], dict[str, Any]] = {}
    for day, path in minute_files(data_dir).items():
        wanted.setdefault((day.year, day.month), {})[day.isoformat()] = stamps.get(day)
    hours = _hour_files(data_dir)
    for key, path in hours.items():
        if key not in wanted:
            remove_quietly(path)
            remove_cache(data_dir, "hour", key)
    for key, sources in wanted.items():
        path = hours.get(key)
        if path is not None and key not in months_touched:
            meta = footers.meta(path)
            if meta is None:
                _set_tier_aside(path, "its footer cannot be read, or its content does not match its checksum")
            elif meta.get("sources") == sources:
                if _mend_copy(data_dir, "hour", key, path, sources):
                    continue
                footers.seen.pop(path.relative_to(footers.root).as_posix(), None)
        build_month(data_dir, *key)
    prune_caches(data_dir)
    footers.save()
    return rebuilt


def _mend_copy(data_dir: Path, tier: str, key: Any, path: Path, sources: dict[str, Any]) -> bool:
    """Write the window's copy of a fresh tier file that lacks a whole one (deleted, torn,
    altered, or made before copies existed). False when the tier file itself cannot be read or
    fails its checksum: it is set aside, for the caller to rebuild from the day files."""
    if not cache_wanted(tier, key):
        return True
    if cache_intact(cache_path(data_dir, tier, key)) == sources:
        return True
    try:
        bins, stats = _bins_of_tier_table(_read_file(path))
    except Exception as exc:  # noqa: BLE001 - any bytes may be there: rebuilt from the day files
        _put_aside_unless_older(path, exc)
        return False
    _copy_for_window(data_dir, tier, key, bins, stats, sources)
    return True


# ------------------------------------------------------------------- read


def read_tier_files(paths: list[Path], metrics: list[str] | None = None) -> list[tuple[pa.Table | None, dict[str, Any] | None]]:
    """Each tier file as (table without its metadata, the day files it was built from: {day: stamp}),
    read on a few threads (Arrow lets go of the GIL); (None, None) for a file that is missing or
    cannot be read (one warning; ``ensure`` mends it at the writer's next start)."""
    if not paths:
        return []
    with ThreadPoolExecutor(max_workers=min(4, len(paths))) as pool:
        return list(pool.map(lambda path: _read_or_warn(path, metrics), paths))


def join_tier_tables(tables: list[pa.Table], tier: str, start_us: int, end_us: int, metrics: list[str] | None = None) -> tuple[np.ndarray, dict[str, Stats]]:
    """Tier files' tables as one set of bins in ``[start_us, end_us)``: joined in Arrow and made
    numpy once (a month of minute files costs one conversion, not thirty)."""
    width = TIERS[tier]
    names: list[str] = list(metrics) if metrics is not None else []
    if metrics is None:
        for table in tables:
            names.extend(n for n in _metrics_of(table.column_names) if n not in names)
    if not tables:
        return merge_parts([], names, width)
    try:
        parts = [_bins_of_tier_table(tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default"), names)]
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a file some other tool wrote with other types: one by one
        parts = [_bins_of_tier_table(table, names) for table in tables]
    return merge_parts([in_range(bins, stats, start_us, end_us) for bins, stats in parts], names, width)


def _read_or_warn(path: Path, metrics: list[str] | None) -> tuple[pa.Table | None, dict[str, Any] | None]:
    try:
        if not path.exists():
            return None, None
        table = _read_file(path, metrics)
        sources = json.loads((table.schema.metadata or {})[META_KEY]).get("sources", {})
    except OlderTier:  # an earlier trayapp's: the writer's next start rebuilds it; nothing to warn of
        return None, None
    except Exception as exc:  # noqa: BLE001 - ensure() mends it at the next start
        warn_once(f"rollup:{path}", f"rollup file {path} cannot be read ({str(exc)[:120]}); read from its day files instead")
        return None, None
    return table.replace_schema_metadata(None), sources  # each file's own sources: not wanted in a join
