"""Midnight in the tray app itself (``trayapp.storage.midnight``), without Arrow or a child: what it
writes equals what the child's rollover writes from the same samples, every file is read by
Arrow, pandas and DuckDB, and every case it cannot take goes to the child with nothing lost."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trayapp.storage import bins, child_job as dataset_jobs, csv_file, midnight, parquet_writer as parquet, tiers
from trayapp.storage.layout import day_path
from trayapp.model import Sample
from trayapp.storage.writer import Store

BERLIN = ZoneInfo("Europe/Berlin")
TODAY = datetime.now(BERLIN).date()
D = TODAY - timedelta(days=2)  # the day that rolls over at the test's midnight (minute copies are kept for recent days)


def at(day: date, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, h, mi, s, tzinfo=BERLIN).astimezone(timezone.utc)


def sample(t: datetime, i: int) -> Sample:
    # some columns empty now and then (a sensor that did not answer), one never filled
    return Sample(
        t, (i * 7.3) % 100, 40 + (i % 13) * 1.1, 55.5, net_recv_bytes_per_s=None if i % 5 == 0 else i * 1024.25,
        cpu_temperature_c=None if i % 7 else 40.0 + i % 3, load_percent=(i % 17) / 3,
    )


def recorder(data_dir: Path, start: datetime, retention_days: int = 0) -> Store:
    store = Store(data_dir, retention_days, jobs=dataset_jobs.run_job, minutes=True)
    store.open_writer(start)
    return store


def feed(store: Store, start: datetime, stop: datetime, step: float, child: bool = False) -> None:
    t, i = start, 0
    while t < stop:
        if child:
            store._drop_rows()  # no rows file: the child's midnight, as before
        assert store.append(sample(t, i))
        t += timedelta(seconds=step)
        i += 1


def history_before(data_dir: Path) -> None:
    """Two days of day files and tiers before D (written by a child at the writer's start)."""
    store = recorder(data_dir, at(D - timedelta(days=2)))
    feed(store, at(D - timedelta(days=2)), at(D), 60)
    store.close()


def twin(tmp_path: Path) -> tuple[Path, Path]:
    a = tmp_path / "here"
    history_before(a)
    b = tmp_path / "child"
    shutil.copytree(a, b)
    return a, b


def read(path: Path) -> pa.Table:
    return pq.read_table(path).replace_schema_metadata(None)


def assert_tiers_equal(a: Path, b: Path) -> None:
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.column_names == tb.column_names and ta.schema.remove_metadata() == tb.schema.remove_metadata()
    assert ta.num_rows == tb.num_rows
    for name in ta.column_names:
        x, y = ta.column(name).to_pylist(), tb.column(name).to_pylist()
        if name.endswith("_mean"):
            assert all((p is None and q is None) or p == pytest.approx(q, rel=1e-12) for p, q in zip(x, y)), name
        else:
            assert x == y, name
    ma, mb = (json.loads(t.schema.metadata[b"trayapp.rollup"]) for t in (ta, tb))
    assert ma["tier"] == mb["tier"] and ma["sources"].keys() == mb["sources"].keys()


@pytest.mark.parametrize("day, start_hour, history", [
    (D, 20, True),  # two days of history before it, a month's hour tier to fold into
    (date(2026, 10, 25), 0, False),  # 25 hours (the clocks go back)
    (date(2026, 3, 29), 0, False),  # 23 hours
    (date(2026, 10, 31), 21, False),  # the last of a month: the next rows start another month
])
@pytest.mark.slow  # whole days, both ways, file by file
def test_midnight_in_the_app_writes_what_the_child_writes(tmp_path: Path, caplog: pytest.LogCaptureFixture, day: date, start_hour: int, history: bool) -> None:
    if history:
        a, b = twin(tmp_path)
    else:
        a, b = tmp_path / "here", tmp_path / "child"
    D = day
    here, child = recorder(a, at(D, start_hour)), recorder(b, at(D, start_hour))
    assert here.rows is not None  # the start-up child wrote the rows file for the CSV it left
    with caplog.at_level(logging.INFO, logger="trayapp.storage"):
        feed(here, at(D, start_hour), at(D + timedelta(days=1), 0, 10), 1)
        feed(child, at(D, start_hour), at(D + timedelta(days=1), 0, 10), 1, child=True)
    assert "goes to a child" not in caplog.text and "stopped" not in caplog.text
    # the day file: the same rows, the same types, read by Arrow, pandas and DuckDB alike
    day_a, day_b = day_path(a, D), day_path(b, D)
    assert pq.ParquetFile(day_a).metadata.created_by == parquet.CREATED_BY  # written here, not by Arrow
    ta, tb = read(day_a), read(day_b)
    hours = (at(D + timedelta(days=1)) - at(D, start_hour)) / timedelta(hours=1)
    assert ta.schema == tb.schema and ta.num_rows == hours * 3600 and hours in (4, 3, 23, 24, 25)
    assert ta.equals(tb)
    assert ta.column("cpu_temperature_c").null_count == tb.column("cpu_temperature_c").null_count > 0
    pa_, pb = (pq.read_pandas(p).to_pandas() for p in (day_a, day_b))
    assert pa_.equals(pb)
    q = "select count(*), count(net_recv_bytes_per_s), round(sum(cpu_percent), 3), min(timestamp), max(timestamp) from read_parquet('{}')"
    assert duckdb.sql(q.format(day_a)).fetchall() == duckdb.sql(q.format(day_b)).fetchall()
    # every file of the dataset together, as a reader of the contract opens it
    dataset = "select count(*) from read_parquet('{}/Monitoring/*/*/*.parquet', hive_partitioning = true)"
    assert duckdb.sql(dataset.format(a)).fetchall() == duckdb.sql(dataset.format(b)).fetchall()
    # and through trayapp's own reader (status, export, the rules' seed), the day files of both writers together
    assert Store(a).read(None, None).equals(Store(b).read(None, None))
    # the tiers and the window's copies of them
    assert_tiers_equal(tiers.minute_path(a, D), tiers.minute_path(b, D))
    assert_tiers_equal(tiers.hour_path(a, D.year, D.month), tiers.hour_path(b, D.year, D.month))
    for tier, key in (("minute", D), ("hour", (D.year, D.month))):
        ca, cb = (tiers.read_cache(tiers.cache_path(x, tier, key)) for x in (a, b))
        if tier == "minute" and not tiers.cache_wanted("minute", D):
            assert ca is None and cb is None  # older than the window reads minutes of
            continue
        assert ca is not None and cb is not None
        np.testing.assert_array_equal(ca[0], cb[0])
        for name in cb[1]:
            np.testing.assert_allclose(np.vstack(ca[1][name]), np.vstack(cb[1][name]), rtol=1e-12, equal_nan=True)
        assert ca[2] == {k: tiers.stamp(day_path(a, date.fromisoformat(k))) for k in ca[2]}
    # the CSV keeps today's rows, byte for byte; the window's minutes forget yesterday
    assert here.csv_path.read_bytes() == child.csv_path.read_bytes()
    assert here._min_day == child._min_day == D + timedelta(days=1)
    (ba, sa), (bb, sb) = here.minutes.snapshot(), child.minutes.snapshot()
    np.testing.assert_array_equal(ba, bb)
    assert len(ba) == 10
    for name in sb:
        np.testing.assert_allclose(np.vstack(sa[name]), np.vstack(sb[name]), rtol=1e-12, equal_nan=True)
    # and the next midnight goes the same way, from the rows kept for today
    assert here.rows is not None and here.rows.count == 600
    feed(here, at(D + timedelta(days=1), 0, 10), at(D + timedelta(days=2), 0, 1), 30)
    feed(child, at(D + timedelta(days=1), 0, 10), at(D + timedelta(days=2), 0, 1), 30, child=True)
    assert read(day_path(a, D + timedelta(days=1))).equals(read(day_path(b, D + timedelta(days=1))))
    assert here.csv_path.read_bytes() == child.csv_path.read_bytes()
    here.close()
    child.close()
    # the next start finds every tier fresh: nothing rebuilt
    from trayapp.storage import tier_builder as rollups

    assert rollups.ensure(a) == 0


@pytest.mark.parametrize("minutes", [True, False])  # the tray app; run --headless
def test_a_recorder_never_loads_arrow_nor_starts_a_child_at_midnight(tmp_path: Path, minutes: bool) -> None:
    a = tmp_path / "data"
    history_before(a)
    start, stop = at(D, 23, 50), at(D + timedelta(days=1), 0, 5)
    code = f"""
import sys
from datetime import datetime, timedelta
from pathlib import Path
from trayapp.storage import child_job as dataset_jobs
from trayapp.model import Sample
from trayapp.storage.writer import Store
store = Store(Path({str(a)!r}), jobs=dataset_jobs.run_job, minutes={minutes})  # as the tray app (minutes) and run --headless make it
store.open_writer(datetime.fromisoformat({start.isoformat()!r}))  # the start-up child
dataset_jobs.child_command = lambda: [sys.executable, "-c", "raise SystemExit('a child was started')"]
t = datetime.fromisoformat({start.isoformat()!r})
while t < datetime.fromisoformat({stop.isoformat()!r}):
    assert store.append(Sample(t, 10.0, 20.0, 30.0))
    t += timedelta(seconds=1)
print(store.rows is not None, "pyarrow" in sys.modules, "pandas" in sys.modules, store.day_path(store._min_day - timedelta(days=1)).exists())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True", "False", "False", "True"], done.stderr[-2000:]


@pytest.mark.slow  # a child rollover per case
def test_what_midnight_in_the_app_cannot_take_goes_to_the_child(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a = tmp_path / "data"
    history_before(a)
    store = recorder(a, at(D, 23))
    feed(store, at(D, 23), at(D, 23, 30), 10)
    # a day file for D is there already (an earlier start rolled part of the day over): a merge
    other = tmp_path / "other"
    extra = recorder(other, at(D, 1))
    feed(extra, at(D, 1), at(D, 1, 5), 60)
    extra.close()
    recorder(other, at(D + timedelta(days=1))).close()  # its start-up rolls D over
    day_path(a, D).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(day_path(other, D), day_path(a, D))
    with caplog.at_level(logging.INFO, logger="trayapp.storage"):
        feed(store, at(D, 23, 30), at(D + timedelta(days=1), 0, 1), 10)
    assert "goes to a child: " in caplog.text and "has a day file to merge into" in caplog.text
    ts = read(day_path(a, D)).column("timestamp").to_pylist()
    assert len(ts) == len(set(ts)) == 5 + 2 * 180  # merged, each row once
    assert store.rows is not None  # the child wrote it afresh
    store.close()


@pytest.mark.slow  # a whole day through the child
def test_a_csv_changed_behind_the_app_goes_to_the_child(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a = tmp_path / "data"
    history_before(a)
    store = recorder(a, at(D, 23))
    feed(store, at(D, 23), at(D, 23, 59), 60)
    with open(store.csv_path, "ab") as f:  # another program appends a line of its own
        f.write(at(D, 23, 59, 30).astimezone(BERLIN).isoformat(timespec="microseconds").encode() + b",1,2,3" + b"," * 12 + b"\n")
    with caplog.at_level(logging.INFO, logger="trayapp.storage"):
        feed(store, at(D + timedelta(days=1)), at(D + timedelta(days=1), 0, 1), 60)
    assert "the CSV is not what the rows file was made from" in caplog.text
    table = read(day_path(a, D))
    assert table.num_rows == 60 and 1.0 in table.column("cpu_percent").to_pylist()  # its line too
    store.close()


def test_a_failure_half_way_loses_and_doubles_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    a = tmp_path / "data"
    history_before(a)
    store = recorder(a, at(D, 23))
    feed(store, at(D, 23), at(D, 23, 59, 59), 1)

    def torn(*args: object) -> np.ndarray:  # the day file is written; its read-back finds it wrong
        raise ValueError("not a Parquet file")

    monkeypatch.setattr(midnight, "read_back", torn)  # the name midnight reads back with
    with caplog.at_level(logging.WARNING, logger="trayapp.storage"):
        feed(store, at(D + timedelta(days=1)), at(D + timedelta(days=1), 0, 0, 5), 1)
    assert "midnight rollover in the app stopped" in caplog.text
    monkeypatch.undo()
    ts = read(day_path(a, D)).column("timestamp").to_pylist()
    assert len(ts) == 3599 and len(set(ts)) == 3599  # every row once: the child did it
    assert store.csv_path.read_bytes().count(b"\n") == 1 + 5
    feed(store, at(D + timedelta(days=1), 0, 0, 5), at(D + timedelta(days=2), 0, 5), 600)  # the next midnight, here again
    assert "stopped" not in caplog.text.split("midnight rollover in the app stopped")[1]
    assert store.rows is not None and day_path(a, D + timedelta(days=1)).exists()
    store.close()


def test_a_gpu_that_appears_mid_day_widens_the_rows_and_midnight_stays_in_the_app(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from trayapp.model import GpuReading

    a, b = twin(tmp_path)
    stores = {"here": recorder(a, at(D, 23)), "child": recorder(b, at(D, 23))}
    gpu = (GpuReading(0, "H100", 50.0, 10.0, 1000.0, 80000.0, 40.0, 300.0),)
    with caplog.at_level(logging.INFO, logger="trayapp.storage"):
        for name, store in stores.items():
            feed(store, at(D, 23), at(D, 23, 30), 60, child=name == "child")
            assert store.append(Sample(at(D, 23, 45), 1.0, 2.0, 3.0, gpus=gpu))  # a GPU appeared: the CSV gets its columns
            feed(store, at(D, 23, 46), at(D + timedelta(days=1), 0, 1), 60, child=name == "child")
    assert "goes to a child" not in caplog.text and "stopped" not in caplog.text
    here = stores["here"]
    assert pq.ParquetFile(day_path(a, D)).metadata.created_by == parquet.CREATED_BY  # the app's own midnight
    table = read(day_path(a, D))
    assert table.equals(read(day_path(b, D))) and table.num_rows == 30 + 1 + 14
    assert table.column("gpu0_util_percent").to_pylist()[30] == 50.0 and table.column("gpu0_util_percent").null_count == 44
    assert here.csv_path.read_bytes() == stores["child"].csv_path.read_bytes()
    assert here.rows is not None and here.rows.names == here._header[1:]
    for store in stores.values():
        store.close()


def test_retention_in_the_app_removes_the_days_tiers_as_ensure_does(tmp_path: Path) -> None:
    a, b = twin(tmp_path)
    here, child = recorder(a, at(D, 23), retention_days=2), recorder(b, at(D, 23), retention_days=2)
    feed(here, at(D, 23), at(D + timedelta(days=1), 0, 1), 60)
    feed(child, at(D, 23), at(D + timedelta(days=1), 0, 1), 60, child=True)
    gone = D - timedelta(days=2)
    for x in (a, b):
        assert not day_path(x, gone).exists() and not tiers.minute_path(x, gone).exists()
        assert tiers.read_cache(tiers.cache_path(x, "minute", gone)) is None
    months = {(d.year, d.month) for d in (gone, D)}
    for key in months:
        pa_, pb = tiers.hour_path(a, *key), tiers.hour_path(b, *key)
        assert pa_.exists() == pb.exists()
        if pb.exists():
            assert_tiers_equal(pa_, pb)
            ca, cb = (tiers.read_cache(tiers.cache_path(x, "hour", key)) for x in (a, b))
            np.testing.assert_array_equal(ca[0], cb[0])
            assert ca[2].keys() == cb[2].keys()
    here.close()
    child.close()


@pytest.mark.parametrize("keep", [0, 1, 2, 999, 4000, 5000])
def test_the_rows_kept_are_found_from_the_end_of_the_csv(tmp_path: Path, keep: int) -> None:
    lines = [f"2026-11-28T00:00:{i:06d}+01:00,{i},,{'x' * (i % 97)}\n".encode() for i in range(5000)]  # lines of every length
    path = tmp_path / "daily_dump.csv"
    path.write_bytes(b"timestamp,a,b,c\n" + b"".join(lines))
    assert csv_file.last_lines(path, keep) == b"timestamp,a,b,c\n" + b"".join(lines[len(lines) - keep:] if keep else [])
    with pytest.raises(OSError, match="fewer lines"):
        csv_file.last_lines(path, 5001)


# ------------------------------------------------------------ kill -9 during midnight in the app

_RECORDER = r"""
import sys, time
from datetime import datetime, timedelta
from pathlib import Path
from trayapp.storage import child_job as dataset_jobs
from trayapp.model import Sample
from trayapp.storage.writer import Store
data_dir, midnight = Path(sys.argv[1]), datetime.fromisoformat(sys.argv[2])
store = Store(data_dir, jobs=dataset_jobs.run_job, minutes=True)
store.open_writer(midnight - timedelta(seconds=1))
print("ready" if store.rows is not None else "no rows file", flush=True)
sys.stdin.readline()
t = midnight
while True:  # the midnight, then today's samples as fast as they come
    store.append(Sample(t, 1.0, 2.0, 3.0))
    t += timedelta(seconds=1)
    time.sleep(0.001)
"""


def _stamps(data_dir: Path) -> tuple[set[int], int]:
    """Every timestamp on disk (µs; the day files through DuckDB, the CSV's complete lines) and
    how many rows the day files hold."""
    files = sorted(str(p) for p in (data_dir / "Monitoring").glob("Year=*/Month=*/*.parquet"))
    seen: set[int] = set()
    rows = 0
    if files:
        stamps = [r[0] for r in duckdb.sql(f"select epoch_us(timestamp) from read_parquet({files!r}, union_by_name = true)").fetchall()]
        rows = len(stamps)
        seen.update(stamps)
    data = (data_dir / "csv_dump" / "daily_dump.csv").read_bytes()
    for line in data[: data.rfind(b"\n") + 1].decode().splitlines()[1:]:
        seen.add(round(datetime.fromisoformat(line.split(",")[0]).timestamp() * 1_000_000))
    return seen, rows


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _until(predicate: Any, rng: Any) -> None:
    """Poll ``predicate`` tightly (2 s at most); none: a random moment in the first 0.15 s."""
    if predicate is None:
        time.sleep(rng.uniform(0.0, 0.15))
        return
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.0002)


@pytest.mark.slow  # a kill -9 series
@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX process groups")
def test_kill_9_during_midnight_in_the_app_loses_and_doubles_nothing(data_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(20261129)
    folder = lambda day: day_path(data_dir, day).parent  # noqa: E731
    signs = [  # kill the moment midnight is at each of its steps (tens of milliseconds in all), or at random
        lambda day: lambda: any(n.startswith(f".{day.day}.parquet.") for n in _names(folder(day))),  # the day file half written
        lambda day: lambda: day_path(data_dir, day).exists(),  # the day file in place, the CSV not cut yet
        lambda day: lambda: tiers.minute_path(data_dir, day).exists(),  # its minute tier in place
        lambda day: None,
    ]
    expected: set[int] = set()
    for k in range(8):
        day = TODAY - timedelta(days=3 + 2 * k)
        recorder(data_dir, at(TODAY)).close()  # a clean start rolls whatever the last round left
        start = datetime(day.year, day.month, day.day, tzinfo=BERLIN)
        lines = [(start + timedelta(seconds=2 * i)).isoformat(timespec="microseconds") + f",{i % 100}.0,50.0,70.0" for i in range(43_199)]
        (data_dir / "csv_dump" / "daily_dump.csv").write_text("timestamp,cpu_percent,memory_percent,disk_percent\n" + "\n".join(lines) + "\n")
        expected |= {round(datetime.fromisoformat(line.split(",")[0]).timestamp() * 1_000_000) for line in lines}
        midnight_at = datetime.combine(day + timedelta(days=1), datetime.min.time(), BERLIN).isoformat()
        with subprocess.Popen([sys.executable, "-c", _RECORDER, str(data_dir), midnight_at], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, start_new_session=True, text=True) as proc:
            try:
                assert proc.stdout is not None and proc.stdin is not None
                assert proc.stdout.readline().strip() == "ready"
                proc.stdin.write("go\n")
                proc.stdin.flush()
                _until(signs[k % len(signs)](day), rng)
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
        seen, _ = _stamps(data_dir)
        assert not expected - seen, f"round {k}: {len(expected - seen)} row(s) lost by the kill"
        expected |= seen
        store = recorder(data_dir, at(TODAY))  # the next start mends what the kill left
        store.close()
        seen, rows = _stamps(data_dir)
        assert not expected - seen, f"round {k}: {len(expected - seen)} row(s) lost after the restart"
        assert rows == len(seen), f"round {k}: {rows - len(seen)} row(s) doubled in the day files"
        # the day's tiers count exactly its rows: no half tier, none stale
        tier = pq.read_table(tiers.minute_path(data_dir, day), columns=["cpu_percent_count"])
        assert sum(tier.column(0).to_pylist()) == pq.read_metadata(day_path(data_dir, day)).num_rows == 43_199
    assert not list(data_dir.rglob("*.tmp"))


@pytest.mark.parametrize("first, then", [
    (datetime(1969, 12, 31, 12, tzinfo=timezone.utc), datetime(1970, 1, 2, 12, tzinfo=timezone.utc)),
    (datetime(2200, 1, 1, 12, tzinfo=timezone.utc), datetime(2200, 1, 2, 12, tzinfo=timezone.utc)),
])
def test_a_clock_far_off_goes_to_the_child_which_keeps_its_rows_aside(tmp_path: Path, first: datetime, then: datetime, caplog: pytest.LogCaptureFixture) -> None:
    store = recorder(tmp_path, first)
    with caplog.at_level(logging.INFO, logger="trayapp.storage"):
        for t in (first, first + timedelta(seconds=1), then):
            assert store.append(Sample(t, 1.0, 2.0, 3.0))
    assert "before 1970 or after 2199" in caplog.text
    assert not list((tmp_path / "Monitoring").rglob("*.parquet"))  # no day file of a year the store does not read
    assert list((tmp_path / "csv_dump").glob(".rejected-*.csv"))  # the bytes kept, as the child keeps them
    store.close()


# ------------------------------------------------------------ a real recorder, a real midnight


@pytest.mark.slow  # a real midnight
@pytest.mark.skipif(shutil.which("zic") is None, reason="needs zic (Debian's libc-bin) to make a zone whose midnight is a minute away")
def test_run_headless_crosses_a_real_midnight_by_itself(tmp_path: Path) -> None:
    # A zone (compiled with zic) whose local midnight falls 20-80 s from now: the real
    # `trayapp run --headless` process, the real clock, no stand-in for anything.
    t = time.time() + 20
    offset = int((86400 - t % 86400) // 60 * 60)  # local time at t: within the minute before midnight
    if offset >= 12 * 3600:
        offset -= 86400
    sign, minutes = ("-" if offset < 0 else ""), abs(offset) // 60
    (tmp_path / "soon.zi").write_text(f"Zone Test/Soon {sign}{minutes // 60}:{minutes % 60:02d} - TST\n")
    subprocess.run(["zic", "-d", str(tmp_path / "zones"), str(tmp_path / "soon.zi")], check=True)
    zone = tmp_path / "zones" / "Test" / "Soon"
    data = tmp_path / "data"
    env = {**os.environ, "TZ": f":{zone}"}
    with subprocess.Popen([sys.executable, "-m", "trayapp.cli", "--data-dir", str(data), "-v", "run", "--headless", "--interval", "0.5"],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        try:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and not list((data / "Monitoring").rglob("*.parquet")):
                time.sleep(0.5)
            time.sleep(2)  # a few of the new day's samples
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
        finally:
            proc.terminate()
        err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]
    (day_file,) = list((data / "Monitoring").rglob("*.parquet"))
    assert pq.ParquetFile(day_file).metadata.created_by == parquet.CREATED_BY  # the recorder's own midnight
    assert "goes to a child" not in err and "stopped (" not in err
    assert peak_kb / 1024 <= 45  # the run --headless target, midnight included (Arrow in-process alone is ~40 MB more)
    assert tiers.minute_path(data, day_file_date(day_file)).exists()  # and its tier
    stamps = [r[0] for r in duckdb.sql(f"select epoch_us(timestamp) from read_parquet('{day_file}')").fetchall()]
    csv = (data / "csv_dump" / "daily_dump.csv").read_text().splitlines()[1:]
    later = [round(datetime.fromisoformat(line.split(",")[0]).timestamp() * 1e6) for line in csv]
    assert later and len(set(stamps) | set(later)) == len(stamps) + len(later)  # each sample once, on either side of midnight
    with open(zone, "rb") as f:
        tz = ZoneInfo.from_file(f, key="Soon")
    assert {datetime.fromtimestamp(us / 1e6, tz).date() for us in stamps} == {day_file_date(day_file)}
    assert {datetime.fromtimestamp(us / 1e6, tz).date() for us in later} == {day_file_date(day_file) + timedelta(days=1)}


def day_file_date(path: Path) -> date:
    return date(int(path.parent.parent.name[5:]), int(path.parent.name[6:]), int(path.stem))


@pytest.mark.parametrize("tamper", ["values", "times", "nan"])
@pytest.mark.slow  # over a second or two: `make test-all`
def test_a_rows_file_changed_in_place_is_not_used_and_the_day_has_the_csv_values(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, tamper: str) -> None:
    # the same size, other bytes: the app's midnight must not write them into the day file
    a, b = tmp_path / "data", tmp_path / "truth"
    history_before(a)
    shutil.copytree(a, b)
    store, truth = recorder(a, at(D, 23)), recorder(b, at(D, 23))
    feed(store, at(D, 23), at(D, 23, 59), 10)
    feed(truth, at(D, 23), at(D, 23, 59), 10, child=True)
    rows = np.fromfile(store.rows.path).reshape(-1, store.rows.width)
    if tamper == "values":
        rows[::3, 1] = 12345.0  # cpu_percent
    elif tamper == "times":
        rows[:, 0] += 1  # a microsecond later: every row at the wrong time
    else:
        rows[:, 2] = np.nan  # memory_percent gone
    with open(store.rows.path, "r+b") as f:  # in place, as another program would
        f.write(rows.tobytes())
    with caplog.at_level(logging.INFO, logger="trayapp.storage"):
        feed(store, at(D + timedelta(days=1)), at(D + timedelta(days=1), 0, 1), 10)
        feed(truth, at(D + timedelta(days=1)), at(D + timedelta(days=1), 0, 1), 10, child=True)
    assert "the rows file is not what was written to it" in caplog.text
    got, want = read(day_path(a, D)), read(day_path(b, D))
    assert got.num_rows == want.num_rows == 354
    for name in want.column_names:  # every value exactly as the CSV had it
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    assert store.rows is not None and store.rows.intact()  # the child wrote it afresh
    store.close()
    truth.close()
