"""The history window as a person uses it: hover, zoom and its undo, the menu's export, the keys
that close it, its place on the screen, the time axis, the light and dark palettes."""

from __future__ import annotations

import csv
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtGui import QColor, QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from trayapp.gui.history import HINT, HistoryWindow, day_labels, span_text  # noqa: E402
from trayapp.gui.live import LiveBuffer  # noqa: E402
from trayapp.model import Level, RuleResult  # noqa: E402
from trayapp.settings import Config  # noqa: E402
from trayapp.synthetic import write_history  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")
BERLIN = "Europe/Berlin"  # conftest sets TZ to it


@pytest.fixture
def opened(qtbot, data_dir: Path):
    """A window on 36 h of 10 s samples: CPU steps from 20 % to 60 % half-way."""
    now = datetime.now(timezone.utc)
    half = (now - timedelta(hours=18)).timestamp()
    write_history(data_dir, now - timedelta(hours=36), now, 10,
                  {"cpu_percent": lambda t: np.where(t < half, 20.0, 60.0), "memory_percent": 45.0, "disk_percent": 70.0})
    windows = []

    def make() -> HistoryWindow:
        w = HistoryWindow(data_dir, LiveBuffer(), Config())
        qtbot.addWidget(w)
        windows.append(w)
        w.set_results((RuleResult("cpu_percent", 129600, 40.0, 100, 36 * 3600, Level.OK, 80.0, 90.0),))
        with qtbot.waitSignal(w.range_loaded, timeout=20000):
            w.show()
        return w

    yield make
    for w in windows:
        w.shutdown()


def test_hover_shows_a_linked_crosshair_and_every_metric_at_that_time(opened) -> None:
    window = opened()
    t = time.time() - 6 * 3600
    window.hover_at(t)
    crosses = [mp.cross for mp in window.metric_plots.values()]
    assert all(c.isVisible() and c.value() == t for c in crosses)  # on every plot, at one time
    text = window.readout.text()
    then = datetime.fromtimestamp(t)
    assert then.strftime("%a %d %b %H:%M" if then.year == datetime.now().year else "%a %d %b %Y %H:%M") in text
    assert "CPU 60.0 %" in text and "memory 45.0 %" in text and "disk 70.0 %" in text
    window.hover_at(time.time() - 30 * 3600)
    assert "CPU 20.0 %" in window.readout.text()
    long_ago = time.time() - 400 * 86400  # last year (the 1 y view reaches it): the year is said
    window.hover_at(long_ago)
    assert window.readout.text().startswith(datetime.fromtimestamp(long_ago).strftime("%a %d %b %Y %H:%M:%S"))
    window.hover_at(None)  # the pointer left
    assert window.readout.text() == HINT and not any(c.isVisible() for c in crosses)


def test_zoom_reads_finer_data_and_reset_goes_back(qtbot, opened) -> None:
    window = opened()
    cpu = window.metric_plots["cpu_percent"]
    assert cpu.binned  # 12,960 samples in 36 h: a band of screen bins
    whole = cpu.plot.viewRange()[0]
    end = time.time() - 17.75 * 3600  # the half hour around the step
    with qtbot.waitSignal(window.range_loaded, timeout=15000) as zoomed:
        cpu.plot.setXRange(end - 1800, end, padding=0)  # what a wheel or drag does
    assert zoomed.args[0].rows < 300 and not cpu.binned  # the raw 10 s samples of that half hour
    x, y = cpu.line.getData()
    assert np.allclose(np.diff(x), 10.0, atol=0.01) and set(y) == {20.0, 60.0}  # the step, sharp
    assert cpu.plot.viewRange()[0][1] == pytest.approx(end)  # the person's view is kept
    # double-click anywhere on the plots goes back to the whole range
    viewport = window.graphics.viewport()
    where = QPoint(viewport.width() // 2, viewport.height() // 3)
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=where)  # a double-click as Qt delivers it:
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=where)  # press, release, double-click,
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=where)  # release
    qtbot.waitUntil(lambda: cpu.plot.viewRange()[0][0] == pytest.approx(whole[0], abs=1), timeout=5000)
    assert cpu.binned
    cpu.plot.setXRange(end - 3600, end, padding=0)
    window.reset_button.click()  # and so does the button
    assert cpu.plot.viewRange()[0][0] == pytest.approx(whole[0], abs=1)


def test_the_plot_menu_is_the_app_s_and_exports_what_is_shown(qtbot, opened, tmp_path: Path) -> None:
    window = opened()
    assert not any(mp.plot.vb.menuEnabled() for mp in window.metric_plots.values())  # not pyqtgraph's
    assert window.graphics.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu
    cpu = window.metric_plots["cpu_percent"]
    end = time.time() - 20 * 3600
    cpu.plot.setXRange(end - 3600, end, padding=0)
    out = tmp_path / "range.csv"
    window.export_range("csv", str(out))  # the menu's "Export this range as CSV…" after the dialog
    qtbot.waitUntil(lambda: window.status.text().startswith(("Wrote", "Export failed")), timeout=60000)
    assert window.status.text() == f"Wrote 360 samples to {out}"  # an hour of 10 s samples
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 360 and {r["cpu_percent"] for r in rows} == {"20.0"}
    stamps = [datetime.fromisoformat(r["timestamp"]).timestamp() for r in rows]
    assert end - 3600 <= min(stamps) and max(stamps) <= end


@pytest.mark.parametrize("key", ["Escape", "Ctrl+W"])
def test_esc_and_ctrl_w_close_the_window(qtbot, opened, key: str) -> None:
    window = opened()
    assert window.isVisible()
    if key == "Escape":
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    else:
        qtbot.keyClick(window, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert not window.isVisible()


def test_the_window_fits_the_screen_and_remembers_its_place(qtbot, opened) -> None:
    screen = QApplication.primaryScreen().availableGeometry()
    window = opened()
    assert screen.contains(window.frameGeometry()) or screen.contains(window.geometry())
    window.setGeometry(screen.left() + 10, screen.top() + 20, 520, 360)
    window.close()
    again = opened()  # a new window (a restart) opens where the person left it
    assert (again.width(), again.height()) == (520, 360)
    # a small window: the summary wraps rather than being cut
    again.set_results((RuleResult("cpu_percent", 129600, 84.2, 100, 36 * 3600, Level.ORANGE, 80.0, 90.0),
                       RuleResult("memory_percent", 129600, 45.0, 100, 36 * 3600, Level.OK, 80.0, 90.0)))
    qtbot.waitUntil(lambda: again.summary.height() >= 2 * again.summary.fontMetrics().height(), timeout=3000)
    assert again.summary.wordWrap() and "84.2" in again.summary.text()


def test_time_axis_labels_say_the_day() -> None:
    midnight = datetime(2026, 11, 24).timestamp()  # local (Berlin) midnight, a Tuesday
    six = midnight + 6 * 3600
    assert day_labels([midnight, midnight + 86400], 86400) == ["Tue 24", "Wed 25"]
    assert day_labels([six, six + 6 * 3600, midnight + 86400], 6 * 3600) == ["Tue 24 06:00", "12:00", "Wed 25"]
    assert day_labels([six, six + 60], 60) == ["06:00", "06:01"]
    # a zoom across midnight: the finer level's first tick leaves the day to the midnight on screen
    assert day_labels([midnight + 86400 + 3600, midnight + 86400 + 7200], 3600, 12 * 3600, midnight + 18 * 3600) == ["01:00", "02:00"]
    assert day_labels([midnight + 86400 + 3600], 3600, 12 * 3600, midnight + 86400 + 1800) == ["Wed 25 01:00"]
    assert day_labels([six + 30], 10) == ["06:00:30"]
    first = datetime(2026, 12, 1).timestamp()
    assert day_labels([first], 31 * 86400, 365 * 86400) == ["Dec"]  # months in a year's view
    assert day_labels([datetime(2027, 1, 1).timestamp()], 31 * 86400, 365 * 86400) == ["Jan 2027"]  # the year where it turns
    assert day_labels([first], 31 * 86400, 7 * 86400) == ["Tue 01"]  # in a week's view, a day like the others
    assert day_labels([datetime(2027, 1, 1).timestamp()], 365 * 86400, 3 * 365 * 86400) == ["2027"]
    this_year = datetime.now().year == 2026
    year = "" if this_year else " 2026"
    assert span_text(six, six + 3600) == f"Tue 24 Nov{year} 06:00 – 07:00 (1 h)"
    assert span_text(six, six + 86400 + 1800) == f"Tue 24 Nov{year} 06:00 – Wed 25 Nov{year} 06:30 (24 h)"
    assert span_text(six, six + 90) == f"Tue 24 Nov{year} 06:00:00 – 06:01:30 (1 min 30 s)"
    assert span_text(six - 400 * 86400, six) == "Mon 20 Oct 2025 07:00 – Tue 24 Nov 2026 06:00 (400 d)"  # summer time then


def test_the_plots_follow_a_dark_palette(qtbot, opened) -> None:
    app = QApplication.instance()
    light = app.palette()
    window = opened()
    assert not window.theme.dark and window.graphics.backgroundBrush().color().lightness() > 200
    dark = QPalette(light)
    for role, colour in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.Base, "#2b2c2f"),
                         (QPalette.ColorRole.WindowText, "#e8eaed"), (QPalette.ColorRole.Text, "#e8eaed")):
        dark.setColor(role, QColor(colour))
    try:
        app.setPalette(dark)
        qtbot.waitUntil(lambda: window.theme.dark, timeout=3000)
        assert window.graphics.backgroundBrush().color().lightness() < 80
        axis = window.metric_plots["cpu_percent"].plot.getAxis("left")
        assert axis.textPen().color().lightness() > 180  # light text on the dark plot
    finally:
        app.setPalette(light)
    qtbot.waitUntil(lambda: not window.theme.dark, timeout=3000)


def test_the_live_view_starts_with_the_minutes_before_the_launch(qtbot, data_dir: Path, tmp_path: Path) -> None:
    from trayapp.gui.app import TrayApp
    from trayapp.gui.live import LIVE_SECONDS
    from trayapp.settings import Loaded

    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now - timedelta(seconds=5), 30,
                  {"cpu_percent": 77.0, "memory_percent": 33.0, "disk_percent": 70.0})
    config = Config(sampling_interval_seconds=0.5, alerts_desktop_notifications=False)
    app = TrayApp(Loaded(config, tmp_path / "config.toml", []), data_dir, tmp_path / "config.toml")
    try:
        with qtbot.waitSignal(app.tick_shown, timeout=20000) as first:
            app.start()
        t, columns = app.live.arrays()
        launched = first.args[0].sample.timestamp.timestamp()
        before = t < launched
        assert before.sum() >= LIVE_SECONDS // 30 - 2  # the ten minutes before, one sample per 30 s
        assert set(columns["cpu_percent"][before]) == {77.0} and set(columns["memory_percent"][before]) == {33.0}
        assert t[0] > launched - LIVE_SECONDS and np.all(np.diff(t) > 0)
    finally:
        app.shutdown()


def test_the_summary_says_what_the_tooltip_says(qtbot, data_dir: Path) -> None:
    """The first hour and the projection, as in the tooltip, not 'unknown (over 8 s of data)'."""
    w = HistoryWindow(data_dir, LiveBuffer(), Config())
    qtbot.addWidget(w)
    results = (RuleResult("cpu_percent", 129600, 5.0, 4, 8, Level.UNKNOWN, 80.0, 90.0),
               RuleResult("memory_percent", 129600, 85.0, 9000, 30 * 3600, Level.ORANGE, 80.0, 90.0))
    w.set_results(results, notes=["36 h avg CPU 5 % — collecting data: first verdict in 52 min",
                                  "36 h avg memory 85 % — orange (over 30 h of data); red in ≈ 5 h at the current load"])
    text = w.summary.text()
    assert "collecting data: first verdict in 52 min" in text and "unknown" not in text
    assert "red in ≈&nbsp;5 h at the current load" in text
    w.set_results(results)  # without notes (the window alone): the plain level
    assert "unknown (over 8&nbsp;s of data)" in w.summary.text()


def test_zooming_out_stops_at_sane_times_and_export_still_works(qtbot, opened, tmp_path: Path) -> None:
    window = opened()
    cpu = window.metric_plots["cpu_percent"].plot
    cpu.setXRange(-5e11, 5e11, padding=0)  # a wheel turned for a long time
    start, end = cpu.viewRange()[0]
    assert datetime.fromtimestamp(start).year >= 2000 and datetime.fromtimestamp(end).year <= 2100
    out = tmp_path / "all.csv"
    window.export_range("csv", str(out))
    qtbot.waitUntil(lambda: window.status.text().startswith(("Wrote", "Export failed")), timeout=60000)
    assert window.status.text().startswith("Wrote 12960 samples"), window.status.text()


def test_a_narrow_window_has_room_for_the_whole_readout(qtbot, opened) -> None:
    window = opened()
    window.resize(500, 350)
    qtbot.waitUntil(lambda: window.readout.width() < 500, timeout=3000)
    height = window.readout.height()
    window.hover_at(time.time() - 6 * 3600)
    needed = window.readout.heightForWidth(window.readout.width())
    assert needed <= height, (needed, height)  # nothing cut off ...
    assert window.readout.height() == height  # ... and the plots did not move
