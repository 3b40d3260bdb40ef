"""Servers and fleets: Prometheus endpoint, DuckDB reading the dataset, start at login, upgrades."""

from __future__ import annotations

import json
import plistlib
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import trayapp_cmd
from trayapp import autostart
from trayapp.engine import Tick
from trayapp.model import GpuReading, Level, RuleResult, Sample
from trayapp.synthetic import write_history


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_prometheus_exposes_samples_and_levels() -> None:
    from trayapp.metrics import Exporter

    exporter = Exporter("127.0.0.1", 0)
    try:
        now = datetime.now(timezone.utc)
        result = RuleResult("cpu_percent", 129600, 95.0, 2160, 129540, Level.RED, 80, 90)
        exporter.on_tick(Tick(Sample(now, 12.5, 40.0, 70.0, (GpuReading(0, "H100", 99.0, 1.7, None),)), (result,), Level.RED, (), True))
        got = scrape(exporter.port)
    finally:
        exporter.stop()
    assert got['trayapp_sample{metric="cpu_percent"}'] == 12.5
    assert got['trayapp_sample{metric="gpu0_util_percent"}'] == 99.0
    assert 'trayapp_sample{metric="gpu0_temperature_c"}' not in got  # unknown is absent, not 0
    assert got['trayapp_rule_average{metric="cpu_percent",window="129600s"}'] == 95.0
    assert got['trayapp_rule_level{metric="cpu_percent",window="129600s"}'] == 2
    assert got["trayapp_level"] == 2


def test_headless_serves_prometheus_on_loopback(data_dir: Path, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 60, {"cpu_percent": 85.0, "memory_percent": 30.0, "disk_percent": 40.0})
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f"[prometheus]\nenabled = true\nport = {port}\n")
    proc = subprocess.Popen(trayapp_cmd("--config", str(config), "--data-dir", str(data_dir), "run", "--headless", "--interval", "0.2"),
                            stderr=subprocess.PIPE, text=True)
    try:
        got: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "trayapp_level" not in got:
            try:
                got = scrape(port)
            except OSError:
                time.sleep(0.2)
        assert got["trayapp_level"] == 1  # orange
        assert got['trayapp_rule_average{metric="cpu_percent",window="129600s"}'] == pytest.approx(85.0, abs=0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert f"Prometheus metrics on http://127.0.0.1:{port}/metrics" in err


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
    row = con.execute(
        f"""SELECT avg(cpu_percent), avg(memory_percent), count(*), max("Year"), count(gpu0_util_percent)
            FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)
            WHERE "timestamp" > ?::TIMESTAMPTZ - INTERVAL 36 HOUR AND "timestamp" <= ?::TIMESTAMPTZ""",
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
