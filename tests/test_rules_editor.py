"""The rules editor speaks the user's language: a metric drop-down with friendly names, spin
boxes with the unit, duration fields that take ``36 h``/``90 m``/``1h30m``, invalid cells marked
with their reason and OK disabled. Plus compound durations wherever durations are read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from trayapp.rules import parse_duration
from trayapp.settings import Config, load

pytest.importorskip("PySide6.QtWidgets")

from trayapp.gui.settings_dialog import SettingsDialog  # noqa: E402
from trayapp.rules import Rule  # noqa: E402

GPU_BOX = ("cpu_percent", "memory_percent", "disk_percent", "gpu0_util_percent", "gpu0_memory_percent", "gpu0_temperature_c")


@pytest.mark.parametrize(("text", "seconds"), [
    ("36h", 129600), ("36 h", 129600), ("90 m", 5400), ("90min", 5400), ("1h30m", 5400),
    ("1h 30m", 5400), ("1d12h", 129600), ("2D", 172800), (" 45 s ", 45), ("0", 0), ("1.5h", 5400),
])
def test_compound_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["1h30", "h30m", "1h-30m", "30m1", "1 hour 5", "nan", "inf", "--1h"])
def test_bad_compound_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_compound_durations_are_read_from_the_config_and_by_snooze(tmp_path: Path) -> None:
    from trayapp.slack import snooze_end

    path = tmp_path / "config.toml"
    path.write_text('[[rules]]\nmetric = "cpu_percent"\nwindow = "1d 12h"\nmin_coverage = "1h30m"\n'
                    '[slack]\nrepeat_every = "2h 30m"\n')
    loaded = load(path)
    assert loaded.warnings == []
    rule, = loaded.config.rules
    assert (rule.window_seconds, rule.min_coverage_seconds) == (129600, 5400)
    now = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    assert snooze_end("1h30m", now) == now + timedelta(minutes=90)


@pytest.fixture
def editor(qtbot, tmp_path: Path):
    def make(rules: tuple[Rule, ...] = (Rule("cpu_percent"), Rule("memory_percent")), metrics=GPU_BOX) -> SettingsDialog:
        dialog = SettingsDialog(Config(rules=rules), tmp_path / "config.toml", tmp_path / "data", metrics=metrics)
        qtbot.addWidget(dialog)
        dialog.show()
        return dialog

    return make


def test_the_metric_is_a_drop_down_of_what_this_machine_measures(editor) -> None:
    dialog = editor()
    combo = dialog.rule_rows[0].metric
    items = [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]
    assert items == [
        ("CPU (%)", "cpu_percent"), ("Memory (%)", "memory_percent"), ("Disk (%)", "disk_percent"),
        ("GPU 0 util (%)", "gpu0_util_percent"), ("GPU 0 memory (%)", "gpu0_memory_percent"),
        ("GPU 0 temperature (°C)", "gpu0_temperature_c"),
    ]
    assert combo.currentText() == "CPU (%)" and dialog.rule_rows[1].metric.currentText() == "Memory (%)"
    # the thresholds are spin boxes with the metric's unit, bounded as the declaration says
    row = dialog.rule_rows[0]
    assert row.orange.suffix() == " %" and row.red.value() == 90.0 and row.red.maximum() == 100.0
    combo.setCurrentIndex(combo.findData("gpu0_temperature_c"))
    assert row.orange.suffix() == " °C" and row.red.suffix() == " °C"
    assert dialog.ok_button.isEnabled()
    assert dialog.rules()[0].metric == "gpu0_temperature_c"
    # without a sample yet, the base metrics
    plain = editor(metrics=None).rule_rows[0].metric
    assert [plain.itemData(i) for i in range(plain.count())] == ["cpu_percent", "memory_percent", "disk_percent"]


def test_a_metric_no_probe_measures_is_marked_and_blocks_ok(editor) -> None:
    dialog = editor(rules=(Rule("cpu"), Rule("memory_percent")))  # a typo in the config file
    assert not dialog.ok_button.isEnabled()
    assert "no probe measures it (cpu_percent, memory_percent" in dialog.rule_cell_error(0, "metric")  # as the config check says
    assert dialog.rule_rows[0].metric.toolTip() == dialog.rule_cell_error(0, "metric")
    assert dialog.rule_rows[0].metric.property("tint") == "#fce8e6"  # tinted, its arrow kept (no style sheet)
    assert dialog.rule_rows[0].metric.styleSheet() == ""
    assert "Rule 1 metric: no probe measures it" in dialog.rules_error.text()
    assert dialog.rule_rows[0].metric.currentText() == "cpu (no such metric)"
    dialog.set_rule_cell(0, "metric", "cpu_percent")  # picked from the list
    assert dialog.ok_button.isEnabled() and dialog.rules_error.isHidden()
    assert dialog.rule_cell_error(0, "metric") == "" and dialog.rule_rows[0].metric.property("tint") == ""


def test_a_gpu_rule_from_another_machine_is_kept_with_a_warning(editor) -> None:
    dialog = editor(rules=(Rule("cpu_percent"), Rule("gpu1_util_percent", 3600, 50, 70, 600)), metrics=GPU_BOX)
    assert dialog.ok_button.isEnabled()
    assert "not measured on this machine" in dialog.rule_cell_warning(1, "metric")
    assert dialog.rule_rows[1].metric.currentText() == "GPU 1 util (%), not seen here"
    assert [r.metric for r in dialog.rules()] == ["cpu_percent", "gpu1_util_percent"]


@pytest.mark.parametrize(("text", "seconds"), [("36 h", 129600), ("90 m", 5400), ("1h30m", 5400), ("7d", 604800)])
def test_windows_take_people_s_durations(editor, text: str, seconds: float) -> None:
    dialog = editor()
    dialog.set_rule_cell(0, "window", text)
    assert dialog.ok_button.isEnabled(), dialog.rules_error.text()
    assert dialog.rules()[0].window_seconds == seconds


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("window", "soon", "must be a duration"),
    ("window", "0", "must be greater than 0"),
    ("min_coverage", "48h", "cannot be longer than the window"),
    ("min_coverage", "1h30", "must be a duration"),
])
def test_a_bad_duration_is_marked_in_its_cell(editor, name: str, text: str, reason: str) -> None:
    dialog = editor()
    dialog.set_rule_cell(0, name, text)
    assert not dialog.ok_button.isEnabled()
    assert reason in dialog.rule_cell_error(0, name)
    assert dialog.rule_rows[0].widget(name).property("tint") == "#fce8e6"
    assert all(dialog.rule_cell_error(0, other) == "" for other in ("metric", "orange", "red") if other != name)
    dialog.set_rule_cell(0, name, "1 h")
    assert dialog.ok_button.isEnabled()


def test_thresholds_marked_when_orange_is_not_below_red(editor) -> None:
    dialog = editor()
    dialog.set_rule_cell(1, "orange", "95")
    assert not dialog.ok_button.isEnabled()
    assert "orange must be below red" in dialog.rule_cell_error(1, "orange")
    assert dialog.rule_cell_error(1, "red") == dialog.rule_cell_error(1, "orange")
    assert dialog.rule_cell_error(0, "orange") == ""  # the other rule is fine
    dialog.set_rule_cell(1, "red", "150")  # a spin box keeps within its bounds: 100
    assert dialog.rule_rows[1].red.value() == 100.0 and dialog.ok_button.isEnabled()


def test_ok_saves_what_was_picked_and_typed(qtbot, editor, tmp_path: Path) -> None:
    dialog = editor()
    row = dialog.rule_rows[1]
    row.metric.setCurrentIndex(row.metric.findData("gpu0_util_percent"))
    dialog.set_rule_cell(1, "window", "1h30m")
    dialog.set_rule_cell(1, "min_coverage", "10 m")
    dialog.set_rule_cell(1, "orange", "50")
    dialog.set_rule_cell(1, "red", "70")
    with qtbot.waitSignal(dialog.applied) as signal:
        dialog.ok_button.click()
    saved = signal.args[0].rules[1]
    assert saved == Rule("gpu0_util_percent", 5400, 50.0, 70.0, 600)
    assert load(tmp_path / "config.toml").config.rules[1] == saved


def test_ok_without_edits_keeps_thresholds_and_the_file_exactly(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = ('# mine\nversion = 1\n[[rules]]\nmetric = "cpu_percent"\nwindow = "36h"\norange = 85.55   # precise\nred = 95.125\n'
            '[[rules]]\nmetric = "memory_percent"\nwindow = "1h"\norange = 80.3\nred = 90\n')
    path.write_text(text)
    loaded = load(path)
    dialog = SettingsDialog(loaded.config, path, tmp_path / "data", metrics=GPU_BOX)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.rule_rows[0].orange.text().startswith("85.55")  # shown as it is, not 85.5 or 85.6
    with qtbot.waitSignal(dialog.applied) as signal:
        dialog.ok_button.click()
    assert [(r.orange, r.red) for r in signal.args[0].rules] == [(85.55, 95.125), (80.3, 90.0)]
    assert path.read_text() == text  # nothing changed, nothing written differently


def test_a_threshold_the_user_changes_is_saved_as_typed(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[rules]]\nmetric = "cpu_percent"\norange = 85.55\nred = 95.125\n')
    dialog = SettingsDialog(load(path).config, path, tmp_path / "data", metrics=GPU_BOX)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.set_rule_cell(0, "orange", "70.25")
    with qtbot.waitSignal(dialog.applied):
        dialog.ok_button.click()
    assert [(r.orange, r.red) for r in load(path).config.rules] == [(70.25, 95.125)]
    assert "red = 95.125\n" in path.read_text()


LAPTOP = ("cpu_percent", "memory_percent", "disk_percent", "battery_percent", "fan_rpm")


def test_a_rule_can_watch_a_value_fall(qtbot, editor, tmp_path: Path) -> None:
    """The editor offers "rises above" / "falls below"; turning a rule round turns its
    thresholds round (red is the lower one for "falls below"), and OK saves direction = "below"."""
    dialog = editor(metrics=LAPTOP)
    row = dialog.rule_rows[1]
    assert [row.direction.itemText(i) for i in range(row.direction.count())] == ["rises above", "falls below"]
    assert row.direction.currentText() == "rises above"
    row.metric.setCurrentIndex(row.metric.findData("battery_percent"))
    dialog.set_rule_cell(1, "direction", "falls below")
    assert (row.orange.value(), row.red.value()) == (90.0, 80.0)  # swapped: orange above red
    dialog.set_rule_cell(1, "orange", "20")
    dialog.set_rule_cell(1, "red", "10")
    dialog.set_rule_cell(1, "window", "10m")
    dialog.set_rule_cell(1, "min_coverage", "5m")
    assert dialog.ok_button.isEnabled()
    with qtbot.waitSignal(dialog.applied) as signal:
        dialog.ok_button.click()
    saved = signal.args[0].rules[1]
    assert saved == Rule("battery_percent", 600, 20.0, 10.0, 300, direction="below")
    assert load(tmp_path / "config.toml").config.rules[1] == saved
    assert 'direction = "below"' in (tmp_path / "config.toml").read_text()


def test_a_falling_rules_thresholds_are_checked_the_other_way_round(editor) -> None:
    dialog = editor(rules=(Rule("fan_rpm", 300, 600.0, 300.0, 120, direction="below"),), metrics=LAPTOP)
    row = dialog.rule_rows[0]
    assert row.direction.currentText() == "falls below" and dialog.ok_button.isEnabled()
    dialog.set_rule_cell(0, "red", "900")  # red above orange: wrong for a falling rule
    assert not dialog.ok_button.isEnabled()
    assert "orange must be above red" in dialog.rule_cell_error(0, "orange")
    assert dialog.rule_cell_error(0, "red") == dialog.rule_cell_error(0, "orange")
    dialog.set_rule_cell(0, "red", "300")
    assert dialog.ok_button.isEnabled()


def test_a_threshold_in_error_keeps_its_spin_arrows_and_0_says_what_it_means(editor) -> None:
    from PySide6.QtWidgets import QAbstractSpinBox, QLabel, QStyle, QStyleOptionSpinBox

    dialog = editor()
    dialog.rule_rows[0].orange.setValue(95.0)  # orange above red
    dialog.validate()
    spin = dialog.rule_rows[0].orange
    assert spin.property("tint") == "#fce8e6" and spin.styleSheet() == ""  # a style sheet would take the arrows
    option = QStyleOptionSpinBox()
    option.initFrom(spin)
    option.subControls = QStyle.SubControl.SC_SpinBoxUp | QStyle.SubControl.SC_SpinBoxDown
    option.buttonSymbols = QAbstractSpinBox.ButtonSymbols.UpDownArrows
    up = spin.style().subControlRect(QStyle.ComplexControl.CC_SpinBox, option, QStyle.SubControl.SC_SpinBoxUp, spin)
    assert spin.buttonSymbols() == QAbstractSpinBox.ButtonSymbols.UpDownArrows and up.width() > 0
    note = dialog.findChild(QLabel, "storage.retention_days.zero")
    assert note is not None and note.text() == "0 keeps everything"


def test_an_error_line_grows_the_dialog_rather_than_bring_a_scroll_bar(qtbot, editor) -> None:
    dialog = editor()
    dialog.show()
    dialog.tabs.setCurrentIndex(0)
    dialog.resize(dialog.width(), dialog.minimumSizeHint().height())  # as small as it goes
    qtbot.wait(50)
    scroll = dialog.tabs.currentWidget()
    before = dialog.height()
    for key in ("storage.retention_days", "sampling.interval_seconds", "alerts.hysteresis"):
        dialog.editors[key].widget.setText("-3")  # three fields in error: three lines more
    qtbot.waitUntil(lambda: dialog.height() > before, timeout=3000)
    qtbot.wait(50)
    assert scroll.widget().sizeHint().height() <= scroll.viewport().height()
    assert not scroll.verticalScrollBar().isVisible()
