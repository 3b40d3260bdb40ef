"""A small Parquet writer in numpy, of narrow scope: flat columns of float64 (NaN = null), int64
and UTC timestamps in microseconds, and nothing else (no nesting, no strings, no other types).

It is for the writing a long-running tray app does itself: the day file at midnight and every
rollup tier. Arrow writes Parquet, but a process that imports it keeps it for good, and a child
that does holds more beside the app than the app's whole memory budget. This writes with what the
app has loaded already: numpy, plus ``zstandard`` for the same codec as Arrow's files. Everything
else (merging into a day file that is there, other people's files, reading) stays Arrow's.
``tests/test_parquet_writer.py`` reads what it writes with pyarrow, DuckDB and polars, bit for
bit and statistics included, random tables of every float64, int64 and time value among them.

What it writes, and what Arrow, DuckDB and pandas read from it like from Arrow's own files:
- format version 1 files, one data page (v1, PLAIN, zstd) per column chunk, row groups as given;
- every column OPTIONAL (Arrow's columns are nullable): a float64 NaN is written as a null (the
  store's "not available"), int64 and timestamps have no nulls;
- timestamps as INT64 with the TIMESTAMP(isAdjustedToUTC, MICROS) logical type, which Arrow reads
  as ``timestamp[us, tz=UTC]``;
- min/max statistics and null counts per column chunk (readers prune row groups with them), with
  the type-defined column order that makes readers trust them;
- key/value metadata, which Arrow shows as the schema's metadata.
The format: https://github.com/apache/parquet-format (parquet.thrift; Thrift's compact protocol).

Imports numpy, zstandard and the standard library only.
"""

from __future__ import annotations

import io
import os
import struct
from typing import Any, BinaryIO

import numpy as np

TIMESTAMP_US = "timestamp_us_utc"
FLOAT64 = "float64"
INT64 = "int64"
_PHYSICAL = {TIMESTAMP_US: 2, INT64: 2, FLOAT64: 5}  # Type: INT64, DOUBLE
_OPTIONAL = 1  # FieldRepetitionType
_PLAIN, _PLAIN_DICTIONARY, _RLE = 0, 2, 3  # Encoding (PLAIN_DICTIONARY: a format 1 file's dictionary pages, as Arrow writes them)
_ZSTD = 6  # CompressionCodec
_DATA_PAGE, _DICTIONARY_PAGE = 0, 2  # PageType
DICTIONARY_MAX = 4096  # distinct values a column chunk's dictionary may hold (Arrow's limit is 1 MB of them)
_TIMESTAMP_MICROS = 10  # ConvertedType
MAGIC = b"PAR1"
CREATED_BY = "trayapp parquet writer version 1"

# Thrift compact protocol types
_BOOL_TRUE, _BOOL_FALSE, _I32, _I64, _BINARY, _LIST, _STRUCT = 1, 2, 5, 6, 8, 9, 12


# ------------------------------------------------------------ Thrift's compact protocol


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


class Struct:
    """A Thrift struct: fields (id, type, value) in rising id order."""

    def __init__(self, *fields: tuple[int, int, Any]) -> None:
        self.fields = [f for f in fields if f[2] is not None]

    def encode(self) -> bytes:
        out = bytearray()
        last = 0
        for fid, ftype, value in self.fields:
            if ftype == _BOOL_TRUE:  # a bool's value is its type
                ftype = _BOOL_TRUE if value else _BOOL_FALSE
            delta = fid - last
            if 0 < delta <= 15:
                out.append((delta << 4) | ftype)
            else:
                out.append(ftype)
                out += _varint(_zigzag(fid))
            last = fid
            out += _value(ftype, value)
        out.append(0)  # stop
        return bytes(out)


class List:
    """A Thrift list of one element type."""

    def __init__(self, etype: int, items: list[Any]) -> None:
        self.etype, self.items = etype, items


def _value(ftype: int, value: Any) -> bytes:
    if ftype in (_BOOL_TRUE, _BOOL_FALSE):
        return b""
    if ftype in (_I32, _I64):
        return _varint(_zigzag(int(value)))
    if ftype == _BINARY:
        data = value.encode() if isinstance(value, str) else bytes(value)
        return _varint(len(data)) + data
    if ftype == _STRUCT:
        return value.encode()
    if ftype == _LIST:
        n = len(value.items)
        head = bytes([(n << 4) | value.etype]) if n < 15 else bytes([0xF0 | value.etype]) + _varint(n)
        return head + b"".join(_value(value.etype, item) for item in value.items)
    raise ValueError(f"thrift type {ftype}")


# ------------------------------------------------------------ pages


def _bit_packed(values: np.ndarray, width: int) -> bytes:
    """One bit-packed run of the RLE / bit-packed hybrid: each value in ``width`` bits, least
    significant first, in groups of 8 (the last one padded with zeros)."""
    padded = np.zeros((len(values) + 7) // 8 * 8, dtype=np.uint32)
    padded[: len(values)] = values
    bits = ((padded[:, None] >> np.arange(width, dtype=np.uint32)) & 1).astype(np.uint8)
    return _varint((len(padded) // 8 << 1) | 1) + np.packbits(bits.ravel(), bitorder="little").tobytes()


def _levels(present: np.ndarray) -> bytes:
    """Definition levels (1 = a value, 0 = null) in the hybrid, bit width 1, with its 4-byte
    length: one RLE run when there are no nulls, else one bit-packed run."""
    body = _varint(len(present) << 1) + b"\x01" if bool(present.all()) else _bit_packed(present, 1)
    return struct.pack("<i", len(body)) + body


class Column:
    def __init__(self, name: str, kind: str) -> None:
        if kind not in _PHYSICAL:
            raise ValueError(f"column {name!r}: kind {kind!r} is not one this writer writes")
        self.name, self.kind = name, kind


def _dictionary(data: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(distinct values, each value's index into them) when a dictionary is worth it (at most
    ``DICTIONARY_MAX`` values and half as many as there are values), else None. Values are told
    apart by their bits, so -0.0 stays -0.0; no ``np.unique`` (it imports numpy.ma)."""
    if len(data) < 16:
        return None
    bits = data.view(np.int64)
    order = np.argsort(bits)
    ordered = bits[order]
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    distinct = ordered[first]
    if len(distinct) > min(DICTIONARY_MAX, len(data) // 2):
        return None
    index = np.empty(len(bits), dtype=np.uint32)
    index[order] = np.cumsum(first) - 1
    return distinct.view(np.float64), index


def _indices(index: np.ndarray, count: int) -> bytes:
    """Dictionary indices after their bit width (one byte), as one bit-packed run."""
    width = max(1, int(count - 1).bit_length())
    return bytes([width]) + _bit_packed(index, width)


def _page(kind: int, raw: bytes, compressor: Any, header: tuple[int, int, Struct]) -> tuple[bytes, int, int]:
    """A page: its header and its compressed body; the header's length; its size uncompressed."""
    packed = compressor.compress(raw)
    head = Struct((1, _I32, kind), (2, _I32, len(raw)), (3, _I32, len(packed)), header).encode()
    return head + packed, len(head), len(head) + len(raw)


def _chunk(column: Column, values: np.ndarray, compressor: Any, offset: int) -> tuple[bytes, Struct, int, int, int]:
    """One column chunk (a dictionary page when one pays, then a single data page): its bytes,
    its ColumnChunk, its uncompressed size, and where its data page starts within it and the
    length of that page's header."""
    if column.kind == FLOAT64:
        values = np.ascontiguousarray(values, dtype="<f8")
        present = ~np.isnan(values)
        data = values[present] if not present.all() else values
        dictionary = _dictionary(data)
    else:
        data = np.ascontiguousarray(values, dtype="<i8")
        present = np.ones(len(data), dtype=bool)
        dictionary = None  # times and counts: nearly all distinct
    n = len(values)
    pages = b""
    dictionary_offset = None
    uncompressed = 0
    if dictionary is not None:
        distinct, index = dictionary
        dictionary_header = (7, _STRUCT, Struct((1, _I32, len(distinct)), (2, _I32, _PLAIN_DICTIONARY)))
        pages, _, uncompressed = _page(_DICTIONARY_PAGE, distinct.tobytes(), compressor, dictionary_header)
        dictionary_offset = offset
        raw = _levels(present) + _indices(index, len(distinct))
        encoding, encodings = _PLAIN_DICTIONARY, [_PLAIN_DICTIONARY, _RLE]
    else:
        raw = _levels(present) + data.tobytes()
        encoding, encodings = _PLAIN, [_PLAIN, _RLE]
    data_header = (5, _STRUCT, Struct((1, _I32, n), (2, _I32, encoding), (3, _I32, _RLE), (4, _I32, _RLE)))
    page, head, size = _page(_DATA_PAGE, raw, compressor, data_header)
    data_at = len(pages)
    uncompressed += size
    body = pages + page
    if len(data):
        fmt = "<d" if column.kind == FLOAT64 else "<q"
        low, high = data.min(), data.max()
        if column.kind == FLOAT64:  # the spec: a zero min is written -0.0 and a zero max +0.0, whichever zeros are there
            low, high = (-0.0 if low == 0 else low), (0.0 if high == 0 else high)
        low, high = struct.pack(fmt, low), struct.pack(fmt, high)
        # min and max twice: the deprecated fields for old readers, min_value/max_value for new
        stats = Struct((1, _BINARY, high), (2, _BINARY, low), (3, _I64, n - len(data)), (5, _BINARY, high), (6, _BINARY, low))
    else:
        stats = Struct((3, _I64, n))
    meta = Struct(
        (1, _I32, _PHYSICAL[column.kind]), (2, _LIST, List(_I32, encodings)), (3, _LIST, List(_BINARY, [column.name])),
        (4, _I32, _ZSTD), (5, _I64, n), (6, _I64, uncompressed), (7, _I64, len(body)), (9, _I64, offset + data_at),
        (11, _I64, dictionary_offset), (12, _STRUCT, stats),
    )
    return body, Struct((2, _I64, offset), (3, _STRUCT, meta)), uncompressed, data_at, head


# ------------------------------------------------------------ files


class ParquetWriter:
    """A Parquet file written to ``sink`` (a binary file) a row group at a time: a day's pages
    go to the file as they are made, never held together.

    ``columns``: (name, kind) with kind ``TIMESTAMP_US`` (int64 µs since the epoch, UTC),
    ``FLOAT64`` (NaN = null) or ``INT64``. ``metadata``: the file's key/value pairs."""

    def __init__(self, sink: BinaryIO, columns: list[tuple[str, str]], metadata: dict[str, str] | None = None, level: int = 1) -> None:
        import zstandard  # lazy: loaded with the first file written, not at start-up

        self.columns = [Column(name, kind) for name, kind in columns]
        if len({c.name for c in self.columns}) != len(self.columns):
            raise ValueError("column names repeat")
        self.metadata = dict(metadata or {})
        self._compressor = zstandard.ZstdCompressor(level=level)
        self._sink = sink
        sink.write(MAGIC)
        self._offset = len(MAGIC)
        self._row_groups: list[Struct] = []
        self._rows = 0
        self.size = 0  # the file's, once finished
        self.pages: list[list[tuple[int, int, int, bool]]] = [[] for _ in self.columns]  # per column: its data pages' (offset, header, size, dictionary?)

    def add_row_group(self, arrays: list[np.ndarray]) -> None:
        if len(arrays) != len(self.columns):
            raise ValueError(f"{len(arrays)} arrays for {len(self.columns)} columns")
        n = len(arrays[0]) if arrays else 0
        if any(len(a) != n for a in arrays):
            raise ValueError("the arrays of a row group differ in length")
        if not n:
            return
        start, total, chunks = self._offset, 0, []
        for i, (column, values) in enumerate(zip(self.columns, arrays)):
            body, chunk, size, data_at, head = _chunk(column, values, self._compressor, self._offset)
            self.pages[i].append((self._offset + data_at, head, len(body) - data_at, data_at > 0))
            self._sink.write(body)
            self._offset += len(body)
            total += size
            chunks.append(chunk)
        self._row_groups.append(Struct(
            (1, _LIST, List(_STRUCT, chunks)), (2, _I64, total), (3, _I64, n),
            (5, _I64, start), (6, _I64, self._offset - start),
        ))
        self._rows += n

    def finish(self) -> None:
        schema = [Struct((4, _BINARY, "schema"), (5, _I32, len(self.columns)))]
        for c in self.columns:
            fields: list[tuple[int, int, Any]] = [(1, _I32, _PHYSICAL[c.kind]), (3, _I32, _OPTIONAL), (4, _BINARY, c.name)]
            if c.kind == TIMESTAMP_US:
                unit = Struct((2, _STRUCT, Struct()))  # TimeUnit.MICROS
                fields += [(6, _I32, _TIMESTAMP_MICROS), (10, _STRUCT, Struct((8, _STRUCT, Struct((1, _BOOL_TRUE, True), (2, _STRUCT, unit)))))]
            schema.append(Struct(*fields))
        kv = [Struct((1, _BINARY, k), (2, _BINARY, v)) for k, v in self.metadata.items()]
        footer = Struct(
            (1, _I32, 1), (2, _LIST, List(_STRUCT, schema)), (3, _I64, self._rows), (4, _LIST, List(_STRUCT, self._row_groups)),
            (5, _LIST, List(_STRUCT, kv)) if kv else (5, _LIST, None), (6, _BINARY, CREATED_BY),
            (7, _LIST, List(_STRUCT, [Struct((1, _STRUCT, Struct())) for _ in self.columns])),  # TYPE_ORDER for each
        ).encode()
        self._sink.write(footer + struct.pack("<i", len(footer)) + MAGIC)
        self.size = self._offset + len(footer) + 8


def read_back(path: str | os.PathLike[str], writer: ParquetWriter, column: int) -> np.ndarray:
    """A column of the file ``writer`` wrote, read from disk at the places the writer put its
    pages and decoded: the check that what is on disk holds the rows, reading only that column.
    Nulls are left out. Raises ValueError when the bytes there are not what was written, or the
    column has dictionary pages (the times and counts never do)."""
    import zstandard  # lazy: loaded with the first file written, not at start-up

    kind = writer.columns[column].kind
    if any(dictionary for *_, dictionary in writer.pages[column]):
        raise ValueError(f"column {writer.columns[column].name!r} has dictionary pages: read_back reads plain ones only (the times)")
    parts = []
    decompressor = zstandard.ZstdDecompressor()
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size != writer.size or f.read(4) != MAGIC:
            raise ValueError("not the file that was written")
        f.seek(-4, os.SEEK_END)
        if f.read(4) != MAGIC:
            raise ValueError("not a whole Parquet file")
        for offset, head, size, _ in writer.pages[column]:
            f.seek(offset + head)
            try:
                raw = decompressor.decompress(f.read(size - head))
            except zstandard.ZstdError as exc:
                raise ValueError(f"a page does not decompress: {exc}") from None
            (levels,) = struct.unpack_from("<i", raw)
            parts.append(np.frombuffer(raw, dtype="<f8" if kind == FLOAT64 else "<i8", offset=4 + levels))
    return np.concatenate(parts) if parts else np.empty(0)


def write_bytes(columns: list[tuple[str, str]], arrays: list[np.ndarray], metadata: dict[str, str] | None = None, row_group: int = 65536) -> bytes:
    """A whole file from whole columns, ``row_group`` rows to a group, in memory."""
    sink = io.BytesIO()
    writer = ParquetWriter(sink, columns, metadata)
    n = len(arrays[0]) if arrays else 0
    for start in range(0, n, row_group):
        writer.add_row_group([a[start:start + row_group] for a in arrays])
    writer.finish()
    return sink.getvalue()
