"""Slack: messages built from transitions, an on-disk outbox, and delivery with slack_sdk.

Imports ``model``, ``settings``, ``rules``, ``jsonfile`` and ``privacy``; never Qt. Delivery runs on its own thread and
never blocks sampling or the GUI. Secrets never appear in logs or error text.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from trayapp import jsonfile, privacy
from trayapp.model import Level, RuleResult, Transition, format_bytes, format_value, metric_unit
from trayapp.rules import BELOW, human_duration, parse_duration
from trayapp.settings import Config

log = logging.getLogger(__name__)

OUTBOX_DIR = "outbox"
COLORS = {Level.RED: "#d93025", Level.ORANGE: "#f29900", Level.OK: "#1e8e3e", Level.UNKNOWN: "#9aa0a6"}
ICONS = {Level.RED: ":red_circle:", Level.ORANGE: ":large_orange_circle:", Level.OK: ":large_green_circle:", Level.UNKNOWN: ":white_circle:"}
PERMANENT_ERRORS = {
    "invalid_auth", "not_authed", "invalid_token", "token_revoked", "token_expired", "account_inactive",
    "channel_not_found", "not_in_channel", "is_archived", "channel_is_archived", "missing_scope",
    "no_service", "no_service_id", "no_team", "team_disabled", "invalid_payload", "no_text",
    "action_prohibited", "posting_to_general_channel_denied", "restricted_action", "user_not_found",
}
MAX_BACKOFF = 300.0


# ------------------------------------------------------------------ messages


def top_processes(metric: str, count: int = 3) -> list[str]:
    """The processes using the most CPU (over 0.1 s) or memory right now, for the message."""
    import psutil

    by_cpu = metric.startswith("cpu")
    procs = []
    for proc in psutil.process_iter(["name", "memory_percent", "memory_info"]):
        try:
            if by_cpu:
                proc.cpu_percent(None)
            procs.append(proc)
        except psutil.Error:
            continue
    if by_cpu:
        time.sleep(0.1)
    scored = []
    for proc in procs:
        try:
            value = proc.cpu_percent(None) if by_cpu else (proc.info.get("memory_percent") or 0.0)
            held = None if by_cpu or proc.info.get("memory_info") is None else proc.info["memory_info"].rss
            scored.append((value, proc.pid, proc.info.get("name") or "?", held))
        except psutil.Error:
            continue
    scored.sort(key=lambda s: s[0], reverse=True)
    # the PID, so the process can be found (names like "python" repeat); the size, since on a
    # big machine a process holding gigabytes is a fraction of a percent. Names are escaped: any
    # local user may name a process "<!channel>"
    return [f"{_mrkdwn(name)} (pid {pid}): {format_value('cpu_percent', value)}" + (f", {format_bytes(held)}" if held else "")
            for value, pid, name, held in scored[:count] if (held if not by_cpu else value >= 0.05)]


def contributor_lines(result: RuleResult, count: int = 5) -> list[str]:
    """A rule's contributors for the message: ``python train.py: 58.2 (pid 4242) `python train.py --lr 3e-4```;
    names and command lines escaped (any local user may name a process ``<!channel>``), command
    lines redacted already when recorded."""
    from trayapp.attribution import short_name

    out = []
    for c in result.contributors[:count + 1]:
        if c.name == "other" and not c.command and not c.pids:
            out.append(f"other: {c.share:.1f}")
            continue
        pids = f" (pid {', '.join(map(str, c.pids))})" if c.pids else ""
        command = c.command.replace("`", "'")
        out.append(f"{_mrkdwn(short_name(c.name, c.command))}: {c.share:.1f}{pids}" + (f" `{_mrkdwn(command)}`" if command else ""))
    return out


def _mrkdwn(text: str) -> str:
    """Text as Slack shows it literally: its three control characters escaped (Slack's rule)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_message(change: Transition, host: str | None = None, processes: list[str] | None = None) -> dict[str, Any]:
    """One transition as a Slack payload: a coloured bar and plain text that says it all."""
    result = change.result
    host = host or socket.gethostname()
    level = change.current
    window = human_duration(result.window_seconds)
    avg = _amount(result.metric, result.average, ".1f")
    if change.reminder:
        headline = f"{ICONS[level]} Still {level.value.upper()}: {result.metric} on {host}"
    elif change.resolved:
        headline = f"{ICONS[Level.OK]} Resolved: {result.metric} on {host} is back to ok"
    else:
        headline = f"{ICONS[level]} {level.value.upper()}: {result.metric} on {host} ({change.previous.value} → {level.value})"
    orange, red = _amount(result.metric, result.orange), _amount(result.metric, result.red)
    past, back = ("below", "above") if result.direction == BELOW else ("above", "below")
    if level is Level.RED:
        threshold = f"red {past} {red}"
    elif level is Level.ORANGE:
        threshold = f"orange from {orange}{' down' if result.direction == BELOW else ''}, red {past} {red}"
    else:
        threshold = f"{back} orange ({orange})"
    when = change.at.astimezone()
    lines = [
        f"*Host:* {host}",
        f"*Metric:* {result.metric}",
        f"*{window} average:* {avg} ({threshold})",
        f"*Window:* {window}, with {human_duration(result.coverage_seconds)} of data ({result.samples} samples)",
        f"*When:* {when.strftime('%Y-%m-%d %H:%M:%S')} ({when.strftime('%z')})",
    ]
    heading = dict(change.extra).get("projection")
    if heading:
        lines.append(f"*Heading:* {heading}")
    if result.contributors and level is not Level.OK:
        by = result.contributors[0].by  # a GPU rule's: what weighed its processes
        lines.append(f"*Made by (points of the {window} average{', split by ' + by if by else ''}):*")
        lines.extend(f"• {line}" for line in contributor_lines(result))
    elif processes:
        lines.append(f"*Top processes by {'CPU' if result.metric.startswith('cpu') else 'memory'}:*")
        lines.extend(f"• {line}" for line in processes)
    text = "\n".join(lines)
    return {
        "text": headline,
        "attachments": [{"color": COLORS[level], "fallback": f"{headline}\n{text}", "text": text, "ts": int(change.at.timestamp())}],
        "meta": {"rule": change.rule_key, "level": level.value, "at": change.at.isoformat()},
    }


def _amount(metric: str, value: float | None, spec: str = "g") -> str:
    """A value with its metric's unit: ``95.0 %``, ``90 %``, ``61 °C``, ``250 RPM``, ``12.3 MB/s``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if metric_unit(metric) in ("B/s", "RPM"):
        return format_value(metric, value)
    return f"{value:{spec}} {metric_unit(metric)}".rstrip()


def summary_message(results: list[tuple[str, RuleResult, Level]], host: str | None = None) -> dict[str, Any]:
    """After a snooze: the current state, once."""
    host = host or socket.gethostname()
    worst = Level.worst([lv for _, _, lv in results]) if results else Level.OK
    lines = []
    for key, result, level in results:
        avg = _amount(result.metric, result.average, ".1f")
        lines.append(f"{ICONS[level]} {key}: {level.value} ({human_duration(result.window_seconds)} average {avg})")
    now = datetime.now(timezone.utc)
    headline = f"{ICONS[worst]} Snooze over on {host}: {worst.value}"
    return {
        "text": headline,
        "attachments": [{"color": COLORS[worst], "fallback": headline, "text": "\n".join(lines) or "no rules", "ts": int(now.timestamp())}],
        "meta": {"rule": "*", "level": worst.value, "at": now.isoformat()},
    }


# -------------------------------------------------------------------- outbox


class Outbox:
    """Messages waiting for Slack, one JSON file each, in the order they were written.

    A message is written (and fsynced) before anything else happens, and removed only once
    Slack accepted it; a message Slack refuses for good moves to ``failed/``.
    """

    def __init__(self, folder: Path) -> None:
        self.dir = Path(folder) / OUTBOX_DIR
        self.failed_dir = self.dir / "failed"
        self._seq = 0
        self._lock = threading.Lock()

    def new_name(self) -> str:
        """A file name that sorts after every name given before it (the order of delivery)."""
        with self._lock:
            self._seq += 1
            return f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.json"

    def put(self, message: dict[str, Any], name: str | None = None) -> Path:
        """Write one message (fsynced); raises OSError, leaving no file behind."""
        privacy.private_dir(self.dir)
        path = self.dir / (name or self.new_name())
        jsonfile.write(path, message)
        return path

    def pending(self) -> list[Path]:
        """The message files waiting, oldest first: regular files only (a folder named like one is
        not a message)."""
        try:
            return sorted(p for p in self.dir.glob("*.json") if not p.name.startswith(".") and p.is_file())
        except OSError:
            return []

    def failed(self) -> list[Path]:
        try:
            return sorted(self.failed_dir.glob("*.json"))
        except OSError:
            return []

    def read(self, path: Path) -> dict[str, Any] | None:
        return jsonfile.read_dict(path) or None

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def give_up(self, path: Path, reason: str, message: dict[str, Any] | None = None) -> None:
        """Move a message Slack refused for good to ``failed/`` with the reason; raises OSError
        (then the message is still where it was)."""
        privacy.private_dir(self.failed_dir)
        message = dict(message if message is not None else (self.read(path) or {}))
        message["error"] = reason
        jsonfile.write(self.failed_dir / path.name, privacy.scrub(message))
        path.unlink(missing_ok=True)

    @property
    def status_path(self) -> Path:
        return self.dir.parent / "state" / "slack.json"

    def status(self) -> dict[str, Any]:
        return jsonfile.read_dict(self.status_path)

    def set_status(self, **changes: Any) -> None:
        privacy.private_dir(self.status_path.parent)
        jsonfile.write(self.status_path, privacy.scrub({**self.status(), **changes}))


# ------------------------------------------------------------------ delivery


@dataclass(frozen=True)
class Outcome:
    """What Slack said: ``ok``, ``retry`` (after ``wait`` seconds, if given) or ``permanent``."""

    kind: str
    detail: str = ""
    wait: float | None = None


def redact(text: str, config: Config) -> str:
    """``text`` without the configured secrets or anything shaped like one (``privacy.redact``)."""
    privacy.remember([config.slack_webhook_url, config.slack_bot_token])
    return privacy.redact(text)


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else value
    return None


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from a 429's Retry-After (seconds or an HTTP date), at least 1 s and at
    most the backoff ceiling; None (use the backoff) when it is missing, negative, not finite or
    unreadable: a server's odd header must neither stop delivery for years nor end the thread."""
    raw = _header(headers, "Retry-After")
    if raw is None or not str(raw).strip():
        return None
    try:
        seconds = float(str(raw).strip())
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            when = parsedate_to_datetime(str(raw).strip())
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            seconds = (when - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(max(1.0, seconds), MAX_BACKOFF)


def _bounded(seconds: Any, ceiling: float = MAX_BACKOFF) -> float:
    """A wait that ``Event.wait`` accepts: finite, 0 … ``ceiling``; anything odd is the ceiling."""
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        return ceiling
    if math.isnan(seconds):
        return ceiling
    return min(max(0.0, seconds), ceiling)


def deliver(config: Config, message: dict[str, Any], timeout: float = 10.0) -> Outcome:
    """Send one message with slack_sdk: the webhook if set, else the bot token and channel."""
    payload = {k: v for k, v in message.items() if k in ("text", "attachments", "blocks")}
    try:
        if config.slack_webhook_url:
            return _deliver_webhook(config, payload, timeout)
        if config.slack_bot_token and config.slack_channel:
            return _deliver_web_api(config, payload, timeout)
        return Outcome("retry", "Slack is not set up")
    except OSError as exc:  # URLError, timeouts, refused, reset, DNS
        reason = getattr(exc, "reason", None) or exc
        return Outcome("retry", redact(f"network error: {reason}", config))
    except Exception as exc:  # http.client errors (a dropped connection) and anything slack_sdk raises
        return Outcome("retry", redact(f"{type(exc).__name__}: {exc}", config))


def _deliver_webhook(config: Config, payload: dict[str, Any], timeout: float) -> Outcome:
    from slack_sdk.webhook import WebhookClient

    url = config.slack_webhook_url
    if not url.startswith(("https://", "http://")):
        return Outcome("permanent", "the webhook URL must start with https://")
    client = WebhookClient(url, timeout=int(max(1, timeout)), retry_handlers=[])
    response = client.send(**payload)
    status, body = response.status_code, (response.body or "").strip()
    if 200 <= status < 300:
        return Outcome("ok", f"accepted ({status})")
    if status == 429:
        return Outcome("retry", "rate limited (429)", _retry_after(response.headers))
    if status >= 500:
        return Outcome("retry", f"server error {status}")
    return Outcome("permanent", redact(f"refused: {body[:80] or 'no reason given'} ({status})", config))


def _deliver_web_api(config: Config, payload: dict[str, Any], timeout: float) -> Outcome:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    base = config.slack_api_url if config.slack_api_url.endswith("/") else config.slack_api_url + "/"
    client = WebClient(token=config.slack_bot_token, base_url=base, timeout=int(max(1, timeout)), retry_handlers=[])
    try:
        client.chat_postMessage(channel=config.slack_channel, **payload)
    except SlackApiError as exc:
        response = exc.response
        status = getattr(response, "status_code", 0)
        data = getattr(response, "data", None)
        error = data.get("error") if isinstance(data, dict) else None
        if status == 429 or error == "ratelimited":
            return Outcome("retry", "rate limited (429)", _retry_after(getattr(response, "headers", {})))
        if status >= 500 or error in ("internal_error", "fatal_error", "service_unavailable", "request_timeout"):
            return Outcome("retry", f"server error {status} {error or ''}".strip())
        return Outcome("permanent", redact(f"refused: {error or 'unknown error'} ({status})", config))
    return Outcome("ok", "accepted")


def send_test(config: Config) -> tuple[bool, str]:
    """For ``trayapp slack-test`` and the dialog's button: send now, say plainly what happened."""
    host = socket.gethostname()
    message = {
        "text": f":white_check_mark: trayapp test message from {host}",
        "attachments": [{"color": COLORS[Level.OK], "text": f"Alerts from {host} will arrive here.", "fallback": "trayapp test"}],
    }
    outcome = deliver(config, message)
    if outcome.kind == "ok":
        return True, "Slack accepted the test message"
    return False, f"Slack did not accept the test message: {outcome.detail}"


# --------------------------------------------------------------------- snooze


def _snooze_path(folder: Path) -> Path:
    return Path(folder) / "state" / "snooze.json"


def snooze_end(text: str, now: datetime | None = None) -> datetime | None:
    """``1h``, ``8h``, ``tomorrow`` (local 08:00), any duration, or ``off`` (None)."""
    now = now or datetime.now(timezone.utc)
    word = text.strip().lower()
    if word in ("off", "0", "none", "cancel"):
        return None
    if word == "tomorrow":
        local = now.astimezone()
        morning = (local + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
        return morning.astimezone(timezone.utc)
    try:
        seconds = parse_duration(word)
    except ValueError:
        raise ValueError(f"{text!r}: snooze for a duration like 1h or 8h, 'tomorrow' or 'off'") from None
    try:
        return now + timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r}: snooze until a time before the year 10000, or 'off'") from None


def snooze_channels(config: Config) -> str:
    """What a snooze holds back here: ``desktop + Slack``, ``desktop``, ``Slack``, or '' (neither is on)."""
    channels = [name for name, on in (("desktop", config.alerts_desktop_notifications), ("Slack", config.slack_configured)) if on]
    return " + ".join(channels)


def held_count(state: dict[str, Any]) -> int:
    """How many alerts a snooze held back, from a state file that may hold anything."""
    try:
        held = float(state.get("held", 0) or 0)
    except (TypeError, ValueError):
        return 0
    return int(held) if math.isfinite(held) and held > 0 else 0


def snooze(folder: Path, until: datetime | None) -> None:
    held = held_count(_read_snooze(folder))
    write_snooze(folder, {"until": until.isoformat() if until else None, "held": held})


_snooze_writes = 0  # snooze files written by this process: a courier here looks again at once


def write_snooze(folder: Path, state: dict[str, Any]) -> None:
    global _snooze_writes
    make_private(folder)
    try:
        jsonfile.write(_snooze_path(folder), state)
    finally:
        _snooze_writes += 1


def make_private(folder: Path) -> None:
    """The data folder, ``state/`` and ``outbox/`` readable by their owner only (0700)."""
    for path in (Path(folder), Path(folder) / "state", Path(folder) / OUTBOX_DIR):
        try:
            privacy.private_dir(path)
        except OSError as exc:
            if path.name == "state":
                raise  # the caller writes there next: let it say why it could not
            log.warning("cannot make %s private: %s", path, exc.strerror or exc)


def _read_snooze(folder: Path) -> dict[str, Any]:
    return jsonfile.read_dict(_snooze_path(folder))


def snoozed_until(folder: Path, now: datetime | None = None, state: dict[str, Any] | None = None) -> datetime | None:
    raw = (state if state is not None else _read_snooze(folder)).get("until")
    if not raw:
        return None
    try:
        until = datetime.fromisoformat(raw)
        until.astimezone()  # a moment the clock cannot show (year 9999 in a far zone) is no snooze of ours either
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return until if until.tzinfo is not None and until > (now or datetime.now(timezone.utc)) else None  # naive: not ours


# ------------------------------------------------------------------- courier

_LONG_AGO = datetime(1, 1, 2, tzinfo=timezone.utc)  # before any snooze's end: snoozed_until then only parses


class Courier:
    """Turns ticks into outbox messages and delivers them on its own thread, in order.

    Network errors and 5xx back off exponentially (1 s … 5 min); a 429 waits its Retry-After,
    and no request goes out before a wait ends, however many alerts arrive meanwhile; a
    permanent refusal moves the message to ``failed/`` and is reported (tooltip, dialog,
    ``doctor``). Messages waiting when the process stops are sent after the next start. A message
    that cannot be written (a full disk) is kept in memory, written when it can be and sent
    meanwhile; nothing the thread meets (an OSError, a folder where a file should be) ends it.
    """

    MEMORY_LIMIT = 10_000  # messages held in memory while the disk refuses them
    SNOOZE_LOOK_EVERY = 10.0  # seconds between looks at snooze.json when no tick needs it sooner

    def __init__(self, folder: Path, config: Callable[[], Config], on_status: Callable[[str], None] | None = None) -> None:
        self.folder = Path(folder)
        self.outbox = Outbox(self.folder)
        self._config = config
        self._on_status = on_status
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._snooze_file = str(_snooze_path(self.folder))
        self._snooze_stamp: int | None = None
        self._snooze_looked_at: float | None = None  # monotonic
        self._snooze_writes_seen = -1
        self._snoozed: datetime | None = None
        self._snooze_cache: dict[str, Any] = {}
        self._snooze_end: datetime | None = None  # the cache's "until", parsed once
        self.backoff = 1.0
        self.min_backoff = 1.0
        self.max_backoff = MAX_BACKOFF
        self._memory: dict[str, dict[str, Any]] = {}  # name → message not yet on disk
        self._memory_lock = threading.Lock()
        self._said_memory = False
        self._finished: dict[Path, tuple[str, str | None]] = {}  # delivered or refused, file not yet (re)moved
        self._not_before = 0.0  # monotonic time before which no request is sent
        self._held_for: Config | None = None  # the settings that wait was for

    # --- the sampling side: fast, no network

    def on_tick(self, tick: Any) -> None:
        config = self._config()
        now = tick.sample.timestamp
        snooze_state = self._snooze_state(look=bool(tick.transitions))  # an alert to send or hold: as the file says now
        until = self._snooze_end if self._snooze_end is not None and self._snooze_end > now else None
        if until is None and snooze_state.get("held"):  # about to send the summary and clear it: the file as it is now
            snooze_state = self._snooze_state(look=True)
            until = self._snooze_end if self._snooze_end is not None and self._snooze_end > now else None
        if until != self._snoozed:  # tell the tray: it reads nothing from disk itself
            self._snoozed = until
            self._report()
        if until is not None:
            if tick.transitions:  # held back; the state is sent once when the snooze ends
                self._write_snooze({**snooze_state, "held": held_count(snooze_state) + len(tick.transitions)})
            return
        if snooze_state.get("held"):
            if config.slack_configured:
                self.enqueue(summary_message(self._current(tick)))
            self._write_snooze({"until": None, "held": 0})
            return
        if not config.slack_configured:
            return
        for change in tick.transitions:
            if change.resolved and not config.slack_send_resolved:
                continue
            processes = None
            if (change.result.metric in ("cpu_percent", "memory_percent") and change.current is not Level.OK
                    and not change.result.contributors):  # the window's contributors say more than this moment
                try:
                    processes = top_processes(change.result.metric)
                except Exception:  # psutil on an odd platform: the message goes without the list
                    processes = None
            self.enqueue(build_message(change, processes=processes))

    def _snooze_state(self, look: bool = False) -> dict[str, Any]:
        """snooze.json as last seen (not to be changed in place). Looked at (one ``stat``, read
        only when it changed) when ``look``, when this process wrote one since, and else every
        ``SNOOZE_LOOK_EVERY`` seconds: ``trayapp snooze`` from outside is seen within that."""
        moment = time.monotonic()
        last = self._snooze_looked_at
        if not (look or _snooze_writes != self._snooze_writes_seen or last is None
                or not 0 <= moment - last < self.SNOOZE_LOOK_EVERY):
            return self._snooze_cache
        self._snooze_looked_at = moment
        written_here = _snooze_writes != self._snooze_writes_seen
        self._snooze_writes_seen = _snooze_writes
        try:
            stamp: int | None = os.stat(self._snooze_file).st_mtime_ns
        except OSError:
            stamp = None
        if stamp != self._snooze_stamp or written_here:  # a write within the clock's tick keeps the stamp
            self._snooze_cache = _read_snooze(self.folder) if stamp is not None else {}
            self._snooze_stamp = stamp
            self._snooze_end = snoozed_until(self.folder, _LONG_AGO, self._snooze_cache)
        return self._snooze_cache

    def _current(self, tick: Any) -> list[tuple[str, RuleResult, Level]]:
        from trayapp.engine import rule_keys

        return [(k, r, r.level) for k, r in zip(rule_keys(self._config().rules), tick.results)]

    def _write_snooze(self, state: dict[str, Any]) -> None:
        try:
            write_snooze(self.folder, state)
        except OSError as exc:
            log.warning("cannot record the snooze state in %s: %s", _snooze_path(self.folder), exc.strerror or exc)

    def enqueue(self, message: dict[str, Any]) -> None:
        """Queue a message: on disk (fsynced), or in memory while the disk refuses it."""
        name = self.outbox.new_name()
        with self._memory_lock:
            behind = bool(self._memory)
        try:
            if behind:
                raise OSError("earlier messages are still waiting to be written")
            self.outbox.put(message, name)
        except OSError as exc:
            with self._memory_lock:
                self._memory[name] = message
                while len(self._memory) > self.MEMORY_LIMIT:
                    del self._memory[min(self._memory)]
            if not self._said_memory:
                self._said_memory = True
                log.warning("cannot write a Slack message to %s (%s); keeping it in memory until it can be written",
                            self.outbox.dir, exc.strerror or exc)
        self._wake.set()

    def in_memory(self) -> int:
        with self._memory_lock:
            return len(self._memory)

    def _write_memory(self) -> None:
        """Put messages held in memory on disk, oldest first; stop at the first that does not fit."""
        with self._memory_lock:
            waiting = sorted(self._memory.items())
        for name, message in waiting:
            try:
                self.outbox.put(message, name)
            except OSError:
                return
            with self._memory_lock:
                self._memory.pop(name, None)
        if waiting:
            self._said_memory = False

    @property
    def snoozed(self) -> datetime | None:
        """When the snooze it last saw ends (None: not snoozed); the tray holds desktop alerts back too."""
        return self._snoozed

    # --- the delivery side

    def start(self) -> None:
        make_private(self.folder)
        self._snoozed = snoozed_until(self.folder)
        self._report()  # a refusal or a snooze from before a restart is still news
        self._thread = threading.Thread(target=self._run, name="trayapp-slack", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._write_memory()  # a last try: the disk may have room now
        if self.in_memory():
            log.warning("%d Slack message(s) could not be written to %s and are lost", self.in_memory(), self.outbox.dir)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        said: set[str] = set()
        while not self._stop.is_set():
            try:
                self._step(said)
            except Exception as exc:  # even the bookkeeping around delivery must not end the thread
                self._say_once(said, exc)
                self._stop.wait(_bounded(self.backoff, self.max_backoff))

    def _say_once(self, said: set[str], exc: Exception) -> None:
        kind = type(exc).__name__
        if kind not in said:
            said.add(kind)
            log.warning("Slack delivery hit a problem (%s); retrying", privacy.redact(f"{kind}: {exc}"))

    def _step(self, said: set[str]) -> None:
        """One round of the delivery thread: wait out a hold, or send what waits."""
        hold = _bounded(self._not_before - time.monotonic(), self.max_backoff)
        if hold > 0 and self._held_for == self._config():
            # A 429's Retry-After or a backoff still runs: a new alert waits for it too.
            self._wake.wait(hold)
            self._wake.clear()
            return
        try:
            wait = self.deliver_pending()
        except Exception as exc:  # the thread must outlive anything: say it once, retry later
            self._say_once(said, exc)
            wait = self.backoff
            self.backoff = min(self.backoff * 2, self.max_backoff)
        if wait is not None:
            wait = _bounded(wait, self.max_backoff)
            self._not_before = time.monotonic() + wait
            self._held_for = self._config()
        self._wake.wait(wait)
        self._wake.clear()

    def _queue(self) -> list[tuple[str, Path | None, dict[str, Any] | None]]:
        """What waits, oldest first: files in the outbox, and messages only in memory."""
        entries: dict[str, tuple[str, Path | None, dict[str, Any] | None]] = {}
        for path in self.outbox.pending():
            if path not in self._finished:
                entries[path.name] = (path.name, path, None)
        with self._memory_lock:
            for name, message in self._memory.items():
                entries.setdefault(name, (name, None, message))
        return [entries[k] for k in sorted(entries)]

    def _finish(self, name: str, path: Path | None, reason: str | None, message: dict[str, Any] | None) -> None:
        """A message is done (``reason`` None) or refused for good: remove or move its file."""
        with self._memory_lock:
            self._memory.pop(name, None)
        if path is None:
            if reason is not None:
                try:
                    self.outbox.give_up(self.outbox.dir / name, reason, message)
                except OSError:
                    pass  # no room even for that: it was reported, and it is not sent again
            return
        try:
            if reason is None:
                self.outbox.done(path)
            else:
                self.outbox.give_up(path, reason, message)
            self._finished.pop(path, None)
        except OSError as exc:
            # Not sent again by this process; moved once the disk lets us (see _retry_finished).
            if path not in self._finished:
                log.warning("cannot %s %s: %s", "remove" if reason is None else "move to failed/", path.name,
                            exc.strerror or exc)
            self._finished[path] = (name, reason)

    def _retry_finished(self) -> None:
        for path, (name, reason) in list(self._finished.items()):
            if not path.exists():
                self._finished.pop(path, None)
                continue
            self._finish(name, path, reason, None)

    def deliver_pending(self) -> float | None:
        """Send what is waiting, oldest first. Returns how long to wait before trying again."""
        self._write_memory()
        self._retry_finished()
        config = self._config()
        if not config.slack_configured:
            return None
        for name, path, message in self._queue():
            if self._stop.is_set():
                return 0.0
            if path is not None:
                message = self.outbox.read(path)
                if message is None:
                    self._finish(name, path, "unreadable message file", {})
                    continue
            assert message is not None
            outcome = deliver(config, message)
            if outcome.kind == "ok":
                self._finish(name, path, None, message)
                self.backoff = self.min_backoff
                self._report(last_ok=datetime.now(timezone.utc).isoformat(), last_error=None)
                continue
            if outcome.kind == "permanent":
                self._finish(name, path, outcome.detail, message)
                log.warning("Slack refused a message for good: %s", outcome.detail)
                self._report(last_error=outcome.detail, last_error_at=datetime.now(timezone.utc).isoformat())
                continue
            wait = _bounded(outcome.wait if outcome.wait is not None else self.backoff, self.max_backoff)
            if outcome.wait is None:
                self.backoff = min(self.backoff * 2, self.max_backoff)
            self._report(retrying=f"{outcome.detail}; retrying in {wait:.0f} s")
            log.info("Slack: %s; retrying in %.0f s", outcome.detail, wait)
            return wait
        self._report(retrying=None)
        return None

    def _report(self, **changes: Any) -> None:
        if changes:
            try:
                self.outbox.set_status(**changes)
            except OSError:
                pass
        if self._on_status is not None:
            self._on_status(status_line(self.outbox, self._snoozed))


def status_line(outbox: Outbox, snoozed: datetime | None = None) -> str:
    """For the tooltip and the dialog: what Slack delivery is doing, in one line, or ''."""
    status = privacy.scrub(outbox.status())
    pending = len(outbox.pending())
    parts = []
    if snoozed is not None:
        parts.append(f"Slack alerts snoozed until {snoozed.astimezone().strftime('%a %H:%M')}")
    if status.get("last_error"):
        parts.append(f"Slack refused a message: {status['last_error']}")
    if status.get("retrying"):
        parts.append(f"Slack: {pending} waiting ({status['retrying']})")
    return "; ".join(parts)


def delivery_report(folder: Path, config: Config) -> tuple[bool | None, str]:
    """For ``trayapp doctor``."""
    outbox = Outbox(folder)
    status = privacy.scrub(outbox.status())  # a file from an older version may hold a secret
    how = "webhook" if config.slack_webhook_url else f"bot token to {config.slack_channel}"
    pending, failed = len(outbox.pending()), len(outbox.failed())
    detail = f"{how}; {pending} waiting, {failed} refused"
    if status.get("last_ok"):
        detail += f"; last delivered {status['last_ok'][:19]}"
    if status.get("last_error"):
        return False, f"{detail}; last refusal: {status['last_error']}"
    if status.get("retrying"):
        return False, f"{detail}; {status['retrying']}"
    return True, detail
