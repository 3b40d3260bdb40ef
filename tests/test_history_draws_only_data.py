"""The history window draws only data of the range on screen: whatever ranges, zooms and resets
came before, every point of every drawn item is a sample (or a bin of samples) of that range, and
the live view draws exactly the live buffer. Checked on the items' data, not on a screenshot."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")

from trayapp.storage import tier_builder as rollups  # noqa: E402
from trayapp.gui.history import RANGES, HistoryWindow  # noqa: E402
from trayapp.gui.live import LIVE_SECONDS, LiveBuffer  # noqa: E402
from trayapp.model import Sample  # noqa: E402
from trayapp.settings import Config  # noqa: E402
from trayapp.synthetic import write_history  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")

# Each stretch of time has values no other has, so a value left from another range is seen.
OLD = {"cpu_percent": 20.0, "memory_percent": 30.0}  # a year ago up to three days ago, hourly
RECENT = {"cpu_percent": 60.0, "memory_percent": 65.0}  # the last three days, every minute
LIVE = {"cpu_percent": 33.3, "memory_percent": 44.4}  # only in memory: the live buffer


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("truth") / "data"
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(days=400), now - timedelta(days=3), 3600, OLD)
    write_history(data_dir, now - timedelta(days=3), now - timedelta(minutes=20), 60, RECENT)
    rollups.ensure(data_dir)
    return data_dir


def live_buffer() -> LiveBuffer:
    live = LiveBuffer()
    now = time.time()
    for t in np.arange(now - LIVE_SECONDS + 5, now, 2.0):
        live.add(Sample(datetime.fromtimestamp(t, timezone.utc), LIVE["cpu_percent"], LIVE["memory_percent"], None))
    return live


@pytest.fixture
def window(qtbot, history: Path, monkeypatch: pytest.MonkeyPatch):
    w = HistoryWindow(history, live_buffer(), Config())
    qtbot.addWidget(w)
    w.resize(900, 700)
    with qtbot.waitSignal(w.range_loaded, timeout=30000):
        w.show()
    yield w
    w.shutdown()


def finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def check(window: HistoryWindow, what: str) -> None:
    """Every drawn point belongs to the range on screen (its time inside the range read, its value
    one the data of that range holds); the live view is exactly the live buffer."""
    start, end = window.metric_plots["cpu_percent"].plot.viewRange()[0]
    assert end <= time.time() + 1, f"{what}: the view runs into the future"
    for name, mp in window.metric_plots.items():
        drawn = mp.drawn()
        if window.span == LIVE_SECONDS:
            t, columns = window.live.arrays()
            for key in ("lo", "hi", "mean"):
                assert not len(finite(*drawn[key])[0]), f"{what}: {name} draws {key} in the live view"
            if name in columns:
                x, y = drawn["line"]
                np.testing.assert_array_equal(x, t, err_msg=f"{what}: {name}")
                np.testing.assert_array_equal(y, columns[name], err_msg=f"{what}: {name}")
            else:
                assert not len(finite(*drawn["line"])[0]), f"{what}: {name} has no live samples but draws some"
            continue
        shown = window.shown_series
        assert shown is not None
        margin = (shown.end - shown.start) / 500 + (86400 if shown.mean_period == "daily" else 3600)
        allowed = [era[name] for era, (a, b) in ((OLD, (-400, -3)), (RECENT, (-3, 0)))
                   if name in era and a * 86400 <= shown.end - time.time() and shown.start - time.time() <= b * 86400]
        for key, (x, y) in drawn.items():
            x, y = finite(x, y)
            if not len(x):
                continue
            assert shown.start - margin <= x.min() and x.max() <= shown.end + margin, (
                f"{what}: {name}'s {key} reaches {datetime.fromtimestamp(x.min())}–{datetime.fromtimestamp(x.max())} "
                f"outside the range read, {datetime.fromtimestamp(shown.start)}–{datetime.fromtimestamp(shown.end)}")
            assert allowed, f"{what}: {name} draws {key} where the range holds no data"
            assert min(allowed) - 1e-9 <= y.min() and y.max() <= max(allowed) + 1e-9, (
                f"{what}: {name}'s {key} draws {sorted(set(np.round(y, 3)))[:6]}, the range holds {allowed}")
        if name in shown.curves:  # and nothing of the range is left out
            assert any(len(finite(*drawn[k])[0]) for k in ("lo", "hi", "line")), f"{what}: {name} drawn empty"


def go(qtbot, window: HistoryWindow, span: float) -> None:
    if span == LIVE_SECONDS:
        window.show_range(span)
        return
    with qtbot.waitSignal(window.range_loaded, timeout=30000):
        window.show_range(span)


def zoom(qtbot, window: HistoryWindow) -> None:
    """A zoom to the last tenth of what is shown, as a drag or the keyboard does."""
    start, end = window.metric_plots["cpu_percent"].plot.viewRange()[0]
    if window.span == LIVE_SECONDS:
        window.metric_plots["cpu_percent"].plot.setXRange(end - (end - start) / 10, end, padding=0)
        return
    with qtbot.waitSignal(window.range_loaded, timeout=30000):
        window.metric_plots["cpu_percent"].plot.setXRange(end - (end - start) / 10, end, padding=0)


SPANS = [seconds for _, seconds in RANGES]


@pytest.mark.slow  # every pair of ranges
def test_every_pair_of_ranges_draws_only_the_second_one_s_data(qtbot, window: HistoryWindow) -> None:
    for a, b in itertools.permutations(SPANS, 2):
        go(qtbot, window, a)
        check(window, f"{a} s")
        go(qtbot, window, b)
        check(window, f"{a} s then {b} s")


@pytest.mark.parametrize("span", [s for s in SPANS if s != LIVE_SECONDS])
def test_a_zoom_and_its_reset_draw_only_their_range(qtbot, window: HistoryWindow, span: float) -> None:
    go(qtbot, window, span)
    zoom(qtbot, window)
    check(window, f"{span} s zoomed")
    for other in SPANS:  # from a zoomed view straight to every range
        go(qtbot, window, other)
        check(window, f"{span} s zoomed, then {other} s")
        go(qtbot, window, span)
        zoom(qtbot, window)
    window.reset_view()
    check(window, f"{span} s reset")


def test_new_rows_between_two_views_are_drawn_and_nothing_old_stays(qtbot, window: HistoryWindow, history: Path) -> None:
    go(qtbot, window, 7 * 86400)
    now = datetime.now(timezone.utc)
    write_history(history, now - timedelta(minutes=20), now, 60, RECENT)  # the recorder went on
    go(qtbot, window, LIVE_SECONDS)
    check(window, "live after 7 d, rows added")
    go(qtbot, window, 36 * 3600)
    check(window, "36 h after rows added")
