"""The tray app: icon, tooltip, menu, notifications, and the windows, wired to the sampler thread.

Imports Qt and the core. Everything here runs on the GUI thread and only reads values the
sampler sends; nothing here blocks (no disk reads, no network).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from PySide6.QtCore import QObject, QSocketNotifier, Qt, QTimer, QtMsgType, QUrl, Signal, qInstallMessageHandler
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication, QMenu, QMessageBox, QSystemTrayIcon

from trayapp.attribution import describe_contributors
from trayapp.engine import EarlyOpen, Tick, describe, transition_line
from trayapp.fleet import SCOPE_FLEET, changes, merged_level, notification
from trayapp.gui import icon as tray_icon
from trayapp.gui.live import LIVE_SECONDS, LiveBuffer
from trayapp.gui.sampler import Sampler
from trayapp.instance import ALREADY_RUNNING, instance_name, socket_path, trusted_fd
from trayapp.logfile import LOG_BACKUPS, LOG_BYTES, note_start, note_stop, start_log_file  # noqa: F401 - where they were
from trayapp.model import MACHINE_COLUMNS, Level, RuleResult, Sample, Transition, format_value, metric_label, metric_unit
from trayapp.rules import BELOW, Projection, Rule, first_verdict_in, human_duration, project_recent
from trayapp.settings import Config, Loaded, default_data_dir, default_log_path, save
from trayapp.slack import snooze, snooze_channels, snooze_end, snoozed_until

log = logging.getLogger(__name__)

PRELOAD_AFTER_MS = 15_000
def _fmt(value: float | None, unit: str = "%") -> str:
    return "n/a" if value is None else f"{value:.0f} {unit}"


def describe_sample(sample: Sample, rules: tuple[Rule, ...] = ()) -> list[str]:
    """The current readings; of the network, disk I/O, sensor, swap and load columns only those a rule watches."""
    lines = [f"CPU {_fmt(sample.cpu_percent)}   memory {_fmt(sample.memory_percent)}   disk {_fmt(sample.disk_percent)}"]
    for gpu in sample.gpus:
        lines.append(f"GPU {gpu.index} {_fmt(gpu.util_percent)}   memory {_fmt(gpu.memory_percent)}   {_fmt(gpu.temperature_c, '°C')}")
    watched = [c for c in MACHINE_COLUMNS if any(rule.metric == c for rule in rules)]
    if watched:
        lines.append("   ".join(f"{metric_label(c)} {format_value(c, getattr(sample, c))}" for c in watched))
    return lines


def clock(moment: datetime, now: datetime | None = None) -> str:
    """``14:02`` today, ``Sat 08:00`` another day (local time)."""
    local = moment.astimezone()
    today = (now or datetime.now(timezone.utc)).astimezone().date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%a %H:%M")


# seconds between two projections (each reads the rule windows, tens of ms over 36 h of 1 s
# samples): a hundredth of the shortest rule window, between one and five minutes, so "red in
# ≈ 12 h" is redone every 5 minutes and "red in ≈ 3 min" of a 1 h rule every minute
PROJECT_EVERY = 60.0
PROJECT_EVERY_MOST = 300.0


def projection_every(rules: tuple[Rule, ...]) -> float:
    """Seconds between two projections for these rules (above)."""
    shortest = min((rule.window_seconds for rule in rules), default=0.0)
    return min(max(shortest / 100.0, PROJECT_EVERY), PROJECT_EVERY_MOST)


# seconds between two tooltips built from ticks: its readings are at most this old, a level change
# shows at once; building it is most of what a tick costs the GUI thread
TOOLTIP_EVERY = 3.0


def rule_lines(tick: Tick, rules: tuple[Rule, ...] = (), projections: dict | None = None, hysteresis: float = 0.0,
               paused: bool = False, made_by: bool = True) -> list[str]:
    """One line per rule for people: its average and level, or how long until its first verdict
    (the first hour; while sampling is paused no verdict comes, so no countdown), a level the
    hysteresis holds (red at 74 % beside 'red 75' needs a word), and where the average is heading
    at the current load. ``made_by``: under a rule's line, an indented one naming who made its
    average (the tooltip); without it, exactly one line per rule (the window's summary, which
    names them itself)."""
    by_result = dict(zip(range(len(tick.results)), rules)) if len(rules) == len(tick.results) else {}
    measured = tick.sample.values()
    lines = []
    for i, result in enumerate(tick.results):
        rule = by_result.get(i)
        line = describe(result, for_people=True)
        wait = first_verdict_in(rule, result) if rule is not None and rule.metric == result.metric else None
        if wait is not None:
            head = line.split(" — ", 1)[0]
            if result.samples == 0 and measured.get(result.metric) is None:
                line = f"{head} — no data: {metric_label(result.metric)} is not measured on this machine"
            elif paused:
                line = f"{head} — collecting data (paused: no verdict until sampling resumes)"
            else:
                line = f"{head} — collecting data: first verdict in {human_duration(max(wait, 1.0))}"
        held = held_by_hysteresis(result, hysteresis) if wait is None else ""
        if held:
            line += f"; {held}"
        projection = (projections or {}).get(i)
        if projection is not None and wait is None:
            line += f"; {projection.text()}"
        lines.append(line)
        if made_by and result.contributors and wait is None:  # who made the average: the top three, then "other"
            lines.append(f"    by {describe_contributors(result.contributors, count=3)}")
    return lines


def held_by_hysteresis(result: RuleResult, hysteresis: float) -> str:
    """``held red until below 73 %`` where the level stands only by the hysteresis, else ''; for
    a rule that watches a value fall, ``held red until above 23 %``."""
    if result.average is None or hysteresis <= 0:
        return ""
    sign = -1.0 if result.direction == BELOW else 1.0  # a falling rule is a rising one on negated values
    if result.level is Level.RED and sign * result.average <= sign * result.red:
        level, threshold = "red", result.red
    elif result.level is Level.ORANGE and sign * result.average < sign * result.orange:
        level, threshold = "orange", result.orange
    else:
        return ""
    until, at = _threshold_text(result.metric, threshold - sign * hysteresis), _threshold_text(result.metric, threshold)
    way = "above" if result.direction == BELOW else "below"
    return f"held {level} until {way} {until}" if until != at else ""  # a hysteresis too small to show says nothing


def _threshold_text(metric: str, value: float) -> str:
    """A threshold as the plots' margin says it, one decimal where it has one: ``73 %``, ``74.7 %``, ``50.0 MB/s``."""
    return f"{round(value, 1):g} {metric_unit(metric)}".rstrip() if metric_unit(metric) in ("%", "°C") else format_value(metric, value)


def first_verdict(tick: Tick, rules: tuple[Rule, ...]) -> float | None:
    """While no rule has a level yet: the seconds until the first one will."""
    if tick.level is not Level.UNKNOWN or len(rules) != len(tick.results):
        return None
    measured = tick.sample.values()
    waits = [first_verdict_in(rule, r) for rule, r in zip(rules, tick.results) if r.samples or measured.get(r.metric) is not None]
    waits = [w for w in waits if w is not None]
    return min(waits) if waits else None


def tooltip_text(
    tick: Tick | None,
    paused: bool = False,
    slack: str = "",
    *,
    paused_since: datetime | None = None,
    snoozed: datetime | None = None,
    snoozing: str = "",
    now: datetime | None = None,
    rules: tuple[Rule, ...] = (),
    projections: dict | None = None,
    hysteresis: float = 0.0,
) -> str:
    """The tooltip: the level, the current readings (or since when sampling is paused), each
    rule (``rules``: the config's, for the first hour; ``projections``: by result index), a
    snooze and what it holds back (``snoozing``), and Slack's delivery problems."""
    if tick is None:
        return "trayapp — starting…"
    wait = first_verdict(tick, rules)
    if wait is None:
        level = tick.level.value
    else:  # paused, no sample comes and no verdict: no countdown
        level = "collecting data" if paused else f"collecting data: first verdict in {human_duration(max(wait, 1.0))}"
    lines = [f"trayapp — {level}" + (" (sampling paused)" if paused else "")]
    if paused:  # the last readings are not current: say so instead of showing them
        lines.append(f"paused since {clock(paused_since, now)}: no new readings" if paused_since else "paused: no new readings")
    else:
        lines += describe_sample(tick.sample, rules)
    lines += rule_lines(tick, rules, projections, hysteresis, paused)
    if snoozed is not None:
        lines.append(f"alerts snoozed until {clock(snoozed, now)}" + (f" ({snoozing})" if snoozing else ""))
    if slack:
        lines.append(slack)
    return "\n".join(lines)


def projection_for(rule: Rule, result, arrays, now: float, config: Config) -> Projection | None:
    """``rules.project_recent`` for a rule window's ``(stamps, values)`` (``array('d')`` copies)."""
    import numpy as np

    stamps, values = (np.frombuffer(a, dtype="float64") if len(a) else np.empty(0) for a in arrays)
    return project_recent(rule, result, stamps, values, now, config.sampling_interval_seconds, config.alerts_hysteresis)


_SEVERITY = {Level.UNKNOWN: 0, Level.OK: 0, Level.ORANGE: 1, Level.RED: 2}


def improved(change: Transition) -> bool:
    """A change to a less severe level (red → orange, → ok): good news, not a warning."""
    return not change.reminder and _SEVERITY[change.current] < _SEVERITY[change.previous]


def notification_text(changes: tuple[Transition, ...]) -> tuple[str, str]:
    """One notification for all of a tick's transitions (they often come together at start-up);
    an improvement says so: ``CPU improved: red → orange``."""
    titles = []
    for change in changes:
        r = change.result
        if change.resolved:
            titles.append(f"{metric_label(r.metric)} back to ok")
        elif improved(change):
            titles.append(f"{metric_label(r.metric)} improved: {change.previous.value} → {change.current.value}")
        else:
            titles.append(f"{metric_label(r.metric)} {change.current.value}" + (" (still)" if change.reminder else ""))
    return ", ".join(titles), "\n".join(describe(c.result, for_people=True) for c in changes)


def notification_kind(changes: tuple[Transition, ...]) -> Level | None:
    """The level a notification is shown as: the worst level some change made worse or
    reminds of; None when every change is an improvement (shown as information, not a warning)."""
    worse = [c.current for c in changes if not improved(c)]
    return Level.worst(worse) if worse else None


class GuiThreadCollector:
    """Python's garbage collector, run on the GUI thread only.

    A collection may start on any thread; one that frees a widget on the sampler thread crashes
    Qt. pyqtgraph ships the same idea (``util.garbage_collector``), but importing it loads all
    of pyqtgraph (~30 MB), which the app otherwise loads only with the history window.
    """

    def __init__(self, parent: QObject, interval_ms: int = 5000) -> None:
        import gc

        self._gc = gc
        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(parent)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        gc = self._gc
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.threshold[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        self.timer.stop()
        self._gc.enable()


class TrayApp(QObject):
    """The whole desktop app for one data folder."""

    tick_shown = Signal(object)  # after the icon/tooltip were updated for a tick

    def __init__(self, loaded: Loaded, folder: Path, config_path: Path, use_tray: bool = True, early: EarlyOpen | None = None) -> None:
        super().__init__()
        self._collector = GuiThreadCollector(self)
        self.config = loaded.config
        self.config_warnings = list(loaded.warnings)
        self.folder = Path(folder)
        self.config_path = Path(config_path)
        self.live = LiveBuffer()
        self.last: Tick | None = None
        self.slack_line = ""
        self.fleet_state = None  # the last fleet.FleetState, None while no Prometheus server is set
        self._fleet_levels: dict = {}  # instance → fleet.Health, for the remote machines' notifications
        # when the snooze ends: one set before a restart is still in force (the courier holds
        # Slack back by the same file), and the badge and the tooltip say so from the start
        self.snoozed: datetime | None = snoozed_until(self.folder)
        self._courier_snoozed: datetime | None = None
        self.paused_since: datetime | None = None
        self.projections: dict[int, Projection] = {}  # by rule index, refreshed every projection_every(rules)
        self._projected_at = 0.0
        self._tooltip_at = -math.inf  # monotonic time of the last tooltip a tick set
        self._icon_key: tuple | None = None
        self.log_path: Path | None = None  # the rotating log file, once run_gui has started it
        self.notifier = None  # D-Bus notifications with buttons, where the desktop has them
        self.window = None
        self.dialog = None
        self.use_tray = use_tray

        self.tray = QSystemTrayIcon(self)
        self._set_icon(Level.UNKNOWN, None)
        self.tray.setToolTip(tooltip_text(None))
        self.tray.setContextMenu(self._menu())
        self.tray.activated.connect(self._activated)
        # a click on a notification opens the history (QSystemTrayIcon messages carry no buttons)
        self.tray.messageClicked.connect(lambda: self.show_history())

        from trayapp.gui.panel import Panel  # the metrics picked for the panel, each its own tray item

        self.panel = Panel(self.show_metric, self, recent=lambda: self.live.samples)
        self.panel.apply(self.config.panel)

        self.sampler = Sampler(self.config, self.folder, early=early)
        self.sampler.ticked.connect(self.on_tick)
        self.sampler.failed.connect(self.on_failed)
        self.sampler.slack_status.connect(self.on_slack_status)
        self.sampler.started_up.connect(self._recorder_started)  # a bound method: queued to this (the GUI) thread
        QApplication.instance().aboutToQuit.connect(self.shutdown)  # however the loop ends
        self.exporter = None
        if self.config.prometheus_enabled:
            self._start_prometheus()
        from trayapp.gui.machines import FleetWatcher  # the machines a Prometheus server scrapes ([fleet])

        self.fleet = FleetWatcher(self)
        self.fleet.updated.connect(self.on_fleet)

    # --- start and stop

    def start(self) -> None:
        if self.use_tray:
            self.tray.show()  # the icon first; history is seeded on the sampler thread
            self.panel.show()  # then the panel items, beside it in order
            self._open_notifier()
            if self.config_warnings:
                self.tray.showMessage(
                    f"trayapp: {len(self.config_warnings)} problem(s) in {self.config_path.name}",
                    "\n".join(self.config_warnings[:3]) + "\nDefaults are used for those; see Settings or 'trayapp doctor'.",
                    QSystemTrayIcon.MessageIcon.Warning, 15000,
                )
        self.sampler.start()
        self.fleet.apply(self.config)
        # Load pyqtgraph once the app has settled (~30 MB, ~0.3 s): the first click on the icon
        # then paints the rule metrics in a few hundred milliseconds instead of twice that.
        QTimer.singleShot(PRELOAD_AFTER_MS, self._preload_history)

    def _open_notifier(self) -> None:
        """On Linux, notifications through the desktop's D-Bus service carry buttons (Open
        history, Snooze 1 h); elsewhere, or without one, Qt's tray messages (a click opens the
        history)."""
        if not sys.platform.startswith("linux"):
            return
        from trayapp.gui.notify import DBusNotifier

        self.notifier = DBusNotifier.open()
        if self.notifier is not None:
            self.notifier.invoked.connect(self.on_notification_action)

    def on_notification_action(self, key: str) -> None:
        if key == "snooze":
            self.snooze("1h")
        else:  # "open", or a click on the notification itself
            self.show_history()

    def _preload_history(self) -> None:
        import trayapp.gui.history  # noqa: F401  (loading it is the point)
        from trayapp.heap import release_memory

        release_memory()  # what importing pyqtgraph freed goes back to the OS

    def shutdown(self) -> None:
        """Stop the sampler (the store is flushed), the window's reader thread and the endpoint; idempotent."""
        self.sampler.stop()
        self.fleet.stop()
        self._collector.stop()
        if self.notifier is not None:
            self.notifier.close()
            self.notifier = None
        if self.exporter is not None:
            self.exporter.stop()
            self.exporter = None
        if self.window is not None:
            self.window.shutdown()
        self.panel.shutdown()
        self.tray.hide()

    def quit(self) -> None:
        self.shutdown()
        QApplication.quit()

    # --- the menu

    def _menu(self) -> QMenu:
        menu = QMenu()
        menu.addAction("Show history", self.show_history)
        menu.addAction("Settings…", self.show_settings)
        menu.addSeparator()
        self.pause_action = QAction("Pause sampling", menu, checkable=True)
        self.pause_action.toggled.connect(self.set_paused)
        menu.addAction(self.pause_action)
        self.snooze_menu = snooze_menu = menu.addMenu("Snooze alerts")
        for label, word in (("1 hour", "1h"), ("8 hours", "8h"), ("Until tomorrow", "tomorrow")):
            snooze_menu.addAction(label, lambda w=word: self.snooze(w))
        snooze_menu.addSeparator()
        self.resume_action = snooze_menu.addAction("Resume alerts", lambda: self.snooze("off"))
        self._label_snooze_menu()
        menu.addSeparator()
        menu.addAction("Open log", self.open_log)
        menu.addAction("Quit", self.quit)
        self._menu_ref = menu
        return menu

    def open_log(self) -> None:
        """The log file in the desktop's viewer for it (its folder when there is no file yet)."""
        path = self.log_path or default_log_path()
        target = path if path.exists() else path.parent
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(target))):
            log.warning("could not open %s", target)
            QApplication.clipboard().setText(str(target))
            box = QMessageBox(QMessageBox.Icon.Information, "trayapp — log",
                              f"There is no program here to open the log with. It is at\n\n{target}\n\n(the path is on the clipboard)")
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            box.show()  # not exec(): no second event loop in a tray app
            self._log_box = box

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:  # left click
            self.show_history()

    def _label_snooze_menu(self) -> None:
        """Say what a snooze holds back here; nothing to hold back: say that instead."""
        channels = snooze_channels(self.config)
        self.snooze_menu.setTitle(f"Snooze alerts ({channels})" if channels else "Snooze alerts (none on: no Slack, no desktop notifications)")
        self.snooze_menu.setEnabled(bool(channels) or self.snoozed is not None)
        self.resume_action.setEnabled(self.is_snoozed())  # nothing snoozed: nothing to resume

    def set_paused(self, paused: bool) -> None:
        self.sampler.set_paused(paused)
        if paused != (self.paused_since is not None):
            log.info("recording paused" if paused else "recording resumed")  # the log tells the months after
        self.paused_since = datetime.now(timezone.utc) if paused else None
        self._refresh_state()

    def snooze(self, word: str) -> None:
        until = snooze_end(word)
        try:
            snooze(self.folder, until)
        except OSError as exc:
            log.warning("cannot snooze: %s", exc)
            return
        self.snoozed = until
        if until is None:
            log.info("alerts resumed")
        else:
            log.info("alerts snoozed until %s", until.astimezone().strftime("%Y-%m-%d %H:%M"))
        self._refresh_state()

    def is_snoozed(self, now: datetime | None = None) -> bool:
        return self.snoozed is not None and self.snoozed > (now or datetime.now(timezone.utc))

    # --- ticks

    def on_tick(self, tick: Tick) -> None:
        if self.last is None:  # the first tick: the last 10 minutes before it, from the rule windows
            self.live.seed(self.sampler.recent(LIVE_SECONDS), tick.sample.timestamp.timestamp())
        self.last = tick
        self.live.add(tick.sample)
        self._set_icon(tick.level, tray_icon.bucket(tick.sample.cpu_percent))
        self.panel.on_tick(tick.sample.values(), tick.results, tick.sample.timestamp)
        self._project(tick)
        if self.snoozed is not None and not self.is_snoozed():  # it ran out: the badge goes
            self.snoozed = None
            self._refresh_state()
        if tick.transitions or time.monotonic() - self._tooltip_at >= TOOLTIP_EVERY:
            self._tooltip_at = time.monotonic()
            self._refresh_tooltip()
        for change in tick.transitions:  # what happened, for whoever looks back in the log months later (as headless logs it)
            log.info("%s%s", transition_line(change), "; snoozed" if self.is_snoozed(tick.sample.timestamp) else "")
        if self.config.alerts_desktop_notifications and self.use_tray and tick.transitions and not self.is_snoozed(tick.sample.timestamp):
            title, text = notification_text(tick.transitions)
            kinds = {Level.RED: QSystemTrayIcon.MessageIcon.Critical, Level.ORANGE: QSystemTrayIcon.MessageIcon.Warning}
            worst = notification_kind(tick.transitions)
            if self.notifier is not None:
                self.notifier.notify(title, text, urgency={Level.RED: 2, Level.ORANGE: 1}.get(worst, 0))
            elif self.window is None or not self.window.isVisible():  # Qt's own balloon would sit over the window's buttons; the window says it
                self.tray.showMessage(title, text, kinds.get(worst, QSystemTrayIcon.MessageIcon.Information), 8000)
        if self.window is not None and self.window.isVisible():
            self.window.set_results(tick.results, notes=rule_lines(tick, self.config.rules, self.projections, self.config.alerts_hysteresis,
                                                                   self.sampler.paused, made_by=False))
            self.window.show_now(tick.sample)
            self.window.refresh_live()
        self.tick_shown.emit(tick)

    def _set_icon(self, level: Level, load: int | None) -> None:
        """``level``: this machine's; the icon shows the worst of it and the fleet's when ``[fleet] scope`` says so."""
        paused = self.sampler.paused if hasattr(self, "sampler") else False
        shown, remote = merged_level(level, self.fleet_state, self.config.fleet_scope)
        key = (level, load, paused, self.is_snoozed(), shown, remote)
        if key == self._icon_key:
            return  # redraw only when what it shows changes
        self._icon_key = key
        self.tray.setIcon(tray_icon.icon(shown, None if paused else load, paused=paused, snoozed=key[3], remote=remote))
        if self.window is not None:
            self.window.setWindowIcon(self.tray.icon())

    def _refresh_tooltip(self) -> None:
        text = tooltip_text(
            self.last, self.sampler.paused, self.slack_line, paused_since=self.paused_since,
            snoozed=self.snoozed if self.is_snoozed() else None, snoozing=snooze_channels(self.config),
            rules=self.config.rules, projections=self.projections, hysteresis=self.config.alerts_hysteresis,
        )
        if self.fleet_state is not None:  # each machine with its level and worst rule, or the one line of a fault
            text += "\n" + "\n".join(self.fleet_state.lines())
        if text != self.tray.toolTip():
            self.tray.setToolTip(text)

    def on_fleet(self, state) -> None:  # noqa: ANN001 - fleet.FleetState, from the fleet poller
        """A poll of the fleet: the icon, the tooltip, and one desktop notification for the
        machines whose level changed (each recorder sends its own Slack messages: none here)."""

        found = changes(self._fleet_levels, state)
        if not state.error:
            self._fleet_levels = {m.instance: m.level for m in state.machines}
        self.fleet_state = state
        for change in found:
            log.info("fleet: %s (was %s)", change.machine.line(), change.previous.value if change.previous else "not seen")
        if (found and self.config.fleet_scope == SCOPE_FLEET and self.config.alerts_desktop_notifications and self.use_tray
                and not self.is_snoozed()):
            title, text = notification(found)
            worst = max((c.machine.level.icon_level for c in found if not c.better), key=lambda lv: lv.severity, default=None)
            if self.notifier is not None:
                self.notifier.notify(title, text, urgency={Level.RED: 2, Level.ORANGE: 1}.get(worst, 0))
            else:
                kinds = {Level.RED: QSystemTrayIcon.MessageIcon.Critical, Level.ORANGE: QSystemTrayIcon.MessageIcon.Warning}
                self.tray.showMessage(title, text, kinds.get(worst, QSystemTrayIcon.MessageIcon.Information), 8000)
        self._set_icon(*(self._icon_key[:2] if self._icon_key is not None else (Level.UNKNOWN, None)))
        self._refresh_tooltip()
        if self.window is not None:
            self.window.set_fleet(state, self.config)  # the machine picker

    def _project(self, tick: Tick) -> None:
        """Where each rule's average heads at the current load: from the rule windows in memory
        (copied under the engine's lock, a few MB), once a minute, not on every tick, and at once
        when a level changed: a projection made before it ('orange in ≈ 50 s', now orange) is stale."""
        now = tick.sample.timestamp.timestamp()
        if now - self._projected_at < projection_every(self.config.rules) and now >= self._projected_at and not tick.transitions:
            return
        self._projected_at = now
        rules = self.config.rules
        projections: dict[int, Projection] = {}
        if len(rules) == len(tick.results):
            for i, (rule, result) in enumerate(zip(rules, tick.results)):
                arrays = self.sampler.recent(rule.window_seconds).get(rule.metric)
                if arrays is None or result.metric != rule.metric:
                    continue
                projection = projection_for(rule, result, arrays, now, self.config)
                if projection is not None:
                    projections[i] = projection
        self.projections = projections

    def _refresh_state(self) -> None:
        """Pause or snooze changed: the icon's badges, the tooltip, the menu."""
        if self._icon_key is not None:
            self._set_icon(*self._icon_key[:2])  # the level and load as last shown
        self._refresh_tooltip()
        self._label_snooze_menu()

    def _recorder_started(self) -> None:
        if self.window is not None:
            self.window.recorder_ready()  # a read held while the folder was being opened

    def on_failed(self, message: str) -> None:
        print(f"trayapp: {message}", file=sys.stderr)
        self.tray.setToolTip(f"trayapp — not recording: {message}")
        QTimer.singleShot(0, self.quit)

    def on_slack_status(self, line: str) -> None:
        # the snooze is the app's to tell (it holds desktop alerts back too), so the courier's
        # "Slack alerts snoozed" part is left out here: on a machine without Slack it was wrong
        self.slack_line = "; ".join(part for part in line.split("; ") if part and not part.startswith("Slack alerts snoozed"))
        courier = self.sampler.courier
        if courier is not None and courier.snoozed != self._courier_snoozed:  # e.g. 'trayapp snooze' in a terminal
            self.snoozed = self._courier_snoozed = courier.snoozed
        self._refresh_state()

    # --- windows

    def show_history(self, span: float | None = None) -> None:
        """Open the history window (on ``span`` seconds when given: a range button's)."""
        if self.window is None:
            from trayapp.gui.history import HistoryWindow

            self.window = HistoryWindow(self.folder, self.live, self.config, quick=self.sampler.recent, minutes=self.sampler.minutes,
                                        starting=self.sampler.starting, rows=self.sampler.rows, arrow=False,
                                        processes=self.sampler.processes_at,
                                        processes_over=self.sampler.processes_over)
            self.window.layout_changed.connect(self._save_plot_layout)
            self.window.setWindowIcon(self.tray.icon())
            self.window.set_fleet(self.fleet_state, self.config)
            if self.last is not None and all(r.level is Level.UNKNOWN for r in self.last.results):
                # a fresh install: 36 h of nothing but a sliver at the right edge says little;
                # the live view shows what is being recorded (the buttons switch to history)
                self.window.span = LIVE_SECONDS
        if self.last is not None:
            self.window.set_results(self.last.results, self.config, rule_lines(self.last, self.config.rules, self.projections,
                                                                               self.config.alerts_hysteresis, self.sampler.paused, made_by=False))
        if span is not None:
            if self.window.isVisible():
                self.window.show_range(span)
            else:
                self.window.span = span
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def show_metric(self, metric: str) -> None:
        """A panel item was clicked: the history window, scrolled to that metric's plot."""
        self.show_history()
        self.window.show_metric(metric)

    def show_settings(self) -> None:
        from trayapp.gui.settings_dialog import SettingsDialog

        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            self.dialog.activateWindow()
            return
        values = self.last.sample.values() if self.last is not None else None  # incl. GPU columns seen
        # a battery, fan or sensor column is offered only where this machine has one (its value is not null)
        measured = tuple(c for c, v in values.items() if v is not None or c not in MACHINE_COLUMNS) if values else None
        self.dialog = SettingsDialog(self.config, self.config_path, self.folder, self.slack_line, metrics=measured)
        self.dialog.applied.connect(self.apply)
        self.dialog.show()

    def apply(self, config: Config) -> None:
        """New settings from the dialog: in force at once, no restart."""
        old = self.config
        self.config = config
        folder = self.folder  # as started: --data-dir, $TRAYAPP_DATA_DIR or the config
        if config.storage_data_dir != old.storage_data_dir:  # the user moved it in the dialog
            folder = Path(config.storage_data_dir).expanduser() if config.storage_data_dir else default_data_dir()
        self.sampler.apply(config, folder)
        self.folder = folder
        if config.rules != old.rules:  # projections are by rule index: the next tick makes them again
            self.projections, self._projected_at = {}, 0.0
        if self.window is not None:
            self.window.data_dir = folder
            self.window.config = config
            if (old.window_hidden_plots, old.window_plot_order) != (config.window_hidden_plots, config.window_plot_order):
                self.window.set_layout(config.window_hidden_plots, config.window_plot_order)
        self._label_snooze_menu()
        self._refresh_tooltip()
        self.panel.apply(config.panel)
        if old.app_start_at_login != config.app_start_at_login:
            self._set_autostart(config.app_start_at_login)
        self.fleet.apply(config)
        if (old.fleet_url, old.fleet_job) != (config.fleet_url, config.fleet_job):  # another fleet, or none: nothing of the old one stays
            self.fleet_state, self._fleet_levels = None, {}
        if self.window is not None:
            self.window.set_fleet(self.fleet_state, config)
        if self._icon_key is not None:
            self._set_icon(*self._icon_key[:2])  # a new scope shows at once
        self._refresh_tooltip()
        if (old.prometheus_enabled, old.prometheus_address, old.prometheus_port) != (
            config.prometheus_enabled, config.prometheus_address, config.prometheus_port
        ):
            if self.exporter is not None:
                self.exporter.stop()
                self.exporter = None
            if config.prometheus_enabled:
                self._start_prometheus()

    def _save_plot_layout(self, hidden: str, order: str) -> None:
        """The plots a person hid or moved in the history window, kept in the config file
        (``[window]``), written off this thread (a save may ask the keyring)."""
        self.config = self.config.with_values(window_hidden_plots=hidden, window_plot_order=order)
        config, path = self.config, self.config_path

        def save_it() -> None:
            try:
                save(config, path)
            except (OSError, ValueError) as exc:
                log.warning("could not keep the plots' layout in %s: %s", path, exc)

        threading.Thread(target=save_it, name="trayapp-save-layout", daemon=True).start()

    def _set_autostart(self, enabled: bool) -> None:
        from trayapp.autostart import set_autostart

        try:
            where = set_autostart(enabled)
            log.info("start at login %s (%s)", "on" if enabled else "off", where)
        except OSError as exc:
            log.warning("could not change start at login: %s", exc)

    def _start_prometheus(self) -> None:
        from trayapp.metrics import Exporter

        try:
            self.exporter = Exporter(self.config.prometheus_address, self.config.prometheus_port)
        except (ImportError, OSError) as exc:
            log.warning("Prometheus endpoint not started: %s", exc)
            return
        self.sampler.listeners.append(self.exporter.on_tick)


RANGE_NAMES = {"live": LIVE_SECONDS, "36h": 36 * 3600, "7d": 7 * 86400, "30d": 30 * 86400, "1y": 365 * 86400}


def _already_running(name: str, history: str | None = None) -> bool:
    """Ask a running instance to show its window (on ``history``, a RANGE_NAMES key); True if
    one is there. It answers ``ok`` once the window is shown."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(500):
        return False
    if os.name == "posix" and not trusted_fd(int(socket.socketDescriptor()), socket_path(name)):
        socket.abort()
        return False  # another user's: not an app of ours; this one starts and takes the name
    socket.write(f"show {history or ''}".strip().encode() + b"\n")
    socket.waitForBytesWritten(500)
    socket.waitForReadyRead(3000)
    socket.disconnectFromServer()
    return True


def _answer(conn: QLocalSocket, tray_app: "TrayApp") -> None:
    """A second ``trayapp`` (or a test) asked for the window: ``show [RANGE]``, answered ``ok``."""
    words = bytes(conn.readAll().data()).decode("utf-8", "replace").split()
    if words[:1] == ["show"]:
        tray_app.show_history(RANGE_NAMES.get(words[1]) if len(words) > 1 else None)
        conn.write(b"ok\n")
        conn.flush()


def _wait_for_tray(seconds: float) -> bool:
    """At login the panel may come up after us: wait for it rather than give up."""
    deadline = time.monotonic() + seconds
    while True:
        if QSystemTrayIcon.isSystemTrayAvailable():
            return True
        if time.monotonic() >= deadline:
            return False
        QApplication.processEvents()
        time.sleep(0.5)


_QT_NOISE = ("propagateSizeHints", "does not support raise()", "QSystemTrayIcon::setVisible: No Icon set")


def _qt_messages(mode: QtMsgType, _context: object, message: str) -> None:
    """Qt's own chatter goes to our log, not raw onto the user's terminal."""
    if any(noise in message for noise in _QT_NOISE):
        return
    if mode in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
        log.debug("Qt: %s", message)


def _quit_on_signals(app: QApplication) -> None:
    """SIGINT/SIGTERM end the event loop cleanly (the store is flushed on the way out).

    Qt's loop does not return to Python while idle, so the signal also writes a byte to a
    socket that Qt watches: the wake-up costs nothing while no signal comes.
    """
    import signal
    import socket

    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, app)

    def drain() -> None:
        try:
            reader.recv(64)
        except OSError:
            pass

    notifier.activated.connect(drain)
    for sig in (signal.SIGINT, signal.SIGTERM):
        # a timer, not app.quit(): a signal that comes before the event loop runs (while the
        # app seeds its windows) would otherwise be lost and the app would keep running
        signal.signal(sig, lambda *_: QTimer.singleShot(0, app.quit))
    app._trayapp_signal_sockets = (reader, writer, notifier)  # keep them alive with the app


def run_gui(loaded: Loaded, folder: Path, config_file: Path, wait_for_tray: float = 0.0, history: str | None = None,
            early: EarlyOpen | None = None, log_file: "logging.Handler | None | bool" = True) -> int:
    """``early``: the store's opening, begun before Qt was loaded; ``log_file``: the log file's
    handler when the caller started it (None: it could not), True to start it here."""
    qInstallMessageHandler(_qt_messages)
    started_here = log_file is True
    if log_file is True:
        log_file = start_log_file()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    _quit_on_signals(app)
    app.setApplicationName("trayapp")
    app.setQuitOnLastWindowClosed(False)
    name = instance_name(folder)
    if _already_running(name, history):
        print(ALREADY_RUNNING, file=sys.stderr)
        if early is not None:
            early.close()
        return 0
    server = QLocalServer()
    QLocalServer.removeServer(name)  # a stale socket from a crash
    server.listen(name)

    has_tray = _wait_for_tray(wait_for_tray)
    tray_app = TrayApp(loaded, folder, config_file, use_tray=has_tray, early=early)
    if log_file is not None:
        tray_app.log_path = Path(log_file.baseFilename)
        if started_here:
            note_start(log_file, folder, loaded.warnings)

    def on_connection() -> None:
        conn = server.nextPendingConnection()
        if conn is not None:
            conn.readyRead.connect(lambda: _answer(conn, tray_app))

    server.newConnection.connect(on_connection)
    if not has_tray:
        print("trayapp: no system tray on this desktop; showing the window instead (closing it quits)", file=sys.stderr)
        app.setQuitOnLastWindowClosed(True)
    if history is not None or not has_tray:
        tray_app.show_history(RANGE_NAMES.get(history or ""))
    tray_app.start()
    code = app.exec()
    tray_app.sampler.stop()
    server.close()
    if log_file is not None:
        note_stop(log_file, folder)
    return code
