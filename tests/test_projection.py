"""Where the window average is heading: ``rules.project`` truth tables, checked against a
step-by-step replay through ``RollingWindow`` (the code the app itself averages with)."""

from __future__ import annotations

import numpy as np
import pytest

from trayapp.model import Level, RuleResult
from trayapp.rules import Projection, RollingWindow, Rule, classify, first_verdict_in, project

H = 3600.0
NOW = 1_800_000_000.0
RULE = Rule("cpu_percent", 36 * H, 80.0, 90.0, H)


def full(value: float, step: float = 60.0, window: float = 36 * H) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(NOW - window + step, NOW + 1, step)
    return t, np.full(t.size, value)


@pytest.mark.parametrize(("before", "level", "current", "hysteresis", "expected"), [
    # a full 36 h window at 85 (2160 samples a minute apart), orange; the load goes to 100:
    # each minute one 85 leaves and one 100 comes, +15/2160 a minute; above 90 after 721 minutes
    (85.0, Level.ORANGE, 100.0, 0.0, Projection(Level.RED, 721 * 60)),
    # ... to 50: -35/2160 a minute; below 80 - 2 (hysteresis) after 433 minutes
    (85.0, Level.ORANGE, 50.0, 2.0, Projection(Level.OK, 433 * 60)),
    (85.0, Level.ORANGE, 50.0, 0.0, Projection(Level.OK, 309 * 60)),  # below 80: 5*2160/35 = 308.6
    # steady: the level holds for good
    (85.0, Level.ORANGE, 85.0, 2.0, None),
    (50.0, Level.OK, 79.9, 2.0, None),  # after a whole window the average is 79.9: still ok
    # ok at 50, load 100: +50/2160 a minute; at least 80 after 1296 minutes (21.6 h)
    (50.0, Level.OK, 100.0, 2.0, Projection(Level.ORANGE, 1296 * 60)),
    # red at 95, load 0: -95/2160 a minute; at most 90 - 2 after 160 minutes (to orange, not ok)
    (95.0, Level.RED, 0.0, 2.0, Projection(Level.ORANGE, 160 * 60)),
])
def test_truth_table(before: float, level: Level, current: float, hysteresis: float, expected) -> None:
    t, v = full(before)
    assert classify(float(v.mean()), 36 * H, RULE, level, hysteresis) is level  # the table is consistent
    got = project(RULE, t, v, NOW, current, 60.0, level, hysteresis)
    if expected is None:
        assert got is None
    else:
        assert got is not None and got.level is expected.level
        assert got.seconds == pytest.approx(expected.seconds)


def test_a_window_with_a_gap_fills_before_anything_leaves() -> None:
    """Only the last 12 h hold data (the machine was off before): nothing leaves for 24 h, so
    the new samples only add. 720 samples at 95 (red), load 0: at most 88 when 720*95/(720+k)
    <= 88, k = 58 (57.3 rounded up)."""
    t, v = full(95.0, window=12 * H)
    got = project(RULE, t, v, NOW, 0.0, 60.0, Level.RED, 2.0)
    assert got == Projection(Level.ORANGE, 58 * 60)


@pytest.mark.parametrize(("level", "current"), [(Level.UNKNOWN, 100.0), (Level.OK, None), (Level.OK, float("nan"))])
def test_no_projection_without_a_level_or_a_load(level: Level, current) -> None:
    t, v = full(50.0)
    assert project(RULE, t, v, NOW, current, 60.0, level) is None


def test_the_text_people_read() -> None:
    assert Projection(Level.RED, 5 * H).text() == "red in ≈ 5 h at the current load"
    assert Projection(Level.OK, 9 * H).text() == "back to ok in ≈ 9 h at the current load"
    assert Projection(Level.ORANGE, 45 * 60).text() == "orange in ≈ 45 min at the current load"
    assert Projection(Level.RED, 5400.0).as_json() == {"level": "red", "in_seconds": 5400.0}


def replay(rule: Rule, t: np.ndarray, v: np.ndarray, current: float, interval: float, level: Level, hysteresis: float):
    """The reference: a RollingWindow fed the old samples, then every instant the average can
    change (a departure or a new sample) in time order, classified one by one."""
    window = RollingWindow(rule.window_seconds)
    for ti, vi in zip(t, v):
        window.add(float(ti), float(vi))
    arrivals = [NOW + k * interval for k in range(1, int(np.ceil(rule.window_seconds / interval)) + 1)]
    departures = [float(ti) + rule.window_seconds for ti in t]
    for at in sorted(set(arrivals) | set(departures)):
        if at <= NOW or at > NOW + rule.window_seconds:
            continue
        if at in arrivals:
            window.add(at, current)
        else:
            window.advance(at)
        if window.average is None:
            continue
        now_level = classify(window.average, rule.min_coverage_seconds, rule, level, hysteresis)
        if now_level is not level:
            return now_level, at - NOW
    return None


@pytest.mark.parametrize("seed", range(12))
def test_matches_a_step_by_step_replay(seed: int) -> None:
    """Random irregular windows (gaps, jitter, any level), random loads and intervals."""
    rng = np.random.default_rng(seed)
    rule = Rule("cpu_percent", float(rng.choice([600.0, 3600.0, 7200.0])), 60.0, 75.0, 60.0)
    n = int(rng.integers(20, 300))
    t = np.sort(NOW - rng.uniform(0, rule.window_seconds * 0.999, n))
    v = np.clip(rng.normal(rng.uniform(40, 95), 15, n), 0, 100)
    hysteresis = float(rng.choice([0.0, 2.0, 5.0]))
    level = classify(float(v.mean()), rule.window_seconds, rule)
    current = float(rng.uniform(0, 100))
    interval = float(rng.choice([1.0, 7.0, 30.0]))
    got = project(rule, t, v, NOW, current, interval, level, hysteresis)
    expected = replay(rule, t, v, current, interval, level, hysteresis)
    if expected is None:
        assert got is None
    else:
        assert got is not None and (got.level, got.seconds) == (expected[0], pytest.approx(expected[1]))


def test_first_verdict_comes_after_the_minimum_data() -> None:
    result = RuleResult("cpu_percent", 36 * H, 23.0, 240, 8 * 60, Level.UNKNOWN, 80.0, 90.0)
    assert first_verdict_in(RULE, result) == 52 * 60
    known = RuleResult("cpu_percent", 36 * H, 23.0, 2000, 2 * H, Level.OK, 80.0, 90.0)
    assert first_verdict_in(RULE, known) is None
