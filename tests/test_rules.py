"""Rules as truth tables: boundaries, coverage, gaps, hysteresis, and the tracker's transitions."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from trayapp.model import Level
from trayapp.rules import (
    AlertTracker,
    Rule,
    RollingWindow,
    RuleState,
    classify,
    evaluate_arrays,
    format_duration,
    parse_duration,
)

RULE = Rule("cpu_percent", window_seconds=36 * 3600, orange=80.0, red=90.0, min_coverage_seconds=3600)
HOUR = 3600.0


@pytest.mark.parametrize(
    ("average", "coverage", "expected"),
    [
        (0.0, 36 * HOUR, Level.OK),
        (79.9999, 36 * HOUR, Level.OK),
        (80.0, 36 * HOUR, Level.ORANGE),  # orange <= average
        (85.0, 36 * HOUR, Level.ORANGE),
        (90.0, 36 * HOUR, Level.ORANGE),  # average <= red is still orange
        (90.0001, 36 * HOUR, Level.RED),
        (100.0, 36 * HOUR, Level.RED),
        (95.0, HOUR, Level.RED),  # coverage exactly the minimum counts
        (95.0, HOUR - 0.001, Level.UNKNOWN),  # just under the minimum
        (None, 36 * HOUR, Level.UNKNOWN),
        (math.nan, 36 * HOUR, Level.UNKNOWN),
    ],
)
def test_levels(average: float | None, coverage: float, expected: Level) -> None:
    assert classify(average, coverage, RULE) is expected


@pytest.mark.parametrize(
    ("previous", "average", "expected"),
    [
        (Level.RED, 91.0, Level.RED),
        (Level.RED, 89.0, Level.RED),  # within 2 points of red: stays red
        (Level.RED, 88.0, Level.ORANGE),  # crossed back by the margin (not > 88)
        (Level.RED, 79.0, Level.ORANGE),  # far below, but orange holds within its own margin
        (Level.RED, 77.9, Level.OK),
        (Level.ORANGE, 78.5, Level.ORANGE),
        (Level.ORANGE, 77.99, Level.OK),
        (Level.ORANGE, 90.5, Level.RED),  # going up is immediate
        (Level.OK, 79.9, Level.OK),
        (Level.OK, 80.0, Level.ORANGE),
        (None, 89.0, Level.ORANGE),
        (Level.UNKNOWN, 89.0, Level.ORANGE),
    ],
)
def test_hysteresis(previous: Level | None, average: float, expected: Level) -> None:
    assert classify(average, 36 * HOUR, RULE, previous, hysteresis=2.0) is expected


def test_worst_level_ignores_unknown_unless_all_unknown() -> None:
    assert Level.worst([Level.OK, Level.UNKNOWN]) is Level.OK
    assert Level.worst([Level.UNKNOWN, Level.UNKNOWN]) is Level.UNKNOWN
    assert Level.worst([Level.ORANGE, Level.RED, Level.OK]) is Level.RED
    assert Level.worst([]) is Level.UNKNOWN


@pytest.mark.parametrize(("text", "seconds"), [("36h", 129600), ("90s", 90), ("30m", 1800), ("7d", 604800), ("0", 0), ("1.5h", 5400), (12, 12)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "h", "-1h", "36x", "1e3", "abc", -5])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration_round_trips() -> None:
    for seconds in (129600, 90, 1800, 604800, 3600, 45):
        assert parse_duration(format_duration(seconds)) == seconds


def test_window_is_half_open_on_the_left() -> None:
    w = RollingWindow(10)
    for t in range(0, 21):
        w.add(float(t), float(t))
    # (20 - 10, 20] holds 11..20
    assert w.samples == 10
    assert w.average == pytest.approx(sum(range(11, 21)) / 10)
    assert w.coverage_seconds == 9


def test_gaps_are_gaps_not_zeros() -> None:
    w = RollingWindow(36 * HOUR)
    for t in range(0, 3600, 10):
        w.add(float(t), 95.0)
    w.add(20 * HOUR, 95.0)  # the machine was off for most of a day
    assert w.average == pytest.approx(95.0)
    assert w.samples == 361
    assert w.coverage_seconds == pytest.approx(20 * HOUR)


def test_missing_values_only_move_the_window() -> None:
    w = RollingWindow(10)
    w.add(0.0, 50.0)
    w.add(5.0, None)
    w.add(6.0, math.nan)
    assert (w.samples, w.average) == (1, 50.0)
    w.add(10.0, None)  # 0 leaves: (0, 10]
    assert w.samples == 0 and w.average is None


def test_clock_going_back_drops_the_future() -> None:
    w = RollingWindow(100)
    for t in (10.0, 20.0, 30.0):
        w.add(t, t)
    w.add(15.0, 1.0)  # NTP stepped the clock back
    assert w.samples == 2
    assert w.average == pytest.approx((10.0 + 1.0) / 2)


def test_window_matches_the_batch_evaluation_on_random_data() -> None:
    rng = random.Random(7)
    rule = Rule("m", window_seconds=500, orange=50, red=70, min_coverage_seconds=60)
    state = RuleState(rule)
    stamps, values = [], []
    t = 0.0
    for _ in range(5000):
        t += rng.choice([1.0, 2.0, 2.0, 30.0])
        v = rng.uniform(0, 100) if rng.random() > 0.05 else None
        state.window.add(t, v)
        stamps.append(t)
        values.append(math.nan if v is None else v)
    live = state.result()
    batch = evaluate_arrays(rule, stamps, values, t)
    assert live.samples == batch.samples
    assert live.average == pytest.approx(batch.average, rel=1e-12)
    assert live.coverage_seconds == batch.coverage_seconds
    assert live.level is batch.level


def test_running_sum_does_not_drift() -> None:
    w = RollingWindow(100)
    for t in range(200_000):
        w.add(float(t), 0.1 if t % 2 else 99.9)
    exact = math.fsum(0.1 if t % 2 else 99.9 for t in range(200_000 - 100, 200_000)) / 100
    assert w.average == pytest.approx(exact, abs=1e-9)


def _result(level: Level, average: float = 95.0):
    from trayapp.model import RuleResult

    return RuleResult("cpu_percent", 36 * HOUR, average, 100, 36 * HOUR, level, 80.0, 90.0)


T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def test_tracker_reports_each_change_once() -> None:
    tracker = AlertTracker()
    seq = [Level.UNKNOWN, Level.OK, Level.OK, Level.ORANGE, Level.ORANGE, Level.RED, Level.RED, Level.ORANGE, Level.OK, Level.OK]
    changes = [tracker.update("k", _result(lv), T0 + timedelta(seconds=i)) for i, lv in enumerate(seq)]
    got = [(c.previous, c.current) for c in changes if c is not None]
    assert got == [
        (Level.OK, Level.ORANGE),
        (Level.ORANGE, Level.RED),
        (Level.RED, Level.ORANGE),
        (Level.ORANGE, Level.OK),
    ]
    assert changes[8] is not None and changes[8].resolved


def test_tracker_first_known_level_alerts_and_a_gap_does_not() -> None:
    tracker = AlertTracker()
    first = tracker.update("k", _result(Level.RED), T0)
    assert first is not None and (first.previous, first.current) == (Level.OK, Level.RED)
    assert tracker.update("k", _result(Level.UNKNOWN), T0 + timedelta(hours=1)) is None
    assert tracker.update("k", _result(Level.RED), T0 + timedelta(hours=2)) is None


def test_tracker_restored_state_sends_nothing_twice() -> None:
    before = AlertTracker()
    before.update("k", _result(Level.RED), T0)
    after = AlertTracker(state=before.state())
    assert after.update("k", _result(Level.RED), T0 + timedelta(minutes=1)) is None
    change = after.update("k", _result(Level.OK, 10.0), T0 + timedelta(minutes=2))
    assert change is not None and change.resolved


def test_tracker_reminds_while_a_level_persists() -> None:
    tracker = AlertTracker(repeat_every=3600)
    assert tracker.update("k", _result(Level.RED), T0) is not None
    assert tracker.update("k", _result(Level.RED), T0 + timedelta(minutes=59)) is None
    reminder = tracker.update("k", _result(Level.RED), T0 + timedelta(minutes=60))
    assert reminder is not None and reminder.reminder and reminder.current is Level.RED
    assert tracker.update("k", _result(Level.RED), T0 + timedelta(minutes=61)) is None


def test_no_reminders_when_ok() -> None:
    tracker = AlertTracker(repeat_every=60)
    for i in range(10):
        assert tracker.update("k", _result(Level.OK, 5.0), T0 + timedelta(minutes=i)) is None


def test_non_finite_and_absurd_values_are_missing_in_every_path() -> None:
    # the issue: inf raised a red alert, and inf with -inf in one window stopped the recorder
    # ("ValueError: -inf + inf in fsum"); 1e308 twice overflows a sum to inf
    t = [1000.0 + 10 * i for i in range(400)]
    v = [50.0] * 400
    v[3], v[7], v[9], v[11], v[13] = math.inf, -math.inf, math.nan, 1e308, 1e308
    now = t[-1]
    rule = Rule("cpu_percent", window_seconds=7200, min_coverage_seconds=60)
    bulk = RollingWindow(rule.window_seconds)
    bulk.extend(t, v, now)
    one_by_one = RollingWindow(rule.window_seconds)
    for ti, vi in zip(t, v):
        one_by_one.add(ti, vi)
    batch = evaluate_arrays(rule, t, v, now)
    assert bulk.average == one_by_one.average == batch.average == 50.0
    assert bulk.samples == one_by_one.samples == batch.samples == 395
    assert batch.level is Level.OK
    assert classify(math.inf, 36 * HOUR, RULE) is Level.UNKNOWN


def test_tracker_state_of_any_shape_is_read_as_far_as_it_goes() -> None:
    # state/alerts.json may hold anything (a bad sector, a hand edit): never an exception
    state = {"a": [], "b": "red", "c": {"level": ["red"]}, "d": {"level": "red", "since": math.inf}, "e": {"level": "orange", "since": 5}}
    tracker = AlertTracker(state=state)  # type: ignore[arg-type]
    assert tracker.alert == {"d": Level.RED, "e": Level.ORANGE}
    assert tracker.state() == {"d": {"level": "red", "since": 0.0}, "e": {"level": "orange", "since": 5.0}}


# ------------------------------------------------- a rule that watches a value fall (direction = "below")

BATTERY = Rule("battery_percent", window_seconds=600, orange=20.0, red=10.0, min_coverage_seconds=300, direction="below")


@pytest.mark.parametrize(
    ("previous", "average", "expected"),
    [
        # the same function as for a rising rule, every comparison the other way round
        (None, 100.0, Level.OK),
        (None, 20.0001, Level.OK),
        (None, 20.0, Level.ORANGE),  # at orange: orange
        (None, 15.0, Level.ORANGE),
        (None, 10.0, Level.ORANGE),  # at red is still orange
        (None, 9.9999, Level.RED),
        (None, 0.0, Level.RED),
        (None, None, Level.UNKNOWN),
        # hysteresis (2 points) upwards: leaving a level needs the average to rise back past it
        (Level.RED, 11.9, Level.RED),
        (Level.RED, 12.0, Level.ORANGE),
        (Level.RED, 21.0, Level.ORANGE),  # orange holds within its own margin
        (Level.RED, 22.1, Level.OK),
        (Level.ORANGE, 21.9, Level.ORANGE),
        (Level.ORANGE, 22.01, Level.OK),
        (Level.ORANGE, 9.5, Level.RED),  # going down is immediate
        (Level.OK, 20.1, Level.OK),
    ],
)
def test_a_falling_rule_is_the_same_table_the_other_way_round(previous: Level | None, average: float | None, expected: Level) -> None:
    assert classify(average, 600.0, BATTERY, previous, hysteresis=2.0) is expected


def test_a_falling_rule_is_a_rising_rule_on_negated_values() -> None:
    """Thresholds are data: one level function, checked against its mirror image everywhere."""
    rising = Rule("m", 600.0, orange=-20.0, red=-10.0, min_coverage_seconds=300)
    rng = random.Random(3)
    for _ in range(2000):
        average = rng.uniform(-5, 35)
        previous = rng.choice([None, Level.OK, Level.ORANGE, Level.RED])
        hysteresis = rng.choice([0.0, 1.0, 2.5])
        assert classify(average, 600.0, BATTERY, previous, hysteresis) is classify(-average, 600.0, rising, previous, hysteresis)


def test_a_falling_rules_result_carries_its_direction() -> None:
    state = RuleState(BATTERY)
    for t in range(0, 600, 10):
        state.window.add(1.8e9 + t, 8.0)
    result = state.result()
    assert (result.level, result.direction) == (Level.RED, "below")
    assert evaluate_arrays(BATTERY, [1.8e9 + t for t in range(0, 600, 10)], [8.0] * 60, 1.8e9 + 590).direction == "below"
