"""The history window on a real X display (Xvfb, the xcb platform), where the platform's own
key bindings apply: its Close is Ctrl+W, which made a second Ctrl+W shortcut ambiguous."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.xsession import run_in_x, skip_without_x

skip_without_x()

pytestmark = pytest.mark.xvfb

_CHILD = r"""
import json, sys
from pathlib import Path
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
app = QApplication([])
assert QApplication.platformName() == "xcb", QApplication.platformName()
from trayapp.gui.history import HistoryWindow
from trayapp.gui.live import LiveBuffer
from trayapp.settings import Config
out = {}
for name, key, modifier in (("ctrl_w", Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier),
                            ("escape", Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier)):
    window = HistoryWindow(Path(sys.argv[1]), LiveBuffer(), Config())
    window.span = 600  # the live view: nothing to read
    window.show()
    window.activateWindow()
    assert QTest.qWaitForWindowActive(window)
    QTest.keyClick(window, key, modifier)
    QTest.qWait(200)
    out[name] = window.isVisible()
    window.shutdown()
print(json.dumps(out))
"""


def test_ctrl_w_and_escape_close_the_history_window(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    closed = run_in_x(_CHILD, str(tmp_path / "data"), env={"XDG_CONFIG_HOME": str(tmp_path / "config")})
    assert closed == {"ctrl_w": False, "escape": False}  # closed by each
