"""The values that travel between threads: samples, levels, rule results, transitions.

Standard library only; every value is immutable so it can cross a Qt signal safely.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import datetime

BASE_COLUMNS = ("cpu_percent", "memory_percent", "disk_percent")
# Per GPU, in this order: utilisation, memory used ÷ total (as nvidia-smi reports it), temperature,
# power draw in watts, and the memory controller's busy share (NVML ``utilization.memory``).
GPU_FIELDS = ("util_percent", "memory_percent", "temperature_c", "power_w", "memory_bandwidth_percent")
# More of the machine, each null where this machine cannot say (no sensor, no battery, the first
# tick's rates). Per-core CPU is not stored per core (a 128-core server would get 128 columns): only
# the busiest core is; the whole list rides on ``Sample.cores`` in memory for the live view.
RATE_COLUMNS = ("net_recv_bytes_per_s", "net_sent_bytes_per_s", "disk_read_bytes_per_s", "disk_write_bytes_per_s")
MACHINE_COLUMNS = (
    *RATE_COLUMNS,
    "cpu_temperature_c",
    "hottest_temperature_c",
    "fan_rpm",
    "battery_percent",
    "battery_plugged",
    "swap_percent",
    "load_percent",
    "cpu_core_max_percent",
)


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What trayapp says about one metric, declared once: its words for people, the unit they read
    it in, the values a rule's thresholds may take, and its Prometheus series (name and help; a
    percentage is exported as a ratio). The probes' columns, the window, the rules editor, the
    panel, Prometheus and the fleet reader all look a metric up here."""

    label: str
    unit: str  # "%", "°C", "W", "B/s", "RPM", or "" for a 0/1 state
    prometheus: str
    help: str


# The values a rule's thresholds may take, by unit: 0-100 for a share, wider for the rest.
UNIT_RANGES = {"B/s": (0.0, 1e12), "RPM": (0.0, 100000.0), "W": (0.0, 100000.0), "°C": (0.0, 200.0), "": (0.0, 1.0), "%": (0.0, 100.0)}

# Every machine column, in the dataset's order (BASE_COLUMNS, then MACHINE_COLUMNS).
METRICS: dict[str, MetricInfo] = {
    "cpu_percent": MetricInfo("CPU", "%", "trayapp_cpu_usage_ratio", "Share of CPU time in use over the last sampling interval, all cores (0-1)"),
    "memory_percent": MetricInfo("memory", "%", "trayapp_memory_usage_ratio", "Share of physical memory in use (0-1)"),
    "disk_percent": MetricInfo("disk", "%", "trayapp_disk_usage_ratio", "Share of the watched disk's space in use (0-1)"),
    "net_recv_bytes_per_s": MetricInfo("network receive", "B/s", "trayapp_network_receive_bytes_per_second",
                                       "Bytes received per second, all interfaces but loopback"),
    "net_sent_bytes_per_s": MetricInfo("network send", "B/s", "trayapp_network_transmit_bytes_per_second",
                                       "Bytes sent per second, all interfaces but loopback"),
    "disk_read_bytes_per_s": MetricInfo("disk read", "B/s", "trayapp_disk_read_bytes_per_second", "Bytes read per second from the watched disk's device"),
    "disk_write_bytes_per_s": MetricInfo("disk write", "B/s", "trayapp_disk_write_bytes_per_second", "Bytes written per second to the watched disk's device"),
    "cpu_temperature_c": MetricInfo("CPU temperature", "°C", "trayapp_cpu_temperature_celsius",
                                    "CPU package temperature (coretemp Package, k10temp Tdie/Tctl)"),
    "hottest_temperature_c": MetricInfo("hottest sensor", "°C", "trayapp_hottest_sensor_temperature_celsius", "The highest reading of any temperature sensor"),
    "fan_rpm": MetricInfo("fan", "RPM", "trayapp_fan_speed_rpm", "The fastest fan's speed"),
    "battery_percent": MetricInfo("battery", "%", "trayapp_battery_charge_ratio", "Battery charge (0-1)"),
    "battery_plugged": MetricInfo("on AC power", "", "trayapp_power_supply_online", "1 on AC power, 0 on battery"),
    "swap_percent": MetricInfo("swap", "%", "trayapp_swap_usage_ratio", "Share of swap space in use (0-1)"),
    "load_percent": MetricInfo("load", "%", "trayapp_load_per_core_ratio", "1-minute load average divided by the logical core count"),
    "cpu_core_max_percent": MetricInfo("busiest core", "%", "trayapp_cpu_core_max_usage_ratio", "The busiest logical core's share of time in use (0-1)"),
}
# Each GPU's fields (GPU_FIELDS), a column ``gpu<N>_<field>`` each; the label is prefixed ``GPU <N>``.
GPU_METRICS: dict[str, MetricInfo] = {
    "util_percent": MetricInfo("util", "%", "trayapp_gpu_utilization_ratio", "Share of time a kernel ran on the GPU (0-1)"),
    "memory_percent": MetricInfo("memory", "%", "trayapp_gpu_memory_usage_ratio", "GPU memory used / total as nvidia-smi counts it (0-1)"),
    "temperature_c": MetricInfo("temperature", "°C", "trayapp_gpu_temperature_celsius", "GPU core temperature"),
    "power_w": MetricInfo("power", "W", "trayapp_gpu_power_watts", "GPU power draw"),
    "memory_bandwidth_percent": MetricInfo("memory bandwidth", "%", "trayapp_gpu_memory_bandwidth_utilization_ratio",
                                           "Share of time GPU memory was being read or written (NVML utilization.memory, 0-1)"),
}


def gpu_and_field(column: str) -> tuple[int, str] | None:
    """``gpu3_util_percent`` → ``(3, "util_percent")``; None for a column that is not a GPU's."""
    if column.startswith("gpu") and "_" in column:
        index, _, field_name = column[3:].partition("_")
        if index.isdigit():
            return int(index), field_name
    return None


def metric_info(column: str) -> MetricInfo | None:
    """The record of a dataset column (a GPU's with its index in the label); None for one trayapp does not know."""
    if column in METRICS:
        return METRICS[column]
    gpu = gpu_and_field(column)
    if gpu is not None and gpu[1] in GPU_METRICS:
        info = GPU_METRICS[gpu[1]]
        return MetricInfo(f"GPU {gpu[0]} {info.label}", info.unit, info.prometheus, info.help)
    return None


def metric_label(column: str) -> str:
    """A column in a person's words: ``cpu_percent`` → ``CPU``, ``gpu0_util_percent`` → ``GPU 0 util``."""
    info = metric_info(column)
    if info is not None:
        return info.label
    gpu = gpu_and_field(column)
    return f"GPU {gpu[0]} {gpu[1]}" if gpu is not None else column


def metric_unit(column: str) -> str:
    """The unit people read a column in: ``%``, ``°C``, ``W``, ``B/s``, ``RPM``; ``""`` for a 0/1 state.
    A column trayapp does not know is read by its suffix, as the dataset names columns."""
    info = metric_info(column)
    if info is not None:
        return info.unit
    for suffix, unit in (("_c", "°C"), ("_w", "W"), ("_bytes_per_s", "B/s"), ("_rpm", "RPM")):
        if column.endswith(suffix):
            return unit
    return "%"


def metric_range(column: str) -> tuple[float, float]:
    """The values a rule's thresholds may take for this column: 0–100 for a share, wider for the rest."""
    return UNIT_RANGES.get(metric_unit(column), (0.0, 100.0))


def format_bytes(value: float) -> str:
    """Decimal units (1 KB = 1000 B), three significant digits: ``740 KB``, ``12.3 MB``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 999.5 or unit == "TB":
            break
        value /= 1000.0
    if unit == "B" or abs(value) >= 99.95:
        return f"{value:.0f} {unit}"
    return f"{value:.1f} {unit}" if abs(value) >= 9.995 else f"{value:.2f} {unit}"


def _bytes_rate(value: float) -> str:
    """``740 KB/s``, ``12.3 MB/s``: ``format_bytes`` per second."""
    return format_bytes(value) + "/s"


def format_value(column: str, value: float | None) -> str:
    """A value as people read it: ``12.3 MB/s``, ``61 °C``, ``1,850 RPM``, ``42 %``, ``plugged in``, ``n/a``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if column == "battery_plugged":
        return "plugged in" if value >= 0.5 else "on battery"
    unit = metric_unit(column)
    if unit == "B/s":
        return _bytes_rate(value)
    if unit in ("RPM", "W", "°C"):
        return f"{value:,.0f} {unit}"
    if unit == "%":
        return f"{value:.0f} %" if abs(value) >= 9.95 or value == 0 else f"{value:.1f} %"
    return f"{value:g}"


def gpu_column(index: int, field_name: str) -> str:
    """The dataset column for one field of one GPU, e.g. ``gpu0_util_percent``."""
    return f"gpu{index}_{field_name}"


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU at one instant. ``None`` means the driver could not tell, never zero.

    ``memory_percent`` is memory used ÷ total as nvidia-smi counts it (driver-reserved memory not
    counted as used); ``memory_bandwidth_percent`` is NVML's ``utilization.memory``, the share of
    time the memory was being read or written. ``uuid`` labels Prometheus series; it is not stored.
    """

    index: int
    name: str | None = None
    util_percent: float | None = None
    memory_percent: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    memory_bandwidth_percent: float | None = None
    uuid: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """One tick of the sampler. ``timestamp`` is timezone-aware UTC."""

    timestamp: datetime
    cpu_percent: float | None
    memory_percent: float | None
    disk_percent: float | None
    gpus: tuple[GpuReading, ...] = ()
    net_recv_bytes_per_s: float | None = None
    net_sent_bytes_per_s: float | None = None
    disk_read_bytes_per_s: float | None = None
    disk_write_bytes_per_s: float | None = None
    cpu_temperature_c: float | None = None
    hottest_temperature_c: float | None = None
    fan_rpm: float | None = None
    battery_percent: float | None = None
    battery_plugged: float | None = None
    swap_percent: float | None = None
    load_percent: float | None = None
    cpu_core_max_percent: float | None = None
    cores: tuple[float, ...] = ()  # every logical core's %, for the live view; not stored

    def values(self) -> dict[str, float | None]:
        """The sample's metrics by dataset column name (timestamp excluded; ``cores`` is not a column)."""
        row: dict[str, float | None] = {
            "cpu_percent": self.cpu_percent,
            "memory_percent": self.memory_percent,
            "disk_percent": self.disk_percent,
        }
        for name in MACHINE_COLUMNS:
            row[name] = getattr(self, name)
        for gpu in self.gpus:
            for name in GPU_FIELDS:
                row[gpu_column(gpu.index, name)] = getattr(gpu, name)
        return row


class Level(enum.Enum):
    """An alert level. ``severity`` orders them: the tray shows the highest."""

    UNKNOWN = "unknown"
    OK = "ok"
    ORANGE = "orange"
    RED = "red"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @staticmethod
    def worst(levels: "list[Level] | tuple[Level, ...]") -> "Level":
        """The level a person should see for several rules; ``UNKNOWN`` only if all are."""
        return max(levels, key=lambda lv: lv.severity, default=Level.UNKNOWN)


# Unknown ranks below ok: a rule on a metric this machine lacks (a GPU rule on a laptop)
# must not turn the whole tray grey while the other rules have data.
_SEVERITY = {Level.UNKNOWN: 0, Level.OK: 1, Level.ORANGE: 2, Level.RED: 3}


@dataclass(frozen=True, slots=True)
class Contributor:
    """A process group's part of a rule's window average, in the metric's points (``attribution``):
    its executable name, its redacted command line ("" when not read or not kept), a few pids, and
    for a GPU rule what weighed the processes (``SM util``, ``GPU memory``; "" for CPU and memory)."""

    name: str
    command: str
    share: float
    pids: tuple[int, ...] = ()
    by: str = ""

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "command": self.command, "share": round(self.share, 3), "pids": list(self.pids)}
        if self.by:
            out["by"] = self.by
        return out


@dataclass(frozen=True, slots=True)
class RuleResult:
    """A rule's verdict over its window at one instant."""

    metric: str
    window_seconds: float
    average: float | None
    samples: int
    coverage_seconds: float
    level: Level
    orange: float
    red: float
    direction: str = "above"  # or "below": the rule watches the average fall (rules.BELOW)
    contributors: tuple[Contributor, ...] = ()  # who made the average (``attribution``), "other" last

    def as_json(self) -> dict[str, object]:
        avg = self.average
        return {
            "metric": self.metric,
            "window_seconds": self.window_seconds,
            "average": None if avg is None or math.isnan(avg) else avg,
            "samples": self.samples,
            "coverage_seconds": round(self.coverage_seconds, 3),
            "level": self.level.value,
        }


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of a rule's alert level (or a reminder that it persists)."""

    rule_key: str
    previous: Level
    current: Level
    result: RuleResult
    at: datetime
    reminder: bool = False
    extra: tuple[tuple[str, str], ...] = field(default=())

    @property
    def resolved(self) -> bool:
        return self.current is Level.OK and self.previous in (Level.ORANGE, Level.RED)
