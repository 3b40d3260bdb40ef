"""Midnight's rollover done by the recorder itself (the tray app, ``run --headless``), with no
Arrow and no child process.

The writer's rollover reads the CSV with Arrow, which a process keeps once loaded; so a
long-running recorder hands it to a one-shot child, which holds far more than the recorder for a
moment beside it. For the usual midnight that is not needed: the recorder wrote every row of the
CSV. So, as it appends a row, it also appends the row's numbers, as float64, to
``csv_dump/.daily_dump.rows`` (``rows_file.RowsFile``; the start-up child writes the file for the
rows that were there). At midnight:

- the CSV must be byte for byte what those rows were made from (its size and CRC-32, kept as it
  was written), its rows in strictly rising time, and no day file there yet for the days that
  leave it (a merge is Arrow's work); else ``roll`` raises ``LeftToChild`` and the child does it;
- the rows go to the day file through ``parquet_writer`` in row groups of ``ROWS_CHUNK`` rows,
  written atomically and read back (its timestamps decoded from the disk's bytes), then to the
  day's minute tier and its month's hour tier (from the window's numpy copies of the month's
  other days), then the CSV is rewritten with today's rows; so a crash at any moment leaves
  what the child's rollover mends (the CSV is cut last, and merging is idempotent);
- memory: a row group's block and the compressed file, never the whole day.

Imports numpy, the rows file, the tiers and ``parquet_writer`` (zstandard): never Arrow, never Qt,
never the writer, which calls ``roll`` and ``retention`` with what they need.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import numpy as np

from trayapp.jsonfile import atomically, remove_quietly
from trayapp.storage.bins import TIERS, MinuteBins, aggregate, combine, concat_parts
from trayapp.storage.csv_file import last_lines
from trayapp.storage.day_files import remove_days_before
from trayapp.storage.layout import EARLIEST, EARLIEST_US, LATEST_US, TIMESTAMP, day_files, day_path, micros
from trayapp.storage.parquet_writer import FLOAT64, TIMESTAMP_US, ParquetWriter, read_back
from trayapp.storage.rows_file import RowsFile
from trayapp.storage.tiers import (
    cache_intact, cache_path, hour_path, minute_files, minute_path, read_cache, remove_cache, stamp, write_copy,
    write_tier,
)

log = logging.getLogger("trayapp.storage")


def _local_day(us: int, tz: tzinfo) -> date:
    return (EARLIEST + timedelta(microseconds=us)).astimezone(tz).date()


def _midnight_us(day: date, tz: tzinfo) -> int:
    """The moment ``day`` begins in ``tz``, in µs since the epoch."""
    return micros(datetime.combine(day, datetime.min.time(), tz))


class LeftToChild(Exception):
    """This midnight is not one ``roll`` can do: the child does it (the message says why)."""


def roll(
    data_dir: Path, csv_path: Path, rows: RowsFile, tz: tzinfo, today: date, replace_csv: Callable[[bytes], None],
    minutes: MinuteBins | None = None,
) -> date | None:
    """Move every row of a day before ``today`` from the CSV into its day file and tiers, in this
    process; returns the earliest day left in the CSV (None when no row is left).

    ``replace_csv(content)``: the writer puts ``content`` in the CSV's place (it holds the file
    open); ``minutes``: the writer's minute bins, cut to ``today``. Raises ``LeftToChild`` before
    anything is written when it is the child's to do, and OSError (and whatever a bug raises)
    after, when the child then finishes what is left. ``rows`` is dropped (``rows.dropped``) when
    it could not follow the CSV's cut."""
    if not rows.matches(csv_path):
        raise LeftToChild("the CSV is not what the rows file was made from")
    if not rows.intact():
        log.warning("%s is not what was written to it (changed in place?); the day goes to a child that reads the CSV", rows.path)
        raise LeftToChild("the rows file is not what was written to it")
    ts = rows.times()
    if len(ts) > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        raise LeftToChild("rows out of order")
    if len(ts) and (ts[0] < EARLIEST_US or ts[-1] >= LATEST_US):
        raise LeftToChild("a time before 1970 or after 2199 (a clock far off): such rows are kept aside")
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
        if day_path(data_dir, day).exists():
            raise LeftToChild(f"{day} has a day file to merge into")
        if not _month_fresh(data_dir, day):
            raise LeftToChild(f"the window's copies of {day:%Y-%m} are not all fresh")
    for day, lo, hi in groups:
        _write_day(data_dir, rows, day, ts[lo:hi], lo, hi)
    if groups and not (rows.matches(csv_path) and rows.intact()):
        # the rows changed under the writing: the day files made from them go (none was there
        # before), and the child writes them from the CSV, which is cut only after that
        for day, _, _ in groups:
            remove_quietly(day_path(data_dir, day))
        raise OSError("the rows file changed while the day files were written from it")
    if first:
        _cut_csv(csv_path, rows, first, replace_csv)
    if minutes is not None:
        minutes.drop_before(_midnight_us(today, tz))
    return day_of(first) if first < n else None


def _write_day(data_dir: Path, rows: RowsFile, day: date, ts: np.ndarray, lo: int, hi: int) -> None:
    path = day_path(data_dir, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts: dict[str, list[Any]] = {name: [] for name in rows.names}  # per metric: its minute bins of each block
    with atomically(path) as sink:  # the pages go to disk as they are made
        writer = ParquetWriter(sink, [(TIMESTAMP, TIMESTAMP_US), *((name, FLOAT64) for name in rows.names)])
        for _, block in rows.blocks(lo, hi):
            t = block[:, 0].astype(np.int64)
            columns = [block[:, 1 + i] for i in range(len(rows.names))]
            writer.add_row_group([t, *columns])
            for name, values in zip(rows.names, columns):  # a metric at a time: a small peak
                b, stats = aggregate(t, {name: values}, TIERS["minute"])
                parts[name].append((b, stats[name]))
            del columns
        writer.finish()
    try:  # from the disk: only rows found there leave the CSV
        back = read_back(path, writer, 0)
    except ValueError:
        back = None
    if back is None or not np.array_equal(back, ts):
        remove_quietly(path)
        raise OSError(f"{path} did not read back as written")
    minute_bins, minute_stats = np.empty(0, np.int64), {}
    for name in rows.names:  # blocks cut minutes: a minute two blocks share is combined
        pieces = parts.pop(name)
        joined = tuple(np.concatenate([p[1][i] for p in pieces]) for i in range(4))
        minute_bins, stats = combine(np.concatenate([p[0] for p in pieces]), {name: joined}, TIERS["minute"])
        minute_stats[name] = stats[name]
    sources = {day.isoformat(): stamp(path)}
    write_tier(data_dir, "minute", day, minute_bins, minute_stats, sources)
    write_copy(data_dir, "minute", day, minute_bins, minute_stats, sources)
    month = _month_parts(data_dir, day)
    if month is None:  # checked before: a copy changed since
        raise OSError(f"the window's copies of {day:%Y-%m} changed during the rollover")
    parts_, month_sources = month
    parts_.append(combine(minute_bins, minute_stats, TIERS["hour"]))
    month_sources.update(sources)
    names = list(dict.fromkeys(n for _, stats in parts_ for n in stats))
    hour_bins, hour_stats = combine(*concat_parts(parts_, names), TIERS["hour"])
    write_tier(data_dir, "hour", (day.year, day.month), hour_bins, hour_stats, month_sources)
    write_copy(data_dir, "hour", (day.year, day.month), hour_bins, hour_stats, month_sources)


def _others(data_dir: Path, day: date) -> list[date]:
    """The other days of ``day``'s month that have a minute tier."""
    return [d for d in sorted(minute_files(data_dir)) if (d.year, d.month) == (day.year, day.month) and d != day]


def _month_fresh(data_dir: Path, day: date) -> bool:
    """Every other day of the month has a whole copy of its minute tier, made from its day file
    as it is (a look at each copy's header, not its values)."""
    for other in _others(data_dir, day):
        sources = cache_intact(cache_path(data_dir, "minute", other))
        if sources is None or sources.get(other.isoformat()) != stamp(day_path(data_dir, other)):
            return False
    return True


def _month_parts(data_dir: Path, skip: date) -> tuple[list[Any], dict[str, Any]] | None:
    """The hour bins of every other day of ``skip``'s month that has a minute tier, each from the
    window's copy of it (one day at a time: a month of minutes is never held), and their
    sources; None when a copy is missing or stale (the child rebuilds from the tier files)."""
    parts: list[Any] = []
    sources: dict[str, Any] = {}
    for day in _others(data_dir, skip):
        copy = read_cache(cache_path(data_dir, "minute", day))
        if copy is None or copy[2].get(day.isoformat()) != stamp(day_path(data_dir, day)):
            return None
        parts.append(combine(copy[0], copy[1], TIERS["hour"]))
        sources.update(copy[2])
    return parts, sources


def _cut_csv(csv_path: Path, rows: RowsFile, first: int, replace_csv: Callable[[bytes], None]) -> None:
    """The CSV with its header and rows ``first`` on (each row one line: ``matches`` said so)."""
    content = last_lines(csv_path, rows.count - first)
    replace_csv(content)
    try:
        rows.keep_from(first, content)
    except OSError:
        rows.drop()


def retention(data_dir: Path, retention_days: int, tz: tzinfo, today: date) -> None:
    """Retention (``day_files.remove_days_before``), with the tiers of the days it removes: their
    minute tiers go, and their hours leave the month's hour tier (cut from the window's copy of
    it, which must be fresh, and possible only where the zone's days are whole UTC hours).
    ``LeftToChild`` before anything is removed when that cannot be done here (the child's
    ``ensure`` does it)."""
    if retention_days <= 0:
        return
    cutoff = today - timedelta(days=retention_days)
    going = sorted(day for day, _ in day_files(data_dir) if day < cutoff)
    if not going:
        return
    hour = TIERS["hour"]
    months: dict[tuple[int, int], Any] = {}
    spans: dict[date, tuple[int, int]] = {}  # each going day, from its midnight to the next
    for day in going:
        key = (day.year, day.month)
        if key not in months:
            copy = read_cache(cache_path(data_dir, "hour", key))
            if copy is None or any(recorded != stamp(day_path(data_dir, date.fromisoformat(d))) for d, recorded in copy[2].items()):
                raise LeftToChild(f"the window's copy of the hour tier of {day:%Y-%m} is not fresh")
            months[key] = copy
        start, end = spans[day] = (_midnight_us(day, tz), _midnight_us(day + timedelta(days=1), tz))
        if start % hour or end % hour:
            raise LeftToChild("this zone's days are not whole UTC hours")
    remove_days_before(data_dir, cutoff)
    for day in going:
        if not day_path(data_dir, day).exists():
            remove_quietly(minute_path(data_dir, day))
            remove_cache(data_dir, "minute", day)
    for (year, month), (hour_bins, stats, sources) in months.items():
        keep = np.ones(len(hour_bins), dtype=bool)
        for day in going:
            if (day.year, day.month) == (year, month) and not day_path(data_dir, day).exists():
                start, end = spans[day]
                keep &= (hour_bins < start) | (hour_bins >= end)
                sources.pop(day.isoformat(), None)
        path = hour_path(data_dir, year, month)
        if not sources:
            remove_quietly(path)
            remove_cache(data_dir, "hour", (year, month))
            continue
        kept = {name: tuple(a[keep] for a in s) for name, s in stats.items()}
        write_tier(data_dir, "hour", (year, month), hour_bins[keep], kept, sources)
        write_copy(data_dir, "hour", (year, month), hour_bins[keep], kept, sources)
