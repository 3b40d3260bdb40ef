"""Every setting, declared once (default, type, bounds, help), and the TOML file that holds them.

Imports ``model``, ``rules``, ``privacy`` and ``jsonfile``; never Qt. The settings dialog is generated from ``FIELDS``.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from trayapp import privacy
from trayapp.jsonfile import NotRegular, read_own
from trayapp.model import BASE_COLUMNS, GPU_FIELDS, MACHINE_COLUMNS, metric_range
from trayapp.rules import DEFAULT_RULES, Rule, format_duration, parse_duration

log = logging.getLogger(__name__)

APP_NAME = "trayapp"
MIN_INTERVAL, MAX_INTERVAL = 0.1, 3600.0  # seconds between samples (the --interval flag too)
MAX_WINDOW = 400 * 86400.0  # a rule's window: longer ones overflow date arithmetic and mean nothing
MAX_CONFIG_BYTES = 1 << 20  # a config file is a few hundred bytes; a bigger one is not ours
CONFIG_VERSION = 2
KEYRING_SERVICE = "trayapp"
# Written by ``save`` beside the settings when it put the secrets in the OS keyring, so that a config
# without it never imports ``keyring`` (its SecretService backend loads ``cryptography``: ~10 MB).
SECRETS_IN = ("slack", "secrets_in")


@dataclass(frozen=True, slots=True)
class Field:
    """One setting: where it lives in the TOML file, its type and bounds, and its help text."""

    section: str
    name: str
    kind: str  # float | int | bool | str | choice | duration | secret | path | panel | url
    default: Any
    label: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None  # strictly greater than
    choices: tuple[str, ...] = ()
    least_if_set: float | None = None  # a duration: 0 (off) or at least this; less is raised to it
    zero: str = ""  # what 0 means here, said beside the field ("0 keeps everything")

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def attr(self) -> str:
        return f"{self.section}_{self.name}"


FIELDS: tuple[Field, ...] = (
    Field("sampling", "interval_seconds", "float", 2.0, "Sampling interval (s)",
          "Seconds between two samples.", above=0.0, minimum=MIN_INTERVAL, maximum=MAX_INTERVAL),
    Field("sampling", "gpu_backend", "choice", "auto", "GPU backend",
          "auto tries NVML, then GPUtil (nvidia-smi); off samples no GPU.",
          choices=("auto", "nvml", "gputil", "off")),
    Field("sampling", "disk_path", "path", "", "Disk to watch",
          "A path on the disk whose usage is sampled; empty means the system drive."),
    Field("storage", "data_dir", "path", "", "Data folder",
          "Where samples are kept; empty means the platform's user data folder."),
    Field("storage", "retention_days", "int", 0, "Keep history (days)",
          "Day files older than this are deleted; 0 keeps everything.", minimum=0, maximum=36500,
          zero="0 keeps everything"),
    Field("alerts", "hysteresis", "float", 2.0, "Hysteresis (points)",
          "How far an average must fall back past a threshold to leave a level.", minimum=0.0, maximum=50.0),
    Field("alerts", "desktop_notifications", "bool", True, "Desktop notifications",
          "Show a desktop notification when a rule changes level."),
    Field("app", "start_at_login", "bool", False, "Start at login",
          "Start trayapp when you log in."),
    Field("slack", "webhook_url", "secret", "", "Slack webhook URL",
          "An incoming webhook (Slack, or a Slack-compatible server such as Mattermost)."),
    Field("slack", "bot_token", "secret", "", "Slack bot token",
          "Or a bot token (xoxb-…) with a channel."),
    Field("slack", "channel", "str", "", "Slack channel",
          "The channel the bot token posts to, e.g. #alerts."),
    Field("slack", "send_resolved", "bool", True, "Send 'resolved'",
          "Also send a message when a rule goes back to ok."),
    Field("slack", "repeat_every", "duration", "0", "Remind every",
          "Re-send while a rule stays orange or red, e.g. 6h; 0 never.", least_if_set=60.0, zero="0 never reminds"),
    Field("slack", "api_url", "str", "https://slack.com/api/", "Slack API URL",
          "The Web API base URL, for a Slack-compatible server."),
    Field("processes", "attribution", "bool", True, "Record processes",
          "Keep, per minute, which processes used the CPU and memory, so an alert says who made its average."),
    Field("processes", "command_lines", "bool", True, "Keep command lines",
          "Record and show processes' command lines (secrets masked); off: executable names only."),
    Field("prometheus", "enabled", "bool", False, "Prometheus endpoint",
          "Serve current samples and rule levels for Prometheus (needs prometheus_client)."),
    Field("prometheus", "address", "str", "127.0.0.1", "Prometheus address",
          "The address to listen on; the default answers this machine only."),
    Field("prometheus", "port", "int", 9101, "Prometheus port", "The port to listen on.",
          minimum=1, maximum=65535),
    Field("fleet", "url", "url", "", "Prometheus URL",
          "A Prometheus server that scrapes trayapp recorders, e.g. http://prometheus:9090; empty: this machine only."),
    Field("fleet", "job", "str", "trayapp", "Job", "The scrape job of the recorders (the shipped prometheus.yml calls it trayapp)."),
    Field("fleet", "user", "str", "", "User", "For basic auth; empty: no login, or the token below."),
    Field("fleet", "password", "secret", "", "Password", "The basic auth password (kept in the OS keyring where there is one)."),
    Field("fleet", "token", "secret", "", "Bearer token", "Or a bearer token (kept in the OS keyring where there is one)."),
    Field("fleet", "interval", "duration", "30s", "Ask every", "How often Prometheus is asked for the machines.",
          minimum=1.0, maximum=86400.0),
    Field("fleet", "scope", "choice", "fleet too", "Icon shows",
          "this machine: the icon is this machine's level; fleet too: the worst of this machine and the fleet.",
          choices=("this machine", "fleet too")),
    Field("fleet", "verify_tls", "bool", True, "Verify TLS",
          "Check the server's certificate; off only for a server with a self-signed one (a warning is logged)."),
    # set from the history window's menu (Hide, Move up/down), not from the dialog
    Field("window", "hidden_plots", "str", "", "Hidden plots",
          "Metrics whose plot the history window leaves out, comma-separated (its menu: Hide, Show)."),
    Field("window", "plot_order", "str", "", "Plot order",
          "The history window's plots in this order, comma-separated; the others follow in the usual order."),
    Field("panel", "items", "panel", "", "Panel items",
          "Metrics shown in the panel beside the level icon, in order, each as a number or a 2-minute graph: "
          "\"cpu_percent:number, gpu0_util_percent:bars\" (number, bars or line); empty shows the level icon only."),
)

FIELD_BY_KEY = {f.key: f for f in FIELDS}
SECRET_FIELDS = tuple(f for f in FIELDS if f.kind == "secret")

RULE_FIELDS: tuple[Field, ...] = (
    Field("rules", "metric", "str", "cpu_percent", "Metric",
          "A dataset column: cpu_percent, memory_percent, disk_percent, gpu0_util_percent, …"),
    Field("rules", "window", "duration", "36h", "Window", "How far back the average reaches (s, m, h, d).", above=0.0,
          maximum=MAX_WINDOW),
    Field("rules", "direction", "choice", "above", "Watches",
          "above: the average rising (CPU, memory); below: the average falling (a battery, a fan).",
          choices=("above", "below")),
    # the widest any metric allows (bytes/s); check_rule narrows it to the metric's own range (0-100 for a %)
    Field("rules", "orange", "float", 80.0, "Orange at",
          "Orange when the average reaches this: at least this (above), at most this (below).", minimum=0.0, maximum=1e12),
    Field("rules", "red", "float", 90.0, "Red past",
          "Red when the average goes past this: above it (above), under it (below).", minimum=0.0, maximum=1e12),
    Field("rules", "min_coverage", "duration", "1h", "Minimum data",
          "With less data than this in the window the level is unknown.", minimum=0.0),
)

_METRIC = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GPU_METRIC = re.compile(r"^gpu\d+_(" + "|".join(GPU_FIELDS) + r")$")


def known_metric(column: str) -> bool:
    """Whether some probe produces this column: a base or machine column, or gpuN_<a GPU field>."""
    return column in BASE_COLUMNS or column in MACHINE_COLUMNS or bool(_GPU_METRIC.match(column))


PANEL_KINDS = ("number", "bars", "line")  # how a panel item shows its metric: the value, or 2 minutes of it


def parse_panel(text: str) -> tuple[tuple[str, str], ...]:
    """``"cpu_percent:number, memory_percent:bars"`` → ``(("cpu_percent", "number"), ("memory_percent", "bars"))``;
    a metric without a kind is a number; ValueError naming the first entry that cannot be used."""
    items: list[tuple[str, str]] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        metric, _, kind = (piece.strip() for piece in entry.partition(":"))
        kind = kind or "number"
        if not _METRIC.match(metric) or not known_metric(metric):
            raise ValueError(f"{metric!r} is not a metric trayapp measures")
        if kind not in PANEL_KINDS:
            raise ValueError(f"{entry!r}: the kind must be one of {', '.join(PANEL_KINDS)}")
        if any(metric == seen for seen, _ in items):
            raise ValueError(f"{metric!r} is listed twice")
        items.append((metric, kind))
    return tuple(items)


def panel_text(items: "tuple[tuple[str, str], ...] | list[tuple[str, str]]") -> str:
    """The ``[panel] items`` text for ``items``, the form ``parse_panel`` reads."""
    return ", ".join(f"{metric}:{kind}" for metric, kind in items)


@dataclass(frozen=True, slots=True)
class Config:
    """The settings in force. Built only through ``validate``/``load``, so always valid."""

    sampling_interval_seconds: float = 2.0
    sampling_gpu_backend: str = "auto"
    sampling_disk_path: str = ""
    storage_data_dir: str = ""
    storage_retention_days: int = 0
    alerts_hysteresis: float = 2.0
    alerts_desktop_notifications: bool = True
    app_start_at_login: bool = False
    slack_webhook_url: str = ""
    slack_bot_token: str = ""
    slack_channel: str = ""
    slack_send_resolved: bool = True
    slack_repeat_every: str = "0"
    slack_api_url: str = "https://slack.com/api/"
    processes_attribution: bool = True
    processes_command_lines: bool = True
    prometheus_enabled: bool = False
    prometheus_address: str = "127.0.0.1"
    prometheus_port: int = 9101
    fleet_url: str = ""
    fleet_job: str = "trayapp"
    fleet_user: str = ""
    fleet_password: str = ""
    fleet_token: str = ""
    fleet_interval: str = "30s"
    fleet_scope: str = "fleet too"
    fleet_verify_tls: bool = True
    window_hidden_plots: str = ""
    window_plot_order: str = ""
    panel_items: str = ""
    rules: tuple[Rule, ...] = field(default=DEFAULT_RULES)

    def get(self, key: str) -> Any:
        return getattr(self, FIELD_BY_KEY[key].attr)

    def with_values(self, **changes: Any) -> "Config":
        return replace(self, **changes)

    @property
    def panel(self) -> tuple[tuple[str, str], ...]:
        """The panel items in force: (metric, number | bars | line), in order."""
        return parse_panel(self.panel_items)

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_webhook_url or (self.slack_bot_token and self.slack_channel))


assert {f.attr for f in FIELDS} | {"rules"} == {f.name for f in fields(Config)}, "FIELDS and Config disagree"


class SettingError(ValueError):
    """A value that cannot be used; the message names the key and the value."""


def check(f: Field, value: Any) -> Any:
    """The value converted to the field's type, or SettingError saying why not."""
    kind = f.kind
    if kind == "secret":  # never shown, whatever its type: say only what kind of value it is
        shown = f"[{f.section}] {f.name} (a {_type_name(value)}, not shown)"
    else:
        shown = f"[{f.section}] {f.name} = {value!r}"
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise SettingError(f"{shown}: must be true or false")
    if kind in ("str", "path", "secret"):
        if not isinstance(value, str):
            raise SettingError(f"{shown}: must be text in quotes")
        if kind == "secret" and f.section == "slack" and any(ch.isspace() or not ch.isprintable() for ch in value.strip()):
            raise SettingError(f"{shown}: must be one line with no spaces (Slack would refuse it)")
        if kind == "secret" and any(not ch.isprintable() for ch in value.strip()):  # a password may hold a space
            raise SettingError(f"{shown}: must be one line of printable characters")
        return value.strip()
    if kind == "url":  # a server's address, or empty for none
        if not isinstance(value, str):
            raise SettingError(f"{shown}: must be text in quotes")
        if not value.strip():
            return ""
        from trayapp.fleet import check_url

        try:
            return check_url(value)
        except ValueError as exc:
            raise SettingError(f"{shown}: {exc}") from None
    if kind == "choice":
        if value in f.choices:
            return value
        raise SettingError(f"{shown}: must be one of {', '.join(f.choices)}")
    if kind == "duration":
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise SettingError(f"{shown}: must be a duration like 90s, 30m, 36h or 7d") from None
        _bounds(f, seconds, shown)
        if f.least_if_set is not None and 0 < seconds < f.least_if_set:
            raise SettingError(f"{shown}: must be 0 (never) or at least {format_duration(f.least_if_set)}")
        return str(value).strip() if isinstance(value, str) else format_duration(seconds)
    if kind == "panel":
        if not isinstance(value, str):
            raise SettingError(f"{shown}: must be text in quotes, like \"cpu_percent:number, memory_percent:bars\"")
        try:
            return panel_text(parse_panel(value))
        except ValueError as exc:
            raise SettingError(f"{shown}: {exc}") from None
    if kind in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingError(f"{shown}: must be a number")
        if kind == "int" and not float(value).is_integer():
            raise SettingError(f"{shown}: must be a whole number")
        if not math.isfinite(value):
            raise SettingError(f"{shown}: must be a finite number")
        _bounds(f, value, shown)
        return int(value) if kind == "int" else float(value)
    raise AssertionError(kind)


def _type_name(value: Any) -> str:
    return {str: "text", bool: "true/false", int: "number", float: "number", list: "list", dict: "table"}.get(
        type(value), type(value).__name__)


def _bounds(f: Field, value: float, shown: str) -> None:
    def said(bound: float) -> str:
        return format_duration(bound) if f.kind == "duration" and bound else f"{bound:g}"

    if f.above is not None and not value > f.above:
        raise SettingError(f"{shown}: must be greater than {said(f.above)}")
    if f.minimum is not None and value < f.minimum:
        raise SettingError(f"{shown}: must be at least {said(f.minimum)}")
    if f.maximum is not None and value > f.maximum:
        raise SettingError(f"{shown}: must be at most {said(f.maximum)}")


def check_rule(raw: Any, index: int, warnings: list[str] | None = None) -> Rule:
    """One ``[[rules]]`` table to a Rule, or SettingError naming the rule and the value. A key it
    does not know (a note, a typo) is ignored, said in ``warnings``: it does not cost the rule."""
    if not isinstance(raw, dict):
        raise SettingError(f"[[rules]] #{index + 1}: must be a table")
    known = {f.name for f in RULE_FIELDS}
    for key in sorted(set(raw) - known):
        if warnings is not None:
            warnings.append(f"config: [[rules]] #{index + 1}: unknown key {key!r}; ignored")
    values = {}
    for f in RULE_FIELDS:
        value = raw.get(f.name, f.default)
        try:
            values[f.name] = check(f, value)
        except SettingError as exc:
            raise SettingError(f"[[rules]] #{index + 1} {str(exc).split('] ', 1)[1]}") from None
    if not _METRIC.match(values["metric"]):
        raise SettingError(f"[[rules]] #{index + 1} metric = {values['metric']!r}: must be a column name like cpu_percent")
    if not known_metric(values["metric"]):
        raise SettingError(
            f"[[rules]] #{index + 1} metric = {values['metric']!r}: no probe measures it "
            f"({', '.join(BASE_COLUMNS + MACHINE_COLUMNS)}, or gpuN_ with " + ", ".join(GPU_FIELDS) + ")"
        )
    low, high = metric_range(values["metric"])
    for name in ("orange", "red"):
        if values[name] > high:
            raise SettingError(f"[[rules]] #{index + 1} {name} = {values[name]:g}: must be at most {high:g}")
        if values[name] < low:
            raise SettingError(f"[[rules]] #{index + 1} {name} = {values[name]:g}: must be at least {low:g}")
    if values["direction"] == "above" and not values["orange"] < values["red"]:
        raise SettingError(
            f"[[rules]] #{index + 1} orange = {values['orange']:g}, red = {values['red']:g}: orange must be below red "
            "(a rule that watches a value fall says direction = \"below\")"
        )
    if values["direction"] == "below" and not values["orange"] > values["red"]:
        raise SettingError(
            f"[[rules]] #{index + 1} orange = {values['orange']:g}, red = {values['red']:g}: orange must be above red "
            "for a rule that watches a value fall (direction = \"below\")"
        )
    window = parse_duration(values["window"])
    coverage = parse_duration(values["min_coverage"])
    if coverage > window:
        raise SettingError(
            f"[[rules]] #{index + 1} min_coverage = {values['min_coverage']!r}: cannot be longer than the window ({values['window']})"
        )
    return Rule(values["metric"], window, values["orange"], values["red"], coverage, values["direction"])


def rule_to_toml(rule: Rule) -> dict[str, Any]:
    return {
        "metric": rule.metric,
        "window": format_duration(rule.window_seconds),
        "orange": rule.orange,
        "red": rule.red,
        "min_coverage": format_duration(rule.min_coverage_seconds) if rule.min_coverage_seconds else "0",
        "direction": rule.direction,
    }


@dataclass
class Loaded:
    config: Config
    path: Path
    warnings: list[str]
    broken: bool = False  # the file is there but could not be read as TOML


def default_config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def default_log_path() -> Path:
    """The tray app's log file, in the platform's user log folder (it has no terminal)."""
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)) / "trayapp.log"


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_path(cli_value: str | None = None) -> Path:
    return Path(cli_value or os.environ.get("TRAYAPP_CONFIG") or default_config_path()).expanduser()


def data_dir(config: Config, cli_value: str | None = None) -> Path:
    chosen = cli_value or os.environ.get("TRAYAPP_DATA_DIR") or config.storage_data_dir
    return Path(chosen).expanduser() if chosen else default_data_dir()


def migrate(doc: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Bring a config written by an older version up to ``CONFIG_VERSION``.

    Version 0 (no ``version`` key) is the first layout; it differs only in carrying no version
    and, in early drafts, ``[slack] webhook`` for ``webhook_url``. Version 2 says where the secrets
    are: ``[slack] secrets_in = "keyring"`` when trayapp put them in the OS keyring; a version-1 file
    with no secret in it may have them there unsaid, so the keyring is asked for it (``_keyring_may_hold``).
    """
    version = doc.get("version", 0)
    if not isinstance(version, int) or version < 0:
        warnings.append(f"config: version = {version!r} is not a version number; read as the current layout")
        version = CONFIG_VERSION
    if version > CONFIG_VERSION:
        warnings.append(
            f"config: written by a newer trayapp (version {version}, this one reads {CONFIG_VERSION}); "
            "settings it does not know are ignored"
        )
    if version < 1:
        slack = doc.get("slack")
        if isinstance(slack, dict) and "webhook" in slack and "webhook_url" not in slack:
            slack["webhook_url"] = slack.pop("webhook")
    doc["version"] = CONFIG_VERSION
    return doc


def validate(doc: dict[str, Any], warnings: list[str]) -> Config:
    """A Config from a parsed TOML document; bad values are reported and replaced by defaults."""
    doc = migrate(dict(doc), warnings)
    values: dict[str, Any] = {}
    sections = {f.section for f in FIELDS}
    for name, content in doc.items():
        if name in ("version", "rules"):
            continue
        if name not in sections or not isinstance(content, dict):
            warnings.append(f"config: unknown setting {name!r}; ignored")
            continue
        for key in content:
            if (name, key) == SECRETS_IN:
                if content[key] != "keyring":
                    warnings.append(f"config: [{name}] {key}: trayapp writes only \"keyring\" there; ignored "
                                    "(the value is not shown: it could be a secret)")
            elif f"{name}.{key}" not in FIELD_BY_KEY:
                warnings.append(f"config: unknown setting [{name}] {key}; ignored")
    for f in FIELDS:
        section = doc.get(f.section)
        if not isinstance(section, dict) or f.name not in section:
            continue
        if f.kind == "secret":
            privacy.remember(section[f.name])  # redacted from every log line, whatever its type
        try:
            values[f.attr] = check(f, section[f.name])
        except SettingError as exc:
            fallback = _raised_to_least(f, section[f.name])
            if fallback is not None:
                values[f.attr] = fallback
            warnings.append(f"config: {exc}; using {fallback if fallback is not None else f.default!r}")
    if "rules" in doc:
        raw_rules = doc["rules"]
        if not isinstance(raw_rules, list):
            warnings.append("config: rules must be a list of [[rules]] tables; using the default rules")
        else:
            rules = []
            for i, raw in enumerate(raw_rules):
                try:
                    rules.append(check_rule(raw, i, warnings))
                except SettingError as exc:
                    warnings.append(f"config: {exc}; that rule is left out")
            values["rules"] = _in_force(tuple(rules), raw_rules)
            if not rules and raw_rules:
                warnings.append(f"config: none of the {len(raw_rules)} [[rules]] could be used; using the default rules until they are mended")
    config = Config(**values)
    for f, needed in ((FIELD_BY_KEY["slack.webhook_url"], True), (FIELD_BY_KEY["slack.api_url"], bool(config.slack_bot_token))):
        if needed and _plain_http(config.get(f.key)):
            warnings.append(f"config: [{f.section}] {f.name} is http://, not https://: messages and the secret in it "
                            "travel unencrypted (Slack itself accepts only https)")
    warnings += _fleet_warnings(config)
    return config


def _fleet_warnings(config: Config) -> list[str]:
    """Settings of ``[fleet]`` that work but may not do what was meant."""
    out = []
    if config.fleet_token and (config.fleet_user or config.fleet_password):
        out.append("config: [fleet] has both a token and a user or password; the token is used")
    if (config.fleet_password or config.fleet_token) and _plain_http(config.fleet_url):
        out.append("config: [fleet] url is http://, not https://: the password or token travels unencrypted")
    if not config.fleet_verify_tls and config.fleet_url.lower().startswith("https://"):
        out.append(f"config: [fleet] verify_tls = false: the certificate of {config.fleet_url} is not checked")
    return out


def _raised_to_least(f: Field, value: Any) -> str | None:
    """For a duration with a minimum (``repeat_every``): a value below it is raised to it."""
    if f.least_if_set is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError:
        return None
    return format_duration(f.least_if_set) if 0 < seconds < f.least_if_set else None


def _plain_http(url: str) -> bool:
    """An ``http://`` URL to another machine (this machine, for tests and local relays, is fine)."""
    from urllib.parse import urlsplit

    if not url.lower().startswith("http://"):
        return False
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return True
    return host not in ("127.0.0.1", "localhost", "::1")


def load(path: Path) -> Loaded:
    """Read the config file. Never raises for bad content: it warns and uses defaults."""
    warnings: list[str] = []
    try:
        text = read_own(path, MAX_CONFIG_BYTES).decode("utf-8-sig")  # a byte-order mark (some Windows editors write one) is no content
    except FileNotFoundError:  # nothing saved, so no secret in the keyring either: it is not asked
        return Loaded(Config(), path, warnings)
    except NotRegular as exc:  # /dev/zero never ends, a FIFO blocks: neither is a config
        if exc.errno == errno.EFBIG:
            warnings.append(f"config: {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB, too big for a config; using defaults")
        else:
            warnings.append(f"config: {path} is not a regular file; using defaults")
        return Loaded(Config(), path, warnings)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)[:120]
        warnings.append(f"config: cannot read {path} ({reason}); using defaults")
        return Loaded(Config(), path, warnings)
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # tomllib recurses: [[[[…]]]] ends here too
        # Reading never moves the file: only saving new settings over it sets it aside.
        reason = exc if isinstance(exc, tomllib.TOMLDecodeError) else "nested too deeply"
        warnings.append(f"config: {path} is not valid TOML ({reason}); using defaults until it is fixed")
        return Loaded(Config(), path, warnings, broken=True)
    try:
        config = validate(doc, warnings)
    except RecursionError:  # a value nested hundreds deep where a setting goes
        warnings.append(f"config: {path} holds values nested too deeply; using defaults until it is fixed")
        return Loaded(Config(), path, warnings, broken=True)
    return Loaded(_with_keyring(config, doc, warnings), path, warnings)


def save(config: Config, path: Path) -> None:
    """Write the settings into the file the user keeps, atomically, changing only what changed.

    The file is round-tripped with tomlkit: comments, order and layout stay; a key is written
    only when its value changed (a new key only when it differs from its default); ``[[rules]]``
    stays an array of tables. Secrets go to the OS keyring when there is one, said by
    ``[slack] secrets_in = "keyring"``, else the file is 0600. The keyring is not even imported
    when there is no secret to write and none the file says may be there to delete. A file that
    is not valid TOML is kept aside as ``.broken-<time>`` first."""
    import tomlkit

    from trayapp.jsonfile import replace_atomically

    unreadable = _set_aside_if_broken(path) is not None
    doc = None
    if path.exists():
        try:
            doc = tomlkit.parse(path.read_text(encoding="utf-8-sig"))
        except Exception:  # tomllib read it but tomlkit cannot: keep it aside rather than lose it
            _set_aside(path)
            unreadable = True
    # What the keyring may hold from earlier saves: an unreadable file may have had secrets there too.
    may_hold = unreadable or (doc is not None and _keyring_may_hold(doc))
    has_secret = any(getattr(config, f.attr) for f in SECRET_FIELDS)
    in_keyring = _store_secrets(config) if has_secret or may_hold else False
    settled = in_keyring or not may_hold  # the keyring now holds exactly what the file says it holds
    fresh = doc is None
    if doc is None:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("trayapp settings; see 'trayapp doctor' for what is in force"))
    if settled:
        marked, version = in_keyring and has_secret, CONFIG_VERSION
    else:  # the keyring could not be reached: leave the question as it was, for a save that can reach it
        marked = _marked(doc) or has_secret  # a secret now in the file ends the version-1 guess: say it
        version = 1 if unreadable or _version(doc) == 1 else CONFIG_VERSION
    _update_document(doc, config, keep_secrets=not in_keyring, marked=marked, version=version)
    has_secret = any(
        isinstance(doc.get(f.section), dict) and doc[f.section].get(f.name) for f in FIELDS if f.kind == "secret"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    text = tomlkit.dumps(doc)
    if fresh and not text.endswith("\n"):
        text += "\n"
    replace_atomically(path, text.encode("utf-8"), mode=0o600 if has_secret else 0o644)


def _same(f: Field, raw: Any, value: Any) -> bool:
    """Whether ``raw`` from the file already means ``value`` (``2`` is ``2.0``, ``"60m"`` is ``"1h"``)."""
    try:
        checked = check(f, raw)
    except SettingError:
        return False
    if f.kind == "duration":
        return parse_duration(checked) == parse_duration(value)
    return checked == value


def _update_document(doc: Any, config: Config, keep_secrets: bool, marked: bool = False,
                     version: int = CONFIG_VERSION) -> None:
    """Change ``doc`` (a tomlkit document) in place so that it loads as ``config``; ``marked``: the
    secrets are in the OS keyring (``[slack] secrets_in = "keyring"``)."""
    import tomlkit

    if doc.get("version") != version:
        if "version" in doc:
            doc["version"] = version
        else:
            _insert_top_level(doc, "version", version)
    slack = doc.get("slack")
    if isinstance(slack, dict) and "webhook" in slack:  # the version-0 name, migrated on load
        if "webhook_url" not in slack:
            slack["webhook_url"] = slack["webhook"]
        del slack["webhook"]
    for f in FIELDS:
        value = getattr(config, f.attr)
        section = doc.get(f.section)
        present = isinstance(section, dict) and f.name in section
        if f.kind == "secret" and not keep_secrets:
            if present:
                del section[f.name]  # it lives in the keyring now
            continue
        if present:
            if not _same(f, section[f.name], value):
                section[f.name] = value
            continue
        if value == f.default:
            continue  # defaults are not written
        if not isinstance(section, dict):
            if f.section in doc:  # not a table (a bad value the loader ignored): replace it
                del doc[f.section]
            section = tomlkit.table()
            doc.add(f.section, section)
        section[f.name] = value
    _update_marker(doc, marked)
    _update_rules(doc, config.rules)


def _update_marker(doc: Any, marked: bool) -> None:
    import tomlkit

    name, key = SECRETS_IN
    section = doc.get(name)
    if not marked:
        if isinstance(section, dict) and key in section:
            del section[key]
            if not section.as_string().strip():  # the table held only the mark (no note of the user's)
                del doc[name]
        return
    if isinstance(section, dict) and section.get(key) == "keyring":
        return
    if not isinstance(section, dict):
        if name in doc:  # not a table (a bad value the loader ignored): replace it
            del doc[name]
        section = tomlkit.table()
        doc.add(name, section)
    section[key] = "keyring"


def _insert_top_level(doc: Any, key: str, value: Any) -> None:
    """A top-level key must come before the first table; tomlkit's ``add`` puts it there."""
    doc.add(key, value)


def _rule_from(raw: Any) -> Rule | None:
    try:
        return check_rule(raw, 0)
    except SettingError:
        return None


def _in_force(usable: tuple[Rule, ...], written: list) -> tuple[Rule, ...]:
    """The rules in force from a ``rules`` list: those that could be used; the defaults when none
    of the written ones could (a typo in the only rule must not switch alerting off for months);
    none for ``rules = []``, which is no alerts, on purpose."""
    return usable if usable or not written else DEFAULT_RULES


def _loads_as(existing: Any) -> tuple[Rule, ...]:
    """The rules ``validate`` makes of a file's ``rules`` value, its fallback to the defaults included."""
    if not isinstance(existing, list):
        return DEFAULT_RULES  # none, or not a list (warned about at load)
    return _in_force(tuple(rule for rule in map(_rule_from, existing) if rule is not None), existing)


def _comment_lines(item: Any) -> list[str]:
    """A ``[[rules]]`` table (its header's comment too) or an inline rule, as the lines it was written as."""
    import tomlkit

    if isinstance(item, tomlkit.items.Table):
        header = "[[rules]]" + (item.trivia.comment_ws + item.trivia.comment if item.trivia.comment else "")
        return [header, *item.as_string().rstrip("\n").splitlines()]
    return [item.as_string().strip()]


def _update_rules(doc: Any, rules: tuple[Rule, ...]) -> None:
    """Make ``[[rules]]`` load as ``rules``, touching as little as it can: a rule that did not
    change keeps every byte, and a table the loader left out (warned about then) stays untouched,
    except when no rule is wanted: it is kept as comments then, as it would load the defaults."""
    import tomlkit

    existing = doc.get("rules")
    if _loads_as(existing) == tuple(rules):
        return  # unchanged, the defaults a file without a usable rule falls back to included: not one character touched
    if not rules:  # no rules, on purpose: ``rules = []``, with what the loader could not use kept inside as comments
        empty = tomlkit.array()  # (left as rules, alone they would load as "no rule could be used": the defaults)
        skipped = [item for item in existing if _rule_from(item) is None] if isinstance(existing, list) else []
        if skipped:
            empty.add_line(comment="rules trayapp could not use, kept as comments when every rule was removed:")
            for item in skipped:
                for line in _comment_lines(item):
                    empty.add_line(comment=line)
            empty.add_line(indent="")
        if "rules" in doc:
            del doc["rules"]
        _insert_top_level(doc, "rules", empty)
        return
    if isinstance(existing, tomlkit.items.AoT):
        parsed = [_rule_from(t) for t in existing]
        where = [i for i, rule in enumerate(parsed) if rule is not None]  # the tables that load
        have = [parsed[i] for i in where]
        wanted = list(rules)
        # Match old and new rule lists (difflib): rules found in both keep their tables as they are;
        # a changed one is edited key by key, a deleted one's table goes, a new one is put in its place.
        # Applied from the end, so the indexes of the tables before stay right.
        ops = SequenceMatcher(None, have, wanted, autojunk=False).get_opcodes()
        for tag, i1, i2, j1, j2 in reversed(ops):
            if tag == "equal":
                continue
            block = where[i1:i2]
            end = block[-1] + 1 if block else (where[i1] if i1 < len(where) else len(existing))
            # Within a changed stretch an edited rule keeps the table of its metric (its comments are
            # about it), matched in order again: the file's order stays the order of the rules.
            inner = SequenceMatcher(None, [parsed[i].metric for i in block], [r.metric for r in wanted[j1:j2]],
                                    autojunk=False).get_opcodes()
            for _, a1, a2, b1, b2 in reversed(inner):
                tables, new = block[a1:a2], wanted[j1 + b1:j1 + b2]
                for i, rule in zip(tables, new):
                    _update_rule_table(existing[i], rule)
                for i in reversed(tables[len(new):]):
                    del existing[i]
                if len(new) > len(tables):
                    at = tables[-1] + 1 if tables else (block[a1] if a1 < len(block) else end)
                    for k, rule in enumerate(new[len(tables):]):
                        existing.insert(at + k, _rule_table(rule))
        return
    carried: list[str] = []  # an inline array's comments and the rules the loader skipped, kept as comments
    if isinstance(existing, list):
        carried = [line.strip() for line in existing.as_string().splitlines() if line.strip().startswith("#")]
        carried += [f"# {line}" for item in existing if _rule_from(item) is None for line in _comment_lines(item)]
    if "rules" in doc:  # an inline ``rules = [{…}]`` (older saves) or a bad value: the README's form
        del doc["rules"]
    aot = tomlkit.aot()
    for rule in rules:
        aot.append(_rule_table(rule))
    if carried:
        aot[0].trivia.indent = "\n".join(carried) + "\n"  # above the first [[rules]]
    doc.add("rules", aot)


def _update_rule_table(table: Any, rule: Rule) -> None:
    wanted = rule_to_toml(rule)
    for f in RULE_FIELDS:
        if f.name in table:
            if not _same(f, table[f.name], wanted[f.name]):
                table[f.name] = wanted[f.name]
        elif not _same(f, f.default, wanted[f.name]):
            table[f.name] = wanted[f.name]


def _rule_table(rule: Rule) -> Any:
    import tomlkit

    table = tomlkit.table()
    for key, value in rule_to_toml(rule).items():
        if key != "direction" or value != "above":  # the default, left unsaid as in the README's rules
            table.add(key, value)
    return table


def _set_aside(path: Path) -> Path:
    backup = path.with_name(f"{path.name}.broken-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, backup)
    log.warning("config: %s was not valid TOML; kept it as %s", path, backup.name)
    return backup


def _set_aside_if_broken(path: Path) -> Path | None:
    """Before new settings replace a file that is not valid TOML, keep it as ``.broken-<time>``.
    Raises OSError for a path that is not a regular file (``--config /dev/zero``): never replaced."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"{path} is not a regular file; not writing settings over it")
    try:
        if info.st_size <= MAX_CONFIG_BYTES:
            tomllib.loads(path.read_text(encoding="utf-8-sig"))
            return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        pass
    return _set_aside(path)


# ------------------------------------------------------------------- keyring


def _keyring() -> Any | None:
    """The OS keyring when a real one is there (not the 'fail' or 'null' backends)."""
    if os.environ.get("TRAYAPP_NO_KEYRING"):
        return None
    try:
        import keyring
        from keyring.backends import fail, null

        backend = keyring.get_keyring()
        if isinstance(backend, (fail.Keyring, null.Keyring)):
            return None
        return keyring
    except Exception:  # keyring probes D-Bus and friends; any failure means "no keyring"
        return None


def _marked(doc: Any) -> bool:
    """Whether the file says its secrets are in the OS keyring (``[slack] secrets_in = "keyring"``)."""
    name, key = SECRETS_IN
    section = doc.get(name)
    return isinstance(section, dict) and section.get(key) == "keyring"


def _version(doc: Any) -> int | None:
    version = doc.get("version")
    return int(version) if isinstance(version, int) and not isinstance(version, bool) else None


def _keyring_may_hold(doc: Any) -> bool:
    """Whether the OS keyring may hold secrets for this file (a parsed TOML document, tomllib's or
    tomlkit's): it says so, or it is a version-1 file (every save wrote a version, from the first
    one on): up to version 1, secrets saved to the keyring left no mark, and a person may have
    written one secret into such a file by hand since, with the other still in the keyring."""
    return _marked(doc) or _version(doc) == 1


def _with_keyring(config: Config, doc: Any, warnings: list[str]) -> Config:
    """The secrets the file does not hold, from the OS keyring — asked, and ``keyring`` imported,
    only when the file says they are there (or is a version-1 file that may have them unsaid)."""
    # a fleet secret is wanted only with a fleet to log in to
    wanted = [f for f in SECRET_FIELDS if not getattr(config, f.attr) and (f.section != "fleet" or config.fleet_url)]
    if not wanted or not _keyring_may_hold(doc):
        return config
    ring = _keyring()
    if ring is None:
        if _marked(doc):
            why = "TRAYAPP_NO_KEYRING is set" if os.environ.get("TRAYAPP_NO_KEYRING") else "none is available"
            warnings.append(f"config: [slack] secrets_in = \"keyring\", but the OS keyring cannot be used ({why}); "
                            "the Slack secrets kept there are not read")
        return config
    changes = {}
    for f in wanted:
        try:
            value = ring.get_password(KEYRING_SERVICE, f.key)
        except Exception:  # a locked or broken keyring: carry on without the secret
            warnings.append(f"config: the OS keyring did not give {f.key}; Slack may be off")
            continue
        if value:
            privacy.remember(value)
            changes[f.attr] = value
    return replace(config, **changes) if changes else config


def _store_secrets(config: Config) -> bool:
    ring = _keyring()
    if ring is None:
        return False
    try:
        for f in SECRET_FIELDS:
            value = getattr(config, f.attr)
            if value:
                ring.set_password(KEYRING_SERVICE, f.key, value)
            else:
                try:
                    ring.delete_password(KEYRING_SERVICE, f.key)
                except Exception:  # nothing stored under that name
                    pass
        return True
    except Exception:  # the keyring refused: keep the secrets in the 0600 file instead
        return False
