"""Today's CSV (``csv_dump/daily_dump.csv``): a sample's fields as the writer writes them, and
the tolerant reader that reads every line it can and lists the ones it cannot.

Imports ``layout``, ``tables`` and ``jsonfile``; pyarrow inside the reader (the tray app writes
the CSV without Arrow), pandas only for lines that need lenient reading.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trayapp.jsonfile import read_own, warn_once
from trayapp.storage.layout import CSV_MAX, EARLIEST_US, LATEST_US, TIMESTAMP
from trayapp.storage.tables import arrow_array, non_finite_as_null, numpy_of, parse_timestamps, valid_mask, with_columns

if TYPE_CHECKING:
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

_TAIL_STEP = 1 << 16  # bytes read at a time, back from the end of the CSV


def csv_field(value: float | None) -> str:
    """A CSV field; ``None`` and non-finite values (NaN, ±inf mean "not available") are empty."""
    if value is None:
        return ""
    value = float(value)
    return repr(round(value, 4)) if math.isfinite(value) else ""


def header_names(line: bytes) -> list[str]:
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

    try:
        data = read_own(path, CSV_MAX)
    except FileNotFoundError:
        return None
    except OSError as exc:
        warn_once(f"csv:{path}", f"cannot read {path}: {exc.strerror or exc}")
        return None
    end = data.rfind(b"\n")
    if end < 0:
        return None
    data = data[: end + 1]
    cut = data.find(b"\n")
    header_line = data[:cut]
    header = header_names(header_line)
    if header[0] != TIMESTAMP:
        warn_once(f"csv-header:{path}", f"{path} does not start with a 'timestamp' header; skipped")
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
        warn_once(f"csv-rows:{path}:{len(content.bad)}:{len(content.lossy)}",
                   f"{path}: {'; '.join(parts)}; the next rollover keeps their bytes in {path.parent / '.rejected-*.csv'}")
    if warn and content.narrow:
        warn_once(f"csv-narrow:{path}", f"{path}: {content.narrow} line(s) have fewer fields than the header; read the columns they have")
    if content.row_lines is None:
        content.row_lines = np.arange(content.table.num_rows)
    content.table = with_columns(content.table, columns)
    return content


def _parse_fast(data: bytes, header: list[str], include: list[str] | None, keep_lines: bool) -> CsvContent | None:
    """pyarrow's reader, when every line is UTF-8, has the header's width and converts; None
    otherwise (the careful pass then reads what it can)."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow
    import pyarrow.csv as pacsv  # lazy: Arrow, only when a file is read with it

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
    us = numpy_of(stamps, np.int64)
    if len(us) and (us.min() < EARLIEST_US or us.max() >= LATEST_US):
        return None
    content = CsvContent(b"", non_finite_as_null(table))
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
    a day of samples is many lines, and a rollover needs only the few it keeps."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)  # the header's newline first

    def __len__(self) -> int:
        return max(len(self.ends) - 1, 0)

    def __getitem__(self, i: int) -> bytes:
        return self.data[int(self.ends[i]) + 1 : int(self.ends[i + 1])]


_NOT_A_NUMBER = {"", "nan", "-nan", "+nan", "na", "n/a", "null", "none"}


def _parse_lines(data: bytes, header: list[str], include: list[str] | None) -> CsvContent:
    """Every line on its own: the ones that cannot be read are listed, the rest read."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow

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
    ok = has_time & (us >= EARLIEST_US) & (us < LATEST_US)
    lines_of_rows = np.asarray(row_lines, dtype="int64")
    bad.extend(lines_of_rows[~ok].tolist())
    lossy = set(lines_of_rows[np.isin(lines_of_rows, wide) & ok].tolist())
    columns: dict[str, Any] = {TIMESTAMP: arrow_array(us[ok], pa.timestamp("us", tz="UTC"))}
    for name in values:
        lossy.update(lines_of_rows[unread[name] & ok].tolist())
        kept = numbers[name][ok]
        kept[~np.isfinite(kept)] = np.nan
        columns[name] = arrow_array(kept, pa.float64(), np.isnan(kept))
    narrow = int(np.isin(lines_of_rows[ok], short).sum()) if short else 0
    return CsvContent(header_line, pa.table(columns), lines, lines_of_rows[ok], sorted(bad), sorted(lossy), blank, narrow)


Cells = "tuple[Any, Any, dict[str, Any], dict[str, Any]]"  # µs, has a time, {name: float64}, {name: unreadable}


def _cells_strictly(cells: dict[str, list[str]], values: list[str]) -> "Cells | None":
    """The careful pass's cells through pyarrow's CSV reader when every one is a time with an
    offset, a plain number or empty (broken lines already taken out): the usual case after a
    crash or a column added, read without pandas. None when any cell needs lenient reading."""
    import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow
    import pyarrow.csv as pacsv  # lazy: Arrow, only when a file is read with it

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
    us = numpy_of(ts.cast(pa.int64()), np.int64)
    no = np.zeros(len(stamps), dtype=bool)
    return us, valid_mask(ts), {n: numpy_of(table.column(i + 1), np.float64) for i, n in enumerate(values)}, {n: no for n in values}


def _cells_leniently(cells: dict[str, list[str]], values: list[str]) -> "Cells":
    """The same with pandas: any time pandas reads (naive ones local), numbers with spaces or
    words; a value that is not a number is NaN and marked unreadable unless it says "none"."""
    import pandas as pd  # lazy: only for text times and values the fast path cannot read

    stamps = parse_timestamps(pd.Series(cells.get(TIMESTAMP, []), dtype="object"))
    has_time = stamps.notna().to_numpy(dtype=bool)
    us = np.where(has_time, stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[us]").view("int64"), 0)
    numbers, unread = {}, {}
    for name in values:
        text = pd.Series(cells[name], dtype="object").str.strip()
        numbers[name] = np.array(pd.to_numeric(text, errors="coerce"), dtype="float64")
        unread[name] = np.isnan(numbers[name]) & ~text.str.lower().isin(_NOT_A_NUMBER).to_numpy()
    return us, has_time, numbers, unread


def last_lines(path: Path, keep: int) -> bytes:
    """The file's first line and its last ``keep`` lines (a CSV ending in a newline). Today's rows
    are a few at midnight: they are found from the end of the file, not by reading the day."""
    with open(path, "rb") as f:
        header = f.readline()
        end = f.seek(0, os.SEEK_END)
        tail = b""
        while tail.count(b"\n") <= keep and f.tell() > len(header):
            step = min(_TAIL_STEP, f.tell() - len(header))
            f.seek(-step, os.SEEK_CUR)
            tail = f.read(step) + tail
            f.seek(-step, os.SEEK_CUR)
    cut = len(tail)
    for _ in range(keep):  # back to the start of each kept line, from the newline that ends it
        cut = tail.rfind(b"\n", 0, cut - 1) + 1 if cut > 1 else 0
    rest = tail[cut:] if keep else b""
    if rest.count(b"\n") != keep or end - len(rest) < len(header):
        raise OSError(f"{path} has fewer lines than its rows")
    return header + rest


def csv_fields(values: dict[str, float | None], names: tuple[str, ...]) -> tuple[list[str], list[float | None]]:
    """Each column's CSV field as ``csv_field`` writes it, and the number the field holds
    (rounded to 4 places, as it reads back; None where the field is empty), in one pass."""
    fields: list[str] = []
    numbers: list[float | None] = []
    for name in names:
        value = values.get(name)
        if value is not None:
            value = float(value)
            if math.isfinite(value):
                value = round(value, 4)
                fields.append(repr(value))
                numbers.append(value)
                continue
        fields.append("")
        numbers.append(None)
    return fields, numbers
