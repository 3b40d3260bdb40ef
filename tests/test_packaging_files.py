"""The files trayapp ships or writes for other programs, checked by those programs: desktop entries
by desktop-file-validate and GLib's launcher, the systemd unit by systemd-analyze, the constraints files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import ROOT, debian_tool
from trayapp import autostart

PACKAGING = ROOT / "packaging"
CONSTRAINTS = PACKAGING / f"constraints-{sys.version_info.major}.{sys.version_info.minor}.txt"  # this Python's pins
# a folder name with the kinds of character the Desktop Entry spec makes us quote (not "%": GLib looks
# the program up before it expands "%%", so no launcher finds such a path)
ODD = "py env's $HOME `x` (1)"


def tool(name: str, package: str) -> str:
    return debian_tool(name, package)


def validate(entry: Path) -> None:
    done = subprocess.run([tool("desktop-file-validate", "desktop-file-utils"), str(entry)], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout + done.stderr) == (0, ""), entry.read_text()


def python_in(folder: Path) -> Path:
    """This environment's Python, reached through ``folder`` (a venv-shaped link farm), so that
    starting it there runs this very trayapp."""
    (folder / "bin").mkdir(parents=True)
    python = folder / "bin" / "python"
    python.symlink_to(Path(sys.executable).resolve())
    if sys.prefix != sys.base_prefix:  # a virtualenv: its pyvenv.cfg and site-packages
        shutil.copy(Path(sys.prefix) / "pyvenv.cfg", folder / "pyvenv.cfg")
        (folder / "lib").symlink_to(Path(sys.prefix) / "lib")
    return python


def launch(entry: Path, cwd: Path) -> str:
    """Start a desktop entry the way a desktop does (GLib's GDesktopAppInfo); its stdout."""
    gio = tool("gio", "libglib2.0-bin")
    done = subprocess.run([gio, "launch", str(entry)], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_shipped_desktop_entry_is_valid() -> None:
    validate(PACKAGING / "trayapp.desktop")


def test_the_autostart_entry_is_valid_and_starts_trayapp_from_a_path_that_needs_quoting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = python_in(tmp_path / ODD)
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    entry = Path(autostart.set_autostart(True, platform="linux"))
    validate(entry)
    exec_line = next(line for line in entry.read_text().splitlines() if line.startswith("Exec="))
    assert exec_line.startswith('Exec="') and exec_line.endswith(" gui --wait-for-tray 120")
    # the same command, asked for its version instead of starting the tray, through GLib
    version = tmp_path / "version.desktop"
    version.write_text(autostart.desktop_entry([*autostart.command()[:-3], "--version"]))
    validate(version)
    assert launch(version, tmp_path).startswith("trayapp ")


def test_every_argument_survives_the_exec_key_as_glib_reads_it(tmp_path: Path) -> None:
    python = python_in(tmp_path / ODD)
    args = ["two words", 'double"quote', "single'quote", "dollar$HOME", "back\\slash", "tick`x`", "100%", "semi;colon",
            "tab\there", "a > b | c & d", "~", "#hash", "(paren)", "*?", "", "plain"]
    entry = tmp_path / "echo.desktop"
    entry.write_text(autostart.desktop_entry([str(python), "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *args]))
    validate(entry)
    assert json.loads(launch(entry, tmp_path)) == args


def unit_for_here(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart= pointing at this environment's trayapp (verify checks it exists)."""
    trayapp = Path(sys.executable).with_name("trayapp")
    text = (PACKAGING / "trayapp.service").read_text()
    assert "ExecStart=%h/.local/bin/trayapp run --headless" in text
    unit = tmp_path / "trayapp.service"
    unit.write_text(text.replace("%h/.local/bin/trayapp", str(trayapp)))
    return unit


@pytest.mark.parametrize("mode", ["system", "user"])
def test_the_systemd_unit_verifies(tmp_path: Path, mode: str) -> None:
    analyze = tool("systemd-analyze", "systemd")
    if not Path(sys.executable).with_name("trayapp").exists():
        pytest.skip("no trayapp script beside this Python (not an installed environment)")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    args = [analyze, *(["--user"] if mode == "user" else []), "verify", "--man=false", str(unit_for_here(tmp_path))]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_systemd_unit_is_hardened_but_keeps_the_gpu_and_its_folders() -> None:
    analyze = tool("systemd-analyze", "systemd")
    unit = PACKAGING / "trayapp.service"
    done = subprocess.run([analyze, "security", "--offline=true", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    score = float(re.search(r"Overall exposure level for trayapp\.service: (\d+\.\d+)", done.stdout).group(1))
    assert score <= 3.0, done.stdout  # 9.0 "UNSAFE" before
    keys = [line.split("=", 1) for line in unit.read_text().splitlines() if "=" in line and not line.startswith("#")]
    values = {}
    for key, value in keys:
        values.setdefault(key, []).append(value)
    assert values["Wants"] == values["After"] == ["network-online.target"]
    paths = " ".join(values["ReadWritePaths"]).split()
    assert paths == ["-%h/.local/share/trayapp", "-%h/.config/trayapp"]  # "-": fine while one does not exist yet
    assert values["ProtectHome"] == ["read-only"] and values["ProtectSystem"] == ["strict"]
    assert values["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    # NVML opens /dev/nvidia*: nothing that takes devices away (ProtectClock= sets a device allow list)
    assert not {"PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"} & set(values)


def test_the_constraints_pin_exactly_what_this_environment_bundles() -> None:
    """`make package` builds from what this Python's constraints-3.X.txt pins: trayapp[package,prometheus], whole."""
    text = CONSTRAINTS.read_text()
    pins = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[a-z0-9-]+==[0-9][0-9A-Za-z.+-]*", pin) for pin in pins), pins
    names = {pin.split("==")[0] for pin in pins}
    # what the spec bundles and pyproject declares, and the build tool itself
    assert {"pyside6-essentials", "pyqtgraph", "psutil", "nvidia-ml-py", "gputil", "pandas", "pyarrow", "numpy",
            "prometheus-client", "pyinstaller", "shiboken6"} <= names
    done = subprocess.run([sys.executable, str(PACKAGING / "lock.py"), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_drifted_environment_is_named_and_a_locked_build_refuses(tmp_path: Path) -> None:
    pins = CONSTRAINTS.read_text().splitlines()
    drifted = [("psutil==0.0.1" if line.startswith("psutil==") else line) for line in pins if not line.startswith("pyarrow==")]
    assert drifted != pins
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(drifted) + "\n")
    done = subprocess.run([sys.executable, str(PACKAGING / "lock.py"), "--check", str(constraints)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "lock: psutil " in done.stderr and "0.0.1 is pinned" in done.stderr
    assert "lock: pyarrow " in done.stderr and "is bundled but not pinned" in done.stderr
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, str(PACKAGING / "build.py"), f"--locked={constraints}", str(dist), str(tmp_path / "work")],
                           capture_output=True, text=True, timeout=60)
    assert built.returncode == 1 and "not building" in built.stderr and "Traceback" not in built.stderr
    assert not dist.exists()
    # and the tool writes the file it checks against
    fresh = tmp_path / "fresh.txt"
    subprocess.run([sys.executable, str(PACKAGING / "lock.py"), str(fresh)], check=True, capture_output=True, timeout=60)
    again = subprocess.run([sys.executable, str(PACKAGING / "lock.py"), "--check", str(fresh)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr


def test_every_python_has_pins_that_pyproject_allows_there() -> None:
    """Each constraints-3.X.txt satisfies pyproject.toml's requirements as they read on Python 3.X
    (PySide6's cap below 3.12, setuptools from 3.12 on): pip cannot resolve a pin its project forbids."""
    files = {path.name.removeprefix("constraints-").removesuffix(".txt"): path for path in PACKAGING.glob("constraints-*.txt")}
    assert {"3.11", "3.12", "3.13"} <= set(files), sorted(files)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(text) for text in project["dependencies"] + project["optional-dependencies"]["package"]
              + project["optional-dependencies"]["prometheus"]]
    for version, path in sorted(files.items()):
        pins = dict(line.split("==") for line in path.read_text().splitlines() if line and not line.startswith("#"))
        where = {"python_version": version, "python_full_version": f"{version}.0", "sys_platform": "linux",
                 "platform_system": "Linux", "extra": ""}
        for req in wanted:
            if req.marker is not None and not req.marker.evaluate(where):
                continue
            name = req.name.lower().replace("_", "-")
            assert name in pins, f"{path.name}: {name} is required on Python {version} but not pinned"
            assert Version(pins[name]) in req.specifier, f"{path.name}: {name}=={pins[name]} but pyproject asks {req.specifier}"
