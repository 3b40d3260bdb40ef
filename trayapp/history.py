"""Reading history, for whoever asks: raw samples (``read``, ``samples``) for the rule windows,
``status`` and export, and for the window a ``Series`` read from the tier that fits the range
(raw samples, or the minute or hour rollups), binned and averaged, ready to draw. No Qt.

Imports ``files`` and ``rollups`` (numpy, pyarrow; never pandas on these paths) and nothing that
imports this module back: the store's writer and the dataset jobs call in here, not the reverse.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from trayapp.files import (
    TIMESTAMP, _in_range, _local_date, concat, day_path, day_files, read_csv, read_day_file, release_memory, unique_sorted,
)
from trayapp.model import GPU_FIELDS

BINS = 1500  # min/max pairs per curve: enough for any screen, cheap to draw


# ----------------------------------------------------------------- raw samples


def read(data_dir: str | Path, start: datetime | None = None, end: datetime | None = None, columns: Iterable[str] | None = None) -> Any:
    """Samples with ``start < timestamp <= end`` from Parquet and the CSV together (a pyarrow Table).

    Only the day files the range needs are opened, so the cost follows the range, not the
    history. Unreadable files and lines are skipped with one warning each. The result is
    sorted by time, with one row per timestamp, and ``timestamp`` as ``timestamp[us, UTC]``.
    """
    data_dir = Path(data_dir)
    wanted = None if columns is None else [TIMESTAMP, *[c for c in columns if c != TIMESTAMP]]
    # The CSV first: a rollover writes the day file before it trims the CSV, so reading in
    # this order can see a row twice (dropped below) but never miss one.
    from trayapp.files import CSV_DIR, CSV_NAME

    csv_table = read_csv(data_dir / CSV_DIR / CSV_NAME, wanted)
    parts = []
    for path in _paths_for(data_dir, start, end):
        table = read_day_file(path, wanted, start, end)
        if table is not None:
            parts.append(_in_range(table, start, end))
    if csv_table is not None:
        parts.append(_in_range(csv_table, start, end))  # today's rows come last in time
    return unique_sorted(concat(parts, wanted))


def samples(data_dir: str | Path, start: datetime, end: datetime, metrics: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``read`` as numpy: epoch seconds and one float64 array (NaN for null) per metric."""
    table = read(data_dir, start, end, columns=metrics)
    t = table.column(TIMESTAMP).cast("int64").to_numpy() / 1e6
    columns = {name: table.column(name).to_numpy(zero_copy_only=False).astype("float64") for name in metrics}
    return t, columns


def _paths_for(data_dir: Path, start: datetime | None, end: datetime | None) -> list[Path]:
    if start is None:
        return [path for day, path in sorted(day_files(data_dir)) if end is None or day <= _local_date(end) + timedelta(days=1)]
    # one day of margin each side: a row's file is its local day when written, and the
    # zone may have changed since (travel, DST rules)
    first = _local_date(start) - timedelta(days=1)
    last = _local_date(end or datetime.now(timezone.utc)) + timedelta(days=1)
    paths = []
    day = first
    while day <= last:
        path = day_path(data_dir, day)
        if path.exists():
            paths.append(path)
        day += timedelta(days=1)
    return paths


# ----------------------------------------------------------------- the window


def break_gaps(t: np.ndarray, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Insert a NaN where samples are much further apart than usual, so a gap shows as a gap."""
    if len(t) < 3:
        return t, columns
    dt = np.diff(t)
    limit = max(5 * float(np.median(dt)), 10.0)
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
    centres = start + (np.arange(bins) + 0.5) * width
    x = np.repeat(centres, 2)
    x[0::2] -= width / 4
    x[1::2] += width / 4
    y = np.empty(bins * 2)
    y[0::2], y[1::2] = lo, hi
    return x, y


def hourly_means(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean of each local clock hour that has data, at the hour's middle."""
    ok = ~np.isnan(v)
    if not ok.any():
        return np.empty(0), np.empty(0)
    offset = datetime.now().astimezone().utcoffset().total_seconds()  # type: ignore[union-attr]
    hours = np.floor((t[ok] + offset) / 3600).astype("int64")
    first = hours.min()
    idx = hours - first
    sums = np.bincount(idx, weights=v[ok])
    counts = np.bincount(idx)
    means = np.full(len(counts), np.nan)
    have = counts > 0
    means[have] = sums[have] / counts[have]
    x = (np.arange(len(counts)) + first) * 3600 - offset + 1800
    return x.astype("float64"), means  # an hour without data is NaN: the line breaks there


@dataclass
class Series:
    """What one range needs to draw, prepared off the GUI thread."""

    span: float
    start: float
    end: float
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    hourly: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    binned: set[str] = field(default_factory=set)  # curves that are min/max pairs per bin (a band)
    rows: int = 0
    took: float = 0.0

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(meta, arrays) to send from a child process; ``from_arrays`` is the inverse."""
        arrays: dict[str, np.ndarray] = {}
        for kind, data in (("c", self.curves), ("h", self.hourly)):
            for name, (x, y) in data.items():
                arrays[f"{kind}x_{name}"], arrays[f"{kind}y_{name}"] = x, y
        meta = {"span": self.span, "start": self.start, "end": self.end, "rows": self.rows, "took": self.took,
                "curves": list(self.curves), "hourly": list(self.hourly), "binned": sorted(self.binned)}
        return meta, arrays

    @classmethod
    def from_arrays(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "Series":
        series = cls(meta["span"], meta["start"], meta["end"], rows=meta["rows"], took=meta["took"])
        series.curves = {n: (arrays[f"cx_{n}"], arrays[f"cy_{n}"]) for n in meta["curves"]}
        series.hourly = {n: (arrays[f"hx_{n}"], arrays[f"hy_{n}"]) for n in meta["hourly"]}
        series.binned = set(meta.get("binned", ()))
        return series


def prepare_history(data_dir: Path, span: float, now: datetime | None = None, start: datetime | None = None) -> Series:
    """Everything on disk in the last ``span`` seconds (or from ``start`` to ``now``: a zoom), ready to draw."""
    t0 = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    start = start or now - timedelta(seconds=span)
    table = read(data_dir, start, now)
    t = table.column("timestamp").cast("int64").to_numpy() / 1e6
    series = Series(span, start.timestamp(), now.timestamp(), rows=table.num_rows)
    for name in table.column_names:
        if name != "timestamp":
            add_curve(series, name, t, table.column(name).to_numpy(zero_copy_only=False).astype("float64"))
    del table
    release_memory()
    series.took = time.perf_counter() - t0
    return series


def series_from_memory(recent: dict[str, tuple[Any, Any]], span: float, now: float) -> Series:
    """The same from samples already in memory (the rule windows), for a first paint."""
    t0 = time.perf_counter()
    series = Series(span, now - span, now)
    for name, (t, v) in recent.items():
        t = np.frombuffer(t, dtype="float64")
        v = np.frombuffer(v, dtype="float64")
        series.rows = max(series.rows, len(t))
        add_curve(series, name, t, v)
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
    series.hourly[name] = hourly_means(t, v)


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
