"""The Prometheus endpoint as Prometheus users check it: the real promtool on the scraped text, and a
real Prometheus server on 127.0.0.1 scraping a real `trayapp run --headless`, queried through its API."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import ROOT, debian_tool, trayapp_cmd
from trayapp import __version__
from trayapp.engine import Tick
from trayapp.model import GpuReading, Level, RuleResult, Sample
from trayapp.synthetic import write_history

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

ALERTS = ROOT / "packaging" / "prometheus" / "trayapp-alerts.yml"
EXAMPLE = ROOT / "packaging" / "prometheus" / "prometheus.yml"
H100 = GpuReading(0, "NVIDIA H100 80GB HBM3", 99.0, 1.7, None, 412.3, 33.0, "GPU-cb9d75ea-5bb7-ecf9-e4ba-7d7c1199eb13")


def tool(name: str) -> str:
    return debian_tool(name, "prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> str:
    return urllib.request.urlopen(url, timeout=10).read().decode()


def series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """prometheus_client's own parser: (name, sorted labels) → value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def lab(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def rule(metric: str, window: float, average: float | None, level: Level) -> RuleResult:
    return RuleResult(metric, window, average, 2160, 129540.0, level, 80.0, 90.0)


@pytest.fixture
def exporter():
    from trayapp.metrics import Exporter

    exp = Exporter("127.0.0.1", 0)
    yield exp
    exp.stop()


def scrape(exp) -> str:
    return get(f"http://127.0.0.1:{exp.port}/metrics")


def test_one_name_per_quantity_with_units_gpu_labels_and_build_info(exporter) -> None:
    now = datetime.now(timezone.utc)
    results = (rule("cpu_percent", 129600, 95.0, Level.RED), rule("memory_percent", 129600, 85.0, Level.ORANGE),
               rule("gpu0_temperature_c", 600, 71.5, Level.OK))
    exporter.on_tick(Tick(Sample(now, 12.5, 40.0, 70.0, (H100,)), results, Level.RED, (), True))
    got = series(scrape(exporter))
    gpu = (("gpu", "0"), ("name", "NVIDIA H100 80GB HBM3"), ("uuid", H100.uuid))
    assert got[("trayapp_cpu_usage_ratio", ())] == 0.125  # ratios 0-1, never percent
    assert got[("trayapp_memory_usage_ratio", ())] == 0.4
    assert got[("trayapp_disk_usage_ratio", ())] == 0.7
    assert got[("trayapp_gpu_utilization_ratio", gpu)] == 0.99
    assert got[("trayapp_gpu_memory_usage_ratio", gpu)] == 0.017
    assert got[("trayapp_gpu_power_watts", gpu)] == 412.3
    assert got[("trayapp_gpu_memory_bandwidth_utilization_ratio", gpu)] == 0.33
    assert not [k for k in got if k[0] == "trayapp_gpu_temperature_celsius"]  # unknown is absent, not 0
    assert got[("trayapp_build_info", (("version", __version__),))] == 1
    assert got[("trayapp_last_sample_timestamp_seconds", ())] == pytest.approx(now.timestamp())
    cpu = (("metric", "cpu_percent"), ("window", "36h"))
    assert got[("trayapp_rule_average_ratio", cpu)] == 0.95
    assert got[("trayapp_rule_threshold_ratio", lab(metric="cpu_percent", window="36h", level="red", direction="above"))] == 0.9
    assert got[("trayapp_rule_level", cpu)] == 2
    assert got[("trayapp_rule_state", lab(metric="cpu_percent", window="36h", state="red"))] == 1
    assert got[("trayapp_rule_state", lab(metric="cpu_percent", window="36h", state="orange"))] == 0
    assert got[("trayapp_rule_level", (("metric", "memory_percent"), ("window", "36h")))] == 1
    # a rule on °C has its own name, so no name mixes units
    temp = (("metric", "gpu0_temperature_c"), ("window", "10m"))
    assert got[("trayapp_rule_average_celsius", temp)] == 71.5
    assert ("trayapp_rule_average_ratio", temp) not in got
    assert got[("trayapp_level", ())] == 2
    assert got[("process_resident_memory_bytes", ())] > 0  # prometheus_client's process collector
    assert ("python_info", ()) not in got and any(k[0] == "python_info" for k in got)
    assert not [k for k in got if k[0] == "trayapp_sample"]  # the old mixed-unit name is gone


def test_a_falling_rules_thresholds_say_their_direction(exporter) -> None:
    """``direction="below"``: the battery is orange at 20 % and under, red under 10 %; the fan
    red under 300 RPM. A rising rule beside them says ``above``."""
    now = datetime.now(timezone.utc)
    results = (RuleResult("battery_percent", 600, 8.0, 60, 590.0, Level.RED, 20.0, 10.0, "below"),
               RuleResult("fan_rpm", 300, 250.0, 150, 298.0, Level.RED, 600.0, 300.0, "below"),
               rule("cpu_percent", 129600, 50.0, Level.OK))
    exporter.on_tick(Tick(Sample(now, 50.0, 40.0, 70.0), results, Level.RED, (), True))
    got = series(scrape(exporter))
    battery = {"metric": "battery_percent", "window": "10m"}
    assert got[("trayapp_rule_threshold_ratio", lab(**battery, level="orange", direction="below"))] == 0.2
    assert got[("trayapp_rule_threshold_ratio", lab(**battery, level="red", direction="below"))] == 0.1
    assert got[("trayapp_rule_average_ratio", lab(**battery))] == 0.08
    fan = [k for k in got if k[0].startswith("trayapp_rule_threshold_") and ("metric", "fan_rpm") in k[1]]
    assert {dict(labels)["direction"] for _, labels in fan} == {"below"} and len(fan) == 2
    assert got[("trayapp_rule_threshold_ratio", lab(metric="cpu_percent", window="36h", level="red", direction="above"))] == 0.9
    assert got[("trayapp_rule_level", lab(**battery))] == 2


def test_series_that_are_no_longer_true_are_dropped(exporter) -> None:
    now = datetime.now(timezone.utc)
    two_gpus = (H100, GpuReading(1, "NVIDIA H100 80GB HBM3", 50.0, 2.0, 40.0, 100.0, 10.0, "GPU-other"))
    exporter.on_tick(Tick(Sample(now, 12.0, 40.0, 70.0, two_gpus),
                          (rule("cpu_percent", 129600, 95.0, Level.RED), rule("gpu1_util_percent", 60, 50.0, Level.OK)), Level.RED, (), True))
    before = series(scrape(exporter))
    assert ("trayapp_cpu_usage_ratio", ()) in before
    assert [k for k in before if k[0] == "trayapp_gpu_utilization_ratio" and ("gpu", "1") in k[1]]
    assert [k for k in before if k[0] == "trayapp_rule_level" and ("metric", "gpu1_util_percent") in k[1]]
    # next tick: CPU not readable, GPU 1 gone, the GPU rule deleted in the settings, no average yet
    exporter.on_tick(Tick(Sample(now + timedelta(seconds=1), None, 41.0, 70.0, (H100,)),
                          (rule("cpu_percent", 129600, None, Level.UNKNOWN),), Level.UNKNOWN, (), True))
    after = series(scrape(exporter))
    assert ("trayapp_cpu_usage_ratio", ()) not in after
    assert after[("trayapp_memory_usage_ratio", ())] == 0.41
    assert not [k for k in after if ("gpu", "1") in k[1]]
    assert [k for k in after if k[0] == "trayapp_gpu_utilization_ratio" and ("gpu", "0") in k[1]]
    assert not [k for k in after if ("metric", "gpu1_util_percent") in k[1]]
    assert not [k for k in after if k[0] == "trayapp_rule_average_ratio"]
    assert after[("trayapp_rule_level", (("metric", "cpu_percent"), ("window", "36h")))] == -1
    assert after[("trayapp_level", ())] == -1


def test_promtool_finds_nothing_to_lint(exporter) -> None:
    promtool = tool("promtool")
    now = datetime.now(timezone.utc)
    results = (rule("cpu_percent", 129600, 95.0, Level.RED), rule("cpu_percent", 129600, 95.0, Level.RED),  # twice: "36h#2"
               rule("gpu0_power_w", 3600, 300.0, Level.ORANGE))
    exporter.on_tick(Tick(Sample(now, 12.5, 40.0, 70.0, (H100,)), results, Level.RED, (), True))
    text = scrape(exporter)
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout + done.stderr) == (0, ""), text
    assert "trayapp_rule_average_watts" in text and 'window="36h#2"' in text


def test_the_shipped_alerting_rules_and_example_config_are_valid() -> None:
    promtool = tool("promtool")
    for args in (["check", "rules", str(ALERTS)], ["check", "config", str(EXAMPLE)]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr


def query(base: str, expr: str) -> list[dict]:
    answer = json.loads(get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@pytest.mark.slow  # a real Prometheus server
def test_a_real_prometheus_scrapes_the_recorder_and_the_36h_alert_fires(data_dir: Path, tmp_path: Path) -> None:
    prometheus = tool("prometheus")
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 60, {"cpu_percent": 95.0, "memory_percent": 30.0, "disk_percent": 40.0})
    port, prom_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(f"[prometheus]\nenabled = true\nport = {port}\n")
    # the example config (docs/prometheus.md), pointed at this recorder and scraping every second
    example = EXAMPLE.read_text()
    for old, new in (('"localhost:9101"', f'"127.0.0.1:{port}"'), ("scrape_interval: 15s", "scrape_interval: 1s"),
                     ("evaluation_interval: 15s", "evaluation_interval: 1s")):
        assert old in example
        example = example.replace(old, new)
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    (prom_dir / "prometheus.yml").write_text(example)
    shutil.copy(ALERTS, prom_dir / ALERTS.name)
    recorder = subprocess.Popen(trayapp_cmd("--config", str(config), "--data-dir", str(data_dir), "run", "--headless", "--interval", "0.5"),
                                stderr=subprocess.PIPE, text=True)
    server = subprocess.Popen([prometheus, f"--config.file={prom_dir / 'prometheus.yml'}", f"--storage.tsdb.path={prom_dir / 'data'}",
                               f"--web.listen-address=127.0.0.1:{prom_port}"], cwd=prom_dir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{prom_port}"
    try:
        wanted = {
            "up": 'up{job="trayapp"} == 1',
            "level": 'trayapp_rule_level{metric="cpu_percent",window="36h"}',
            "build": "trayapp_build_info",
            "rss": 'process_resident_memory_bytes{job="trayapp"}',
            "cpu": "trayapp_cpu_usage_ratio",
            "alert": 'ALERTS{alertname="TrayappAverageRed"}',
        }
        got: dict[str, list[dict]] = {}
        deadline = time.monotonic() + 35
        while time.monotonic() < deadline and len(got) < len(wanted):
            for key, expr in wanted.items():
                try:
                    result = query(base, expr)
                except OSError:  # the server is still starting
                    break
                if result:
                    got[key] = result
            time.sleep(0.5)
        assert set(got) == set(wanted), (got, recorder.poll(), server.poll())
        assert float(got["level"][0]["value"][1]) == 2  # red, as trayapp decided it
        assert got["build"][0]["metric"]["version"] == __version__
        assert float(got["rss"][0]["value"][1]) > 10e6
        assert 0 <= float(got["cpu"][0]["value"][1]) <= 1
        alert = got["alert"][0]["metric"]
        assert (alert["metric"], alert["window"], alert["severity"]) == ("cpu_percent", "36h", "critical")
        assert alert["alertstate"] == "pending"  # `for: 10m` has not passed yet
        assert not query(base, 'ALERTS{metric="memory_percent"}')  # 30 %: nothing to say
        (value,) = query(base, 'trayapp_rule_average_ratio{window="36h"} and on(job, instance, metric, window) trayapp_rule_level == 2')
        # the alert's value is the average (95 % history, diluted by the recorder's own live samples), not the level
        assert 0.9 < float(value["value"][1]) <= 0.95
    finally:
        server.send_signal(signal.SIGTERM)
        recorder.send_signal(signal.SIGTERM)
        _, prom_err = server.communicate(timeout=20)
        _, err = recorder.communicate(timeout=20)
    assert recorder.returncode == 0, err
    assert f"Prometheus metrics on http://127.0.0.1:{port}/metrics" in err


MACHINE = dict(net_recv_bytes_per_s=1_250_000.0, net_sent_bytes_per_s=0.0, disk_read_bytes_per_s=4096.0,
               disk_write_bytes_per_s=None, cpu_temperature_c=61.0, hottest_temperature_c=71.0, fan_rpm=1850.0,
               battery_percent=87.0, battery_plugged=0.0, swap_percent=None, load_percent=150.0, cpu_core_max_percent=100.0)


def test_more_of_the_machine_by_prometheus_conventions_and_null_dropped(exporter) -> None:
    now = datetime.now(timezone.utc)
    results = (rule("net_recv_bytes_per_s", 600, 2e6, Level.OK), rule("battery_plugged", 3600, 0.25, Level.OK),
               rule("fan_rpm", 600, 1800.0, Level.OK))
    exporter.on_tick(Tick(Sample(now, 12.5, 40.0, 70.0, cores=(100.0, 0.0), **MACHINE), results, Level.OK, (), True))
    text = scrape(exporter)
    got = series(text)
    assert got[("trayapp_network_receive_bytes_per_second", ())] == 1_250_000.0  # bytes stay bytes
    assert got[("trayapp_network_transmit_bytes_per_second", ())] == 0.0  # a quiet link is 0, not absent
    assert got[("trayapp_disk_read_bytes_per_second", ())] == 4096.0
    assert got[("trayapp_cpu_temperature_celsius", ())] == 61.0
    assert got[("trayapp_hottest_sensor_temperature_celsius", ())] == 71.0
    assert got[("trayapp_fan_speed_rpm", ())] == 1850.0
    assert got[("trayapp_battery_charge_ratio", ())] == 0.87
    assert got[("trayapp_power_supply_online", ())] == 0.0
    assert got[("trayapp_load_per_core_ratio", ())] == 1.5
    assert got[("trayapp_cpu_core_max_usage_ratio", ())] == 1.0
    for absent in ("trayapp_disk_write_bytes_per_second", "trayapp_swap_usage_ratio"):  # null: no series
        assert not [k for k in got if k[0] == absent]
    assert got[("trayapp_rule_average_bytes_per_second", (("metric", "net_recv_bytes_per_s"), ("window", "10m")))] == 2e6
    assert got[("trayapp_rule_average_ratio", (("metric", "battery_plugged"), ("window", "1h")))] == 0.25
    assert got[("trayapp_rule_average_rpm", (("metric", "fan_rpm"), ("window", "10m")))] == 1800.0
    if shutil.which("promtool"):
        done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), text


@pytest.mark.slow  # a flood of connections held for a while
def test_a_flood_of_idle_connections_neither_stops_scrapes_nor_grows_threads(exporter) -> None:
    import socket
    import threading

    exporter.on_tick(Tick(Sample(datetime.now(timezone.utc), 12.5, 40.0, 50.0), (), Level.OK, (), True))
    before = threading.active_count()
    idle = []
    try:
        for _ in range(350):  # connected, never a byte sent: a slow client, or one that hung
            conn = socket.create_connection(("127.0.0.1", exporter.port), timeout=5)
            idle.append(conn)
        half = idle[:50]
        for conn in half:  # half a request line, then silence
            conn.sendall(b"GET /metr")
        for _ in range(3):
            assert 0.125 in series(scrape(exporter)).values()  # the sample's cpu, whatever its name
        assert threading.active_count() <= before + exporter.server.WORKERS
    finally:
        for conn in idle:
            conn.close()
    assert 0.125 in series(scrape(exporter)).values()
    assert threading.active_count() <= before + exporter.server.WORKERS
