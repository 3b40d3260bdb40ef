"""The dataset's files, read tolerantly: the CSV day file, the Parquet day files, their layout.

Imports ``model``, ``jsonfile`` (every file is opened through its ``open_own``) and, inside the readers, numpy and pyarrow; never Qt, never the writer
(``store``) or the readers built on it (``history``, ``rollups``), which all import this; pandas
only for the notebook's naive or text times and lines that need lenient reading.

Layout (kept from the notebook, so its data still reads):
``<data_dir>/Monitoring/Year=YYYY/Month=M/D.parquet`` and ``<data_dir>/csv_dump/daily_dump.csv``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trayapp.jsonfile import open_own, read_own
from trayapp.model import BASE_COLUMNS, MACHINE_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("trayapp.storage.writer")


DATASET_DIR = "Monitoring"
CSV_DIR = "csv_dump"
CSV_NAME = "daily_dump.csv"
TIMESTAMP = "timestamp"
_DAY_FILE = re.compile(r"^Year=(\d{4})$|^Month=(\d{1,2})$|^(\d{1,2})\.parquet$")
CSV_MAX = 1 << 30  # a day of samples at the fastest interval with every GPU column is far less
DAY_FILE_MAX = 1 << 40  # Arrow reads a day file's footer first: any size is safe to open
_HAS_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


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
    import tzlocal

    try:
        return tzlocal.get_localzone()
    except Exception as exc:  # tzlocal raises its own errors on odd set-ups; fall back to UTC
        _warn_once("tz", f"time zone: cannot tell the local zone ({exc}); using UTC for day files")
        return timezone.utc


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


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


def format_value(value: float | None) -> str:
    """A CSV field; ``None`` and non-finite values (NaN, ±inf mean "not available") are empty."""
    if value is None:
        return ""
    value = float(value)
    return repr(round(value, 4)) if math.isfinite(value) else ""


# Timestamps outside these years are a broken clock or broken bytes: such a row is not read (it is
# kept aside at rollover). The bounds keep every later step (local days, pandas, Parquet) safe.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
_EARLIEST_US = int(EARLIEST.timestamp()) * 1_000_000
_LATEST_US = int(LATEST.timestamp()) * 1_000_000


def _local_date(moment: datetime) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(local_zone()).date()


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def _from_day_number(number: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + number)


def utc_offsets(seconds: Any, tz: tzinfo) -> Any:
    """The zone's UTC offset (int64 seconds) at each of ``seconds`` (epoch, numpy), DST-aware.

    Offsets change on quarter hours, and rarely: each UTC day is looked up at its first and last
    distinct quarter hour, and only a day whose two differ (a DST change) quarter by quarter, so
    a day of samples costs two look-ups and a year of hours ~730, not one per row."""
    import numpy as np

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
    import numpy as np

    seconds = np.asarray(ts_us, dtype=np.int64) // 1_000_000
    return (seconds + utc_offsets(seconds, tz)) // 86400


def _local_days(table: "pa.Table", tz: tzinfo) -> Any:
    """Each row's local calendar day as a day number (numpy), DST-aware, without pandas."""
    return local_day_numbers(stamps_us(table.column(TIMESTAMP)), tz)


def release_memory() -> None:
    """Hand memory freed after a big read back to the OS (glibc keeps it otherwise), and drop
    the source lines PySide6 caches: its import hook (PYSIDE-2029) reads the source of every
    module imported after it into ``linecache`` (~17 MB once pyqtgraph and pyarrow are in), a
    cache that only tracebacks use and that refills itself lazily."""
    import ctypes
    import linecache
    import sys

    linecache.clearcache()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim
            pass


# pyarrow imports pandas (≈ 0.25 s and 35 MB) from pa.array, pa.scalar, any to_numpy, a Python
# number or bool handed to a compute function and a numpy mask handed to filter. The readers'
# common path never does any of these: arrays go in and out of Arrow through their buffers only.


def _np(col: Any, dtype: Any) -> Any:
    """A fixed-width Arrow column as numpy; nulls become NaN (floats) or 0 (integers)."""
    import numpy as np
    import pyarrow as pa

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


def stamps_us(col: Any) -> Any:
    """A timestamp (or int64) column as numpy int64 epoch µs, straight from its buffers when it is
    in µs already (ours always are): a ``cast`` would load pyarrow.compute (~30 ms, ~9 MB)."""
    import numpy as np
    import pyarrow as pa

    if not ((pa.types.is_timestamp(col.type) and col.type.unit == "us") or col.type == pa.int64()):
        col = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return _np(col, np.int64)


def floats(col: Any) -> Any:
    """A number column as numpy float64 (NaN for null), without a cast when it is float64."""
    import numpy as np
    import pyarrow as pa

    return _np(col if col.type == pa.float64() else col.cast(pa.float64()), np.float64)


def _valid(col: Any) -> Any:
    """Which rows of an Arrow column are not null, as a numpy bool array."""
    import numpy as np
    import pyarrow as pa

    parts = []
    for chunk in col.chunks if isinstance(col, pa.ChunkedArray) else [col]:
        n, off = len(chunk), chunk.offset
        validity = chunk.buffers()[0]
        if not chunk.null_count or validity is None:
            parts.append(np.full(n, chunk.null_count == 0, dtype=bool))
        else:
            parts.append(np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little", count=off + n)[off:].astype(bool))
    return np.concatenate(parts) if parts else np.empty(0, dtype=bool)


def _arrow(values: Any, type_: "pa.DataType", none: Any = None) -> "pa.Array":
    """numpy float64 (for ``float64``) or int64 (for any other fixed-width 64-bit type) as an
    Arrow array; ``none``: a mask of the rows that are null."""
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values, dtype=np.float64 if type_ == pa.float64() else np.int64)
    validity = None
    nulls = 0
    if none is not None and none.any():
        validity = pa.py_buffer(np.packbits(~none, bitorder="little"))
        nulls = int(none.sum())
    return pa.Array.from_buffers(type_, len(values), [validity, pa.py_buffer(values)], null_count=nulls)


def _mask(keep: Any) -> "pa.Array":
    """A numpy bool array as an Arrow boolean array (for ``filter``)."""
    import numpy as np
    import pyarrow as pa

    keep = np.asarray(keep, dtype=bool)
    return pa.Array.from_buffers(pa.bool_(), len(keep), [None, pa.py_buffer(np.packbits(keep, bitorder="little"))])


def take_rows(table: "pa.Table", keep: Any) -> "pa.Table":
    """The rows a numpy bool mask keeps: a slice when they are one run (a day of a CSV kept in
    time order), else a filter (which loads pyarrow.compute)."""
    import numpy as np

    rows = np.flatnonzero(keep)
    if not len(rows):
        return table.slice(0, 0)
    if rows[-1] - rows[0] + 1 == len(rows):
        return table.slice(int(rows[0]), len(rows))
    return table.filter(_mask(keep))  # an Arrow mask: a numpy one makes pyarrow import pandas


def _scalar(value: int | bool, type_: "pa.DataType | None" = None) -> "pa.Scalar":
    """An Arrow scalar from a Python int (cast to ``type_``, e.g. a timestamp from its µs) or bool."""
    import numpy as np
    import pyarrow as pa

    if isinstance(value, bool):
        return _mask(np.array([value]))[0]
    scalar = _arrow(np.array([value], dtype=np.int64), pa.int64())[0]
    return scalar if type_ is None else scalar.cast(type_)


def as_numpy(table: "pa.Table", metrics: Iterable[str]) -> "tuple[Any, dict[str, Any]]":
    """A table the readers made as numpy, without pandas: epoch seconds and one float64 array
    (NaN for null) per metric."""
    return stamps_us(table.column(TIMESTAMP)) / 1e6, {name: floats(table.column(name)) for name in metrics}


def _micros(moment: datetime) -> int:
    """Exact µs since the epoch (a naive time is UTC, as Arrow takes it)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - EARLIEST) // timedelta(microseconds=1)


def _read_text(path: Path) -> str | None:
    """A small text file of trayapp's (a pid), or None when it is not one."""
    try:
        return read_own(path, 4096).decode("utf-8", errors="replace").strip()
    except OSError:
        return None


def _no_samples(metrics: list[str]) -> "tuple[Any, dict[str, Any]]":
    """What ``arrays`` returns for no data (numpy only: no Arrow in the recorder)."""
    import numpy as np

    return np.empty(0), {name: np.empty(0) for name in metrics}


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


def _header_names(line: bytes) -> list[str]:
    """The CSV header's column names, whatever bytes it holds."""
    return line.decode("utf-8", errors="replace").strip().split(",")


@dataclass
class CsvContent:
    """What ``parse_csv`` made of the CSV day file.

    ``table``: the readable rows (timestamp[us, UTC], float64 values; non-finite values null).
    With ``keep_lines``: ``lines`` (the raw data lines after the header, without their newline),
    ``row_lines`` (each table row's index in ``lines``), ``bad`` (lines not read at all: not
    UTF-8, one field, no readable time, a repeated header), ``lossy`` (lines read in part: more
    fields than the header, a value that is not a number) and ``blank``. ``narrow``: rows with
    fewer fields than the header (a column added later; the rest read as null)."""

    header_line: bytes
    table: "pa.Table"
    lines: "Sequence[bytes]" = field(default_factory=list)
    row_lines: Any = None
    bad: list[int] = field(default_factory=list)
    lossy: list[int] = field(default_factory=list)
    blank: list[int] = field(default_factory=list)
    narrow: int = 0


def read_csv(path: Path, columns: list[str] | None = None) -> "pa.Table | None":
    """The CSV day file as a table; a torn last line and malformed lines are skipped.

    Safe to call while another process appends: only complete lines are read. Any bytes read:
    what cannot be read is skipped with one warning naming the file.
    """
    content = parse_csv(path, columns)
    return None if content is None else content.table


def parse_csv(path: Path, columns: list[str] | None = None, keep_lines: bool = False, warn: bool = True) -> CsvContent | None:
    """Read the CSV day file: a fast pass with pyarrow when every line is well formed, else a
    line-by-line pass that reads each line it can. None when there is no file, no complete
    line, or no ``timestamp`` header. ``warn``: say once what could not be read (rollover
    says it itself, with where the bytes went)."""
    import numpy as np

    try:
        data = read_own(path, CSV_MAX)
    except FileNotFoundError:
        return None
    except OSError as exc:
        _warn_once(f"csv:{path}", f"cannot read {path}: {exc.strerror or exc}")
        return None
    end = data.rfind(b"\n")
    if end < 0:
        return None
    data = data[: end + 1]
    cut = data.find(b"\n")
    header_line = data[:cut]
    header = _header_names(header_line)
    if header[0] != TIMESTAMP:
        _warn_once(f"csv-header:{path}", f"{path} does not start with a 'timestamp' header; skipped")
        return None
    include = None if columns is None else [c for c in columns if c in header]
    content = _parse_fast(data, header, include, keep_lines)
    if content is None:
        content = _parse_lines(data, header, include)
    content.header_line = header_line
    if warn and (content.bad or content.lossy):
        parts = [f"skipped {len(content.bad)} malformed line(s) (not text, no time, or a repeated header)"] if content.bad else []
        if content.lossy:
            parts.append(f"read {len(content.lossy)} line(s) only in part (more fields than the header, or a value that is not a number)")
        _warn_once(f"csv-rows:{path}:{len(content.bad)}:{len(content.lossy)}",
                   f"{path}: {'; '.join(parts)}; the next rollover keeps their bytes in {path.parent / '.rejected-*.csv'}")
    if warn and content.narrow:
        _warn_once(f"csv-narrow:{path}", f"{path}: {content.narrow} line(s) have fewer fields than the header; read the columns they have")
    if content.row_lines is None:
        content.row_lines = np.arange(content.table.num_rows)
    content.table = _fill_columns(content.table, columns)
    return content


def _parse_fast(data: bytes, header: list[str], include: list[str] | None, keep_lines: bool) -> CsvContent | None:
    """pyarrow's reader, when every line is UTF-8, has the header's width and converts; None
    otherwise (the careful pass then reads what it can)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if len(set(header)) != len(header) or not all(header):
        return None
    if not data.isascii():  # ours always are: no decoded copy of a day's text just to check it
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    invalid: list[int] = []

    def on_invalid(row: Any) -> str:
        invalid.append(1)
        return "skip"

    types = {name: (pa.timestamp("us", tz="UTC") if name == TIMESTAMP else pa.float64()) for name in header}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=include),
            read_options=pacsv.ReadOptions(use_threads=False),  # no thread pool for a few MB: faster to a first result, smaller
        )
    except (pa.ArrowException, ValueError, UnicodeDecodeError):
        return None
    if invalid:
        return None
    stamps = table.column(TIMESTAMP)
    if stamps.null_count:
        return None
    us = _np(stamps, np.int64)
    if len(us) and (us.min() < _EARLIEST_US or us.max() >= _LATEST_US):
        return None
    content = CsvContent(b"", _finite(table))
    if keep_lines:
        if b"\r" in data:  # pyarrow ends a line at a lone \r too: let the careful pass map rows to lines
            return None
        lines = _Lines(data)
        blank = np.flatnonzero(np.diff(lines.ends) == 1).tolist() if b"\n\n" in data else []
        if len(lines) - len(blank) != table.num_rows:
            return None
        row_lines = np.arange(len(lines))
        if blank:
            row_lines = np.delete(row_lines, blank)
        content.lines, content.blank, content.row_lines = lines, blank, row_lines
    return content


class _Lines:
    """The data lines of a CSV (after the header, without their newline), sliced on demand:
    a day of 1 s samples is 86,400 lines, and a rollover needs only the few it keeps."""

    def __init__(self, data: bytes) -> None:
        import numpy as np

        self.data = data
        self.ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)  # the header's newline first

    def __len__(self) -> int:
        return max(len(self.ends) - 1, 0)

    def __getitem__(self, i: int) -> bytes:
        return self.data[int(self.ends[i]) + 1 : int(self.ends[i + 1])]


_NOT_A_NUMBER = {"", "nan", "-nan", "+nan", "na", "n/a", "null", "none"}


def _parse_lines(data: bytes, header: list[str], include: list[str] | None) -> CsvContent:
    """Every line on its own: the ones that cannot be read are listed, the rest read."""
    import numpy as np
    import pyarrow as pa

    names = list(dict.fromkeys(n for n in (include if include is not None else header) if n))  # a repeated name: its first column
    position: dict[str, int] = {}
    for i, name in enumerate(header):
        if name and name not in position:
            position[name] = i
    width = len(header)
    lines = data.split(b"\n")[1:-1]
    header_line = data[: data.find(b"\n")]
    bad: list[int] = []
    blank: list[int] = []
    short: list[int] = []
    wide: list[int] = []
    row_lines: list[int] = []
    cells: dict[str, list[str]] = {name: [] for name in names}
    for i, raw in enumerate(lines):
        if not raw.strip():
            blank.append(i)
            continue
        if raw.rstrip(b"\r") == header_line.rstrip(b"\r"):
            bad.append(i)  # a header repeated mid-file (two writers, a bad copy): no data
            continue
        try:
            fields = raw.decode("utf-8").rstrip("\r").split(",")
        except UnicodeDecodeError:
            bad.append(i)
            continue
        if len(fields) < 2:
            bad.append(i)
            continue
        if len(fields) < width:  # a column the header gained later: null for this row
            short.append(i)
        elif len(fields) > width:  # fields the header does not name: read the others, keep the bytes
            wide.append(i)
        row_lines.append(i)
        for name in names:
            at = position[name]
            cells[name].append(fields[at] if at < len(fields) else "")
    values = [n for n in names if n != TIMESTAMP]
    converted = _cells_strictly(cells, values) or _cells_leniently(cells, values)
    us, has_time, numbers, unread = converted
    ok = has_time & (us >= _EARLIEST_US) & (us < _LATEST_US)
    lines_of_rows = np.asarray(row_lines, dtype="int64")
    bad.extend(lines_of_rows[~ok].tolist())
    lossy = set(lines_of_rows[np.isin(lines_of_rows, wide) & ok].tolist())
    columns: dict[str, Any] = {TIMESTAMP: _arrow(us[ok], pa.timestamp("us", tz="UTC"))}
    for name in values:
        lossy.update(lines_of_rows[unread[name] & ok].tolist())
        kept = numbers[name][ok]
        kept[~np.isfinite(kept)] = np.nan
        columns[name] = _arrow(kept, pa.float64(), np.isnan(kept))
    narrow = int(np.isin(lines_of_rows[ok], short).sum()) if short else 0
    return CsvContent(header_line, pa.table(columns), lines, lines_of_rows[ok], sorted(bad), sorted(lossy), blank, narrow)


Cells = "tuple[Any, Any, dict[str, Any], dict[str, Any]]"  # µs, has a time, {name: float64}, {name: unreadable}


def _cells_strictly(cells: dict[str, list[str]], values: list[str]) -> "Cells | None":
    """The careful pass's cells through pyarrow's CSV reader when every one is a time with an
    offset, a plain number or empty (broken lines already taken out): the usual case after a
    crash or a column added, read without pandas. None when any cell needs lenient reading."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    stamps = cells.get(TIMESTAMP, [])
    if not stamps:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=bool), {n: np.empty(0) for n in values}, {n: np.empty(0, dtype=bool) for n in values}
    names = [f"c{i}" for i in range(len(values) + 1)]
    body = "\n".join(",".join(row) for row in zip(stamps, *(cells[n] for n in values))) + "\n"
    if "\r" in body or '"' in body:
        return None
    types = {name: pa.timestamp("us", tz="UTC") if i == 0 else pa.float64() for i, name in enumerate(names)}
    invalid: list[int] = []

    def on_invalid(row: Any) -> str:
        invalid.append(1)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(body.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(quote_char=False, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=False),
        )
    except (pa.ArrowException, ValueError, UnicodeError):
        return None
    if invalid or table.num_rows != len(stamps):
        return None
    ts = table.column(0)
    us = _np(ts.cast(pa.int64()), np.int64)
    no = np.zeros(len(stamps), dtype=bool)
    return us, _valid(ts), {n: _np(table.column(i + 1), np.float64) for i, n in enumerate(values)}, {n: no for n in values}


def _cells_leniently(cells: dict[str, list[str]], values: list[str]) -> "Cells":
    """The same with pandas: any time pandas reads (naive ones local), numbers with spaces or
    words; a value that is not a number is NaN and marked unreadable unless it says "none"."""
    import numpy as np
    import pandas as pd

    stamps = parse_timestamps(pd.Series(cells.get(TIMESTAMP, []), dtype="object"))
    has_time = stamps.notna().to_numpy(dtype=bool)
    us = np.where(has_time, stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[us]").view("int64"), 0)
    numbers, unread = {}, {}
    for name in values:
        text = pd.Series(cells[name], dtype="object").str.strip()
        numbers[name] = np.array(pd.to_numeric(text, errors="coerce"), dtype="float64")
        unread[name] = np.isnan(numbers[name]) & ~text.str.lower().isin(_NOT_A_NUMBER).to_numpy()
    return us, has_time, numbers, unread


def _finite(table: "pa.Table") -> "pa.Table":
    """NaN and ±inf in value columns become null: "not available", as everywhere else."""
    import numpy as np
    import pyarrow as pa

    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if name == TIMESTAMP or not pa.types.is_floating(col.type):
            continue
        if col.type == pa.float64() and (np.isfinite(_np(col, np.float64)) | ~_valid(col)).all():
            continue  # the usual case, seen through the buffers: pyarrow.compute stays unloaded
        import pyarrow.compute as pc

        finite = pc.is_finite(col)  # null stays null
        if pc.any(pc.invert(finite)).as_py():
            table = table.set_column(i, name, pc.if_else(finite, col, pa.nulls(1, col.type)[0]))
    return table


def parse_timestamps(values: Any) -> Any:
    """Strings (ISO-8601, with or without an offset) to UTC; naive ones are local time."""
    import pandas as pd

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
    import pandas as pd

    series = pd.Series(naive)
    zone = local_zone()
    try:
        aware = series.dt.tz_localize(zone, ambiguous="infer", nonexistent="shift_forward")
    except Exception:  # pandas cannot infer an ambiguous autumn hour from a gap; mark it unknown
        aware = series.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
    return aware.dt.tz_convert("UTC")


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
        _warn_once(f"parquet:{path}", f"day file {path}: {'; '.join(problems)}; " + ("skipped it" if table is None else "read the rest"))
    return table


def load_day_file(
    path: Path, columns: list[str] | None, start: datetime | None = None, end: datetime | None = None
) -> "tuple[pa.Table | None, list[str]]":
    """``read_day_file`` without the warning: (what could be read or None, what could not)."""
    import pyarrow.parquet as pq

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
    return _fill_columns(table, columns), problems


def _outside(parquet: Any, names: list[str], start: datetime | None, end: datetime | None) -> bool:
    """True when the file's UTC timestamp statistics put every row outside ``(start, end]``."""
    import pyarrow as pa

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
    return (start is not None and high <= _micros(start) * 1000) or (end is not None and low > _micros(end) * 1000)


_NS_PER_UNIT = {"milliseconds": 1_000_000, "microseconds": 1000, "nanoseconds": 1}


def normalise(table: "pa.Table", with_problems: bool = False) -> Any:
    """timestamp[us, UTC] and float64 columns from what a day file holds (ours, the notebook's
    text or naive times). Rows without a readable time and columns of types that are not numbers
    are left out; NaN and ±inf become null. With ``with_problems``: (table, what was left out)."""
    import numpy as np
    import pyarrow as pa

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
            columns[name] = _to_float(col)
            unread = columns[name].null_count - col.null_count
            if unread:
                problems.append(f"{unread} value(s) of {name!r} are not numbers")
        else:
            problems.append(f"column {name!r} is {col.type}, not numbers; left out")
    table = _finite(pa.table(columns))
    stamps = table.column(TIMESTAMP)
    us = _np(stamps, np.int64)
    valid = (us >= _EARLIEST_US) & (us < _LATEST_US) & _valid(stamps)
    dropped = int(len(valid) - np.count_nonzero(valid))
    if dropped and readable:
        problems.append(f"{dropped} row(s) without a readable time (or one before 1970 or after 2199)")
    if dropped:
        table = take_rows(table, valid)
    return (table, problems) if with_problems else table


def _to_float(col: Any) -> Any:
    import pandas as pd
    import pyarrow as pa

    return pa.array(pd.to_numeric(col.to_pandas(), errors="coerce"), type=pa.float64())


def _fill_columns(table: "pa.Table", columns: list[str] | None) -> "pa.Table":
    """Asked-for columns a file lacks read as null (a GPU column added mid-history)."""
    import pyarrow as pa

    if columns is None:
        return table
    for name in columns:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.float64()))
    return table.select(columns)


def empty_table(columns: list[str] | None = None) -> "pa.Table":
    import pyarrow as pa

    names = columns or [TIMESTAMP, *BASE_COLUMNS]
    return pa.table({n: pa.nulls(0, pa.timestamp("us", tz="UTC") if n == TIMESTAMP else pa.float64()) for n in names})


def concat(parts: list["pa.Table"], columns: list[str] | None = None) -> "pa.Table":
    import pyarrow as pa

    parts = [p for p in parts if p.num_rows]
    if not parts:
        return empty_table(columns)
    if len(parts) == 1:
        table = parts[0]
    else:
        table = pa.concat_tables(parts, promote_options="default")
    return table.select(column_order(table.column_names))


def _in_range(table: "pa.Table", start: datetime | None, end: datetime | None) -> "pa.Table":
    """The rows with ``start < timestamp <= end``: a slice when the times are sorted (a day file,
    the CSV), else a filter."""
    import numpy as np

    if not table.num_rows or (start is None and end is None):
        return table
    column = table.column(TIMESTAMP)
    us = stamps_us(column)
    low = np.iinfo(np.int64).min if start is None else _micros(start)
    high = np.iinfo(np.int64).max if end is None else _micros(end)
    if not column.null_count and bool(np.all(us[1:] >= us[:-1])):
        first, stop = (int(i) for i in np.searchsorted(us, [low, high], side="right"))
        return table if (first, stop) == (0, table.num_rows) else table.slice(first, stop - first)
    keep = (us > low) & (us <= high) & _valid(column)  # a row without a time is in no range
    return table if keep.all() else take_rows(table, keep)


def unique_sorted(table: "pa.Table") -> "pa.Table":
    """Sorted by time, one row per timestamp (the first one seen wins).

    Day files in date order followed by the CSV are usually sorted already: then this costs one
    pass over the timestamps instead of a sort.
    """
    import numpy as np

    if table.num_rows < 2:
        return table
    stamps = stamps_us(table.column(TIMESTAMP))
    if bool(np.all(stamps[1:] > stamps[:-1])):
        return table
    import pyarrow.compute as pc

    order = pc.sort_indices(table.column(TIMESTAMP))  # stable: the first row seen stays first
    table = table.take(order)
    stamps = stamps[_np(order, np.uint64)]
    keep = np.empty(len(stamps), dtype=bool)
    keep[0] = True
    np.not_equal(stamps[1:], stamps[:-1], out=keep[1:])
    return table if keep.all() else table.filter(_mask(keep))
