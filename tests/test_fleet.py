"""Servers and fleets: DuckDB reading the dataset, start at login, upgrades (Prometheus: test_prometheus.py)."""

from __future__ import annotations

import json
import plistlib
import shlex
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import trayapp_cmd
from trayapp import autostart
from trayapp.synthetic import write_history


def test_duckdb_reads_the_dataset_and_agrees_with_status(data_dir: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    now = datetime.now(timezone.utc)
    # older days without GPU columns, the last day with them: union_by_name copes
    write_history(data_dir, now - timedelta(days=3), now - timedelta(hours=30), 30, {"cpu_percent": lambda t: 50 + (t % 40), "memory_percent": 70.0, "disk_percent": 40.0}, today_in_csv=False)
    write_history(data_dir, now - timedelta(hours=30), now, 30, {"cpu_percent": lambda t: 60 + (t % 30), "memory_percent": 82.0, "disk_percent": 40.0, "gpu0_util_percent": 97.0}, today_in_csv=False)
    status = json.loads(subprocess.run(trayapp_cmd("--data-dir", str(data_dir), "status", "--json"), capture_output=True, text=True, check=True).stdout)
    asof = datetime.now(timezone.utc)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    glob = str(data_dir / "Monitoring" / "*" / "*" / "*.parquet")
    # the window average is over time: the mean of the per-minute means (README, Rules)
    row = con.execute(
        f"""SELECT avg(cpu), avg(memory), sum(n), max(year), sum(gpu) FROM (
                SELECT avg(cpu_percent) AS cpu, avg(memory_percent) AS memory, count(*) AS n, max("Year") AS year,
                       count(gpu0_util_percent) AS gpu
                FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)
                WHERE "timestamp" > ?::TIMESTAMPTZ - INTERVAL 36 HOUR AND "timestamp" <= ?::TIMESTAMPTZ
                GROUP BY floor(epoch("timestamp") / 60))""",
        [asof, asof],
    ).fetchone()
    cpu, mem = status["rules"]
    assert row[0] == pytest.approx(cpu["average"], rel=1e-9)
    assert row[1] == pytest.approx(mem["average"], rel=1e-9)
    assert row[2] == cpu["samples"]
    assert row[3] == now.astimezone().year and row[4] > 0


def test_start_at_login_on_linux_writes_and_removes_an_xdg_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    where = autostart.set_autostart(True, platform="linux")
    entry = tmp_path / "cfg" / "autostart" / "trayapp.desktop"
    assert where == str(entry)
    text = entry.read_text()
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    argv = shlex.split(exec_line[5:])
    assert argv[-3:] == ["gui", "--wait-for-tray", "120"]
    # the command it starts is a real, working trayapp
    done = subprocess.run([*argv[:-3], "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("trayapp ")
    assert autostart.is_enabled("linux")
    autostart.set_autostart(False, platform="linux")
    assert not entry.exists()


def test_start_at_login_on_macos_writes_a_launch_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = Path(autostart.set_autostart(True, platform="darwin"))
    agent = plistlib.loads(path.read_bytes())
    assert agent["Label"] == "io.github.trayapp" and agent["RunAtLoad"] is True
    assert agent["ProgramArguments"][-3:] == ["gui", "--wait-for-tray", "120"]


def test_an_old_config_and_data_folder_keep_working(data_dir: Path, tmp_path: Path) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    # what the notebook (and a version-0 config) left behind
    day = (datetime.now() - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    month = data_dir / "Monitoring" / f"Year={day.year}" / f"Month={day.month}"
    month.mkdir(parents=True)
    frame = pd.DataFrame({"timestamp": [str(day + timedelta(minutes=i)) for i in range(120)], "cpu_percent": [93.0] * 120, "memory_percent": [10.0] * 120, "disk_percent": [50.0] * 120})
    pq.write_table(pa.Table.from_pandas(frame), month / f"{day.day}.parquet", compression="snappy")
    config = tmp_path / "config.toml"
    config.write_text("[sampling]\ninterval_seconds = 2.0\n[slack]\nwebhook = ''\n")
    done = subprocess.run(trayapp_cmd("--config", str(config), "--data-dir", str(data_dir), "status", "--json"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # migrated silently, not rejected
    cpu = json.loads(done.stdout)["rules"][0]
    assert (cpu["samples"], cpu["average"], cpu["level"]) == (120, 93.0, "red")
