"""The real app in a real X session: Xvfb, trayer as the tray host, a screenshot, the icon's pixels.

Skipped only outside CI when Xvfb/trayer/imagemagick are missing; in CI (.ci/run installs them) a
missing tool fails the test instead.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.xsession import XSession, skip_without_x
from trayapp.synthetic import write_history

skip_without_x()

pytestmark = pytest.mark.xvfb

RED = (0xD9, 0x30, 0x25)
ORANGE = (0xF2, 0x99, 0x00)


def count_pixels(png: Path, rgb: tuple[int, int, int], box: tuple[int, int, int, int], tolerance: int = 30) -> int:
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert not image.isNull(), png
    x0, y0, w, h = box
    n = 0
    for y in range(y0, min(y0 + h, image.height())):
        for x in range(x0, min(x0 + w, image.width())):
            c = image.pixelColor(x, y)
            if abs(c.red() - rgb[0]) <= tolerance and abs(c.green() - rgb[1]) <= tolerance and abs(c.blue() - rgb[2]) <= tolerance:
                n += 1
    return n


def run_app_and_shoot(x: XSession, data_dir: Path, config: Path, shot: Path) -> str:
    env = {**x.env, "TRAYAPP_DATA_DIR": str(data_dir), "TRAYAPP_CONFIG": str(config), "TRAYAPP_NO_KEYRING": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "trayapp.cli"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        csv = data_dir / "csv_dump" / "daily_dump.csv"
        start_size = csv.stat().st_size
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and csv.stat().st_size == start_size:
            time.sleep(0.1)  # the first tick has been taken once the CSV grows
        time.sleep(1.5)  # and drawn
        x.screenshot(shot)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "no system tray" not in err and "Traceback" not in err
    return err


@pytest.mark.parametrize(("cpu", "colour", "other"), [(95.0, RED, ORANGE), (85.0, ORANGE, RED)])
def test_tray_icon_pixels_show_the_level(tmp_path: Path, cpu: float, colour, other) -> None:
    data_dir = tmp_path / "data"
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 60, {"cpu_percent": cpu, "memory_percent": 30.0, "disk_percent": 40.0})
    config = tmp_path / "config.toml"
    config.write_text("[sampling]\ninterval_seconds = 0.5\n[alerts]\ndesktop_notifications = false\n")
    with XSession() as x:
        shot = run_app_and_shoot(x, data_dir, config, tmp_path / "screen.png") and tmp_path / "screen.png"
        tray_strip = (1024 - 120, 0, 120, 24)  # trayer: top edge, right-aligned, 24 px high
        assert count_pixels(shot, colour, tray_strip) >= 40, "the icon's colour is not in the tray"
        assert count_pixels(shot, other, tray_strip) == 0


def test_at_login_the_app_waits_for_a_late_tray(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 60, {"cpu_percent": 95.0, "memory_percent": 30.0, "disk_percent": 40.0})
    with XSession(tray=False) as x:
        env = {**x.env, "TRAYAPP_DATA_DIR": str(data_dir), "TRAYAPP_CONFIG": str(tmp_path / "c.toml"), "TRAYAPP_NO_KEYRING": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "trayapp.cli", "gui", "--wait-for-tray", "30"], env=env, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(3)  # the panel comes up after the app
            x.procs.append(subprocess.Popen(
                ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "24",
                 "--SetDockType", "true", "--transparent", "false", "--tint", "0x303030"],
                env=x.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            shot = tmp_path / "late.png"
            deadline = time.monotonic() + 30
            found = 0
            while time.monotonic() < deadline and found < 40:
                time.sleep(1)
                found = count_pixels(x.screenshot(shot), RED, (1024 - 120, 0, 120, 24))
            assert found >= 40
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=20)
        assert "no system tray" not in err and proc.returncode == 0


def test_a_second_instance_brings_the_first_forward_and_exits(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with XSession() as x:
        env = {**x.env, "TRAYAPP_DATA_DIR": str(data_dir), "TRAYAPP_CONFIG": str(tmp_path / "c.toml"), "TRAYAPP_NO_KEYRING": "1"}
        first = subprocess.Popen([sys.executable, "-m", "trayapp.cli"], env=env, stderr=subprocess.PIPE, text=True)
        try:
            csv = data_dir / "csv_dump" / "daily_dump.csv"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (csv.exists() and csv.stat().st_size > 60):
                time.sleep(0.1)
            second = subprocess.run([sys.executable, "-m", "trayapp.cli"], env=env, capture_output=True, text=True, timeout=60)
            assert second.returncode == 0
            assert "already running for this data folder" in second.stderr
            # the first one opened its history window: it is mapped on the screen now
            deadline = time.monotonic() + 10
            names = ""
            while time.monotonic() < deadline and "trayapp — history" not in names:
                names = subprocess.run(["xwininfo", "-root", "-tree"], env=x.env, capture_output=True, text=True).stdout
                time.sleep(0.2)
            assert "trayapp — history" in names
        finally:
            first.terminate()
            first.communicate(timeout=20)
        assert first.returncode == 0
