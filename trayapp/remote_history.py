"""A remote machine's history window, read from Prometheus: its plots (``Series``), its rules and its latest sample.

Imports ``fleet`` (the HTTP client), ``storage.window_series`` (the Series and its binning), ``metrics``, ``model``, ``rules``; never Qt, pyarrow or pandas.
"""

# A range is read as the local window reads its tiers: bins of ``step`` seconds (a step that divides
# an hour, or a day beyond an hour, so the bins nest in the local hours and days the means are taken
# over), each bin's min, max, sum and count from ``min_over_time``, ``max_over_time``,
# ``sum_over_time`` and ``count_over_time`` with the step as range, evaluated at each bin's end. The
# bins then go through ``window_series.add_tier_curves``: the same bands, gap bridging and count-weighted
# hourly (daily) means as a local range. A stretch of at most ``RAW_UP_TO`` (Live, a deep zoom) shows
# the samples themselves (``fleet.remote_samples``), through ``window_series.add_curve``. Prometheus holds
# the samples it scraped: at its scrape interval, and as far back as its retention keeps them.

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from trayapp.fleet import FleetError, Prometheus, instant_sample, promql_string, range_points, remote_samples
from trayapp.storage.window_series import BINS, Series, add_curve, add_tier_curves, whole_periods_only
from trayapp.metrics import unit_of
from trayapp.model import GPU_METRICS, METRICS
from trayapp.model import GpuReading, Level, RuleResult, Sample
from trayapp.rules import Rule, parse_duration

# steps that divide an hour (so bins nest in local hours, also where the zone is off by half an
# hour), then steps that divide a day
STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 90, 120, 180, 240, 300, 360, 450, 600, 720, 900, 1200, 1800, 3600,
         7200, 10800, 14400, 21600, 43200, 86400)
RAW_UP_TO = 2 * 3600  # seconds: a stretch this short shows each scraped sample, not bins
RAW_STEPS = 3000  # query_range steps for such a stretch (each sample is taken once, whatever steps see it)
FUNCTIONS = ("min", "max", "sum", "count")
SERIES_LABEL = "trayapp_series"  # the metric name, kept in a label: ``*_over_time`` drops ``__name__``
_LEVELS = {-1: Level.UNKNOWN, 0: Level.OK, 1: Level.ORANGE, 2: Level.RED}


def nice_step(length: float, bins: int = BINS) -> int:
    """The smallest of ``STEPS`` that draws ``length`` seconds in at most ``bins`` bins."""
    wanted = length / bins
    return next((s for s in STEPS if s >= wanted), STEPS[-1])


def selector(name: str, instance: str, job: str) -> str:
    return f"{name}{{instance={promql_string(instance)},job={promql_string(job)}}}"


def sample_names() -> list[str]:
    """Every sample series a recorder serves (``metrics``' table), base then GPU."""
    return [info.prometheus for info in METRICS.values()] + [info.prometheus for info in GPU_METRICS.values()]


def bin_query(function: str, step: int, instance: str, job: str, names: list[str] | None = None) -> str:
    """One PromQL expression for ``function`` (min, max, sum, count) over each ``step`` of every
    sample series of the machine, each result keeping its series' name in ``SERIES_LABEL``."""
    parts = [f'label_replace({function}_over_time({selector(name, instance, job)}[{step}s]), "{SERIES_LABEL}", "{name}", "", "")'
             for name in (names or sample_names())]
    return " or ".join(parts)


def _column(labels: dict[str, Any], name: str) -> str | None:
    """The dataset column of a series: ``cpu_percent``, ``gpu0_util_percent``; None for another."""
    base = {info.prometheus: column for column, info in METRICS.items()}
    gpu = {info.prometheus: field for field, info in GPU_METRICS.items()}
    if name in base:
        return base[name]
    if name in gpu and str(labels.get("gpu", "")).isdigit():
        return f"gpu{labels['gpu']}_{gpu[name]}"
    return None


def series_from_bins(span: float, start: float, end: float, step: int, answers: dict[str, list[dict[str, Any]]]) -> Series:
    """The Series of ``[start, end]`` from the four range queries' answers (function → matrix),
    evaluated at ``origin + (i + 1) * step`` for bin ``i`` (``origin``: ``start`` floored to the
    step, as ``add_tier_curves`` bins)."""
    series = Series(span, start, end, tier=f"prometheus {step} s")
    origin = math.floor(start / step) * step
    n = max(1, math.floor((end - origin) / step) + 1)
    by_column: dict[str, dict[str, np.ndarray]] = {}
    for function in FUNCTIONS:
        for item in answers.get(function, ()):
            labels = item.get("metric") if isinstance(item.get("metric"), dict) else {}
            column = _column(labels, str(labels.get(SERIES_LABEL, "")))
            if column is None:
                continue
            arrays = by_column.setdefault(column, {f: np.full(n, np.nan) for f in FUNCTIONS})
            divisor = 1.0 if function == "count" else unit_of(column)[1]
            for t, v in range_points(item):
                i = int(round((t - origin) / step)) - 1
                if 0 <= i < n:
                    arrays[function][i] = v * divisor
    bins = origin + np.arange(n) * float(step)
    stats = {}
    for column, arrays in by_column.items():
        count = np.nan_to_num(arrays["count"], nan=0.0)
        ok = (count > 0) & np.isfinite(arrays["min"]) & np.isfinite(arrays["max"]) & np.isfinite(arrays["sum"])
        mean = np.where(ok, arrays["sum"] / np.where(ok, count, 1.0), np.nan)
        stats[column] = (arrays["min"], mean, arrays["max"], np.where(ok, count, 0.0))
    if stats:
        add_tier_curves(series, [(bins, stats)], float(step))
    return series


def read_series(server: Prometheus, instance: str, job: str, span: float, start: float, end: float) -> Series:
    """``[start, end]`` of the machine, ready to draw; FleetError."""
    t0 = time.perf_counter()
    if end - start <= RAW_UP_TO:
        stamps, columns = remote_samples(server, instance, job, start, end, most=RAW_STEPS)
        series = Series(span, start, end, tier="prometheus samples")
        t = np.asarray(stamps, dtype=float)
        series.rows = len(t)
        for column, values in columns.items():
            add_curve(series, column, t, np.array([np.nan if v is None else v for v in values], dtype=float))
    else:
        step = nice_step(end - start)
        origin = math.floor(start / step) * step
        n = max(1, math.floor((end - origin) / step) + 1)
        answers = {f: server.query_range(bin_query(f, step, instance, job), origin + step, origin + n * step, step) for f in FUNCTIONS}
        series = series_from_bins(span, start, end, step, answers)
    whole_periods_only(series, time.time())
    series.took = time.perf_counter() - t0
    return series


# ------------------------------------------------------------------- rules and the latest sample


def rules_from_vector(result: list[dict[str, Any]]) -> tuple[tuple[Rule, ...], tuple[RuleResult, ...]]:
    """The machine's rules and their verdicts from one instant query of its ``trayapp_rule_*``
    series (``metrics`` serves them): thresholds, averages, levels, coverage, samples; in the
    dataset's units. A rule without both thresholds is left out."""
    slots: dict[tuple[str, str], dict[str, Any]] = {}
    for item in result:
        labels = item.get("metric") if isinstance(item.get("metric"), dict) else {}
        name, metric, window = labels.get("__name__", ""), labels.get("metric"), labels.get("window")
        value = instant_sample(item)[1]
        if not isinstance(metric, str) or not isinstance(window, str) or value is None:
            continue
        slot = slots.setdefault((metric, window), {})
        if name.startswith("trayapp_rule_threshold_") and labels.get("level") in ("orange", "red"):
            slot[labels["level"]] = value * unit_of(metric)[1]
            slot["direction"] = labels.get("direction", "above")
        elif name.startswith("trayapp_rule_average_"):
            slot["average"] = value * unit_of(metric)[1]
        elif name == "trayapp_rule_level":
            slot["level"] = _LEVELS.get(int(value), Level.UNKNOWN)
        elif name == "trayapp_rule_coverage_seconds":
            slot["coverage"] = value
        elif name == "trayapp_rule_samples":
            slot["samples"] = int(value)
    rules, results = [], []
    for (metric, window), slot in sorted(slots.items()):
        if "orange" not in slot or "red" not in slot:
            continue
        try:
            seconds = parse_duration(window.split("#", 1)[0])
        except ValueError:
            continue
        direction = slot["direction"] if slot["direction"] in ("above", "below") else "above"
        rules.append(Rule(metric, seconds, slot["orange"], slot["red"], direction=direction))
        results.append(RuleResult(metric, seconds, slot.get("average"), slot.get("samples", 0), slot.get("coverage", 0.0),
                                  slot.get("level", Level.UNKNOWN), slot["orange"], slot["red"], direction))
    return tuple(rules), tuple(results)


def sample_from_vector(result: list[dict[str, Any]]) -> Sample | None:
    """The machine's latest sample from one instant query of its sample series; None when it
    serves none (down, or not sampling yet)."""
    values: dict[str, float] = {}
    gpus: dict[int, dict[str, Any]] = {}
    stamp = None
    base = {info.prometheus: column for column, info in METRICS.items()}
    gpu_fields = {info.prometheus: field for field, info in GPU_METRICS.items()}
    for item in result:
        labels = item.get("metric") if isinstance(item.get("metric"), dict) else {}
        name = labels.get("__name__", "")
        value = instant_sample(item)[1]
        if value is None:
            continue
        if name == "trayapp_last_sample_timestamp_seconds":
            stamp = value
        elif name in base:
            values[base[name]] = value * unit_of(base[name])[1]
        elif name in gpu_fields and str(labels.get("gpu", "")).isdigit():
            field = gpu_fields[name]
            slot = gpus.setdefault(int(labels["gpu"]), {"name": labels.get("name") or None})
            slot[field] = value * unit_of(field)[1]
    if stamp is None and not values:
        return None
    moment = datetime.fromtimestamp(stamp, timezone.utc) if stamp is not None else datetime.now(timezone.utc)
    readings = tuple(GpuReading(index, **fields) for index, fields in sorted(gpus.items()))
    return Sample(moment, values.pop("cpu_percent", None), values.pop("memory_percent", None), values.pop("disk_percent", None),
                  readings, **values)


@dataclass(frozen=True)
class RemoteRead:
    """What the window draws for a remote machine: the range, its rules, its latest sample."""

    series: Series
    rules: tuple[Rule, ...]
    results: tuple[RuleResult, ...]
    sample: Sample | None


def read_machine(server: Prometheus, instance: str, job: str, span: float, start: float, end: float) -> RemoteRead:
    """Everything the window shows of a remote machine for ``[start, end]``; FleetError."""
    _, rule_vector = server.query(
        f'{{__name__=~"trayapp_rule_(threshold|average)_.+|trayapp_rule_(level|coverage_seconds|samples)",'
        f"instance={promql_string(instance)},job={promql_string(job)}}}")
    _, latest = server.query(
        f'{{__name__=~"trayapp_.+",__name__!~"trayapp_(rule_.+|level|build_info)",'
        f"instance={promql_string(instance)},job={promql_string(job)}}}")
    series = read_series(server, instance, job, span, start, end)
    rules, results = rules_from_vector(rule_vector)
    return RemoteRead(series, rules, results, sample_from_vector(latest))

