"""kill -9 the headless recorder at random moments, rollover included, and count every row (issue 12).

Each start has earlier days in the CSV to roll over; the recorder (and its rollover child) is killed
with SIGKILL after a random delay and started again. DuckDB over the dataset, plus the CSV's
complete lines, is the oracle: nothing seen on disk before a kill is missing after it, and no day
file holds a timestamp twice. Seeded, about 30–60 s.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.conftest import trayapp_cmd, wait_for

HEADER = "timestamp,cpu_percent,memory_percent,disk_percent"
KILLS = 9
ROWS_PER_DAY = 20_000  # a rollover of this takes long enough here for kills to land inside it


def _earlier_day(days_back: int) -> list[str]:
    """ROWS_PER_DAY CSV lines, 4 s apart, on the local day ``days_back`` days ago."""
    start = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_back)
    start = start.replace(tzinfo=None).astimezone()  # that day's own UTC offset (DST)
    return [f"{(start + timedelta(seconds=4 * i)).isoformat(timespec='microseconds')},{days_back}.0,50.0,70.0" for i in range(ROWS_PER_DAY)]


def _micros(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return round(moment.timestamp() * 1_000_000)


def _on_disk(data_dir: Path) -> tuple[set[int], int, int]:
    """(every timestamp on disk, as epoch µs; rows in the day files; distinct timestamps in them)."""
    con = duckdb.connect()
    files = sorted(str(p) for p in (data_dir / "Monitoring").glob("Year=*/Month=*/*.parquet"))
    seen: set[int] = set()
    rows = distinct = 0
    if files:
        query = f"SELECT epoch_us(timestamp) FROM read_parquet({files!r}, hive_partitioning = true, union_by_name = true)"
        stamps = [r[0] for r in con.execute(query).fetchall()]
        rows, distinct = len(stamps), len(set(stamps))
        seen.update(stamps)
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    if csv.exists():
        data = csv.read_bytes()
        for line in data[: data.rfind(b"\n") + 1].decode().splitlines()[1:]:  # complete lines only
            seen.add(_micros(line.split(",")[0]))
    return seen, rows, distinct


def _day_dir(data_dir: Path, days_back: int) -> tuple[Path, str]:
    day = (datetime.now().astimezone() - timedelta(days=days_back)).date()
    return data_dir / "Monitoring" / f"Year={day.year}" / f"Month={day.month}", f"{day.day}.parquet"


def _rollover_sign(data_dir: Path, days: list[int], temporary: bool) -> bool:
    """A day file of ``days`` in place (or, with ``temporary``, one being written)."""
    for days_back in days:
        folder, name = _day_dir(data_dir, days_back)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        if any(n.startswith(f".{name}.") and n.endswith(".tmp") for n in names) if temporary else name in names:
            return True
    return False


def _wait_tight(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.0005)
    return False


def _start(data_dir: Path, err: Path) -> subprocess.Popen[bytes]:
    with open(err, "ab") as out:
        return subprocess.Popen(trayapp_cmd("--data-dir", str(data_dir), "run", "--headless", "--interval", "0.1"),
                                stdout=subprocess.DEVNULL, stderr=out, start_new_session=True)


@pytest.mark.slow  # a kill -9 series
@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX process groups")
def test_kill_9_at_random_moments_loses_and_doubles_nothing(data_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(20261129)
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text(HEADER + "\n" + "\n".join(_earlier_day(2) + _earlier_day(1)) + "\n")
    expected, _, _ = _on_disk(data_dir)
    assert len(expected) == 2 * ROWS_PER_DAY
    err = tmp_path / "recorder.err"
    days = [2, 1]
    for kill in range(KILLS):
        if kill:  # the next start has two more earlier days to roll over (a clock that jumped, a long sleep)
            days = [3 + 2 * kill, 4 + 2 * kill]
            lines = _earlier_day(days[0]) + _earlier_day(days[1])
            with open(csv, "ab") as f:
                f.write(("\n".join(lines) + "\n").encode())
            expected |= {_micros(line.split(",")[0]) for line in lines}
        proc = _start(data_dir, err)
        # the rollover child writes the day files about half a second after the start, in a few
        # tens of milliseconds: kill the moment a day file is renamed into place (before the CSV is
        # trimmed), the moment a temporary file appears (mid-write), or at a random time
        mode = kill % 3
        if mode == 2:
            wait_for(lambda: proc.poll() is not None, rng.uniform(0.2, 2.5))
        else:
            _wait_tight(lambda: proc.poll() is not None or _rollover_sign(data_dir, days, temporary=mode == 1), 15)
        assert proc.poll() is None, err.read_text()
        os.killpg(proc.pid, signal.SIGKILL)  # the recorder and its rollover child, mid-whatever
        proc.wait(timeout=10)
        seen, rows, distinct = _on_disk(data_dir)
        missing = expected - seen
        assert not missing, f"kill {kill + 1}: {len(missing)} row(s) lost"
        assert rows == distinct, f"kill {kill + 1}: {rows - distinct} row(s) doubled in the day files"
        expected |= seen  # what the recorder wrote before this kill must survive the next ones
    # a last clean run finishes whatever rollover was cut short
    started = err.read_text().count("recording every")
    proc = _start(data_dir, err)
    assert wait_for(lambda: err.read_text().count("recording every") > started or proc.poll() is not None, 120)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, err.read_text()
    seen, rows, distinct = _on_disk(data_dir)
    assert expected <= seen and rows == distinct
    assert rows >= (2 * KILLS) * ROWS_PER_DAY  # every earlier day is in the dataset now, once
    assert "Traceback" not in err.read_text()
    # the temporary files of the writes that kill -9 cut short are gone (the clean start removed them)
    assert [p.name for p in data_dir.rglob(".*.tmp")] == []


GUI_KILLS = 6


@pytest.mark.slow  # a kill -9 series
@pytest.mark.xvfb
@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX process groups")
def test_kill_9_the_tray_app_with_its_window_open_loses_and_doubles_nothing(data_dir: Path, tmp_path: Path) -> None:
    """The same with the tray app under Xvfb + trayer, its history window open on a view, killed
    mid-rollover, mid-write and at random; then the headless recorder finishes the job."""
    from tests.xsession import XSession, available

    missing_tools = available()
    if missing_tools and not os.environ.get("CI"):
        pytest.skip(f"needs {missing_tools} (installed by .ci/run)")
    rng = random.Random(20261130)
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text(HEADER + "\n" + "\n".join(_earlier_day(2) + _earlier_day(1)) + "\n")
    expected, _, _ = _on_disk(data_dir)
    err = tmp_path / "app.err"
    days = [2, 1]
    with XSession() as x:
        for kill in range(GUI_KILLS):
            if kill:
                days = [3 + 2 * kill, 4 + 2 * kill]
                lines = _earlier_day(days[0]) + _earlier_day(days[1])
                with open(csv, "ab") as f:
                    f.write(("\n".join(lines) + "\n").encode())
                expected |= {_micros(line.split(",")[0]) for line in lines}
            view = ("36h", "live", "7d")[kill % 3]
            with open(err, "ab") as out:
                proc = subprocess.Popen(trayapp_cmd("--data-dir", str(data_dir), "gui", "--history", view), env=x.env,
                                        stdout=subprocess.DEVNULL, stderr=out, start_new_session=True)
            mode = kill % 3
            if mode == 2:
                wait_for(lambda: proc.poll() is not None, rng.uniform(1.0, 5.0))
            else:
                _wait_tight(lambda: proc.poll() is not None or _rollover_sign(data_dir, days, temporary=mode == 1), 30)
            assert proc.poll() is None, err.read_text()
            os.killpg(proc.pid, signal.SIGKILL)  # the app, its rollover child and its history reader
            proc.wait(timeout=10)
            seen, rows, distinct = _on_disk(data_dir)
            lost = expected - seen
            assert not lost, f"kill {kill + 1}: {len(lost)} row(s) lost"
            assert rows == distinct, f"kill {kill + 1}: {rows - distinct} row(s) doubled in the day files"
            expected |= seen
    proc = _start(data_dir, tmp_path / "recorder.err")
    assert wait_for(lambda: "recording every" in (tmp_path / "recorder.err").read_text() or proc.poll() is not None, 120)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, (tmp_path / "recorder.err").read_text()
    seen, rows, distinct = _on_disk(data_dir)
    assert expected <= seen and rows == distinct
    assert rows >= 2 * GUI_KILLS * ROWS_PER_DAY
    assert "Traceback" not in err.read_text() + (tmp_path / "recorder.err").read_text()
