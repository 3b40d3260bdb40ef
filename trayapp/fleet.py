"""The machines a Prometheus server scrapes, read through its HTTP API: each one's level and worst rule.

Stdlib, ``model``, ``rules``, ``privacy`` and ``metrics``' unit table only; never Qt, pyarrow or pandas (the tray app polls it).
"""

# Three GETs of ``/api/v1/query`` a poll: the rule levels, rule averages and ``up`` of the job in one
# instant query; ``last_over_time`` of each recorder's last-sample time over a day (machines that
# went away recently, and when each was last seen); and how often that time changed over 6 hours
# (the recorder's pace). A machine is "down" when its scrape fails (``up == 0``) and "stale" when it
# stopped reporting: gone from the targets, or scraped but with a last sample older than
# ``STALE_AFTER`` or three of its own sampling intervals, whichever is longer. Neither is ever ok.
# Every fault (a wrong URL, a refused login, a server that is down, slow or answers garbage) is one
# line in ``FleetState.error``.

from __future__ import annotations

import enum
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from trayapp.metrics import unit_of
from trayapp.model import GPU_METRICS, METRICS, Level, format_value, metric_label, metric_unit
from trayapp.rules import human_duration, parse_duration

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0  # one request; a poll takes at most three of these
STALE_AFTER = 300.0  # seconds since a scraped recorder's last sample before it counts as stopped (or 3 of its intervals)
PACE_OVER = 6 * 3600  # seconds over which a recorder's sampling pace is read
SEEN_WITHIN = "1d"  # a machine that left the targets is listed (stale) this long after its last sample, then forgotten
FORGET_AFTER = 86400.0  # the same, in seconds, for what the reader remembers
MAX_ANSWER_BYTES = 32 << 20  # a fleet's rules are a few KB; more is not Prometheus' API answering
USER_AGENT = "trayapp-fleet"
NOTIFIED_MOST = 3  # machines named in a notification's title; the text lists a few more


class Health(enum.Enum):
    """A remote machine's level: the rule levels, plus "down" (the scrape fails) and "stale"
    (it stopped reporting)."""

    UNKNOWN = "unknown"
    OK = "ok"
    ORANGE = "orange"
    STALE = "stale"
    DOWN = "down"
    RED = "red"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def icon_level(self) -> Level:
        """What the tray icon shows for it: down and stale need a look, like orange; never ok."""
        return _ICON[self]


_SEVERITY = {Health.UNKNOWN: 0, Health.OK: 1, Health.ORANGE: 2, Health.STALE: 3, Health.DOWN: 4, Health.RED: 5}
_ICON = {Health.UNKNOWN: Level.UNKNOWN, Health.OK: Level.OK, Health.ORANGE: Level.ORANGE, Health.STALE: Level.ORANGE,
         Health.DOWN: Level.ORANGE, Health.RED: Level.RED}
_RULE_LEVELS = {-1: Health.UNKNOWN, 0: Health.OK, 1: Health.ORANGE, 2: Health.RED}

SCOPE_THIS_MACHINE, SCOPE_FLEET = "this machine", "fleet too"


class FleetError(Exception):
    """A fault reading the server, said in one line for the tooltip, the log and the terminal."""


@dataclass(frozen=True, slots=True)
class RemoteRule:
    metric: str
    window: str  # as the recorder labels it: "36h", "36h#2" for a second rule on the same window
    level: Health
    average: float | None  # in the dataset's units (percent, °C, W, B/s, RPM)

    def text(self) -> str:
        """``36 h avg GPU 0 util 94 %``."""
        try:
            window = human_duration(parse_duration(self.window.split("#", 1)[0]))
        except ValueError:
            window = self.window
        if self.average is None:
            value = "n/a"
        elif metric_unit(self.metric) in ("B/s", "RPM"):
            value = format_value(self.metric, self.average)
        else:
            value = f"{self.average:.0f} {metric_unit(self.metric)}".rstrip()
        return f"{window} avg {metric_label(self.metric)} {value}"


@dataclass(frozen=True, slots=True)
class Machine:
    instance: str  # Prometheus' ``instance`` label: host:port of the recorder
    name: str  # what a person reads: the host alone where that is unambiguous
    level: Health
    reason: str  # the worst rule ("36 h avg CPU 95 %"), or why down, stale or unknown
    last_seen: datetime | None  # the recorder's last sample, as Prometheus last scraped it
    rules: tuple[RemoteRule, ...] = ()

    def line(self) -> str:
        """``gpu-3: red — 36 h avg GPU 0 util 94 %``."""
        return f"{self.name}: {self.level.value}" + (f" — {self.reason}" if self.reason else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "machine": self.name, "instance": self.instance, "level": self.level.value, "worst_rule": self.reason,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "rules": [{"metric": r.metric, "window": r.window, "level": r.level.value, "average": r.average} for r in self.rules],
        }


@dataclass(frozen=True, slots=True)
class FleetState:
    """One poll's answer: the machines, or the one-line reason there are none to show."""

    url: str
    machines: tuple[Machine, ...] = ()
    error: str = ""
    polled_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def worst(self) -> Health | None:
        """The worst machine's level; None when there is nothing to tell (an error, no machines)."""
        if self.error or not self.machines:
            return None
        return max((m.level for m in self.machines), key=lambda h: h.severity)

    def lines(self, most: int = 12) -> list[str]:
        """For the tooltip: one line per machine, worst first (the first ``most``), or the fault."""
        if self.error:
            return [f"fleet: {self.error}"]
        if not self.machines:
            return ["fleet: Prometheus scrapes no trayapp recorder (job and targets?)"]
        lines = [m.line() for m in self.machines[:most]]
        if len(self.machines) > most:
            lines.append(f"… and {len(self.machines) - most} more: trayapp status --fleet")
        return lines

    def as_json(self) -> dict[str, Any]:
        worst = self.worst
        return {"url": self.url, "level": worst.value if worst else None, "error": self.error or None,
                "machines": [m.as_json() for m in self.machines]}


def merged_level(local: Level, fleet: FleetState | None, scope: str) -> tuple[Level, bool]:
    """The level the icon shows: this machine's, or the worst of it and the fleet's when
    ``scope`` says so; and whether a remote machine is the cause (the icon's badge). A fleet
    that cannot be read adds nothing: its fault is said in the tooltip."""
    if scope != SCOPE_FLEET or fleet is None or fleet.worst is None:
        return local, False
    remote = fleet.worst.icon_level
    if remote.severity > local.severity:
        return remote, True
    return local, False


@dataclass(frozen=True, slots=True)
class Change:
    """A remote machine's level changed between two polls (for one desktop notification)."""

    machine: Machine
    previous: Health | None  # None: first seen

    @property
    def better(self) -> bool:
        return self.previous is not None and self.machine.level.severity < self.previous.severity


def changes(before: dict[str, Health], state: FleetState) -> list[Change]:
    """What changed since ``before`` (instance → level); a poll that failed changes nothing,
    and a machine first seen at ok is no news."""
    if state.error:
        return []
    out = []
    for machine in state.machines:
        previous = before.get(machine.instance)
        if previous is machine.level or (previous is None and machine.level in (Health.OK, Health.UNKNOWN)):
            continue
        out.append(Change(machine, previous))
    return out


def notification(found: list[Change]) -> tuple[str, str]:
    """One notification for a poll's changes: title and text."""
    titles = []
    for change in found[:NOTIFIED_MOST]:
        m = change.machine
        titles.append(f"{m.name} back to ok" if m.level is Health.OK and change.previous is not None else f"{m.name} {m.level.value}")
    if len(found) > NOTIFIED_MOST:
        titles.append(f"{len(found) - NOTIFIED_MOST} more")
    return ", ".join(titles), "\n".join(c.machine.line() for c in found[:NOTIFIED_MOST * 3])


# ------------------------------------------------------------------- the server


def check_url(url: str) -> str:
    """The server's base URL, stripped; ValueError saying what is wrong with it."""
    import urllib.parse

    url = url.strip()
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("names no host")
    if parts.username or parts.password:
        raise ValueError("holds a user or password; put them in the user and password settings (kept in the keyring)")
    if parts.query or parts.fragment:
        raise ValueError("must be the server's address, without ?query or #fragment, e.g. http://prometheus:9090")
    return url.rstrip("/")


def promql_string(text: str) -> str:
    """A PromQL double-quoted string literal."""
    return json.dumps(text, ensure_ascii=True)


def _no_redirect() -> Any:
    """A redirect handler that reports a redirect rather than follow it: the login must not travel to another address."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
            raise FleetError(f"{req.full_url.split('/api/', 1)[0]} redirects to {newurl.split('/api/', 1)[0]} "
                             f"(HTTP {code}); set the URL to where it points")

    return NoRedirect()


class Prometheus:
    """A client of the two endpoints trayapp reads: ``/api/v1/query`` and ``/api/v1/query_range``.
    The network modules (ssl, urllib) are imported here, not with the module: the tray app
    imports this module for its levels whether or not a server is set."""

    def __init__(self, url: str, user: str = "", password: str = "", token: str = "", verify_tls: bool = True,
                 timeout: float = TIMEOUT_S) -> None:
        import base64
        import ssl
        import urllib.request

        self.url = check_url(url)
        self.timeout = timeout
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if token:  # the secret lives only in this header, never in a message
            self._headers["Authorization"] = f"Bearer {token}"
        elif user or password:
            self._headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        context = ssl.create_default_context()
        if not verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self.verify_tls = verify_tls
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _no_redirect())

    def query(self, expr: str) -> tuple[float, list[dict[str, Any]]]:
        """An instant query: (the server's evaluation time, the result vector); FleetError."""
        data = self._get("/api/v1/query", {"query": expr})
        if not isinstance(data, dict) or data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
            raise FleetError(f"{self.url} answered the query with something other than a vector")
        result = [item for item in data["result"] if isinstance(item, dict)]
        stamps = [instant_sample(item)[0] for item in result]
        stamps = [s for s in stamps if s is not None]
        return (max(stamps) if stamps else datetime.now(timezone.utc).timestamp()), result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query: the result matrix (series with ``values``); FleetError."""
        data = self._get("/api/v1/query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"})
        if not isinstance(data, dict) or data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise FleetError(f"{self.url} answered the range query with something other than a matrix")
        return [item for item in data["result"] if isinstance(item, dict)]

    def _get(self, path: str, params: dict[str, str]) -> Any:
        import http.client
        import socket
        import urllib.error
        import urllib.parse
        import urllib.request

        request = urllib.request.Request(f"{self.url}{path}?{urllib.parse.urlencode(params)}", headers=self._headers)
        where = self.url
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                body = answer.read(MAX_ANSWER_BYTES + 1)
        except FleetError:
            raise
        except urllib.error.HTTPError as exc:
            try:
                message = _http_error(where, exc)
            finally:
                exc.close()  # its connection: closed now, not whenever the error is collected
            raise FleetError(message) from None
        except urllib.error.URLError as exc:
            raise FleetError(_reach_error(where, exc.reason, self.timeout)) from None
        except (TimeoutError, socket.timeout):
            raise FleetError(f"{where} did not answer within {self.timeout:g} s") from None
        except (OSError, ValueError, http.client.HTTPException) as exc:  # a reset mid-answer, a malformed status line
            raise FleetError(f"{where}: the connection failed ({_short(exc)})") from None
        if len(body) > MAX_ANSWER_BYTES:
            raise FleetError(f"{where} answered more than {MAX_ANSWER_BYTES >> 20} MB; not Prometheus' API")
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):
            raise FleetError(f"{where} did not answer as Prometheus' API does (not JSON: is the URL the Prometheus server?)") from None
        if not isinstance(answer, dict) or answer.get("status") not in ("success", "error"):
            raise FleetError(f"{where} did not answer as Prometheus' API does (no status: is the URL the Prometheus server?)")
        if answer["status"] == "error":
            raise FleetError(f"{where} refused the query: {_short(answer.get('error') or answer.get('errorType') or 'no reason given')}")
        return answer.get("data")


def _short(value: Any, most: int = 160) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= most else text[: most - 1] + "…"


def _http_error(where: str, exc: Any) -> str:
    """One line for an ``urllib.error.HTTPError``."""
    if exc.code in (401, 403):
        return f"{where} refused the login (HTTP {exc.code}); check the user and password or the token in Settings → Machines"
    if exc.code == 404:
        return f"{where} has no Prometheus API (HTTP 404); the URL should be the server's address, e.g. http://prometheus:9090"
    if exc.code in (400, 422):  # Prometheus says why in JSON
        try:
            why = json.loads(exc.read(65536)).get("error")
        except Exception:  # noqa: BLE001 - whatever came, the status says enough
            why = None
        if why:
            return f"{where} refused the query (HTTP {exc.code}): {_short(why)}"
    return f"{where} answered HTTP {exc.code} {_short(exc.reason, 60)}"


def _reach_error(where: str, reason: Any, timeout: float) -> str:
    """One line for why a connection failed (``URLError.reason``)."""
    import socket
    import ssl

    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"{where} did not answer within {timeout:g} s"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (f"{where}: its TLS certificate is not trusted ({_short(reason.verify_message or reason, 80)}); "
                "fix the certificate, or turn TLS verification off for this URL in Settings → Machines")
    if isinstance(reason, ssl.SSLError):
        return f"{where}: TLS failed ({_short(reason, 80)})"
    if isinstance(reason, ConnectionRefusedError):
        return f"cannot reach Prometheus at {where}: connection refused (is it running?)"
    if isinstance(reason, socket.gaierror):
        return f"cannot reach Prometheus at {where}: the host name is not known"
    if isinstance(reason, OSError) and reason.strerror:
        return f"cannot reach Prometheus at {where}: {reason.strerror}"
    return f"cannot reach Prometheus at {where}: {_short(reason, 80)}"


def instant_sample(item: dict[str, Any]) -> tuple[float | None, float | None]:
    """(timestamp, value) of an instant vector's sample; Nones where it is not one."""
    pair = item.get("value")
    if not isinstance(pair, list) or len(pair) != 2:
        return None, None
    try:
        stamp, value = float(pair[0]), float(pair[1])
    except (TypeError, ValueError):
        return None, None
    return (stamp if math.isfinite(stamp) else None), (value if math.isfinite(value) else None)


# ------------------------------------------------------------------- the reader


class FleetReader:
    """Polls a server for the job's machines; remembers what it saw, so a machine that left the
    targets stays listed as stale (for a day). ``poll`` never raises: a fault is ``FleetState.error``, logged
    once when it starts, changes or ends."""

    def __init__(self, url: str, user: str = "", password: str = "", token: str = "", verify_tls: bool = True,
                 job: str = "trayapp", timeout: float = TIMEOUT_S, log_faults: bool = True) -> None:
        """``log_faults``: log a fault when it starts, changes or ends (the tray app); False where
        the caller says it itself (``status --fleet``)."""
        from trayapp import privacy

        privacy.remember([password, token])  # typed into the dialog, not loaded: redacted from every log line too
        self.url = url.strip()
        self.job = job
        self.seen: dict[str, float] = {}  # instance → the last sample time seen (server clock)
        self.logged = ""  # the fault last logged ("" none)
        self.log_faults = log_faults
        try:
            self.server: Prometheus | None = Prometheus(url, user, password, token, verify_tls, timeout)
            self.setup_error = ""
        except ValueError as exc:
            self.server, self.setup_error = None, f"[fleet] url {self.url!r}: {exc}"
        if log_faults and self.server is not None and not verify_tls and self.server.url.startswith("https:"):
            log.warning("fleet: TLS certificates of %s are not verified (turned off in the settings)", self.server.url)

    @classmethod
    def from_config(cls, config: Any, log_faults: bool = True) -> "FleetReader":
        return cls(config.fleet_url, config.fleet_user, config.fleet_password, config.fleet_token,
                   config.fleet_verify_tls, config.fleet_job, log_faults=log_faults)

    def poll(self) -> FleetState:
        shown_url = self.server.url if self.server is not None else self.url
        try:
            if self.server is None:
                raise FleetError(self.setup_error)
            state = FleetState(shown_url, self._machines(self.server))
        except FleetError as exc:
            state = FleetState(shown_url, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the promise: one line, never a traceback, monitoring goes on
            state = FleetState(shown_url, error=f"reading {shown_url} failed: {type(exc).__name__}: {_short(exc, 100)}")
        if state.error != self.logged and self.log_faults:
            if state.error:
                log.warning("fleet: %s", state.error)
            else:
                log.info("fleet: reading %s again", shown_url)
            self.logged = state.error
        return state

    def _machines(self, server: Prometheus) -> tuple[Machine, ...]:
        job = f"job={promql_string(self.job)}"
        now, current = server.query(f'{{__name__=~"up|trayapp_rule_level|trayapp_rule_average_.+",{job}}}')
        _, recent = server.query(f"last_over_time(trayapp_last_sample_timestamp_seconds{{{job}}}[{SEEN_WITHIN}])")
        _, paces = server.query(f"changes(trayapp_last_sample_timestamp_seconds{{{job}}}[{PACE_OVER}s])")
        stale_after: dict[str, float] = {}  # a recorder sampling every 10 min is not stale after 5
        for item in paces:
            labels = item.get("metric") if isinstance(item.get("metric"), dict) else {}
            instance, changed = labels.get("instance"), instant_sample(item)[1]
            if isinstance(instance, str) and changed:
                stale_after[instance] = max(STALE_AFTER, 3 * PACE_OVER / changed)
        up: dict[str, float | None] = {}
        rules: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        for item in current:
            labels = item.get("metric") if isinstance(item.get("metric"), dict) else {}
            instance, name = labels.get("instance"), labels.get("__name__", "")
            if not isinstance(instance, str):
                continue
            value = instant_sample(item)[1]
            if name == "up":
                up[instance] = value
                continue
            key = (str(labels.get("metric", "?")), str(labels.get("window", "?")))
            slot = rules.setdefault(instance, {}).setdefault(key, {})
            if name == "trayapp_rule_level":
                slot["level"] = value
            elif value is not None:
                slot["average"] = value * unit_of(key[0])[1]  # back from the ratio to the dataset's unit
        last_sample: dict[str, float] = {}
        for item in recent:
            labels = item.get("metric") if isinstance(item.get("metric"), dict) else {}
            instance, value = labels.get("instance"), instant_sample(item)[1]
            if isinstance(instance, str) and value is not None:
                last_sample[instance] = value
                self.seen[instance] = max(value, self.seen.get(instance, 0.0))
        for instance in up:
            self.seen.setdefault(instance, 0.0)
        for instance in [i for i, t in self.seen.items() if i not in up and i not in last_sample and now - t > FORGET_AFTER]:
            del self.seen[instance]  # gone from the targets a day ago: a machine retired, not one to watch
        names = _display_names(list(self.seen))
        machines = []
        for instance in self.seen:
            seen = self.seen[instance]
            last = datetime.fromtimestamp(seen, timezone.utc) if seen else None
            found = tuple(sorted((RemoteRule(metric, window, _RULE_LEVELS.get(int(slot["level"]) if slot.get("level") is not None else -1, Health.UNKNOWN),
                                             slot.get("average")) for (metric, window), slot in rules.get(instance, {}).items()),
                                 key=lambda r: (-r.level.severity, r.metric, r.window)))
            level, reason = _verdict(instance, up, last_sample, found, now, seen, stale_after.get(instance, STALE_AFTER))
            machines.append(Machine(instance, names[instance], level, reason, last, found))
        machines.sort(key=lambda m: (-m.level.severity, m.name))
        return tuple(machines)


def _verdict(instance: str, up: dict[str, float | None], last_sample: dict[str, float], rules: tuple[RemoteRule, ...],
             now: float, seen: float, stale_after: float = STALE_AFTER) -> tuple[Health, str]:
    if instance not in up:
        return Health.STALE, "stopped reporting: no longer among Prometheus' targets" + _ago(now, seen)
    if up[instance] != 1:
        return Health.DOWN, "down: Prometheus cannot scrape its recorder" + _ago(now, seen)
    last = last_sample.get(instance, seen)  # gone from the hour's samples: the last one this reader saw
    if not last:
        return Health.UNKNOWN, "no sample yet (starting, or the recorder serves no samples)"
    if now - last > stale_after:
        return Health.STALE, "stopped reporting: sampling paused or stuck" + _ago(now, last)
    if not rules:
        return Health.UNKNOWN, "no rules"
    worst = rules[0]
    if worst.level is Health.UNKNOWN:
        return Health.UNKNOWN, "collecting data"
    return worst.level, worst.text()


def _ago(now: float, then: float) -> str:
    if not then:
        return ""
    return f" (last sample {human_duration(max(now - then, 1.0))} ago)"


def _display_names(instances: list[str]) -> dict[str, str]:
    """``gpu-3:9101`` → ``gpu-3`` where no other instance shares the host; else the whole label."""
    def host(instance: str) -> str:
        head, sep, port = instance.rpartition(":")
        return head.strip("[]") if sep and port.isdigit() and head else instance

    hosts = [host(i) for i in instances]
    return {i: (h if hosts.count(h) == 1 else i) for i, h in zip(instances, hosts)}


# ------------------------------------------------------------------- one machine's samples


def _columns_by_name() -> tuple[dict[str, str], dict[str, str]]:
    """Prometheus name → dataset column (base and machine series), and → GPU field (``gpuN_`` + field)."""
    return ({info.prometheus: column for column, info in METRICS.items()},
            {info.prometheus: field for field, info in GPU_METRICS.items()})


def remote_samples(server: Prometheus, instance: str, job: str, start: float, end: float,
                   most: int = 10_000) -> tuple[list[float], dict[str, list[float | None]]]:
    """A remote machine's samples in ``[start, end]`` as its recorder took them, from
    ``query_range``: (the samples' own timestamps, column → values in the dataset's units), the
    columns named as in its dataset (``cpu_percent``, ``gpu0_util_percent``). Each step is placed
    at the time of the sample it shows (``trayapp_last_sample_timestamp_seconds``), and a sample
    seen by several steps counts once, so what comes back is a subset of the machine's own
    ``trayapp export``: the samples Prometheus scraped, at most ``most`` steps. FleetError."""
    step = max(1.0, (end - start) / most)
    selector = (f'{{__name__=~"trayapp_.+",__name__!~"trayapp_(rule_.+|level|build_info)",'
                f'instance={promql_string(instance)},job={promql_string(job)}}}')
    series = server.query_range(selector, start, end, step)
    base, gpu = _columns_by_name()
    taken: dict[float, float] = {}  # step time → the time of the sample it shows
    for item in series:
        if (item.get("metric") or {}).get("__name__") == "trayapp_last_sample_timestamp_seconds":
            for t, v in range_points(item):
                taken[t] = v
    stamps = sorted(set(taken.values()))
    where = {stamp: i for i, stamp in enumerate(stamps)}
    columns: dict[str, list[float | None]] = {}
    for item in series:
        labels = item.get("metric") or {}
        name = labels.get("__name__", "")
        if name in base:
            column = base[name]
        elif name in gpu and str(labels.get("gpu", "")).isdigit():
            column = f"gpu{labels['gpu']}_{gpu[name]}"
        else:
            continue
        divisor = unit_of(column)[1]
        values = columns.setdefault(column, [None] * len(stamps))
        for t, v in range_points(item):
            if t in taken:
                values[where[taken[t]]] = v * divisor
    return stamps, columns


def range_points(item: dict[str, Any]) -> list[tuple[float, float]]:
    """(timestamp, value) of each point of a range vector's series, the ones that are not numbers left out."""
    out = []
    for pair in item.get("values") or ():
        try:
            t, v = float(pair[0]), float(pair[1])
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(t) and math.isfinite(v):
            out.append((t, v))
    return out


# ------------------------------------------------------------------- the command line


def table(state: FleetState, now: datetime | None = None) -> str:
    """``trayapp status --fleet``: machine, level, worst rule, last seen."""
    if state.error:
        return f"fleet: {state.error}"
    now = now or datetime.now(timezone.utc)
    rows = [("machine", "level", "worst rule", "last seen")]
    for m in state.machines:
        seen = "never" if m.last_seen is None else f"{human_duration(max((now - m.last_seen).total_seconds(), 1.0))} ago"
        rows.append((m.name, m.level.value, m.reason, seen))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    worst = state.worst
    head = f"fleet: {worst.value if worst else 'no machines'}   ({len(state.machines)} machine{'s' if len(state.machines) != 1 else ''} via {state.url})"
    lines = [head] + ["  " + "  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def doctor_line(config: Any) -> tuple[bool | None, str, str]:
    """``trayapp doctor``'s fleet line: off, the fault, or how many machines and the worst."""
    if not config.fleet_url:
        return None, "fleet", "off (no [fleet] url: the tray shows this machine only)"
    state = FleetReader.from_config(config, log_faults=False).poll()
    if state.error:
        return False, "fleet", state.error
    worst = state.worst
    count = f"{len(state.machines)} machine{'s' if len(state.machines) != 1 else ''}"
    return True, "fleet", f"{count} via {state.url} (job {config.fleet_job!r}){f', the worst {worst.value}' if worst else ''}"
