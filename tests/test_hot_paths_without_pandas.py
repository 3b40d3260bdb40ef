"""pandas stays off the hot paths (issue 10): ``status``, seeding, rollover and ``history.read`` run
in real processes on a real dataset and must read the same values without pyarrow importing pandas.

The notebook's naive local times still go through pandas (the control: the check can fail).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trayapp.storage.layout import local_zone
from trayapp.synthetic import write_history

STEP = 10  # seconds between samples
CPU, MEMORY = 55.5, 85.25  # constants: status's 36 h averages are exactly these (memory is orange)


def _disk(t: np.ndarray) -> np.ndarray:
    """A value that differs from sample to sample, so rows cannot be mixed up unseen."""
    return (np.floor(t / STEP) % 1000) / 10


VALUES = {"cpu_percent": CPU, "memory_percent": MEMORY, "disk_percent": _disk}


class History:
    def __init__(self, root: Path) -> None:
        self.dir = root / "data"
        now = datetime.now(timezone.utc).replace(microsecond=0)
        self.end = now
        self.rows = write_history(self.dir, now - timedelta(days=3), now, STEP, VALUES)
        # what write_history wrote, computed again here: the truth the readers must give back
        stamps = np.arange(now.timestamp(), (now - timedelta(days=3)).timestamp(), -STEP)[::-1]
        self.us = (stamps * 1e6).astype("int64")
        self.disk = _disk(stamps)
        today = now.astimezone(local_zone()).replace(hour=0, minute=0, second=0, microsecond=0)
        self.today_us = int(today.timestamp()) * 1_000_000  # rows from here on are in the CSV

    def expect(self, start: datetime, end: datetime) -> np.ndarray:
        """Which rows lie in ``(start, end]``."""
        return (self.us > int(start.timestamp() * 1e6)) & (self.us <= int(end.timestamp() * 1e6))


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    found = History(tmp_path_factory.mktemp("no_pandas"))
    assert found.rows == len(found.us) and (found.dir / "csv_dump" / "daily_dump.csv").exists()
    assert len(list((found.dir / "Monitoring").glob("Year=*/Month=*/*.parquet"))) >= 3
    return found


HEAVY = ("pyarrow.compute", "numpy.ma")  # ~30 ms and ~9 MB, ~12 ms: not needed for data in trayapp's own format


def _child(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; its stdout lines, the last being whether pandas loaded
    and the one before which of ``HEAVY`` did."""
    done = subprocess.run([sys.executable, "-c", code + f"\nimport sys\nprint([m for m in {HEAVY!r} if m in sys.modules])"
                           "\nprint('pandas' in sys.modules)\n"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout.strip().splitlines()


def test_status_reads_36_hours_without_pandas(history: History) -> None:
    lines = _child(f"from trayapp.cli import main\nassert main(['--data-dir', {str(history.dir)!r}, 'status', '--json']) == 0")
    assert lines[-1] == "False", "pandas was imported by `trayapp status`"
    assert lines[-2] == "[]", f"`trayapp status` loaded {lines[-2]}: each costs its start-up"
    answer = json.loads(lines[0])
    assert answer["level"] == "orange"
    rules = {r["metric"]: r for r in answer["rules"]}
    assert rules["cpu_percent"]["average"] == CPU and rules["cpu_percent"]["level"] == "ok"
    assert rules["memory_percent"]["average"] == MEMORY and rules["memory_percent"]["level"] == "orange"
    assert 36 * 3600 // STEP - 30 <= rules["cpu_percent"]["samples"] <= 36 * 3600 // STEP  # the child's now is a little later


def test_seeding_36_hours_without_pandas(history: History, tmp_path: Path) -> None:
    end = history.end - timedelta(seconds=STEP * 6)
    start = end - timedelta(hours=36)
    out = tmp_path / "seed.npz"
    lines = _child(
        "from datetime import datetime\nimport numpy as np\nfrom trayapp.storage import ranges as history\n"
        f"t, cols = history.samples({str(history.dir)!r}, datetime.fromisoformat({start.isoformat()!r}), "
        f"datetime.fromisoformat({end.isoformat()!r}), ['cpu_percent', 'disk_percent'])\n"
        f"np.savez({str(out)!r}, t=t, cpu=cols['cpu_percent'], disk=cols['disk_percent'])"
    )
    assert lines[-1] == "False", "pandas was imported by history.samples"
    assert lines[-2] == "[]", f"history.samples loaded {lines[-2]}"
    got = np.load(out)
    rows = history.expect(start, end)
    assert rows.sum() == 36 * 3600 // STEP
    assert np.array_equal(got["t"], history.us[rows] / 1e6)
    assert np.array_equal(got["disk"], history.disk[rows])
    assert got["cpu"].dtype == np.float64 and np.all(got["cpu"] == CPU)


def test_rollover_of_the_csv_day_without_pandas(history: History, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(history.dir, data)
    later = history.end + timedelta(days=2)
    lines = _child(
        "from datetime import datetime\nfrom trayapp.storage.writer import Store\n"
        f"store = Store({str(data)!r})\nstore.open_writer(datetime.fromisoformat({later.isoformat()!r}))\nstore.close()"
    )
    assert lines[-1] == "False", "pandas was imported by the rollover"
    assert lines[-2] == "[]", f"the rollover loaded {lines[-2]}"
    csv = (data / "csv_dump" / "daily_dump.csv").read_text().splitlines()
    assert csv == ["timestamp,cpu_percent,memory_percent,disk_percent"]  # every row moved
    today = history.end.astimezone(local_zone()).date()
    table = pq.read_table(data / "Monitoring" / f"Year={today.year}" / f"Month={today.month}" / f"{today.day}.parquet")
    rows = history.us >= history.today_us
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.column("timestamp").cast("int64").to_pylist() == history.us[rows].tolist()
    assert table.column("disk_percent").to_pylist() == history.disk[rows].tolist()
    assert set(table.column("memory_percent").to_pylist()) == {MEMORY}
    assert (data / "Rollups" / "minute" / f"Year={today.year}" / f"Month={today.month}" / f"{today.day}.parquet").exists()


def test_history_read_of_a_range_without_pandas(history: History, tmp_path: Path) -> None:
    end = history.end - timedelta(minutes=1, seconds=3)
    start = end - timedelta(days=2, minutes=17)  # two day files and the CSV, with day files outside the range
    out = tmp_path / "read.parquet"
    lines = _child(
        "from datetime import datetime\nimport pyarrow.parquet as pq\nfrom trayapp.storage import ranges as history\n"
        f"table = history.read({str(history.dir)!r}, datetime.fromisoformat({start.isoformat()!r}), "
        f"datetime.fromisoformat({end.isoformat()!r}))\npq.write_table(table, {str(out)!r})"
    )
    assert lines[-1] == "False", "pandas was imported by history.read"
    assert lines[-2] == "[]", f"history.read loaded {lines[-2]}"
    table = pq.read_table(out)
    rows = history.expect(start, end)
    assert table.column_names == ["timestamp", "cpu_percent", "memory_percent", "disk_percent"]
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.column("timestamp").cast("int64").to_pylist() == history.us[rows].tolist()
    assert table.column("disk_percent").to_pylist() == history.disk[rows].tolist()
    assert set(table.column("cpu_percent").to_pylist()) == {CPU}


def test_broken_lines_in_the_csv_are_skipped_without_pandas(tmp_path: Path) -> None:
    """After a crash or a copy gone wrong: zeros, bytes that are not text, a repeated header, a
    line with fields the header lacks and one from before a column was added. The good lines are
    read, the rest skipped, pandas is not loaded and the rollover keeps the odd bytes aside."""
    data = tmp_path / "data"
    (data / "csv_dump").mkdir(parents=True)
    header = "timestamp,cpu_percent,memory_percent,disk_percent"
    (data / "csv_dump" / "daily_dump.csv").write_bytes(
        f"{header}\n"
        "2026-03-29T01:59:59.500000+01:00,10.0,20.0,30.0\n".encode()
        + b"\x00\x00\x00\x00\n\xff\xfe\x80,1,2,3\n" + f"{header}\n".encode()
        + b"2026-03-29T03:00:00.250000+02:00,11.0,21.0,31.0,99\n"
        b"2026-03-29T03:00:01+02:00,12.0\n"
        b"\n"
    )
    lines = _child(
        "from datetime import datetime, timezone\nfrom trayapp.storage import ranges as history\nfrom trayapp.storage.writer import Store\n"
        f"t = history.read({str(data)!r})\n"
        "print(t.column('timestamp').cast('int64').to_pylist(), t.column('cpu_percent').to_pylist(), t.column('disk_percent').to_pylist())\n"
        f"store = Store({str(data)!r})\nstore.open_writer(datetime(2026, 4, 1, tzinfo=timezone.utc))\nstore.close()"
    )
    assert lines[-1] == "False", "pandas was imported to skip broken lines"
    base = datetime(2026, 3, 29, 0, 59, 59, 500000, tzinfo=timezone.utc)
    stamps = [base, base + timedelta(seconds=0.75), base + timedelta(seconds=1.5)]
    us = [(t - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1) for t in stamps]
    assert lines[0] == f"{us} [10.0, 11.0, 12.0] [30.0, 31.0, None]"
    day = pq.read_table(data / "Monitoring" / "Year=2026" / "Month=3" / "29.parquet")
    assert day.column("timestamp").cast("int64").to_pylist() == us
    rejected = b"".join(p.read_bytes() for p in (data / "csv_dump").glob(".rejected-*.csv"))
    assert b"\xff\xfe\x80,1,2,3" in rejected and b",99" in rejected  # the odd bytes kept aside, not lost


def test_the_notebooks_naive_local_times_still_use_pandas(tmp_path: Path) -> None:
    """The control: a CSV day file with naive local times (the notebook's ``str(datetime.now())``)
    across the spring-forward hour in Berlin is read through pandas, and read right."""
    data = tmp_path / "data"
    (data / "csv_dump").mkdir(parents=True)
    (data / "csv_dump" / "daily_dump.csv").write_text(
        "timestamp,cpu_percent,memory_percent,disk_percent\n"
        "2026-03-29 01:59:59.500000,10.0,20.0,30.0\n"
        "2026-03-29 03:00:00.250000,11.0,21.0,31.0\n"
    )
    lines = _child(f"from trayapp.storage import ranges as history\nt = history.read({str(data)!r})\n"
                   "print(t.column('timestamp').cast('int64').to_pylist(), t.column('cpu_percent').to_pylist())")
    assert lines[-1] == "True", "the notebook's naive times are read without pandas: this check shows nothing"
    assert "pyarrow.compute" in lines[-2], "naive times are cast through pyarrow.compute: this check of it shows nothing"
    utc = [datetime(2026, 3, 29, 0, 59, 59, 500000, tzinfo=timezone.utc), datetime(2026, 3, 29, 1, 0, 0, 250000, tzinfo=timezone.utc)]
    assert lines[0] == f"{[(t - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1) for t in utc]} [10.0, 11.0]"
