"""Screenshots of a fleet for the README: the tray's tooltip listing machines, and the history window on a remote machine.

    .venv/bin/python tools/fleet_screenshots.py   # writes docs/screenshots/fleet-tooltip.png and history-remote.png

Real parts, on made-up but plausible data: three recorders (``run --headless`` with their Prometheus
endpoint), a real Prometheus (Debian's) holding their past 36 hours (backfilled with promtool from
the samples each recorder keeps) and scraping them live, and the real tray app under Xvfb.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.xsession import XSession  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
HOURS = 38
MACHINES = {  # name → (CPU level around which it works, GPU or not)
    "gpu-3": (93.0, True),
    "gpu-1": (84.0, True),
    "laptop": (22.0, False),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def history(level: float, gpu: bool, seed: int):
    """Stamps every 2 minutes over ``HOURS`` and each column's values."""
    import numpy as np

    rng = np.random.default_rng(seed)
    end = time.time() - 60
    t = np.arange(end - HOURS * 3600, end, 120.0)
    hours = (t - t[0]) / 3600
    cpu = np.clip(level + 6 * np.sin(hours / 2) + rng.normal(0, 4, len(t)) - (hours % 24 < 1.5) * 40, 0, 100)
    columns = {
        "cpu_percent": cpu,
        "memory_percent": np.clip(55 + level / 4 + 3 * np.sin(hours / 5) + rng.normal(0, 1, len(t)), 0, 100),
        "disk_percent": np.full(len(t), 48.0),
        "cpu_core_max_percent": np.clip(cpu + 9 + rng.normal(0, 2, len(t)), 0, 100),
        "load_percent": np.clip(cpu * 0.9, 0, 150),
    }
    if gpu:
        columns["gpu0_util_percent"] = np.clip(np.where(hours % 24 > 1.5, rng.normal(96, 2, len(t)), rng.normal(3, 1, len(t))), 0, 100)
        columns["gpu0_temperature_c"] = np.where(columns["gpu0_util_percent"] > 50, 71.0, 34.0) + rng.normal(0, 1, len(t))
    return t, columns


def openmetrics(instance: str, t, columns) -> str:
    from trayapp.metrics import _BASE, _GPU, unit_of

    lines = []
    for column, values in columns.items():
        if column.startswith("gpu0_"):
            field = column[len("gpu0_"):]
            name, labels = _GPU[field][0], f'gpu="0",name="NVIDIA H100 80GB HBM3",uuid="GPU-0",'
        else:
            name, labels = _BASE[column][0], ""
        divisor = unit_of(column)[1]
        lines.append(f"# TYPE {name} gauge")
        lines += [f'{name}{{{labels}instance="{instance}",job="trayapp"}} {float(v) / divisor!r} {float(s):.3f}' for s, v in zip(t, values)]
    return "\n".join(lines) + "\n"


def main() -> None:
    from trayapp.synthetic import write_samples

    os.environ.pop("QT_QPA_PLATFORM", None)
    OUT.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        targets, backfill = [], []
        for seed, (name, (level, gpu)) in enumerate(MACHINES.items()):
            t, columns = history(level, gpu, seed)
            write_samples(tmp / name / "data", t, {c: v for c, v in columns.items() if not c.startswith("gpu")})
            port = free_port()
            (tmp / name / "config.toml").write_text(f"[prometheus]\nenabled = true\nport = {port}\n")
            procs.append(subprocess.Popen([sys.executable, "-m", "trayapp.cli", "--config", str(tmp / name / "config.toml"),
                                           "--data-dir", str(tmp / name / "data"), "run", "--headless", "--interval", "2"],
                                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            targets.append(f"      - targets: ['127.0.0.1:{port}']\n        labels: {{instance: '{name}:9101'}}\n")
            backfill.append(openmetrics(f"{name}:9101", t, columns))
        prom = tmp / "prom"
        prom.mkdir()
        (tmp / "history.om").write_text("".join(backfill) + "# EOF\n")
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(tmp / "history.om"), str(prom / "data")],
                       check=True, capture_output=True)
        (prom / "prometheus.yml").write_text("global: {scrape_interval: 2s, scrape_timeout: 1s}\nscrape_configs:\n"
                                             "  - job_name: trayapp\n    static_configs:\n" + "".join(targets))
        prom_port = free_port()
        procs.append(subprocess.Popen([shutil.which("prometheus") or "prometheus", f"--config.file={prom / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={prom / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                                      cwd=prom, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        local = tmp / "local"
        t, columns = history(35.0, False, 9)
        write_samples(local, t, columns)
        try:
            shoot(tmp, local, f"http://127.0.0.1:{prom_port}")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(20)
    print("\n".join(str(OUT / n) for n in ("fleet-tooltip.png", "history-remote.png")))


def shoot(tmp: Path, local: Path, url: str) -> None:
    with XSession(1280, 860) as x:
        config = tmp / "c.toml"
        config.write_text(f'[fleet]\nurl = "{url}"\ninterval = "2s"\nscope = "fleet too"\n\n[sampling]\ninterval_seconds = 1.0\n')
        env = {**x.env, "TRAYAPP_DATA_DIR": str(local), "TRAYAPP_CONFIG": str(config), "TRAYAPP_NO_KEYRING": "1"}
        code = f"""
import sys, subprocess
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QTimer
from trayapp.gui.app import TrayApp
from trayapp.settings import load
app = QApplication([])
app.setQuitOnLastWindowClosed(False)
t = TrayApp(load(Path({str(config)!r})), Path({str(local)!r}), Path({str(config)!r}))
t.start()
def shoot(name, widget=None, above=0):
    args = ["import", "-window", "root"]
    if widget is not None:  # ``above``: room over the window for the picker's list
        g = widget.frameGeometry()
        args += ["-crop", f"{{g.width()}}x{{g.height() + above}}+{{g.x()}}+{{g.y() - above}}"]
    subprocess.run(args + [{str(OUT)!r} + "/" + name], check=True)
def pick():
    w = t.window
    w.choose_machine(next(w.picker.itemData(i) for i in range(w.picker.count()) if str(w.picker.itemText(i)).startswith("gpu-3")))
steps = [
    lambda: subprocess.run(["xdotool", "mousemove", "1268", "12"]),
    lambda: shoot("fleet-tooltip.png"),
    lambda: (subprocess.run(["xdotool", "mousemove", "5", "700"]), t.show_history(36 * 3600), t.window.setGeometry(40, 90, 1100, 760)),
    pick,
    lambda: t.window.picker.showPopup(),
    lambda: shoot("history-remote.png", t.window, above=40),
    t.quit,
]
for i, f in enumerate(steps):
    QTimer.singleShot(12000 + 4000 * i, f)
app.exec()
"""
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=180)
    subprocess.run(["convert", str(OUT / "fleet-tooltip.png"), "-crop", "760x260+520+0", "+repage", str(OUT / "fleet-tooltip.png")], check=True)


if __name__ == "__main__":
    main()
