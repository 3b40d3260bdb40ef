"""The history window on a remote machine: a real Prometheus, holding a recorder's 36 hours (backfilled
with promtool from the samples that recorder keeps) and scraping it live, read by the real tray app."""

from __future__ import annotations

import json
import math
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import debian_tool, trayapp_cmd
from tests.test_fleet_prometheus import Fleet, free_port, start_app
from trayapp.storage.window_series import BINS
from trayapp.model import METRICS
from trayapp.remote_history import nice_step

HOURS = 36
STEP = 60.0  # the recorder's history: a sample a minute, at half seconds (never on a bin's edge)


def cpu(t: np.ndarray) -> np.ndarray:
    return 50 + 45 * np.sin(t / 5000.0) * np.cos(t / 777.0)


def memory(t: np.ndarray) -> np.ndarray:
    return 40 + 20 * np.sin(t / 3000.0)


class History(Fleet):
    """One recorder whose 36 hours Prometheus holds from before it started scraping."""

    def start(self) -> None:
        from trayapp.synthetic import write_samples

        folder = self.tmp / "remote"
        self.history_end = math.floor(time.time()) - 180.5
        stamps = np.arange(self.history_end, self.history_end - HOURS * 3600 - 1800, -STEP)[::-1]
        columns = {"cpu_percent": cpu(stamps), "memory_percent": memory(stamps), "disk_percent": np.full(len(stamps), 40.0)}
        write_samples(folder / "data", stamps, columns)
        port = free_port()
        self.ports["remote"] = port
        (folder / "config.toml").write_text(f"[prometheus]\nenabled = true\nport = {port}\n")
        # what Prometheus would hold had it scraped the recorder all along: each sample it keeps (its
        # own export: today's CSV day file rounds a value), at its own time
        stamps, kept = exported(self)
        columns = {**kept, "disk_percent": np.full(len(stamps), 40.0)}
        lines = []
        for column, values in columns.items():
            name = METRICS[column].prometheus
            lines.append(f"# TYPE {name} gauge")
            lines += [f'{name}{{instance="127.0.0.1:{port}",job="trayapp"}} {float(v) / 100!r} {float(t):.3f}' for t, v in zip(stamps, values)]
        (self.tmp / "history.om").write_text("\n".join(lines) + "\n# EOF\n")
        prom_dir = self.tmp / "prom"
        prom_dir.mkdir()
        made = subprocess.run([debian_tool("promtool", "prometheus"), "tsdb", "create-blocks-from", "openmetrics",
                               str(self.tmp / "history.om"), str(prom_dir / "data")], capture_output=True, text=True, timeout=300)
        assert made.returncode == 0, made.stderr
        with open(folder / "stderr.txt", "w") as stderr:
            self.recorders["remote"] = subprocess.Popen(
                trayapp_cmd("--config", str(folder / "config.toml"), "--data-dir", str(folder / "data"), "run", "--headless", "--interval", "1"),
                stdout=subprocess.DEVNULL, stderr=stderr)
        self._start_prometheus(prom_dir)

    def _start_prometheus(self, prom_dir: Path) -> None:
        (prom_dir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}\n"
            f"scrape_configs:\n  - job_name: trayapp\n    static_configs:\n      - targets: ['127.0.0.1:{self.ports['remote']}']\n")
        port = free_port()
        self.server = subprocess.Popen([debian_tool("prometheus", "prometheus"), f"--config.file={prom_dir / 'prometheus.yml'}",
                                        f"--storage.tsdb.path={prom_dir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                                       cwd=prom_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    debian_tool("prometheus", "prometheus")
    pytest.importorskip("prometheus_client")
    running = History(tmp_path_factory.mktemp("remote-history"))
    try:
        running.start()
        yield running
    finally:
        running.stop(running.server)
        for proc in running.recorders.values():
            running.stop(proc)


def exported(remote: History) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The recorder's own samples, as ``trayapp export`` gives them."""
    folder = remote.tmp / "remote"
    done = subprocess.run(trayapp_cmd("--config", str(folder / "config.toml"), "--data-dir", str(folder / "data"), "export",
                                      "--since", f"{HOURS + 2}h", "--format", "json"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    t = np.array([datetime.fromisoformat(r["timestamp"]).timestamp() for r in rows])
    return t, {c: np.array([np.nan if r.get(c) is None else r[c] for r in rows], dtype=float) for c in ("cpu_percent", "memory_percent")}


@pytest.mark.slow  # a real Prometheus server and a recorder
def test_the_window_on_a_remote_machine_draws_its_own_history_binned_and_goes_back_to_this_one(qtbot, remote: History, tmp_path: Path) -> None:
    from trayapp.gui.history import THIS_MACHINE

    before = time.time()  # this machine's history (30 % all along) ends here; its live samples follow
    app, _shown = start_app(qtbot, tmp_path, remote.url, cpu=30.0)
    try:
        instance = remote.name("remote")
        qtbot.waitUntil(lambda: app.fleet_state is not None and [m.instance for m in app.fleet_state.machines] == [instance]
                        and app.fleet_state.machines[0].level.value != "unknown", timeout=60000)
        name = app.fleet_state.machines[0].name  # the host alone: no other recorder shares it
        app.show_history(HOURS * 3600)
        window = app.window
        qtbot.waitUntil(lambda: window.picker.isVisible() and window.picker.count() == 2, timeout=10000)
        assert window.picker.itemText(0) == THIS_MACHINE and window.picker.itemText(1).startswith(f"{name} — ")
        with qtbot.waitSignal(window.range_loaded, timeout=60000) as loaded:
            window.picker.setCurrentIndex(1)
            window.picker.activated.emit(1)  # as a person's choice
        series = loaded.args[0]
        assert window.machine == instance and name in window.windowTitle() and name in window.span_label.text()
        step = nice_step(HOURS * 3600)
        assert series.tier == f"prometheus {step} s" and (series.end - series.start) / step <= BINS

        t, columns = exported(remote)
        first = t[0]
        for column in ("cpu_percent", "memory_percent"):
            drawn = window.metric_plots[column].drawn()
            centres, lo = drawn["lo"]
            _, hi = drawn["hi"]
            compared = 0
            for c, low, high in zip(centres, lo, hi):
                a, b = c - step / 2, c + step / 2
                if a < first or b > remote.history_end:
                    continue  # only bins wholly in the history the recorder kept before Prometheus scraped it
                inside = (t >= a) & (t <= b)
                assert inside.any(), (column, c)
                assert low == pytest.approx(columns[column][inside].min(), rel=1e-9) and high == pytest.approx(columns[column][inside].max(), rel=1e-9), (column, c)
                compared += 1
            assert compared > HOURS * 3600 / step * 0.9, compared
            # the hourly means: each whole hour of the recorder's samples
            mx, my = drawn["mean"]
            hours = 0
            for x, m in zip(mx, my):
                if not np.isfinite(m):
                    continue
                offset = datetime.fromtimestamp(x).astimezone().utcoffset().total_seconds()
                begin = math.floor((x + offset) / 3600) * 3600 - offset
                if begin < first or begin + 3600 > remote.history_end:
                    continue
                inside = (t >= begin) & (t < begin + 3600)
                assert m == pytest.approx(columns[column][inside].mean(), rel=1e-9), (column, x)
                hours += 1
            assert hours >= HOURS - 2, hours
        # the recent minutes, scraped live, are drawn too
        centres, lo = window.metric_plots["cpu_percent"].drawn()["lo"]
        assert np.isfinite(lo[centres > remote.history_end + step]).any()
        # the remote machine's own rules: its thresholds and its 36 h average
        assert [r.metric for r in window._remote_results] == ["cpu_percent", "memory_percent"]
        marks = [text for _, text, _ in window.metric_plots["cpu_percent"].margin.marks]
        assert "red 90" in marks and "orange 80" in marks and any(m.startswith("36 h avg ") for m in marks)
        assert "CPU" in window.summary.text()
        # the Now panel: the remote machine's latest numbers, no process list (that is this machine's)
        assert window.now.remote == name and window.now.values["cpu_percent"].text().endswith("%")
        assert window.now.top_cpu.isHidden()
        # the hover readout reads the remote curves
        x = float(centres[len(centres) // 2])
        window.hover_at(x)
        assert "CPU" in window.readout.text()
        # a zoom reads again with a finer step: 6 hours of the history in 15 s bins
        zoom_end = remote.history_end - 3600
        with qtbot.waitSignal(window.range_loaded, timeout=30000) as zoomed:
            window._move_to(zoom_end - 6 * 3600, zoom_end)  # as a person's drag across a stretch
        fine = nice_step(6 * 3600)
        assert zoomed.args[0].tier == f"prometheus {fine} s" and fine < step
        centres, lo = window.metric_plots["cpu_percent"].drawn()["lo"]
        _, hi = window.metric_plots["cpu_percent"].drawn()["hi"]
        compared = 0
        for c, low, high in zip(centres, lo, hi):
            inside = (t >= c - fine / 2) & (t <= c + fine / 2)
            if inside.any():  # bins between two samples a minute apart are bridged, as a local range's are
                assert low == pytest.approx(columns["cpu_percent"][inside].min(), rel=1e-9) and high == pytest.approx(columns["cpu_percent"][inside].max(), rel=1e-9)
                compared += 1
        assert compared >= 6 * 60 - 2, compared
        # Live: the last ten minutes from the samples Prometheus scraped, read again as they come
        with qtbot.waitSignal(window.range_loaded, timeout=30000) as live:
            window.show_range(600)
        assert live.args[0].tier == "prometheus samples" and live.args[0].rows >= 1

        # back to this machine: its own data and rules, exactly as before
        with qtbot.waitSignal(window.range_loaded, timeout=30000):
            window.show_range(HOURS * 3600)
        with qtbot.waitSignal(window.range_loaded, timeout=30000):
            window.picker.setCurrentIndex(0)
            window.picker.activated.emit(0)
        assert window.machine is None and window.windowTitle() == "trayapp — history"
        cpu_now = window.metric_plots["cpu_percent"].drawn()
        kept = cpu_now["lo"][0] < before - 3600  # this machine's history, before its live samples
        values = np.concatenate([cpu_now["lo"][1][kept], cpu_now["hi"][1][kept]])
        assert kept.sum() > 1000 and np.nanmin(values) == pytest.approx(30.0) and np.nanmax(values) == pytest.approx(30.0)
        assert window.now.remote is None and not window.now.top_cpu.isHidden() or window.now.width() < 700

        # Prometheus gone: one line in the status line, the window goes on
        with qtbot.waitSignal(window.range_loaded, timeout=60000):
            window.picker.setCurrentIndex(1)
            window.picker.activated.emit(1)
        remote.stop(remote.server)
        window.show_range(7 * 86400)
        qtbot.waitUntil(lambda: window.status.text().startswith("Could not read"), timeout=30000)
        assert window.status.text() == f"Could not read {name} from Prometheus: cannot reach Prometheus at {remote.url}: connection refused (is it running?)"
        assert "\n" not in window.status.text()
        with qtbot.waitSignal(window.range_loaded, timeout=30000):
            window.picker.setCurrentIndex(0)
            window.picker.activated.emit(0)
        assert window.machine is None and window.status.text() == ""
    finally:
        app.shutdown()
