"""The child processes that keep Arrow out of long-running processes: one-shot jobs and the reader."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from trayapp.dataset_jobs import JobFailed, Reader, run
from trayapp.history_data import Series, prepare_history
from trayapp.synthetic import write_history


@pytest.fixture
def history(data_dir: Path) -> Path:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 10, {"cpu_percent": lambda t: t % 100, "memory_percent": 50.0})
    return data_dir


def test_history_from_the_reader_equals_reading_here(history: Path) -> None:
    reader = Reader()
    try:
        meta, arrays = reader.request({"job": "history", "data_dir": str(history), "span": 36 * 3600})
    finally:
        reader.close()
    child = Series.from_arrays(meta, arrays)
    here = prepare_history(history, 36 * 3600, datetime.fromtimestamp(child.end, timezone.utc))
    assert child.rows == here.rows == 36 * 360
    for name in ("cpu_percent", "memory_percent"):
        np.testing.assert_array_equal(child.curves[name][1], here.curves[name][1])
        np.testing.assert_array_equal(child.hourly[name][1], here.hourly[name][1])


def test_the_reader_leaves_when_idle_and_comes_back(history: Path) -> None:
    reader = Reader(idle_seconds=0.2)
    job = {"job": "history", "data_dir": str(history), "span": 3600}
    try:
        reader.request(job)
        assert reader.running and not reader.close_if_idle()
        time.sleep(0.3)
        assert reader.close_if_idle() and not reader.running
        assert reader.request(job)[0]["rows"] == 360  # a new child
        reader._proc.kill()  # it dies (OOM killer, a crash): the next request starts another
        reader._proc.wait()
        assert reader.request(job)[0]["rows"] == 360
    finally:
        reader.close()
    assert not reader.running


def test_a_failed_job_is_one_line_and_the_reader_stays_usable(history: Path, capfd: pytest.CaptureFixture) -> None:
    reader = Reader()
    try:
        with pytest.raises(JobFailed, match="'history' failed"):
            reader.request({"job": "history", "data_dir": str(history), "span": "not a number"})
        assert "dataset job failed: ValueError" in capfd.readouterr().err
        assert reader.request({"job": "history", "data_dir": str(history), "span": 3600})[0]["rows"] == 360
    finally:
        reader.close()
    with pytest.raises(JobFailed, match="dataset job failed: KeyError"):
        run({"job": "no such job"})
