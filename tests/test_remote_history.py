"""A remote machine's history from Prometheus' answers: the steps and queries, the Series built from
the bins, the rules and the latest sample; and the window on a Prometheus that is down, slow or broken
(a tiny real HTTP server on 127.0.0.1; the real Prometheus is in test_fleet_history.py)."""

from __future__ import annotations

import math
import os
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import trayapp_cmd
from tests.test_fleet_prometheus import server  # noqa: F401 - the fixture
from trayapp.fleet import FleetState, Health, Machine
from trayapp.storage.window_series import BINS, prepare_history
from trayapp.model import METRICS
from trayapp.model import Level
from trayapp.remote_history import (
    SERIES_LABEL,
    bin_query,
    nice_step,
    rules_from_vector,
    sample_from_vector,
    series_from_bins,
)


@pytest.mark.parametrize(("span", "step"), [
    (600, 1), (36 * 3600, 90), (7 * 86400, 450), (30 * 86400, 1800), (365 * 86400, 21600), (3 * 365 * 86400, 86400),
])
def test_each_range_gets_a_step_that_nests_in_hours_or_days_and_at_most_bins_of_it(span: int, step: int) -> None:
    assert nice_step(span) == step
    assert span / step <= BINS or step == 86400
    assert 3600 % step == 0 if step <= 3600 else 86400 % step == 0


def test_a_bin_query_keeps_each_series_name_and_quotes_the_machine() -> None:
    expr = bin_query("max", 90, 'gpu-"3":9101', "trayapp", ["trayapp_cpu_usage_ratio", "trayapp_gpu_utilization_ratio"])
    parts = expr.split(" or ")
    assert parts == [
        'label_replace(max_over_time(trayapp_cpu_usage_ratio{instance="gpu-\\"3\\":9101",job="trayapp"}[90s]), '
        f'"{SERIES_LABEL}", "trayapp_cpu_usage_ratio", "", "")',
        'label_replace(max_over_time(trayapp_gpu_utilization_ratio{instance="gpu-\\"3\\":9101",job="trayapp"}[90s]), '
        f'"{SERIES_LABEL}", "trayapp_gpu_utilization_ratio", "", "")',
    ]
    assert len(bin_query("min", 90, "a:1", "trayapp").split(" or ")) == len(METRICS) + 5  # every sample series a recorder serves


def answers_from_samples(t: np.ndarray, columns: dict[str, np.ndarray], start: float, end: float, step: int) -> dict:
    """What Prometheus answers for the four bin queries over these samples: each function over
    ``[t_i - step, t_i]`` at ``t_i = origin + (i + 1) * step``, values as ratios."""
    origin = math.floor(start / step) * step
    n = math.floor((end - origin) / step) + 1
    out: dict[str, list] = {f: [] for f in ("min", "max", "sum", "count")}
    for column, values in columns.items():
        name = METRICS[column].prometheus
        points: dict[str, list] = {f: [] for f in out}
        for i in range(n):
            at = origin + (i + 1) * step
            inside = (t >= at - step) & (t <= at)
            if not inside.any():
                continue
            v = values[inside] / 100
            for f, x in (("min", v.min()), ("max", v.max()), ("sum", v.sum()), ("count", float(inside.sum()))):
                points[f].append([at, repr(float(x))])
        for f in out:
            out[f].append({"metric": {SERIES_LABEL: name, "instance": "m:9101", "job": "trayapp"}, "values": points[f]})
    return out


def test_bins_from_prometheus_draw_the_band_and_the_hourly_means_the_local_reader_draws(tmp_path: Path) -> None:
    from trayapp.synthetic import write_samples

    end = math.floor(time.time()) - 0.5
    t = np.arange(end - 40 * 3600, end, 60.0)
    cpu = 50 + 40 * np.sin(t / 4000.0)
    write_samples(tmp_path / "data", t, {"cpu_percent": cpu, "memory_percent": np.full(len(t), 30.0), "disk_percent": np.full(len(t), 1.0)},
                  today_in_csv=False)  # Parquet keeps each value whole (the CSV day file rounds it)
    span = 36 * 3600.0
    start = end - span
    step = nice_step(span)
    series = series_from_bins(span, start, end, step, answers_from_samples(t, {"cpu_percent": cpu}, start, end, step))
    assert "cpu_percent" in series.binned and series.mean_period == "hourly"
    x, y = series.curves["cpu_percent"]
    centres, lo, hi = (x[0::2] + x[1::2]) / 2, y[0::2], y[1::2]
    for c, low, high in zip(centres, lo, hi):
        inside = (t >= c - step / 2) & (t <= c + step / 2)
        if not inside.any():  # past the last sample
            assert np.isnan(low) and np.isnan(high) and c > t[-1]
            continue
        assert low == pytest.approx(cpu[inside].min()) and high == pytest.approx(cpu[inside].max())
    # the same hours, the same means as this machine's own reader draws from its files
    local = prepare_history(tmp_path / "data", span, now=datetime.fromtimestamp(end, timezone.utc))
    lx, lm = local.means["cpu_percent"]
    rx, rm = series.means["cpu_percent"]
    theirs = {round(x // 3600): m for x, m in zip(lx, lm) if np.isfinite(m)}
    mine = {round(x // 3600): m for x, m in zip(rx, rm) if np.isfinite(m)}
    common = sorted(set(theirs) & set(mine))
    assert len(common) >= 34
    assert [mine[h] for h in common] == pytest.approx([theirs[h] for h in common], rel=1e-9)


def test_garbage_in_an_answer_is_skipped_not_drawn() -> None:
    answers = {"min": [{"metric": {SERIES_LABEL: "trayapp_cpu_usage_ratio"}, "values": [[1000.0, "NaN"], ["x", "1"], [1090.0, "0.5"]]},
                       {"metric": {SERIES_LABEL: "not_ours"}, "values": [[1090.0, "0.5"]]}, {"metric": "nonsense"}],
               "max": [{"metric": {SERIES_LABEL: "trayapp_cpu_usage_ratio"}, "values": [[1090.0, "0.7"]]}],
               "count": [{"metric": {SERIES_LABEL: "trayapp_cpu_usage_ratio"}, "values": [[1090.0, "2"]]}]}
    series = series_from_bins(1000.0, 1000.0, 1100.0, 90, answers)  # no sums: no mean, the band still drawn
    assert list(series.curves) == [] or set(series.curves) == {"cpu_percent"}
    assert series_from_bins(1000.0, 1000.0, 1100.0, 90, {}).curves == {}


def test_the_remote_rules_come_back_in_the_datasets_units_with_their_levels() -> None:
    def item(name: str, value: float, **labels: str) -> dict:
        return {"metric": {"__name__": name, "instance": "m:9101", "job": "trayapp", **labels}, "value": [1.0, repr(value)]}

    rules, results = rules_from_vector([
        item("trayapp_rule_threshold_ratio", 0.8, metric="cpu_percent", window="36h", level="orange", direction="above"),
        item("trayapp_rule_threshold_ratio", 0.9, metric="cpu_percent", window="36h", level="red", direction="above"),
        item("trayapp_rule_average_ratio", 0.95, metric="cpu_percent", window="36h"),
        item("trayapp_rule_level", 2, metric="cpu_percent", window="36h"),
        item("trayapp_rule_coverage_seconds", 7200, metric="cpu_percent", window="36h"),
        item("trayapp_rule_samples", 120, metric="cpu_percent", window="36h"),
        item("trayapp_rule_threshold_celsius", 70, metric="gpu0_temperature_c", window="10m", level="orange", direction="above"),
        item("trayapp_rule_threshold_celsius", 85, metric="gpu0_temperature_c", window="10m", level="red", direction="above"),
        item("trayapp_rule_threshold_ratio", 0.2, metric="battery_percent", window="1h", level="orange"),  # no red: left out
        item("trayapp_rule_threshold_ratio", 0.5, metric="x", window="nonsense", level="orange"),
    ])
    assert [(r.metric, r.window_seconds, r.orange, r.red) for r in rules] == [
        ("cpu_percent", 129600.0, 80.0, 90.0), ("gpu0_temperature_c", 600.0, 70.0, 85.0)]
    cpu = results[0]
    assert (cpu.average, cpu.level, cpu.coverage_seconds, cpu.samples) == (pytest.approx(95.0), Level.RED, 7200.0, 120)
    assert (results[1].average, results[1].level) == (None, Level.UNKNOWN)


def test_the_latest_sample_of_a_remote_machine_has_its_gpus_and_its_time() -> None:
    def item(series: str, value: float, **labels: str) -> dict:
        return {"metric": {"__name__": series, **labels}, "value": [1.0, repr(value)]}

    sample = sample_from_vector([
        item("trayapp_last_sample_timestamp_seconds", 1_700_000_000.5),
        item("trayapp_cpu_usage_ratio", 0.42), item("trayapp_memory_usage_ratio", 0.5),
        item("trayapp_network_receive_bytes_per_second", 1024.0),
        item("trayapp_gpu_utilization_ratio", 0.94, gpu="0", name="H100"), item("trayapp_gpu_power_watts", 300.0, gpu="0"),
        item("trayapp_gpu_utilization_ratio", 0.1, gpu="oops"),
    ])
    assert sample is not None and sample.timestamp == datetime.fromtimestamp(1_700_000_000.5, timezone.utc)
    assert (sample.cpu_percent, sample.memory_percent, sample.disk_percent, sample.net_recv_bytes_per_s) == (pytest.approx(42.0), 50.0, None, 1024.0)
    assert [(g.index, g.name, g.util_percent, g.power_w) for g in sample.gpus] == [(0, "H100", pytest.approx(94.0), 300.0)]
    assert sample_from_vector([]) is None


def test_reading_a_remote_machine_loads_neither_arrow_nor_pandas() -> None:
    code = ("import sys, time\nfrom trayapp.remote_history import series_from_bins, SERIES_LABEL\n"
            "end = time.time()\nanswers = {f: [{'metric': {SERIES_LABEL: 'trayapp_cpu_usage_ratio'}, 'values': [[end - 90 * i, '0.5']]}"
            " for i in range(1, 100)] for f in ('min', 'max', 'sum')}\n"
            "answers['count'] = [{'metric': {SERIES_LABEL: 'trayapp_cpu_usage_ratio'}, 'values': [[end - 90 * i, '1'] for i in range(1, 100)]}]\n"
            "series = series_from_bins(36 * 3600, end - 36 * 3600, end, 90, answers)\nassert 'cpu_percent' in series.means, series\n"
            "print(sorted(m for m in ('pyarrow', 'pandas') if m in sys.modules))\n")
    done = subprocess.run([*trayapp_cmd()[:1], "-c", code], capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


# ------------------------------------------------------------------- the window on a broken Prometheus


@pytest.fixture
def window(qtbot, tmp_path: Path, server):  # noqa: F811 - the fixture
    from trayapp.gui.history import HistoryWindow
    from trayapp.gui.live import LiveBuffer
    from trayapp.settings import Config
    from trayapp.synthetic import write_history

    now = datetime.now(timezone.utc)
    write_history(tmp_path / "data", now - timedelta(hours=36), now, 60, {"cpu_percent": 30.0, "memory_percent": 40.0, "disk_percent": 1.0})
    config = Config(fleet_url=server.url)
    w = HistoryWindow(tmp_path / "data", LiveBuffer(), config)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitSignal(w.range_loaded, timeout=30000).wait() if w.shown_series is None else None
    w.set_fleet(FleetState(server.url, (Machine("gpu-3:9101", "gpu-3", Health.RED, "", None),)), config)
    yield w
    w.shutdown()


def test_the_picker_shows_only_with_a_fleet_and_this_machine_first(qtbot, tmp_path: Path) -> None:
    from trayapp.gui.history import THIS_MACHINE, HistoryWindow
    from trayapp.gui.live import LiveBuffer
    from trayapp.settings import Config

    w = HistoryWindow(tmp_path, LiveBuffer(), Config())
    qtbot.addWidget(w)
    w.set_fleet(None, Config())
    assert w.picker.isHidden()
    config = Config(fleet_url="http://127.0.0.1:9")
    w.set_fleet(FleetState("http://127.0.0.1:9", ()), config)
    assert w.picker.isHidden()  # a fleet of no machines
    w.set_fleet(FleetState("http://127.0.0.1:9", (Machine("b:1", "b", Health.OK, "", None), Machine("a:1", "a", Health.RED, "", None))), config)
    assert not w.picker.isHidden() and [w.picker.itemText(i) for i in range(3)] == [THIS_MACHINE, "b — ok", "a — red"]
    w.set_fleet(FleetState("http://127.0.0.1:9", error="connection refused"), config)
    assert w.picker.count() == 3  # a failed poll leaves the list
    w.set_fleet(None, Config())  # the fleet turned off
    assert w.picker.isHidden() and w.picker.count() == 1
    w.shutdown()


@pytest.mark.parametrize(("status", "body", "said"), [
    (200, b"<html>not the API</html>", "did not answer as Prometheus' API does (not JSON: is the URL the Prometheus server?)"),
    (503, b"down", "answered HTTP 503 Service Unavailable"),
    (200, b'{"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}}', "answered the query with something other than a vector"),
])
def test_a_broken_prometheus_is_one_line_in_the_window_and_this_machine_still_shows(qtbot, window, server, status, body, said) -> None:  # noqa: F811
    server.status, server.body = status, body
    window.choose_machine("gpu-3:9101")
    qtbot.waitUntil(lambda: window.status.text().startswith("Could not read"), timeout=20000)
    assert window.status.text() == f"Could not read gpu-3 from Prometheus: {server.url} {said}"
    assert all(not len(mp.drawn()["lo"][0]) and not len(mp.drawn()["line"][0]) for mp in window.metric_plots.values())  # nothing of this machine under its name
    with qtbot.waitSignal(window.range_loaded, timeout=30000):
        window.choose_machine(None)
    assert window.status.text() == "" and np.nanmax(window.metric_plots["cpu_percent"].drawn()["hi"][1]) == pytest.approx(30.0)


@pytest.mark.slow  # over a second or two: `make test-all`
def test_a_slow_prometheus_holds_no_read_of_this_machine_and_its_late_answer_is_dropped(qtbot, window, server) -> None:  # noqa: F811
    server.delay = 3.0
    server.status, server.body = 503, b"late"
    window.choose_machine("gpu-3:9101")
    assert window.status.text() == "Loading…"
    with qtbot.waitSignal(window.range_loaded, timeout=30000):  # this machine's read does not wait for Prometheus
        window.choose_machine(None)
    assert len(server.queries) <= 1  # it was still answering
    time.sleep(3.5)
    qtbot.wait(200)
    assert window.machine is None and window.status.text() == ""  # the late answer: not shown
    assert np.nanmax(window.metric_plots["cpu_percent"].drawn()["hi"][1]) == pytest.approx(30.0)
