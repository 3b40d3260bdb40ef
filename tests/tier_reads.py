"""Tier reads over a range as one set of bins, for tests and benchmarks: through the window's path
(``ranges.iter_tier_parts``: copies, tier files, raw rows) and through the Parquet tier files alone.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from trayapp.storage.bins import TIERS, Stats, merge_parts, nan_stats
from trayapp.storage.layout import micros
from trayapp.storage.ranges import iter_tier_parts
from trayapp.storage.tiers import hour_path, minute_path


def read_tier(data_dir: str | Path, tier: str, start: datetime, end: datetime, metrics: list[str] | None = None) -> tuple[np.ndarray, dict]:
    """``iter_tier_parts`` merged: (epoch seconds, {metric: (min, mean, max, count)}), in order, a bin
    two parts share combined."""
    parts = list(iter_tier_parts(data_dir, tier, start, end, metrics))
    names = list(dict.fromkeys(n for _, stats in parts for n in stats)) if metrics is None else list(metrics)
    us = [(np.round(b * 1e6).astype(np.int64), {n: st.get(n) or nan_stats(len(b)) for n in names}) for b, st in parts]
    return merge_parts(us, names, TIERS[tier])


def _us(moment: datetime | float | int) -> int:
    if isinstance(moment, datetime):
        return micros(moment)
    return int(round(float(moment) * 1_000_000))


def _tier_paths(data_dir: Path, tier: str, start_us: int, end_us: int) -> list[Path]:
    first = (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=start_us)).date() - timedelta(days=1)
    last = (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=end_us)).date() + timedelta(days=1)
    if tier == "minute":
        return [minute_path(data_dir, first + timedelta(days=i)) for i in range((last - first).days + 1)]
    months = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        months.append(hour_path(data_dir, y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def read_tier_files(
    data_dir: str | os.PathLike[str], tier: str, start: datetime | float, end: datetime | float, metrics: list[str] | None = None
) -> tuple[np.ndarray, dict[str, Stats]]:
    """Bins of ``tier`` ('minute' or 'hour') starting in ``[start, end)`` from its Parquet files
    only: (bin starts as epoch seconds, {metric: (min, mean, max, count)}), NaN where a bin had no
    sample of a metric."""
    from trayapp.storage.tier_builder import join_tier_tables, read_tier_files as read_files

    data_dir = Path(data_dir)
    start_us, end_us = _us(start), _us(end)
    paths = [p for p in _tier_paths(data_dir, tier, start_us, end_us) if p.exists()]
    tables = [table for table, _ in read_files(paths, metrics) if table is not None]
    return join_tier_tables(tables, tier, start_us, end_us, metrics)
