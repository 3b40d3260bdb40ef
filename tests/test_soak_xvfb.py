"""Soak: the real tray app for minutes under Xvfb + trayer, with history on disk, the history window
open on each view in turn, sampling every second. It must stay alive and answer, keep sampling, not
grow without bound, and exit cleanly. (A green suite once hid a window that aborted the app after a
minute; tests/test_history_refcount.py is the deterministic check for that leak.)

TRAYAPP_SOAK_SECONDS sets the length (default 180 s). Skipped only outside CI when Xvfb/trayer
are missing; in CI (.ci/run installs them) a missing tool fails instead.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest

from tests.xsession import XSession, skip_without_x, stop_app
from trayapp.synthetic import write_history

skip_without_x()

pytestmark = [pytest.mark.xvfb, pytest.mark.slow]  # slow: a soak

SOAK_SECONDS = float(os.environ.get("TRAYAPP_SOAK_SECONDS", "180"))
VIEWS = ("live", "36h", "7d", "30d")


def ask(data_dir: Path, view: str, timeout: float = 15.0) -> float:
    """Ask the running app, over its instance socket, to show the window on ``view``; returns how
    long it took to answer (it answers once the window is shown)."""
    from trayapp.gui.app import instance_name

    path = os.path.join(tempfile.gettempdir(), instance_name(data_dir))
    t0 = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(f"show {view}\n".encode())
        reply = s.recv(16)
    assert reply == b"ok\n", reply
    return time.monotonic() - t0


def window_mapped(x: XSession) -> bool:
    tree = subprocess.run(["xwininfo", "-root", "-tree"], env=x.env, capture_output=True, text=True, timeout=20).stdout
    return "trayapp — history" in tree


def test_the_tray_app_with_its_history_window_open_stays_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(days=2), now - timedelta(minutes=1), 30,
                  {"cpu_percent": 85.0, "memory_percent": 40.0, "disk_percent": 61.0})
    config = tmp_path / "config.toml"
    config.write_text("[sampling]\ninterval_seconds = 1.0\n[alerts]\ndesktop_notifications = false\n")
    env_extra = {"TRAYAPP_DATA_DIR": str(data_dir), "TRAYAPP_CONFIG": str(config), "TRAYAPP_NO_KEYRING": "1"}
    with XSession() as x:
        env = {**x.env, **env_extra}
        err_file = open(tmp_path / "stderr.txt", "w+")
        app = subprocess.Popen([sys.executable, "-m", "trayapp.cli"], env=env, stderr=err_file, stdout=subprocess.DEVNULL)
        try:
            csv_path = data_dir / "csv_dump" / "daily_dump.csv"
            size = csv_path.stat().st_size
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and csv_path.stat().st_size == size:
                time.sleep(0.1)  # the first tick is on disk: the app is up
            started = datetime.now(timezone.utc)
            t0 = time.monotonic()
            # a second `trayapp` brings the first one's window up on a range, and exits
            second = subprocess.run([sys.executable, "-m", "trayapp.cli", "gui", "--history", "36h"], env=env,
                                    capture_output=True, text=True, timeout=60)
            assert second.returncode == 0 and "already running" in second.stderr, second.stderr
            time.sleep(5)
            assert window_mapped(x)
            waits, rss, i = [], [], 0
            while time.monotonic() - t0 < SOAK_SECONDS:
                waits.append(ask(data_dir, VIEWS[i % len(VIEWS)]))
                i += 1
                time.sleep(10)
                assert app.poll() is None, f"the app died after {time.monotonic() - t0:.0f} s"
                rss.append(psutil.Process(app.pid).memory_info().rss)
            elapsed = time.monotonic() - t0
            assert window_mapped(x)
            x.screenshot(tmp_path / "soak.png")
            assert i >= 2 * len(VIEWS) or SOAK_SECONDS < 100, "every view was shown at least twice"
            # alive and responsive: every request answered (a hung loop would time out above)
            assert max(waits) < 15.0
            # no unbounded growth: after the first round of views the process stays within 60 MB
            settled = rss[min(len(VIEWS), len(rss) - 1)]
            assert rss[-1] - settled < 60 * 2**20, [r // 2**20 for r in rss]
        finally:
            err = stop_app(app, err_file)
    assert app.returncode == 0, err
    assert "Traceback" not in err and "Fatal" not in err, err
    # it kept sampling every second the whole time, with the window open
    out = subprocess.run([sys.executable, "-m", "trayapp.cli", "export", "--since", started.isoformat(), "--format", "csv"],
                         env={**os.environ, **env_extra}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) >= 0.8 * elapsed, (len(rows), elapsed)
