"""The store against real files: CSV day file, Parquet day files, rollover, crashes, old data."""

from __future__ import annotations

import logging
import shutil
import signal
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trayapp.storage import child_job as dataset_jobs
from trayapp.model import GpuReading, Sample
from trayapp.storage.writer_lock import DataDirBusy
from trayapp.storage.writer import Store
from trayapp.storage.csv_file import read_csv
from trayapp.synthetic import write_history

BERLIN = ZoneInfo("Europe/Berlin")


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=BERLIN).astimezone(timezone.utc)


def sample(at: datetime, cpu: float = 10.0, gpus: tuple[GpuReading, ...] = ()) -> Sample:
    return Sample(at, cpu, 50.0, 70.0, gpus)


def opened(data_dir: Path, now: datetime) -> Store:
    store = Store(data_dir)
    store.open_writer(now)
    return store


def all_rows(store: Store) -> pa.Table:
    return store.read(None, None)


def test_append_then_read_round_trips(data_dir: Path) -> None:
    t0 = local(2026, 3, 10, 12)
    store = opened(data_dir, t0)
    for i in range(5):
        assert store.append(sample(t0 + timedelta(seconds=2 * i), cpu=float(i)))
    store.close()
    table = Store(data_dir).read(t0 - timedelta(seconds=1), t0 + timedelta(minutes=1))
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.column("cpu_percent").to_pylist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert table.column("timestamp").to_pylist()[0] == t0
    line = (data_dir / "csv_dump" / "daily_dump.csv").read_text().splitlines()[1]
    assert line.startswith("2026-03-10T12:00:00.000000+01:00,0.0,50.0,70.0")  # ISO-8601, local offset


def test_range_is_half_open(data_dir: Path) -> None:
    t0 = local(2026, 3, 10, 12)
    store = opened(data_dir, t0)
    for i in range(3):
        store.append(sample(t0 + timedelta(seconds=i)))
    got = store.read(t0, t0 + timedelta(seconds=2)).column("timestamp").to_pylist()
    assert got == [t0 + timedelta(seconds=1), t0 + timedelta(seconds=2)]


def test_first_sample_of_a_new_local_day_rolls_over(data_dir: Path) -> None:
    store = opened(data_dir, local(2026, 3, 10, 23, 59, 50))
    for s in (50, 52, 54, 56, 58):
        store.append(sample(local(2026, 3, 10, 23, 59, s)))
    store.append(sample(local(2026, 3, 11, 0, 0, 0)))
    day = pq.read_table(data_dir / "Monitoring" / "Year=2026" / "Month=3" / "10.parquet")
    assert day.num_rows == 5
    assert day.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    csv = read_csv(store.csv_path)
    assert csv is not None and csv.num_rows == 1
    assert len(all_rows(store)) == 6


def test_day_files_follow_local_midnight_not_utc(data_dir: Path) -> None:
    # 00:30 Berlin is 23:30 UTC the day before: it belongs to the local day.
    store = opened(data_dir, local(2026, 3, 11, 0, 30))
    store.append(sample(local(2026, 3, 11, 0, 30)))
    store.append(sample(local(2026, 3, 12, 0, 30)))
    assert (data_dir / "Monitoring" / "Year=2026" / "Month=3" / "11.parquet").exists()
    assert not (data_dir / "Monitoring" / "Year=2026" / "Month=3" / "10.parquet").exists()


def test_start_up_rolls_over_earlier_days(data_dir: Path) -> None:
    write_history(data_dir, local(2026, 3, 8, 22), local(2026, 3, 10, 1), 60, {"cpu_percent": 10.0, "memory_percent": 20.0, "disk_percent": 30.0}, today_in_csv=False)
    # move it all into the CSV as if the app had been down across days
    store = Store(data_dir)
    everything = all_rows(store)
    shutil.rmtree(data_dir / "Monitoring")
    _write_csv(store, everything)
    store = opened(data_dir, local(2026, 3, 10, 12))
    for d in (8, 9):
        assert (data_dir / "Monitoring" / "Year=2026" / "Month=3" / f"{d}.parquet").exists()
    csv = read_csv(store.csv_path)
    assert csv is not None and csv.num_rows == 61  # 00:00 … 01:00 on the 10th stay in the CSV
    assert all_rows(store).num_rows == everything.num_rows


def _write_csv(store: Store, table: pa.Table) -> None:
    store.csv_path.parent.mkdir(parents=True, exist_ok=True)
    frame = table.to_pandas()
    frame["timestamp"] = frame["timestamp"].map(lambda t: t.tz_convert(BERLIN).isoformat())
    frame.to_csv(store.csv_path, index=False)


def test_rollover_is_idempotent_after_a_crash_before_the_trim(data_dir: Path) -> None:
    store = opened(data_dir, local(2026, 3, 10, 23, 0))
    for m in range(10):
        store.append(sample(local(2026, 3, 10, 23, m)))
    saved_csv = store.csv_path.read_bytes()
    store.append(sample(local(2026, 3, 11, 0, 0)))  # rollover: day file written, CSV trimmed
    store.close()
    # a crash after the day file was renamed into place but before the CSV was trimmed:
    store.csv_path.write_bytes(saved_csv)
    again = opened(data_dir, local(2026, 3, 11, 0, 1))
    day = pq.read_table(data_dir / "Monitoring" / "Year=2026" / "Month=3" / "10.parquet")
    assert day.num_rows == 10
    assert all_rows(again).num_rows == 10


def test_readers_never_see_a_row_twice_mid_rollover(data_dir: Path) -> None:
    store = opened(data_dir, local(2026, 3, 10, 23, 0))
    for m in range(10):
        store.append(sample(local(2026, 3, 10, 23, m)))
    saved_csv = store.csv_path.read_bytes()
    store.append(sample(local(2026, 3, 11, 0, 0)))
    store.csv_path.write_bytes(saved_csv)  # the in-between state a reader may meet
    assert Store(data_dir).read(None, None).num_rows == 10


def test_rollover_merges_with_an_existing_day_file(data_dir: Path) -> None:
    write_history(data_dir, local(2026, 3, 10, 8), local(2026, 3, 10, 9), 60, {"cpu_percent": 1.0}, today_in_csv=False)
    store = opened(data_dir, local(2026, 3, 10, 20))
    store.append(sample(local(2026, 3, 10, 20)))
    store.append(sample(local(2026, 3, 11, 0, 5)))
    day = Store(data_dir).read(local(2026, 3, 10, 0), local(2026, 3, 11, 0))
    assert day.num_rows == 61
    assert day.column("memory_percent").null_count == 60  # the older file had no such column


def test_torn_last_line_is_skipped_and_mended(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    t0 = local(2026, 3, 10, 12)
    store = opened(data_dir, t0)
    for i in range(3):
        store.append(sample(t0 + timedelta(seconds=i)))
    store.close()
    with open(store.csv_path, "ab") as f:
        f.write(b"2026-03-10T12:00:03.000000+01:00,12.")  # the crash hit mid-line
    assert Store(data_dir).read(None, None).num_rows == 3  # a reader skips it
    with caplog.at_level(logging.WARNING):
        store = opened(data_dir, t0 + timedelta(seconds=4))
    assert "torn" in caplog.text
    store.append(sample(t0 + timedelta(seconds=4)))
    assert Store(data_dir).read(None, None).num_rows == 4


def test_corrupt_lines_are_skipped_with_one_warning(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text(
        "timestamp,cpu_percent,memory_percent,disk_percent\n"
        "2026-03-10T12:00:00+01:00,1.0,2.0,3.0\n"
        "garbage\n"
        "2026-03-10T12:00:02+01:00,not-a-number,2.0,3.0\n"
        "not-a-time,1.0,2.0,3.0\n"
        "2026-03-10T12:00:04+01:00,4.0,2.0,3.0,9,9\n"
        "2026-03-10T12:00:06+01:00,6.0,2.0,3.0\n"
    )
    with caplog.at_level(logging.WARNING):
        table = Store(data_dir).read(None, None)
    # a line wider than the header reads the columns the header names (its extra bytes are kept
    # aside at rollover); one field, or no time: skipped
    assert table.column("cpu_percent").to_pylist() == [1.0, None, 4.0, 6.0]
    assert caplog.text.count("malformed") == 1


def test_corrupt_parquet_file_is_skipped_and_the_rest_reads(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_history(data_dir, local(2026, 3, 8, 0), local(2026, 3, 10, 12), 600, {"cpu_percent": 5.0}, today_in_csv=False)
    broken = data_dir / "Monitoring" / "Year=2026" / "Month=3" / "9.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    with caplog.at_level(logging.WARNING):
        table = Store(data_dir).read(local(2026, 3, 7), local(2026, 3, 11))
    assert table.num_rows == 144 + 72
    assert caplog.text.count("9.parquet") == 1


def test_rollover_into_a_corrupt_day_file_keeps_it_aside(data_dir: Path) -> None:
    broken = data_dir / "Monitoring" / "Year=2026" / "Month=3" / "10.parquet"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"junk")
    store = opened(data_dir, local(2026, 3, 10, 23))
    store.append(sample(local(2026, 3, 10, 23)))
    store.append(sample(local(2026, 3, 11, 1)))
    assert pq.read_table(broken).num_rows == 1
    kept = list(broken.parent.glob(".10.parquet.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"junk"


def test_only_the_day_files_a_range_needs_are_opened(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_history(data_dir, local(2026, 1, 1), local(2026, 3, 10, 12), 3600, {"cpu_percent": 5.0}, today_in_csv=False)
    (data_dir / "Monitoring" / "Year=2026" / "Month=1" / "15.parquet").write_bytes(b"junk")
    with caplog.at_level(logging.WARNING):
        table = Store(data_dir).read(local(2026, 3, 9), local(2026, 3, 10, 12))
    assert table.num_rows == 36
    assert "15.parquet" not in caplog.text  # never opened
    with caplog.at_level(logging.WARNING):
        Store(data_dir).read(None, None)
    assert "15.parquet" in caplog.text


def test_notebook_files_read_as_local_time(data_dir: Path) -> None:
    month = data_dir / "Monitoring" / "Year=2018" / "Month=5"
    month.mkdir(parents=True)
    # as the notebook wrote them: pd.read_csv text straight to Parquet, and naive datetimes
    as_text = pd.DataFrame({"timestamp": ["2018-05-15 17:02:53.037847", "2018-05-15 17:06:43.541909"], "cpu_percent": [24.6, 14.5], "memory_percent": [22.8, 22.6], "disk_percent": [98.0, 98.0]})
    pq.write_table(pa.Table.from_pandas(as_text), month / "15.parquet", compression="snappy")
    naive = as_text.assign(timestamp=pd.to_datetime(as_text["timestamp"]) + pd.Timedelta(days=1))
    pq.write_table(pa.Table.from_pandas(naive), month / "16.parquet")
    table = Store(data_dir).read(None, None)
    stamps = table.column("timestamp").to_pylist()
    assert stamps[0] == datetime(2018, 5, 15, 17, 2, 53, 37847, tzinfo=BERLIN)
    assert stamps[2] == datetime(2018, 5, 16, 17, 2, 53, 37847, tzinfo=BERLIN)
    assert table.column("cpu_percent").to_pylist() == [24.6, 14.5, 24.6, 14.5]


def test_notebook_csv_dump_with_naive_timestamps_rolls_over(data_dir: Path) -> None:
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text("timestamp,cpu_percent,memory_percent,disk_percent\n2018-05-15 17:02:53.037847,24.6,22.8,98.0\n")
    store = opened(data_dir, local(2026, 3, 10, 12))
    assert (data_dir / "Monitoring" / "Year=2018" / "Month=5" / "15.parquet").exists()
    assert store.read(None, None).column("timestamp").to_pylist() == [datetime(2018, 5, 15, 17, 2, 53, 37847, tzinfo=BERLIN)]


def test_a_gpu_column_appearing_later_reads_as_null_before(data_dir: Path) -> None:
    store = opened(data_dir, local(2026, 3, 10, 22))
    store.append(sample(local(2026, 3, 10, 22)))
    store.append(sample(local(2026, 3, 11, 9)))  # rolls the 10th over
    gpu = (GpuReading(0, "H100", 99.0, 1.67, 56.0),)
    store.append(sample(local(2026, 3, 11, 10), gpus=gpu))  # the CSV gains columns mid-day
    table = Store(data_dir).read(None, None, columns=["cpu_percent", "gpu0_util_percent"])
    assert table.column("gpu0_util_percent").to_pylist() == [None, None, 99.0]
    store.append(sample(local(2026, 3, 12, 1)))  # roll the 11th, with its two kinds of rows
    day = pq.read_table(data_dir / "Monitoring" / "Year=2026" / "Month=3" / "11.parquet")
    assert day.column("gpu0_temperature_c").to_pylist() == [None, 56.0]


def test_retention_deletes_whole_old_day_files(data_dir: Path) -> None:
    write_history(data_dir, local(2026, 2, 20), local(2026, 3, 10), 3600, {"cpu_percent": 5.0}, today_in_csv=False)
    store = Store(data_dir, retention_days=7)
    store.open_writer(local(2026, 3, 10, 12))
    days = sorted(day for day, _ in store.day_files())
    assert days[0] == date(2026, 3, 3)
    assert not (data_dir / "Monitoring" / "Year=2026" / "Month=2").exists()


def test_a_clock_jumping_back_and_forth_never_writes_a_day_twice_or_drops_one(data_dir: Path) -> None:
    store = opened(data_dir, local(2026, 3, 10, 23, 59))
    stamps = [
        local(2026, 3, 10, 23, 59, 58),
        local(2026, 3, 11, 0, 0, 1),  # midnight: rollover of the 10th
        local(2026, 3, 10, 23, 59, 59),  # NTP steps back across midnight
        local(2026, 3, 11, 0, 0, 2),  # and forward again: the 10th is merged, not duplicated
        local(2026, 3, 13, 9),  # suspended for two days
        local(2026, 3, 12, 9),  # and a wrong clock after resume
        local(2026, 3, 14, 9),
    ]
    for i, at in enumerate(stamps):
        store.append(sample(at, cpu=float(i)))
    table = Store(data_dir).read(None, None)
    assert sorted(table.column("cpu_percent").to_pylist()) == [float(i) for i in range(len(stamps))]
    ten = pq.read_table(data_dir / "Monitoring" / "Year=2026" / "Month=3" / "10.parquet")
    assert ten.num_rows == 2


def test_daylight_saving_change_keeps_every_sample(data_dir: Path) -> None:
    # 2026-10-25 in Berlin: 03:00 CEST becomes 02:00 CET, so 02:xx happens twice
    start = local(2026, 10, 25, 1, 30)
    store = opened(data_dir, start)
    at = start
    n = 0
    while at < local(2026, 10, 26, 0, 30):
        store.append(sample(at))
        at += timedelta(minutes=10)
        n += 1
    table = Store(data_dir).read(None, None)
    assert table.num_rows == n
    assert pq.read_table(data_dir / "Monitoring" / "Year=2026" / "Month=10" / "25.parquet").num_rows == n - 3


def test_only_one_writer_and_readers_work_alongside(data_dir: Path) -> None:
    t0 = local(2026, 3, 10, 12)
    first = opened(data_dir, t0)
    first.append(sample(t0))
    with pytest.raises(DataDirBusy, match="already recording"):
        Store(data_dir).open_writer(t0)
    assert Store(data_dir).read(None, None).num_rows == 1
    first.close()
    opened(data_dir, t0).close()  # free again once the first has gone


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE (POSIX)")
def test_a_full_disk_loses_the_sample_not_the_program_or_the_file(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    import resource

    t0 = local(2026, 3, 10, 12)
    store = opened(data_dir, t0)
    store.append(sample(t0))
    good = store.csv_path.read_bytes()
    # the file may not grow past its size plus 10 bytes: the next line is cut short, as on a full disk
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def full(seconds: list[int]) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (store.csv_path.stat().st_size + 10, old_limit[1]))
        try:
            for s in seconds:
                assert store.append(sample(t0 + timedelta(seconds=s))) is False
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)

    try:
        with caplog.at_level(logging.WARNING):
            full([1, 2])
            assert caplog.text.count("cannot write") == 1  # once an outage, not once a sample
            assert store.csv_path.read_bytes() == good  # no torn line left behind
            assert store.append(sample(t0 + timedelta(seconds=3)))  # space again: recording goes on
            assert caplog.text.count("writing to") == 1 and "2 sample(s) were not kept" in caplog.text
            assert store.append(sample(t0 + timedelta(seconds=4)))
            full([5])  # a disk hovering at full: the next outage within 10 minutes is not said again
            assert store.append(sample(t0 + timedelta(seconds=6)))
            assert caplog.text.count("cannot write") == 1 and caplog.text.count("writing to") == 1
            store.LOST_SAY_EVERY = 0.0  # as if weeks had passed: a new outage is said, with what went unsaid
            full([7, 8])
            assert caplog.text.count("cannot write") == 2
            assert store.append(sample(t0 + timedelta(seconds=9)))
            assert caplog.text.count("writing to") == 2 and "3 sample(s) were not kept" in caplog.text
    finally:
        signal.signal(signal.SIGXFSZ, old_handler)
    assert Store(data_dir).read(None, None).num_rows == 5
    store.close()


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE (POSIX)")
def test_a_full_disk_while_the_header_is_written_leaves_no_headless_rows(data_dir: Path) -> None:
    import resource

    t0 = local(2026, 3, 10, 12)
    store = opened(data_dir, t0)  # a new folder: the first sample writes the header
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (10, old_limit[1]))  # not even the header fits
        try:
            assert store.append(sample(t0)) is False
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
    finally:
        signal.signal(signal.SIGXFSZ, old_handler)
    assert store.append(sample(t0 + timedelta(seconds=1)))  # space again: the header first, then the row
    assert store.csv_path.read_bytes().startswith(b"timestamp,")
    store.close()
    again = opened(data_dir, t0 + timedelta(seconds=2))  # the next start reads it, sets nothing aside
    assert not list(store.csv_path.parent.glob("*unreadable*"))
    again.close()
    assert Store(data_dir).read(None, None).num_rows == 1


# ------------------------------------------------- the recorder's Arrow work in a child process


def test_in_child_rollover_and_seeding_match_in_process(data_dir: Path, tmp_path: Path) -> None:
    write_history(data_dir, local(2026, 3, 8, 22), local(2026, 3, 10, 1), 60, {"cpu_percent": 10.0, "memory_percent": 20.0, "disk_percent": 30.0}, today_in_csv=False)
    everything = all_rows(Store(data_dir))
    shutil.rmtree(data_dir / "Monitoring")
    _write_csv(Store(data_dir), everything)
    store = Store(data_dir, jobs=dataset_jobs.run_job)
    store.open_writer(local(2026, 3, 10, 12))  # a child rolls the 8th and 9th over
    assert (data_dir / "Monitoring" / "Year=2026" / "Month=3" / "9.parquet").exists()
    assert store._min_day == date(2026, 3, 10)
    store.append(sample(local(2026, 3, 10, 12)))
    store.append(sample(local(2026, 3, 11, 0, 1)))  # midnight: the recorder rolls the 10th over itself (trayapp.storage.midnight)
    assert pq.read_table(data_dir / "Monitoring" / "Year=2026" / "Month=3" / "10.parquet").num_rows == 62
    store.append(sample(local(2026, 3, 11, 0, 2)))  # and the parent appends to the new CSV
    assert read_csv(store.csv_path).num_rows == 2
    t_child, cols_child = store.seed_arrays(local(2026, 3, 9), local(2026, 3, 12), ["cpu_percent", "gpu0_util_percent"])
    t_here, cols_here = Store(data_dir).arrays(local(2026, 3, 9), local(2026, 3, 12), ["cpu_percent", "gpu0_util_percent"])
    assert t_child.tolist() == t_here.tolist() and len(t_here) == 24 * 60 + 61 + 2
    assert cols_child["cpu_percent"].tolist() == cols_here["cpu_percent"].tolist()
    assert all(v != v for v in cols_child["gpu0_util_percent"])  # NaN, not 0
    store.close()


def test_a_failing_child_rollover_keeps_recording(data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import sys

    from trayapp.storage import child_job as dataset_jobs

    store = Store(data_dir, jobs=dataset_jobs.run_job)
    store.open_writer(local(2026, 3, 10, 23))
    store.append(sample(local(2026, 3, 10, 23)))
    store._drop_rows()  # a midnight the recorder cannot do itself (trayapp.storage.midnight): the child's
    monkeypatch.setattr(dataset_jobs, "child_command", lambda: [sys.executable, "-c", "import sys; print('no space left', file=sys.stderr); sys.exit(1)"])
    with caplog.at_level(logging.WARNING):
        assert store.append(sample(local(2026, 3, 11, 0, 1)))
    assert "rollover of the CSV day file failed (no space left)" in caplog.text
    assert store.append(sample(local(2026, 3, 11, 0, 2)))  # no retry for 10 minutes, no loss
    assert Store(data_dir).read(None, None).num_rows == 3
    store.close()


def test_a_recorder_never_loads_arrow_itself(data_dir: Path) -> None:
    import subprocess
    import sys

    now = datetime.now(timezone.utc)  # within the rules' 36 h: the seed itself fills the windows (ticks may read no CPU yet)
    write_history(data_dir, now - timedelta(days=2), now - timedelta(minutes=5), 60, {"cpu_percent": 10.0, "memory_percent": 20.0, "disk_percent": 30.0})
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from trayapp.engine import Engine\n"
        "from trayapp.settings import Config\n"
        f"e = Engine(Config(), Path({str(data_dir)!r}), dataset_in_child=True)\n"
        "e.start()\n"
        "[e.tick() for _ in range(3)]\n"
        "e.stop()\n"
        "print(sorted(m for m in ('pyarrow', 'pandas') if m in sys.modules), e.states[0].window.samples > 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] True"


def test_a_day_file_wholly_outside_the_range_is_skipped_by_its_statistics(data_dir: Path) -> None:
    from trayapp.storage.day_files import _outside

    write_history(data_dir, local(2026, 3, 8), local(2026, 3, 9), 600, {"cpu_percent": 1.0}, today_in_csv=False)
    path = data_dir / "Monitoring" / "Year=2026" / "Month=3" / "8.parquet"
    with pq.ParquetFile(path) as parquet:
        names = parquet.schema_arrow.names
        assert _outside(parquet, names, local(2026, 3, 9), None)  # every row at or before start
        assert _outside(parquet, names, None, local(2026, 3, 8))  # every row after end
        assert not _outside(parquet, names, local(2026, 3, 8, 23), None)
        assert not _outside(parquet, names, None, None)
    # and reading through it gives the same rows as without the shortcut
    assert Store(data_dir).read(local(2026, 3, 8, 23), local(2026, 3, 9, 12)).num_rows == 6


# ------------------------------------------- nothing the store did not understand is destroyed

HEADER4 = "timestamp,cpu_percent,memory_percent,disk_percent"
DAY10 = Path("Monitoring") / "Year=2026" / "Month=3" / "10.parquet"


def _csv_rows(day: int, n: int, cpu: float = 10.0, hour: int = 8) -> list[str]:
    """``n`` CSV lines 10 s apart from ``hour`` on 2026-03-``day``, Berlin time, as the store writes them."""
    first = local(2026, 3, day, hour).astimezone(BERLIN)
    return [f"{(first + timedelta(seconds=10 * i)).isoformat(timespec='microseconds')},{cpu},50.0,70.0" for i in range(n)]


def test_a_header_wider_than_its_rows_reads_them_and_rollover_moves_every_one(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    # the issue: gpu0_util_percent appended to the header, not to the rows: readers skipped every
    # row and the next rollover deleted them all
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True)
    rows = _csv_rows(10, 500)
    csv.write_text(HEADER4 + ",gpu0_util_percent\n" + "\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING):
        table = Store(data_dir).read(None, None)
    assert table.num_rows == 500 and table.column("gpu0_util_percent").null_count == 500
    assert "fewer fields than the header" in caplog.text
    store = opened(data_dir, local(2026, 3, 11, 9))  # start-up rolls the 10th over
    day = pq.read_table(data_dir / DAY10)
    assert day.num_rows == 500 and day.column("cpu_percent").to_pylist() == [10.0] * 500
    assert store.read(None, None).num_rows == 500
    assert csv.read_text().splitlines() == [HEADER4 + ",gpu0_util_percent"]
    store.close()


def test_rollover_keeps_the_bytes_of_lines_it_could_not_read(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True)
    good = _csv_rows(10, 3)
    junk = b"\xff\xfe\x9c junk \x81"
    wide = good[0].replace(":00.000000", ":05.000000") + ",9,9"
    today = _csv_rows(11, 2, hour=1)
    csv.write_bytes(
        (HEADER4 + "\n" + good[0] + "\n").encode() + junk + b"\n" + (HEADER4 + "\n" + "\n".join(good[1:]) + "\n" + wide + "\n"
         + "no-time,1,2,3\n" + "\n".join(today) + "\n").encode()
    )
    with caplog.at_level(logging.WARNING):
        store = opened(data_dir, local(2026, 3, 11, 9))
    day = pq.read_table(data_dir / DAY10)
    assert day.num_rows == 4  # the three good rows and the readable part of the wide one
    aside = list(csv.parent.glob(".rejected-*.csv"))
    assert len(aside) == 1
    kept = aside[0].read_bytes()
    for line in (junk, HEADER4.encode(), wide.encode(), b"no-time,1,2,3"):
        assert line + b"\n" in kept
    assert str(aside[0]) in caplog.text
    # today's rows stay in the CSV byte for byte; the bad lines left it only once kept aside
    assert csv.read_text().splitlines() == [HEADER4, *today]
    assert store.read(None, None).num_rows == 6
    store.close()


def _day_file_with(data_dir: Path, **columns: pa.Array) -> Path:
    path = data_dir / DAY10
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize("kind", ["int64 timestamps", "text timestamps", "bool values", "decimal values"])
def test_a_day_file_it_cannot_read_in_full_is_set_aside_never_overwritten(data_dir: Path, caplog: pytest.LogCaptureFixture, kind: str) -> None:
    n = 8000  # 00:00 to 22:13, 10 s apart; the CSV's rows are at 23:00
    base = int(local(2026, 3, 10, 0).timestamp())
    stamps = pa.array([(base + 10 * i) * 1_000_000 for i in range(n)], pa.timestamp("us", tz="UTC"))
    if kind == "int64 timestamps":
        path = _day_file_with(data_dir, timestamp=pa.array([base + 10 * i for i in range(n)], pa.int64()), cpu_percent=pa.array([5.0] * n))
    elif kind == "text timestamps":
        path = _day_file_with(data_dir, timestamp=pa.array(["yesterday"] * n), cpu_percent=pa.array([5.0] * n))
    elif kind == "bool values":
        path = _day_file_with(data_dir, timestamp=stamps, cpu_percent=pa.array([5.0] * n), busy=pa.array([True] * n))
    else:
        import decimal

        path = _day_file_with(data_dir, timestamp=stamps, cpu_percent=pa.array([decimal.Decimal("5.25")] * n, pa.decimal128(5, 2)))
    original = path.read_bytes()
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text(HEADER4 + "\n" + "\n".join(_csv_rows(10, 3, cpu=7.0, hour=23)) + "\n")
    with caplog.at_level(logging.WARNING):
        store = opened(data_dir, local(2026, 3, 11, 9))
    aside = list(path.parent.glob(".10.parquet.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == original  # set aside as it was
    assert sum(str(aside[0]) in line for line in caplog.text.splitlines()) == 1
    day = pq.read_table(path)
    readable = 0 if "timestamps" in kind else n  # what could be read of it is carried over
    assert day.num_rows == readable + 3
    assert csv.read_text().splitlines() == [HEADER4]
    if kind == "decimal values":
        assert set(day.column("cpu_percent").to_pylist()) == {5.25, 7.0}
    store.close()


def test_a_day_file_with_unreadable_timestamps_is_skipped_with_a_warning(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    _day_file_with(data_dir, timestamp=pa.array([1, 2, 3], pa.int64()), cpu_percent=pa.array([5.0] * 3))
    with caplog.at_level(logging.WARNING):
        table = Store(data_dir).read(None, None)
    assert table.num_rows == 0
    assert "10.parquet" in caplog.text and "timestamp column is int64" in caplog.text


# ------------------------------------------------------------------- non-finite values are missing


def test_nan_and_infinities_read_as_missing_everywhere(data_dir: Path) -> None:
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True)
    rows = _csv_rows(10, 4)
    rows[1] = rows[1].replace("10.0,50.0,70.0", "nan,inf,-inf")
    rows[2] = rows[2].replace("10.0,50.0,70.0", "inf,-inf,Infinity")
    csv.write_text(HEADER4 + "\n" + "\n".join(rows) + "\n")
    table = Store(data_dir).read(None, None)
    assert table.column("cpu_percent").to_pylist() == [10.0, None, None, 10.0]
    assert table.column("memory_percent").to_pylist() == [50.0, None, None, 50.0]
    # the same in a day file
    path = _day_file_with(data_dir, timestamp=pa.array([local(2026, 3, 9, 1), local(2026, 3, 9, 2)], pa.timestamp("us", tz="UTC")),
                          cpu_percent=pa.array([float("inf"), float("-inf")]))
    path.rename(data_dir / "Monitoring" / "Year=2026" / "Month=3" / "9.parquet")
    assert Store(data_dir).read(None, local(2026, 3, 9, 12)).column("cpu_percent").to_pylist() == [None, None]
    # and the store never writes one
    store = opened(data_dir, local(2026, 3, 10, 12))
    store.append(Sample(local(2026, 3, 10, 12), float("inf"), float("nan"), float("-inf")))
    store.close()
    assert csv.read_text().splitlines()[-1].endswith(",,,")


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} in JSON")


def test_status_and_the_recorder_take_infinities_in_stride(data_dir: Path) -> None:
    import json
    import subprocess

    from tests.conftest import start_headless, trayapp_cmd, wait_for

    now = datetime.now(timezone.utc).replace(microsecond=0)
    lines = [f"{(now - timedelta(minutes=m)).astimezone().isoformat(timespec='microseconds')},10.0,50.0,70.0" for m in range(120, 2, -1)]
    lines.append(f"{(now - timedelta(minutes=2)).astimezone().isoformat(timespec='microseconds')},nan,inf,-inf")
    lines.append(f"{(now - timedelta(minutes=1)).astimezone().isoformat(timespec='microseconds')},inf,-inf,inf")
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text(HEADER4 + "\n" + "\n".join(lines) + "\n")
    done = subprocess.run(trayapp_cmd("--data-dir", str(data_dir), "status", "--json"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout, parse_constant=_no_constant)  # Infinity/NaN are not JSON
    assert status["level"] == "ok"
    assert [rule["average"] for rule in status["rules"]] == [10.0, 50.0]
    proc = start_headless(data_dir, interval=0.2)
    try:
        assert wait_for(lambda: Store(data_dir).read(None, None).num_rows >= len(lines) + 3 or proc.poll() is not None, 60)
        assert proc.poll() is None  # still recording
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "→ red" not in err and "→ orange" not in err


# --------------------------------------------------------- one bad line never stops the recorder


@pytest.mark.slow  # over a second or two: `make test-all`
def test_hostile_lines_in_todays_csv_stop_nothing_and_are_kept_aside(data_dir: Path) -> None:
    import json
    import subprocess

    from tests.conftest import start_headless, trayapp_cmd, wait_for

    now = datetime.now(timezone.utc).replace(microsecond=0)
    good = [f"{(now - timedelta(seconds=30 * k)).astimezone().isoformat(timespec='microseconds')},20.0,40.0,60.0" for k in range(100, 0, -1)]
    junk = [
        b"\xff\xfe\x9c junk \x81",  # what a power cut or a bad sector leaves
        "\u00e9t\u00e9,1,2,3".encode("latin-1"),  # another encoding
        "timestamp,cpu".encode("utf-16"),  # and another
        HEADER4.encode(),  # a header repeated mid-file
        b"garbage",
        b"9" * 2_000_000,  # a huge line
        b"\x00" * 40,
    ]
    body = [line.encode() for line in good]
    for i, line in enumerate(junk):
        body.insert(10 * (i + 1), line)
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True)
    csv.write_bytes(HEADER4.encode() + b"\n" + b"\n".join(body) + b"\n")

    def trayapp(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(trayapp_cmd("--data-dir", str(data_dir), *args), capture_output=True, text=True, timeout=120)

    status = trayapp("status")
    assert status.returncode == 0, status.stderr
    assert "Traceback" not in status.stderr
    assert [line for line in status.stderr.splitlines() if "daily_dump.csv" in line] == [status.stderr.strip()]  # one warning
    as_json = trayapp("status", "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["rules"][0]["samples"] == 100
    export = trayapp("export", "--format", "csv")
    assert export.returncode == 0, export.stderr
    assert len(export.stdout.splitlines()) == 1 + 100
    proc = start_headless(data_dir, interval=0.2)
    try:
        def recorded() -> bool:  # rolled over (the junk has left the CSV), then three samples
            data = csv.read_bytes()
            return b"garbage" not in data and data.count(b"\n") >= 1 + 100 + 3

        assert wait_for(lambda: recorded() or proc.poll() is not None, 60)
        assert proc.poll() is None  # recording
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err
    # start-up kept the bad bytes aside, named in one warning, and the CSV holds only what reads
    aside = list(csv.parent.glob(".rejected-*.csv"))
    assert len(aside) == 1 and str(aside[0]) in err
    kept = aside[0].read_bytes()
    assert all(line + b"\n" in kept for line in junk)
    lines = csv.read_bytes().split(b"\n")
    assert lines[0].startswith(HEADER4.encode() + b",") and not any(line in lines[1:] for line in junk)  # + machine columns
    after = Store(data_dir).read(None, None)
    assert after.num_rows >= 100 + 3
    assert set(after.column("cpu_percent").to_pylist()[:100]) == {20.0}


# ------------------------------------------------------ replacing a file: unique temporary names


def test_two_writers_of_one_state_file_never_collide_and_leave_no_temporary_files(tmp_path: Path) -> None:
    import json
    import threading

    from trayapp import jsonfile

    # the recorder and 'trayapp snooze' both write state/snooze.json; a fixed temporary name
    # ('.snooze.json.tmp') let one writer rename the other's half-written file or find it gone
    path = tmp_path / "state" / "snooze.json"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(300):
                jsonfile.write(path, {"until": None, "held": n * 1000 + i})
        except BaseException as exc:  # noqa: BLE001 - the test reports whatever a writer hit
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert json.loads(path.read_text())["held"] % 1000 == 299
    assert [p.name for p in path.parent.iterdir()] == ["snooze.json"]


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE (POSIX)")
def test_a_failed_replacement_leaves_the_old_file_and_no_temporary_file(data_dir: Path) -> None:
    import resource

    from trayapp import jsonfile

    state = data_dir / "state" / "alerts.json"
    jsonfile.write(state, {"small": 1})
    store = opened(data_dir, local(2026, 3, 10, 12))
    store.append(sample(local(2026, 3, 10, 12)))
    csv_before = store.csv_path.read_bytes()
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, old_limit[1]))  # a disk that is full
    try:
        with pytest.raises(OSError):
            jsonfile.write(state, {"big": "x" * 10_000})
        with pytest.raises(OSError):
            store._replace_csv(csv_before + b"9" * 10_000)  # as a rollover or a new GPU column would
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert jsonfile.read_dict(state) == {"small": 1}
    assert store.csv_path.read_bytes() == csv_before
    assert store.append(sample(local(2026, 3, 10, 12, 0, 1)))  # the store still writes
    store.close()
    leftovers = [p for p in data_dir.rglob(".*") if p.name not in (".writer.lock",)]
    assert leftovers == []


def test_a_failing_start_up_rollover_still_records(data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # the issue: "cannot use data folder …: dataset job failed" — monitoring stopped until a
    # person edited the file. Whatever makes the child fail, the recorder records.
    import sys

    from trayapp.storage import child_job as dataset_jobs

    store = opened(data_dir, local(2026, 3, 10, 23))
    store.append(sample(local(2026, 3, 10, 23)))
    store.close()
    with open(store.csv_path, "ab") as f:
        f.write(b"2026-03-10T23:00:01.000000+01:00,1")  # and a torn line, mended by the parent
    monkeypatch.setattr(dataset_jobs, "child_command", lambda: [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(1)"])
    store = Store(data_dir, jobs=dataset_jobs.run_job)
    with caplog.at_level(logging.WARNING):
        stamps, columns = store.open_writer(local(2026, 3, 11, 9), seed=(local(2026, 3, 10), local(2026, 3, 11, 9), ["cpu_percent"]))
    assert "recording anyway" in caplog.text and len(stamps) == 0 and len(columns["cpu_percent"]) == 0
    assert store.append(sample(local(2026, 3, 11, 9)))
    store.close()
    assert Store(data_dir).read(None, None).num_rows == 2  # the torn line cut off, nothing glued


def test_an_unforeseen_error_in_rollover_keeps_the_csv(data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # a stand-in for a bug or a file no test foresaw: a real fault is hard to make on purpose
    from trayapp.storage import writer as store_module

    store = opened(data_dir, local(2026, 3, 10, 23))
    store.append(sample(local(2026, 3, 10, 23)))
    before = store.csv_path.read_bytes()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something no test foresaw")

    with monkeypatch.context() as patched, caplog.at_level(logging.WARNING):
        patched.setattr(store_module, "unique_sorted", broken)
        assert store.append(sample(local(2026, 3, 11, 0, 1)))  # midnight: the rollover fails
    assert "rollover of" in caplog.text and "RuntimeError" in caplog.text
    assert store.csv_path.read_bytes().startswith(before)
    assert Store(data_dir).read(None, None).num_rows == 2
    store.close()


def test_alert_state_that_cannot_be_saved_is_said_once_an_outage(data_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from trayapp import jsonfile
    from trayapp.engine import Engine
    from trayapp.settings import Config

    engine = Engine(Config(), data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    real = jsonfile.replace_atomically

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    with caplog.at_level(logging.WARNING):
        monkeypatch.setattr(jsonfile, "replace_atomically", disk_full)  # a full disk: every save fails
        engine._save_state()
        engine._save_state()  # each transition of a long outage
        assert caplog.text.count("cannot save alert state") == 1
        monkeypatch.setattr(jsonfile, "replace_atomically", real)
        engine._save_state()
        assert engine.state_path.exists()
        monkeypatch.setattr(jsonfile, "replace_atomically", disk_full)
        engine._save_state()
        assert caplog.text.count("cannot save alert state") == 2  # a new outage is said again


def test_a_file_where_the_state_folder_goes_is_set_aside(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    from trayapp.engine import Engine
    from trayapp.settings import Config

    engine = Engine(Config(), data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    blocker = engine.state_path.parent
    blocker.write_text("a file where the state folder goes")
    with caplog.at_level(logging.WARNING):
        engine._save_state()
    assert engine.state_path.is_file() and "cannot save alert state" not in caplog.text
    kept = [p for p in data_dir.iterdir() if p.name.startswith(".state.unreadable-")]
    assert len(kept) == 1 and kept[0].read_text() == "a file where the state folder goes"
    assert caplog.text.count("was not a folder") == 1
