"""The standalone build: PyInstaller builds the app (as `make package` does), then the built binary
answers --version, runs doctor, and records headless. Slow (about 90 s); it runs in CI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the PyInstaller build

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("PyInstaller")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package")
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), str(out / "dist"), str(out / "work")],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    exe = out / "dist" / "trayapp" / ("trayapp.exe" if sys.platform == "win32" else "trayapp")
    assert exe.exists()
    assert (out / "dist" / "trayapp" / ("trayapp-tray.exe" if sys.platform == "win32" else "trayapp-tray")).exists()
    return exe


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(TRAYAPP_DATA_DIR=str(tmp_path / "data"), TRAYAPP_CONFIG=str(tmp_path / "config.toml"), TRAYAPP_NO_KEYRING="1")
    return env


def test_built_binary_version(built: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(built), "--version"], capture_output=True, text=True, env=env_for(tmp_path), timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "trayapp 0.1.0"


def test_built_binary_doctor(built: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(built), "doctor"], capture_output=True, text=True, env=env_for(tmp_path), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("trayapp 0.1.0 on Python")
    for part in ("config", "data", "midnight", "gpu", "tray", "slack"):
        assert any(line[5:].startswith(part) for line in lines), part
    assert lines[-1] == "all good" and "Traceback" not in done.stderr
    assert any(line.startswith("ok   midnight") for line in lines), lines  # zstandard is in the bundle


def test_built_binary_records_headless(built: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen([str(built), "run", "--headless", "--interval", "0.2"], env=env_for(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    csv = tmp_path / "data" / "csv_dump" / "daily_dump.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (csv.exists() and len(csv.read_text().splitlines()) > 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert len(csv.read_text().splitlines()) > 3
