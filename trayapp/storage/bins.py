"""Binned statistics in numpy: min / mean / max / count per UTC-aligned bin, how bins combine
(means exactly, through their counts), and the minute bins a recorder keeps of its CSV as it writes.

Imports numpy and the standard library only: the tray app's window and its midnight bin here.
- ``aggregate``, ``combine``, ``merge_parts``, ``in_range``: the maths of the rollup tiers.
- ``stack_bins`` / ``unstack_bins``: bins as one float64 array (a copy's content, a child's answer).
- ``MinuteBins``: the CSV's rows as minute bins, kept by the writer as it appends (RRDtool's
  consolidation at write time), so the window reads today without parsing the CSV.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

TIERS = {"minute": 60_000_000, "hour": 3_600_000_000}  # bin width in microseconds

Stats = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # min, mean, max (NaN = none), count


# ------------------------------------------------------------ aggregation


def median(values: Any) -> float:
    """The median of a non-empty array without NaN. ``np.median`` imports numpy.ma (for a check
    this code never needs) in every process that calls it."""
    values = np.asarray(values, dtype=np.float64)
    half = len(values) // 2
    if len(values) % 2:
        return float(np.partition(values, half)[half])
    pair = np.partition(values, [half - 1, half])
    return float((pair[half - 1] + pair[half]) / 2)


def aggregate(ts_us: np.ndarray, values: dict[str, np.ndarray], width_us: int) -> tuple[np.ndarray, dict[str, Stats]]:
    """Bin raw samples (int64 µs, float values with NaN for none) into UTC-aligned bins: each
    sample is a bin of its own (min = mean = max = the value, count 1, or 0 when not finite),
    folded by ``combine`` like any finer tier."""
    per_sample: dict[str, Stats] = {}
    for name, raw in values.items():
        v = np.asarray(raw, dtype=np.float64)
        ok = np.isfinite(v)  # NaN and ±inf are "not available", as in the store
        v = np.where(ok, v, np.nan)
        per_sample[name] = (v, v, v, ok.astype(np.int64))
    return combine(ts_us, per_sample, width_us)


def combine(bins_us: np.ndarray, stats: dict[str, Stats], width_us: int) -> tuple[np.ndarray, dict[str, Stats]]:
    """Fold bins (of any finer or equal width, in any order, repeats allowed) into ``width_us`` bins;
    means combine exactly through their counts."""
    bins_us = np.asarray(bins_us, dtype=np.int64)
    order = np.argsort(bins_us, kind="stable")
    bins = (bins_us[order] // width_us) * width_us
    if not len(bins):
        return bins, {name: empty_stats() for name in stats}
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    out: dict[str, Stats] = {}
    for name, (low, mean, high, count) in stats.items():
        low, mean, high, count = low[order], mean[order], high[order], count[order]
        some = count > 0
        total = np.add.reduceat(np.where(some, mean * count, 0.0), starts)
        n = np.add.reduceat(count, starts)
        lo = np.minimum.reduceat(np.where(some & ~np.isnan(low), low, np.inf), starts)
        hi = np.maximum.reduceat(np.where(some & ~np.isnan(high), high, -np.inf), starts)
        out[name] = _finish(lo, total, hi, n)
    return bins[starts], out


def _finish(low: np.ndarray, total: np.ndarray, high: np.ndarray, count: np.ndarray) -> Stats:
    none = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(none, np.nan, total / np.maximum(count, 1))
    return np.where(none, np.nan, low), mean, np.where(none, np.nan, high), count.astype(np.int64)


def empty_stats() -> Stats:
    return np.empty(0), np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)


def nan_stats(n: int) -> Stats:
    nan = np.full(n, np.nan)
    return nan, nan.copy(), nan.copy(), np.zeros(n, dtype=np.int64)


def concat_parts(parts: list[tuple[np.ndarray, dict[str, Stats]]], names: list[str]) -> tuple[np.ndarray, dict[str, Stats]]:
    """Bins of several files end to end, each metric's stats beside them (empty where a file
    lacks the metric: a GPU that came later)."""
    bins = np.concatenate([b for b, _ in parts])
    stats: dict[str, Stats] = {}
    for name in names:
        cols = [s[name] if name in s else nan_stats(len(b)) for b, s in parts]
        stats[name] = tuple(np.concatenate([c[i] for c in cols]) for i in range(4))  # type: ignore[assignment]
    return bins, stats


def merge_parts(parts: list[tuple[np.ndarray, dict[str, Stats]]], names: list[str], width: int) -> tuple[np.ndarray, dict[str, Stats]]:
    """Parts (bin starts in µs) as one set of bins in order, a bin two parts share combined;
    returns bin starts in epoch seconds."""
    if not parts:
        return np.empty(0), {n: empty_stats() for n in names}
    if len(parts) == 1 and all(n in parts[0][1] for n in names):
        bins, stats = parts[0]  # one part: no copy
        stats = {n: stats[n] for n in names}
    else:
        bins, stats = concat_parts(parts, names)
    sorted_unique = len(bins) < 2 or bool(np.all(bins[1:] > bins[:-1]))
    if not sorted_unique:  # a bin two files share (a :30 zone's hour across a month's end)
        bins, stats = combine(bins, stats, width)
    return bins / 1e6, stats


def in_range(bins: np.ndarray, stats: dict[str, Stats], start_us: int, end_us: int) -> tuple[np.ndarray, dict[str, Stats]]:
    """The bins that start in ``[start_us, end_us)``: a slice (no copy) when they are in order."""
    if len(bins) < 2 or bool(np.all(bins[1:] > bins[:-1])):
        lo, hi = np.searchsorted(bins, [start_us, end_us])
        if (lo, hi) == (0, len(bins)):
            return bins, stats
        return bins[lo:hi], {n: tuple(a[lo:hi] for a in s) for n, s in stats.items()}  # type: ignore[misc]
    keep = (bins >= start_us) & (bins < end_us)
    return bins[keep], {n: tuple(a[keep] for a in s) for n, s in stats.items()}  # type: ignore[misc]


# ------------------------------------------------------------ bins as one array


def stack_bins(bins_us: np.ndarray, stats: dict[str, Stats]) -> tuple[list[str], np.ndarray]:
    """Bins as one float64 array: row 0 the bin starts in µs (exact below 2**53), then min,
    mean, max and count of each metric; with the metric names."""
    names = list(stats)
    table = np.empty((1 + 4 * len(names), len(bins_us)))
    table[0] = bins_us
    for i, name in enumerate(names):
        for j in range(4):
            table[1 + 4 * i + j] = stats[name][j]
    return names, table


def unstack_bins(table: np.ndarray, names: list[str], metrics: list[str] | None = None) -> tuple[np.ndarray, dict[str, Stats]]:
    """``stack_bins`` undone (views, no copy, but the counts); a metric not there is all NaN."""
    bins = table[0].astype(np.int64)
    index = {name: i for i, name in enumerate(names)}
    stats: dict[str, Stats] = {}
    for name in names if metrics is None else metrics:
        i = index.get(name)
        if i is None:
            stats[name] = nan_stats(len(bins))
        else:
            r = 1 + 4 * i
            stats[name] = (table[r], table[r + 1], table[r + 2], table[r + 3].astype(np.int64))
    return bins, stats


# ------------------------------------------------------------ the CSV's rows, as minutes


class MinuteBins:
    """The rows a writer has in its CSV, as minute bins per metric, kept as it appends: the
    window reads today from here instead of parsing the CSV. Thread-safe: the sampler adds,
    the window's reader takes a ``snapshot``."""

    WIDTH = TIERS["minute"]
    _EMPTY = (np.inf, 0.0, -np.inf, 0.0)  # min, sum, max, count of a bin with no value

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: list[str] = []
        self._bins = np.empty(0, dtype=np.int64)  # bin starts, µs, as they came (normally rising)
        self._cells = np.empty((0, 0, 4))  # [bin, metric] -> min, sum, max, count
        self._n = 0

    def seed(self, bins_us: np.ndarray, stats: dict[str, Stats]) -> None:
        """Start from the CSV as it was read (its rows binned by ``aggregate``)."""
        with self._lock:
            self._names = list(stats)
            n = len(bins_us)
            self._bins = np.array(bins_us, dtype=np.int64)
            self._cells = np.empty((n, len(self._names), 4))
            self._cells[:] = self._EMPTY
            for i, name in enumerate(self._names):
                lo, mean, hi, count = stats[name]
                some = np.asarray(count) > 0
                self._cells[some, i, 0] = lo[some]
                self._cells[some, i, 1] = mean[some] * count[some]
                self._cells[some, i, 2] = hi[some]
                self._cells[some, i, 3] = count[some]
            self._n = n

    def add(self, t_us: int, values: dict[str, float | None]) -> None:
        """One row written to the CSV."""
        b = t_us // self.WIDTH * self.WIDTH
        with self._lock:
            new = [name for name in values if name not in self._names]
            if new:  # a column that appeared (a GPU came): empty before
                self._names += new
                grown = np.empty((len(self._cells), len(self._names), 4))
                grown[:] = self._EMPTY
                grown[:, : self._cells.shape[1]] = self._cells
                self._cells = grown
            k = self._slot(b)
            v = np.array([values.get(name) for name in self._names], dtype=np.float64)
            ok = np.isfinite(v)
            cell = self._cells[k]
            cell[ok, 0] = np.minimum(cell[ok, 0], v[ok])
            cell[ok, 1] += v[ok]
            cell[ok, 2] = np.maximum(cell[ok, 2], v[ok])
            cell[ok, 3] += 1

    def _slot(self, b: int) -> int:
        n = self._n
        if n and self._bins[n - 1] == b:
            return n - 1
        if n and b < self._bins[n - 1]:  # the clock went back: an earlier bin may be there
            found = np.flatnonzero(self._bins[:n] == b)
            if len(found):
                return int(found[0])
        if n == len(self._bins):  # full: double
            cap = max(64, 2 * n)
            bins = np.empty(cap, dtype=np.int64)
            bins[:n] = self._bins[:n]
            cells = np.empty((cap, len(self._names), 4))
            cells[:n] = self._cells[:n]
            self._bins, self._cells = bins, cells
        self._bins[n] = b
        self._cells[n] = self._EMPTY
        self._n = n + 1
        return n

    def drop_before(self, t_us: int) -> None:
        """Forget the bins that start before ``t_us`` (their rows left the CSV at midnight)."""
        with self._lock:
            keep = self._bins[: self._n] >= t_us
            self._bins = self._bins[: self._n][keep]
            self._cells = self._cells[: self._n][keep]
            self._n = len(self._bins)

    def snapshot(self, metrics: list[str] | None = None) -> tuple[np.ndarray, dict[str, Stats]]:
        """(bin starts in µs, in order; {metric: (min, mean, max, count)}), copied."""
        with self._lock:
            order = np.argsort(self._bins[: self._n], kind="stable")
            bins = self._bins[: self._n][order]
            cells = self._cells[: self._n][order]  # fancy indexing: a copy
            names = list(self._names)
        out: dict[str, Stats] = {}
        for name in names if metrics is None else metrics:
            if name not in names:
                out[name] = nan_stats(len(bins))
                continue
            i = names.index(name)
            out[name] = _finish(cells[:, i, 0], cells[:, i, 1], cells[:, i, 2], cells[:, i, 3].astype(np.int64))
        return bins, out
