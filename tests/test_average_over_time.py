"""A window's average is over time: the mean of the per-minute means of the minutes with data.

Real datasets in a temporary folder, a real ``trayapp status --json`` process, the README's own
DuckDB query as the independent check, and the running window against a brute-force reference.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, trayapp_cmd
from trayapp.rules import RollingWindow, Rule, average_over_time, evaluate_arrays
from trayapp.storage.layout import local_zone
from trayapp.synthetic import write_samples

H = 3600.0


def brute_force(stamps, values) -> float | None:
    """The definition, one sample at a time: each UTC minute's mean, then the mean of those."""
    minutes: dict[int, list[float]] = {}
    for t, v in zip(stamps, values):
        if v is not None and math.isfinite(v) and abs(v) <= 1e15:
            minutes.setdefault(math.floor(t / 60), []).append(v)
    if not minutes:
        return None
    return math.fsum(math.fsum(vs) / len(vs) for vs in minutes.values()) / len(minutes)


def readme_query(hours: int, metric: str = "cpu_percent") -> str:
    """The DuckDB query of the README's rules paragraph, for a window of ``hours``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rules = readme[readme.index("**Rules.**"):]
    sql = re.search(r"```sql\n(.*?)```", rules, re.S).group(1)
    assert "INTERVAL 36 HOUR" in sql and "cpu_percent" in sql
    return sql.replace("INTERVAL 36 HOUR", f"INTERVAL {hours} HOUR").replace("cpu_percent", metric)


def duckdb_average(data_dir: Path, hours: int, monkeypatch: pytest.MonkeyPatch) -> float:
    duckdb = pytest.importorskip("duckdb")
    monkeypatch.chdir(data_dir)  # the README's paths are relative to the data folder
    con = duckdb.connect()
    statements = [s for s in readme_query(hours).split(";") if s.strip()]
    for statement in statements[:-1]:
        con.execute(statement)
    return con.execute(statements[-1]).fetchone()[0]


def status(data_dir: Path, hours: int) -> dict:
    config = data_dir.parent / "rules.toml"
    config.write_text(f'[[rules]]\nmetric = "cpu_percent"\nwindow = "{hours}h"\norange = 80.0\nred = 90.0\nmin_coverage = "1h"\n')
    done = subprocess.run(trayapp_cmd("--config", str(config), "--data-dir", str(data_dir), "status", "--json"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rule, = json.loads(done.stdout)["rules"]
    return rule


def minute(t: float) -> float:
    return math.floor(t / 60) * 60


def recorded(stretches: list[tuple[float, float, float]], end: float) -> tuple[np.ndarray, np.ndarray]:
    """Back-to-back stretches of (hours, step seconds, value) that end at ``end`` (a minute's
    start), each in [its start, its end): every minute holds one stretch only."""
    t_all, v_all = [], []
    start = end - sum(hours for hours, _, _ in stretches) * H
    for hours, step, value in stretches:
        t = np.arange(start, start + hours * H, step)
        t_all.append(t)
        v_all.append(np.full(t.size, value))
        start += hours * H
    return np.concatenate(t_all), np.concatenate(v_all)


def write(data_dir: Path, t: np.ndarray, v: np.ndarray) -> None:
    write_samples(data_dir, t, {"cpu_percent": v, "memory_percent": np.full(t.size, 30.0), "disk_percent": np.full(t.size, 40.0)})


def check(data_dir: Path, t: np.ndarray, v: np.ndarray, hours: int, expected: float, monkeypatch, tolerance: float = 1e-9) -> dict:
    """status, the README's DuckDB query and the brute-force definition give one number, and it
    is the average over time the case was built for."""
    rule = status(data_dir, hours)
    assert rule["samples"] == int(np.isfinite(v).sum())
    assert rule["average"] == pytest.approx(brute_force(t, v), rel=1e-9)
    assert duckdb_average(data_dir, hours, monkeypatch) == pytest.approx(rule["average"], rel=1e-9)
    assert rule["average"] == pytest.approx(expected, abs=tolerance)
    return rule


@pytest.mark.parametrize(("stretches", "by_samples"), [
    # the case: 34 h every 10 s at 50 %, then the interval set to 1 s and 2 h at 90 %
    ([(34, 10.0, 50.0), (2, 1.0, 90.0)], 64.8),
    # the reverse: fast, then slow
    ([(34, 1.0, 50.0), (2, 10.0, 90.0)], 50.2),
])
def test_a_change_of_interval_does_not_skew_the_average(data_dir, monkeypatch, stretches, by_samples) -> None:
    t, v = recorded(stretches, minute(datetime.now(timezone.utc).timestamp()))
    assert float(v.mean()) == pytest.approx(by_samples, abs=0.05)  # what a mean of the samples says
    write(data_dir, t, v)
    rule = check(data_dir, t, v, 40, (34 * 50 + 2 * 90) / 36, monkeypatch)  # 52.2 %
    # the running app's window, seeded from the same folder, says the same
    from trayapp.engine import Engine
    from trayapp.settings import Config

    engine = Engine(Config(rules=(Rule("cpu_percent", 40 * H, 80.0, 90.0, H),)), data_dir)
    engine.start()
    try:
        assert engine.states[0].window.average == pytest.approx(rule["average"], rel=1e-9)
    finally:
        engine.stop()


def _notebook_day(data_dir: Path, t: np.ndarray, as_text: bool) -> None:
    """A day file as the notebook wrote it: naive local times (text, or timestamps), snappy."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    naive = pd.Series(pd.to_datetime(t, unit="s", utc=True)).dt.tz_convert(local_zone()).dt.tz_localize(None).dt.round("us")
    day = naive.iloc[0]
    assert (naive.dt.date == day.date()).all()
    stamps = naive.dt.strftime("%Y-%m-%d %H:%M:%S.%f") if as_text else naive
    frame = pd.DataFrame({"timestamp": stamps, "cpu_percent": 40.0, "memory_percent": 30.0, "disk_percent": 40.0})
    folder = data_dir / "Monitoring" / f"Year={day.year}" / f"Month={day.month}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{day.day}.parquet", compression="snappy")


def test_a_notebook_history_at_2_s_then_the_app_at_1_s(data_dir, monkeypatch) -> None:
    """Two days as the notebook wrote them (naive local times, as timestamps and as text) every
    2 s at 40 %, then the app's own day file every second at 70 %, and today's CSV."""
    zone = local_zone()
    day = datetime.now(timezone.utc).astimezone(zone).date() - timedelta(days=20)
    while datetime.combine(day - timedelta(days=2), time(8), zone).utcoffset() != datetime.combine(day, time(2), zone).utcoffset():
        day -= timedelta(days=3)  # no DST change inside the case: naive times there are another story
    first = datetime.combine(day - timedelta(days=2), time(20), zone).timestamp()
    t_first = np.arange(first, first + 4 * H, 2.0) + 0.037847  # 20:00-24:00, 240 minutes
    second = datetime.combine(day - timedelta(days=1), time(8), zone).timestamp()
    t_second = np.arange(second, second + 16 * H, 2.0) + 0.037847  # 08:00-24:00, 960 minutes
    _notebook_day(data_dir, t_first, as_text=False)
    _notebook_day(data_dir, t_second, as_text=True)
    midnight = datetime.combine(day, time(0), zone).timestamp()
    t_app = np.arange(midnight, midnight + 2 * H, 1.0)  # the app's first two hours, 120 minutes
    end = minute(datetime.now(timezone.utc).timestamp())
    t_today = np.arange(end - 600, end, 1.0)  # the app, recording now: 10 minutes
    write(data_dir, t_app, np.full(t_app.size, 70.0))
    write(data_dir, t_today, np.full(t_today.size, 70.0))
    t = np.concatenate([t_first, t_second, t_app, t_today])
    v = np.concatenate([np.full(t_first.size + t_second.size, 40.0), np.full(t_app.size + t_today.size, 70.0)])
    expected = (1200 * 40 + 130 * 70) / 1330
    assert float(v.mean()) > expected + 2  # the mean of the samples leans to the app's 1 s
    check(data_dir, t, v, math.ceil((end - first) / H) + 2, expected, monkeypatch)


def test_a_sampler_that_skips(data_dir, monkeypatch) -> None:
    """12 h every second at 30 %, then 12 h at 95 % while the sampler falls behind (one sample
    every 1 to 45 s: every minute still has one). Over time that is 62.5 %; the samples say 33."""
    rng = np.random.default_rng(5)
    start = minute(datetime.now(timezone.utc).timestamp()) - 24 * H
    calm = np.arange(start, start + 12 * H, 1.0)
    busy = start + 12 * H + np.cumsum(rng.uniform(1.0, 45.0, 2500))
    busy = busy[busy < start + 24 * H]
    t = np.concatenate([calm, busy])
    v = np.concatenate([np.full(calm.size, 30.0), np.full(busy.size, 95.0)])
    v[::97] = np.nan  # a value the probe could not read: not a zero
    assert np.nanmean(v) < 35
    write(data_dir, t, v)
    check(data_dir, t, v, 30, 62.5, monkeypatch, tolerance=0.05)


@pytest.mark.parametrize("step", ["forward", "back"])
def test_a_clock_step(data_dir, monkeypatch, step: str) -> None:
    """NTP steps the clock. Forward an hour: the hour is a gap, not a stretch. Back an hour: the
    hour is recorded twice and each of its minutes averages both recordings (a minute counts
    once, so the repeated hour weighs what an hour weighs)."""
    end = minute(datetime.now(timezone.utc).timestamp())
    start = end - 30 * H  # days before today: day files, and today's CSV
    first = np.arange(start, start + 2 * H, 1.0)  # 2 h at 50
    if step == "forward":
        second = np.arange(start + 3 * H, start + 4 * H, 1.0)  # after the jump: 1 h at 80
        expected = (120 * 50 + 60 * 80 + 10 * 50) / 190
    else:
        second = np.arange(start + H, start + 2 * H, 1.0) + 0.5  # the last hour again, at 80, between the first's samples
        expected = (60 * 50 + 60 * (50 + 80) / 2 + 10 * 50) / 130
    tail = np.arange(end - 600, end, 1.0)  # today's CSV: the app recording now, at 50
    t = np.concatenate([first, second, tail])
    v = np.concatenate([np.full(first.size, 50.0), np.full(second.size, 80.0), np.full(tail.size, 50.0)])
    write(data_dir, t, v)
    check(data_dir, t, v, 36, expected, monkeypatch)


# ------------------------------------------------------- the running window, against brute force


streams = st.lists(
    st.tuples(
        st.one_of(st.floats(0.0, 3.0), st.floats(0.0, 200.0), st.just(0.0), st.floats(500.0, 5000.0)),  # steps: fast, slow, repeated, gaps
        st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False), st.just(math.nan), st.just(math.inf)),
    ),
    min_size=1, max_size=400,
)


@settings(max_examples=200, deadline=None)
@given(stream=streams, window=st.sampled_from([30.0, 60.0, 90.0, 600.0, 3600.0, 7200.0]), start=st.floats(1.7e9, 1.8e9))
def test_the_running_window_is_the_brute_force_average(stream, window: float, start: float) -> None:
    w = RollingWindow(window)
    t = start
    seen: list[tuple[float, float | None]] = []
    for i, (dt, value) in enumerate(stream):
        t += dt
        w.add(t, value)
        seen.append((t, value))
        inside = [(ti, vi) for ti, vi in seen if t - window < ti <= t]
        expected = brute_force([ti for ti, _ in inside], [vi for _, vi in inside])
        if expected is None:
            assert w.average is None
        else:
            assert w.average == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert w.samples == sum(1 for _, vi in inside if vi is not None and math.isfinite(vi))
    # a window seeded in bulk (start-up) holds the same, and the batch evaluation agrees
    stamps = np.array([ti for ti, _ in seen])
    values = np.array([math.nan if vi is None else vi for _, vi in seen])
    bulk = RollingWindow(window)
    bulk.extend(stamps, values, t)
    batch = evaluate_arrays(Rule("m", window, 1.0, 2.0, 0.0), stamps, values, t)
    for average in (bulk.average, batch.average):
        assert (average is None) == (w.average is None)
        if average is not None:
            assert average == pytest.approx(w.average, rel=1e-9, abs=1e-9)
    # and both go on alike after the bulk load
    for k in range(3):
        t += 47.0
        bulk.add(t, float(k))
        w.add(t, float(k))
        assert bulk.average == pytest.approx(w.average, rel=1e-9, abs=1e-9)


def test_a_long_run_does_not_drift() -> None:
    """Months of samples through one window: the running sums are recomputed as they go."""
    rng = np.random.default_rng(3)
    w = RollingWindow(600)
    t = 1.8e9
    tail: list[tuple[float, float]] = []
    for step, value in zip(rng.uniform(0.2, 3.0, 200_000), rng.choice([0.1, 99.9, 1e6], 200_000)):
        t += step
        w.add(t, value)
        tail.append((t, value))
    inside = [(ti, vi) for ti, vi in tail[-1000:] if ti > t - 600]
    assert w.average == pytest.approx(brute_force(*zip(*inside)), rel=1e-12)


def test_minutes_count_once_whatever_their_samples() -> None:
    # 59 samples in one minute at 0, one in the next at 100: the minutes average 50
    t = [60.0 * 1000 + i for i in range(59)] + [60.0 * 1001 + 5]
    v = [0.0] * 59 + [100.0]
    assert average_over_time(t, v) == 50.0
    w = RollingWindow(3600)
    for ti, vi in zip(t, v):
        w.add(ti, vi)
    assert (w.average, w.samples, w.minutes) == (50.0, 60, 2)
    # the window's edge cuts by sample: the older minute keeps only its samples after the edge
    w.advance(60.0 * 1000 + 3600 + 57)  # samples at ...+0 .. ...+57 leave, ...+58 stays
    assert (w.average, w.samples, w.minutes) == (50.0, 2, 2)
    w.advance(60.0 * 1000 + 3600 + 58)
    assert (w.average, w.samples, w.minutes) == (100.0, 1, 1)
