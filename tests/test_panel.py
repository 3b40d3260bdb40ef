"""Panel items, offscreen: short numbers, pixels per value, contrast on light and dark panels at
tray sizes, redraws only on change, the Panel tab, the setting's round trip, changes applied at once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QColor, QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QSystemTrayIcon  # noqa: E402

from trayapp.gui import panel as panel_mod  # noqa: E402
from trayapp.gui.panel import GRAPH_STEPS, Panel, PanelItem, graph_heights, render_graph, render_number, short_text  # noqa: E402
from trayapp.model import Level, RuleResult  # noqa: E402
from trayapp.settings import Config, Loaded, load, parse_panel, save  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
LIGHT, DARK = QColor("#f2f2f2"), QColor("#202124")
TRAY_SIZES = (16, 22, 24, 32, 44, 48)  # 1x and 2x


def _result(metric: str, level: Level, average: float = 85.0) -> RuleResult:
    return RuleResult(metric, 129600, average, 100, 36 * 3600, level, 80.0, 90.0)


# --------------------------------------------------------------- what an item says


@pytest.mark.parametrize(("metric", "value", "text"), [
    ("cpu_percent", 34.4, "34"),
    ("cpu_percent", 100.0, "100"),
    ("cpu_percent", None, "–"),
    ("gpu0_temperature_c", 61.2, "61"),
    ("net_recv_bytes_per_s", 512.0, "512"),
    ("net_recv_bytes_per_s", 1234.0, "1K"),
    ("net_recv_bytes_per_s", 12_300_000.0, "12M"),
    ("disk_write_bytes_per_s", 740_000.0, "740K"),
    ("disk_write_bytes_per_s", 3_000_000_000.0, "3G"),
    ("gpu0_power_w", 350.4, "350"),
    ("gpu0_power_w", 1200.0, "1K"),
    ("fan_rpm", 1850.0, "2K"),
    ("battery_plugged", 1.0, "AC"),
])
def test_short_text(metric: str, value: float | None, text: str) -> None:
    assert short_text(metric, value) == text


def test_the_colour_comes_only_from_a_rule_on_that_metric() -> None:
    results = (_result("cpu_percent", Level.RED), _result("memory_percent", Level.OK))
    assert panel_mod.metric_level("cpu_percent", results) is Level.RED
    assert panel_mod.metric_level("memory_percent", results) is None
    assert panel_mod.metric_level("gpu0_util_percent", results) is None  # no rule: never coloured
    assert panel_mod.metric_level("cpu_percent", (_result("cpu_percent", Level.UNKNOWN),)) is None


def test_a_graph_is_two_minutes_in_15_second_buckets_of_their_peaks() -> None:
    from collections import deque

    now = 1_800_000_000.0 + 14  # the last second of a 15 s bucket
    peaks: deque = deque()
    for i in range(200):  # 200 s of 50 %, then one spike
        panel_mod.add_peak(peaks, now - 200 + i, 50.0)
    panel_mod.add_peak(peaks, now, 100.0)
    assert len(peaks) == 8  # older buckets are dropped as they leave the graph
    heights = graph_heights(peaks, now, "cpu_percent")
    assert heights == (GRAPH_STEPS // 2,) * 7 + (GRAPH_STEPS,)
    assert graph_heights(peaks, now + 30, "cpu_percent") == (GRAPH_STEPS // 2,) * 5 + (GRAPH_STEPS, None, None)  # no data: no bar
    rates: deque = deque()
    panel_mod.add_peak(rates, now - 60, 1000.0)
    panel_mod.add_peak(rates, now, 4000.0)
    assert graph_heights(rates, now, "net_recv_bytes_per_s")[-1] == GRAPH_STEPS  # scaled to its peak
    assert graph_heights(rates, now, "net_recv_bytes_per_s")[3] == GRAPH_STEPS // 4
    assert graph_heights(deque(), now, "cpu_percent") == (None,) * 8  # no data: nothing drawn, not zeros


# --------------------------------------------------------------- pixels


def _bytes(image: QImage) -> bytes:
    return bytes(image.constBits())


@pytest.mark.parametrize("size", TRAY_SIZES)
def test_pixels_differ_per_value(qapp, size: int) -> None:
    numbers = [_bytes(render_number(t, None, size)) for t in ("3", "34", "35", "100", "12M")]
    assert len(set(numbers)) == len(numbers)
    graphs = [_bytes(render_graph(h, kind, None, size)) for kind in ("bars", "line")
              for h in ((0, 2, 4, 8, 16, 12, 3, 6), (0, 2, 4, 8, 16, 12, 3, 9))]
    assert len(set(graphs)) == len(graphs)


def _over(image: QImage, background: QColor) -> QImage:
    out = QImage(image.size(), QImage.Format.Format_RGB32)
    out.fill(background)
    p = QPainter(out)
    p.drawImage(0, 0, image)
    p.end()
    return out


def _luminance(c: QColor) -> float:
    def lin(v: int) -> float:
        v = v / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(c.red()) + 0.7152 * lin(c.green()) + 0.0722 * lin(c.blue())


def _contrast(a: float, b: float) -> float:
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


@pytest.mark.parametrize("size", (16, 22, 24, 32, 44))
@pytest.mark.parametrize("background", (LIGHT, DARK), ids=("light", "dark"))
@pytest.mark.parametrize("level", (None, Level.ORANGE, Level.RED), ids=("plain", "orange", "red"))
def test_a_number_reads_on_light_and_dark_panels(qapp, size: int, background: QColor, level: Level | None) -> None:
    """The glyphs stand apart from what is right around them, whatever the panel: in the icon,
    a good share of pixels contrasts 4.5:1 with the panel, and the glyph colour beside its halo
    (or plate) contrasts 3:1 at least."""
    image = _over(render_number("34", level, size), background)
    bg = _luminance(background)
    lums = [_luminance(image.pixelColor(x, y)) for y in range(size) for x in range(size)]
    strong = sum(1 for v in lums if _contrast(v, bg) >= 4.5)
    assert strong >= 0.12 * size * size, f"only {strong} pixels stand out at {size} px"
    brightest, darkest = max(lums), min(lums)
    assert _contrast(brightest, darkest) >= 3.0  # the digits against their own halo or plate


@pytest.mark.parametrize("size", TRAY_SIZES)
def test_levels_differ_by_shape_not_only_hue(qapp, size: int) -> None:
    """Grey-scaled, plain, orange and red still differ: orange adds an underline, red a plate."""
    def covered(level: Level | None) -> int:
        image = render_number("34", level, size)
        return sum(1 for y in range(size) for x in range(size) if image.pixelColor(x, y).alpha() > 128)

    plain, orange, red = covered(None), covered(Level.ORANGE), covered(Level.RED)
    assert plain < orange < red


# --------------------------------------------------------------- redraws


def test_an_item_is_redrawn_only_when_its_pixels_change(qapp) -> None:
    item = PanelItem("cpu_percent", "number", lambda _m: None, None)
    start = item.redraws
    for i, value in enumerate((34.2, 33.8, 34.4, 34.0)):  # all "34"
        item.update({"cpu_percent": value}, (), T0 + timedelta(seconds=i))
    assert item.redraws == start + 1
    before = panel_mod.renders
    item.update({"cpu_percent": 35.0}, (), T0 + timedelta(seconds=5))
    assert panel_mod.renders == before + len(panel_mod.SIZES)  # no tray here to say its size: every size
    item.update({"cpu_percent": 34.0}, (), T0 + timedelta(seconds=6))  # drawn before: from the cache
    assert item.redraws == start + 3 and panel_mod.renders == before + len(panel_mod.SIZES)
    item.update({"cpu_percent": 34.0}, (_result("cpu_percent", Level.ORANGE),), T0 + timedelta(seconds=7))
    assert item.redraws == start + 4  # a level is a change


def test_a_graph_is_redrawn_when_a_bar_moves_a_step_not_every_sample(qapp) -> None:
    item = PanelItem("cpu_percent", "bars", lambda _m: None, None)
    base = 1_800_000_000.0  # on a 15 s boundary
    for i in range(15):  # one bucket's worth of the same value
        item.update({"cpu_percent": 50.0}, (), datetime.fromtimestamp(base + i, timezone.utc))
    first = item.redraws
    assert first <= 2  # the blank one and the first bar
    item.update({"cpu_percent": 50.0}, (), datetime.fromtimestamp(base + 15, timezone.utc))  # a new bucket
    assert item.redraws == first + 1


def test_tooltip_says_the_value_with_its_unit_the_rule_and_the_time(qapp) -> None:
    item = PanelItem("net_recv_bytes_per_s", "number", lambda _m: None, None)
    rule = RuleResult("net_recv_bytes_per_s", 3600, 2_000_000.0, 100, 3600, Level.ORANGE, 1e6, 5e6)
    item.update({"net_recv_bytes_per_s": 12_300_000.0}, (rule, _result("cpu_percent", Level.RED)), T0)
    lines = item.tray.toolTip().splitlines()
    assert lines[0] == "Network receive 12.3 MB/s"
    assert lines[1].startswith("1 h avg network receive 2.00 MB/s — orange")
    assert T0.astimezone().strftime("%H:%M:%S") in lines[-1]
    assert not any("CPU" in line for line in lines)


# --------------------------------------------------------------- the setting


def test_the_panel_setting_round_trips_and_a_bad_entry_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    config = Config(panel_items="cpu_percent:number, gpu0_util_percent:bars, net_recv_bytes_per_s:line")
    save(config, path)
    assert load(path).config == config
    assert load(path).config.panel == (("cpu_percent", "number"), ("gpu0_util_percent", "bars"), ("net_recv_bytes_per_s", "line"))
    path.write_text('version = 2\n[panel]\nitems = " cpu_percent ,memory_percent:bars"  # mine\n')
    loaded = load(path)
    assert loaded.config.panel == (("cpu_percent", "number"), ("memory_percent", "bars")) and not loaded.warnings
    before = path.read_text()
    save(loaded.config, path)
    assert path.read_text() == before  # the same items written another way: not one byte touched
    path.write_text('[panel]\nitems = "cpu_percent:pie"\n')
    loaded = load(path)
    assert loaded.config.panel == () and len(loaded.warnings) == 1 and "number, bars, line" in loaded.warnings[0]
    assert Config().panel == ()  # the default: the level icon alone


@pytest.mark.parametrize(("text", "why"), [("cpu", "not a metric"), ("cpu_percent, cpu_percent:bars", "twice"), ("cpu_percent:pie", "kind")])
def test_bad_panel_items_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_panel(text)


def test_the_panel_tab_picks_orders_and_kinds_the_items(qtbot, tmp_path: Path) -> None:
    from trayapp.gui.settings_dialog import SettingsDialog

    metrics = ("cpu_percent", "memory_percent", "disk_percent", "gpu0_util_percent", "net_recv_bytes_per_s")
    dialog = SettingsDialog(Config(), tmp_path / "config.toml", tmp_path / "data", metrics=metrics)
    qtbot.addWidget(dialog)
    assert [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())] == ["General", "Rules", "Panel", "Slack", "Fleet", "Machines"]
    editor = dialog.panel
    assert [editor.metric.itemData(i) for i in range(editor.metric.count())] == list(metrics)  # every metric there is
    for metric in ("cpu_percent", "gpu0_util_percent", "net_recv_bytes_per_s"):
        editor.metric.setCurrentIndex(editor.metric.findData(metric))
        editor.buttons["Add"].click()
    editor.buttons["Add"].click()  # once only
    editor.table.selectRow(2)
    editor.buttons["Up"].click()
    editor.table.cellWidget(0, 1).setCurrentIndex(1)  # CPU: graph (bars)
    editor.table.cellWidget(1, 1).setCurrentIndex(2)  # the network: graph (line)
    with qtbot.waitSignal(dialog.applied) as applied:
        dialog.ok_button.click()
    wanted = (("cpu_percent", "bars"), ("net_recv_bytes_per_s", "line"), ("gpu0_util_percent", "number"))
    assert applied.args[0].panel == wanted
    assert load(tmp_path / "config.toml").config.panel == wanted  # survives a restart
    again = SettingsDialog(load(tmp_path / "config.toml").config, tmp_path / "config.toml", tmp_path / "data", metrics=metrics)
    qtbot.addWidget(again)
    assert again.panel.items == list(wanted)
    again.panel.table.selectRow(1)
    again.panel.buttons["Remove"].click()
    assert again.new_config().panel == (wanted[0], wanted[2])


# --------------------------------------------------------------- in the app


def test_changes_apply_at_once_in_order_and_items_show_the_sampled_values(qtbot, data_dir: Path, tmp_path: Path) -> None:
    from trayapp.gui.app import TrayApp

    config = Config(sampling_interval_seconds=0.2, alerts_desktop_notifications=False, panel_items="cpu_percent, memory_percent:bars")
    app = TrayApp(Loaded(config, tmp_path / "config.toml", []), data_dir, tmp_path / "config.toml")
    try:
        with qtbot.waitSignal(app.tick_shown, timeout=20000) as first:
            app.start()
        tick = first.args[0]
        assert [(i.metric, i.kind) for i in app.panel.items] == [("cpu_percent", "number"), ("memory_percent", "bars")]
        assert all(i.tray.isVisible() for i in app.panel.items)
        assert app.panel.items[0].key == ("number", short_text("cpu_percent", tick.sample.cpu_percent), None)
        cpu_item = app.panel.items[0]
        app.apply(config.with_values(panel_items="disk_percent:line, cpu_percent:bars"))  # reorder, add, remove, re-kind
        assert [(i.metric, i.kind) for i in app.panel.items] == [("disk_percent", "line"), ("cpu_percent", "bars")]
        assert app.panel.items[1] is cpu_item and cpu_item.key[0] == "bars"  # kept, its 2 minutes too, drawn anew
        assert all(i.tray.isVisible() for i in app.panel.items)
        qtbot.waitSignal(app.tick_shown, timeout=5000).wait()
        assert app.panel.items[0].key[0] == "line" and app.panel.items[0].key[1][-1] is not None
        app.apply(config.with_values(panel_items=""))
        assert app.panel.items == [] and not cpu_item.tray.isVisible()
        app.apply(config.with_values(panel_items="memory_percent"))
        item = app.panel.items[0]
        item.tray.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)  # a click: its history
        assert app.window is not None and app.window.isVisible()
        assert "memory_percent" in app.window.metric_plots
    finally:
        app.shutdown()
    assert not item.tray.isVisible()


def test_show_metric_scrolls_to_that_plot(qtbot, data_dir: Path) -> None:
    from trayapp.gui.history import HistoryWindow
    from trayapp.gui.live import LiveBuffer

    config = Config()
    window = HistoryWindow(data_dir, LiveBuffer(), config)
    qtbot.addWidget(window)
    for name in ("disk_percent", "swap_percent", "load_percent", "gpu0_util_percent", "gpu0_memory_percent",
                 "gpu0_temperature_c", "gpu0_power_w", "net_recv_bytes_per_s"):
        window._plot_for(name)
    window.resize(700, 520)
    window.show()
    qtbot.waitExposed(window)
    bar = window.scroll.verticalScrollBar()
    assert bar.maximum() > 0  # more plots than fit: the last is out of sight
    last = list(window.metric_plots)[-1]
    window.show_metric(last)
    def in_view(name: str) -> bool:
        rect = window.graphics.mapFromScene(window.metric_plots[name].plot.sceneBoundingRect()).boundingRect()
        return bar.value() <= rect.top() and rect.bottom() <= bar.value() + window.scroll.viewport().height()

    assert not in_view(last)
    window.show_metric(last)
    qtbot.waitUntil(lambda: in_view(last), timeout=3000)
    first = list(window.metric_plots)[0]
    assert not in_view(first)
    window.show_metric(first)
    qtbot.waitUntil(lambda: in_view(first), timeout=3000)


def test_the_tooltip_follows_a_redraw_within_three_seconds_and_is_at_most_ten_seconds_old(qapp) -> None:
    item = PanelItem("cpu_percent", "number", lambda _m: None, None)
    clock = lambda t: t.astimezone().strftime("%H:%M:%S")  # noqa: E731
    item.update({"cpu_percent": 34.0}, (), T0)
    item.update({"cpu_percent": 34.1}, (), T0 + timedelta(seconds=1))  # the same "34": nothing set
    assert clock(T0) in item.tray.toolTip()
    item.update({"cpu_percent": 50.0}, (), T0 + timedelta(seconds=2))  # redrawn at once; the tooltip is 2 s old: kept
    assert item.key == ("number", "50", None) and clock(T0) in item.tray.toolTip()
    item.update({"cpu_percent": 50.1}, (), T0 + timedelta(seconds=3))  # 3 s: it says what the icon shows
    assert item.tray.toolTip().startswith("CPU 50 %") and clock(T0 + timedelta(seconds=3)) in item.tray.toolTip()
    item.update({"cpu_percent": 50.2}, (), T0 + timedelta(seconds=7))  # nothing changed: kept
    assert clock(T0 + timedelta(seconds=3)) in item.tray.toolTip()
    item.update({"cpu_percent": 50.2}, (), T0 + timedelta(seconds=13))  # 10 s old: set again for its time
    assert clock(T0 + timedelta(seconds=13)) in item.tray.toolTip()


def test_a_new_graph_starts_from_the_samples_in_memory(qapp) -> None:
    from trayapp.model import Sample

    base = 1_800_000_000.0
    memory = [Sample(datetime.fromtimestamp(base + i, timezone.utc), 10.0 + i / 2, 50.0, 40.0) for i in range(0, 180, 2)]
    panel = Panel(lambda _m: None, recent=lambda: memory)
    panel.set_items((("cpu_percent", "bars"),))
    now = datetime.fromtimestamp(base + 180, timezone.utc)
    panel.on_tick({"cpu_percent": 100.0}, (), now)
    heights = panel.items[0].key[1]
    assert None not in heights  # 2 minutes of bars at once, not one
    assert list(heights[:-1]) == sorted(heights[:-1]) and heights[-1] == GRAPH_STEPS  # the rising load, then the spike
