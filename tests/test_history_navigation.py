"""Moving through time in the history window as on the rest of a desktop: the wheel scrolls the
page, Ctrl+wheel, a drag across a stretch and the keys zoom and pan, the view never runs past now,
and the stretch on screen is said in words, on every move."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent, QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import numpy as np  # noqa: E402

from trayapp.gui.history import HistoryWindow, span_text  # noqa: E402
from trayapp.gui.live import LiveBuffer  # noqa: E402
from trayapp.settings import Config  # noqa: E402
from trayapp.synthetic import write_history  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")
SIX = {name: 50.0 for name in ("cpu_percent", "memory_percent", "disk_percent", "swap_percent", "load_percent", "cpu_core_max_percent")}


@pytest.fixture
def window(qtbot, data_dir: Path):
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 60, SIX)
    w = HistoryWindow(data_dir, LiveBuffer(), Config())
    qtbot.addWidget(w)
    w.resize(700, 420)  # six plots do not fit: the page scrolls
    with qtbot.waitSignal(w.range_loaded, timeout=20000):
        w.show()
    yield w
    w.shutdown()


def view(w: HistoryWindow) -> tuple[float, float]:
    return tuple(next(iter(w.metric_plots.values())).plot.viewRange()[0])


def plot_point(w: HistoryWindow, name: str, share: float) -> QPoint:
    """A point ``share`` of the way across plot ``name``'s view, in the graphics viewport."""
    vb = w.metric_plots[name].plot.vb
    rect = vb.sceneBoundingRect()
    return w.graphics.mapFromScene(QPointF(rect.left() + share * rect.width(), rect.center().y()))


def wheel(w: HistoryWindow, at: QPoint, notches: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    viewport = w.graphics.viewport()
    event = QWheelEvent(QPointF(at), QPointF(viewport.mapToGlobal(at)), QPoint(0, 0), QPoint(0, 120 * notches),
                        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewport, event)


def test_the_wheel_scrolls_the_page_and_ctrl_wheel_zooms(qtbot, window: HistoryWindow) -> None:
    bar = window.scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=3000)  # more plots than fit
    assert bar.value() == 0
    before = view(window)
    wheel(window, plot_point(window, "cpu_percent", 0.5), -3)  # down, as on any page
    assert bar.value() > 0 and view(window) == before  # the next plots, not a zoom out
    wheel(window, plot_point(window, "cpu_percent", 0.5), 3, Qt.KeyboardModifier.ControlModifier)
    start, end = view(window)
    assert end - start < 0.9 * (before[1] - before[0])  # zoomed in


def test_a_drag_across_a_stretch_zooms_to_it(qtbot, window: HistoryWindow) -> None:
    viewport = window.graphics.viewport()
    a, b = plot_point(window, "cpu_percent", 0.25), plot_point(window, "cpu_percent", 0.5)
    start, end = view(window)
    want = (start + 0.25 * (end - start), start + 0.5 * (end - start))
    buttons = Qt.MouseButton.LeftButton
    for kind, at, button, held in ((QEvent.Type.MouseButtonPress, a, buttons, buttons),
                                   *((QEvent.Type.MouseMove, a + (b - a) * k / 8, Qt.MouseButton.NoButton, buttons) for k in range(1, 9)),
                                   (QEvent.Type.MouseButtonRelease, b, buttons, Qt.MouseButton.NoButton)):
        QApplication.sendEvent(viewport, QMouseEvent(kind, QPointF(at), QPointF(viewport.mapToGlobal(at)), button, held,
                                                     Qt.KeyboardModifier.NoModifier))
    got = view(window)
    width = want[1] - want[0]
    assert got[0] == pytest.approx(want[0], abs=0.03 * width) and got[1] == pytest.approx(want[1], abs=0.03 * width)
    assert window.reset_button.isEnabled() and not any(b.isChecked() for b in window.buttons.buttons())
    assert "zoomed from 36 h" in window.span_label.text()
    assert span_text(*got) in window.span_label.text().replace("&nbsp;", " ")


def test_keys_zoom_and_pan_and_the_view_never_runs_past_now(qtbot, window: HistoryWindow) -> None:
    start, end = view(window)
    qtbot.keyClick(window, Qt.Key.Key_Plus)
    s1, e1 = view(window)
    assert e1 - s1 == pytest.approx((end - start) / 1.5, rel=1e-3) and e1 == pytest.approx(end, abs=2)  # still ending now
    qtbot.keyClick(window, Qt.Key.Key_Left)
    s2, e2 = view(window)
    assert s2 == pytest.approx(s1 - 0.25 * (e1 - s1), abs=2) and e2 < e1
    for _ in range(3):  # right, past now: it stops at now
        qtbot.keyClick(window, Qt.Key.Key_Right)
    s3, e3 = view(window)
    assert e3 <= time.time() + 1 and e3 == pytest.approx(time.time(), abs=5)
    window.metric_plots["cpu_percent"].plot.setXRange(e3 - 600, e3 + 3600, padding=0)  # a pan that would run into the future
    s4, e4 = view(window)
    assert e4 <= time.time() + 1 and e4 - s4 == pytest.approx(4200, rel=1e-3)
    qtbot.keyClick(window, Qt.Key.Key_Minus)
    assert view(window)[1] - view(window)[0] == pytest.approx(4200 * 1.5, rel=1e-3)
    window.reset_button.click()
    assert view(window) == pytest.approx((start, end), abs=1)
    assert not window.reset_button.isEnabled() and window.buttons.button(1).isChecked()
    assert "zoomed" not in window.span_label.text()


def test_the_time_axis_is_on_screen_whatever_is_scrolled(qtbot, window: HistoryWindow) -> None:
    window.scroll.verticalScrollBar().setValue(window.scroll.verticalScrollBar().maximum())
    QApplication.processEvents()
    axis = window.time_axis
    assert axis.isVisible() and axis.axis.linkedView() is window.metric_plots["cpu_percent"].plot.vb
    assert axis.geometry().top() >= window.scroll.geometry().bottom()  # under the scrolled plots, always shown
    window._place_time_axis()
    ticks = axis.axis.tickValues(*view(window), axis.axis.width())
    assert any(len(values) for _, values in ticks)
    # lined up with the plots' views: its left edge where theirs is
    vb = window.metric_plots["cpu_percent"].plot.vb
    left = window.graphics.viewport().mapToGlobal(window.graphics.mapFromScene(vb.sceneBoundingRect().topLeft())).x()
    assert abs(axis.mapToGlobal(QPoint(int(axis.axis.geometry().left()), 0)).x() - left) <= 2


def test_hovering_puts_each_value_beside_its_plot_s_title(qtbot, window: HistoryWindow) -> None:
    window.hover_at(time.time() - 3600)
    assert "50.0 %" in window.metric_plots["swap_percent"].plot.titleLabel.text
    window.hover_at(None)
    assert "50.0" not in window.metric_plots["swap_percent"].plot.titleLabel.text


def test_a_person_hides_and_orders_plots_and_the_config_keeps_it(qtbot, window: HistoryWindow, tmp_path: Path) -> None:
    from trayapp.settings import load, save

    said: list = []
    window.layout_changed.connect(lambda hidden, order: said.append((hidden, order)))
    window.hide_plot("swap_percent")
    assert "swap_percent" not in window.metric_plots and said[-1][0] == "swap_percent"
    for _ in range(len(window.metric_plots)):  # up to the top, past CPU, busiest core and load
        window.move_plot("memory_percent", -1)
    assert list(window.metric_plots)[:2] == ["memory_percent", "cpu_percent"]
    # the time still follows one plot: the new first one drives the others and the pinned axis
    assert window.time_axis.axis.linkedView() is window.metric_plots["memory_percent"].plot.vb
    window.metric_plots["disk_percent"].plot.setXRange(time.time() - 7200, time.time() - 3600, padding=0)
    assert view(window) == pytest.approx((time.time() - 7200, time.time() - 3600), abs=5)
    hidden, order = said[-1]
    path = tmp_path / "config.toml"
    save(Config().with_values(window_hidden_plots=hidden, window_plot_order=order), path)
    again = HistoryWindow(window.data_dir, LiveBuffer(), load(path).config)  # a restart
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.range_loaded, timeout=20000):
        again.show()
    assert "swap_percent" not in again.metric_plots and list(again.metric_plots)[:2] == ["memory_percent", "cpu_percent"]
    again.show_plot("swap_percent")
    assert "swap_percent" in again.metric_plots and again.metric_plots["swap_percent"].drawn()["lo"][0].size
    again.shutdown()


def test_a_rule_on_a_metric_this_machine_lacks_gets_no_empty_plot(qtbot, data_dir: Path) -> None:
    from trayapp.rules import Rule

    w = HistoryWindow(data_dir, LiveBuffer(), Config(rules=(Rule("cpu_percent"), Rule("gpu0_util_percent", 3600, 50, 70, 600))))
    qtbot.addWidget(w)
    assert "gpu0_util_percent" not in w.metric_plots
    w.shutdown()


@pytest.mark.parametrize("size, at_least", [((683, 354), 3), ((1100, 972), 6)])  # 1366×768 at 2×; 1920×1080 at 1×
def test_plots_shown_at_once_on_a_small_and_a_large_screen(qtbot, data_dir: Path, size: tuple[int, int], at_least: int) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 120, {**SIX, "net_recv_bytes_per_s": 1000.0, "net_sent_bytes_per_s": 10.0})
    w = HistoryWindow(data_dir, LiveBuffer(), Config())
    qtbot.addWidget(w)
    w.resize(*size)
    with qtbot.waitSignal(w.range_loaded, timeout=20000):
        w.show()
    qtbot.wait(100)
    assert len(w.metric_plots) >= 8  # more than fit: the page scrolls
    viewport = w.scroll.viewport()
    top = viewport.mapToGlobal(QPoint(0, 0)).y()
    bottom = top + viewport.height()
    whole = 0
    for mp in w.metric_plots.values():
        rect = w.graphics.mapFromScene(mp.plot.sceneBoundingRect()).boundingRect()
        a = w.graphics.viewport().mapToGlobal(rect.topLeft()).y()
        if a >= top - 1 and a + rect.height() <= bottom + 1:
            whole += 1
    assert whole >= at_least, f"{whole} plots whole in a {size} window"
    w.shutdown()


def test_zooming_out_after_a_fine_zoom_draws_the_data_of_the_wider_view(qtbot, window: HistoryWindow) -> None:
    end = time.time() - 600
    with qtbot.waitSignal(window.range_loaded, timeout=20000):
        window.metric_plots["cpu_percent"].plot.setXRange(end - 3600, end, padding=0)  # an hour: finer data
    assert window.shown_series.end - window.shown_series.start < 2 * 3600
    window.metric_plots["cpu_percent"].plot.setXRange(end - 20 * 3600, end, padding=0)  # out to 20 h
    qtbot.waitUntil(lambda: window.shown_series is window._shown, timeout=3000)  # the range's own read again: no new read
    x, y = window.metric_plots["cpu_percent"].drawn()["lo"]
    x = x[np.isfinite(y)]
    assert x.min() < end - 19 * 3600 and x.max() > end - 3600  # drawn across the view, not only its last hour
    with qtbot.waitSignal(window.range_loaded, timeout=20000):  # past the range read (36 h): read for the view
        window.metric_plots["cpu_percent"].plot.setXRange(end - 50 * 3600, end - 10 * 3600, padding=0)
    assert window.shown_series.start <= end - 50 * 3600 + 60


def test_the_live_view_zooms_out_no_further_than_its_ten_minutes(qtbot, window: HistoryWindow) -> None:
    window.show_range(600)
    qtbot.keyClick(window, Qt.Key.Key_Minus)
    start, end = view(window)
    assert end - start == pytest.approx(600, abs=1)


def test_showing_again_a_hidden_first_plot_keeps_the_view_on_screen(qtbot, window: HistoryWindow) -> None:
    window.hide_plot("cpu_percent")
    with qtbot.waitSignal(window.range_loaded, timeout=20000):
        window.show_range(7 * 86400)
    before = view(window)
    window.show_plot("cpu_percent")
    assert list(window.metric_plots)[0] == "cpu_percent"
    assert view(window) == pytest.approx(before, abs=1)  # still 7 d, not the 36 h CPU last showed
    assert window.metric_plots["memory_percent"].plot.viewRange()[0] == pytest.approx(before, abs=1)


def test_a_zoom_too_short_for_two_whole_hours_draws_no_mean_and_says_none(qtbot, window: HistoryWindow) -> None:
    assert "hourly mean" in window.legend.text()  # 36 h: the hourly means are drawn
    end = time.time() - 3 * 3600
    with qtbot.waitSignal(window.range_loaded, timeout=20000):
        window.metric_plots["cpu_percent"].plot.setXRange(end - 5400, end, padding=0)  # 1.5 h
    assert not window.metric_plots["cpu_percent"].mean.isVisible()
    assert "mean" not in window.legend.text()
