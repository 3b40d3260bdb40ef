"""The new metrics where people meet them: the tooltip (when a rule watches one), the rules editor's
drop-down and spin boxes (bytes/s and RPM reach far past 100), and the rule line's units."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from trayapp.engine import Tick, describe
from trayapp.model import MACHINE_COLUMNS, Level, RuleResult, Sample
from trayapp.rules import Rule
from trayapp.settings import Config

pytest.importorskip("PySide6.QtWidgets")

from trayapp.gui.app import tooltip_text  # noqa: E402
from trayapp.gui.settings_dialog import SettingsDialog  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
SAMPLE = Sample(NOW, 23.0, 41.0, 70.0, net_recv_bytes_per_s=12_345_678.0, fan_rpm=1850.0, battery_plugged=1.0,
                cpu_core_max_percent=97.0, cores=(97.0, 3.0))


def test_the_tooltip_shows_a_new_metric_only_when_a_rule_watches_it() -> None:
    plain = tooltip_text(Tick(SAMPLE, (), Level.OK, (), True), rules=(Rule("cpu_percent"),))
    assert "network" not in plain and "RPM" not in plain
    rules = (Rule("net_recv_bytes_per_s", 600, 50e6, 100e6, 60), Rule("fan_rpm", 600, 3000, 4500, 60),
             Rule("battery_plugged", 3600, 0.5, 0.9, 60))
    results = (RuleResult("net_recv_bytes_per_s", 600, 2_000_000.0, 300, 598.0, Level.OK, 50e6, 100e6),
               RuleResult("fan_rpm", 600, 1800.0, 300, 598.0, Level.OK, 3000, 4500),
               RuleResult("battery_plugged", 3600, 0.25, 300, 3598.0, Level.OK, 0.5, 0.9))
    lines = tooltip_text(Tick(SAMPLE, results, Level.OK, (), True), rules=rules).splitlines()
    assert "network receive 12.3 MB/s   fan 1,850 RPM   on AC power plugged in" in lines
    assert "10 min avg network receive 2.00 MB/s — ok (over 10 min of data)" in lines
    assert "10 min avg fan 1,800 RPM — ok (over 10 min of data)" in lines
    assert describe(results[0]) == "10 min avg net_recv_bytes_per_s 2000000.0 B/s — ok (over 10 min of data)"  # logs: raw


def test_the_rules_editor_offers_new_metrics_with_units_and_wide_spin_boxes(qtbot, tmp_path: Path) -> None:
    metrics = ("cpu_percent", "memory_percent", "disk_percent", *MACHINE_COLUMNS)
    rules = (Rule("net_recv_bytes_per_s", 600, 50e6, 100e6, 60), Rule("fan_rpm", 600, 3000, 4500, 60),
             Rule("swap_percent", 3600, 50, 80, 60))
    dialog = SettingsDialog(Config(rules=rules), tmp_path / "config.toml", tmp_path / "data", metrics=metrics)
    qtbot.addWidget(dialog)
    dialog.show()
    net, fan, swap = dialog.rule_rows
    names = [net.metric.itemText(i) for i in range(net.metric.count())]
    assert {"Network receive (B/s)", "Disk write (B/s)", "CPU temperature (°C)", "Fan (RPM)", "Battery (%)",
            "On AC power", "Busiest core (%)", "Load (%)"} <= set(names)
    assert (net.orange.value(), net.red.value(), net.red.suffix()) == (50e6, 100e6, " B/s")  # not clamped to 100
    assert (fan.red.value(), fan.red.suffix()) == (4500.0, " RPM")
    assert swap.red.maximum() == 100.0
    assert dialog.ok_button.isEnabled()
    swap.red.setValue(1e6)  # a percentage cannot go past 100
    assert swap.red.value() == 100.0


def test_every_column_and_gpu_field_has_one_record_and_its_own_prometheus_series() -> None:
    """The metric records (``model.METRICS``, ``GPU_METRICS``) cover every column the probes
    write, in the dataset's order, and no two metrics share a Prometheus series."""
    from trayapp.metrics import unit_of
    from trayapp.model import BASE_COLUMNS, GPU_FIELDS, GPU_METRICS, MACHINE_COLUMNS, METRICS, metric_info

    assert tuple(METRICS) == (*BASE_COLUMNS, *MACHINE_COLUMNS)
    assert tuple(GPU_METRICS) == GPU_FIELDS
    names = [info.prometheus for info in (*METRICS.values(), *GPU_METRICS.values())]
    assert len(set(names)) == len(names)
    for column, info in METRICS.items():
        suffix = unit_of(column)[0]
        assert info.prometheus.endswith(suffix) or info.prometheus == "trayapp_power_supply_online", column
    assert metric_info("gpu7_power_w").label == "GPU 7 power" and metric_info("gpu7_power_w").unit == "W"
    assert metric_info("not_a_metric") is None
