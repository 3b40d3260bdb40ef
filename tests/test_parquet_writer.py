"""The small Parquet writer (``trayapp.storage.parquet_writer``) read by others: what it writes, pyarrow, DuckDB
and polars read back bit for bit, statistics included, for fixed cases and for random tables
(hypothesis) of every value a float64, int64 or UTC-timestamp column can hold."""

from __future__ import annotations

import io
import math
import os
import struct
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trayapp.storage import parquet_writer as parquet
from trayapp.storage.rows_file import ROWS_CHUNK as CHUNK

@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1000, 70_000])
def test_the_writer_round_trips_through_arrow_and_duckdb(tmp_path: Path, n: int) -> None:
    rng = np.random.default_rng(n)
    ts = 1_764_000_000_000_000 + np.cumsum(rng.integers(1, 3_000_000, n)).astype(np.int64)
    some = np.round(rng.random(n) * 100, 1)
    some[rng.random(n) < 0.3] = np.nan
    none = np.full(n, np.nan)
    full = rng.normal(size=n) * 1e300
    count = rng.integers(-(2**62), 2**62, n)
    columns = [("timestamp", parquet.TIMESTAMP_US), ("some", parquet.FLOAT64), ("none", parquet.FLOAT64), ("full", parquet.FLOAT64), ("count", parquet.INT64)]
    path = tmp_path / "x.parquet"
    path.write_bytes(parquet.write_bytes(columns, [ts, some, none, full, count], {"k": "v é"}, row_group=4096))
    table = pq.read_table(path)
    assert table.schema.metadata == {b"k": "v é".encode()}
    expected = pa.table({
        "timestamp": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "some": pa.array(some, from_pandas=True), "none": pa.array(none, pa.float64(), from_pandas=True),
        "full": pa.array(full), "count": pa.array(count),
    })
    assert table.replace_schema_metadata(None).equals(expected)
    meta = pq.ParquetFile(path).metadata
    for g in range(meta.num_row_groups):  # statistics readers prune with
        rows = slice(g * 4096, (g + 1) * 4096)
        stats = meta.row_group(g).column(1).statistics
        values = some[rows][~np.isnan(some[rows])]
        assert stats.null_count == int(np.isnan(some[rows]).sum())
        if len(values):
            assert (stats.min, stats.max) == (values.min(), values.max())
        assert meta.row_group(g).column(0).statistics.min == expected.column(0)[g * 4096].as_py()
    got = duckdb.sql(f"select count(*), count(\"some\"), sum(\"count\"::hugeint), sum(\"some\"), max(timestamp) from read_parquet('{path}')").fetchall()[0]
    assert got[:3] == (n, int((~np.isnan(some)).sum()), int(count.sum(dtype=object)) if n else None)
    assert got[3] == (pytest.approx(float(np.nansum(some)), rel=1e-9) if n and not np.isnan(some).all() else None)  # values, not only counts


@pytest.mark.parametrize("distinct", [1, 2, 3, 255, 256, 257, parquet.DICTIONARY_MAX, parquet.DICTIONARY_MAX + 1])
def test_dictionary_pages_read_back_bit_for_bit(tmp_path: Path, distinct: int) -> None:
    # a dictionary per column chunk where values repeat (a percentage to one decimal): each index
    # width, the largest dictionary, one value past it (plain then); -0.0 and 0.0 are two values
    rng = np.random.default_rng(distinct)
    pool = np.concatenate([[-0.0, 0.0], np.arange(distinct) * 0.1 + 1])[:distinct]
    values = np.concatenate([pool, pool[rng.integers(0, distinct, 3 * parquet.DICTIONARY_MAX)]])  # each value at least once
    values = np.insert(values, np.arange(0, len(values), 10), np.nan)[rng.permutation(len(values) + (len(values) + 9) // 10)]
    path = tmp_path / "d.parquet"
    path.write_bytes(parquet.write_bytes([("v", parquet.FLOAT64)], [values], row_group=len(values)))
    meta = pq.ParquetFile(path).metadata.row_group(0).column(0)
    assert meta.has_dictionary_page == (distinct <= parquet.DICTIONARY_MAX)
    back = pq.read_table(path).column("v").to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(np.signbit(back), np.signbit(values))
    np.testing.assert_array_equal(back, values)  # NaN where null
    got = duckdb.sql(f"select count(v), sum(v) from read_parquet('{path}')").fetchall()[0]
    assert got[0] == int((~np.isnan(values)).sum()) and got[1] == pytest.approx(float(np.nansum(values)), rel=1e-12)


def test_read_back_decodes_the_times_and_refuses_a_dictionary_column(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    ts = np.arange(40_000, dtype=np.int64) * 1_000_000
    with open(path, "wb") as sink:
        writer = parquet.ParquetWriter(sink, [("timestamp", parquet.TIMESTAMP_US), ("v", parquet.FLOAT64)])
        for a in range(0, len(ts), 8192):
            writer.add_row_group([ts[a:a + 8192], np.full(len(ts[a:a + 8192]), 5.5)])
        writer.finish()
    np.testing.assert_array_equal(parquet.read_back(path, writer, 0), ts)
    with pytest.raises(ValueError, match="dictionary"):
        parquet.read_back(path, writer, 1)  # its pages hold indices, not values
    with open(path, "r+b") as f:  # a byte of the last page's compressed body flipped on disk
        offset, head, size, _ = writer.pages[0][-1]
        f.seek(offset + head + size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    try:
        back = parquet.read_back(path, writer, 0)
    except ValueError:  # zstd's frame check
        back = None
    assert back is None or not np.array_equal(back, ts)  # never taken for the rows written


def test_the_writer_refuses_what_it_does_not_write() -> None:
    with pytest.raises(ValueError):
        parquet.ParquetWriter(io.BytesIO(), [("a", "string")])
    with pytest.raises(ValueError):
        parquet.ParquetWriter(io.BytesIO(), [("a", parquet.FLOAT64), ("a", parquet.FLOAT64)])
    with pytest.raises(ValueError):
        parquet.ParquetWriter(io.BytesIO(), [("a", parquet.FLOAT64)]).add_row_group([np.zeros(3), np.zeros(3)])




def test_zero_statistics_are_written_as_the_spec_says(tmp_path: Path) -> None:
    # a zero min is -0.0 and a zero max +0.0 whichever zeros the page holds (readers compare with them)
    for values in ([-0.0, -0.0], [0.0, 0.0], [-1.0, -0.0], [0.0, 2.0]):
        path = tmp_path / "z.parquet"
        path.write_bytes(parquet.write_bytes([("v", parquet.FLOAT64)], [np.array(values)]))
        stats = pq.ParquetFile(path).metadata.row_group(0).column(0).statistics
        arrow = tmp_path / "a.parquet"
        pq.write_table(pa.table({"v": pa.array(values)}), arrow)
        expected = pq.ParquetFile(arrow).metadata.row_group(0).column(0).statistics
        assert (math.copysign(1, stats.min), stats.min, math.copysign(1, stats.max), stats.max) == (
            math.copysign(1, expected.min), expected.min, math.copysign(1, expected.max), expected.max), values




# ------------------------------------------------------------ random tables, three readers

# Floats a column may hold: the store's values and everything IEEE 754 has besides (NaN is "not
# available", written as a null).
SPECIAL_FLOATS = [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 2.2250738585072009e-308,
                  -2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308, 0.1, 100.0, 1e15, -1e15]
SPECIAL_INTS = [0, 1, -1, 2**63 - 1, -(2**63), 2**31, -(2**31) - 1, 2**53 + 1]
# DuckDB reads the int64 values INT64_MAX and -INT64_MAX of a timestamp column as ±infinity, so the
# times stay within ±2^62 µs (±146,000 years), far past the 1970..2199 the store writes.
TIME_LIMIT = 2**62
SPECIAL_TIMES = [0, 1, -1, TIME_LIMIT, -TIME_LIMIT, 1_764_000_000_000_000, 7_258_118_400_000_000 - 1]
ROW_COUNTS = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1]


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[np.ndarray]]:
    """Columns of one kind each; each column's values either repeat (a few distinct: a dictionary
    page) or are all different (PLAIN pages), with special values drawn in at random places."""
    n = draw(st.sampled_from(ROW_COUNTS) | st.integers(0, 300))
    kinds = draw(st.lists(st.sampled_from([parquet.FLOAT64, parquet.INT64, parquet.TIMESTAMP_US]), min_size=1, max_size=40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    arrays: list[np.ndarray] = []
    for kind in kinds:
        repeated = draw(st.booleans())
        if kind == parquet.FLOAT64:
            drawn = draw(st.lists(st.sampled_from(SPECIAL_FLOATS) | st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True), max_size=12))
            pool = np.array(drawn + list(rng.normal(size=draw(st.integers(0, 4))) * 1e3), dtype=np.float64)
            style = draw(st.sampled_from(["percent", "wide", "pool"]))
            if style == "percent":  # what the store writes: 0..100 to one decimal, values repeat
                bulk = np.round(rng.random(n) * 100, 1)
            elif style == "wide" or not len(pool):  # every value different: PLAIN pages
                bulk = rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, n)
            else:  # a few values over and over: a dictionary page
                bulk = rng.choice(pool, n)
            if draw(st.booleans()) and n:
                bulk[rng.random(n) < 0.3] = np.nan  # a sensor that does not answer now and then
            if draw(st.booleans()):
                bulk[:] = np.nan  # a column never filled
        else:
            limit = TIME_LIMIT if kind == parquet.TIMESTAMP_US else 2**63 - 1
            specials = SPECIAL_TIMES if kind == parquet.TIMESTAMP_US else SPECIAL_INTS
            drawn = draw(st.lists(st.sampled_from(specials) | st.integers(-limit, limit), max_size=12))
            pool = np.array(drawn + [0], dtype=np.int64)
            bulk = rng.choice(pool, n) if repeated else rng.integers(-limit, limit, n, dtype=np.int64, endpoint=True)
        if n and len(pool):  # each drawn value somewhere in the column
            places = rng.integers(0, n, len(pool))
            bulk[places] = pool
        arrays.append(np.ascontiguousarray(bulk, dtype=np.float64 if kind == parquet.FLOAT64 else np.int64))
    return [(f"c{i}", kind) for i, kind in enumerate(kinds)], arrays


def bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.int64)


def present(values: np.ndarray) -> np.ndarray:
    """Where a column has a value: NaN in a float64 column is a null, int64 and times always are."""
    return ~np.isnan(values) if values.dtype == np.float64 else np.ones(len(values), bool)


def check_column(name: str, got_values: np.ndarray, got_present: np.ndarray, values: np.ndarray, reader: str) -> None:
    want = present(values)
    np.testing.assert_array_equal(got_present, want, err_msg=f"{reader}: nulls of {name}")
    if values.dtype == np.float64:  # bit for bit: -0.0, subnormals and infinities as written
        np.testing.assert_array_equal(bits(got_values[want]), bits(values[want]), err_msg=f"{reader}: values of {name}")
    else:
        np.testing.assert_array_equal(np.asarray(got_values, dtype=np.int64), values, err_msg=f"{reader}: values of {name}")


def stats_of(path: Path) -> list[list[tuple]]:
    """Each row group's statistics per column as pyarrow reads them: null count, and min/max as
    bits (so -0.0 and 0.0 differ) where the file has them."""
    meta = pq.ParquetFile(path).metadata
    out = []
    for g in range(meta.num_row_groups):
        row = []
        for c in range(meta.num_columns):
            s = meta.row_group(g).column(c).statistics
            pair = None
            if s is not None and s.has_min_max:  # the physical values: doubles, or int64 (times too)
                pair = tuple(struct.pack("<d", v) if isinstance(v, float) else v for v in (s.min_raw, s.max_raw))
            row.append((s.null_count if s is not None else None, pair))
        out.append(row)
    return out


def duckdb_stats(path: Path) -> list[tuple]:
    return duckdb.sql(f"select row_group_id, column_id, stats_min_value, stats_max_value, stats_null_count "
                      f"from parquet_metadata('{path}') order by row_group_id, column_id").fetchall()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables())
def test_random_tables_read_back_bit_for_bit_by_pyarrow_duckdb_and_polars(tmp_path_factory: pytest.TempPathFactory, table: tuple[list[tuple[str, str]], list[np.ndarray]]) -> None:
    polars = pytest.importorskip("polars")  # in the test extra: a third reader beside Arrow and DuckDB
    columns, arrays = table
    folder = tmp_path_factory.mktemp("random")
    path, arrow_path = folder / "ours.parquet", folder / "arrow.parquet"
    path.write_bytes(parquet.write_bytes(columns, arrays, {"trayapp.test": "é"}, row_group=CHUNK))
    n = len(arrays[0])

    # pyarrow: the schema, then every value
    got = pq.read_table(path)
    assert got.num_rows == n and got.schema.metadata == {b"trayapp.test": "é".encode()}
    for (name, kind), values in zip(columns, arrays):
        column = got.column(name)
        want_type = {parquet.FLOAT64: pa.float64(), parquet.INT64: pa.int64(), parquet.TIMESTAMP_US: pa.timestamp("us", tz="UTC")}[kind]
        assert column.type == want_type, name
        if kind == parquet.TIMESTAMP_US:
            column = column.cast(pa.int64())
        check_column(name, column.to_numpy(zero_copy_only=False) if n else np.empty(0, values.dtype),
                     column.is_valid().to_numpy(zero_copy_only=False) if n else np.empty(0, bool), values, "pyarrow")

    # the statistics readers prune with: what Arrow itself writes for the same table and row groups
    expected = pa.table({name: pa.array(values, from_pandas=True) if kind == parquet.FLOAT64
                         else pa.array(values, pa.int64()).cast(pa.timestamp("us", tz="UTC")) if kind == parquet.TIMESTAMP_US
                         else pa.array(values, pa.int64()) for (name, kind), values in zip(columns, arrays)})
    pq.write_table(expected, arrow_path, row_group_size=CHUNK, compression="zstd")
    if n:
        assert stats_of(path) == stats_of(arrow_path)
        assert duckdb_stats(path) == duckdb_stats(arrow_path)
    else:  # no rows, no row group (Arrow writes an empty one)
        assert pq.ParquetFile(path).metadata.num_row_groups == 0

    # DuckDB: times as µs, floats as their bits
    select = ", ".join(f'epoch_us("{name}")' if kind == parquet.TIMESTAMP_US else f'"{name}"' for name, kind in columns)
    rows = duckdb.sql(f"select {select} from read_parquet('{path}')").fetchnumpy()
    for (name, kind), values, key in zip(columns, arrays, rows):
        column = rows[key]
        mask = np.ma.getmaskarray(column)
        check_column(name, np.ma.getdata(column).astype(values.dtype), ~mask, values, "duckdb")

    # polars: the types, the values, and a filter that prunes row groups by their statistics
    frame = polars.read_parquet(path)
    for (name, kind), values in zip(columns, arrays):
        series = frame[name]
        if kind == parquet.TIMESTAMP_US:
            assert series.dtype == polars.Datetime("us", "UTC"), name
            series = series.cast(polars.Int64)
        check_column(name, series.to_numpy() if kind != parquet.FLOAT64 else series.fill_null(np.nan).to_numpy(),
                     series.is_not_null().to_numpy(), values, "polars")
    for (name, kind), values in zip(columns, arrays):
        if kind == parquet.FLOAT64 and present(values).any():
            pivot = float(np.median(values[present(values)]))
            count = polars.scan_parquet(path).filter(polars.col(name) >= pivot).select(polars.len()).collect().item()
            assert count == int((values[present(values)] >= pivot).sum()), name
            break
