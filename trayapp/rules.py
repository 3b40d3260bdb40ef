"""Alert rules: rolling window averages, levels with hysteresis, and the transitions between them.

Imports ``model`` only; plain Python, no I/O (the tracker's state is a dict the engine persists).
"""

from __future__ import annotations

import math
import re
from array import array
from dataclasses import dataclass
from datetime import datetime

from trayapp.model import Level, RuleResult, Transition

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = r"(\d+(?:\.\d+)?)\s*(d|h|min|m|s)"
_DURATION = re.compile(rf"^\s*(?:\d+(?:\.\d+)?\s*|(?:{_PART}\s*)+)$", re.IGNORECASE)


def parse_duration(text: str | int | float) -> float:
    """``"36h"`` → 129600.0; ``"36 h"``, ``"90 m"``, ``"90min"``, ``"1h30m"``, ``"1d 12h"`` too.
    Bare numbers are seconds; ``"0"`` is zero. Raises ValueError."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0 or not math.isfinite(text):
            raise ValueError(f"{text!r} is not a duration")
        return float(text)
    text = str(text)
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration (use a number with s, m, h or d, like '36h' or '1h30m')")
    parts = re.findall(_PART, text, re.IGNORECASE)
    if not parts:
        return float(text)
    return sum(float(number) * _UNITS[unit.lower()[0]] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """129600 → ``"36h"``, 1036830 → ``"12d30s"``, 90.5 → ``"90.5s"``: ``parse_duration`` reads
    back exactly the same number for every value it can produce (never an exponent)."""
    if not math.isfinite(seconds):
        return f"{seconds}s"
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds == int(seconds) and seconds < 2**53:  # whole seconds: compound units, summed exactly
        rest, parts = int(seconds), []
        for unit in ("d", "h", "m", "s"):
            count, rest = divmod(rest, _UNITS[unit])
            if count:
                parts.append(f"{count}{unit}")
        return "".join(parts) or "0s"
    from decimal import Decimal

    # repr is the shortest text that reads back as the same float; Decimal writes it without an exponent.
    text = format(Decimal(repr(float(seconds))), "f")
    return f"{text}s"


def human_duration(seconds: float) -> str:
    """For people: ``"14 h"``, ``"36 h"``, ``"7 d"``, ``"45 min"``, ``"20 s"``."""
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)} d"
    if seconds >= 3600:
        hours = seconds / 3600
        return f"{hours:.0f} h" if hours >= 10 or hours == int(hours) else f"{hours:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


ABOVE, BELOW = "above", "below"  # a rule watches its average rise above its thresholds, or fall below them
DIRECTIONS = (ABOVE, BELOW)


@dataclass(frozen=True, slots=True)
class Rule:
    """Average of ``metric`` over ``window_seconds``. ``direction`` "above": orange at ``orange``
    and up, red above ``red``; "below" (a battery, a fan): orange at ``orange`` and under, red
    under ``red`` (which is then the lower of the two)."""

    metric: str
    window_seconds: float = 36 * 3600
    orange: float = 80.0
    red: float = 90.0
    min_coverage_seconds: float = 3600
    direction: str = ABOVE

    @property
    def key(self) -> str:
        return f"{self.metric}/{format_duration(self.window_seconds)}"


DEFAULT_RULES = (Rule("cpu_percent"), Rule("memory_percent"))


def classify(
    average: float | None,
    coverage_seconds: float,
    rule: Rule,
    previous: Level | None = None,
    hysteresis: float = 0.0,
) -> Level:
    """The one place a level is decided.

    A rule that watches a value rise: red if average > red; orange if orange <= average <= red;
    ok below. One that watches it fall (``direction = "below"``) is the same with every
    comparison the other way: red if average < red; orange if red <= average <= orange; ok
    above. Unknown with no data or less coverage than the rule's minimum. Leaving a level
    needs the average to move ``hysteresis`` points back past the threshold (down for a rising
    rule, up for a falling one), so a value sitting on a line does not flap.
    """
    if average is None or not math.isfinite(average) or coverage_seconds < rule.min_coverage_seconds:
        return Level.UNKNOWN
    # thresholds are data: a falling rule is a rising rule on the negated values
    sign = -1.0 if rule.direction == BELOW else 1.0
    value, orange, red = sign * average, sign * rule.orange, sign * rule.red
    if value > red:
        return Level.RED
    if previous is Level.RED and value > red - hysteresis:
        return Level.RED
    if value >= orange:
        return Level.ORANGE
    if previous in (Level.RED, Level.ORANGE) and value >= orange - hysteresis:
        return Level.ORANGE
    return Level.OK


def threshold_signs(direction: str) -> tuple[str, str]:
    """How a rule's thresholds read, orange's then red's: ``("≥", ">")`` for a rule that watches
    a value rise, ``("≤", "<")`` for one that watches it fall."""
    return ("≤", "<") if direction == BELOW else ("≥", ">")


# A value is "not available" unless it is finite and no larger than this: no metric comes near
# it, and it keeps a window's running sum finite (NaN, inf and 1e308 from a broken file are noise).
LARGEST = 1e15


def usable(value: float | None) -> bool:
    """Whether a sample's value counts: not None, finite, and at most ``LARGEST`` in size."""
    return value is not None and math.isfinite(value) and abs(value) <= LARGEST


def usable_mask(values: object) -> object:
    """``usable`` for a numpy array of values."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        return np.abs(values) <= LARGEST  # False for NaN and ±inf


MINUTE = 60.0  # the averages' unit of time: a window's average is the mean of its minutes' means


def minute_of(t: float) -> float:
    """The UTC minute a time (epoch seconds) falls in, as ``floor(t / 60)``."""
    return math.floor(t / MINUTE)


def average_over_time(stamps: object, values: object) -> float | None:
    """The average over time of some samples (epoch seconds, values; usable ones only, any order):
    the mean of the per-minute means of the UTC minutes that hold a sample. A minute counts once
    however many samples it holds; a minute with none is a gap and does not count. None when
    there is no sample."""
    import numpy as np

    t = np.asarray(stamps, dtype="float64")
    v = np.asarray(values, dtype="float64")
    if not t.size:
        return None
    minutes = np.floor(t / MINUTE)
    if t.size > 1 and not (minutes[1:] >= minutes[:-1]).all():  # a clock step on disk: minutes count, not order
        order = np.argsort(minutes, kind="stable")
        minutes, v = minutes[order], v[order]
    starts = np.flatnonzero(np.concatenate(([True], minutes[1:] != minutes[:-1])))
    sums = np.add.reduceat(v, starts)
    counts = np.diff(np.append(starts, v.size))
    return float((sums / counts).mean())


class RollingWindow:
    """The samples of one metric in ``(now - window, now]``, and their average over time.

    The average is ``average_over_time`` of those samples: the mean of the per-minute means of
    the UTC minutes that hold one. Beside the samples (two flat arrays of doubles, 16 bytes a
    sample, for drawing and projections) the window keeps each minute's sum and count and the
    running sum of the minutes' means, so ``add`` is O(1) amortised: a sample changes the mean
    of one minute (the newest when it arrives, the oldest when it leaves at the window's edge).
    The running sums are recomputed whenever as many samples have left as remain, which bounds
    floating-point drift over months without costing more than O(1) per sample.
    """

    __slots__ = ("window", "_t", "_v", "_head", "_minute", "_msum", "_mcount", "_mhead", "_means", "_evicted")

    def __init__(self, window_seconds: float) -> None:
        self.window = float(window_seconds)
        self._t = array("d")
        self._v = array("d")
        self._head = 0
        self._minute = array("d")  # each minute's floor(t / 60), in time order
        self._msum = array("d")  # the sum of its samples still in the window
        self._mcount = array("d")  # how many they are
        self._mhead = 0
        self._means = 0.0  # the sum of the minutes' means
        self._evicted = 0

    def __len__(self) -> int:
        return len(self._t) - self._head

    def add(self, t: float, value: float | None) -> None:
        """Add a sample at epoch seconds ``t``; ``None``/NaN/±inf only moves the window on."""
        if len(self) and t < self._t[-1]:
            self._rewind(t)
        if usable(value):
            self._t.append(t)
            self._v.append(value)
            minute = minute_of(t)
            if len(self._minute) > self._mhead and self._minute[-1] == minute:
                self._means -= self._msum[-1] / self._mcount[-1]
                self._msum[-1] += value
                self._mcount[-1] += 1
                self._means += self._msum[-1] / self._mcount[-1]
            else:
                self._minute.append(minute)
                self._msum.append(value)
                self._mcount.append(1.0)
                self._means += value
        self.advance(t)

    def extend(self, stamps: object, values: object, now: float) -> None:
        """Bulk-load sorted samples (numpy arrays), e.g. from disk at start-up."""
        import numpy as np

        t = np.asarray(stamps, dtype="float64")
        v = np.asarray(values, dtype="float64")
        keep = usable_mask(v) & (t <= now) & (t > now - self.window)
        if len(self) and keep.any():
            keep &= t > self._t[-1]
        self._t.frombytes(t[keep].tobytes())  # no Python float per sample
        self._v.frombytes(v[keep].tobytes())
        self.advance(now)
        self._rebuild()

    def _rebuild(self) -> None:
        """Each minute's sum and count, and the sum of their means, afresh from the samples."""
        import numpy as np

        del self._t[: self._head], self._v[: self._head]
        self._head = 0
        t = np.array(self._t, dtype="float64")
        v = np.array(self._v, dtype="float64")
        minutes = np.floor(t / MINUTE)
        starts = np.flatnonzero(np.concatenate(([True], minutes[1:] != minutes[:-1]))) if t.size else np.empty(0, "int64")
        sums = np.add.reduceat(v, starts) if t.size else np.empty(0)
        counts = np.diff(np.append(starts, v.size)).astype("float64")
        self._minute = array("d", minutes[starts].tolist())
        self._msum = array("d", sums.tolist())
        self._mcount = array("d", counts.tolist())
        self._mhead = 0
        self._means = math.fsum((sums / counts).tolist()) if t.size else 0.0
        self._evicted = 0

    def advance(self, now: float) -> None:
        """Drop samples at or before ``now - window``."""
        limit = now - self.window
        t, v = self._t, self._v
        msum, mcount = self._msum, self._mcount
        head, mhead = self._head, self._mhead
        end = len(t)
        while head < end and t[head] <= limit:  # the oldest sample leaves the oldest minute
            self._means -= msum[mhead] / mcount[mhead]
            msum[mhead] -= v[head]
            mcount[mhead] -= 1
            if mcount[mhead]:
                self._means += msum[mhead] / mcount[mhead]
            else:
                mhead += 1
            head += 1
            self._evicted += 1
        self._head, self._mhead = head, mhead
        if head and head * 2 >= end:  # compact: keep memory proportional to the window
            del t[:head]
            del v[:head]
            self._head = 0
        if mhead and mhead * 2 >= len(self._minute):
            del self._minute[:mhead], msum[:mhead], mcount[:mhead]
            self._mhead = 0
        if self._evicted and self._evicted >= len(self):
            self._resum()

    def _resum(self) -> None:
        """The running sums afresh: the oldest minute's from its samples still here (the only
        sum that samples leave), then the sum of every minute's mean."""
        self._evicted = 0
        mhead = self._mhead
        if len(self._minute) == mhead:
            self._means = 0.0
            return
        head = self._head
        count = int(self._mcount[mhead])
        self._msum[mhead] = math.fsum(self._v[head : head + count])
        self._means = math.fsum(s / c for s, c in zip(self._msum[mhead:], self._mcount[mhead:]))

    def _rewind(self, t: float) -> None:
        """The clock went back: samples after the new 'now' are not in its window."""
        while len(self) and self._t[-1] > t:
            self._t.pop()
            value = self._v.pop()
            self._means -= self._msum[-1] / self._mcount[-1]
            self._msum[-1] -= value
            self._mcount[-1] -= 1
            if self._mcount[-1]:
                self._means += self._msum[-1] / self._mcount[-1]
            else:
                self._minute.pop(), self._msum.pop(), self._mcount.pop()

    def arrays(self) -> tuple[array, array]:
        """Copies of the window's timestamps and values (for drawing; the window goes on)."""
        return self._t[self._head :], self._v[self._head :]

    @property
    def samples(self) -> int:
        return len(self)

    @property
    def minutes(self) -> int:
        """How many minutes hold a sample."""
        return len(self._minute) - self._mhead

    def minute_means(self) -> dict[int, float]:
        """Each minute's mean in the window, by ``floor(t / 60)`` (for a rule's contributors)."""
        h = self._mhead
        return {int(m): s / c for m, s, c in zip(self._minute[h:], self._msum[h:], self._mcount[h:])}

    def first_minute(self) -> int:
        """The oldest minute in the window (``floor(t / 60)``), -1 when empty."""
        return int(self._minute[self._mhead]) if self.minutes else -1

    @property
    def average(self) -> float | None:
        minutes = self.minutes
        return self._means / minutes if minutes else None

    @property
    def coverage_seconds(self) -> float:
        n = len(self)
        return self._t[-1] - self._t[self._head] if n > 1 else 0.0


class RuleState:
    """A rule with its window: feed samples, read results."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.window = RollingWindow(rule.window_seconds)

    def result(self, previous: Level | None = None, hysteresis: float = 0.0) -> RuleResult:
        window = self.window
        avg = window.average
        return RuleResult(
            metric=self.rule.metric,
            window_seconds=self.rule.window_seconds,
            average=avg,
            samples=window.samples,
            coverage_seconds=window.coverage_seconds,
            level=classify(avg, window.coverage_seconds, self.rule, previous, hysteresis),
            orange=self.rule.orange,
            red=self.rule.red,
            direction=self.rule.direction,
        )


def evaluate_arrays(rule: Rule, stamps: "list[float] | object", values: "list[float] | object", now: float) -> RuleResult:
    """A rule's result from whole columns (epoch seconds, values), as ``status`` needs.

    Vectorised with numpy; gives what a ``RollingWindow`` fed the same samples gives.
    """
    import numpy as np

    t = np.asarray(stamps, dtype="float64")
    v = np.asarray(values, dtype="float64")
    keep = (t > now - rule.window_seconds) & (t <= now) & usable_mask(v)
    t, v = t[keep], v[keep]
    n = int(v.size)
    avg = average_over_time(t, v)
    coverage = float(t.max() - t.min()) if n > 1 else 0.0
    return RuleResult(
        metric=rule.metric,
        window_seconds=rule.window_seconds,
        average=avg,
        samples=n,
        coverage_seconds=coverage,
        level=classify(avg, coverage, rule),
        orange=rule.orange,
        red=rule.red,
        direction=rule.direction,
    )


class AlertTracker:
    """Turns a stream of rule results into transitions of each rule's alert level.

    The alert level is the last *known* level: a rule that goes unknown (a gap in the data)
    keeps its alert level, so coming back from a gap at the same level sends nothing. The first
    known level after start-up counts as a transition from ok (so an alert is never missed),
    unless ``state`` from a previous run already recorded it (so a restart sends nothing twice).
    """

    def __init__(self, hysteresis: float = 0.0, repeat_every: float = 0.0, state: dict | None = None) -> None:
        self.hysteresis = hysteresis
        self.repeat_every = repeat_every
        self.alert: dict[str, Level] = {}
        self.last_sent: dict[str, float] = {}
        for key, entry in (state or {}).items():
            try:
                self.alert[key] = Level(entry["level"])
                since = float(entry.get("since", 0.0))
                self.last_sent[key] = since if math.isfinite(since) else 0.0
            except (KeyError, TypeError, ValueError, AttributeError):  # a state file may hold anything
                self.alert.pop(key, None)
                continue

    def update(self, key: str, result: RuleResult, at: datetime) -> Transition | None:
        if result.level is Level.UNKNOWN:
            return None
        before = self.alert.get(key, Level.OK)
        now = at.timestamp()
        if result.level is not before:
            self.alert[key] = result.level
            self.last_sent[key] = now
            return Transition(key, before, result.level, result, at)
        if (
            self.repeat_every > 0
            and before in (Level.ORANGE, Level.RED)
            and now - self.last_sent.get(key, now) >= self.repeat_every
        ):
            self.last_sent[key] = now
            return Transition(key, before, before, result, at, reminder=True)
        return None

    def state(self) -> dict:
        return {key: {"level": level.value, "since": self.last_sent.get(key, 0.0)} for key, level in self.alert.items()}


# ------------------------------------------------------------- the first hour, and where it heads


def first_verdict_in(rule: Rule, result: RuleResult) -> float | None:
    """Seconds until ``rule`` has its minimum data (``min_coverage``) if sampling goes on;
    None when the rule already has it (its level is known)."""
    if result.level is not Level.UNKNOWN or result.coverage_seconds >= rule.min_coverage_seconds:
        return None
    return rule.min_coverage_seconds - result.coverage_seconds


@dataclass(frozen=True, slots=True)
class Projection:
    """The window average will reach ``level`` in ``seconds`` if the current load continues."""

    level: Level
    seconds: float

    def text(self) -> str:
        """``red in ≈ 5 h at the current load`` / ``back to ok in ≈ 9 h at the current load``."""
        what = "back to ok" if self.level is Level.OK else self.level.value
        return f"{what} in ≈ {human_duration(self.seconds)} at the current load"

    def as_json(self) -> dict[str, object]:
        return {"level": self.level.value, "in_seconds": round(self.seconds, 3)}


PROJECT_BLOCK = 8192  # instants a projection checks at once


def project(
    rule: Rule,
    stamps: object,
    values: object,
    now: float,
    current: float | None,
    interval: float,
    level: Level,
    hysteresis: float = 0.0,
) -> Projection | None:
    """When the window average leaves ``level`` if the load stays at ``current`` from now on.

    Exact for that assumption: the window's samples (epoch seconds ``stamps``, ``values``) leave
    it one by one as time passes (each at its time + window), and a new sample of ``current``
    arrives every ``interval`` seconds after ``now``; the average is taken over time as the
    window takes it (``average_over_time``), so the new load counts by the minutes it fills,
    not by how often it is sampled. The average only changes at those instants, so each is
    checked with ``classify`` (hysteresis as the tracker applies it, from ``level``); the first
    that gives another level is the answer. None when the level is unknown, the load is
    unknown, or the level would hold for good (after one window the average is ``current``).
    """
    import numpy as np

    if level is Level.UNKNOWN or current is None or not usable(current) or not interval > 0:
        return None
    window = rule.window_seconds
    t = np.asarray(stamps, dtype="float64")
    v = np.asarray(values, dtype="float64")
    keep = (t > now - window) & (t <= now) & usable_mask(v)
    t, v = t[keep], v[keep]
    if t.size > 1 and not (t[1:] >= t[:-1]).all():
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
    n_old = t.size
    leave = t + window  # at that instant the old sample is out of the window (it holds (now - window, now])
    end = now + window  # by then every old sample has left: the average is ``current`` itself
    arrivals = now + interval * np.arange(1, int(math.floor(window / interval + 1e-9)) + 1)
    # A new sample changes the average only when it is the first of its minute (a minute of new
    # samples has the mean ``current`` however many it holds) or when its minute holds old
    # samples too (the first new minute): only those are kept, the k-th new sample of all
    # being ``kept_k`` (1-based) for the count of those come by an instant.
    arrival_minutes = np.floor(arrivals / MINUTE)
    keep_new = np.concatenate(([True], arrival_minutes[1:] != arrival_minutes[:-1])) if arrivals.size else np.empty(0, bool)
    keep_new |= arrival_minutes == arrival_minutes[:1]
    del arrival_minutes
    kept_k = np.flatnonzero(keep_new) + 1
    arrivals = arrivals[keep_new]
    del keep_new

    # At any instant the window holds a run of the samples in time order, old then new: the old
    # ones not yet gone and the new ones come so far, ``every[lo:hi]``. The average of such a run
    # is the partial mean of its first minute, the whole means of the minutes between, and the
    # partial mean of its last minute, over the number of minutes: all from running sums.
    every = np.concatenate((v, np.full(arrivals.size, float(current))))
    minutes = np.concatenate((t, arrivals))  # each sample's minute, computed in place
    minutes /= MINUTE
    np.floor(minutes, out=minutes)
    starts = np.concatenate(([True], minutes[1:] != minutes[:-1])) if every.size else np.empty(0, bool)  # a minute's first sample
    del minutes
    firsts = np.flatnonzero(starts)
    starts[:1] = False
    group = np.cumsum(starts, dtype="int32" if every.size < 2**31 else "int64")  # each sample's minute, counted from 0
    del starts
    group_end = np.append(firsts[1:], every.size)  # one past each minute's last sample
    sums = np.concatenate(([0.0], np.cumsum(every)))  # sum of every[:i] at i
    whole = (sums[group_end] - sums[firsts]) / (group_end - firsts) if every.size else np.empty(0)
    means_before = np.concatenate(([0.0], np.cumsum(whole)))  # sum of whole minute means before a minute

    def average_at(instants: "np.ndarray") -> "np.ndarray":
        lo = np.searchsorted(leave, instants, side="right")  # old samples gone by then
        come = np.floor((instants - now) / interval + 1e-9)  # new samples at now + k*interval <= T, all of them
        hi = n_old + np.searchsorted(kept_k, come, side="right")  # of which kept
        out = np.full(instants.shape, np.nan)
        have = hi > lo
        lo, hi = lo[have], hi[have]
        first, last = group[lo], group[hi - 1]
        one = first == last
        head_end = np.where(one, hi, group_end[first])
        head = (sums[head_end] - sums[lo]) / (head_end - lo)
        tail_start = firsts[last]
        tail = np.where(one, 0.0, (sums[hi] - sums[tail_start]) / np.maximum(hi - tail_start, 1))
        between = np.where(one, 0.0, means_before[last] - means_before[np.minimum(first + 1, last)])
        out[have] = (head + between + tail) / (last - first + 1)
        return out

    def stays(average: "np.ndarray") -> "np.ndarray":
        """The same decision as classify(average, ..., previous=level, hysteresis), vectorised
        (a falling rule on the negated values, as there)."""
        sign = -1.0 if rule.direction == BELOW else 1.0
        value, orange, red = sign * average, sign * rule.orange, sign * rule.red
        if level is Level.RED:
            keep_level = value > red - hysteresis
        elif level is Level.ORANGE:
            keep_level = (value <= red) & (value >= orange - hysteresis)
        else:
            keep_level = value < orange
        return keep_level | np.isnan(average)

    # The average only changes when an old sample leaves or a new one arrives: the first instant
    # of either kind that gives another level is the answer. Both sets are sorted already, so
    # each is checked on its own (no merge of ~2 x 130,000 instants for 36 h of 1 s samples).
    # Each set is checked a block of instants at a time, in time order, up to its first change:
    # the temporaries of ``average_at`` stay a block's size, and a change soon ends the search soon.
    found = []
    departures = leave[(leave > now) & (leave <= end)]
    for instants in (departures, arrivals):
        for a in range(0, instants.size, PROJECT_BLOCK):
            block = instants[a:a + PROJECT_BLOCK]
            averages = average_at(block)
            moved = np.flatnonzero(~stays(averages))
            if moved.size:
                found.append((float(block[moved[0]]), float(averages[moved[0]])))
                break
    if not found:
        return None
    at, first_average = min(found)
    reached = classify(first_average, rule.min_coverage_seconds, rule, level, hysteresis)
    return Projection(reached, at - now)


CURRENT_LOAD_SPAN = 300.0  # "the current load" a projection continues: the last 5 minutes' mean


def project_recent(
    rule: Rule, result: RuleResult, stamps: object, values: object, now: float, interval: float, hysteresis: float = 0.0
) -> Projection | None:
    """``project`` with the current load taken as the average over time of the last
    ``CURRENT_LOAD_SPAN`` seconds of ``values`` (one CPU sample is too noisy to extrapolate); None when nothing was
    sampled then (the recorder is not running: there is no current load to continue)."""
    import numpy as np

    t = np.asarray(stamps, dtype="float64")
    v = np.asarray(values, dtype="float64")
    recent = (t > now - CURRENT_LOAD_SPAN) & (t <= now) & usable_mask(v)
    load = average_over_time(t[recent], v[recent])
    if load is None:
        return None
    return project(rule, t, v, now, load, interval, result.level, hysteresis)


def with_projection(change: Transition, rule: Rule, window: RollingWindow, now: float, interval: float, hysteresis: float) -> Transition:
    """A transition carrying where its average heads next (``extra`` ``projection``), for Slack."""
    from dataclasses import replace

    stamps, values = window.arrays()
    projection = project_recent(rule, change.result, stamps, values, now, interval, hysteresis)
    if projection is None:
        return change
    return replace(change, extra=change.extra + (("projection", projection.text()),))
