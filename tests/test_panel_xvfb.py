"""Panel items in a real tray (Xvfb + trayer): three items embedded beside the level icon in order,
showing the values the sampler wrote, changing with them, going when removed, and coming back
with the tray after it went away."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.xsession import XSession, skip_without_x

skip_without_x()

pytestmark = pytest.mark.xvfb

# The tray app with a line of stdin per change of settings ("apply <panel items>"), as the
# Settings dialog's OK does: the same TrayApp.apply, on the GUI thread.
DRIVER = r"""
import sys
from pathlib import Path
from PySide6.QtCore import QSocketNotifier
from PySide6.QtWidgets import QApplication
app = QApplication([])
app.setQuitOnLastWindowClosed(False)
from trayapp.gui.app import TrayApp
from trayapp.settings import Config, Loaded
data, items = Path(sys.argv[1]), sys.argv[2]
config = Config(sampling_interval_seconds=0.5, alerts_desktop_notifications=False, panel_items=items)
tray = TrayApp(Loaded(config, data / "c.toml", []), data, data / "c.toml")
tray.start()
def command():
    word, _, rest = sys.stdin.readline().strip().partition(" ")
    if word == "apply":
        tray.apply(tray.config.with_values(panel_items=rest))
        print("ok", flush=True)
    else:
        app.quit()
notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
notifier.activated.connect(command)
app.exec()
tray.shutdown()
"""
TRAYER = ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "24",
          "--SetDockType", "true", "--transparent", "false", "--tint", "0x303030"]


def docked(x: XSession) -> list[tuple[int, str]]:
    """The app's windows embedded in trayer: (x on screen, window id), left to right."""
    tree = subprocess.run(["xwininfo", "-root", "-tree"], env=x.env, capture_output=True, text=True).stdout
    found = []
    for line in tree.splitlines():
        words = line.split()
        if '"panel_app.py":' in line and words and words[0].startswith("0x"):
            geometry = next(w for w in words if "x" in w and "+" in w and w[0].isdigit())
            if geometry.split("+")[0] != "1x1":
                absolute = words[-1]  # +X+Y on the screen
                found.append((int(absolute.split("+")[1]), words[0]))
    return sorted(found)


def settled(x: XSession) -> list[tuple[int, str]]:
    """``docked`` once it holds still (two looks 0.3 s apart agree): not halfway through a change."""
    first = docked(x)
    time.sleep(0.3)
    return first if docked(x) == first else []


def grab(x: XSession, window: str, path: Path):
    from PySide6.QtGui import QImage

    subprocess.run(["import", "-window", window, str(path)], env=x.env, check=True, capture_output=True, timeout=30)
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB32)
    assert not image.isNull()
    return image


def difference(a, b) -> float:
    """Mean absolute difference of two images' channels (0-255)."""
    total = 0
    for y in range(a.height()):
        for xx in range(a.width()):
            ca, cb = a.pixelColor(xx, y), b.pixelColor(xx, y)
            total += abs(ca.red() - cb.red()) + abs(ca.green() - cb.green()) + abs(ca.blue() - cb.blue())
    return total / (3 * a.width() * a.height())


def rendered(text: str, like) -> object:
    """The item for ``text`` as the app draws it, on the panel's own background (a corner pixel)."""
    from PySide6.QtGui import QImage, QPainter

    from trayapp.gui.panel import render_number

    out = QImage(like.size(), QImage.Format.Format_RGB32)
    out.fill(like.pixelColor(0, 0))
    p = QPainter(out)
    p.drawImage(0, 0, render_number(text, None, like.width()))
    p.end()
    return out


def last_rows(data: Path, n: int = 6) -> list[dict[str, str]]:
    with open(data / "csv_dump" / "daily_dump.csv", newline="") as f:
        return list(csv.DictReader(f))[-n:]


def shown_value(image, metric: str, data: Path) -> str:
    """Which of the sampler's recent values for ``metric`` the item shows: the one whose rendering
    matches its pixels closely, and better than any other number's. (The disk and the CPU differ
    by far more than the margin here, so an item showing the other metric's number fails.)"""
    from trayapp.gui.panel import short_text

    candidates = {short_text(metric, float(row[metric]) if row[metric] else None) for row in last_rows(data)}
    scores = {text: difference(image, rendered(text, image)) for text in candidates}
    best = min(scores, key=scores.get)
    assert scores[best] < 6, f"{metric}: the item matches none of {sorted(scores)} ({scores})"
    others = [str(int(best) + d) for d in (-11, 11, 1) if best.isdigit() and str(int(best) + d) not in candidates]
    for text in others:  # another number would not match as well: the comparison tells values apart
        assert difference(image, rendered(text, image)) > scores[best] + 3
    return best


def wait_for(predicate, timeout: float = 20.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_items_in_order_show_the_sampled_values_change_and_go(qapp, tmp_path: Path) -> None:
    data = tmp_path / "data"
    script = tmp_path / "panel_app.py"
    script.write_text(DRIVER)
    with XSession() as x:
        app = subprocess.Popen([sys.executable, str(script), str(data), "disk_percent, memory_percent, cpu_percent"],
                               env={**x.env, "TRAYAPP_NO_KEYRING": "1"}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        try:
            # the level icon and three items: trayer packs each new icon on the left of those
            # before, so from the right: the level icon, then the items in the order asked
            wait_for(lambda: (data / "csv_dump" / "daily_dump.csv").exists() and len(last_rows(data)) >= 3, what="samples")
            windows = wait_for(lambda: len(w := settled(x)) == 4 and w, what="four docked icons")
            items = [w for _, w in reversed(windows)][1:]  # nearest the level icon first
            assert shown_value(grab(x, items[0], tmp_path / "disk.png"), "disk_percent", data)
            assert shown_value(grab(x, items[1], tmp_path / "memory.png"), "memory_percent", data)
            first = shown_value(grab(x, items[2], tmp_path / "cpu.png"), "cpu_percent", data)
            # the CPU number changes with the CPU: wait for a sample that differs, see it drawn
            wait_for(lambda: short_text_cpu(data) != first, timeout=30, what="another CPU value")
            later = wait_for(lambda: (v := shown_value(grab(x, items[2], tmp_path / "cpu2.png"), "cpu_percent", data)) != first and v,
                             timeout=30, what="the CPU item to change")
            assert later != first

            app.stdin.write("apply disk_percent, cpu_percent\n")  # memory removed
            app.stdin.flush()
            assert app.stdout.readline().strip() == "ok"
            windows = wait_for(lambda: len(w := settled(x)) == 3 and w, what="the removed item to go")
            items = [w for _, w in reversed(windows)][1:]
            assert shown_value(grab(x, items[0], tmp_path / "disk2.png"), "disk_percent", data)
            assert shown_value(grab(x, items[1], tmp_path / "cpu3.png"), "cpu_percent", data)

            app.stdin.write("apply cpu_percent, disk_percent\n")  # reordered: each shown again, in the new order
            app.stdin.flush()
            assert app.stdout.readline().strip() == "ok"
            before = {w for _, w in windows[:-1]}  # the items' windows (the level icon is the rightmost)
            moved = wait_for(lambda: len(w := settled(x)) == 3 and not before & {i for _, i in w} and w,
                             what="the items to be shown again")
            items = [w for _, w in reversed(moved)][1:]
            assert shown_value(grab(x, items[0], tmp_path / "cpu5.png"), "cpu_percent", data)
            assert shown_value(grab(x, items[1], tmp_path / "disk4.png"), "disk_percent", data)

            # the tray goes away: nothing of ours is left on the screen; it comes back: so do we, in order
            trayer = x.procs.pop()
            trayer.terminate()
            trayer.wait(10)
            wait_for(lambda: not docked(x) and not mapped_strays(x), what="the icons to go with the tray")
            x.procs.append(subprocess.Popen(TRAYER, env=x.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            windows = wait_for(lambda: len(w := settled(x)) == 3 and w, timeout=30, what="the icons to come back")
            items = [w for _, w in reversed(windows)][1:]
            assert shown_value(grab(x, items[0], tmp_path / "disk3.png"), "disk_percent", data)
            assert shown_value(grab(x, items[1], tmp_path / "cpu4.png"), "cpu_percent", data)
        finally:
            if app.poll() is None:
                app.stdin.write("quit\n")
                app.stdin.flush()
            _, err = app.communicate(timeout=30)
        assert app.returncode == 0, err[-2000:]
        assert "Traceback" not in err


def short_text_cpu(data: Path) -> str:
    from trayapp.gui.panel import short_text

    value = last_rows(data, 1)[0]["cpu_percent"]
    return short_text("cpu_percent", float(value) if value else None)


def mapped_strays(x: XSession) -> list[str]:
    """The app's icon windows left on the screen outside a tray (a stray square at 0,0)."""
    tree = subprocess.run(["xwininfo", "-root", "-tree"], env=x.env, capture_output=True, text=True).stdout
    strays = []
    for line in tree.splitlines():
        if '"panel_app.py": ("panel_app.py"' in line:
            window = line.split()[0]
            info = subprocess.run(["xwininfo", "-id", window], env=x.env, capture_output=True, text=True).stdout
            if "IsViewable" in info:
                strays.append(window)
    return strays
