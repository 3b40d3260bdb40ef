"""The history window's Now panel: current numbers in people's units, per-core bars, the top
processes from the real process table, and no process scans at all while the window is closed."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from trayapp.gui.history import HistoryWindow  # noqa: E402
from trayapp.gui.now import CoreBars, Proc  # noqa: E402
from trayapp.gui.live import LiveBuffer  # noqa: E402
from trayapp.model import Sample  # noqa: E402
from trayapp.settings import Config  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")


@pytest.fixture
def window(qtbot, data_dir: Path):
    data_dir.mkdir(parents=True, exist_ok=True)
    w = HistoryWindow(data_dir, LiveBuffer(), Config())
    qtbot.addWidget(w)
    w.span = 600  # the live view: no disk read needed
    w.now.timer.setInterval(200)
    yield w
    w.shutdown()


def test_the_numbers_read_in_their_units_and_every_core_has_a_bar(window: HistoryWindow) -> None:
    sample = Sample(datetime.now(timezone.utc), 35.0, 62.5, 71.0, net_recv_bytes_per_s=12_345_678.0,
                    disk_write_bytes_per_s=740_000.0, cpu_temperature_c=61.4, battery_plugged=1.0,
                    cores=tuple(float(i) for i in range(0, 128)))
    window.show_now(sample)
    shown = {name: label.text() for name, label in window.now.values.items()}
    assert shown["cpu_percent"] == "35 %" and shown["memory_percent"] == "62 %"
    assert shown["net_recv_bytes_per_s"] == "12.3 MB/s" and shown["disk_write_bytes_per_s"] == "740 KB/s"
    assert shown["cpu_temperature_c"] == "61 °C" and shown["battery_plugged"] == "plugged in"
    assert "fan_rpm" not in shown  # a machine without a fan shows no fan
    assert len(window.now.bars.cores) == 128  # a 128-core server fits in one strip
    window.show_now(Sample(datetime.now(timezone.utc), 5.0, None, 71.0))
    assert window.now.values["memory_percent"].text() == "n/a"  # gone now: not a stale number


def test_the_top_processes_come_from_the_real_process_table(qtbot, window: HistoryWindow) -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        window.show()
        qtbot.waitUntil(lambda: f"{busy.pid}" in window.now.top_cpu.text(), timeout=15000)
        assert "Top CPU" in window.now.top_cpu.text()
        assert window.now.top_memory.text().count("<tr>") == 5
        # each row starts with its share: a narrow window clips the right edge, never the number
        import re

        assert len(re.findall(r"<tr><td align=right><b>\d+\.\d %</b>", window.now.top_memory.text())) == 5
    finally:
        busy.kill()
        busy.wait()


@pytest.mark.slow  # over a second or two: `make test-all`
def test_no_process_scan_runs_while_the_window_is_closed(qtbot, window: HistoryWindow) -> None:
    window.show()
    qtbot.waitUntil(lambda: window.now.refreshes >= 3, timeout=5000)  # scanning while shown
    window.hide()
    qtbot.wait(300)
    done = window.now.refreshes
    qtbot.wait(1200)  # six intervals
    assert window.now.refreshes == done and not window.now.timer.isActive()


def test_a_short_window_gives_the_now_panel_s_room_to_the_plots(qtbot, window: HistoryWindow) -> None:
    window.show()
    window.resize(700, 900)
    qtbot.waitUntil(lambda: window.now.isVisible() and window.now.timer.isActive(), timeout=5000)
    tall = window.scroll.height()
    window.resize(700, 380)  # 1366x768 at 2x leaves about this much
    qtbot.waitUntil(lambda: not window.now.isVisible(), timeout=5000)
    assert not window.now.timer.isActive()  # no process scans for a panel no one sees
    assert window.scroll.height() > 120  # the plots have the room: with the panel they had ~0
    window.resize(700, 900)
    qtbot.waitUntil(lambda: window.now.isVisible() and window.now.timer.isActive(), timeout=5000)
    assert window.scroll.height() == tall


def test_a_narrow_window_drops_the_process_lists_and_cuts_no_number(qtbot, window: HistoryWindow) -> None:
    from PySide6.QtWidgets import QLabel

    from trayapp.gui.now import _texts

    sample = Sample(datetime.now(timezone.utc), 1.8, 62.5, 71.0, cpu_core_max_percent=4.0, load_percent=26.0,
                    disk_read_bytes_per_s=4_100.0, disk_write_bytes_per_s=219_000.0, net_recv_bytes_per_s=12_345_678.0,
                    net_sent_bytes_per_s=0.0, fan_rpm=2400.0, battery_plugged=1.0)
    window.show()
    window.show_now(sample)

    def cut() -> list[str]:  # a title narrower than its text, or a number than the widest text it may show
        out = []
        for name, cell in window.now._cells.items():
            title, value = cell.findChildren(QLabel)
            texts = [title.text()] if title.width() < title.fontMetrics().horizontalAdvance(title.text()) else []
            out += texts + [text for text in _texts(name) if value.width() < value.fontMetrics().horizontalAdvance(text)]
        return out

    window.resize(520, 700)
    qtbot.waitUntil(lambda: window.now.top_cpu.isHidden() and window.now.width() <= 520, timeout=3000)
    qtbot.wait(50)
    assert cut() == [] and window.now._columns < 5
    for width in (760, 820, 880, 940, 1000, 1100, 1250, 1400):  # each width with the lists beside the numbers: none cut
        window.resize(width, 700)
        qtbot.waitUntil(lambda: not window.now.top_cpu.isHidden() and window.now.width() > width - 40, timeout=3000)
        qtbot.wait(50)
        assert cut() == [], (width, cut())
    assert window.now._columns == 5  # and a wide window has them all in a row


def test_the_titles_take_the_window_s_muted_colour_in_a_dark_palette_too(qtbot, window: HistoryWindow) -> None:
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QLabel

    window.show_now(Sample(datetime.now(timezone.utc), 35.0, 62.5, 71.0))
    dark = QPalette(window.palette())
    for role, colour in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.Base, "#202124"),
                         (QPalette.ColorRole.WindowText, "#e8eaed"), (QPalette.ColorRole.PlaceholderText, "#303134")):
        dark.setColor(role, QColor(colour))  # a placeholder colour as dark as the window: as many dark palettes have
    window.setPalette(dark)
    qtbot.waitUntil(lambda: window.theme.dark, timeout=3000)
    titles = [label for cell in window.now._cells.values() for label in cell.findChildren(QLabel)][0::2]
    assert titles and all(window.theme.muted in label.styleSheet() for label in titles), [t.styleSheet() for t in titles]
    assert window.theme.muted == "#9aa0a6"  # light grey on the dark window, not the palette's dark placeholder


def test_the_numbers_keep_the_plots_order_whatever_came_first(window) -> None:
    """Rates and the busiest core come a tick after CPU and memory: they go in their places."""
    now = datetime.now(timezone.utc)
    window.now.show_sample(Sample(now, 10.0, 50.0, 70.0))
    window.now.show_sample(Sample(now, 11.0, 51.0, 70.0, net_recv_bytes_per_s=2048.0, cpu_core_max_percent=90.0, battery_plugged=1.0))
    grid = window.now.numbers
    placed = {name: grid.getItemPosition(grid.indexOf(cell))[:2] for name, cell in window.now._cells.items()}
    order = sorted(placed, key=lambda name: placed[name])
    assert order == ["cpu_percent", "cpu_core_max_percent", "memory_percent", "disk_percent", "net_recv_bytes_per_s", "battery_plugged"]
    assert placed["net_recv_bytes_per_s"] == (0, 4) and placed["battery_plugged"] == (1, 0)  # five to a row
    assert window.now.values["cpu_core_max_percent"].text() == "90 %"


def test_a_busy_core_is_neutral_until_past_the_cpu_rule_s_thresholds(window: HistoryWindow) -> None:
    bars = window.now.bars
    assert bars.thresholds == (80.0, 90.0)  # the default CPU rule's
    assert bars.colour(79.0).name() == bars.colour(5.0).name() == CoreBars.NEUTRAL  # work, not an alarm
    assert bars.colour(80.0).name() == "#f29900" and bars.colour(95.0).name() == "#d93025"
    window.set_results((), Config(rules=()))  # no CPU rule: never coloured
    assert bars.thresholds is None and bars.colour(99.0).name() == CoreBars.NEUTRAL
    bars.resize(400, 40)
    bars.set_cores((10.0, 20.0, 30.0, 40.0))
    assert [bars.core_at(x) for x in (0, 99, 100, 399, 400)] == [0, 0, 1, 3, None]  # the core under the pointer


def test_a_process_is_named_by_its_command_and_its_command_line_is_on_hover(qtbot, window: HistoryWindow, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("while True: pass\n")
    busy = subprocess.Popen([sys.executable, str(script), "--epochs", "90", "--password=hunter2hunter2"])
    try:
        window.resize(900, 700)
        window.show()
        qtbot.waitUntil(lambda: f"{busy.pid}" in window.now.top_cpu.text(), timeout=15000)
        text = window.now.top_cpu.text()
        row = next(r for r in text.split("<tr>") if f"pid:{busy.pid}'" in r)
        assert "train.py" in row  # 'python train.py', not 'python'
        command = window.now._commands[busy.pid]
        assert "train.py --epochs 90" in command and "hunter2hunter2" not in command  # a secret is masked
        assert "(trayapp" not in text  # this app is 'trayapp', not a name cut by the edge
    finally:
        busy.kill()
        busy.wait()


def test_a_short_name_says_the_script() -> None:
    assert Proc(1, "python3", 0, 0, "/usr/bin/python3 -u /srv/train.py --epochs 90").short == "python3 train.py"
    assert Proc(1, "chrome", 0, 0, "/opt/google/chrome/chrome --type=renderer").short == "chrome"
    assert Proc(1, "kworker/0:1", 0, 0, "").short == "kworker/0:1"


@pytest.mark.parametrize("command, shown", [
    ("python train.py --password=hunter2 --epochs 90", "python train.py --password=*** --epochs 90"),
    ("mysql -u root --password secret1 db", "mysql -u root --password *** db"),
    ("curl https://bob:s3cr3t@example.com/x?token=abc&y=1", "curl https://bob:***@example.com/x?token=***&y=1"),
    ("java -Dkeystore.password=abc -jar x.jar", "java -Dkeystore.password=*** -jar x.jar"),
    ("python train.py --epochs 90", "python train.py --epochs 90"),
])
def test_a_command_line_s_secrets_are_masked(command: str, shown: str) -> None:
    from trayapp.privacy import redact_command

    assert redact_command(command) == shown
