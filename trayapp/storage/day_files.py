"""The Parquet day files (``Monitoring/Year=Y/Month=M/D.parquet``), read tolerantly: what can be
read is read, what cannot is named in one warning, and a file that cannot be read is never taken
for an empty one.

Imports ``layout``, ``tables`` and ``jsonfile``; pyarrow inside the readers (the tray app imports
this module and must not load Arrow), pandas only for the notebook's naive or text times.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trayapp.jsonfile import open_own, warn_once
from trayapp.storage.layout import DAY_FILE_MAX, EARLIEST_US, LATEST_US, TIMESTAMP, day_files, micros
from trayapp.storage.tables import (
    localize, non_finite_as_null, numpy_of, parse_timestamps, take_rows, text_as_floats, valid_mask,
    with_columns,
)

if TYPE_CHECKING:
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

def read_day_file(
    path: Path, columns: list[str] | None, start: datetime | None = None, end: datetime | None = None
) -> "pa.Table | None":
    """One Parquet day file, normalised: timestamp[us, UTC] and float64 metrics; what cannot be
    read (the whole file, some rows, a column) is skipped with one warning naming the file.

    With ``start``/``end``, a file whose timestamp statistics show it lies wholly outside
    ``(start, end]`` is not read at all (the day of margin on each side of a range costs a
    footer, not a file).
    """
    table, problems = load_day_file(path, columns, start, end)
    if problems:
        warn_once(f"parquet:{path}", f"day file {path}: {'; '.join(problems)}; " + ("skipped it" if table is None else "read the rest"))
    return table


def load_day_file(
    path: Path, columns: list[str] | None, start: datetime | None = None, end: datetime | None = None
) -> "tuple[pa.Table | None, list[str]]":
    """``read_day_file`` without the warning: (what could be read or None, what could not)."""
    import pyarrow.parquet as pq  # lazy: Arrow, only when a file is read with it

    try:
        open_own(path, DAY_FILE_MAX).close()  # a FIFO or a device is refused here, never waited on by Arrow
        with pq.ParquetFile(path) as parquet:
            names = parquet.schema_arrow.names
            if _outside(parquet, names, start, end):
                return None, []
            include = None if columns is None else [c for c in columns if c in names]
            table = parquet.read(columns=include, use_threads=False)  # as the CSV: no thread pool
    except Exception as exc:  # any bytes may be there: pyarrow raises OSError, ArrowException, ValueError…
        text = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return None, [f"unreadable ({text})"]
    if TIMESTAMP not in table.column_names:
        return None, ["it has no 'timestamp' column"]
    try:
        table, problems = normalise(table, with_problems=True)
    except Exception as exc:  # a value pandas or Arrow chokes on: the file is unreadable, not the program
        return None, [f"unreadable ({type(exc).__name__}: {str(exc)[:120]})"]
    return with_columns(table, columns), problems


def _outside(parquet: Any, names: list[str], start: datetime | None, end: datetime | None) -> bool:
    """True when the file's UTC timestamp statistics put every row outside ``(start, end]``."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    if (start is None and end is None) or TIMESTAMP not in names:
        return False
    field = parquet.schema_arrow.field(TIMESTAMP)
    if not (pa.types.is_timestamp(field.type) and field.type.tz is not None):
        return False  # naive or text timestamps (the notebook's): their statistics are not UTC
    meta = parquet.metadata
    index = names.index(TIMESTAMP)
    column = meta.schema.column(index)
    if column.path != TIMESTAMP or column.physical_type != "INT64":
        return False  # INT96 (old writers) or a nested schema: read the file
    try:
        logical = json.loads(column.logical_type.to_json())
    except ValueError:
        return False
    per_ns = _NS_PER_UNIT.get(logical.get("timeUnit", ""))
    if logical.get("Type") != "Timestamp" or not logical.get("isAdjustedToUTC") or per_ns is None:
        return False
    lows, highs = [], []
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            return False
        lows.append(stats.min_raw)  # the stored integers: stats.min builds a datetime through pandas
        highs.append(stats.max_raw)
    if not lows:
        return False
    low, high = min(lows) * per_ns, max(highs) * per_ns  # ns, exact (Python ints)
    return (start is not None and high <= micros(start) * 1000) or (end is not None and low > micros(end) * 1000)


_NS_PER_UNIT = {"milliseconds": 1_000_000, "microseconds": 1000, "nanoseconds": 1}


def normalise(table: "pa.Table", with_problems: bool = False) -> Any:
    """timestamp[us, UTC] and float64 columns from what a day file holds (ours, the notebook's
    text or naive times). Rows without a readable time and columns of types that are not numbers
    are left out; NaN and ±inf become null. With ``with_problems``: (table, what was left out)."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    problems: list[str] = []
    ts = table.column(TIMESTAMP)
    readable = True
    if pa.types.is_timestamp(ts.type):
        if ts.type.tz is None:
            ts = pa.chunked_array([pa.array(localize(ts.to_pandas()), type=pa.timestamp("us", tz="UTC"))])
        elif ts.type != pa.timestamp("us", tz="UTC"):  # ours are already: no cast, no pyarrow.compute
            ts = ts.cast(pa.timestamp("us", tz="UTC"), safe=False)
    elif pa.types.is_string(ts.type) or pa.types.is_large_string(ts.type):  # the notebook's read_csv text
        ts = pa.array(parse_timestamps(ts.to_pandas()), type=pa.timestamp("us", tz="UTC"))
    else:
        problems.append(f"its timestamp column is {ts.type}, not a time")
        readable = False
        ts = pa.nulls(table.num_rows, pa.timestamp("us", tz="UTC"))
    columns = {TIMESTAMP: ts}
    for name in table.column_names:
        if name == TIMESTAMP or name.startswith("__"):
            continue
        col = table.column(name)
        if col.type == pa.float64():
            columns[name] = col
        elif pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_null(col.type):
            columns[name] = col.cast(pa.float64(), safe=False)
        elif pa.types.is_decimal(col.type):
            columns[name] = col.cast(pa.float64(), safe=False)
            problems.append(f"column {name!r} is {col.type} (read as float)")
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            columns[name] = text_as_floats(col)
            unread = columns[name].null_count - col.null_count
            if unread:
                problems.append(f"{unread} value(s) of {name!r} are not numbers")
        else:
            problems.append(f"column {name!r} is {col.type}, not numbers; left out")
    table = non_finite_as_null(pa.table(columns))
    stamps = table.column(TIMESTAMP)
    us = numpy_of(stamps, np.int64)
    valid = (us >= EARLIEST_US) & (us < LATEST_US) & valid_mask(stamps)
    dropped = int(len(valid) - np.count_nonzero(valid))
    if dropped and readable:
        problems.append(f"{dropped} row(s) without a readable time (or one before 1970 or after 2199)")
    if dropped:
        table = take_rows(table, valid)
    return (table, problems) if with_problems else table


def remove_days_before(data_dir: str | os.PathLike[str], cutoff: date) -> None:
    """Retention: delete every day file of a day before ``cutoff`` (and a month folder left
    empty); a file that cannot be deleted is said once and kept."""
    for day, path in list(day_files(data_dir)):
        if day < cutoff:
            try:
                path.unlink()
                if not any(path.parent.iterdir()):
                    path.parent.rmdir()
            except OSError as exc:
                warn_once(f"retention:{path}", f"retention: cannot delete {path}: {exc}")
