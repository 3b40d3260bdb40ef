"""A real X session for tests and screenshots: Xvfb, plus trayer as the system-tray host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


class XSession:
    def __init__(self, width: int = 1024, height: int = 768, tray: bool = True) -> None:
        self.display = f":{free_display()}"
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "DISPLAY": self.display}
        self.env.pop("QT_QPA_PLATFORM", None)
        self.env.pop("WAYLAND_DISPLAY", None)
        self.procs.append(subprocess.Popen(
            ["Xvfb", self.display, "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        self._wait_for_x()
        if tray:
            self.procs.append(subprocess.Popen(
                ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "24",
                 "--SetDockType", "true", "--transparent", "false", "--tint", "0x303030"],
                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            time.sleep(1.0)

    def _wait_for_x(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if subprocess.run(["xdpyinfo"], env=self.env, capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"Xvfb did not start on {self.display}")

    def screenshot(self, path: Path) -> Path:
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True, capture_output=True, timeout=30)
        return path

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()

    def __enter__(self) -> "XSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop_app(app: subprocess.Popen, stderr: Any) -> str:
    """SIGTERM to a real app under test (SIGKILL if it does not stop in 30 s); what it wrote to
    ``stderr`` (an open file), which is then closed."""
    app.terminate()
    try:
        app.wait(30)
    except subprocess.TimeoutExpired:
        app.kill()
        app.wait()
    stderr.seek(0)
    text = stderr.read()
    stderr.close()
    return text


def available() -> str | None:
    """None when Xvfb, trayer, xdpyinfo and import are all installed, else what is missing."""
    missing = [tool for tool in ("Xvfb", "trayer", "xdpyinfo", "import") if shutil.which(tool) is None]
    return ", ".join(missing) or None


def skip_without_x() -> None:
    """At the top of a real-display test module: skip it outside CI when a tool is missing; in CI
    (``.ci/run`` installs them) a missing tool fails its tests instead."""
    missing = available()
    if missing and not os.environ.get("CI"):
        import pytest

        pytest.skip(f"needs {missing} (installed by .ci/run)", allow_module_level=True)


def run_in_x(code: str, *args: str, width: int = 900, height: int = 700, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    """``code`` run by a fresh Python on a real X display (Xvfb, no tray host, the xcb platform),
    with ``args``: what the last line it printed says, as JSON. It must exit 0."""
    with XSession(width, height, tray=False) as x:
        done = subprocess.run([sys.executable, "-c", code, *args], env={**x.env, "TRAYAPP_NO_KEYRING": "1", **(env or {})},
                              capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
