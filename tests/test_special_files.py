"""Every path trayapp reads or writes in a data folder and a config folder, replaced in turn by a
FIFO, a folder, a link to /dev/zero, a huge sparse file and random bytes: ``run --headless`` (a
real process) records within seconds and stops on SIGTERM, and ``status``/``export`` answer."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import trayapp_cmd
from trayapp.storage import bins, tier_builder as rollups
from trayapp.synthetic import write_history
from trayapp.storage import tiers

pytestmark = [pytest.mark.skipif(os.name != "posix", reason="FIFOs and /dev/zero are POSIX"), pytest.mark.slow]  # slow: every path, replaced in turn, in real processes

NOW = datetime.now(timezone.utc)
YESTERDAY = (NOW.astimezone() - timedelta(days=1)).date()

PATHS = [
    "config.toml",
    "data/.writer.lock",
    "data/.writer.pid",
    "data/csv_dump/daily_dump.csv",
    "data/csv_dump/.daily_dump.rows",
    "data/csv_dump",
    "data/state",
    "data/state/alerts.json",
    "data/outbox",
    "data/Monitoring/DAY",
    "data/Rollups/MINUTE",
    "data/Rollups/HOUR",
    "data/Rollups/.window/tiers.json",
    "data/Rollups/.window/COPY.npy",
    "data/Rollups/.window/COPY.json",
]
KINDS = ["fifo", "folder", "devzero", "huge", "random"]


def _real(rel: str) -> str:
    copy = tiers.cache_path(Path("data"), "minute", YESTERDAY)
    return (rel.replace("Monitoring/DAY", f"Monitoring/Year={YESTERDAY.year}/Month={YESTERDAY.month}/{YESTERDAY.day}.parquet")
               .replace("Rollups/MINUTE", str(tiers.minute_path(Path(""), YESTERDAY)).lstrip("/"))
               .replace("Rollups/HOUR", str(tiers.hour_path(Path(""), YESTERDAY.year, YESTERDAY.month)).lstrip("/"))
               .replace("Rollups/.window/COPY", str(copy.with_suffix("")).removeprefix("data/")))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template")
    write_history(root / "data", NOW - timedelta(days=2), NOW - timedelta(minutes=5), 60.0, {"cpu_percent": 20.0, "memory_percent": 30.0})
    (root / "config.toml").write_text("[sampling]\ninterval_seconds = 0.2\n")
    proc = _start(root)
    assert _records(root / "data", proc), proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 0
    rollups.ensure(root / "data")  # the second look at the tiers writes their index
    for rel in ("data/csv_dump/.daily_dump.rows", "data/Rollups/MINUTE", "data/Rollups/HOUR", "data/Rollups/.window/tiers.json", "data/Rollups/.window/COPY.npy"):
        assert os.path.lexists(root / _real(rel)), rel  # the copies are there to be replaced (the others are made by the test)
    return root


def _start(root: Path) -> subprocess.Popen:
    return subprocess.Popen(trayapp_cmd("--config", str(root / "config.toml"), "--data-dir", str(root / "data"), "run", "--headless", "--interval", "0.2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _csv_rows(data: Path) -> int:
    path = data / "csv_dump" / "daily_dump.csv"
    try:
        if not stat.S_ISREG(os.stat(path).st_mode) or os.stat(path).st_size > 50_000_000:
            return -1
        return path.read_bytes().count(b"\n")
    except OSError:
        return -1


def _records(data: Path, proc: subprocess.Popen, seconds: float = 20.0) -> bool:
    """Three samples more in the CSV than when this began (or since it appeared)."""
    first = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        rows = _csv_rows(data)
        if rows >= 0:
            first = rows if first is None else first
            if rows >= first + 3:
                return True
        time.sleep(0.1)
    return False


def _replace(path: Path, kind: str) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
        (path / "inside").write_text("x")
    elif kind == "devzero":
        os.symlink("/dev/zero", path)
    elif kind == "huge":
        with open(path, "wb") as f:
            f.truncate(64 << 30)  # sparse: 64 GB that take no disk
    else:
        path.write_bytes(os.urandom(4096))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rel", PATHS)
def test_a_special_file_never_stops_recording(template: Path, tmp_path: Path, rel: str, kind: str) -> None:
    root = tmp_path / "root"
    shutil.copytree(template, root, symlinks=True)
    _replace(root / _real(rel), kind)
    proc = _start(root)
    try:
        recorded = _records(root / "data", proc)
        others = [subprocess.Popen(trayapp_cmd("--config", str(root / "config.toml"), "--data-dir", str(root / "data"), *args),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for args in (["status", "--json"], ["export", "--format", "csv", "--output", str(tmp_path / "out.csv")])]
        answers = []
        for other in others:
            try:
                out, err = other.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                other.kill()
                out, err = other.communicate()
            answers.append((other.returncode, err))
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            rc = None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    proc.stderr.close()
    assert recorded, err[-2000:]
    assert rc == 0, err[-2000:]
    assert "Traceback" not in err
    for code, text in answers:
        assert code == 0 and "Traceback" not in text, text[-1000:]
