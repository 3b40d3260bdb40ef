"""The command line: the tray app by default, ``run --headless``, ``status``, ``export``, ``doctor``.

Imports the core; Qt only inside the ``gui`` command, lazily. Bad input ends in one line, no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from trayapp import __version__, privacy
from trayapp.heap import hold_little, map_libraries_small
from trayapp.settings import FIELD_BY_KEY, Config, Loaded, SettingError, check, config_path, data_dir, load

log = logging.getLogger("trayapp")

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_STATUS_UNKNOWN = 3  # status --exit-code: a Nagios plugin's UNKNOWN, also for "could not tell"


class UserError(Exception):
    """Something the user can fix; printed as one line."""


HIDDEN_COMMANDS = ("tray-check", "dataset-job")  # child processes, not for people


class Parser(argparse.ArgumentParser):
    """argparse with trayapp's promise: a mistake on the command line is one line and exit 1."""

    def error(self, message: str) -> None:  # type: ignore[override]
        wrong = re.match(r"argument COMMAND: invalid choice: (.+?) \(choose from", message)
        if wrong:
            shown = ", ".join(c for c in COMMANDS if c not in HIDDEN_COMMANDS)
            message = f"unknown command {wrong.group(1)} (choose from {shown})"
        self.exit(EXIT_FAIL, f"{self.prog}: {message} (see 'trayapp --help')\n")


def _wait_seconds(text: str) -> float:
    """``--wait-for-tray``: a finite number of seconds, 0 to 3600 (inf would wait for ever)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:  # false for nan too
        raise argparse.ArgumentTypeError(f"{text}: must be between 0 and 3600 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="trayapp",
        description="System-tray resource monitor: CPU, memory, disk and NVIDIA GPU, with alert rules and Slack.",
    )
    parser.add_argument("--version", action="version", version=f"trayapp {__version__}")
    common = argparse.ArgumentParser(add_help=False)  # the global options, also after the command:
    for target, default in ((parser, None), (common, argparse.SUPPRESS)):  # `trayapp status --data-dir X`
        target.add_argument("--data-dir", default=default, help="data folder (default: $TRAYAPP_DATA_DIR, the config, or the platform's)")
        target.add_argument("--config", default=default, help="config file (default: $TRAYAPP_CONFIG or the platform's)")
        target.add_argument("-v", "--verbose", action="store_true", default=False if default is None else default, help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, **kw: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kw)

    gui = command("gui", help="start the tray app (the default)")
    gui.add_argument("--history", choices=("live", "36h", "7d", "30d", "1y"), metavar="RANGE",
                     help="open the history window on RANGE (live, 36h, 7d, 30d, 1y), in the running app if there is one")
    gui.add_argument("--wait-for-tray", type=_wait_seconds, default=0.0, metavar="SECONDS",
                     help="wait this long for a system tray to appear (used when started at login)")
    run = command("run", help="sample, store and alert; --headless for servers")
    run.add_argument("--headless", action="store_true", help="no GUI: run until SIGINT/SIGTERM")
    run.add_argument("--interval", type=float, help="seconds between samples (overrides the config)")

    status = command("status", help="the alert level from what is on disk now")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--exit-code", action="store_true",
                        help="exit as a Nagios plugin does: 0 ok, 1 orange, 2 red, 3 unknown or could not tell")
    status.add_argument("--fleet", action="store_true", help="the machines the Prometheus server of [fleet] url scrapes")

    export = command("export", help="write a time range as CSV, Parquet or JSON")
    export.add_argument("--since", help="start: ISO time (local if no offset) or a duration back from now, e.g. 36h")
    export.add_argument("--until", help="end: ISO time or a duration back from now (default: now)")
    export.add_argument("--format", choices=("csv", "parquet", "json"), default="csv")
    export.add_argument("--output", "-o", default="-", help="file to write, '-' for standard output (not for parquet)")

    command("doctor", help="report what works: tray, GPU, data folder, Slack")
    command("tray-check")  # doctor's child process; no help= keeps it out of --help
    command("dataset-job")  # the recorder's child process
    command("slack-test", help="send a test message to Slack and say whether it was accepted")
    snooze = command("snooze", help="hold desktop and Slack alerts back for a while")
    snooze.add_argument("duration", help="1h, 8h, tomorrow, any duration like 30m, or 'off'")
    return parser


def _few_malloc_arenas() -> None:
    """Two glibc malloc arenas instead of up to eight per core: each thread (sampler, courier,
    the window's reader) would otherwise keep its own arena, and the memory a read frees there
    stays resident (~12 MB measured on the tray app with the window in use). These threads rarely
    allocate at once, so they lose nothing to sharing. Before any thread starts; not glibc: no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # musl and others: their own allocator, nothing to set
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # a usage error under --exit-code is "could not tell" for a monitor
        if exc.code == EXIT_FAIL and any(len(w) > 6 and "--exit-code".startswith(w) for w in words):
            raise SystemExit(EXIT_STATUS_UNKNOWN) from None
        raise
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="trayapp: %(message)s",
        stream=sys.stderr,
    )
    privacy.install()  # every handler, so slack_sdk's and urllib3's lines are redacted too
    _quiet_libraries(args.verbose)
    command = args.command or "gui"
    if command in ("gui", "run"):
        _few_malloc_arenas()
    failed = EXIT_STATUS_UNKNOWN if getattr(args, "exit_code", False) else EXIT_FAIL
    try:
        return COMMANDS[command](args)
    except UserError as exc:
        print(privacy.redact(f"trayapp: {exc}"), file=sys.stderr)
        return failed
    except KeyboardInterrupt:
        return failed
    except BrokenPipeError:  # `trayapp status | head -1`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit would fail again
        return failed
    except Exception as exc:  # the promise: no traceback reaches a user
        print(privacy.redact(f"trayapp: {command} failed: {type(exc).__name__}: {exc} (run with -v for details)"),
              file=sys.stderr)
        if args.verbose:
            import traceback

            print(privacy.redact(traceback.format_exc()), file=sys.stderr, end="")
        return failed


def _quiet_libraries(verbose: bool) -> None:
    for name in ("slack_sdk", "urllib3", "filelock", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)


def load_config(args: argparse.Namespace, quiet: bool = False) -> tuple[Loaded, Path]:
    loaded = load(config_path(args.config))
    if not quiet:
        for warning in loaded.warnings:
            log.warning("%s", warning)
    return loaded, data_dir(loaded.config, args.data_dir)


# ---------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    if not args.headless:
        return cmd_gui(args)
    loaded, folder = load_config(args)
    config = loaded.config
    if args.interval is not None:
        try:  # the same bounds as the config file's interval_seconds
            interval = check(FIELD_BY_KEY["sampling.interval_seconds"], args.interval)
        except SettingError as exc:
            raise UserError(f"--interval {args.interval:g}: {str(exc).split(': ', 1)[1]}") from None
        config = config.with_values(sampling_interval_seconds=interval)
    return run_headless(config, folder)


def run_headless(config: Config, folder: Path) -> int:
    hold_little()  # before the recorder's threads and first reads: it runs for months
    from trayapp.engine import Engine, run_loop
    from trayapp.slack import Courier
    from trayapp.storage import DataDirBusy, StoreError

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    engine = Engine(config, folder, dataset_in_child=True)
    try:
        engine.start()
    except DataDirBusy as exc:
        raise UserError(str(exc)) from None
    except (StoreError, OSError) as exc:
        raise UserError(f"cannot use data folder {folder}: {exc}") from None
    courier = Courier(folder, lambda: engine.config)
    engine.listeners.append(courier.on_tick)
    engine.listeners.append(_log_transitions)
    exporter = _start_prometheus(config, engine)
    courier.start()
    log.info(
        "recording every %gs into %s (%d rule(s)); stop with Ctrl-C or SIGTERM",
        config.sampling_interval_seconds, folder, len(config.rules),
    )
    try:
        run_loop(engine, stop, lambda: engine.config.sampling_interval_seconds)
    finally:
        engine.stop()
        courier.stop(timeout=3.0)
        if exporter is not None:
            exporter.stop()
    log.info("stopped; every sample is on disk")
    return EXIT_OK


def _log_transitions(tick: Any) -> None:
    from trayapp.engine import transition_line

    for change in tick.transitions:
        log.info("%s", transition_line(change))


def _start_prometheus(config: Config, engine: Any) -> Any:
    if not config.prometheus_enabled:
        return None
    from trayapp.metrics import Exporter

    try:
        exporter = Exporter(config.prometheus_address, config.prometheus_port)
    except (ImportError, OSError) as exc:
        log.warning("Prometheus endpoint not started: %s", exc)
        return None
    engine.listeners.append(exporter.on_tick)
    log.info("Prometheus metrics on http://%s:%d/metrics", config.prometheus_address, config.prometheus_port)
    return exporter


# ------------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace) -> int:
    if args.fleet:
        return status_fleet(args)
    from trayapp.engine import describe
    from trayapp.model import Level
    from trayapp.storage import Store

    loaded, folder = load_config(args)
    config = loaded.config
    if not folder.is_dir():
        raise UserError(f"no data folder at {folder} (start 'trayapp run --headless' or the tray app first)")
    from trayapp.engine import window_request
    from trayapp.rules import evaluate_arrays, project_recent

    now = datetime.now(timezone.utc)  # one read serves the averages and where they head
    request = window_request(config.rules, now)
    stamps, columns = Store(folder).arrays(*request) if request else ([], {})
    results = [evaluate_arrays(rule, stamps, columns[rule.metric], now.timestamp()) for rule in config.rules]
    interval = _observed_interval(stamps) or config.sampling_interval_seconds  # the recorder's --interval may differ
    projections = [project_recent(rule, r, stamps, columns[rule.metric], now.timestamp(), interval,
                                  config.alerts_hysteresis) for rule, r in zip(config.rules, results)]
    results = _with_contributors(folder, config, results, stamps, columns, now)
    level = Level.worst([r.level for r in results])
    code = {Level.OK: 0, Level.ORANGE: 1, Level.RED: 2}.get(level, EXIT_STATUS_UNKNOWN) if args.exit_code else EXIT_OK
    if args.json:
        rules = [dict(_rule_json(r), **({"projection": p.as_json()} if p else {}),
                      contributors=[c.as_json() for c in r.contributors]) for r, p in zip(results, projections)]
        print(json.dumps({"level": level.value, "rules": rules}))
        return code
    print(f"trayapp status: {level.value}   (data in {folder})")
    from trayapp.model import format_value, metric_unit
    from trayapp.rules import first_verdict_in, human_duration, threshold_signs

    for rule, result, projection in zip(config.rules, results, projections):
        line = describe(result, for_people=True)
        wait = first_verdict_in(rule, result)
        if wait is not None:  # the first hour: say when it will know, not just "unknown"
            line = (f"{line.split(' — ', 1)[0]} — collecting data: {human_duration(result.coverage_seconds)} of the "
                    f"{human_duration(rule.min_coverage_seconds)} it needs (first verdict in {human_duration(max(wait, 1.0))} of recording)")
        orange, red = (format_value(result.metric, t) if metric_unit(result.metric) in ("B/s", "RPM") else f"{t:g}"
                       for t in (result.orange, result.red))  # 50.0 MB/s, not 5e+07
        at, past = threshold_signs(result.direction)  # "orange ≤ 20, red < 10" for a rule that watches a value fall
        print(f"  {line}; orange {at} {orange}, red {past} {red}; {result.samples} sample{'' if result.samples == 1 else 's'}"
              + (f"; {projection.text()}" if projection else ""))
        if result.contributors:
            from trayapp.attribution import describe_contributors

            print(f"    made by: {describe_contributors(result.contributors, count=5)}")
    from trayapp.slack import snooze_channels, snoozed_until

    until = snoozed_until(folder)
    if until is not None:
        what = snooze_channels(config) or "neither Slack nor desktop notifications are on"
        print(f"  alerts snoozed until {until.astimezone().strftime('%Y-%m-%d %H:%M')} ({what})")
    return code


def status_fleet(args: argparse.Namespace) -> int:
    """``status --fleet``: each machine's level, worst rule and last sample, read from Prometheus."""
    from trayapp.fleet import FleetReader, table
    from trayapp.model import Level

    config = load_config(args)[0].config
    if not config.fleet_url:
        raise UserError("no Prometheus server to ask: set [fleet] url in the config (or Settings → Machines)")
    state = FleetReader.from_config(config, log_faults=False).poll()  # a fault is the one line below
    if state.error:
        raise UserError(f"fleet: {state.error}")
    level = state.worst.icon_level if state.worst else Level.UNKNOWN
    print(json.dumps(state.as_json()) if args.json else table(state))
    return {Level.OK: 0, Level.ORANGE: 1, Level.RED: 2}.get(level, EXIT_STATUS_UNKNOWN) if args.exit_code else EXIT_OK


STATUS_CONTRIBUTORS = 20  # process groups ``status`` names per rule (the text shows the first five)


def _with_contributors(folder: Path, config: Any, results: list[Any], stamps: Any, columns: dict[str, Any],
                       now: datetime) -> list[Any]:
    """Each attributed rule's result with its contributors, from the process records on disk."""
    import dataclasses

    import numpy as np

    from trayapp import attribution, attribution_days
    from trayapp.rules import usable_mask

    kinds = [attribution.rule_kind(rule.metric) for rule in config.rules]
    if not any(kinds) or not len(stamps):
        return results
    longest = max(rule.window_seconds for rule, kind in zip(config.rules, kinds) if kind)
    try:
        records = attribution_days.read_records(folder, now - timedelta(seconds=min(longest, 400 * 86400)), now)
    except (OSError, ValueError) as exc:
        print(f"trayapp: process records could not be read ({exc}); no contributors shown", file=sys.stderr)
        return results
    t = np.asarray(stamps, dtype="float64")
    out = []
    for rule, kind, result in zip(config.rules, kinds, results):
        if kind and records and result.average is not None:
            v = np.asarray(columns[rule.metric], dtype="float64")
            keep = (t > now.timestamp() - rule.window_seconds) & (t <= now.timestamp()) & usable_mask(v)
            means = attribution.minute_means(t[keep], v[keep])
            found = attribution.contributors(kind, records, means, len(means), result.average, config.processes_command_lines,
                                             shown=STATUS_CONTRIBUTORS)
            result = dataclasses.replace(result, contributors=found)
        out.append(result)
    return out


def _observed_interval(stamps: Any) -> float | None:
    """The recorder's sampling interval as the data shows it: the median step over the current
    load's span (a projection continues the load at the pace it is sampled now; after a change of
    interval, older steps would speak for a pace that has ended), else over the last 600 samples;
    None with too few."""
    import numpy as np

    from trayapp.storage import median
    from trayapp.rules import CURRENT_LOAD_SPAN

    recent = np.asarray(stamps[-600:], dtype="float64")
    if not len(recent):
        return None
    for window in (recent[recent >= recent[-1] - CURRENT_LOAD_SPAN], recent):
        steps = np.diff(window)
        steps = steps[(steps > 0) & (steps < 3600)]
        if len(steps) >= 2:
            return median(steps)
    return None


def _rule_json(result: Any) -> dict[str, Any]:
    """One rule for ``status --json``, each field always of one JSON type: ``window_seconds`` an
    integer (whole seconds), ``coverage_seconds`` a number with a fraction, ``samples`` an integer."""
    out = result.as_json()
    out["window_seconds"] = int(round(float(out["window_seconds"])))
    out["coverage_seconds"] = float(out["coverage_seconds"])
    out["samples"] = int(out["samples"])
    return out


# ------------------------------------------------------------------- export


def parse_moment(text: str | None, now: datetime) -> datetime | None:
    """An ISO time (local when it has no offset) or a duration back from now (``36h``)."""
    if text is None:
        return None
    from trayapp.rules import parse_duration
    from trayapp.storage import EARLIEST, LATEST  # no sample lies outside these

    try:
        seconds = parse_duration(text)
    except ValueError:
        pass
    else:
        try:
            return max(now - timedelta(seconds=seconds), EARLIEST)
        except OverflowError:
            raise UserError(f"{text!r} reaches back before year 1") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{text!r} is neither an ISO time (2026-11-27T08:00) nor a duration (36h)") from None
    try:
        if moment.tzinfo is None:
            moment = moment.astimezone()  # naive: the user's local time
        moment = moment.astimezone(timezone.utc)
    except (OverflowError, ValueError, OSError):  # year 1 or 9999 in a zone that pushes it past the end
        moment = EARLIEST if moment.year < EARLIEST.year else LATEST
    # no sample can lie outside these; clamping keeps every later date step in range
    return min(max(moment, EARLIEST), LATEST)



def cmd_export(args: argparse.Namespace) -> int:
    from trayapp.storage import Store

    _, folder = load_config(args)
    now = datetime.now(timezone.utc)
    since, until = parse_moment(args.since, now), parse_moment(args.until, now) or now
    if since is not None and since >= until:
        raise UserError("--since must be before --until")
    if not folder.is_dir():
        raise UserError(f"no data folder at {folder}")
    # --since includes its moment (read's start is exclusive, as a rule window's is): a sample
    # at exactly 12:00 belongs to 'export --since 12:00'
    table = Store(folder).read(since - timedelta(microseconds=1) if since is not None else None, until)
    if args.format == "parquet" and args.output == "-":
        raise UserError("Parquet is binary: give --output FILE")
    try:
        write_table(table, args.format, args.output)
    except OSError as exc:
        raise UserError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if args.output != "-":
        print(f"trayapp: wrote {table.num_rows} samples to {args.output}", file=sys.stderr)
    return EXIT_OK


def write_table(table: Any, fmt: str, output: str) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, output, compression="zstd")
        return
    frame = table.to_pandas()
    # One timestamp form in CSV and JSON alike: ISO-8601 in UTC with its offset and microseconds,
    # 2026-11-27T08:00:00.000000+00:00 (what datetime.fromisoformat and every ISO parser read).
    frame["timestamp"] = frame["timestamp"].map(lambda t: t.isoformat(timespec="microseconds"))
    if fmt == "csv":
        text = frame.to_csv(index=False)
    else:
        text = frame.to_json(orient="records", lines=False)
    if output == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        Path(output).write_text(text)


# ------------------------------------------------------------------- doctor


def cmd_doctor(args: argparse.Namespace) -> int:
    loaded, folder = load_config(args, quiet=True)
    config = loaded.config
    problems = 0

    def line(ok: bool | None, what: str, detail: str) -> None:
        nonlocal problems
        mark = {True: "ok  ", False: "FAIL", None: "--  "}[ok]
        if ok is False:
            problems += 1
        print(privacy.redact(f"{mark} {what:<10} {detail}"))

    print(f"trayapp {__version__} on Python {sys.version.split()[0]}, {sys.platform}")
    cfg_detail = str(loaded.path) + ("" if loaded.path.exists() else " (not written yet; defaults in force)")
    line(not loaded.warnings, "config", cfg_detail)
    for warning in loaded.warnings:
        print(privacy.redact(f"           {warning}"))
    line(*_doctor_data(folder))
    line(*_doctor_midnight())
    for ok, detail in _doctor_gpu(config):
        line(ok, "gpu", detail)
    line(*_doctor_tray())
    from trayapp.settings import default_log_path

    gui_log = default_log_path()
    line(None, "log", f"{gui_log} (the tray app's log{'' if gui_log.exists() else '; not written yet'})")
    line(*_doctor_slack(config, folder))
    from trayapp.fleet import doctor_line

    line(*doctor_line(config))
    print("all good" if not problems else f"{problems} problem(s) above")
    return EXIT_OK if not problems else EXIT_FAIL


def _doctor_data(folder: Path) -> tuple[bool | None, str, str]:
    from trayapp.storage import Store

    store = Store(folder)
    if not folder.exists():  # doctor looks, it does not create: the recorder makes the folder
        parent = next((p for p in folder.parents if p.exists()), None)
        if parent is not None and parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return None, "data", f"{folder} does not exist yet (the recorder creates it when it starts)"
        return False, "data", f"{folder} does not exist and cannot be created (no write access to {parent})"
    try:
        probe = folder / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return False, "data", f"{folder} is not writable: {exc.strerror or exc}"
    days = sorted(day for day, _ in store.day_files())
    span = f"{len(days)} day file(s), {days[0]} … {days[-1]}" if days else "no day files yet"
    csv = store.csv_path.stat().st_size if store.csv_path.exists() else 0
    pid = _recorder_pid(folder)
    writer = f"; recorder running (pid {pid})" if pid else "; no recorder running"
    return True, "data", f"{folder}: {span}, today's CSV {csv / 1e6:.1f} MB{writer}"


def _doctor_midnight() -> tuple[bool | None, str, str]:
    """Whether a recorder can roll a day over itself (``trayapp.storage.midnight``): its Parquet writer
    needs zstandard; without it every midnight is a child's with Arrow, as before."""
    try:
        import zstandard

        zstandard.ZstdCompressor(level=1).compress(b"trayapp")
    except Exception as exc:  # noqa: BLE001 - a broken install reads as one line
        return None, "midnight", (f"zstandard is not usable ({str(exc)[:80]}): a child with Arrow rolls each day over instead "
                                  "(~110-180 MB for half a second; reinstall trayapp to mend)")
    return True, "midnight", f"the recorder rolls each day over itself, without Arrow (zstandard {zstandard.__version__})"


def _recorder_pid(folder: Path) -> int | None:
    """The process recording into ``folder``, or None. The writer lock's holder where the OS
    tells it (Linux's /proc/locks); else ``.writer.pid``, if that process is a trayapp: a crash
    leaves the file behind, and its number may belong to another program by now."""
    from trayapp.instance import writer_process
    from trayapp.storage import LOCK_NAME

    known, holder = _flock_holder(folder / LOCK_NAME)
    if known:
        return holder
    writer = writer_process(folder)
    if writer is None:
        return None
    pid, args = writer
    # bin/trayapp, trayapp-tray, trayapp.exe, python -P -m trayapp.cli (autostart's command)
    return pid if any(Path(arg).name.startswith("trayapp") for arg in args[:4]) else None


def _flock_holder(lock: Path) -> tuple[bool, int | None]:
    """(True, pid) where /proc/locks names who holds ``lock``'s flock, (True, None) where there is no
    lock file; else (False, None): not held, or a filesystem whose locks /proc/locks names otherwise."""
    locks = Path("/proc/locks")
    try:
        st = os.stat(lock)
    except FileNotFoundError:
        return locks.exists(), None  # no recorder has ever opened this folder
    except OSError:
        return False, None
    try:
        table = locks.read_text()
    except OSError:
        return False, None
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():  # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2383967 0 EOF" (a waiter's has "->")
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == where:
            return True, int(parts[4]) or None
    return False, None  # the pid file decides


def _doctor_gpu(config: Config) -> list[tuple[bool | None, str]]:
    from trayapp.probes import GputilBackend, NvmlBackend

    out: list[tuple[bool | None, str]] = []
    found = False
    for name, make in (("nvml", NvmlBackend), ("gputil", GputilBackend)):
        started = time.perf_counter()
        try:
            backend = make()
            readings = backend.read()
            took = (time.perf_counter() - started) * 1000
            backend.close()
        except Exception as exc:  # each backend fails its own way; report it, do not crash
            out.append((None, f"{name}: not available ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})"))
            continue
        found = True
        for g in readings:
            def num(value: float | None, unit: str) -> str:
                return "n/a" if value is None else f"{value:.1f} {unit}"

            out.append((True, f"{name}: GPU {g.index} {g.name or ''}: util {num(g.util_percent, '%')}, memory {num(g.memory_percent, '%')}, "
                              f"{num(g.temperature_c, '°C')}, power {num(g.power_w, 'W')}, "
                              f"memory bandwidth {num(g.memory_bandwidth_percent, '%')} ({took:.1f} ms)"))
    if not found:
        out.append((None, f"no NVIDIA GPU readable; gpu_backend = {config.sampling_gpu_backend!r}, GPU columns stay empty"))
    return out


def _doctor_tray() -> tuple[bool | None, str, str]:
    """Ask a child process: Qt aborts the whole process when there is no display."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and sys.platform.startswith("linux"):
        return None, "tray", "no display (DISPLAY unset): use 'trayapp run --headless' here"
    from trayapp import self_command

    argv = [*self_command(), "tray-check"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, "tray", f"could not check: {exc}"
    answer = (done.stdout.strip().splitlines() or ["no answer"])[-1]
    if done.returncode == 0:
        return True, "tray", answer
    return (None if done.returncode == 3 else False), "tray", answer


def _doctor_slack(config: Config, folder: Path) -> tuple[bool | None, str, str]:
    from trayapp.slack import delivery_report

    if not config.slack_configured:
        return None, "slack", "not set up ([slack] webhook_url, or bot_token and channel)"
    ok, detail = delivery_report(folder, config)
    return ok, "slack", detail


# --------------------------------------------------------------- slack bits


def cmd_slack_test(args: argparse.Namespace) -> int:
    from trayapp.slack import send_test

    loaded, _ = load_config(args)
    if not loaded.config.slack_configured:
        raise UserError("Slack is not set up: set [slack] webhook_url, or bot_token and channel, in " + str(loaded.path))
    ok, detail = send_test(loaded.config)
    print(privacy.redact(f"trayapp: {detail}"), file=sys.stderr if not ok else sys.stdout)
    return EXIT_OK if ok else EXIT_FAIL


def cmd_snooze(args: argparse.Namespace) -> int:
    from trayapp.slack import snooze, snooze_channels, snooze_end

    loaded, folder = load_config(args)
    try:
        until = snooze_end(args.duration)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    snooze(folder, until)
    what = snooze_channels(loaded.config) or "neither Slack nor desktop notifications are on"
    if until is None:
        print(f"trayapp: alerts are on again ({what})")
    else:
        print(f"trayapp: alerts snoozed until {until.astimezone().strftime('%Y-%m-%d %H:%M')} ({what})")
    return EXIT_OK


# ---------------------------------------------------------------------- gui


def cmd_gui(args: argparse.Namespace) -> int:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) \
            and os.environ.get("QT_QPA_PLATFORM") not in ("offscreen", "minimal"):
        print("trayapp: no display to show a tray icon on; on a server use 'trayapp run --headless'", file=sys.stderr)
        return EXIT_USAGE
    import importlib.util

    missing = [name for name in ("PySide6", "pyqtgraph") if importlib.util.find_spec(name) is None]
    if missing:  # said before the data folder is opened; the import below says what else is wrong
        raise UserError(f"the tray app needs PySide6 and pyqtgraph (no module named {missing[0]!r}); 'trayapp run --headless' works without")
    hold_little()  # before Qt's threads and the first reads: the tray app runs for months
    map_libraries_small()  # before Qt and numpy are loaded: their pages mapped as read from disk
    loaded, folder = load_config(args)
    history = getattr(args, "history", None)
    from trayapp.instance import ALREADY_RUNNING, ask_running, holder_is_tray_app, instance_name, wait_for_running
    from trayapp.logfile import note_start, start_log_file
    from trayapp.storage import DataDirBusy

    name = instance_name(folder)
    if ask_running(name, history):  # before the folder is opened: a second click only brings the first forward
        print(ALREADY_RUNNING, file=sys.stderr)
        return 0
    log_file = start_log_file()  # before the folder is opened: the start-up's warnings go in it too
    if log_file is not None:
        note_start(log_file, folder, loaded.warnings)
    early = open_early(loaded.config, folder)
    if isinstance(early.error, DataDirBusy) and holder_is_tray_app(folder) and wait_for_running(name, history):
        print(ALREADY_RUNNING, file=sys.stderr)  # one started a moment before, still opening the folder or loading Qt
        return 0
    try:
        from trayapp.gui.app import run_gui
    except ImportError as exc:
        early.close()
        raise UserError(f"the tray app needs PySide6 and pyqtgraph ({exc}); 'trayapp run --headless' works without") from None
    return run_gui(loaded, folder, config_file=loaded.path, wait_for_tray=getattr(args, "wait_for_tray", 0.0) or 0.0,
                   history=history, early=early, log_file=log_file)


EARLY_WAIT_S = 8.0  # the icon waits this long at most for the start-up's dataset child


def open_early(config: Config, folder: Path, wait: float | None = None) -> Any:
    """The tray app's data folder opened (rollover and seeding in a child) before Qt is imported:
    the child's Arrow and the app's Qt are then never resident together (``engine.EarlyOpen``).
    Waits up to ``wait`` seconds; a longer first start goes on beside Qt."""
    from trayapp.engine import EarlyOpen, Engine

    early = EarlyOpen(Engine(config, folder, dataset_in_child=True, keep_minutes=True))
    early.wait(EARLY_WAIT_S if wait is None else wait)
    return early


def cmd_tray_check(args: argparse.Namespace) -> int:
    from trayapp.gui.check import main as check

    return check()


def cmd_dataset_job(args: argparse.Namespace) -> int:
    from trayapp.storage import child_main as job

    return job()


COMMANDS = {
    "tray-check": cmd_tray_check,
    "dataset-job": cmd_dataset_job,
    "gui": cmd_gui,
    "run": cmd_run,
    "status": cmd_status,
    "export": cmd_export,
    "doctor": cmd_doctor,
    "slack-test": cmd_slack_test,
    "snooze": cmd_snooze,
}

if __name__ == "__main__":
    sys.exit(main())
