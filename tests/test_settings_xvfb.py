"""The settings dialog on a real X display (Xvfb, the xcb platform), where focus is real.

On the offscreen platform a click into a rule's field kept the focus there; on a real display the
row selection that followed moved it to the Metric box, so typing changed the metric.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.xsession import run_in_x, skip_without_x

skip_without_x()

pytestmark = pytest.mark.xvfb

_CHILD = r"""
import json, sys
from pathlib import Path
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
app = QApplication([])
assert QApplication.platformName() == "xcb", QApplication.platformName()
from trayapp.gui.settings_dialog import SettingsDialog
from trayapp.settings import Config
dialog = SettingsDialog(Config(), Path(sys.argv[1]) / "config.toml", Path(sys.argv[1]) / "data")
dialog.show()
dialog.activateWindow()
assert QTest.qWaitForWindowActive(dialog)
dialog.tabs.setCurrentIndex([dialog.tabs.tabText(i) for i in range(dialog.tabs.count())].index("Rules"))
QTest.qWait(100)
out = []
for row, field, keys in ((1, "window", "7"), (0, "red", "")):  # a spin box: Down steps it
    editors = dialog.rule_rows[row]
    target = editors.widget(field)
    inside = target.lineEdit() if hasattr(target, "lineEdit") else target  # a spin box's text field
    metric = editors.widget("metric").currentText()
    before = inside.text()
    QTest.mouseClick(inside, Qt.MouseButton.LeftButton, pos=QPoint(4, inside.height() // 2))
    QTest.qWait(100)
    focused = QApplication.focusWidget()
    QTest.keyClick(focused, Qt.Key.Key_End)
    QTest.keyClicks(focused, keys)
    QTest.keyClick(focused, Qt.Key.Key_Down)
    QTest.qWait(100)
    out.append({"field": field, "focused": focused is inside or target.isAncestorOf(focused), "before": before, "text": inside.text(),
                "metric_before": metric, "metric_after": editors.widget("metric").currentText(),
                "selected": sorted({i.row() for i in dialog.rules_table.selectedIndexes()})})
print(json.dumps(out))
"""


def test_typing_into_a_clicked_rule_field_reaches_that_field(tmp_path: Path) -> None:
    window, red = run_in_x(_CHILD, str(tmp_path))
    for seen, row in ((window, 1), (red, 0)):
        assert seen["focused"], seen
        assert seen["metric_after"] == seen["metric_before"], seen  # the keys never reached the Metric box
        assert seen["selected"] == [row], seen  # the row is still selected, for Remove
    assert window["text"] == window["before"] + "7"
    assert red["text"] != red["before"]  # Down stepped the red threshold, not the metric


_SMALL = r"""
import json, sys
from pathlib import Path
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit
app = QApplication([])
from trayapp.gui.settings_dialog import SettingsDialog
from trayapp.settings import Config
folder = Path(sys.argv[1])
dialog = SettingsDialog(Config(storage_data_dir=str(folder / "from-the-file")), folder / "config.toml", folder / "given")
dialog.show()
assert QTest.qWaitForWindowExposed(dialog)
QTest.qWait(200)
screen = dialog.screen().availableGeometry()
ok = dialog.ok_button
corner = ok.mapToGlobal(ok.rect().bottomRight())
print(json.dumps({"screen": [screen.width(), screen.height()], "dialog_width": dialog.frameGeometry().width(),
                  "ok_on_screen": screen.contains(corner) and ok.isVisible(),
                  "placeholder": dialog.findChild(QLineEdit, "storage.data_dir").placeholderText(),
                  "in_use": [w.text() for w in dialog.findChildren(QLabel, "storage.data_dir.in_use")]}))
"""


def test_on_a_small_screen_at_2x_the_dialog_fits_and_says_which_folder_is_in_use(tmp_path: Path) -> None:
    seen = run_in_x(_SMALL, str(tmp_path), width=800, height=600, env={"QT_SCALE_FACTOR": "2"})
    assert seen["screen"] == [400, 300]  # 800x600 at 2x
    assert seen["dialog_width"] <= 400 and seen["ok_on_screen"], seen
    assert seen["placeholder"] == f"{tmp_path / 'given'} (in use)"
    assert seen["in_use"] == [f"In use now: {tmp_path / 'given'} (--data-dir or TRAYAPP_DATA_DIR outrank this file)"]
