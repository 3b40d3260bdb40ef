"""The window's reads without Arrow: the tiers' numpy copies (``Rollups/.window``) and the
writer's minute bins of its CSV (``Store.minutes``) give what the Parquet tiers and the CSV give,
and anything stale, torn or missing falls back to them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from trayapp.storage import bins, ranges as history, tier_builder as rollups
from trayapp.storage.layout import day_path, local_zone
from trayapp.model import Sample
from trayapp.storage.writer import Store
from trayapp.synthetic import write_history
from trayapp.storage import rows_file
from trayapp.storage import tiers
from trayapp.storage import window_series
from tests import tier_reads

DAY = 86400


def wobble(t: np.ndarray) -> np.ndarray:
    return np.round(50 + 40 * np.sin(t / 977.0) + (t % 7), 3)


def local_midnight(moment: datetime) -> datetime:
    local = moment.astimezone(local_zone())
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)


@pytest.fixture
def recent_history(data_dir: Path) -> tuple[Path, datetime]:
    """Ten days every 13 s up to now (today in the CSV), a GPU column from day 4 on."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=10)
    write_history(data_dir, start, start + timedelta(days=4), 13, {"cpu_percent": wobble, "memory_percent": 40.0})
    write_history(data_dir, start + timedelta(days=4), now, 13, {"cpu_percent": wobble, "memory_percent": 40.0, "gpu0_util_percent": wobble})
    rollups.ensure(data_dir)
    return data_dir, now


def same(a: tuple, b: tuple, rtol: float = 0.0) -> None:
    """The same bins and stats (``rtol``: means summed in another order may differ in the last bit)."""
    (ba, sa), (bb, sb) = a, b
    np.testing.assert_array_equal(ba, bb)
    assert list(sa) == list(sb)
    for name in sa:
        for x, y in zip(sa[name], sb[name]):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=0, equal_nan=True, err_msg=name)


def test_each_copy_holds_what_its_parquet_tier_holds(recent_history: tuple[Path, datetime]) -> None:
    data_dir, now = recent_history
    minute_copies = sorted((data_dir / "Rollups" / ".window" / "minute").glob("*.npy"))
    hour_copies = sorted((data_dir / "Rollups" / ".window" / "hour").glob("*.npy"))
    assert len(minute_copies) >= 10 and hour_copies
    for path in minute_copies:
        day = date.fromisoformat(path.stem)
        copy = tiers.read_cache(path)
        parquet = pq.read_table(tiers.minute_path(data_dir, day))
        same(copy[:2], rollups._bins_of_tier_table(parquet))
        assert copy[2] == json.loads(parquet.schema.metadata[rollups.META_KEY])["sources"]
    for path in hour_copies:
        year, month = map(int, path.stem.split("-"))
        same(tiers.read_cache(path)[:2], rollups._bins_of_tier_table(pq.read_table(tiers.hour_path(data_dir, year, month))))


def test_an_hour_tier_built_from_the_copies_equals_one_built_from_parquet(recent_history: tuple[Path, datetime]) -> None:
    # a rollover rebuilds its month's hours from the days' minute copies (~5x faster than Parquet)
    data_dir, now = recent_history
    local = now.astimezone(local_zone())
    path = tiers.hour_path(data_dir, local.year, local.month)
    rollups.build_month(data_dir, local.year, local.month)
    from_copies = pq.read_table(path)
    shutil.rmtree(data_dir / "Rollups" / ".window")
    rollups.build_month(data_dir, local.year, local.month)
    from_parquet = pq.read_table(path)
    same(rollups._bins_of_tier_table(from_copies), rollups._bins_of_tier_table(from_parquet))
    assert from_copies.schema.metadata == from_parquet.schema.metadata  # the same record of the day files
    assert from_copies.num_rows > 24


def test_a_read_from_the_copies_equals_one_from_parquet(recent_history: tuple[Path, datetime]) -> None:
    data_dir, now = recent_history
    for tier, span in (("minute", 7 * DAY), ("hour", 365 * DAY)):
        with_copies = tier_reads.read_tier(data_dir, tier, now - timedelta(seconds=span), now)
        os.rename(data_dir / "Rollups" / ".window", data_dir / "window-aside")
        try:
            without = tier_reads.read_tier(data_dir, tier, now - timedelta(seconds=span), now)
        finally:
            os.rename(data_dir / "window-aside", data_dir / "Rollups" / ".window")
        same(with_copies, without)
        assert with_copies[1]["cpu_percent"][3].sum() > 0


def test_a_stale_or_torn_copy_is_not_used_and_the_next_start_mends_it(recent_history: tuple[Path, datetime]) -> None:
    data_dir, now = recent_history
    day = (now - timedelta(days=3)).astimezone(local_zone()).date()
    before = tier_reads.read_tier(data_dir, "minute", now - timedelta(days=7), now)
    # the day file changes behind the tiers' back (another tool rewrote it): its copy is stale
    path = day_path(data_dir, day)
    table = pq.read_table(path)
    table = table.set_column(table.schema.get_field_index("cpu_percent"), "cpu_percent", pq.read_table(path).column("memory_percent"))
    pq.write_table(table, path)
    after = tier_reads.read_tier(data_dir, "minute", now - timedelta(days=7), now)
    midday = datetime.combine(day, datetime.min.time(), local_zone()).replace(hour=12).timestamp()
    i = int(np.searchsorted(after[0], midday))
    assert after[1]["cpu_percent"][1][i] == 40.0 != before[1]["cpu_percent"][1][i]  # the new values, not the copy's
    # torn copies: garbage values, a torn record
    copy = tiers.cache_path(data_dir, "minute", day - timedelta(days=1))
    copy.write_bytes(b"\x93NUMPY garbage")
    tiers.cache_path(data_dir, "minute", day - timedelta(days=2)).with_suffix(".json").write_text("{not json")
    cut = tiers.cache_path(data_dir, "minute", day - timedelta(days=3))  # a whole header, half the values
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    assert tiers.cache_intact(cut) is None and tiers.read_cache(cut) is None
    again = tier_reads.read_tier(data_dir, "minute", now - timedelta(days=7), now)
    same(again, after)
    rollups.ensure(data_dir)  # the next start: every copy fresh again
    for d in (day, day - timedelta(days=1), day - timedelta(days=2), day - timedelta(days=3)):
        got = tiers.read_cache(tiers.cache_path(data_dir, "minute", d))
        assert got is not None and got[2] == {d.isoformat(): tiers.stamp(day_path(data_dir, d))}
        assert tiers.cache_intact(tiers.cache_path(data_dir, "minute", d)) == got[2]
    same(tier_reads.read_tier(data_dir, "minute", now - timedelta(days=7), now), after)


def test_copies_are_kept_only_as_long_as_the_window_reads_minutes(data_dir: Path) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    write_history(data_dir, now - timedelta(days=70), now - timedelta(days=60), 600, {"cpu_percent": 5.0}, today_in_csv=False)
    rollups.ensure(data_dir)
    days = sorted(date.fromisoformat(p.stem) for p in (data_dir / "Rollups" / ".window" / "minute").glob("*.npy"))
    assert days and min(days) >= date.today() - timedelta(days=tiers.MINUTE_DAYS)
    assert len(list((data_dir / "Rollups" / "minute").rglob("*.parquet"))) >= 10  # the Parquet tiers stay


def rows(start: float, n: int, step: float) -> list[tuple[int, dict]]:
    out = []
    for k in range(n):
        t = start + k * step
        values: dict = {"cpu_percent": float(wobble(np.array([t]))[0]), "memory_percent": None if k % 5 == 0 else 30.0 + k % 3}
        if k > n // 2:
            values["gpu0_util_percent"] = float(k % 100)
        out.append((int(round(t * 1e6)), values))
    return out


def test_minute_bins_equal_binning_every_row() -> None:
    got = bins.MinuteBins()
    added = rows(1_780_000_000.0, 2000, 7.0)
    seeded, later = added[:700], added[700:]
    names = ["cpu_percent", "memory_percent"]
    ts = np.array([t for t, _ in seeded])
    got.seed(*bins.aggregate(ts, {n: np.array([v.get(n) if v.get(n) is not None else np.nan for _, v in seeded]) for n in names}, 60_000_000))
    for t, values in later[:-5]:
        got.add(t, values)
    for t, values in later[-5:]:  # the clock stepped back into earlier minutes
        got.add(t - 3_600_000_000, values)
    everything = [*added[:-5], *[(t - 3_600_000_000, v) for t, v in added[-5:]]]
    ts = np.array([t for t, _ in everything])
    names.append("gpu0_util_percent")
    want = bins.aggregate(ts, {n: np.array([np.nan if v.get(n) is None else v[n] for _, v in everything]) for n in names}, 60_000_000)
    b, stats = got.snapshot()
    np.testing.assert_array_equal(b, want[0])
    for name in names:
        for x, y in zip(stats[name], want[1][name]):
            np.testing.assert_allclose(x, y, rtol=1e-12, equal_nan=True)


def sample_at(moment: datetime, cpu: float) -> Sample:
    return Sample(timestamp=moment, cpu_percent=cpu, memory_percent=50.0, disk_percent=20.0)


def test_the_writers_minutes_follow_its_csv_through_a_midnight(data_dir: Path) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    midnight = local_midnight(now)
    start = midnight - timedelta(minutes=30)
    write_history(data_dir, start - timedelta(days=2), start, 10, {"cpu_percent": wobble, "memory_percent": 50.0, "disk_percent": 20.0}, today_in_csv=False)
    store = Store(data_dir, minutes=True)
    store.open_writer(start)
    try:
        for k in range(360):  # 30 min before midnight to 30 min after, every 10 s
            store.append(sample_at(start + timedelta(seconds=10 * k), 10.0 + k % 17 + 0.123456))
            if k in (100, 359):
                want = history.csv_minutes(data_dir)
                same(store.minutes.snapshot(list(want[1])), want, rtol=1e-12)
        assert store.minutes.snapshot()[0][0] >= int(midnight.timestamp() * 1e6)  # yesterday left with the rollover
        # the window's read through the minutes equals the one through the CSV
        for span in (36 * 3600, 7 * DAY, 365 * DAY):
            end = start + timedelta(seconds=3590)
            a = window_series.prepare_history(data_dir, span, now=end, minutes=store.minutes)
            b = window_series.prepare_history(data_dir, span, now=end)
            assert a.rows == b.rows > 0 and set(a.curves) == set(b.curves)
            for name in a.curves:
                np.testing.assert_allclose(a.curves[name][1], b.curves[name][1], equal_nan=True, err_msg=f"{span} {name}")
                np.testing.assert_allclose(a.means[name][1], b.means[name][1], equal_nan=True, rtol=1e-9)
    finally:
        store.close()


def test_the_window_read_in_a_writer_never_loads_arrow(recent_history: tuple[Path, datetime], tmp_path: Path) -> None:
    # a real writer with its Arrow work in a child, as the tray app runs; then every tiered range
    data_dir, now = recent_history
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from trayapp.storage.child_job import run_job as run
        from trayapp.storage.window_series import prepare_history
        from trayapp.storage.writer import Store
        store = Store(Path({str(data_dir)!r}), jobs=run, minutes=True)
        store.open_writer()
        assert store.minutes is not None and len(store.minutes.snapshot()[0]) > 0
        for span in (36 * 3600, 7 * 86400, 30 * 86400, 365 * 86400):
            series = prepare_history(Path({str(data_dir)!r}), span, minutes=store.minutes)
            assert series.rows > 0 and "cpu_percent" in series.curves, span
        assert store.rows is not None
        for span in (600, 3600, 20 * 3600, 24.9 * 3600):  # zooms: raw samples, and minutes before today's
            series = prepare_history(Path({str(data_dir)!r}), span, minutes=store.minutes, rows=store.rows.view())
            assert series.rows > 0 and "cpu_percent" in series.curves, span
        print("ARROW", "pyarrow" in sys.modules)
        if sys.argv[1:] == ["control"]:  # a read that has to parse the CSV: the check can fail
            prepare_history(Path({str(data_dir)!r}), 36 * 3600)
            print("ARROW", "pyarrow" in sys.modules)
        store.close()
    """)
    for args, want in (([], ["ARROW False"]), (["control"], ["ARROW False", "ARROW True"])):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert [line for line in done.stdout.splitlines() if line.startswith("ARROW")] == want


ZOOM_DAY = date(2026, 11, 10)  # any past day: the recorder is opened as if it were that day


def zoom_recorder(data_dir: Path, step: float, minutes: int) -> tuple[Store, datetime]:
    """A writer whose CSV holds ``minutes`` of samples every ``step`` s from 10:00 on ZOOM_DAY, and
    the day before in day files and tiers."""
    zone = local_zone()
    ten = datetime(ZOOM_DAY.year, ZOOM_DAY.month, ZOOM_DAY.day, 10, tzinfo=zone).astimezone(timezone.utc)
    midnight = datetime(ZOOM_DAY.year, ZOOM_DAY.month, ZOOM_DAY.day, tzinfo=zone).astimezone(timezone.utc)
    write_history(data_dir, midnight - timedelta(days=1), midnight - timedelta(seconds=1), 30, {"cpu_percent": 7.0, "memory_percent": 8.0},
                  today_in_csv=False)
    rollups.ensure(data_dir)
    store = Store(data_dir, jobs=__import__("trayapp.storage", fromlist=["run_job"]).run_job, minutes=True)
    store.open_writer(ten)
    n = int(minutes * 60 / step)
    for k in range(n):
        t = ten + timedelta(seconds=k * step)
        store.append(Sample(t, float(wobble(np.array([t.timestamp()]))[0]), None if k % 9 == 0 else 30.0 + k % 4, 55.0))
    return store, ten


@pytest.mark.parametrize("step, minutes, zoom_minutes", [(1.0, 40, 20), (0.25, 30, 25)])
def test_a_zoom_in_the_writer_reads_raw_samples_from_the_rows_file(data_dir: Path, step: float, minutes: int, zoom_minutes: int) -> None:
    # the same curves as a raw read of the CSV with Arrow: a line through each sample when few,
    # the same band of screen bins when many
    store, ten = zoom_recorder(data_dir, step, minutes)
    try:
        end = ten + timedelta(minutes=minutes - 5)
        start = end - timedelta(minutes=zoom_minutes)
        here = window_series.prepare_history(data_dir, 36 * 3600, now=end, start=start, minutes=store.minutes, rows=store.rows.view())
        arrow = window_series.prepare_history(data_dir, 36 * 3600, now=end, start=start)
        assert here.note == "" and here.rows == arrow.rows == int(zoom_minutes * 60 / step)
        assert here.binned == arrow.binned and set(here.curves) == set(arrow.curves) == {"cpu_percent", "memory_percent", "disk_percent"}
        for name in arrow.curves:
            if name in arrow.binned:  # the same min/max per screen bin; here the sample at the end has a bin of its own
                (hx, hy), (ax, ay) = here.curves[name], arrow.curves[name]
                assert len(hx) - len(ax) in (0, 2), name
                np.testing.assert_array_equal(hx[:len(ax)], ax)
                np.testing.assert_array_equal(hy[:len(ax) - 2], ay[:-2], err_msg=name)
            else:
                np.testing.assert_array_equal(here.curves[name][0], arrow.curves[name][0])
                np.testing.assert_array_equal(here.curves[name][1], arrow.curves[name][1])
            np.testing.assert_allclose(here.means[name][1], arrow.means[name][1], rtol=1e-12, equal_nan=True)
    finally:
        store.close()


def test_a_zoom_across_midnight_shows_minutes_before_and_raw_after_and_says_so(data_dir: Path) -> None:
    store, ten = zoom_recorder(data_dir, 1.0, 30)
    try:
        end = ten + timedelta(minutes=20)
        series = window_series.prepare_history(data_dir, 36 * 3600, now=end, start=end - timedelta(hours=14), minutes=store.minutes,
                                         rows=store.rows.view())
        assert series.tier == "minute+raw" and series.note.startswith("minute bins before ")
        x, y = series.curves["cpu_percent"]
        before = x < ten.timestamp()
        assert set(y[before][np.isfinite(y[before])]) == {7.0}  # yesterday's minutes
        assert np.isfinite(y[~before]).any() and not (y[~before][np.isfinite(y[~before])] == 7.0).any()
    finally:
        store.close()


def test_a_rows_file_changed_in_place_is_not_shown_minutes_are(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, ten = zoom_recorder(data_dir, 1.0, 30)
    try:
        view = store.rows.view()
        table = np.fromfile(view.path).reshape(-1, 1 + len(view.names))
        table[::2, 1] = 1e9  # cpu_percent, in place, the same size
        table.tofile(view.path)
        end = ten + timedelta(minutes=20)
        series = window_series.prepare_history(data_dir, 36 * 3600, now=end, start=end - timedelta(minutes=10), minutes=store.minutes, rows=view)
        assert "minute bins" in series.note and "could not be read" in series.note
        assert "is not what the recorder wrote" in caplog.text
        assert np.nanmax(series.curves["cpu_percent"][1]) < 100  # the CSV's values, through the minute bins
    finally:
        store.close()


def test_the_tray_app_s_window_never_loads_arrow_even_when_the_recorder_has_no_minute_bins(recent_history: tuple[Path, datetime]) -> None:
    # the recorder's start-up child failed (killed, out of memory): no minute bins, no rows file;
    # the window leaves today out and says so, rather than parse the CSV with Arrow in the app
    data_dir, _ = recent_history
    code = textwrap.dedent(f"""
        import os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from pathlib import Path
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from trayapp.gui.history import HistoryWindow
        from trayapp.gui.live import LiveBuffer
        from trayapp.settings import Config
        arrow = sys.argv[1] == "control"
        w = HistoryWindow(Path({str(data_dir)!r}), LiveBuffer(), Config(), minutes=lambda d: None, arrow=arrow)
        got = []
        w.range_loaded.connect(got.append)
        w.show()
        while not got:
            app.processEvents()
        print("ARROW", "pyarrow" in sys.modules, "ROWS", got[0].rows > 0, "NOTE", "today's samples left out" in got[0].note)
        w.shutdown()
    """)
    for args, want in ((["app"], "ARROW False ROWS True NOTE True"), (["control"], "ARROW True ROWS True NOTE False")):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert [line for line in done.stdout.splitlines() if line.startswith("ARROW")] == [want]


def test_a_rows_file_replaced_under_a_read_is_no_fault_and_draws_no_wrong_rows(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    # the recorder puts a new rows file in place by a rename (at midnight, when a GPU appears)
    import logging

    store, ten = zoom_recorder(data_dir, 1.0, 30)
    try:
        end = ten + timedelta(minutes=20)
        start = end - timedelta(minutes=10)
        span = (int(start.timestamp() * 1e6) + 1, int(end.timestamp() * 1e6) + 1)
        view = store.rows.view()
        reader = rows_file.rows_reader(view, *span)  # open, checked
        original = view.path.read_bytes()

        def replace_with_half() -> None:
            fresh = view.path.with_name(".fresh")
            fresh.write_bytes(original[: len(original) // 2])
            os.replace(fresh, view.path)

        replace_with_half()  # renamed in while the read holds the file: it reads what it checked
        t, _ = reader.arrays()
        reader.close()
        assert len(t) == 600
        with caplog.at_level(logging.WARNING):  # renamed in after the view was taken: minutes, and no fault
            series = window_series.prepare_history(data_dir, 36 * 3600, now=end, start=start, minutes=store.minutes, rows=view)
        assert "is not what the recorder wrote" not in caplog.text
        assert series.rows > 0 and "minute bins" in series.note
    finally:
        store.close()


def test_the_rows_file_is_read_after_the_recorder_widened_it(data_dir: Path) -> None:
    # a GPU appears: the recorder rewrites the rows file wider and opens it again, often under the
    # same descriptor number; the view must name the new file, not be taken for a replaced one
    from trayapp.model import GpuReading

    store, ten = zoom_recorder(data_dir, 1.0, 10)
    try:
        t = ten + timedelta(minutes=10)
        store.append(Sample(t, 50.0, 40.0, 55.0, (GpuReading(0, "H100", 97.0, 50.0, 60.0),)))
        view = store.rows.view()
        assert "gpu0_util_percent" in view.names
        reader = rows_file.rows_reader(view, int((ten - timedelta(minutes=1)).timestamp() * 1e6), int(t.timestamp() * 1e6) + 1)
        assert reader is not None
        got, columns = reader.arrays()
        reader.close()
        assert len(got) == 601 and columns["gpu0_util_percent"][-1] == 97.0
    finally:
        store.close()
