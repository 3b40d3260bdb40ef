"""pyqtgraph imported through ``trayapp.gui.plotlib``: Qt's classes are created as they are
used (not all of QtCore, QtGui and QtWidgets at once), and pyqtgraph sees the same objects."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import json, sys
from PySide6 import QtCore, QtGui, QtWidgets
app = QtWidgets.QApplication([])
if sys.argv[1] == "plotlib":
    from trayapp.gui.plotlib import import_pyqtgraph
    pg = import_pyqtgraph()
else:
    import pyqtgraph as pg
w = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
curve = w.plot([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], pen=pg.mkPen("#1f77b4", width=2))
w.resize(300, 200)
w.show()
app.processEvents()
image = w.grab().toImage()
print(json.dumps({
    "created": {m.__name__: len(m.__dict__) for m in (QtCore, QtGui, QtWidgets)},
    "names": {m.__name__: len(dir(m)) for m in (QtCore, QtGui, QtWidgets)},
    "same": pg.Qt.QtCore.QPointF is QtCore.QPointF and pg.QtGui.QColor is QtGui.QColor and pg.QtWidgets.QWidget is QtWidgets.QWidget,
    "drawn": sum(image.pixelColor(x, y).name() != image.pixelColor(0, 0).name() for x in range(0, 300, 3) for y in range(0, 200, 3)),
    "data": [list(map(float, d)) for d in curve.getData()],
}))
"""


def run(how: str) -> dict:
    import json

    out = subprocess.run([sys.executable, "-c", CHECK, how], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_plotlib_leaves_qt_classes_to_be_created_as_used_and_pyqtgraph_works_the_same() -> None:
    lazy, eager = run("plotlib"), run("plain")
    assert lazy["same"] and eager["same"]
    assert lazy["data"] == eager["data"] == [[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]]
    assert lazy["drawn"] > 0 and lazy["drawn"] == eager["drawn"]  # the same plot, pixel for pixel counted
    for module, names in lazy["names"].items():  # PySide6's modules list their names again afterwards
        assert names >= eager["names"][module] > 150
    # pyqtgraph's own import creates every class and enum of the three modules
    assert sum(lazy["created"].values()) < 0.6 * sum(eager["created"].values()), (lazy["created"], eager["created"])


SOURCES = """
import json, linecache, sys
sys.path.insert(0, sys.argv[2])
if sys.argv[1] == "trayapp":
    import trayapp.gui  # check_sources_uncached, as the app does
from PySide6 import QtCore
import says_pyside, plain_module
feature = sys.modules["PySide6.support.feature"]
print(json.dumps({
    "kept": sorted(f.rsplit("/", 1)[-1] for f in linecache.cache if f.startswith(sys.argv[2])),
    "kept_bytes": sum(sum(map(len, entry[2])) for entry in linecache.cache.values() if len(entry) > 2),
    "switches": [feature.pyside_feature_dict.get(name) for name in ("says_pyside", "plain_module")],
}))
"""


def sources(how: str, folder) -> dict:
    import json
    import os

    (folder / "says_pyside.py").write_text("from PySide6 import QtCore\nVALUE = 1\n" + "# filler\n" * 5000)
    (folder / "plain_module.py").write_text("VALUE = 2\n" + "# filler\n" * 5000)
    out = subprocess.run([sys.executable, "-c", SOURCES, how, str(folder)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_pysides_source_check_keeps_no_lines_and_gives_the_same_answers(tmp_path) -> None:
    """PySide6 reads each module imported after it to see whether it says "PySide6"; its own check
    keeps the lines in linecache for good (the control shows it does, so the check can fail). The
    app's check gives every module the same switch and keeps nothing."""
    (tmp_path / "upstream").mkdir()
    (tmp_path / "ours").mkdir()
    upstream = sources("upstream", tmp_path / "upstream")
    ours = sources("trayapp", tmp_path / "ours")
    assert upstream["kept"] == ["plain_module.py", "says_pyside.py"]
    assert ours["kept"] == []
    assert ours["switches"] == upstream["switches"] == [0, -1]
    assert ours["kept_bytes"] < upstream["kept_bytes"]
