"""The history window stays open for months: its update path must not leak, not even one reference.

PySide6 6.12.0 on Python 3.11 dropped a reference to ``None`` on every ``setTransform`` (which
pyqtgraph calls whenever a view moves or repaints); the app aborted a minute after the window
opened. These tests drive the window's update path a few thousand times and fail on such a
combination without waiting for the crash (on Python >= 3.12 ``None`` is immortal and its count
does not move at all, so there they hold trivially, as the crash cannot happen there).
"""

from __future__ import annotations

import gc
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from trayapp.gui.history import HistoryWindow  # noqa: E402
from trayapp.gui.live import LIVE_SECONDS, LiveBuffer  # noqa: E402
from trayapp.model import Level, RuleResult, Sample  # noqa: E402
from trayapp.rules import Rule  # noqa: E402
from trayapp.settings import Config  # noqa: E402
from trayapp.synthetic import write_history  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")

ROUNDS = 1500  # per view; each round moves the view and updates every label


def _results(i: int) -> tuple[RuleResult, ...]:
    cpu = 70.0 + (i % 30)  # crosses orange and red, so labels, colours and levels change
    level = Level.RED if cpu > 90 else Level.ORANGE if cpu >= 80 else Level.OK
    return (
        RuleResult("cpu_percent", 129600, cpu, 100, 30 * 3600, level, 80.0, 90.0),
        RuleResult("memory_percent", 129600, 50.0 + i % 3, 100, 30 * 3600, Level.OK, 80.0, 90.0),
    )


@pytest.fixture
def window(qtbot, data_dir: Path):
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 30, {"cpu_percent": 85.0, "memory_percent": 50.0, "disk_percent": 61.0})
    live = LiveBuffer()
    for s in range(LIVE_SECONDS, 0, -2):
        live.add(Sample(now - timedelta(seconds=s), 40.0, 50.0, 61.0))
    w = HistoryWindow(data_dir, live, Config())
    qtbot.addWidget(w)
    w.resize(640, 480)
    w.set_results(_results(0))
    with qtbot.waitSignal(w.range_loaded, timeout=20000) as loaded:
        w.show()
    w.loaded_series = loaded.args[0]
    yield w
    w.shutdown()


def _none_refs() -> int:
    gc.collect()
    return sys.getrefcount(None)


class NoneWatch:
    """Fails as soon as references to None go missing, before a broken binding can take the
    count to zero and abort the whole test run."""

    LOST = 50  # a sound binding nets ~0 over thousands of calls; a broken one loses one per call

    def __init__(self) -> None:
        self.before = _none_refs()

    def check(self, done: str) -> None:
        lost = self.before - sys.getrefcount(None)
        assert lost < self.LOST, f"{lost} references to None lost after {done}"


@pytest.mark.slow  # thousands of updates
def test_the_update_path_loses_no_reference_to_none(qtbot, window: HistoryWindow) -> None:
    series = window.loaded_series
    assert series.rows > 1000 and window.plots  # a real range view, with data and labels
    watch = NoneWatch()
    # the range view: new averages (labels and the average line move), redraw, hover, repaint
    for i in range(ROUNDS):
        window.set_results(_results(i))
        window._draw(series)
        window.hover_at(series.start + (i % 100) / 100 * (series.end - series.start))
        if i % 50 == 0:
            window.graphics.grab()
        if i % 10 == 0:
            watch.check(f"{i + 1} range-view updates")
    # the live view: a sample a round, as the app does every tick
    window.show_range(LIVE_SECONDS)
    t0 = datetime.now(timezone.utc)
    for i in range(ROUNDS):
        window.live.add(Sample(t0 + timedelta(seconds=i), float(i % 100), 50.0, 61.0))
        window.set_results(_results(i))
        window.refresh_live()
        if i % 50 == 0:
            window.graphics.grab()
        if i % 10 == 0:
            watch.check(f"{ROUNDS} range-view and {i + 1} live-view updates")
    gc.collect()
    watch.check(f"{2 * ROUNDS} updates")


def test_updates_reuse_the_plot_items(qtbot, window: HistoryWindow) -> None:
    """Labels and lines are updated in place, never removed and re-created per sample."""
    scene = window.graphics.scene()
    window.set_results(_results(1))
    counted = len(scene.items())
    ids = {id(item) for items in window.rule_lines.values() for item in items}
    for i in range(300):
        window.set_results(_results(i))
        window.set_results(_results(i), window.config)  # the settings' OK with the same rules
        window.refresh_live()
    assert len(scene.items()) == counted
    assert {id(item) for items in window.rule_lines.values() for item in items} == ids
    # a rule removed in the settings takes its lines with it; one added brings its own
    window.set_results(_results(1), Config(rules=(Rule("memory_percent"),)))
    assert window.rule_lines["cpu_percent"] == [] and len(window.rule_lines["memory_percent"]) == 3
    assert len(scene.items()) < counted
