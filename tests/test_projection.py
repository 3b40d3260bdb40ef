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


def replay(rule: Rule, t: np.ndarray, v: np.ndarray, current: float, interval: float, level: Level, hysteresis: float, now: float = NOW):
    """The reference: a RollingWindow fed the old samples, then every instant the average can
    change (a departure or a new sample) in time order, classified one by one."""
    window = RollingWindow(rule.window_seconds)
    for ti, vi in zip(t, v):
        window.add(float(ti), float(vi))
    arrivals = [now + k * interval for k in range(1, int(np.ceil(rule.window_seconds / interval)) + 1)]
    departures = [float(ti) + rule.window_seconds for ti in t]
    for at in sorted(set(arrivals) | set(departures)):
        if at <= now or at > now + rule.window_seconds:
            continue
        if at in arrivals:
            window.add(at, current)
        else:
            window.advance(at)
        if window.average is None:
            continue
        now_level = classify(window.average, rule.min_coverage_seconds, rule, level, hysteresis)
        if now_level is not level:
            return now_level, at - now
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


@pytest.mark.parametrize("seed", range(8))
def test_a_falling_rule_matches_the_replay_too(seed: int) -> None:
    """A rule that watches a value fall (a battery running down): the same replay, thresholds
    the other way round."""
    rng = np.random.default_rng(100 + seed)
    rule = Rule("battery_percent", float(rng.choice([600.0, 3600.0])), 40.0, 25.0, 60.0, direction="below")
    n = int(rng.integers(20, 300))
    t = np.sort(NOW - rng.uniform(0, rule.window_seconds * 0.999, n))
    v = np.clip(rng.normal(rng.uniform(15, 60), 10, n), 0, 100)
    hysteresis = float(rng.choice([0.0, 2.0]))
    level = classify(float(v.mean()), rule.window_seconds, rule)
    current = float(rng.uniform(0, 100))
    interval = float(rng.choice([1.0, 7.0, 30.0]))
    got = project(rule, t, v, NOW, current, interval, level, hysteresis)
    expected = replay(rule, t, v, current, interval, level, hysteresis)
    if expected is None:
        assert got is None
    else:
        assert got is not None and (got.level, got.seconds) == (expected[0], pytest.approx(expected[1]))


def test_a_battery_running_down_heads_for_red() -> None:
    """An hour at 30 % a minute apart (ok for a rule: orange at 20 and under, red under 10);
    the charge now at 0: each minute one 30 leaves and one 0 comes, -0.5 a minute: at most 20
    after 20 minutes."""
    rule = Rule("battery_percent", H, 20.0, 10.0, 600.0, direction="below")
    t, v = full(30.0, window=H)
    assert project(rule, t, v, NOW, 0.0, 60.0, Level.OK) == Projection(Level.ORANGE, 20 * 60)


def test_first_verdict_comes_after_the_minimum_data() -> None:
    result = RuleResult("cpu_percent", 36 * H, 23.0, 240, 8 * 60, Level.UNKNOWN, 80.0, 90.0)
    assert first_verdict_in(RULE, result) == 52 * 60
    known = RuleResult("cpu_percent", 36 * H, 23.0, 2000, 2 * H, Level.OK, 80.0, 90.0)
    assert first_verdict_in(RULE, known) is None


# ------------------------------------------------- where it shows: status, the Slack message


def test_status_says_where_each_average_heads(data_dir) -> None:
    """A real ``trayapp status`` process on a real dataset: 36 h of CPU at 85 (orange), the last
    five minutes at 100; memory flat at 30. CPU heads for red, memory nowhere."""
    import json
    import subprocess
    import sys
    from datetime import datetime, timedelta, timezone

    from trayapp.synthetic import write_history

    now = datetime.now(timezone.utc)
    end = now.timestamp()
    write_history(data_dir, now - timedelta(hours=36), now, 60,
                  {"cpu_percent": lambda t: np.where(t > end - 300, 100.0, 85.0), "memory_percent": 30.0, "disk_percent": 40.0})
    config = data_dir.parent / "status.toml"
    config.write_text("[sampling]\ninterval_seconds = 60\n")

    def status(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "trayapp.cli", "--config", str(config), "--data-dir", str(data_dir), "status", *extra],
                              capture_output=True, text=True, timeout=60)

    done = status("--json")
    assert done.returncode == 0, done.stderr
    cpu, memory = json.loads(done.stdout)["rules"]
    assert cpu["level"] == "orange" and cpu["projection"]["level"] == "red"
    # about 12 h: +15/2160 a minute from 85.03 to above 90 (the newest samples' times shift it a little)
    assert 11.5 * H < cpu["projection"]["in_seconds"] < 12.5 * H
    assert "projection" not in memory  # flat at 30: ok for good
    assert set(memory) == {"metric", "window_seconds", "average", "samples", "coverage_seconds", "level", "contributors"}
    text = status()
    assert text.returncode == 0, text.stderr
    assert "36 h avg CPU 85 % — orange" in text.stdout and "; red in ≈ 12 h at the current load" in text.stdout


def test_a_transition_carries_its_heading_into_the_slack_message(tmp_path) -> None:
    """The engine attaches where the average heads to a transition; the message says it."""
    from datetime import datetime, timedelta, timezone

    from trayapp.engine import Engine
    from trayapp.model import Sample
    from trayapp.settings import Config
    from trayapp.slack import build_message
    from trayapp.synthetic import write_history

    now = datetime.now(timezone.utc).replace(microsecond=0)
    end = now.timestamp()
    # 2 h a minute apart: 79 until five minutes ago, then 100 (120 samples, average 79.875: ok)
    write_history(tmp_path / "data", now - timedelta(hours=2), now, 60,
                  {"cpu_percent": lambda t: np.where(t > end - 300, 100.0, 79.0), "memory_percent": 30.0, "disk_percent": 40.0})
    config = Config(sampling_interval_seconds=2.0, rules=(Rule("cpu_percent", 36 * H, 80.0, 90.0, H),))
    engine = Engine(config, tmp_path / "data")
    engine.start(now + timedelta(seconds=1))
    try:
        assert engine.states[0].window.average == pytest.approx(79.875)
        tick = engine.tick(Sample(now + timedelta(minutes=1), 100.0, 30.0, 40.0))
    finally:
        engine.stop()
    change, = tick.transitions
    assert (change.previous, change.current) == (Level.OK, Level.ORANGE)
    # nothing leaves a 36 h window holding 2 h, 121 minutes of one sample each (the tick's
    # included); the last five minutes are all 100, so 100 every 2 s. The average is over time:
    # each new minute at 100 counts once, however many samples fill it, and
    # (9685 + 100m)/(121 + m) > 90 from m = 121 minutes (a sample-weighted mean said 4 min here)
    assert dict(change.extra)["projection"] == "red in ≈ 2.0 h at the current load"
    message = build_message(change, host="box")
    assert "*Heading:* red in ≈ 2.0 h at the current load" in message["attachments"][0]["text"]


def test_a_projection_over_36_h_of_1_s_samples_holds_a_few_arrays_not_dozens() -> None:
    """The tray app projects each rule once a minute on its GUI thread: over 36 h of 1 s samples
    that is 129,600 old samples and as many new ones to come. A projection keeps one new sample
    a minute (the others do not move the average) and checks instants a block at a time, so it
    holds a few arrays of the window's size at once; all new samples at once held ~27 MB."""
    import tracemalloc

    n = int(36 * H)
    t = NOW - n + np.arange(n) + 0.5
    v = np.random.default_rng(3).uniform(85, 100, n)
    tracemalloc.start()
    try:
        got = project(RULE, t, v, NOW, 10.0, 1.0, Level.RED, 0.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got is not None and got.level is Level.ORANGE
    assert peak < 12 * 2**20, f"{peak / 2**20:.1f} MB"


@pytest.mark.parametrize("seed", range(10))
def test_new_samples_in_a_minute_that_holds_old_ones_move_the_average(seed: int) -> None:
    """``now`` in the middle of a minute that already holds samples: each new sample in that
    minute changes its mean (later minutes of new samples do not, whatever their count). The
    replay decides."""
    rng = np.random.default_rng(200 + seed)
    now = NOW + float(rng.uniform(20, 55))
    rule = Rule("cpu_percent", 600.0, 60.0, 75.0, 60.0)
    n = int(rng.integers(3, 30))
    t = np.sort(now - rng.uniform(0, now - NOW, n))  # all in the minute of now
    v = np.full(n, float(rng.uniform(76, 100)))  # red
    current = float(rng.uniform(0, 40))
    interval = float(rng.choice([0.5, 1.0, 2.0]))
    got = project(rule, t, v, now, current, interval, Level.RED, 0.0)
    expected = replay(rule, t, v, current, interval, Level.RED, 0.0, now)
    assert expected is not None and expected[1] < 60  # the minute of now decides it
    assert got is not None and (got.level, got.seconds) == (expected[0], pytest.approx(expected[1]))
