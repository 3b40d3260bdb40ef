"""One tick: probe → store → rule windows → tracker → listeners (Slack outbox, GUI, logs).

Imports the core modules only; never Qt. The GUI's QThread and ``run --headless`` both drive it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from trayapp import jsonfile
from trayapp.attribution import Attributor, RuleContributors
from trayapp.heap import release_memory
from trayapp.model import Level, RuleResult, Sample, Transition, format_value, metric_label, metric_unit
from trayapp.rules import AlertTracker, Rule, RuleState, evaluate_arrays, human_duration, parse_duration, with_projection
from trayapp.settings import Config
from trayapp.storage import EARLIEST, Store, run_job_unless_loaded

log = logging.getLogger(__name__)

STATE_DIR = "state"


@dataclass(frozen=True, slots=True)
class Tick:
    """What one tick produced; immutable, so it can cross threads."""

    sample: Sample
    results: tuple[RuleResult, ...]
    level: Level
    transitions: tuple[Transition, ...]
    written: bool


def rule_keys(rules: tuple[Rule, ...]) -> list[str]:
    """A stable key per rule (``cpu_percent/36h``); a repeated key gets ``#2``, ``#3``…"""
    keys: list[str] = []
    for rule in rules:
        key = rule.key
        n = 2
        while key in keys:
            key = f"{rule.key}#{n}"
            n += 1
        keys.append(key)
    return keys


class Engine:
    """The sampling core. ``start`` on the thread that will tick; then ``tick`` per interval."""

    def __init__(
        self,
        config: Config,
        data_dir: Path,
        probe_factory: Callable[[Config], Any] | None = None,
        dataset_in_child: bool = False,
        keep_minutes: bool = False,
    ) -> None:
        """``dataset_in_child``: for long-running recorders, keep Arrow out of this process
        (see ``storage.child_job``): the windows are seeded and days rolled over by a child, unless
        this process has Arrow loaded already. ``keep_minutes``: the store keeps its CSV as
        minute bins (``Store.minutes``), for a history window in this process."""
        self.config = config
        self.data_dir = Path(data_dir)
        jobs = run_job_unless_loaded if dataset_in_child else None
        self.store = Store(self.data_dir, config.storage_retention_days, jobs=jobs, minutes=keep_minutes)
        self._probe_factory = probe_factory or _default_probe
        self.probe: Any = None
        self.states: list[RuleState] = []
        self.keys: list[str] = []
        self.tracker = AlertTracker()
        self._state_unsaved = False  # the last save of the alert state failed (said once)
        self.listeners: list[Callable[[Tick], None]] = []
        self.last: Tick | None = None
        self._lock = threading.Lock()
        self._opened: tuple[datetime, Any] | None = None  # (when, seed) from open_store, for start
        self._dataset_in_child = dataset_in_child
        self.attribution: Attributor | None = None  # who made each average (``attribution``)
        self._contributors: list[RuleContributors] = []
        self._process_records: list[Any] = []  # earlier minutes read with the store, for start
        self._process_day: Any = None
        # every tick's results carry their contributors (the tray app's tooltip); else only a
        # transition's do (Slack, the log), which is all a headless recorder shows
        self.contributors_each_tick = False

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_DIR / "alerts.json"

    def open_store(self, now: datetime | None = None) -> None:
        """The first half of ``start``, on any thread: take the data folder (raises DataDirBusy),
        roll earlier days over and read the samples that seed the rules (in a child, for a
        long-running recorder)."""
        now = now or datetime.now(timezone.utc)
        self._opened = (now, self.store.open_writer(now, seed=window_request(self.config.rules, now)))
        self._process_records = self._process_job(now, seed=True) if self.config.processes_attribution else []

    def start(self, now: datetime | None = None) -> None:
        """Take the data folder (raises DataDirBusy), roll over, and seed every rule from disk
        (the store half done already when ``open_store`` ran)."""
        if self._opened is None:
            self.open_store(now)
        assert self._opened is not None
        opened_at, seeded = self._opened
        self._opened = None
        self.probe = self._probe_factory(self.config)
        self._build_rules(opened_at, seeded)
        if self.config.processes_attribution:
            self._start_attribution(opened_at)

    def _longest_window(self) -> float:
        return max((rule.window_seconds for rule in self.config.rules), default=3600.0)

    def _process_job(self, now: datetime, seed: bool) -> list[Any]:
        """The process records' dataset job (finished days to Parquet, retention) and, with
        ``seed``, the minutes of the longest rule window; in a child for a long-running recorder."""
        from trayapp import attribution_days

        job = attribution_days.request(self.data_dir, now, self._longest_window(), self.config.storage_retention_days)
        if not seed:
            job.pop("start")
        try:
            if self._dataset_in_child:
                _meta, arrays = run_job_unless_loaded(job)
            else:
                _meta, arrays = attribution_days.job(job)
            return attribution_days.records_of(arrays)
        except Exception as exc:  # noqa: BLE001 - never refuse to record: contributors then start from now
            log.warning("process records on disk could not be read (%s); contributors count from now", str(exc)[:200])
            return []

    def _start_attribution(self, now: datetime) -> None:
        self.attribution = Attributor(self.data_dir, self.config.processes_command_lines, self._longest_window())
        self.attribution.seed(self._process_records, now.timestamp())
        self._process_records = []
        log.info("process attribution on: %d minute(s) of records from disk", len(self.attribution.records))

    def _build_rules(self, now: datetime | None = None, seeded: Any = None) -> None:
        config = self.config
        self.keys = rule_keys(config.rules)
        self.states = [RuleState(rule) for rule in config.rules]
        self._contributors = [RuleContributors(rule.metric) for rule in config.rules]
        if self.attribution is not None:
            self.attribution.keep_seconds = self._longest_window()
        saved = jsonfile.read_dict(self.state_path, warn=True)
        self.tracker = AlertTracker(
            hysteresis=config.alerts_hysteresis,
            repeat_every=parse_duration(config.slack_repeat_every),
            state={k: v for k, v in saved.items() if k in self.keys},
        )
        self.seed(now or datetime.now(timezone.utc), seeded)

    def seed(self, now: datetime, seeded: Any = None) -> None:
        """Fill the rule windows from the store (or from ``seeded``, read with the rollover),
        so no tick ever reads the disk."""
        request = window_request(self.config.rules, now)
        if request is None:
            return
        stamps, columns = seeded if seeded is not None else self.store.seed_arrays(*request)
        for state in self.states:
            state.window.extend(stamps, columns[state.rule.metric], now.timestamp())
        log.info("seeded %d rule(s) from %d sample(s) on disk", len(self.states), len(stamps))
        del stamps, columns
        release_memory()  # the read was a burst; this process lives on for months

    def apply(self, config: Config) -> None:
        """Take new settings at once (from the settings dialog); re-seeds if rules changed."""
        with self._lock:
            old = self.config
            self.config = config
            self.store.retention_days = config.storage_retention_days
            if (config.sampling_gpu_backend, config.sampling_disk_path) != (old.sampling_gpu_backend, old.sampling_disk_path):
                if self.probe is not None:
                    self.probe.close()
                self.probe = self._probe_factory(config)
            if (config.rules, config.alerts_hysteresis, config.slack_repeat_every) != (old.rules, old.alerts_hysteresis, old.slack_repeat_every):
                self._build_rules()
            if not config.processes_attribution and self.attribution is not None:
                self.attribution.close()
                self.attribution = None
            elif config.processes_attribution and self.attribution is None and self.states:
                self._start_attribution(datetime.now(timezone.utc))
            if self.attribution is not None:
                self.attribution.command_lines = config.processes_command_lines

    def recent(self, span: float, wait: float = 0.05) -> dict[str, tuple[Any, Any]]:
        """Samples of each rule metric whose window covers ``span`` seconds, copied from the
        windows (epoch seconds, values as ``array('d')``); ``{}`` if a tick holds the lock
        longer than ``wait``. The history window paints these at once, before the disk read."""
        if not self._lock.acquire(timeout=wait):
            return {}
        try:
            out: dict[str, tuple[Any, Any]] = {}
            for state in self.states:
                if state.rule.window_seconds >= span and state.rule.metric not in out:
                    out[state.rule.metric] = state.window.arrays()
            return out
        finally:
            self._lock.release()

    def processes_at(self, t: float) -> str:
        """The busiest processes of the minute holding epoch seconds ``t``, from the records in
        memory ("" when none): for the history window's hover, on the GUI thread."""
        from trayapp.attribution import minute_line

        return self._from_records(lambda records, cores: minute_line(records, t, cores))

    def processes_over(self, start: float, end: float) -> str:
        """Who used the machine from ``start`` to ``end`` (epoch seconds), from the records in
        memory ("" when none fall in it): the history window's range on screen, on the GUI thread."""
        from trayapp.attribution import span_line

        return self._from_records(lambda records, cores: span_line(records, start, end, cores))

    def _from_records(self, line: Callable[[list, int], str]) -> str:
        """``line(records, cores)`` over a copy of the records in memory (the sampler appends to
        them), or "" without attribution."""
        attributor = self.attribution
        if attributor is None:
            return ""
        return line(list(attributor.records), os.cpu_count() or 1)

    def tick(self, sample: Sample | None = None) -> Tick:
        with self._lock:
            measured = sample is None  # a sample handed in (a test, a replay) is not of this moment's processes
            if measured:
                sample = self.probe.read()
            values = sample.values()
            written = self.store.append(sample, values)
            t = sample.timestamp.timestamp()
            attributor = self.attribution
            if attributor is not None and measured:
                self._attribute(attributor, t)
            results = []
            transitions = []
            for index, (key, state) in enumerate(zip(self.keys, self.states)):
                state.window.add(t, values.get(state.rule.metric))
                result = state.result(self.tracker.alert.get(key), self.tracker.hysteresis)
                change = self.tracker.update(key, result, sample.timestamp)
                if attributor is not None and (self.contributors_each_tick or change is not None):
                    found = self._contributors[index].result(attributor, state.window, result.average,
                                                             self.config.processes_command_lines)
                    if found:
                        result = replace(result, contributors=found)
                        if change is not None:
                            change = replace(change, result=result)
                results.append(result)
                if change is not None:  # with where its average heads next, for the Slack message
                    transitions.append(with_projection(change, state.rule, state.window, t,
                                                       self.config.sampling_interval_seconds, self.tracker.hysteresis))
            if transitions:
                self._save_state()
            tick = Tick(sample, tuple(results), Level.worst([r.level for r in results]), tuple(transitions), written)
            self.last = tick
        for listener in list(self.listeners):
            try:
                listener(tick)
            except Exception:  # a listener's bug must not stop sampling
                log.exception("a listener failed on a tick")
        return tick

    def _attribute(self, attributor: Attributor, t: float) -> None:
        """The process scan of this tick's slot, if any; a new day's file sends finished days to
        Parquet (in a child, on a thread of its own: sampling never waits for it)."""
        try:
            attributor.tick(t, getattr(self.probe, "gpu", None))  # NVML's GPU processes, with the probe's handles
        except Exception:  # a bug here must not stop sampling
            log.exception("process attribution failed on a tick")
            return
        day = attributor.writer.day
        if day != self._process_day:
            if self._process_day is not None:
                now = datetime.fromtimestamp(t, timezone.utc)
                threading.Thread(target=self._process_job, args=(now, False), name="trayapp-processes", daemon=True).start()
            self._process_day = day

    def _save_state(self) -> None:
        try:
            jsonfile.write(self.state_path, self.tracker.state())
        except OSError as exc:
            if not self._state_unsaved:  # once until it saves again, not at every transition of a full disk
                log.warning("cannot save alert state to %s (%s); a restart may repeat an alert", self.state_path, exc.strerror)
            self._state_unsaved = True
        else:
            self._state_unsaved = False

    def stop(self) -> None:
        with self._lock:
            if self.probe is not None:
                self.probe.close()
                self.probe = None
            if self.attribution is not None:
                self.attribution.close()
            self.store.close()


def _default_probe(config: Config) -> Any:
    from trayapp.probes import Probe

    return Probe(config.sampling_gpu_backend, config.sampling_disk_path or None)


def window_request(rules: tuple[Rule, ...], now: datetime) -> "tuple[datetime, datetime, list[str]] | None":
    """What the rules' windows need from disk: (start, end, metrics) over the longest window."""
    if not rules:
        return None
    longest = max(rule.window_seconds for rule in rules)
    # a window longer than the data can be (99999999d) reaches back to the earliest time a
    # store keeps, not past datetime's range
    start = now - timedelta(seconds=longest) if longest < (now - EARLIEST).total_seconds() else EARLIEST
    return start, now, sorted({rule.metric for rule in rules})


def transition_line(change: Transition) -> str:
    """One log line for a transition: ``cpu_percent/36h ok → red: 36 h avg cpu_percent 92.0 % — red (…)``."""
    kind = "still" if change.reminder else f"{change.previous.value} → {change.current.value}:"
    made = change.result.contributors
    if made and change.current in (Level.ORANGE, Level.RED):
        from trayapp.attribution import describe_contributors

        return f"{change.rule_key} {kind} {describe(change.result)}; made by {describe_contributors(made)}"
    return f"{change.rule_key} {kind} {describe(change.result)}"


def describe(result: RuleResult, for_people: bool = False) -> str:
    """One line for logs: ``36 h avg cpu_percent 92.0 % — red (over 14 h of data)``; with
    ``for_people`` (tooltips, notifications): ``36 h avg CPU 92 % — red (over 14 h of data)``."""
    name = metric_label(result.metric) if for_people else result.metric
    if result.average is None:
        avg = "n/a"
    else:
        avg = f"{result.average:.0f}" if for_people else f"{result.average:.1f}"
        avg += f" {metric_unit(result.metric)}".rstrip()
        if for_people and metric_unit(result.metric) in ("B/s", "RPM"):  # 12.3 MB/s, 1,850 RPM
            avg = format_value(result.metric, result.average)
    return (f"{human_duration(result.window_seconds)} avg {name} {avg} — {result.level.value} "
            f"(over {human_duration(result.coverage_seconds)} of data)")


class EarlyOpen:
    """``Engine.open_store`` on a thread of its own, begun by the tray app before it loads Qt.

    The start-up's dataset child (Arrow, the rollover, 36 h of samples: ~90 MB for a second or
    two) then runs while the app is still ~30 MB, not beside its ~90 MB of Qt: the two together
    stay far below either one plus the other. ``wait`` with a timeout lets a long first start (a
    notebook-era history getting its tiers) show the icon anyway; the sampler waits for the rest.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="trayapp-open", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.engine.open_store()
        except Exception as exc:  # noqa: BLE001 - the sampler reports it as ``start`` would have
            self.error = exc

    def wait(self, timeout: float | None = None) -> bool:
        """True once the store is open (or failed to open: see ``error``)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Let the folder go without recording (the app quits before it starts): after the
        child, so the lock is never released under a rollover still at work."""
        self.wait()
        if self.error is None:
            self.engine.store.close()


def run_loop(engine: Engine, stop: threading.Event, interval: Callable[[], float]) -> None:
    """Tick every ``interval()`` seconds on a steady schedule until ``stop`` is set."""
    next_at = time.monotonic()
    while not stop.is_set():
        try:
            engine.tick()
        except Exception:  # keep sampling whatever one tick hit; the log says what
            log.exception("a tick failed")
        step = interval()
        next_at += step
        delay = next_at - time.monotonic()
        if delay < 0:  # fell behind (suspend, a slow disk): restart the schedule from now
            next_at = time.monotonic()
            delay = 0.0
        stop.wait(delay)
