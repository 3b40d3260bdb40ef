"""What the history window draws, read from storage: a ``Series`` of the range, from the tier that
fits it (raw samples, minute or hour bins), binned to the plot's width with min/max bands and
hourly or daily means. No Qt.

Imports numpy, ``ranges`` (the reading) and ``bins``; never Arrow itself: a range whose numpy
copies are fresh is drawn without it.
"""

from __future__ import annotations

import logging
import itertools
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from trayapp.heap import release_memory
from trayapp.model import GPU_FIELDS
from trayapp.storage.bins import TIERS, MinuteBins, median
from trayapp.storage.layout import TIMESTAMP, local_zone, utc_offsets
from trayapp.storage.ranges import iter_tier_parts, parts_after_minutes, read, tier_zone_parts
from trayapp.storage.rows_file import RowsReader, RowsView, rows_reader
from trayapp.storage.tables import as_numpy

log = logging.getLogger("trayapp.storage")

BINS = 1500  # min/max pairs per curve: enough for any screen, cheap to draw


def break_gaps(t: np.ndarray, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Insert a NaN where samples are much further apart than usual, so a gap shows as a gap."""
    if len(t) < 3:
        return t, columns
    dt = np.diff(t)
    limit = max(5 * median(dt), 10.0)
    cuts = np.nonzero(dt > limit)[0]
    if not len(cuts):
        return t, columns
    t2 = np.insert(t, cuts + 1, t[cuts] + dt[cuts] / 2)
    return t2, {k: np.insert(v, cuts + 1, np.nan) for k, v in columns.items()}


def peaks(t: np.ndarray, v: np.ndarray, start: float, end: float, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of each time bin (so spikes survive), NaN for an empty bin (a gap)."""
    width = (end - start) / bins
    idx = np.clip(((t - start) / width).astype("int64"), 0, bins - 1)
    ok = ~np.isnan(v)
    lo = np.full(bins, np.nan)
    hi = np.full(bins, np.nan)
    if ok.any():
        np.fmin.at(lo, idx[ok], v[ok])
        np.fmax.at(hi, idx[ok], v[ok])
    return min_max_pairs(start + (np.arange(bins) + 0.5) * width, width, lo, hi)


def min_max_pairs(centres: np.ndarray, width: float, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bins as (x, y) pairs: each bin's min a quarter bin left of its centre, its max a quarter
    right (the window draws the band between them)."""
    x = np.repeat(centres, 2)
    x[0::2] -= width / 4
    x[1::2] += width / 4
    y = np.empty(len(centres) * 2)
    y[0::2], y[1::2] = lo, hi
    return x, y


def hourly_means(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean of each local clock hour that has data, at the hour's middle (NaN for an hour
    without data: the line breaks there). ``t`` sorted.

    Each sample's hour is found with the zone's offset at its own time, so a range across a change
    of offset is binned right on both sides: India's hours start at :30 UTC, Lord Howe's move by
    half an hour with its DST, and the hour a clock repeats in autumn stays two hours."""
    ok = ~np.isnan(v)
    if not ok.any():
        return np.empty(0), np.empty(0)
    tt, vv = t[ok], v[ok]
    zone = local_zone()
    ends = utc_offsets(np.array([tt[0], tt[-1]]), zone)
    if ends[0] == ends[1]:  # the usual case, two look-ups: every hour from the first to the last
        start = tt[0] - np.mod(tt[0] + ends[0], 3600)  # UTC start of the first sample's local hour
        idx = np.floor((tt - start) / 3600).astype("int64")
        sums = np.bincount(idx, weights=vv)
        counts = np.bincount(idx)
        x = start + np.arange(len(counts)) * 3600.0 + 1800
    else:  # a change of offset in the range: hours keyed by their UTC start
        starts = tt - np.mod(tt + utc_offsets(tt, zone), 3600)
        keys, idx = np.unique(starts, return_inverse=True)
        sums = np.bincount(idx, weights=vv)
        counts = np.bincount(idx)
        x = keys + 1800
        gaps = np.flatnonzero(np.diff(keys) > 3600)
        x = np.insert(x, gaps + 1, x[gaps] + 1800)
        sums = np.insert(sums, gaps + 1, 0.0)
        counts = np.insert(counts, gaps + 1, 0)
    means = np.full(len(counts), np.nan)
    have = counts > 0
    means[have] = sums[have] / counts[have]
    return x.astype("float64"), means


@dataclass
class Series:
    """What one range needs to draw, prepared off the GUI thread."""

    span: float
    start: float
    end: float
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    means: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # the mean per period, at its middle
    binned: set[str] = field(default_factory=set)  # curves that are min/max pairs per bin (a band)
    rows: int = 0
    took: float = 0.0
    tier: str = "raw"  # where it was read from: raw samples, or the minute or hour rollups
    mean_period: str = "hourly"  # the means' period: hourly, or daily for a range read from hours
    note: str = ""  # what a person should know of how it was read (minute bins, days left out)


TIER_SECONDS = {"minute": 60, "hour": 3600}


def pick_tier(length: float, bins: int = BINS) -> str:
    """The coarsest tier whose bins are no wider than one of the ``bins`` a range is drawn in:
    raw samples for a zoom or the live view (under 25 h), minutes up to 62 days, hours beyond."""
    fitting = [tier for tier, width in TIER_SECONDS.items() if width <= length / bins]
    return fitting[-1] if fitting else "raw"


def prepare_history(
    data_dir: Path, span: float, now: datetime | None = None, start: datetime | None = None, tiers: bool = True,
    minutes: MinuteBins | None = None, rows: RowsView | None = None,
) -> Series:
    """Everything on disk in the last ``span`` seconds (or from ``start`` to ``now``: a zoom), ready
    to draw, read from the tier that fits the range (``tiers=False``: always from raw samples).

    ``minutes``: the writer's minute bins of its CSV (``Store.minutes``), when this process is the
    writer. Then nothing is read with Arrow: a tiered range reads today from the minute bins and
    the rest from the tiers' numpy copies; a range short enough for raw samples reads them from
    ``rows`` (the writer's rows file, ``RowsFile.view``) where it holds them, and minute bins
    before that (the series says so in ``note``). A day whose copy is missing or stale is left
    out, and ``note`` says that too; the recorder's next start rebuilds it."""
    t0 = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    start = start or now - timedelta(seconds=span)
    tier = pick_tier((now - start).total_seconds()) if tiers else "raw"
    series = Series(span, start.timestamp(), now.timestamp(), tier=tier)
    if minutes is not None:
        _writer_read(series, Path(data_dir), start, now, minutes, rows)
    elif tier == "raw":
        table = read(data_dir, start, now)
        t, columns = as_numpy(table, [n for n in table.column_names if n != TIMESTAMP])  # not to_numpy: it imports pandas
        series.rows = table.num_rows
        for name, values in columns.items():
            add_curve(series, name, t, values)
        del table
        release_memory()
    else:
        recent = minutes.snapshot() if minutes is not None else None
        add_tier_curves(series, iter_tier_parts(data_dir, tier, start, now, recent=recent), TIER_SECONDS[tier])
    whole_periods_only(series, time.time())
    series.took = time.perf_counter() - t0
    return series


def _writer_read(series: Series, data_dir: Path, start: datetime, end: datetime, minutes: MinuteBins, rows: RowsView | None) -> None:
    """``prepare_history`` in the writer's process, where Arrow is never loaded."""
    start_us = int(start.timestamp() * 1e6)
    end_us = int(end.timestamp() * 1e6) + 1
    missing: list[date] = []
    raw = rows_reader(rows, start_us + 1, end_us) if series.tier == "raw" else None  # (start, end], as `read`
    try:
        _draw_read(series, data_dir, start_us, end_us, minutes, raw, missing)
    except OSError as exc:  # the rows file failed half way: minutes, as when it cannot be read at all
        log.warning("the rows file could not be read (%s); minute bins are shown instead", exc)
        series.curves.clear()
        series.means.clear()
        series.binned.clear()
        series.tier, series.rows = "raw", 0
        _draw_read(series, data_dir, start_us, end_us, minutes, None, missing)
    finally:
        if raw is not None:
            raw.close()
    if missing:
        days = sorted(set(missing))
        series.note = "; ".join(filter(None, [series.note, f"{len(days)} day(s) not shown yet ({days[0]:%d %b}"
                                              + (f"–{days[-1]:%d %b}" if len(days) > 1 else "") + "): their copies are rebuilt at the next start"]))


def _draw_read(series: Series, data_dir: Path, start_us: int, end_us: int, minutes: MinuteBins, raw: "RowsReader | None",
               missing: list[date]) -> None:
    """``_writer_read``'s curves: from minute bins and tiers, or raw rows and the minutes before them."""
    if raw is None:
        tier = "minute" if series.tier == "raw" else series.tier
        if series.tier == "raw":  # no raw copy to be trusted: minutes, and the screen says so
            series.note = "minute bins (today's raw samples could not be read)"
        recent = minutes.snapshot()
        add_tier_curves(series, parts_after_minutes(data_dir, tier, start_us // TIERS[tier] * TIERS[tier], end_us, None, recent, missing),
                        TIER_SECONDS[tier])
        series.tier = tier
    else:
        before = []  # the minutes before the rows file's first row, from the minute tier's copies
        if start_us < raw.first_us:
            before = list(tier_zone_parts(data_dir, "minute", start_us // TIERS["minute"] * TIERS["minute"], raw.first_us, None, missing))
        if not before and raw.count <= 2 * BINS:  # few samples: the line through each of them
            t, columns = raw.arrays()
            series.rows = len(t)
            for name, values in columns.items():
                add_curve(series, name, t, values)
        else:
            add_tier_curves(series, itertools.chain(before, raw.parts()), 60.0 if before else 1.0)  # block by block: never the whole range at once
            if before and raw.count:
                series.tier = "minute+raw"
                series.note = f"minute bins before {clock_or_day(raw.first_us / 1e6, day=True)}, raw samples from then on"
            elif before:
                series.tier = "minute"
                series.note = "minute bins (raw samples are kept for today only)"


def clock_or_day(moment: float, day: bool = False) -> str:
    """``14:02`` today, ``Sat 28 Nov 23:58`` another day (local time); ``day``: the day always."""
    local = datetime.fromtimestamp(moment)
    return local.strftime("%H:%M" if local.date() == datetime.now().date() and not day else "%a %d %b %H:%M")


ENDS_NOW = 120.0  # seconds: a range ending this close to now ends now (its read took a moment)


def whole_periods_only(series: Series, now: float) -> None:
    """Keep a mean only for a local hour (day) the range holds whole. The one cut by the range's
    start, or by a zoom's end while time has gone on past it, was the mean of its part inside
    only: a 36 h view's line began at 48 where every whole hour was 29.5. The period still under
    way at the end of a range stays: its mean so far."""
    period = 86400.0 if series.mean_period == "daily" else 3600.0  # a day of a DST change is off by its hour
    points = [x[np.isfinite(x)] for x, _ in series.means.values()]
    moments = np.unique(np.concatenate(points)) if points else np.empty(0)
    if not len(moments):
        return
    zone_offsets = utc_offsets(moments, local_zone())  # once for every metric: they share their periods
    for name, (x, means) in list(series.means.items()):
        known = np.isfinite(x) & np.isfinite(means)
        if not known.any():
            continue
        offsets = np.zeros(len(x))
        offsets[known] = zone_offsets[np.searchsorted(moments, x[known])]
        begins = np.floor((x + offsets) / period) * period - offsets  # NaN where x is NaN: compares False
        ends = begins + period
        # cut by the start; or by the end, unless the range ends now and the period is the one under way
        cut = known & ((begins < series.start) | ((ends > series.end) & ((ends <= now) | (series.end < now - ENDS_NOW))))
        if cut.any():
            means = means.copy()
            means[cut] = np.nan
            series.means[name] = (x, means)


class _MetricFold:
    """One metric's drawn bins and local periods, folded in part by part."""

    def __init__(self, n: int, periods: int) -> None:
        self.lo = np.full(n, np.nan)
        self.hi = np.full(n, np.nan)
        self.sums = np.zeros(periods)
        self.counts = np.zeros(periods)
        self.first = np.full(periods, np.inf)  # each period's first and last tier bin
        self.last = np.full(periods, -np.inf)
        self.rows = 0
        self.spacing: list[tuple[int, float, float]] = []  # (bins, median step, median count) a part


def add_tier_curves(series: Series, parts: Iterable[tuple[np.ndarray, dict]], width: float) -> None:
    """Each metric's band from tier bins (min and max of the ``width``-second bins that fall in
    each drawn bin: whole tier bins only, so no bin is counted twice) and its means per local hour
    (per local day when the bins are hours), weighted by sample counts so they are exact. The parts
    (``iter_tier_parts``) may share a bin: minima, maxima and weighted sums add up the same. Each
    part is folded in and let go before the next is read: a month costs one day's memory."""
    span = max(series.end - series.start, width)
    factor = max(1, math.ceil(span / width / BINS))
    step = factor * width
    origin = math.floor(series.start / step) * step
    n = max(1, math.floor((series.end - origin) / step) + 1)  # a raw sample at the end itself has a bin
    period = 86400 if width >= 3600 else 3600
    series.mean_period = "daily" if period == 86400 else "hourly"
    zone = local_zone()
    first_period = math.floor((origin - 86400) / period)  # local periods of any bin drawn, with a day's margin for the zone
    periods = math.ceil((origin + n * step + 86400) / period) - first_period + 1
    folded: dict[str, _MetricFold] = {}
    for bins, stats in parts:
        idx = ((bins - origin) // step).astype(np.int64)
        inside = (idx >= 0) & (idx < n)
        local = ((bins + utc_offsets(bins, zone)) // period).astype(np.int64) - first_period
        for name, (low, mean, high, count) in stats.items():
            ok = inside & (count > 0)
            if not ok.any():
                continue
            f = folded.get(name) or folded.setdefault(name, _MetricFold(n, periods))
            np.fmin.at(f.lo, idx[ok], low[ok])
            np.fmax.at(f.hi, idx[ok], high[ok])
            b, lp, c = bins[ok], local[ok], count[ok]
            f.sums += np.bincount(lp, weights=mean[ok] * c, minlength=periods)
            f.counts += np.bincount(lp, weights=c, minlength=periods)
            np.minimum.at(f.first, lp, b)
            np.maximum.at(f.last, lp, b)
            f.rows += int(c.sum())
            steps = np.diff(b)
            steps = steps[steps > 0]
            f.spacing.append((len(b), median(steps) if len(steps) else step, median(c)))
        del bins, stats, idx, inside, local
    centres = origin + (np.arange(n) + 0.5) * step
    for name, f in folded.items():
        series.rows = max(series.rows, f.rows)
        _, typical_step, typical_count = max(f.spacing)  # the part with the most bins speaks for the range
        _bridge(f.lo, f.hi, typical_step / max(1.0, typical_count), step)
        series.curves[name] = min_max_pairs(centres, step, f.lo, f.hi)
        series.binned.add(name)
        series.means[name] = _period_means(f, width)


def _bridge(lo: np.ndarray, hi: np.ndarray, spacing: float, step: float) -> None:
    """Fill drawn bins that are empty only because samples are sparser than the bins (a 10-minute
    interval drawn in 7-minute bins, ``spacing`` apart), so the band stays a band; a gap longer
    than five sample intervals (the machine was off) stays a gap, as ``break_gaps`` does for raw
    samples."""
    have = ~np.isnan(lo)
    filled = np.nonzero(have)[0]
    if len(filled) < 2 or filled[-1] - filled[0] + 1 == len(filled):
        return  # no empty bin between two filled ones
    most = math.ceil(5 * spacing / step)  # empty bins in a row that are still "no gap"
    empty = np.nonzero(~have)[0]
    after = np.searchsorted(filled, empty)  # the next filled bin's position in ``filled``
    inner = (after > 0) & (after < len(filled))
    empty, after = empty[inner], after[inner]
    short = filled[after] - filled[after - 1] - 1 <= most
    empty = empty[short]
    lo[empty] = np.interp(empty, filled, lo[filled])
    hi[empty] = np.interp(empty, filled, hi[filled])


def _period_means(f: _MetricFold, width: float) -> tuple[np.ndarray, np.ndarray]:
    """The count-weighted mean of each local period that has data, at the middle of its bins; a
    period with no data between two that have some is NaN, so the line breaks there."""
    have = np.nonzero(f.counts > 0)[0]
    if not len(have):
        return np.empty(0), np.empty(0)
    window = slice(have[0], have[-1] + 1)
    counts, sums, first, last = f.counts[window], f.sums[window], f.first[window], f.last[window]
    have = counts > 0
    means = np.full(len(counts), np.nan)
    means[have] = sums[have] / counts[have]
    x = np.full(len(counts), np.nan)
    x[have] = (first[have] + last[have] + width) / 2
    if not have.all():  # a period without data lies between two with some: its NaN goes between them
        gaps = np.nonzero(~have)[0]
        x[gaps] = np.interp(gaps, np.nonzero(have)[0], x[have])
    return x, means


def series_from_memory(recent: dict[str, tuple[Any, Any]], span: float, now: float) -> Series:
    """The same from samples already in memory (the rule windows), for a first paint."""
    t0 = time.perf_counter()
    series = Series(span, now - span, now)
    for name, (t, v) in recent.items():
        t = np.frombuffer(t, dtype="float64")
        v = np.frombuffer(v, dtype="float64")
        series.rows = max(series.rows, len(t))
        add_curve(series, name, t, v)
    whole_periods_only(series, now)  # as the read from disk that replaces this first paint will
    series.took = time.perf_counter() - t0
    return series


def add_curve(series: Series, name: str, t: np.ndarray, v: np.ndarray) -> None:
    """One metric's curve (min/max per bin when there are many samples) and hourly means."""
    if not len(v) or np.isnan(v).all():
        return
    if len(t) > 2 * BINS:
        series.curves[name] = peaks(t, v, series.start, series.end)
        series.binned.add(name)
    else:
        tt, cols = break_gaps(t, {name: v})
        series.curves[name] = (tt, cols[name])
    series.means[name] = hourly_means(t, v)


PLOT_ORDER = (
    "cpu_percent", "cpu_core_max_percent", "load_percent", "memory_percent", "swap_percent", "disk_percent",
    "disk_read_bytes_per_s", "disk_write_bytes_per_s", "net_recv_bytes_per_s", "net_sent_bytes_per_s",
    "cpu_temperature_c", "hottest_temperature_c", "fan_rpm", "battery_percent",
)  # battery_plugged, a 0/1 state, is shown in the Now panel, not plotted


def plotted_columns(names: Sequence[str]) -> list[str]:
    """Which columns get a plot, in order: CPU and its kin, memory, disk, network, sensors, then
    each GPU's fields."""
    order = [c for c in PLOT_ORDER if c in names]
    gpus = sorted({n.split("_", 1)[0] for n in names if n.startswith("gpu") and "_" in n})
    for gpu in gpus:
        order += [f"{gpu}_{f}" for f in GPU_FIELDS if f"{gpu}_{f}" in names]
    return order
