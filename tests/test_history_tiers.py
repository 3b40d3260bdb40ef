"""The window's history from the rollup tiers: the tier that fits each range, and what it draws
equal to a brute-force binning of the raw rows (DST, gaps, a missing tier folder, today's CSV)."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from trayapp.storage import ranges as history, tier_builder as rollups
from trayapp.synthetic import write_history
from trayapp.storage import bins
from trayapp.storage import tiers
from trayapp.storage import window_series
from tests import tier_reads

BERLIN = ZoneInfo("Europe/Berlin")
DAY = 86400


def wobble(t: np.ndarray) -> np.ndarray:
    """A value that changes every sample, so min, max and means all differ per bin."""
    return np.round(50 + 40 * np.sin(t / 977.0) + (t % 7), 3)


def brute(data_dir: Path, series: window_series.Series, name: str, width: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per drawn bin, the min and max of the raw samples in it, and per local period the mean:
    computed here from every raw row, independently of the tiers."""
    x, _ = series.curves[name]
    centres = (x[0::2] + x[1::2]) / 2
    step = centres[1] - centres[0]
    origin = centres[0] - step / 2
    table = history.read(data_dir, None, None, [name])
    t = table.column("timestamp").cast("int64").to_numpy() / 1e6
    v = table.column(name).to_numpy(zero_copy_only=False).astype(float)
    keep = (t >= np.floor(series.start / width) * width) & (t <= series.end) & ~np.isnan(v)
    t, v = t[keep], v[keep]
    idx = np.floor((t - origin) / step).astype(int)
    lo = np.full(len(centres), np.nan)
    hi = np.full(len(centres), np.nan)
    for i in np.unique(idx):
        lo[i], hi[i] = v[idx == i].min(), v[idx == i].max()
    period = DAY if series.mean_period == "daily" else 3600
    local = np.array([datetime.fromtimestamp(s, BERLIN).utcoffset().total_seconds() for s in t]) + t
    means = {}
    for p in np.unique(local // period):
        inside = local // period == p
        begin = p * period - (local[inside][0] - t[inside][0])  # the local period's start, in UTC
        if begin >= series.start and (begin + period <= series.end or begin + period > time.time()):
            means[p] = v[inside].mean()  # a period the range holds whole (or the one under way at its end)
    return lo, hi, means


def check(data_dir: Path, series: window_series.Series, name: str, width: float) -> None:
    x, y = series.curves[name]
    lo, hi, means = brute(data_dir, series, name, width)
    np.testing.assert_array_equal(y[0::2], lo)
    np.testing.assert_array_equal(y[1::2], hi)
    mx, my = series.means[name]
    got = my[~np.isnan(my)]
    np.testing.assert_allclose(got, [means[k] for k in sorted(means)], rtol=1e-9)


def test_each_range_reads_the_tier_that_fits_it() -> None:
    assert window_series.pick_tier(600) == "raw"  # the live view, and a zoom
    assert window_series.pick_tier(6 * 3600) == "raw"
    assert window_series.pick_tier(36 * 3600) == "minute"
    assert window_series.pick_tier(30 * DAY) == "minute"
    assert window_series.pick_tier(90 * DAY) == "hour"
    assert window_series.pick_tier(365 * DAY) == "hour"


@pytest.fixture
def dst_week(data_dir: Path) -> tuple[Path, datetime]:
    """A week around the spring DST change (29 March 2026, 23 hours) every 7 s (8 or 9 samples a
    minute, so a mean that ignored the counts would be wrong), with a 5 h gap,
    and a column that starts mid-week."""
    end = datetime(2026, 4, 1, 15, 0, tzinfo=BERLIN)
    start = end - timedelta(days=7)
    write_history(data_dir, start, datetime(2026, 3, 28, 9, tzinfo=BERLIN), 7, {"cpu_percent": wobble, "memory_percent": 40.0}, today_in_csv=False)
    write_history(data_dir, datetime(2026, 3, 28, 14, tzinfo=BERLIN), end, 7, {"cpu_percent": wobble, "memory_percent": 40.0, "gpu0_util_percent": wobble}, today_in_csv=False)
    return data_dir, end


def test_a_week_from_minutes_equals_the_raw_rows_binned(dst_week: tuple[Path, datetime]) -> None:
    data_dir, end = dst_week
    rollups.ensure(data_dir)
    series = window_series.prepare_history(data_dir, 7 * DAY, now=end)
    assert series.tier == "minute" and series.mean_period == "hourly"
    for name in ("cpu_percent", "gpu0_util_percent"):
        check(data_dir, series, name, 60)
    lo = series.curves["cpu_percent"][1][0::2]
    assert np.isnan(lo).sum() >= 5 * 60 // 7 - 2  # the 5 h gap stays a gap (bins of 7 min)
    raw = window_series.prepare_history(data_dir, 7 * DAY, now=end, tiers=False)
    assert series.rows == raw.rows  # every sample counted once


def test_a_missing_tier_folder_still_draws_every_sample(dst_week: tuple[Path, datetime]) -> None:
    data_dir, end = dst_week
    rollups.ensure(data_dir)
    with_tiers = window_series.prepare_history(data_dir, 7 * DAY, now=end)
    shutil.rmtree(data_dir / "Rollups")  # a reader never writes tiers: it bins the day files itself
    without = window_series.prepare_history(data_dir, 7 * DAY, now=end)
    assert not (data_dir / "Rollups").exists()
    for name in with_tiers.curves:
        np.testing.assert_array_equal(with_tiers.curves[name][1], without.curves[name][1])
        np.testing.assert_allclose(with_tiers.means[name][1], without.means[name][1], rtol=1e-12)


@pytest.mark.slow  # a year of history
def test_a_year_from_hours_with_daily_means(data_dir: Path) -> None:
    end = datetime(2026, 11, 20, 12, tzinfo=BERLIN)
    write_history(data_dir, end - timedelta(days=365), end, 300, {"cpu_percent": wobble}, today_in_csv=False)
    rollups.ensure(data_dir)
    series = window_series.prepare_history(data_dir, 365 * DAY, now=end)
    assert series.tier == "hour" and series.mean_period == "daily"
    assert len(series.curves["cpu_percent"][0]) <= 2 * window_series.BINS
    check(data_dir, series, "cpu_percent", 3600)
    # a month whose hour file is gone is read from its minute tier, the same numbers
    (hour_file,) = [p for p in (data_dir / "Rollups" / "hour").rglob("*.parquet") if p.name == "3.parquet"]
    hour_file.unlink()
    again = window_series.prepare_history(data_dir, 365 * DAY, now=end)
    np.testing.assert_array_equal(again.curves["cpu_percent"][1], series.curves["cpu_percent"][1])


def test_today_comes_from_the_csv_and_a_zoom_from_raw_rows(data_dir: Path) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=40), now, 5, {"cpu_percent": wobble})  # today's rows in the CSV
    rollups.ensure(data_dir)
    series = window_series.prepare_history(data_dir, 36 * 3600, now=now)
    assert series.tier == "minute"
    check(data_dir, series, "cpu_percent", 60)
    x, y = series.curves["cpu_percent"]
    assert not np.isnan(y[-4:]).all()  # the last minutes, only in the CSV, are there
    zoom = window_series.prepare_history(data_dir, 36 * 3600, now=now - timedelta(hours=1), start=now - timedelta(hours=3))
    assert zoom.tier == "raw" and zoom.rows == 2 * 3600 / 5


def test_samples_sparser_than_the_bins_still_make_a_band_and_a_gap_stays_a_gap(data_dir: Path) -> None:
    # a recorder every 10 minutes, drawn in 7-minute bins: most bins hold one sample, some none
    end = datetime(2026, 11, 20, 12, tzinfo=BERLIN)
    write_history(data_dir, end - timedelta(days=7), end - timedelta(days=3), 600, {"cpu_percent": wobble}, today_in_csv=False)
    write_history(data_dir, end - timedelta(days=3) + timedelta(hours=6), end, 600, {"cpu_percent": wobble}, today_in_csv=False)
    rollups.ensure(data_dir)
    series = window_series.prepare_history(data_dir, 7 * DAY, now=end)
    x, y = series.curves["cpu_percent"]
    lo, hi = y[0::2], y[1::2]
    centres = (x[0::2] + x[1::2]) / 2
    gap_start, gap_end = (end - timedelta(days=3)).timestamp(), (end - timedelta(days=3, hours=-6)).timestamp()
    in_gap = (centres > gap_start + 700) & (centres < gap_end - 700)
    near_gap = (centres > gap_start - 700) & (centres < gap_end + 700)
    covered = (centres > (end - timedelta(days=7)).timestamp() + 700) & (centres < end.timestamp() - 700) & ~near_gap
    assert np.isnan(lo[in_gap]).all() and in_gap.sum() >= 45  # six hours off: still a gap
    assert not np.isnan(lo[covered]).any() and not np.isnan(hi[covered]).any()  # no holes between samples
    assert np.all(lo[covered] <= hi[covered])


# ------------------------------------------- what a long-running machine does to the tiers
# (found by review: each of these lost or doubled rows in a range before the tier zone/raw zone split)


def totals(data_dir: Path, tier: str, start: datetime, end: datetime) -> tuple[tuple[int, float], tuple[int, float]]:
    """(samples, their sum) per the tier read, and per every raw row in the same bins."""
    width = bins.TIERS[tier]
    _, stats = tier_reads.read_tier(data_dir, tier, start, end, ["cpu_percent"])
    _, mean, _, count = stats["cpu_percent"]
    ok = count > 0
    table = history.read(data_dir, None, None, ["cpu_percent"])
    t = table.column("timestamp").cast("int64").to_numpy() / 1e6
    v = table.column("cpu_percent").to_numpy(zero_copy_only=False).astype(float)
    keep = (t >= (start.timestamp() // (width / 1e6)) * (width / 1e6)) & (t <= end.timestamp()) & ~np.isnan(v)
    return (int(count[ok].sum()), round(float((mean[ok] * count[ok]).sum()), 3)), (int(keep.sum()), round(float(v[keep].sum()), 3))


def local_midnight(now: datetime) -> datetime:
    day = now.astimezone(BERLIN).date()
    return datetime(day.year, day.month, day.day, tzinfo=BERLIN)


def test_days_whose_tiers_are_missing_stale_or_unreadable_are_read_from_their_day_files(data_dir: Path) -> None:
    now = datetime.now(timezone.utc)
    cut = local_midnight(now) - timedelta(days=3)
    write_history(data_dir, cut - timedelta(days=40), cut - timedelta(seconds=60), 60, {"cpu_percent": wobble})
    rollups.ensure(data_dir)
    # two more days rolled over, but their tiers failed: the month's hour file exists, without them
    write_history(data_dir, cut - timedelta(seconds=60), cut + timedelta(days=2), 60, {"cpu_percent": 50.0})
    for tier, span in (("minute", 30 * DAY), ("hour", 365 * DAY)):
        got, raw = totals(data_dir, tier, now - timedelta(seconds=span), now)
        assert got == raw, tier
    # an unreadable minute file and an unreadable hour file: their days come from the day files
    rollups.ensure(data_dir)
    minute = next((data_dir / "Rollups" / "minute").rglob("*.parquet"))
    minute.write_bytes(b"not parquet")
    hour = sorted((data_dir / "Rollups" / "hour").rglob("*.parquet"))[0]
    hour.write_bytes(b"PAR1")
    for tier, span in (("minute", 60 * DAY), ("hour", 365 * DAY)):
        got, raw = totals(data_dir, tier, now - timedelta(seconds=span), now)
        assert got == raw, tier


def test_a_clock_stepped_back_after_an_early_rollover_loses_no_row(data_dir: Path) -> None:
    # today was rolled over early (the clock ran ahead at boot) and has a minute tier; the rest of
    # today is in the CSV: those rows are read, not dropped because "today has a tier"
    from trayapp.synthetic import _append_csv

    now = datetime.now(timezone.utc).replace(microsecond=0)
    midnight = local_midnight(now)
    early = midnight + (now - midnight) / 4
    write_history(data_dir, midnight, early, 10, {"cpu_percent": 10.0}, today_in_csv=False)
    rollups.ensure(data_dir)
    ts = np.arange(early.timestamp() + 10, now.timestamp() + 1, 10)
    import pyarrow as pa

    rest = pa.table({"timestamp": pa.array((ts * 1e6).astype("int64"), pa.timestamp("us", tz="UTC")), "cpu_percent": pa.array(np.full(len(ts), 20.0))})
    _append_csv(data_dir / "csv_dump" / "daily_dump.csv", rest, ["cpu_percent"], BERLIN)
    got, raw = totals(data_dir, "minute", now - timedelta(hours=36), now)
    assert got == raw and got[0] > len(ts)


def test_rows_both_in_the_csv_and_an_untiered_day_file_count_once(data_dir: Path) -> None:
    # a rollover wrote yesterday's day file, its tiers failed and the CSV was not trimmed yet
    from trayapp.synthetic import _append_csv

    now = datetime.now(timezone.utc).replace(microsecond=0)
    midnight = local_midnight(now)
    write_history(data_dir, midnight - timedelta(days=1), midnight - timedelta(seconds=10), 10, {"cpu_percent": 10.0}, today_in_csv=False)
    table = history.read(data_dir, None, None, ["cpu_percent"])
    _append_csv(data_dir / "csv_dump" / "daily_dump.csv", table, ["cpu_percent"], BERLIN)
    for tier, span in (("minute", 3 * DAY), ("hour", 365 * DAY)):  # all of yesterday whatever the hour now (36 h: only before noon)
        got, raw = totals(data_dir, tier, now - timedelta(seconds=span), now)
        assert got == raw and got[0] == table.num_rows, tier


def test_a_rollover_between_the_csv_read_and_the_tier_read_loses_nothing(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # midnight: the sampler's rollover runs while the window's worker reads
    from trayapp.storage.writer import Store

    now = datetime.now(timezone.utc).replace(microsecond=0)
    midnight = local_midnight(now)
    write_history(data_dir, now - timedelta(days=3), midnight - timedelta(days=1, seconds=10), 10, {"cpu_percent": 10.0}, today_in_csv=False)
    rollups.ensure(data_dir)
    from trayapp.synthetic import _append_csv
    import pyarrow as pa

    ts = np.arange((midnight - timedelta(days=1)).timestamp(), now.timestamp() + 1, 10)
    rows = pa.table({"timestamp": pa.array((ts * 1e6).astype("int64"), pa.timestamp("us", tz="UTC")), "cpu_percent": pa.array(np.full(len(ts), 10.0))})
    _append_csv(data_dir / "csv_dump" / "daily_dump.csv", rows, ["cpu_percent"], BERLIN)  # yesterday not rolled over yet
    # from before yesterday whatever the hour now (36 h back reaches it only before noon): a tier is read
    before = totals(data_dir, "minute", now - timedelta(days=3), now)
    read_cache = tiers.read_cache
    rolled = []

    def rollover_first(path, metrics=None):  # the first tier read (the numpy copies come first)
        if not rolled:
            rolled.append(Store(data_dir).maintain(midnight.date()))  # yesterday leaves the CSV now
        return read_cache(path, metrics)

    monkeypatch.setattr(history, "read_cache", rollover_first)
    got, raw = totals(data_dir, "minute", now - timedelta(days=3), now)
    assert rolled and got == raw == before[1]


@pytest.mark.parametrize("zone, start", [
    ("Asia/Kolkata", datetime(2026, 11, 28, 22, 10, tzinfo=timezone.utc)),  # +5:30 all year
    ("Australia/Lord_Howe", datetime(2026, 10, 3, 13, 10, tzinfo=timezone.utc)),  # +10:30 to +11 at 02:00 local on 4 Oct
    ("Europe/Berlin", datetime(2026, 10, 24, 22, 10, tzinfo=timezone.utc)),  # 02:00-03:00 twice on 25 Oct
])
def test_hourly_means_are_of_local_clock_hours_across_offset_changes(zone: str, start: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoneinfo import ZoneInfo

    from trayapp.storage import ranges as history

    tz = ZoneInfo(zone)
    monkeypatch.setattr(window_series, "local_zone", lambda: tz)
    t = start.timestamp() + np.arange(0, 8 * 3600, 50.0)
    v = (np.arange(len(t)) % 97).astype(float)
    x, means = window_series.hourly_means(t, v)
    # the truth, sample by sample: the local clock hour it fell in, told apart by its offset
    truth: dict = {}
    for s, value in zip(t, v):
        local = datetime.fromtimestamp(s, tz)
        truth.setdefault((local.strftime("%Y-%m-%d %H"), local.utcoffset()), []).append((s, value))
    assert len(truth) == len(means)  # 9 hours in 8 h of samples; Lord Howe's 02:xx lasts 30 minutes
    assert list(means) == pytest.approx([float(np.mean([v for _, v in rows])) for rows in truth.values()], rel=1e-12)
    for rows, mid in zip(truth.values(), x):  # each mean drawn at its hour's middle
        whole = rows[-1][0] - rows[0][0] >= 3600 - 50  # a whole hour of samples: its middle, to a sample
        assert abs(mid - np.mean([s for s, _ in rows])) <= (30 if whole else 1800)


@pytest.mark.parametrize("raw", [False, True])
def test_the_mean_line_holds_whole_hours_only_never_an_hour_cut_by_the_range(data_dir: Path, raw: bool) -> None:
    # a saw in every hour: each whole hour averages the same; a part of one does not
    now = datetime.now(timezone.utc)
    top = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)  # the last whole hour with data ends here
    saw = lambda t: np.mod(t, 3600) / 36  # noqa: E731 - 0 … 99.97 within each UTC hour (Berlin's hours start on UTC's)
    write_history(data_dir, now - timedelta(hours=40), top - timedelta(seconds=10), 10, {"cpu_percent": saw})
    whole = np.mean(np.arange(0, 3600, 10) / 36)
    for start, end in ((None, None), (now - timedelta(hours=20, minutes=23), now - timedelta(hours=4, minutes=37))):
        series = window_series.prepare_history(data_dir, 36 * 3600, now=end, start=start, tiers=not raw)
        _, means = series.means["cpu_percent"]
        shown = means[np.isfinite(means)]
        assert len(shown) >= 14 and np.allclose(shown, whole, atol=0.05), (start, shown)  # no cut hour at either end


def test_a_zoom_ending_inside_the_hour_under_way_keeps_no_partial_mean() -> None:
    now = datetime.now(timezone.utc).timestamp()
    hour = now - now % 3600  # the start of this UTC hour (a Berlin hour too)
    series = window_series.Series(3 * 3600, hour - 2 * 3600, hour + 1)  # a zoom that ends one second into this hour
    x = np.array([hour - 5400, hour - 1800, hour + 1800])
    series.means["cpu_percent"] = (x, np.array([30.0, 30.0, 99.0]))  # the last: one second's mean
    window_series.whole_periods_only(series, max(now, hour + 1))
    assert list(np.isnan(series.means["cpu_percent"][1])) == [False, False, now - (hour + 1) > window_series.ENDS_NOW]
    ending_now = window_series.Series(3 * 3600, now - 3 * 3600, now)  # the range that ends now keeps its hour so far
    ending_now.means["cpu_percent"] = (np.array([hour + 1800]), np.array([99.0]))
    window_series.whole_periods_only(ending_now, now)
    assert not np.isnan(ending_now.means["cpu_percent"][1][0])
