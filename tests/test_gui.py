"""The desktop app with pytest-qt, offscreen: icon colours, tooltip, dialog, history window, live app."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import QDialogButtonBox  # noqa: E402

from trayapp.engine import Tick  # noqa: E402
from trayapp.gui import icon as tray_icon  # noqa: E402
from trayapp.gui.app import TrayApp, notification_text, tooltip_text  # noqa: E402
from trayapp.gui.history import RANGES, HistoryWindow  # noqa: E402
from trayapp.storage.window_series import peaks# noqa: E402
from trayapp.gui.live import LIVE_SECONDS, LiveBuffer  # noqa: E402
from trayapp.gui.settings_dialog import SettingsDialog  # noqa: E402
from trayapp.model import GpuReading, Level, RuleResult, Sample, Transition  # noqa: E402
from trayapp.rules import Rule  # noqa: E402
from trayapp.settings import Config, Loaded, load  # noqa: E402
from trayapp.synthetic import write_history  # noqa: E402

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")


def close_to(color: QColor, expected: QColor, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(color.getRgb()[:3], expected.getRgb()[:3]))


# The icon's shapes, colours, load bar and badges: tests/test_icon.py.


def test_load_buckets() -> None:
    assert [tray_icon.bucket(v) for v in (None, 0, 6, 7, 50, 94, 100)] == [None, 0, 0, 1, 4, 8, 8]


def _result(metric: str, level: Level, average: float | None, coverage: float = 14 * 3600) -> RuleResult:
    return RuleResult(metric, 129600, average, 100, coverage, level, 80.0, 90.0)


def _tick(level: Level = Level.RED, transitions: tuple = ()) -> Tick:
    sample = Sample(NOW, 12.0, 45.5, 70.0, (GpuReading(0, "H100", 99.0, 1.7, 56.0),))
    results = (_result("cpu_percent", Level.RED, 92.2), _result("memory_percent", Level.OK, None, 0))
    return Tick(sample, results, level, transitions, True)


def test_tooltip_text() -> None:
    text = tooltip_text(_tick(), paused=True, slack="Slack refused a message: invalid_token (403)")
    assert text.splitlines() == [
        "trayapp — red (sampling paused)",
        "paused: no new readings",  # not the last readings as if they were current
        "36 h avg CPU 92 % — red (over 14 h of data)",
        "36 h avg memory n/a — ok (over 0 s of data)",
        "Slack refused a message: invalid_token (403)",
    ]


def test_one_notification_for_a_tick_s_transitions() -> None:
    red = Transition("cpu_percent/36h", Level.OK, Level.RED, _result("cpu_percent", Level.RED, 95.0), NOW)
    back = Transition("memory_percent/36h", Level.ORANGE, Level.OK, _result("memory_percent", Level.OK, 50.0), NOW)
    title, text = notification_text((red, back))
    assert title == "CPU red, memory back to ok"
    assert text.splitlines()[0] == "36 h avg CPU 95 % — red (over 14 h of data)"


# --------------------------------------------------------------- settings dialog


@pytest.fixture
def dialog(qtbot, tmp_path: Path) -> SettingsDialog:
    d = SettingsDialog(Config(), tmp_path / "config.toml", tmp_path / "data")
    qtbot.addWidget(d)
    return d


def test_dialog_is_built_from_the_declaration(dialog: SettingsDialog) -> None:
    from trayapp.settings import FIELDS

    assert set(dialog.editors) == {f.key for f in FIELDS}
    assert dialog.rules_table.rowCount() == 2
    assert dialog.ok_button.isEnabled()


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("sampling.interval_seconds", "0", "must be greater than 0"),
        ("sampling.interval_seconds", "fast", "must be a number"),
        ("storage.retention_days", "-3", "must be at least 0"),
        ("alerts.hysteresis", "99", "must be at most 50"),
        ("slack.repeat_every", "sometimes", "must be a duration"),
    ],
)
def test_invalid_field_shows_beside_it_and_disables_ok(qtbot, dialog: SettingsDialog, key: str, text: str, message: str) -> None:
    dialog.show()
    editor = dialog.editors[key]
    editor.widget.setText(text)
    assert not dialog.ok_button.isEnabled()
    assert not editor.error.isHidden() and message in editor.error.text()
    editor.widget.setText(str(editor.field.default))
    assert dialog.ok_button.isEnabled() and editor.error.isHidden()


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("orange", "95", "orange must be below red"),
        # out-of-range thresholds cannot be typed at all: they are spin boxes with the unit's bounds
        ("window", "36", None),  # bare seconds are fine... but shorter than the 1 h minimum coverage
        ("metric", "cpu load", "must be a column name"),
    ],
)
def test_invalid_rule_disables_ok(dialog: SettingsDialog, field: str, text: str, message: str | None) -> None:
    dialog.show()
    dialog.set_rule_cell(0, field, text)
    assert not dialog.ok_button.isEnabled()
    assert not dialog.rules_error.isHidden()
    assert (message or "cannot be longer than the window") in dialog.rules_error.text()


def test_add_and_remove_rules(dialog: SettingsDialog) -> None:
    dialog.rules_table.selectRow(0)
    dialog.remove_selected_rule()
    assert [r.metric for r in dialog.rules()] == ["memory_percent"]
    dialog.add_rule(Rule("gpu0_util_percent", 3600, 50, 70, 600))
    assert [r.metric for r in dialog.rules()] == ["memory_percent", "gpu0_util_percent"]


def test_cancel_changes_nothing(qtbot, dialog: SettingsDialog, tmp_path: Path) -> None:
    seen = []
    dialog.applied.connect(seen.append)
    dialog.editors["sampling.interval_seconds"].widget.setText("5")
    dialog.set_rule_cell(0, "red", "95")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
    assert seen == [] and not (tmp_path / "config.toml").exists()


def test_ok_saves_and_applies(qtbot, dialog: SettingsDialog, tmp_path: Path) -> None:
    dialog.editors["sampling.interval_seconds"].widget.setText("5")
    dialog.set_rule_cell(0, "red", "95")
    with qtbot.waitSignal(dialog.applied) as signal:
        dialog.ok_button.click()
    config = signal.args[0]
    assert config.sampling_interval_seconds == 5.0 and config.rules[0].red == 95.0
    assert load(tmp_path / "config.toml").config == config


def test_send_test_message_button(qtbot, dialog: SettingsDialog) -> None:
    from tests.slack_server import Answer, FakeSlack

    slack = FakeSlack()
    try:
        dialog.editors["slack.webhook_url"].widget.setText(slack.webhook_url)
        dialog.test_button.click()
        qtbot.waitUntil(lambda: dialog.test_answer.text() == "Slack accepted the test message", timeout=10000)
        slack.then("/services/T000/B000/secretpart", Answer(403, "invalid_token"))
        dialog.test_button.click()
        qtbot.waitUntil(lambda: "invalid_token" in dialog.test_answer.text(), timeout=10000)
        assert "secretpart" not in dialog.test_answer.text()
    finally:
        slack.stop()


# ---------------------------------------------------------------- history window


@pytest.fixture
def history_window(qtbot, request):
    """HistoryWindow(...) that is shut down (its reader child stopped) after the test."""
    made = []

    def make(*args, **kwargs) -> HistoryWindow:
        window = HistoryWindow(*args, **kwargs)
        qtbot.addWidget(window)
        made.append(window)
        return window

    yield make
    for window in made:
        window.shutdown()


def drawn(window: HistoryWindow, name: str) -> tuple[np.ndarray, np.ndarray]:
    """What a plot shows: the sample line, or the top of the min–max band when binned."""
    mp = window.metric_plots[name]
    x, y = (mp.hi if mp.binned else mp.line).getData()
    return (np.empty(0), np.empty(0)) if x is None else (x, y)


def test_peaks_keep_spikes_and_gaps() -> None:
    t = np.arange(0, 1000, 1.0)
    v = np.full(1000, 10.0)
    v[500] = 99.0
    v[700:800] = np.nan  # a gap
    x, y = peaks(t, v, 0, 1000, bins=100)
    assert np.nanmax(y) == 99.0 and np.nanmin(y) == 10.0
    assert np.isnan(y[2 * 70:2 * 80]).all()


def test_history_window_draws_what_is_on_disk(qtbot, history_window, data_dir: Path) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now - timedelta(hours=20), 10, {"cpu_percent": 95.0, "memory_percent": 40.0, "disk_percent": 70.0})
    write_history(data_dir, now - timedelta(hours=10), now, 10, {"cpu_percent": 30.0, "memory_percent": 40.0, "disk_percent": 70.0})  # a 10 h gap
    window = history_window(data_dir, LiveBuffer(), Config())
    window.set_results((_result("cpu_percent", Level.ORANGE, 81.0), _result("memory_percent", Level.OK, 40.0)))
    with qtbot.waitSignal(window.range_loaded, timeout=10000):
        window.show()
    assert list(window.plots) == ["cpu_percent", "memory_percent", "disk_percent"]
    cpu = window.metric_plots["cpu_percent"]
    assert cpu.binned and cpu.band.isVisible()  # 9,360 samples: a min–max band per screen bin
    x, lo = cpu.lo.getData()
    _, hi = cpu.hi.getData()
    assert np.nanmax(hi) == 95.0 and np.nanmin(lo) == 30.0
    gap = (x > (now - timedelta(hours=19)).timestamp()) & (x < (now - timedelta(hours=11)).timestamp())
    assert gap.any() and np.isnan(lo[gap]).all() and np.isnan(hi[gap]).all()  # the gap is a gap
    hx, hy = cpu.mean.getData()
    finite = hy[~np.isnan(hy)]
    assert set(np.round(finite, 6)) == {95.0, 30.0} and 25 <= len(finite) <= 28
    assert np.isnan(hy).sum() >= 8  # the hours of the gap break the hourly line too
    import pyqtgraph as pg

    items = window.rule_lines["cpu_percent"]
    assert {item.value() for item in items if isinstance(item, pg.InfiniteLine)} == {80.0, 90.0}
    (avg,) = [item for item in items if isinstance(item, pg.PlotDataItem)]
    ax, ay = avg.getData()  # the rule's current average, drawn over its own window
    # drawn over the 14 h of data it averages (the rule's window is 36 h and not yet full)
    assert list(ay) == [81.0, 81.0] and ax[1] - ax[0] == 14 * 3600 and avg.isVisible()
    # the labels sit in the right margin, not on the data
    assert [text for _, text, _ in cpu.margin.marks] == ["orange 80", "36 h avg 81", "red 90"]
    assert window.rule_lines["disk_percent"] == []


def test_a_falling_rules_threshold_lines_say_which_way(qtbot, history_window, data_dir: Path) -> None:
    """A rule that watches a value fall (direction = "below"): its lines sit at its thresholds
    and the margin says red under the lower one, orange at the upper one and under."""
    import pyqtgraph as pg

    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=2), now, 10, {"cpu_percent": 8.0, "memory_percent": 40.0, "disk_percent": 70.0})
    idle = Rule("cpu_percent", 3600, 20.0, 10.0, 600, direction="below")
    config = Config(rules=(idle, Rule("memory_percent")))
    window = history_window(data_dir, LiveBuffer(), config)
    with qtbot.waitSignal(window.range_loaded, timeout=10000):
        window.show()
    window.set_results((RuleResult("cpu_percent", 3600, 8.0, 360, 3590, Level.RED, 20.0, 10.0, "below"),
                        _result("memory_percent", Level.OK, 40.0)), config)
    cpu, memory = window.metric_plots["cpu_percent"], window.metric_plots["memory_percent"]
    assert {item.value() for item in window.rule_lines["cpu_percent"] if isinstance(item, pg.InfiniteLine)} == {20.0, 10.0}
    assert {text for _, text, _ in cpu.margin.marks} == {"orange ≤ 20", "red < 10", "1 h avg 8"}
    assert {text for _, text, _ in memory.margin.marks} == {"orange 80", "red 90", "36 h avg 40"}  # a rising rule as it was


def test_history_window_shows_gpu_when_there_is_one(qtbot, history_window, data_dir: Path) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=2), now, 10, {"cpu_percent": 5.0, "gpu0_util_percent": 99.0, "gpu0_memory_percent": 1.7, "gpu0_temperature_c": 56.0})
    window = history_window(data_dir, LiveBuffer(), Config())
    with qtbot.waitSignal(window.range_loaded, timeout=10000):
        window.show()
    assert list(window.plots) == ["cpu_percent", "memory_percent", "disk_percent", "gpu0_util_percent", "gpu0_memory_percent", "gpu0_temperature_c"]
    assert window.metric_plots["gpu0_temperature_c"].plot.titleLabel.text == "GPU 0 temperature (°C)"


def test_live_view_holds_the_last_ten_minutes(qtbot, history_window, data_dir: Path) -> None:
    live = LiveBuffer()
    start = datetime.now(timezone.utc) - timedelta(minutes=20)
    for i in range(0, 20 * 60, 2):
        live.add(Sample(start + timedelta(seconds=i), float(i % 100), 50.0, 70.0))
    window = history_window(data_dir, live, Config())
    window.span = LIVE_SECONDS
    window.show()
    x, y = drawn(window, "cpu_percent")
    assert len(x) == LIVE_SECONDS // 2  # (now - 10 min, now] at one sample per 2 s
    assert x[0] == pytest.approx((start + timedelta(seconds=600)).timestamp())  # 598 s left the window
    assert list(y[-3:]) == [float((20 * 60 - 6) % 100), float((20 * 60 - 4) % 100), float((20 * 60 - 2) % 100)]


def test_an_idle_network_is_ticked_in_whole_units(qtbot, history_window, data_dir: Path) -> None:
    """All zeros: the rate axis spans at least 1 KB/s, so no two ticks read the same."""
    live = LiveBuffer()
    now = datetime.now(timezone.utc)
    for i in range(60, 0, -1):
        live.add(Sample(now - timedelta(seconds=i), 10.0, 50.0, 70.0, net_recv_bytes_per_s=0.0, net_sent_bytes_per_s=0.0))
    window = history_window(data_dir, live, Config())
    window.span = LIVE_SECONDS
    window.show()
    window.graphics.grab()
    plot = window.metric_plots["net_recv_bytes_per_s"].plot
    low, high = plot.viewRange()[1]
    assert high - low >= 1024 - 1e-6
    axis = plot.getAxis("left")
    for spacing, values in axis.tickValues(low, high, 100):
        labels = axis.tickStrings(values, 1.0, spacing)
        assert len(set(labels)) == len(labels), labels


def test_a_metric_that_comes_up_late_gets_its_place_not_the_bottom(qtbot, history_window, data_dir: Path) -> None:
    """The busiest core's % comes with the second tick; the window, open since the first, puts
    its plot second (after CPU), with the time axis pinned under the plots."""
    live = LiveBuffer()
    now = datetime.now(timezone.utc)
    live.add(Sample(now - timedelta(seconds=4), 10.0, 50.0, 70.0))
    window = history_window(data_dir, live, Config())
    window.span = LIVE_SECONDS
    window.show()
    assert list(window.metric_plots) == ["cpu_percent", "memory_percent", "disk_percent"]
    for i in (3, 2, 1):
        live.add(Sample(now - timedelta(seconds=i), 10.0, 50.0, 70.0, cpu_core_max_percent=40.0 + i))
    window.refresh_live()
    assert list(window.metric_plots) == ["cpu_percent", "cpu_core_max_percent", "memory_percent", "disk_percent"]
    layout = window.graphics.ci
    assert [layout.getItem(row, 0) for row in range(4)] == [mp.plot for mp in window.metric_plots.values()]
    shows = [mp.plot.getAxis("bottom").style["showValues"] for mp in window.metric_plots.values()]
    assert shows == [False, False, False, False]  # the time is on the pinned axis under them all
    assert window.time_axis.axis.linkedView() is window.metric_plots["cpu_percent"].plot.vb
    y = drawn(window, "cpu_core_max_percent")[1]
    assert list(y[~np.isnan(y)]) == [43.0, 42.0, 41.0]
    window.graphics.grab()  # paints, laid out anew


# -------------------------------------------------------------------- the app


def test_the_app_turns_red_then_orange_when_settings_change(qtbot, data_dir: Path, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 60, {"cpu_percent": 95.0, "memory_percent": 30.0, "disk_percent": 40.0})
    config = Config(sampling_interval_seconds=0.2, alerts_desktop_notifications=False)
    app = TrayApp(Loaded(config, tmp_path / "config.toml", []), data_dir, tmp_path / "config.toml")
    try:
        with qtbot.waitSignal(app.tick_shown, timeout=20000) as first:
            app.start()
        assert first.args[0].level is Level.RED
        assert "36 h avg CPU 95 % — red (over 36 h of data)" in app.tray.toolTip()
        recent = app.sampler.recent(36 * 3600)  # what the history window paints first
        assert set(recent) == {"cpu_percent", "memory_percent"}
        assert len(recent["cpu_percent"][0]) >= 36 * 60 and set(recent["cpu_percent"][1][:10]) == {95.0}
        assert app.sampler.recent(7 * 86400) == {}  # no rule window covers a week
        assert app._icon_key[0] is Level.RED
        key = app.tray.icon().cacheKey()
        qtbot.waitSignal(app.tick_shown, timeout=5000).wait()
        if app._icon_key[1] == tray_icon.bucket(first.args[0].sample.cpu_percent):
            assert app.tray.icon().cacheKey() == key  # nothing changed: not redrawn
        higher = config.with_values(rules=(Rule("cpu_percent", 129600, 80.0, 99.0, 3600), Rule("memory_percent")))
        app.apply(higher)  # takes effect at once, no restart
        qtbot.waitUntil(lambda: app.last is not None and app.last.level is Level.ORANGE, timeout=10000)
        assert "— orange" in app.tray.toolTip()
        app.set_paused(True)
        assert "(sampling paused)" in app.tray.toolTip()
    finally:
        app.shutdown()
    assert not math.isnan(app.last.results[0].average)


def test_start_at_login_from_the_settings_takes_effect(qtbot, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    config = Config()
    app = TrayApp(Loaded(config, tmp_path / "config.toml", []), data_dir, tmp_path / "config.toml")
    entry = tmp_path / "cfg" / "autostart" / "trayapp.desktop"
    app.apply(config.with_values(app_start_at_login=True))
    assert "--wait-for-tray" in entry.read_text()
    app.apply(config.with_values(app_start_at_login=False))
    assert not entry.exists()
    app._collector.stop()


def test_moving_the_data_folder_in_settings_records_there_at_once(qtbot, data_dir: Path, tmp_path: Path) -> None:
    config = Config(sampling_interval_seconds=0.2, alerts_desktop_notifications=False)
    app = TrayApp(Loaded(config, tmp_path / "config.toml", []), data_dir, tmp_path / "config.toml")
    moved = tmp_path / "elsewhere"
    try:
        with qtbot.waitSignal(app.tick_shown, timeout=20000):
            app.start()
        app.apply(config.with_values(sampling_interval_seconds=0.3))  # other settings: same folder
        assert app.folder == data_dir
        app.apply(config.with_values(storage_data_dir=str(moved)))
        csv = moved / "csv_dump" / "daily_dump.csv"
        qtbot.waitUntil(lambda: csv.exists() and len(csv.read_text().splitlines()) > 2, timeout=20000)
        assert not (data_dir / ".writer.pid").exists()  # the old folder was let go
    finally:
        app.shutdown()


def test_config_problems_are_shown_at_start(qtbot, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[sampling]\ninterval_seconds = -1\n")
    loaded = load(path)
    shown = []
    app = TrayApp(loaded, data_dir, path)
    monkeypatch.setattr(app.tray, "showMessage", lambda title, text, *rest: shown.append((title, text)))
    try:
        app.start()
        (title, text), = shown
        assert title == "trayapp: 1 problem(s) in config.toml"
        assert "[sampling] interval_seconds = -1: must be greater than 0; using 2.0" in text
    finally:
        app.shutdown()


def test_the_rule_metrics_are_painted_from_memory_before_the_disk_read(qtbot, history_window, data_dir: Path) -> None:
    from array import array

    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 60, {"cpu_percent": 30.0, "memory_percent": 40.0, "disk_percent": 70.0})
    t = [(now - timedelta(seconds=s)).timestamp() for s in range(36 * 3600 - 60, 0, -60)]
    in_memory = {"cpu_percent": (array("d", t), array("d", [95.0] * len(t)))}  # what the rule window holds
    spans = []
    window = history_window(data_dir, LiveBuffer(), Config(), quick=lambda span: (spans.append(span), in_memory)[1])
    with qtbot.waitSignal(window.first_paint, timeout=5000):
        window.show()
    assert spans == [36 * 3600]
    _, y = drawn(window, "cpu_percent")
    assert np.nanmax(y) == 95.0 and window.status.text() == "Loading…"
    assert "disk_percent" in window.plots  # made up front: nothing jumps when the read arrives
    with qtbot.waitSignal(window.range_loaded, timeout=15000):
        pass  # then the full read from disk replaces it, with every metric
    _, y = drawn(window, "cpu_percent")
    assert np.nanmax(y) == 30.0 and window.status.text() == ""
    assert np.nanmax(drawn(window, "disk_percent")[1]) == 70.0
    with qtbot.waitSignal(window.range_loaded, timeout=15000):
        window.show_range(7 * 86400)  # Arrow is loaded now: one read, one paint, no detour through memory
    assert spans == [36 * 3600]


def test_a_fresh_install_opens_the_live_view_and_history_otherwise(qtbot, data_dir: Path, tmp_path: Path) -> None:
    config = Config(sampling_interval_seconds=0.2, alerts_desktop_notifications=False)
    fresh = TrayApp(Loaded(config, tmp_path / "config.toml", []), data_dir, tmp_path / "config.toml")
    try:
        with qtbot.waitSignal(fresh.tick_shown, timeout=20000):
            fresh.start()
        fresh.show_history()
        assert fresh.window.span == LIVE_SECONDS  # no rule has an hour of data yet
        assert len(drawn(fresh.window, "cpu_percent")[0]) >= 1
    finally:
        fresh.shutdown()
    other = tmp_path / "with-history"
    now = datetime.now(timezone.utc)
    write_history(other, now - timedelta(hours=36), now, 60, {"cpu_percent": 20.0, "memory_percent": 30.0, "disk_percent": 40.0})
    seasoned = TrayApp(Loaded(config, tmp_path / "config.toml", []), other, tmp_path / "config.toml")
    try:
        with qtbot.waitSignal(seasoned.tick_shown, timeout=20000):
            seasoned.start()
        seasoned.show_history()
        assert seasoned.window.span == 36 * 3600
    finally:
        seasoned.shutdown()


@pytest.mark.slow  # over a second or two: `make test-all`
def test_the_year_range_reads_hours_and_says_daily_means(qtbot, history_window, data_dir: Path) -> None:
    from trayapp.storage import tier_builder as rollups

    now = datetime.now(timezone.utc)
    day_value = lambda t: (t // 86400) % 100  # noqa: E731
    write_history(data_dir, now - timedelta(days=365), now - timedelta(days=2), 3600, {"cpu_percent": day_value, "memory_percent": 40.0}, today_in_csv=False)
    rollups.ensure(data_dir)
    window = history_window(data_dir, LiveBuffer(), Config())
    with qtbot.waitSignal(window.range_loaded, timeout=20000):
        window.show()
    assert " mean" not in window.legend.text()  # 36 h: nothing recorded in it, no mean line drawn or named
    with qtbot.waitSignal(window.range_loaded, timeout=20000):
        window.buttons.button(2).click()  # 7 d
    assert "hourly mean" in window.legend.text()
    assert [label for label, _ in RANGES][-1] == "1 y"
    with qtbot.waitSignal(window.range_loaded, timeout=20000) as blocker:
        window.buttons.button(len(RANGES) - 1).click()
    assert blocker.args[0].tier == "hour"
    assert "daily mean" in window.legend.text() and "hourly mean" not in window.legend.text()
    window.buttons.button(0).click()  # Live draws no means: the legend does not name one (it said "daily")
    assert " mean" not in window.legend.text() and "samples" in window.legend.text()
    with qtbot.waitSignal(window.range_loaded, timeout=20000):
        window.buttons.button(len(RANGES) - 1).click()
    assert "daily mean" in window.legend.text()
    cpu = window.metric_plots["cpu_percent"]
    x, _ = cpu.lo.getData()
    assert x[0] < (now - timedelta(days=360)).timestamp() and cpu.binned  # the whole year, as a band
    _, means = cpu.mean.getData()
    assert 360 <= np.count_nonzero(~np.isnan(means)) <= 366  # one mean per local day, not per hour
    assert 0 <= np.nanmin(means) and np.nanmax(means) <= 99
    with qtbot.waitSignal(window.range_loaded, timeout=20000):
        window.buttons.button(2).click()  # back to 7 d: minutes, hourly means
    assert "hourly mean" in window.legend.text()


def test_a_range_that_holds_only_minutes_says_since_when(qtbot, history_window, data_dir: Path) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(minutes=10), now, 1, {"cpu_percent": 30.0, "memory_percent": 40.0})
    window = history_window(data_dir, LiveBuffer(), Config())
    with qtbot.waitSignal(window.range_loaded, timeout=15000):
        window.show()
    # the 36 h view is drawn in bins of a few minutes, each at its start: "about" that moment
    said = re.fullmatch(r"Recorded only since about (?:\w{3} \d\d \w{3} )?(\d\d):(\d\d): the 36 h view fills in as trayapp records; "
                        r"Live shows the last 10 minutes\.", window.status.text())
    assert said, window.status.text()
    first = (now - timedelta(minutes=10) + timedelta(seconds=1)).astimezone()
    shown = first.replace(hour=int(said[1]), minute=int(said[2]), second=0, microsecond=0)
    if shown > first + timedelta(hours=12):
        shown -= timedelta(days=1)  # the first sample came just after midnight
    assert first - timedelta(minutes=5) < shown <= first
    write_history(data_dir, now - timedelta(hours=36), now - timedelta(minutes=10), 60, {"cpu_percent": 30.0, "memory_percent": 40.0})
    with qtbot.waitSignal(window.range_loaded, timeout=15000):
        window.show_range(36 * 3600)  # the same window, once the range is full: no such line
    assert window.status.text() == ""


def test_every_margin_is_wide_enough_for_the_longest_label_and_all_line_up(qtbot, history_window, data_dir: Path) -> None:
    from PySide6.QtGui import QFontMetrics
    from PySide6.QtWidgets import QApplication

    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=2), now, 10, {"cpu_percent": 100.0, "memory_percent": 40.0, "disk_percent": 70.0})
    rules = (Rule("cpu_percent", 1800, 80.0, 90.0, 600), Rule("memory_percent", 36 * 3600, 80.0, 90.0, 600))
    config = Config(rules=rules)
    window = history_window(data_dir, LiveBuffer(), config)
    with qtbot.waitSignal(window.range_loaded, timeout=10000):
        window.show()
    window.set_results((RuleResult("cpu_percent", 1800, 100.0, 180, 1800, Level.RED, 80.0, 90.0),), config)
    label = "30 min avg 100"
    assert label in [text for _, text, _ in window.metric_plots["cpu_percent"].margin.marks]
    needed = QFontMetrics(QApplication.font()).horizontalAdvance(label) + 7  # beside the tick
    qtbot.waitUntil(lambda: window.metric_plots["cpu_percent"].margin.width() >= needed, timeout=2000)  # laid out
    widths = {name: mp.margin.width() for name, mp in window.metric_plots.items()}
    assert len(set(widths.values())) == 1 and min(widths.values()) >= needed, (widths, needed)  # x axes line up
    lefts = {mp.plot.vb.sceneBoundingRect().right() for mp in window.metric_plots.values()}
    assert len(lefts) == 1  # every plot's data area ends at the same x


def test_a_rate_axis_shows_its_numbers_and_every_value_axis_lines_up(qtbot, history_window, data_dir: Path) -> None:
    from PySide6.QtGui import QImage, QPainter

    now = datetime.now(timezone.utc)
    rate = lambda t: 4.0e6 + 3.0e6 * np.sin(t / 600)  # noqa: E731 - 1–7 MB/s: labels like "4.00 MB/s"
    write_history(data_dir, now - timedelta(hours=2), now, 10, {"cpu_percent": 30.0, "disk_write_bytes_per_s": rate})
    window = history_window(data_dir, LiveBuffer(), Config())
    with qtbot.waitSignal(window.range_loaded, timeout=10000):
        window.show()
    window.resize(900, 700)
    qtbot.waitUntil(lambda: window.metric_plots["disk_write_bytes_per_s"].plot.vb.height() > 50, timeout=3000)
    axis = window.metric_plots["disk_write_bytes_per_s"].plot.getAxis("left")
    image = QImage(200, 200, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, ticks, texts = axis.generateDrawSpecs(painter)  # what pyqtgraph would draw: labels that fit
    finally:
        painter.end()
    shown = [text for _, _, text in texts]
    assert len(shown) >= 2 and all(text.endswith("MB/s") for text in shown), shown
    lefts = {mp.plot.vb.sceneBoundingRect().left() for mp in window.metric_plots.values()}
    assert len(lefts) == 1  # every plot's data area starts at the same x: times line up


def test_the_range_shown_is_marked_in_bold_as_well_as_checked(qtbot, history_window, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    window = history_window(data_dir, LiveBuffer(), Config())
    window.span = LIVE_SECONDS
    window.show()
    window.show_range(7 * 86400)
    marked = [(window.buttons.button(i).text(), window.buttons.button(i).isChecked(), window.buttons.button(i).font().bold())
              for i in range(len(RANGES))]
    assert [m for m in marked if m[1] or m[2]] == [("7 d", True, True)]  # one range, checked and bold


def test_the_summary_keeps_each_rule_s_note_and_names_who_made_its_average(qtbot, history_window, data_dir: Path) -> None:
    """The tooltip puts who made an average on a line of its own under the rule; the window's
    summary gets one note per rule (its projection kept) and names them after it."""
    from trayapp.engine import Tick
    from trayapp.gui.app import rule_lines
    from trayapp.model import Contributor, Sample
    from trayapp.rules import Projection, Rule

    made = (Contributor("python", "python train.py --epochs 90", 58.0, (4242,)), Contributor("chrome", "", 9.0, (7,)),
            Contributor("other", "", 19.0))
    results = (RuleResult("cpu_percent", 36 * 3600, 86.0, 2000, 36 * 3600, Level.ORANGE, 80.0, 90.0, contributors=made),
               RuleResult("memory_percent", 36 * 3600, 40.0, 2000, 36 * 3600, Level.OK, 80.0, 90.0))
    rules = (Rule("cpu_percent", 36 * 3600, 80.0, 90.0, 3600.0), Rule("memory_percent", 36 * 3600, 80.0, 90.0, 3600.0))
    tick = Tick(Sample(datetime.now(timezone.utc), 90.0, 40.0, 50.0), results, Level.ORANGE, (), True)
    projections = {0: Projection(Level.RED, 5 * 3600)}
    tooltip = rule_lines(tick, rules, projections, 2.0)
    assert len(tooltip) == 3 and tooltip[1].startswith("    by python train.py") and "other 19" in tooltip[1]
    notes = rule_lines(tick, rules, projections, 2.0, made_by=False)
    assert len(notes) == 2
    window = history_window(data_dir, LiveBuffer(), Config())
    window.set_results(results, notes=notes)
    text = window.summary.text()
    assert "red in ≈&nbsp;5 h at the current load" in text
    assert "by python train.py 58, chrome 9.0, other 19" in text.replace("&nbsp;", " ")
