"""Who used the machine over the range on screen: the line under the history window's span, from
the recorder's minute records (``attribution.span_line``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from trayapp.attribution import MinuteRecord, make_record, span_line

TRAIN = ("python", "python train.py --epochs 3")
CHROME = ("chrome", "")


def _records(first: int, count: int) -> list[MinuteRecord]:
    """``count`` minutes of a 4-core machine: train.py uses a full core (60 s a minute), chrome
    6 s, 12 s more in small groups "other" holds, and 6 s no scan saw (busy 84 s)."""
    small = {("proc%d" % i, ""): 0.1 for i in range(120)}
    out = []
    for minute in range(first, first + count):
        cpu = {TRAIN: 60.0, CHROME: 6.0, **small}
        rss = {TRAIN: 2e9, CHROME: 5e8, **{k: 1e6 for k in small}}
        out.append(make_record(minute, cpu, rss, {k: [1] for k in cpu}, busy=84.0, used=4e9))
    return out


def test_the_span_line_gives_each_groups_cpu_as_a_share_of_the_machine_and_other_the_rest() -> None:
    records = _records(1000, 60)
    line = span_line(records, 1000 * 60, 1060 * 60 - 1, cores=4)
    # train.py: 60 of 240 core-seconds a minute = 25 %; chrome 2.5 %; the rest of 84 s: 7.5 %
    assert line.startswith("CPU: python train.py 25 %, chrome 2.5 %")
    assert "other 7.5 %" in line
    assert "memory: python train.py 2.00 GB, chrome 500 MB" in line
    assert "recorded" not in line  # every minute of the span has a record


def test_a_span_reaching_past_the_records_says_how_much_they_cover() -> None:
    records = _records(1000, 30)
    line = span_line(records, 970 * 60, 1060 * 60 - 1, cores=4)
    assert line.endswith("(recorded 30 of its 90 minutes)")
    assert "python train.py 25 %" in line  # shares of the minutes recorded, not diluted by the rest
    assert span_line(records, 0, 900 * 60, cores=4) == ""  # none of it recorded: nothing said


pytest.importorskip("PySide6.QtWidgets")


@pytest.mark.usefixtures("gc_on_gui_thread")
def test_the_window_says_who_used_the_range_on_screen_and_follows_a_zoom(qtbot, data_dir: Path) -> None:
    from trayapp.gui.history import HistoryWindow
    from trayapp.gui.live import LiveBuffer
    from trayapp.settings import Config
    from trayapp.synthetic import write_history

    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 60, {"cpu_percent": 30.0, "memory_percent": 45.0})
    last = int(now.timestamp() // 60)
    records = _records(last - 120, 60)  # train.py ran from 2 h ago to 1 h ago
    asked: list[tuple[float, float]] = []

    def over(start: float, end: float) -> str:
        asked.append((start, end))
        return span_line(records, start, end, cores=4)

    window = HistoryWindow(data_dir, LiveBuffer(), Config(), processes_over=over)
    qtbot.addWidget(window)
    try:
        with qtbot.waitSignal(window.range_loaded, timeout=20000):
            window.show()
        qtbot.waitUntil(lambda: window.span_processes.isVisible(), timeout=5000)
        text = window.span_processes.text()
        assert text.startswith("Over this span: CPU: python train.py")
        assert "recorded 60 of its" in text  # 36 h on screen, one hour of it recorded
        start, end = asked[-1]
        assert end - start > 30 * 3600
        cpu = window.metric_plots["cpu_percent"].plot
        cpu.setXRange((last - 110) * 60, (last - 70) * 60, padding=0)  # inside the hour train.py ran
        qtbot.waitUntil(lambda: "recorded" not in window.span_processes.text(), timeout=5000)
        assert "python train.py 25 %" in window.span_processes.text()
        cpu.setXRange((last - 50) * 60, (last - 10) * 60, padding=0)  # after it: no record there
        qtbot.waitUntil(lambda: not window.span_processes.isVisible(), timeout=5000)
        assert np.isclose(asked[-1][1] - asked[-1][0], 40 * 60, atol=60)
    finally:
        window.shutdown()
