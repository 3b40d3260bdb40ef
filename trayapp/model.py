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


_LABELS = {"cpu_percent": "CPU", "memory_percent": "memory", "disk_percent": "disk"}
_GPU_LABELS = {
    "util_percent": "util",
    "memory_percent": "memory",
    "temperature_c": "temperature",
    "power_w": "power",
    "memory_bandwidth_percent": "memory bandwidth",
}


def metric_label(column: str) -> str:
    """A column in a person's words: ``cpu_percent`` → ``CPU``, ``gpu0_util_percent`` → ``GPU 0 util``."""
    if column in _LABELS:
        return _LABELS[column]
    if column.startswith("gpu") and "_" in column:
        index, _, field_name = column[3:].partition("_")
        if index.isdigit():
            return f"GPU {index} {_GPU_LABELS.get(field_name, field_name)}"
    return column


def metric_unit(column: str) -> str:
    if column.endswith("_c"):
        return "°C"
    if column.endswith("_w"):
        return "W"
    return "%"


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

    def values(self) -> dict[str, float | None]:
        """The sample's metrics by dataset column name (timestamp excluded)."""
        row: dict[str, float | None] = {
            "cpu_percent": self.cpu_percent,
            "memory_percent": self.memory_percent,
            "disk_percent": self.disk_percent,
        }
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
