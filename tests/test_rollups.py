"""Rollup tiers: equal to a brute-force aggregation of the raw rows, rebuilt when missing, stale or
unreadable, crash-safe, readable by DuckDB, built at rollover, and free of pandas."""

from __future__ import annotations

import hashlib
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trayapp.storage import child_job as dataset_jobs, ranges as history, tier_builder as rollups
from trayapp.model import Sample
from trayapp.storage.writer import Store
from trayapp.storage.csv_file import read_csv
from trayapp.storage.day_files import read_day_file
from trayapp.storage import tiers
from tests import tier_reads

BERLIN = ZoneInfo("Europe/Berlin")
MIN, HOUR = 60_000_000, 3_600_000_000


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=BERLIN)


def us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


def write_day(data_dir: Path, day: date, ts_us: np.ndarray, columns: dict[str, np.ndarray]) -> Path:
    """A day file as the store writes it: timestamp[us, UTC], float64 metrics (NaN → null)."""
    path = Store(data_dir).day_path(day)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = {"timestamp": pa.array(ts_us, pa.int64()).cast(pa.timestamp("us", tz="UTC"))}
    for name, v in columns.items():
        cols[name] = pa.array(v, pa.float64(), mask=np.isnan(v))
    pq.write_table(pa.table(cols), path)
    return path


def dst_history(data_dir: Path) -> None:
    """28–30 March 2026 in Berlin (the 29th has 23 hours), every 7 s, with gaps, nulls and a GPU
    column that appears at noon on the 29th (absent from the 28th's file altogether)."""
    rng = np.random.default_rng(7)
    for d in (28, 29, 30):
        day = date(2026, 3, d)
        t = np.arange(us(local(2026, 3, d)), us(local(2026, 3, d + 1)), 7_000_000, dtype=np.int64)
        keep = np.ones(len(t), dtype=bool)
        for _ in range(5):  # gaps of up to 2 hours
            a = rng.integers(0, len(t))
            keep[a : a + rng.integers(10, 1000)] = False
        t = t[keep]
        cpu = rng.uniform(0, 100, len(t)).round(1)
        cpu[rng.random(len(t)) < 0.05] = np.nan
        cols = {"cpu_percent": cpu, "memory_percent": rng.uniform(20, 30, len(t))}
        if d >= 29:
            gpu = rng.uniform(0, 100, len(t))
            if d == 29:
                gpu[t < us(local(2026, 3, 29, 12))] = np.nan
            cols["gpu0_util_percent"] = gpu
        write_day(data_dir, day, t, cols)


def brute(table: pa.Table, width: int) -> dict[int, dict[str, tuple[float, float, float, int]]]:
    """Per bin start: {metric: (min, mean, max, count)}, one bin at a time with nan-functions."""
    ts = table.column("timestamp").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
    out: dict[int, dict[str, tuple[float, float, float, int]]] = {}
    keys = ts // width * width
    for b in np.unique(keys):
        rows = keys == b
        out[int(b)] = {}
        for name in table.column_names:
            if name == "timestamp":
                continue
            v = table.column(name).to_numpy(zero_copy_only=False).astype(float)[rows]
            v = v[~np.isnan(v)]
            out[int(b)][name] = (float(v.min()), float(v.mean()), float(v.max()), len(v)) if len(v) else (np.nan, np.nan, np.nan, 0)
    return out


def assert_equal(t: np.ndarray, stats: dict, truth: dict) -> None:
    assert [int(round(x * 1e6)) for x in t] == sorted(truth)
    for i, b in enumerate(sorted(truth)):
        for name, (lo, mean, hi, n) in truth[b].items():
            got = tuple(a[i] for a in stats[name])
            assert got[3] == n, (b, name)
            if n:
                assert got[0] == lo and got[2] == hi, (b, name)
                assert got[1] == pytest.approx(mean, rel=1e-12), (b, name)
            else:
                assert all(np.isnan(got[:3])), (b, name)


def raw_rows(data_dir: Path) -> pa.Table:
    return Store(data_dir).read(None, None, columns=["cpu_percent", "memory_percent", "gpu0_util_percent"])


def test_tiers_equal_brute_force_across_a_dst_day_gaps_nulls_and_a_new_gpu(data_dir: Path) -> None:
    dst_history(data_dir)
    assert rollups.ensure(data_dir) == 3
    raw = raw_rows(data_dir)
    start, end = local(2026, 3, 28), local(2026, 3, 31)
    assert_equal(*tier_reads.read_tier_files(data_dir, "minute", start, end), brute(raw, MIN))
    assert_equal(*tier_reads.read_tier_files(data_dir, "hour", start, end), brute(raw, HOUR))
    # the 29th alone: 23 local hours, its file holds exactly its own minutes
    day = pq.read_table(tiers.minute_path(data_dir, date(2026, 3, 29)))
    ts = day.column("timestamp").cast(pa.int64()).to_numpy()
    assert ts.min() >= us(local(2026, 3, 29)) and ts.max() < us(local(2026, 3, 30))
    assert us(local(2026, 3, 30)) - us(local(2026, 3, 29)) == 23 * HOUR
    assert day.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert day.schema.field("cpu_percent_count").type == pa.int64()
    assert "gpu0_util_percent_mean" in day.column_names
    assert "gpu0_util_percent_mean" not in pq.read_schema(tiers.minute_path(data_dir, date(2026, 3, 28))).names
    # a sub-window, some metrics only
    t, stats = tier_reads.read_tier_files(data_dir, "minute", local(2026, 3, 29, 11, 30), local(2026, 3, 29, 12, 30), ["gpu0_util_percent"])
    assert len(t) and list(stats) == ["gpu0_util_percent"]
    assert_equal(t, stats, {b: {"gpu0_util_percent": v["gpu0_util_percent"]} for b, v in brute(raw, MIN).items()
                            if us(local(2026, 3, 29, 11, 30)) <= b < us(local(2026, 3, 29, 12, 30))})


def test_notebook_era_files_get_tiers_on_first_start(data_dir: Path) -> None:
    month = data_dir / "Monitoring" / "Year=2018" / "Month=5"
    month.mkdir(parents=True)
    stamps = pd.date_range("2018-05-15 17:00:03", periods=400, freq="13s")
    as_text = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S.%f"), "cpu_percent": np.arange(400) % 37 * 1.5,
                            "memory_percent": 22.8, "disk_percent": 98.0})
    pq.write_table(pa.Table.from_pandas(as_text), month / "15.parquet", compression="snappy")
    naive = as_text.assign(timestamp=pd.to_datetime(as_text["timestamp"]) + pd.Timedelta(days=1))
    pq.write_table(pa.Table.from_pandas(naive), month / "16.parquet")
    store = Store(data_dir)
    store.open_writer(local(2026, 3, 10, 12))  # start-up maintenance
    store.close()
    assert tiers.minute_path(data_dir, date(2018, 5, 15)).exists()
    raw = Store(data_dir).read(None, None, columns=["cpu_percent", "memory_percent", "disk_percent"])
    assert raw.num_rows == 800
    start, end = local(2018, 5, 15), local(2018, 5, 17)
    assert_equal(*tier_reads.read_tier_files(data_dir, "minute", start, end), brute(raw, MIN))
    assert_equal(*tier_reads.read_tier_files(data_dir, "hour", start, end), brute(raw, HOUR))


def test_rollover_writes_the_days_tiers(data_dir: Path) -> None:
    store = Store(data_dir)
    store.open_writer(local(2026, 10, 24, 23))
    t = local(2026, 10, 25).timestamp()
    for i in range(0, 25 * 3600, 97):  # the 25th: 25 local hours (DST ends)
        store.append(Sample(timestamp=datetime.fromtimestamp(t + i, timezone.utc), cpu_percent=float(i % 101), memory_percent=50.0, disk_percent=1.0))
    assert not tiers.minute_path(data_dir, date(2026, 10, 25)).exists()
    store.append(Sample(timestamp=local(2026, 10, 26, 0, 0, 5), cpu_percent=1.0, memory_percent=50.0, disk_percent=1.0))
    store.close()
    assert tiers.minute_path(data_dir, date(2026, 10, 25)).exists()
    assert tiers.hour_path(data_dir, 2026, 10).exists()
    raw = read_day_file(Store(data_dir).day_path(date(2026, 10, 25)), ["timestamp", "cpu_percent", "memory_percent", "disk_percent"])
    assert raw.num_rows == len(range(0, 25 * 3600, 97))
    assert_equal(*tier_reads.read_tier_files(data_dir, "minute", local(2026, 10, 25), local(2026, 10, 26)), brute(raw, MIN))
    assert_equal(*tier_reads.read_tier_files(data_dir, "hour", local(2026, 10, 25), local(2026, 10, 26)), brute(raw, HOUR))
    assert rollups.ensure(data_dir) == 0  # fresh: nothing to do
    # today's CSV rows are folded in by the window's reader
    t2, stats = tier_reads.read_tier(data_dir, "minute", local(2026, 10, 25, 23), local(2026, 10, 26, 1))
    assert t2[-1] == local(2026, 10, 26, 0, 0).timestamp() and stats["cpu_percent"][3][-1] == 1
    late = sum(1 for i in range(0, 25 * 3600, 97) if t + i >= local(2026, 10, 25, 23).timestamp())
    assert int(stats["cpu_percent"][3].sum()) == late + 1


def test_deleting_the_rollups_folder_rebuilds_it_identically(data_dir: Path) -> None:
    dst_history(data_dir)
    rollups.ensure(data_dir)
    root = data_dir / "Rollups"
    before = {p.relative_to(root): pq.read_table(p) for p in root.rglob("*.parquet")}
    assert len(before) == 4  # three days, one month
    shutil.rmtree(root)
    assert rollups.ensure(data_dir) == 3
    after = {p.relative_to(root): pq.read_table(p) for p in root.rglob("*.parquet")}
    assert before.keys() == after.keys()
    for k in before:
        assert after[k].equals(before[k], check_metadata=True)


def test_stale_and_unreadable_tiers_are_rebuilt_and_bad_ones_kept_aside(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    dst_history(data_dir)
    rollups.ensure(data_dir)
    minute28 = tiers.minute_path(data_dir, date(2026, 3, 28))
    minute28.write_bytes(b"not parquet")
    # the 30th's raw file changes (a later merge): its tier and the month's hours are stale
    t = np.arange(us(local(2026, 3, 30)), us(local(2026, 3, 30, 1)), 1_000_000, dtype=np.int64)
    write_day(data_dir, date(2026, 3, 30), t, {"cpu_percent": np.full(len(t), 3.0)})
    with caplog.at_level(logging.WARNING):
        assert rollups.ensure(data_dir) == 2
    assert "kept it aside" in caplog.text
    assert list(minute28.parent.glob(".28.parquet.unreadable-*"))
    raw = raw_rows(data_dir)
    start, end = local(2026, 3, 28), local(2026, 3, 31)
    assert_equal(*tier_reads.read_tier_files(data_dir, "minute", start, end), brute(raw, MIN))
    assert_equal(*tier_reads.read_tier_files(data_dir, "hour", start, end), brute(raw, HOUR))
    # a day file deleted (retention): its tiers go too
    Store(data_dir).day_path(date(2026, 3, 28)).unlink()
    rollups.ensure(data_dir)
    assert not minute28.exists()
    assert_equal(*tier_reads.read_tier_files(data_dir, "hour", start, end), brute(raw_rows(data_dir), HOUR))


def test_a_start_with_nothing_to_do_reads_no_tier_footers_unless_a_tier_file_changed(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Rollups/.window/tiers.json`` keeps what each footer said with the file's size and mtime."""
    dst_history(data_dir)
    real = rollups._read_meta
    read: list[Path] = []
    monkeypatch.setattr(rollups, "_read_meta", lambda path: read.append(path) or real(path))
    assert rollups.ensure(data_dir) == 3
    assert rollups.ensure(data_dir) == 0 and len(read) == 4  # three days and a month, read once...
    read.clear()
    assert rollups.ensure(data_dir) == 0 and read == []  # ...and then known
    minute29 = tiers.minute_path(data_dir, date(2026, 3, 29))
    st = minute29.stat()
    os.utime(minute29, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000))  # touched, same bytes
    assert rollups.ensure(data_dir) == 0 and read == [minute29]
    read.clear()
    (data_dir / "Rollups" / ".window" / "tiers.json").write_bytes(b'{"version": 1, "files": {"minute/Year=2026/Month=3/30.parquet": 7')
    assert rollups.ensure(data_dir) == 0 and len(read) == 4  # a torn index: every footer read, as before
    read.clear()
    index = data_dir / "Rollups" / ".window" / "tiers.json"
    import json

    known = json.loads(index.read_text())
    key = "minute/Year=2026/Month=3/28.parquet"
    known["files"][key]["meta"] = {"sources": []}  # parses, but not what was written: its checksum fails
    index.write_text(json.dumps(known))
    assert rollups.ensure(data_dir) == 0 and len(read) == 4  # an altered index is not trusted at all
    (index.parent / ".tiers.json.x1y2.tmp").write_text("{")  # left by a save that was killed
    rollups.ensure(data_dir)
    assert not list(index.parent.glob(".*.tmp"))
    # the index never hides a stale tier: the 30th's day file changes, its tiers are rebuilt
    t = np.arange(us(local(2026, 3, 30)), us(local(2026, 3, 30, 1)), 1_000_000, dtype=np.int64)
    write_day(data_dir, date(2026, 3, 30), t, {"cpu_percent": np.full(len(t), 3.0)})
    assert rollups.ensure(data_dir) == 1
    start, end = local(2026, 3, 28), local(2026, 3, 31)
    assert_equal(*tier_reads.read_tier_files(data_dir, "minute", start, end), brute(raw_rows(data_dir), MIN))
    assert_equal(*tier_reads.read_tier_files(data_dir, "hour", start, end), brute(raw_rows(data_dir), HOUR))


def test_an_unreadable_day_file_gets_no_tier_and_no_crash(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    dst_history(data_dir)
    Store(data_dir).day_path(date(2026, 3, 29)).write_bytes(b"junk")
    with caplog.at_level(logging.WARNING):
        assert rollups.ensure(data_dir) == 2
    assert caplog.text.count("29.parquet") >= 1
    assert not tiers.minute_path(data_dir, date(2026, 3, 29)).exists()
    raw = raw_rows(data_dir)
    assert_equal(*tier_reads.read_tier_files(data_dir, "hour", local(2026, 3, 28), local(2026, 3, 31)), brute(raw, HOUR))


def test_duckdb_reads_the_tiers_and_its_hourly_fold_of_minutes_equals_the_hour_tier(data_dir: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    dst_history(data_dir)
    rollups.ensure(data_dir)
    root = (data_dir / "Rollups").as_posix()
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    folded = con.execute(
        f"""SELECT epoch_us(date_trunc('hour', timestamp)) AS h, min(cpu_percent_min), sum(cpu_percent_mean * cpu_percent_count) / sum(cpu_percent_count),
                   max(cpu_percent_max), sum(cpu_percent_count), sum(gpu0_util_percent_count)
            FROM read_parquet('{root}/minute/*/*/*.parquet', hive_partitioning = true, union_by_name = true) GROUP BY h ORDER BY h"""
    ).fetchall()
    hours = con.execute(
        f"""SELECT epoch_us(timestamp), cpu_percent_min, cpu_percent_mean, cpu_percent_max, cpu_percent_count, gpu0_util_percent_count
            FROM read_parquet('{root}/hour/*/*.parquet', hive_partitioning = true) ORDER BY 1"""
    ).fetchall()
    months = con.execute(f"SELECT DISTINCT Year, Month FROM read_parquet('{root}/minute/*/*/*.parquet', hive_partitioning = true)").fetchall()
    assert months == [(2026, 3)]
    assert len(folded) == len(hours) > 60
    for a, b in zip(folded, hours):
        assert a[0] == b[0] and a[1] == b[1] and a[3] == b[3] and a[4] == b[4] and (a[5] or 0) == (b[5] or 0)
        assert a[2] == pytest.approx(b[2], rel=1e-12)


def test_tier_building_and_reading_never_imports_pandas(data_dir: Path) -> None:
    dst_history(data_dir)
    code = (
        "import sys\n"
        "from datetime import date\n"
        "import trayapp.storage.tier_builder as r\n"
        "from tests import tier_reads\n"
        f"d = {str(data_dir)!r}\n"
        "assert r.ensure(d) == 3\n"
        "assert r.build_day(d, date(2026, 3, 29))\n"
        "t, s = tier_reads.read_tier_files(d, 'minute', 0, 2e9)\n"
        "t2, s2 = tier_reads.read_tier_files(d, 'hour', 0, 2e9, ['cpu_percent'])\n"
        "assert len(t) > 3000 and len(t2) > 50\n"
        "print('pandas' in sys.modules, flush=True)\n"
        "import os; os._exit(0)\n"  # as the dataset child leaves: Arrow's thread pools can abort Python's teardown
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


KILL_LOOP = """
import random, sys
from datetime import date
import trayapp.storage.tier_builder as r
d = sys.argv[1]
days = [date(2026, 3, n) for n in (28, 29, 30)]
print("ready", flush=True)
while True:
    r.build_day(d, random.choice(days))
    r.ensure(d)
"""


@pytest.mark.slow  # a kill -9 series
def test_kill_9_during_tier_writing_loses_nothing_and_leaves_no_half_tier(data_dir: Path) -> None:
    dst_history(data_dir)
    raw_hash = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (data_dir / "Monitoring").rglob("*.parquet")}
    rng = random.Random(3)
    for i in range(10):
        child = subprocess.Popen([sys.executable, "-c", KILL_LOOP, str(data_dir)], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        for path in (data_dir / "Rollups").rglob("*.parquet"):  # every tier there is whole
            pq.read_table(path)
        if i % 3 == 0:  # and sometimes a tier goes missing between kills
            victim = tiers.minute_path(data_dir, date(2026, 3, 28 + i % 3))
            victim.unlink(missing_ok=True)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (data_dir / "Monitoring").rglob("*.parquet")} == raw_hash
    rollups.ensure(data_dir)
    assert not list((data_dir / "Rollups").rglob("*.tmp"))
    assert not list((data_dir / "Rollups").rglob(".*unreadable*"))
    raw = raw_rows(data_dir)
    start, end = local(2026, 3, 28), local(2026, 3, 31)
    assert_equal(*tier_reads.read_tier_files(data_dir, "minute", start, end), brute(raw, MIN))
    assert_equal(*tier_reads.read_tier_files(data_dir, "hour", start, end), brute(raw, HOUR))


def test_a_half_hour_zone_hour_shared_by_two_months_reads_whole(data_dir: Path) -> None:
    # Asia/Kolkata (+05:30): the local day of 1 April starts at 18:30 UTC on 31 March, so the 18:00 UTC
    # hour holds rows of the March day file and of the April one, and lands in both months' hour files
    kolkata = ZoneInfo("Asia/Kolkata")
    rng = np.random.default_rng(5)
    for d in (date(2026, 3, 31), date(2026, 4, 1)):
        a = int(datetime(d.year, d.month, d.day, tzinfo=kolkata).timestamp()) * 1_000_000
        t = np.arange(a, a + 86_400_000_000, 11_000_000, dtype=np.int64)
        write_day(data_dir, d, t, {"cpu_percent": rng.uniform(0, 100, len(t))})
    rollups.ensure(data_dir)
    shared = int(datetime(2026, 3, 31, 18, tzinfo=timezone.utc).timestamp()) * 1_000_000
    for month in (3, 4):
        hours = pq.read_table(tiers.hour_path(data_dir, 2026, month)).column("timestamp").cast(pa.int64()).to_pylist()
        assert shared in hours
    raw = Store(data_dir).read(None, None, columns=["cpu_percent"])
    t, stats = tier_reads.read_tier_files(data_dir, "hour", datetime(2026, 3, 30, tzinfo=timezone.utc), datetime(2026, 4, 3, tzinfo=timezone.utc))
    assert_equal(t, stats, brute(raw, HOUR))


def test_a_tier_that_cannot_be_written_never_fails_the_rollover(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "Rollups").write_text("a file where the folder goes")
    store = Store(data_dir)
    store.open_writer(local(2026, 3, 10, 22))
    store.append(Sample(timestamp=local(2026, 3, 10, 22), cpu_percent=5.0, memory_percent=50.0, disk_percent=1.0))
    with caplog.at_level(logging.WARNING):
        store.append(Sample(timestamp=local(2026, 3, 11, 9), cpu_percent=6.0, memory_percent=50.0, disk_percent=1.0))
    store.close()
    assert "rollup" in caplog.text
    assert Store(data_dir).day_path(date(2026, 3, 10)).exists()
    assert Store(data_dir).read(None, None).num_rows == 2
    assert read_csv(data_dir / "csv_dump" / "daily_dump.csv").num_rows == 1  # the 10th's row left the CSV


def test_start_up_in_a_child_process_builds_the_tiers(data_dir: Path) -> None:
    dst_history(data_dir)
    store = Store(data_dir, jobs=dataset_jobs.run_job)  # as the tray app runs: dataset work in dataset_jobs' child
    store.open_writer(local(2026, 4, 2, 12))
    store.close()
    raw = raw_rows(data_dir)
    assert_equal(*tier_reads.read_tier_files(data_dir, "hour", local(2026, 3, 28), local(2026, 3, 31)), brute(raw, HOUR))


def test_the_window_reader_adds_the_csv_rows_once(data_dir: Path) -> None:
    from trayapp.storage import csv_field

    dst_history(data_dir)
    rollups.ensure(data_dir)
    raw30 = read_day_file(Store(data_dir).day_path(date(2026, 3, 30)), ["timestamp", "cpu_percent", "memory_percent"])
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True)
    lines = ["timestamp,cpu_percent,memory_percent"]
    for stamp, cpu, memory in zip(*(raw30.column(n).to_pylist() for n in ("timestamp", "cpu_percent", "memory_percent"))):
        if stamp >= local(2026, 3, 30, 23, 59):  # left behind by a failed trim: rows the day file has too
            lines.append(f"{stamp.astimezone(BERLIN).isoformat()},{csv_field(cpu)},{csv_field(memory)}")
    assert len(lines) > 5
    lines += [f"{local(2026, 3, 31, 0, m, 30).isoformat()},{m}.5,2.0" for m in range(5)]
    csv.write_text("\n".join(lines) + "\n")
    t, stats = tier_reads.read_tier(data_dir, "minute", local(2026, 3, 30, 23), local(2026, 3, 31, 1), ["cpu_percent", "memory_percent"])
    truth = brute(raw30, MIN)
    truth = {b: v for b, v in truth.items() if b >= us(local(2026, 3, 30, 23))}
    for m in range(5):
        truth[us(local(2026, 3, 31, 0, m))] = {"cpu_percent": (m + 0.5, m + 0.5, m + 0.5, 1), "memory_percent": (2.0, 2.0, 2.0, 1)}
    assert_equal(t, {k: stats[k] for k in ("cpu_percent", "memory_percent")}, truth)
