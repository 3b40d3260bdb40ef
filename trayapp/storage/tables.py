"""Tables of samples in Arrow (timestamp[us, UTC] and float64 columns): to and from numpy through
their buffers, cut to a range, joined, sorted; and times read from text (the notebook's).

Imports numpy and ``layout``; pyarrow inside each function, and pandas only for text times:
the tray app imports the modules that import this one and must not load Arrow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from trayapp.model import BASE_COLUMNS
from trayapp.storage.layout import TIMESTAMP, column_order, local_zone, micros

if TYPE_CHECKING:
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

def numpy_of(col: Any, dtype: Any) -> Any:
    """A fixed-width Arrow column as numpy; nulls become NaN (floats) or 0 (integers)."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    parts = []
    for chunk in chunks:
        n, off = len(chunk), chunk.offset
        validity, data = chunk.buffers()[:2]
        if data is None:  # an all-null column (type null)
            parts.append(np.full(n, np.nan if dtype == np.float64 else 0, dtype=dtype))
            continue
        values = np.frombuffer(data, dtype=dtype, count=off + n)[off:].copy()
        if validity is not None and chunk.null_count:
            ok = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little", count=off + n)[off:].astype(bool)
            values[~ok] = np.nan if dtype == np.float64 else 0
        parts.append(values)
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

_HAS_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")  # a time with its offset (else it is naive: local)


def stamps_us(col: Any) -> Any:
    """A timestamp (or int64) column as numpy int64 epoch µs, straight from its buffers when it is
    in µs already (ours always are): a ``cast`` would load pyarrow.compute."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    if not ((pa.types.is_timestamp(col.type) and col.type.unit == "us") or col.type == pa.int64()):
        col = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return numpy_of(col, np.int64)


def floats(col: Any) -> Any:
    """A number column as numpy float64 (NaN for null), without a cast when it is float64."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    return numpy_of(col if col.type == pa.float64() else col.cast(pa.float64()), np.float64)


def valid_mask(col: Any) -> Any:
    """Which rows of an Arrow column are not null, as a numpy bool array."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    parts = []
    for chunk in col.chunks if isinstance(col, pa.ChunkedArray) else [col]:
        n, off = len(chunk), chunk.offset
        validity = chunk.buffers()[0]
        if not chunk.null_count or validity is None:
            parts.append(np.full(n, chunk.null_count == 0, dtype=bool))
        else:
            parts.append(np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little", count=off + n)[off:].astype(bool))
    return np.concatenate(parts) if parts else np.empty(0, dtype=bool)


def arrow_array(values: Any, type_: "pa.DataType", none: Any = None) -> "pa.Array":
    """numpy float64 (for ``float64``) or int64 (for any other fixed-width 64-bit type) as an
    Arrow array; ``none``: a mask of the rows that are null."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    values = np.ascontiguousarray(values, dtype=np.float64 if type_ == pa.float64() else np.int64)
    validity = None
    nulls = 0
    if none is not None and none.any():
        validity = pa.py_buffer(np.packbits(~none, bitorder="little"))
        nulls = int(none.sum())
    return pa.Array.from_buffers(type_, len(values), [validity, pa.py_buffer(values)], null_count=nulls)


def arrow_mask(keep: Any) -> "pa.Array":
    """A numpy bool array as an Arrow boolean array (for ``filter``)."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    keep = np.asarray(keep, dtype=bool)
    return pa.Array.from_buffers(pa.bool_(), len(keep), [None, pa.py_buffer(np.packbits(keep, bitorder="little"))])


def take_rows(table: "pa.Table", keep: Any) -> "pa.Table":
    """The rows a numpy bool mask keeps: a slice when they are one run (a day of a CSV kept in
    time order), else a filter (which loads pyarrow.compute)."""

    rows = np.flatnonzero(keep)
    if not len(rows):
        return table.slice(0, 0)
    if rows[-1] - rows[0] + 1 == len(rows):
        return table.slice(int(rows[0]), len(rows))
    return table.filter(arrow_mask(keep))  # an Arrow mask: a numpy one makes pyarrow import pandas


def as_numpy(table: "pa.Table", metrics: Iterable[str]) -> "tuple[Any, dict[str, Any]]":
    """A table the readers made as numpy, without pandas: epoch seconds and one float64 array
    (NaN for null) per metric."""
    return stamps_us(table.column(TIMESTAMP)) / 1e6, {name: floats(table.column(name)) for name in metrics}


def non_finite_as_null(table: "pa.Table") -> "pa.Table":
    """NaN and ±inf in value columns become null: "not available", as everywhere else."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if name == TIMESTAMP or not pa.types.is_floating(col.type):
            continue
        if col.type == pa.float64() and (np.isfinite(numpy_of(col, np.float64)) | ~valid_mask(col)).all():
            continue  # the usual case, seen through the buffers: pyarrow.compute stays unloaded
        import pyarrow.compute as pc  # lazy: only for data not in trayapp's own format

        finite = pc.is_finite(col)  # null stays null
        if pc.any(pc.invert(finite)).as_py():
            table = table.set_column(i, name, pc.if_else(finite, col, pa.nulls(1, col.type)[0]))
    return table


def parse_timestamps(values: Any) -> Any:
    """Strings (ISO-8601, with or without an offset) to UTC; naive ones are local time."""
    import pandas as pd  # lazy: only for text times and values the fast path cannot read

    text = pd.Series(values, dtype="string").str.strip()
    has_offset = text.str.contains(_HAS_OFFSET, na=False)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    if has_offset.any():
        out[has_offset] = pd.to_datetime(text[has_offset], utc=True, errors="coerce", format="ISO8601").astype("datetime64[us, UTC]")
    naive = ~has_offset & text.notna()
    if naive.any():
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        out[naive] = localize(parsed).astype("datetime64[us, UTC]")
    return out


def localize(naive: Any) -> Any:
    """Naive local timestamps (the notebook's) to UTC, DST-aware."""
    import pandas as pd  # lazy: only for text times and values the fast path cannot read

    series = pd.Series(naive)
    zone = local_zone()
    try:
        aware = series.dt.tz_localize(zone, ambiguous="infer", nonexistent="shift_forward")
    except Exception:  # pandas cannot infer an ambiguous autumn hour from a gap; mark it unknown
        aware = series.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
    return aware.dt.tz_convert("UTC")


def text_as_floats(col: Any) -> Any:
    import pandas as pd  # lazy: only for text times and values the fast path cannot read
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    return pa.array(pd.to_numeric(col.to_pandas(), errors="coerce"), type=pa.float64())


def with_columns(table: "pa.Table", columns: list[str] | None) -> "pa.Table":
    """Asked-for columns a file lacks read as null (a GPU column added mid-history)."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    if columns is None:
        return table
    for name in columns:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.float64()))
    return table.select(columns)


def empty_table(columns: list[str] | None = None) -> "pa.Table":
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    names = columns or [TIMESTAMP, *BASE_COLUMNS]
    return pa.table({n: pa.nulls(0, pa.timestamp("us", tz="UTC") if n == TIMESTAMP else pa.float64()) for n in names})


def concat(parts: list["pa.Table"], columns: list[str] | None = None) -> "pa.Table":
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

    parts = [p for p in parts if p.num_rows]
    if not parts:
        return empty_table(columns)
    if len(parts) == 1:
        table = parts[0]
    else:
        table = pa.concat_tables(parts, promote_options="default")
    return table.select(column_order(table.column_names))


def rows_in_range(table: "pa.Table", start: datetime | None, end: datetime | None) -> "pa.Table":
    """The rows with ``start < timestamp <= end``: a slice when the times are sorted (a day file,
    the CSV), else a filter."""

    if not table.num_rows or (start is None and end is None):
        return table
    column = table.column(TIMESTAMP)
    us = stamps_us(column)
    low = np.iinfo(np.int64).min if start is None else micros(start)
    high = np.iinfo(np.int64).max if end is None else micros(end)
    if not column.null_count and bool(np.all(us[1:] >= us[:-1])):
        first, stop = (int(i) for i in np.searchsorted(us, [low, high], side="right"))
        return table if (first, stop) == (0, table.num_rows) else table.slice(first, stop - first)
    keep = (us > low) & (us <= high) & valid_mask(column)  # a row without a time is in no range
    return table if keep.all() else take_rows(table, keep)


def unique_sorted(table: "pa.Table") -> "pa.Table":
    """Sorted by time, one row per timestamp (the first one seen wins).

    Day files in date order followed by the CSV are usually sorted already: then this costs one
    pass over the timestamps instead of a sort.
    """

    if table.num_rows < 2:
        return table
    stamps = stamps_us(table.column(TIMESTAMP))
    if bool(np.all(stamps[1:] > stamps[:-1])):
        return table
    import pyarrow.compute as pc  # lazy: only for data not in trayapp's own format

    order = pc.sort_indices(table.column(TIMESTAMP))  # stable: the first row seen stays first
    table = table.take(order)
    stamps = stamps[numpy_of(order, np.uint64)]
    keep = np.empty(len(stamps), dtype=bool)
    keep[0] = True
    np.not_equal(stamps[1:], stamps[:-1], out=keep[1:])
    return table if keep.all() else table.filter(arrow_mask(keep))



def sample_arrays(table: pa.Table) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    ts = stamps_us(table.column(TIMESTAMP))
    values = {}
    for name in table.column_names:
        if name == TIMESTAMP:
            continue
        values[name] = floats(table.column(name))
    return ts, values
