"""The tray's words for the first hour ("collecting data: first verdict in 52 min") and for where
each average is heading ("red in ≈ 12 h at the current load")."""

from __future__ import annotations

from array import array
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")

from trayapp.engine import Tick  # noqa: E402
from trayapp.gui.app import TrayApp, tooltip_text  # noqa: E402
from trayapp.model import Level, RuleResult, Sample, Transition  # noqa: E402
from trayapp.rules import Rule, project  # noqa: E402
from trayapp.settings import Config, Loaded  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
RULES = (Rule("cpu_percent"), Rule("memory_percent"), Rule("gpu0_util_percent", 3600, 50, 70, 600))


def test_the_first_hour_says_when_the_first_verdict_comes() -> None:
    sample = Sample(NOW, 23.0, 41.0, 70.0)  # no GPU on this machine
    results = (
        RuleResult("cpu_percent", 129600, 23.0, 5, 8.0, Level.UNKNOWN, 80.0, 90.0),
        RuleResult("memory_percent", 129600, 41.0, 5, 8 * 60, Level.UNKNOWN, 80.0, 90.0),
        RuleResult("gpu0_util_percent", 3600, None, 0, 0.0, Level.UNKNOWN, 50.0, 70.0),
    )
    text = tooltip_text(Tick(sample, results, Level.UNKNOWN, (), True), rules=RULES)
    lines = text.splitlines()
    assert lines[0] == "trayapp — collecting data: first verdict in 52 min"  # the soonest rule
    assert "36 h avg CPU 23 % — collecting data: first verdict in 60 min" in lines
    assert "36 h avg memory 41 % — collecting data: first verdict in 52 min" in lines
    assert "1 h avg GPU 0 util n/a — no data: GPU 0 util is not measured on this machine" in lines
    assert "unknown (over" not in text


def test_once_a_rule_has_its_data_the_level_shows() -> None:
    sample = Sample(NOW, 23.0, 41.0, 70.0)
    results = (RuleResult("cpu_percent", 129600, 23.0, 500, 2 * 3600, Level.OK, 80.0, 90.0),
               RuleResult("memory_percent", 129600, 41.0, 5, 8 * 60, Level.UNKNOWN, 80.0, 90.0))
    text = tooltip_text(Tick(sample, results, Level.OK, (), True), rules=RULES[:2])
    assert text.splitlines()[0] == "trayapp — ok"
    assert "36 h avg CPU 23 % — ok (over 2 h of data)" in text
    assert "36 h avg memory 41 % — collecting data: first verdict in 52 min" in text


def test_the_tooltip_says_where_the_average_is_heading(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(sampling_interval_seconds=60.0, rules=(Rule("cpu_percent"),))
    app = TrayApp(Loaded(config, tmp_path / "config.toml", []), tmp_path / "data", tmp_path / "config.toml")
    try:
        now = NOW.timestamp()
        t = np.arange(now - 36 * 3600 + 60, now + 1, 60.0)
        v = np.where(t > now - 300, 100.0, 85.0)  # 36 h at 85, the last five minutes at 100
        windows = {"cpu_percent": (array("d", t), array("d", v))}
        monkeypatch.setattr(app.sampler, "recent", lambda span: windows)  # what the engine's windows hold
        result = RuleResult("cpu_percent", 129600, float(v.mean()), t.size, 36 * 3600 - 60, Level.ORANGE, 80.0, 90.0)
        app.on_tick(Tick(Sample(NOW, 100.0, 40.0, 70.0), (result,), Level.ORANGE, (), True))
        expected = project(config.rules[0], t, v, now, 100.0, 60.0, Level.ORANGE, config.alerts_hysteresis)
        assert expected is not None and expected.level is Level.RED
        assert f"36 h avg CPU 85 % — orange (over 36 h of data); {expected.text()}" in app.tray.toolTip()
        assert "red in ≈ 12 h at the current load" in app.tray.toolTip()
    finally:
        app._collector.stop()


def test_ticks_rebuild_the_tooltip_every_few_seconds_and_a_level_change_at_once(qtbot, tmp_path: Path) -> None:
    """Building the tooltip is most of what a tick costs the GUI thread: a tick rebuilds it when
    the last one a tick built is TOOLTIP_EVERY old, and at once when a level changed."""
    import trayapp.gui.app as app_module

    config = Config(rules=(Rule("cpu_percent"),))
    app = TrayApp(Loaded(config, tmp_path / "config.toml", []), tmp_path / "data", tmp_path / "config.toml")
    try:
        def tick(cpu: float, average: float, level: Level, previous: Level | None = None) -> str:
            result = RuleResult("cpu_percent", 129600, average, 5000, 36 * 3600, level, 80.0, 90.0)
            changes = (Transition("cpu_percent/36h", previous, level, result, NOW),) if previous else ()
            app.on_tick(Tick(Sample(NOW, cpu, 40.0, 70.0), (result,), level, changes, True))
            return app.tray.toolTip()

        first = tick(20.0, 50.0, Level.OK)
        assert "CPU 20" in first and "36 h avg CPU 50 %" in first
        assert tick(30.0, 50.1, Level.OK) == first  # a second later: the tooltip of a moment ago
        app._tooltip_at -= app_module.TOOLTIP_EVERY  # as if TOOLTIP_EVERY seconds went by
        assert "CPU 30" in tick(30.0, 50.1, Level.OK)
        changed = tick(95.0, 85.0, Level.ORANGE, previous=Level.OK)
        assert changed.startswith("trayapp — orange") and "CPU 95" in changed
    finally:
        app._collector.stop()


def test_projections_are_redone_every_hundredth_of_the_shortest_window_between_one_and_five_minutes() -> None:
    from trayapp.gui.app import projection_every

    assert projection_every((Rule("cpu_percent"), Rule("memory_percent"))) == 300.0  # 36 h: every 5 min
    assert projection_every((Rule("cpu_percent"), Rule("gpu0_util_percent", 3600, 50, 70, 600))) == 60.0  # a 1 h rule: every minute
    assert projection_every((Rule("cpu_percent", 6 * 3600),)) == 216.0
    assert projection_every(()) == 60.0
