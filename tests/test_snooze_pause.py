"""Snooze and pause mean what they say: a snooze holds desktop notifications back too, the menu
says what it holds back, icon and tooltip show it; paused shows since when, not stale readings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from trayapp.engine import Tick  # noqa: E402
from trayapp.gui.app import TrayApp, tooltip_text  # noqa: E402
from trayapp.model import GpuReading, Level, RuleResult, Sample, Transition  # noqa: E402
from trayapp.settings import Config, Loaded  # noqa: E402
from trayapp.slack import snooze_channels  # noqa: E402
from PySide6.QtWidgets import QSystemTrayIcon  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")
SLACK = dict(slack_webhook_url="http://127.0.0.1:9/services/T/B/x")


def _tick(at: datetime, transitions: tuple = ()) -> Tick:
    sample = Sample(at, 12.0, 45.5, 70.0, (GpuReading(0, "H100", 99.0, 1.7, 56.0),))
    results = (RuleResult("cpu_percent", 129600, 92.2, 100, 14 * 3600, Level.RED, 80.0, 90.0),)
    return Tick(sample, results, Level.RED, transitions, True)


def _red(at: datetime) -> Transition:
    result = RuleResult("cpu_percent", 129600, 95.0, 100, 14 * 3600, Level.RED, 80.0, 90.0)
    return Transition("cpu_percent/36h", Level.OK, Level.RED, result, at)


def test_what_a_snooze_holds_back() -> None:
    assert snooze_channels(Config()) == "desktop"
    assert snooze_channels(Config(**SLACK)) == "desktop + Slack"
    assert snooze_channels(Config(alerts_desktop_notifications=False, **SLACK)) == "Slack"
    assert snooze_channels(Config(alerts_desktop_notifications=False)) == ""


def test_paused_says_since_when_instead_of_stale_readings() -> None:
    now = datetime.now(timezone.utc).replace(hour=13, minute=30)
    since = now.replace(minute=2)
    text = tooltip_text(_tick(since), paused=True, paused_since=since, now=now)
    lines = text.splitlines()
    assert lines[0] == "trayapp — red (sampling paused)"
    assert lines[1] == f"paused since {since.astimezone().strftime('%H:%M')}: no new readings"
    assert "CPU 12 %" not in text and "GPU 0 99 %" not in text  # the last readings are not current
    assert "36 h avg CPU 92 % — red" in text  # the window's average still holds
    running = tooltip_text(_tick(since), now=now)
    assert "CPU 12 %   memory 46 %   disk 70 %" in running and "paused" not in running


def test_snooze_line_says_until_when_and_what() -> None:
    now = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
    until = now + timedelta(hours=1)
    text = tooltip_text(_tick(now), snoozed=until, snoozing="desktop", now=now)
    assert text.splitlines()[-1] == f"alerts snoozed until {until.astimezone().strftime('%H:%M')} (desktop)"
    tomorrow = now + timedelta(days=1)
    assert f"until {tomorrow.astimezone().strftime('%a %H:%M')} (desktop + Slack)" in tooltip_text(
        _tick(now), snoozed=tomorrow, snoozing="desktop + Slack", now=now)


@pytest.fixture
def make_app(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    made = []

    def make(config: Config) -> tuple[TrayApp, list]:
        app = TrayApp(Loaded(config, tmp_path / "config.toml", []), tmp_path / "data", tmp_path / "config.toml")
        shown: list = []
        monkeypatch.setattr(app.tray, "showMessage", lambda title, text, *rest: shown.append(title))
        made.append(app)
        return app, shown

    yield make
    for app in made:
        app._collector.stop()


def test_a_snooze_holds_desktop_notifications_back(make_app) -> None:
    app, shown = make_app(Config())
    now = datetime.now(timezone.utc)
    assert app.snooze_menu.title() == "Snooze alerts (desktop)"  # no Slack here: it does not promise Slack
    app.on_tick(_tick(now, (_red(now),)))
    assert shown == ["CPU red"]
    app.snooze("1h")
    assert app.is_snoozed() and app._icon_key[3] is True  # the icon wears the badge
    assert "alerts snoozed until" in app.tray.toolTip() and "(desktop)" in app.tray.toolTip()
    app.on_tick(_tick(now, (_red(now),)))
    assert shown == ["CPU red"]  # held back
    app.on_slack_status("Slack alerts snoozed until Sat 08:00")  # what the courier says
    assert "Slack" not in app.tray.toolTip()
    app.snooze("off")
    assert not app.is_snoozed() and app._icon_key[3] is False
    app.on_tick(_tick(now, (_red(now),)))
    assert shown == ["CPU red", "CPU red"]
    assert (Path(app.folder) / "state" / "snooze.json").exists()  # the courier (Slack) reads the same file


def test_a_snooze_set_before_a_restart_is_shown_and_holds_from_the_start(make_app, tmp_path: Path) -> None:
    from trayapp.slack import snooze

    now = datetime.now(timezone.utc)
    until = now + timedelta(hours=1)
    snooze(tmp_path / "data", until)  # as 'trayapp snooze 1h' or the app before it was restarted
    app, shown = make_app(Config())
    assert app.is_snoozed() and app.snoozed == until
    app.on_tick(_tick(now, (_red(now),)))
    assert shown == []  # held back
    assert app._icon_key[3] is True and "alerts snoozed until" in app.tray.toolTip()


def test_the_log_keeps_what_happened_alerts_snoozes_and_pauses(make_app, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    app, _ = make_app(Config())
    now = datetime.now(timezone.utc)
    with caplog.at_level(logging.INFO, logger="trayapp"):
        app.on_tick(_tick(now, (_red(now),)))
        app.snooze("1h")
        app.on_tick(_tick(now, (_red(now),)))
        app.snooze("off")
        app.set_paused(True)
        app.set_paused(True)  # already paused: nothing new to say
        app.set_paused(False)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("trayapp")]
    alerts = [line for line in lines if line.startswith("cpu_percent/36h ok → red: 36 h avg cpu_percent 95.0 %")]
    assert len(alerts) == 2 and not alerts[0].endswith("; snoozed") and alerts[1].endswith("; snoozed"), lines
    assert any(line.startswith("alerts snoozed until ") for line in lines) and "alerts resumed" in lines
    assert lines.count("recording paused") == 1 and lines.count("recording resumed") == 1


def test_the_menu_says_slack_when_slack_is_set_up(make_app) -> None:
    app, _ = make_app(Config(**SLACK))
    assert app.snooze_menu.title() == "Snooze alerts (desktop + Slack)"
    app.apply(Config())  # Slack removed in the settings
    assert app.snooze_menu.title() == "Snooze alerts (desktop)"
    app.apply(Config(alerts_desktop_notifications=False))
    assert not app.snooze_menu.isEnabled()


def test_pause_shows_on_the_icon_and_in_the_tooltip(make_app) -> None:
    app, _ = make_app(Config())
    now = datetime.now(timezone.utc)
    app.on_tick(_tick(now))
    key = app.tray.icon().cacheKey()
    app.set_paused(True)
    assert app._icon_key[2] is True and app.tray.icon().cacheKey() != key
    assert "paused since" in app.tray.toolTip() and "CPU 12 %" not in app.tray.toolTip()
    app.set_paused(False)
    assert app._icon_key[2] is False and "CPU 12 %" in app.tray.toolTip()


def test_clicking_a_notification_opens_the_history(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = make_app(Config())
    opened = []
    monkeypatch.setattr(app, "show_history", lambda *a: opened.append(a))
    app.tray.messageClicked.emit()
    assert opened == [()]


def test_the_command_line_says_what_a_snooze_holds_back(tmp_path: Path) -> None:
    """``trayapp snooze`` and ``status`` as real processes: no Slack here, so no Slack promise."""
    import subprocess
    import sys

    def cli(*args: str, config: str = "") -> str:
        path = tmp_path / "config.toml"
        path.write_text(config)
        done = subprocess.run([sys.executable, "-m", "trayapp.cli", "--config", str(path), "--data-dir", str(tmp_path / "data"), *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = cli("snooze", "1h")
    assert out.startswith("trayapp: alerts snoozed until ") and out.rstrip().endswith("(desktop)") and "Slack" not in out
    assert "alerts snoozed until" in cli("status") and "(desktop)" in cli("status")
    slack = '[slack]\nwebhook_url = "http://127.0.0.1:9/services/T/B/x"\n'
    assert cli("snooze", "8h", config=slack).rstrip().endswith("(desktop + Slack)")
    assert cli("snooze", "off", config=slack).strip() == "trayapp: alerts are on again (desktop + Slack)"


def test_a_level_held_by_hysteresis_says_so_and_a_change_of_level_projects_again(make_app) -> None:
    from trayapp.gui.app import held_by_hysteresis, rule_lines

    red = RuleResult("memory_percent", 129600, 74.3, 100, 36 * 3600, Level.RED, 70.0, 75.0)
    assert held_by_hysteresis(red, 2.0) == "held red until below 73 %"  # 74.3 beside 'red 75' needs a word
    orange = RuleResult("memory_percent", 129600, 69.0, 100, 36 * 3600, Level.ORANGE, 70.0, 75.0)
    assert held_by_hysteresis(orange, 2.0) == "held orange until below 68 %"
    assert held_by_hysteresis(RuleResult("memory_percent", 129600, 80.0, 100, 36 * 3600, Level.RED, 70.0, 75.0), 2.0) == ""
    assert held_by_hysteresis(red, 0.0) == ""
    near = RuleResult("memory_percent", 129600, 74.8, 100, 36 * 3600, Level.RED, 70.0, 75.0)
    assert held_by_hysteresis(near, 0.3) == "held red until below 74.7 %"  # one decimal, not '75 %' beside 'red 75'
    rate = RuleResult("disk_write_bytes_per_s", 3600, 99.9e6, 100, 3600, Level.RED, 50e6, 100e6)
    assert held_by_hysteresis(rate, 2.0) == ""  # 2 B/s below 100 MB/s reads as 100 MB/s: nothing worth saying
    now = datetime.now(timezone.utc)
    tick = Tick(Sample(now, 12.0, 74.3, 70.0, ()), (red,), Level.RED, (), True)
    (line,) = rule_lines(tick, (), None, 2.0)
    assert line.endswith("— red (over 36 h of data); held red until below 73 %"), line
    app, _ = make_app(Config())
    app.on_tick(_tick(now))
    assert app._projected_at == now.timestamp()
    app.on_tick(_tick(now + timedelta(seconds=10)))
    assert app._projected_at == now.timestamp()  # once a minute
    app.on_tick(_tick(now + timedelta(seconds=20), (_red(now + timedelta(seconds=20)),)))
    assert app._projected_at == (now + timedelta(seconds=20)).timestamp()  # at once when a level changed


def test_a_falling_rule_held_by_hysteresis_says_it_the_other_way_round() -> None:
    """A battery rule (orange at 20 % and under, red under 10 %): a level held by the hysteresis
    holds until the average rises back past the line, and the tooltip says so."""
    from trayapp.gui.app import held_by_hysteresis, rule_lines

    red = RuleResult("battery_percent", 600, 10.8, 60, 590, Level.RED, 20.0, 10.0, "below")
    assert held_by_hysteresis(red, 2.0) == "held red until above 12 %"
    orange = RuleResult("battery_percent", 600, 21.0, 60, 590, Level.ORANGE, 20.0, 10.0, "below")
    assert held_by_hysteresis(orange, 2.0) == "held orange until above 22 %"
    deep = RuleResult("battery_percent", 600, 5.0, 60, 590, Level.RED, 20.0, 10.0, "below")
    assert held_by_hysteresis(deep, 2.0) == ""  # red on its own merits: nothing held
    now = datetime.now(timezone.utc)
    tick = Tick(Sample(now, 12.0, 40.0, 70.0, ()), (red,), Level.RED, (), True)
    (line,) = rule_lines(tick, (), None, 2.0)
    assert line.endswith("— red (over 10 min of data); held red until above 12 %"), line


def test_a_hand_edited_snooze_the_clock_cannot_show_is_no_snooze(make_app, tmp_path: Path) -> None:
    import json

    state = tmp_path / "data" / "state" / "snooze.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"until": "9999-12-31T23:59:59-12:00"}))  # past the year 9999 in UTC
    app, shown = make_app(Config())
    assert app.snoozed is None
    now = datetime.now(timezone.utc)
    app.on_tick(_tick(now, (_red(now),)))  # the tooltip, the log, the notification: nothing raises
    assert shown == ["CPU red"] and "alerts snoozed" not in app.tray.toolTip()


def test_resume_alerts_is_offered_only_while_something_is_snoozed(make_app) -> None:
    app, _ = make_app(Config())
    assert not app.resume_action.isEnabled()  # nothing to resume
    app.snooze("1h")
    assert app.resume_action.isEnabled()
    app.snooze("off")
    assert not app.resume_action.isEnabled()


def test_an_improvement_is_good_news_not_a_warning(make_app) -> None:
    from trayapp.gui.app import notification_kind, notification_text

    now = datetime.now(timezone.utc)
    result = RuleResult("cpu_percent", 129600, 85.0, 100, 14 * 3600, Level.ORANGE, 80.0, 90.0)
    better = Transition("cpu_percent/36h", Level.RED, Level.ORANGE, result, now)
    assert notification_text((better,))[0] == "CPU improved: red → orange"
    assert notification_kind((better,)) is None  # shown as information
    assert notification_kind((better, _red(now))) is Level.RED  # unless something got worse beside it
    app, shown = make_app(Config())
    kinds: list = []
    app.tray.showMessage = lambda title, text, kind, ms: (shown.append(title), kinds.append(kind))
    app.on_tick(_tick(now, (better,)))
    assert shown == ["CPU improved: red → orange"] and kinds == [QSystemTrayIcon.MessageIcon.Information]


def test_paused_sampling_counts_no_first_verdict_down() -> None:
    now = datetime.now(timezone.utc)
    sample = Sample(now, 23.0, 41.0, 70.0)
    results = (RuleResult("cpu_percent", 129600, 23.0, 5, 8.0, Level.UNKNOWN, 80.0, 90.0),)
    from trayapp.rules import Rule

    running = tooltip_text(Tick(sample, results, Level.UNKNOWN, (), True), rules=(Rule("cpu_percent"),))
    paused = tooltip_text(Tick(sample, results, Level.UNKNOWN, (), True), paused=True, paused_since=now, rules=(Rule("cpu_percent"),))
    assert "first verdict in 60 min" in running
    assert "first verdict in" not in paused and "no verdict until sampling resumes" in paused
