"""The command line at the edges of time: far-off export ranges, and projections that continue the
recorder's real sampling pace (which `run --headless --interval` may set apart from the config)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import trayapp_cmd
from trayapp.synthetic import write_history


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(trayapp_cmd(*args), capture_output=True, text=True, timeout=60)


@pytest.mark.slow  # over a second or two: `make test-all`
def test_export_takes_any_iso_range(data_dir: Path) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=2), now, 60, {"cpu_percent": 10.0, "memory_percent": 20.0, "disk_percent": 30.0})
    done = run("--data-dir", str(data_dir), "export", "--format", "csv",
               "--since", "0001-01-01T00:00+00:00", "--until", "9999-12-31T00:00")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Overflow" not in done.stderr
    assert len(list(csv.DictReader(io.StringIO(done.stdout)))) == 120  # everything there is


def test_status_projects_at_the_pace_the_data_was_sampled(data_dir: Path, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    # 36 h at 60 %, then the last 6 h at 100 %, sampled every 10 s (a recorder run with --interval 10)
    write_history(data_dir, now - timedelta(hours=36), now - timedelta(hours=6), 10, {"cpu_percent": 60.0, "memory_percent": 20.0, "disk_percent": 30.0})
    write_history(data_dir, now - timedelta(hours=6), now, 10, {"cpu_percent": 100.0, "memory_percent": 20.0, "disk_percent": 30.0})
    answers = {}
    for interval in (2.0, 10.0):
        config = tmp_path / f"c{interval}.toml"
        config.write_text(f"[sampling]\ninterval_seconds = {interval}\n")
        done = run("--config", str(config), "--data-dir", str(data_dir), "status", "--json")
        assert done.returncode == 0, done.stderr
        answers[interval] = json.loads(done.stdout)["rules"][0].get("projection")
    assert answers[10.0] is not None and answers[10.0]["level"] in ("orange", "red")
    # the config's 2 s does not make the data go 5x faster: the same answer, but for the moments
    # between the two runs (the window's edge moves with the clock)
    assert answers[2.0]["level"] == answers[10.0]["level"]
    assert answers[2.0]["in_seconds"] == pytest.approx(answers[10.0]["in_seconds"], abs=60)


@pytest.mark.parametrize("held", ['"many"', "1e999", "[1, 2]", "-3", "null"])
def test_snooze_survives_any_held_count_in_its_state_file(data_dir: Path, held: str) -> None:
    state = data_dir / "state"
    state.mkdir(parents=True)
    (state / "snooze.json").write_text('{"until": null, "held": ' + held + "}")
    done = run("--data-dir", str(data_dir), "snooze", "1h")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    saved = json.loads((state / "snooze.json").read_text())
    assert saved["held"] == 0 and saved["until"]
