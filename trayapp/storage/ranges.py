"""Reading a range, for whoever asks: raw samples (``read``, ``samples``) for the rule windows,
``status`` and export, and a tier's bins over a range (``iter_tier_parts``) for the window.

Imports the readers of the CSV, the day files and the tiers' copies (no Arrow at import);
``tier_builder`` only where a tier must be read from Parquet. Nothing it imports imports it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from trayapp.storage.bins import TIERS, aggregate, combine, in_range, nan_stats
from trayapp.storage.csv_file import read_csv
from trayapp.storage.day_files import read_day_file
from trayapp.storage.layout import CSV_DIR, CSV_NAME, EARLIEST_US, LATEST_US, TIMESTAMP, day_files, day_path, local_date
from trayapp.storage.tables import as_numpy, concat, rows_in_range, sample_arrays, unique_sorted, with_columns
from trayapp.storage.tiers import cache_path, hour_path, minute_path, read_cache, stamp



# ----------------------------------------------------------------- raw samples


def read(
    data_dir: str | Path, start: datetime | None = None, end: datetime | None = None, columns: Iterable[str] | None = None, csv_table: Any = None
) -> Any:
    """Samples with ``start < timestamp <= end`` from Parquet and the CSV together (a pyarrow Table).

    Only the day files the range needs are opened, so the cost follows the range, not the
    history. Unreadable files and lines are skipped with one warning each. The result is
    sorted by time, with one row per timestamp, and ``timestamp`` as ``timestamp[us, UTC]``.
    ``csv_table``: the CSV day file as ``read_csv`` gave it, when the caller read it already.
    """
    data_dir = Path(data_dir)
    wanted = None if columns is None else [TIMESTAMP, *[c for c in columns if c != TIMESTAMP]]
    # The CSV first: a rollover writes the day file before it trims the CSV, so reading in
    # this order can see a row twice (dropped below) but never miss one.
    if csv_table is None:
        csv_table = read_csv(data_dir / CSV_DIR / CSV_NAME, wanted)
    elif wanted is not None:  # the columns asked for, null where the CSV has none
        csv_table = with_columns(csv_table.select([c for c in wanted if c in csv_table.column_names]), wanted)
    parts = []
    for path in _paths_for(data_dir, start, end):
        table = read_day_file(path, wanted, start, end)
        if table is not None:
            parts.append(rows_in_range(table, start, end))
    if csv_table is not None:
        parts.append(rows_in_range(csv_table, start, end))  # today's rows come last in time
    return unique_sorted(concat(parts, wanted))


def samples(
    data_dir: str | Path, start: datetime, end: datetime, metrics: list[str], csv_table: Any = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``read`` as numpy: epoch seconds and one float64 array (NaN for null) per metric."""
    return as_numpy(read(data_dir, start, end, columns=metrics, csv_table=csv_table), metrics)  # not to_numpy: it imports pandas


def _paths_for(data_dir: Path, start: datetime | None, end: datetime | None) -> list[Path]:
    if start is None:
        return [path for day, path in sorted(day_files(data_dir)) if end is None or day <= local_date(end) + timedelta(days=1)]
    # one day of margin each side: a row's file is its local day when written, and the
    # zone may have changed since (travel, DST rules)
    first = local_date(start) - timedelta(days=1)
    last = local_date(end or datetime.now(timezone.utc)) + timedelta(days=1)
    paths = []
    day = first
    while day <= last:
        path = day_path(data_dir, day)
        if path.exists():
            paths.append(path)
        day += timedelta(days=1)
    return paths


# ----------------------------------------------------------------- a tier over a range


def iter_tier_parts(
    data_dir: str | Path, tier: str, start: datetime, end: datetime, metrics: list[str] | None = None, recent: tuple[np.ndarray, dict] | None = None
) -> Iterator[tuple[np.ndarray, dict]]:
    """The ``tier``'s bins that start in ``[start, end)`` (the bin holding ``start`` included), in
    parts that are drawn together without being merged (a month of minutes is not copied again):

    - from the CSV's first row in the range on (today, normally), the raw rows, binned here: the
      CSV and any day file there, each row once, whatever happened to the clock, the zone or a
      rollover meanwhile (the CSV is read first: a rollover after that is read in the day files);
    - before that, the tier files, each used only if it was built from the day files as they are
      now (their size and mtime); a day whose tier is missing, unreadable or stale is binned here
      from its minute tier (for hours) or its raw day file, and the writer's next start mends it.

    With ``recent`` (the writer's minute bins of its CSV: ``MinuteBins.snapshot``), the CSV's rows
    come from there instead, at minute resolution, and the tiers cover what comes before them (for
    hours, the hour the CSV starts in is read from that day's minutes).

    Each part: (bin starts in epoch seconds, {metric: (min, mean, max, count)}), read when it is
    asked for (one day's copy at a time: a month costs a day's memory)."""
    data_dir = Path(data_dir)
    width = TIERS[tier]
    start_us = int(start.timestamp() * 1e6) // width * width
    end_us = int(end.timestamp() * 1e6) + 1
    if recent is not None:
        yield from parts_after_minutes(data_dir, tier, start_us, end_us, metrics, recent)
        return
    csv_table = read_csv(data_dir / CSV_DIR / CSV_NAME)
    raw_from = end_us
    if csv_table is not None and csv_table.num_rows:
        ts = np.round(as_numpy(csv_table, [])[0] * 1e6).astype(np.int64)
        ts = ts[(ts >= start_us) & (ts < end_us)]
        if len(ts):
            raw_from = max(start_us, int(ts.min()) // width * width)
    if raw_from < end_us:
        part = _raw_binned(data_dir, raw_from, end_us, width, metrics, csv_table)
        del csv_table
        if len(part[0]):
            yield part
    if start_us < raw_from:
        yield from tier_zone_parts(data_dir, tier, start_us, raw_from, metrics)


def parts_after_minutes(
    data_dir: Path, tier: str, start_us: int, end_us: int, metrics: list[str] | None, recent: tuple[np.ndarray, dict],
    missing: list[date] | None = None,
) -> Iterator[tuple[np.ndarray, dict]]:
    """``iter_tier_parts`` with the CSV's rows given as minute bins (no CSV read, no Arrow when the
    tiers' numpy copies are fresh; with ``missing``, never: a day whose copy is missing or stale is
    added to it instead of being read from Parquet)."""
    bins, stats = in_range(*recent, start_us, end_us)
    if metrics is not None:
        stats = {n: stats[n] if n in stats else nan_stats(len(bins)) for n in metrics}
    raw_from = int(bins[0]) if len(bins) else end_us
    if len(bins):
        yield bins / 1e6, stats
    if tier == "hour" and raw_from < end_us:
        hour_from = max(start_us, raw_from // TIERS["hour"] * TIERS["hour"])
        if hour_from < raw_from:  # the hour the CSV starts in: its earlier minutes are in the day files
            yield from tier_zone_parts(data_dir, "minute", hour_from, raw_from, metrics, missing)
        raw_from = hour_from
    if start_us < raw_from:
        yield from tier_zone_parts(data_dir, tier, start_us, raw_from, metrics, missing)


def csv_minutes(data_dir: str | Path, csv_table: Any = None) -> tuple[np.ndarray, dict]:
    """The CSV's rows as minute bins (bin starts in µs): what a writer's ``MinuteBins`` starts from.
    ``csv_table``: the CSV as ``read_csv`` gave it, when the caller read it already."""
    table = read_csv(Path(data_dir) / CSV_DIR / CSV_NAME) if csv_table is None else csv_table
    if table is None:
        return np.empty(0, dtype=np.int64), {}
    return aggregate(*sample_arrays(table), TIERS["minute"])


def _raw_binned(data_dir: Path, start_us: int, end_us: int, width: int, metrics: list[str] | None, csv_table: Any) -> tuple[np.ndarray, dict]:
    """The raw rows in ``[start_us, end_us)`` (the CSV, already read, and the day files), binned."""
    def moment(us: int) -> datetime:
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)

    table = read(data_dir, moment(start_us - 1), moment(end_us - 1), metrics, csv_table=csv_table)
    bins, stats = aggregate(*sample_arrays(table), width)
    return bins / 1e6, stats


def tier_zone_parts(
    data_dir: Path, tier: str, start_us: int, end_us: int, metrics: list[str] | None, missing: list[date] | None = None
) -> Iterator[tuple[np.ndarray, dict]]:
    """Bins in ``[start_us, end_us)`` from the tier's numpy copies (one part each, read as asked
    for), else its Parquet files, that match their day files, and the days they do not cover
    binned here; with ``missing``, the days without a fresh copy go there instead (no Arrow).
    Non-empty parts only."""
    first = local_date(datetime.fromtimestamp(start_us / 1e6, timezone.utc)) - timedelta(days=1)
    last = local_date(datetime.fromtimestamp(end_us / 1e6, timezone.utc)) + timedelta(days=1)
    stamps: dict[date, Any] = {}
    day = first
    while day <= last:
        found = stamp(day_path(data_dir, day))
        if found is not None:
            stamps[day] = found
        day += timedelta(days=1)
    groups: dict[Any, list[date]] = {}
    for day in stamps:
        groups.setdefault(day if tier == "minute" else (day.year, day.month), []).append(day)
    uncopied = []
    for key, days in groups.items():
        copy = read_cache(cache_path(data_dir, tier, key), metrics)
        if copy is not None and all(copy[2].get(d.isoformat()) == stamps[d] for d in days):
            bins, stats = in_range(copy[0], copy[1], start_us, end_us)
            if len(bins):
                yield bins / 1e6, stats
        else:
            uncopied.append(key)
        del copy
    if uncopied and missing is not None:
        missing.extend(day for key in uncopied for day in groups[key])
    elif uncopied:  # Parquet: loads Arrow
        parts = _parquet_zone(data_dir, tier, start_us, end_us, metrics, {k: groups[k] for k in uncopied}, stamps)
        yield from (p for p in parts if len(p[0]))


def _parquet_zone(
    data_dir: Path, tier: str, start_us: int, end_us: int, metrics: list[str] | None, groups: dict[Any, list[date]], stamps: dict[date, Any]
) -> list[tuple[np.ndarray, dict]]:
    from trayapp.storage.tier_builder import join_tier_tables, read_tier_files  # here: it loads Arrow, which the tray app reads without

    keys = list(groups)
    paths = [minute_path(data_dir, k) if tier == "minute" else hour_path(data_dir, *k) for k in keys]
    fresh, stale = [], []
    for key, (table, sources) in zip(keys, read_tier_files(paths, metrics)):
        if table is not None and all((sources or {}).get(d.isoformat()) == stamps[d] for d in groups[key]):
            fresh.append(table)
        else:
            stale.extend(groups[key])
    parts = []
    if fresh:
        bins, stats = join_tier_tables(fresh, tier, start_us, end_us, metrics)
        parts.append((bins, stats))
    for day in stale:
        part = _binned_day(data_dir, tier, day, stamps[day], metrics)
        if part is not None:
            b, st = in_range(*part, start_us, end_us)
            parts.append((b / 1e6, st))
    return parts


def _binned_day(data_dir: Path, tier: str, day: date, stamp: Any, metrics: list[str] | None) -> tuple[np.ndarray, dict] | None:
    """One day the tier does not cover, binned to ``tier`` (bin starts in µs): from its minute
    tier when that matches its day file (an hour tier month not rebuilt), else from the day file."""
    from trayapp.storage.tier_builder import join_tier_tables, read_tier_files  # here: it loads Arrow, which the tray app reads without

    width = TIERS[tier]
    if tier == "hour":
        ((table, sources),) = read_tier_files([minute_path(data_dir, day)], metrics)
        if table is not None and (sources or {}).get(day.isoformat()) == stamp:
            bins, stats = join_tier_tables([table], "minute", EARLIEST_US, LATEST_US, metrics)
            return combine(np.round(bins * 1e6).astype(np.int64), stats, width)
    table = read_day_file(day_path(data_dir, day), None if metrics is None else [TIMESTAMP, *metrics])
    if table is None or not table.num_rows:
        return None
    ts, values = sample_arrays(table)
    return aggregate(ts, values, width)


