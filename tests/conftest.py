"""Shared fixtures: an isolated environment (no real keyring, config or data folder touched),
a local time zone with DST (Europe/Berlin) so day boundaries are really tested, and paths."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Before anything imports tzlocal or Qt.
os.environ["TZ"] = "Europe/Berlin"
if hasattr(time, "tzset"):
    time.tzset()
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["TRAYAPP_NO_KEYRING"] = "1"

ROOT = Path(__file__).resolve().parent.parent
# Copied from ../shared/fixtures (real output captured on an NVIDIA H100), so a clone is whole.
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAYAPP_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("TRAYAPP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    from trayapp import jsonfile, probes

    probes._said.clear()
    jsonfile._said.clear()
    if "PySide6.QtCore" in sys.modules:  # Qt read XDG_CONFIG_HOME once: a window's saved geometry stays per test
        from PySide6.QtCore import QSettings

        for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
            QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "xdg-config"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def gpu_fixtures() -> Path:
    return FIXTURES / "gpu"


def trayapp_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "trayapp.cli", *args]


def start_headless(data_dir: Path, *global_args: str, interval: float = 0.2) -> "subprocess.Popen[str]":
    """`trayapp [global_args] --data-dir D run --headless` as a real process."""
    return subprocess.Popen(
        trayapp_cmd(*global_args, "--data-dir", str(data_dir), "run", "--headless", "--interval", str(interval)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(predicate, timeout: float = 30.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def gc_on_gui_thread():
    """Collect garbage on the GUI thread only, as the app does: a collection that runs on the
    sampler thread could destroy a widget there, which crashes Qt."""
    import gc

    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def debian_tool(name: str, package: str) -> str:
    """The path of a tool from a Debian package that .ci/run installs: missing, the test is
    skipped here and fails in CI (where a missing install step must not hide as a skip)."""
    import shutil

    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (apt-get install {package})")
        pytest.skip(f"{name} is not installed (apt-get install {package})")
    return path
