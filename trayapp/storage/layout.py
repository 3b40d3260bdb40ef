"""The dataset's layout and its calendar: where today's CSV and the day files lie, the local
zone, the local day of a moment, the years a sample may have, the order of the columns.

Imports ``model`` and the standard library and numpy only: every process reads its paths here.
Layout (kept from the notebook, so its data still reads):
``<data_dir>/Monitoring/Year=YYYY/Month=M/D.parquet`` and ``<data_dir>/csv_dump/daily_dump.csv``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
import tzlocal

from trayapp.jsonfile import warn_once
from trayapp.model import BASE_COLUMNS, MACHINE_COLUMNS

DATASET_DIR = "Monitoring"
CSV_DIR = "csv_dump"
CSV_NAME = "daily_dump.csv"
TIMESTAMP = "timestamp"
CSV_MAX = 1 << 30  # a day of samples at the fastest interval with every GPU column is far less
DAY_FILE_MAX = 1 << 40  # Arrow reads a day file's footer first: any size is safe to open


def day_path(data_dir: str | os.PathLike[str], day: date) -> Path:
    return Path(data_dir) / DATASET_DIR / f"Year={day.year}" / f"Month={day.month}" / f"{day.day}.parquet"


def day_files(data_dir: str | os.PathLike[str]) -> Iterator[tuple[date, Path]]:
    """Every day file in the dataset, in no particular order."""
    dataset_dir = Path(data_dir) / DATASET_DIR
    if not dataset_dir.is_dir():
        return
    for year_dir in dataset_dir.glob("Year=*"):
        for month_dir in year_dir.glob("Month=*"):
            for path in month_dir.glob("*.parquet"):
                try:
                    yield date(int(year_dir.name[5:]), int(month_dir.name[6:]), int(path.stem)), path
                except ValueError:
                    continue


def local_zone() -> tzinfo:
    """The machine's IANA time zone (DST-aware), read afresh so a changed zone is noticed."""

    try:
        return tzlocal.get_localzone()
    except Exception as exc:  # tzlocal raises its own errors on odd set-ups; fall back to UTC
        warn_once("tz", f"time zone: cannot tell the local zone ({exc}); using UTC for day files")
        return timezone.utc


def column_order(names: Iterable[str]) -> list[str]:
    """timestamp, the base metrics, then the GPU columns by GPU index and field."""

    def key(name: str) -> tuple[int, int, str]:
        if name == TIMESTAMP:
            return (0, 0, "")
        if name in BASE_COLUMNS:
            return (1, BASE_COLUMNS.index(name), "")
        if name in MACHINE_COLUMNS:  # network, disk I/O, sensors, swap, load: after the base, before GPUs
            return (1, len(BASE_COLUMNS) + MACHINE_COLUMNS.index(name), "")
        m = re.match(r"gpu(\d+)_(.*)$", name)
        if m:
            return (2, int(m.group(1)), m.group(2))
        return (3, 0, name)

    return sorted(set(names), key=key)


# Timestamps outside these years are a broken clock or broken bytes: such a row is not read (it is
# kept aside at rollover). The bounds keep every later step (local days, pandas, Parquet) safe.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
EARLIEST_US = int(EARLIEST.timestamp()) * 1_000_000
LATEST_US = int(LATEST.timestamp()) * 1_000_000


def local_date(moment: datetime) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(local_zone()).date()


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def day_of_number(number: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + number)


def utc_offsets(seconds: Any, tz: tzinfo) -> Any:
    """The zone's UTC offset (int64 seconds) at each of ``seconds`` (epoch, numpy), DST-aware.

    Offsets change on quarter hours, and rarely: each UTC day is looked up at its first and last
    distinct quarter hour, and only a day whose two differ (a DST change) quarter by quarter, so
    a day of samples costs two look-ups and a year of hours two a day, not one per row."""

    if not len(seconds):
        return np.zeros(0, dtype=np.int64)

    def offset(quarter: int) -> int:
        return int(datetime.fromtimestamp(quarter * 900, timezone.utc).astimezone(tz).utcoffset().total_seconds())  # type: ignore[union-attr]

    quarters, inverse = np.unique((np.asarray(seconds) // 900).astype(np.int64), return_inverse=True)
    days, first = np.unique(quarters // 96, return_index=True)
    out = np.empty(len(quarters), dtype=np.int64)
    bounds = [*first.tolist(), len(quarters)]
    for k in range(len(days)):
        lo, hi = bounds[k], bounds[k + 1]
        a, b = offset(int(quarters[lo])), offset(int(quarters[hi - 1]))
        out[lo:hi] = a if a == b else [offset(int(q)) for q in quarters[lo:hi]]
    return out[inverse]


def local_day_numbers(ts_us: Any, tz: tzinfo) -> Any:
    """Each time's (epoch µs) local calendar day, as days since 1970-01-01, DST-aware."""

    seconds = np.asarray(ts_us, dtype=np.int64) // 1_000_000
    return (seconds + utc_offsets(seconds, tz)) // 86400


def micros(moment: datetime) -> int:
    """Exact µs since the epoch (a naive time is UTC, as Arrow takes it)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - EARLIEST) // timedelta(microseconds=1)


def _unused(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``… whichever does not exist yet."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def aside_path(path: Path) -> Path:
    """Where a file that cannot be read is kept for a person to look at: the dot-file
    ``.<name>.unreadable-<time>`` beside it (dataset readers skip dot-files), never one taken."""
    return _unused(path.with_name(f".{path.name}.unreadable-{int(time.time())}"))


class StoreError(Exception):
    """A problem with the data folder that the user must hear about in one line."""
