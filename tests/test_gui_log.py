"""The tray app has a log a person can read: a rotating file in the platform's log folder,
secrets redacted, named by ``trayapp doctor``, opened from the menu."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QObject, QUrl, Slot  # noqa: E402
from PySide6.QtGui import QDesktopServices  # noqa: E402

from trayapp.gui.app import TrayApp, start_log_file  # noqa: E402
from trayapp.settings import Config, Loaded, default_log_path  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")


@pytest.fixture
def log_file(tmp_path: Path):
    made = []

    def start(**kw) -> logging.Handler:
        handler = start_log_file(tmp_path / "logs" / "trayapp.log", **kw)
        assert handler is not None
        made.append(handler)
        return handler

    yield start
    for handler in made:
        logging.getLogger().removeHandler(handler)
        handler.close()


def test_warnings_go_to_a_file_with_secrets_redacted(log_file, tmp_path: Path) -> None:
    """By its shape before the config names the URL; the whole path once it does (the config's
    load remembers it). Independent of what earlier tests left remembered."""
    from trayapp import privacy

    privacy.forget_all()
    handler = log_file()
    path = Path(handler.baseFilename)
    url = "https://hooks.slack.com/services/T000/B000/secretpart"
    logging.getLogger("trayapp.gui.app").warning("Slack refused %s", url)
    privacy.remember(url)
    logging.getLogger("trayapp.gui.app").warning("Slack refused %s again", url)
    logging.getLogger("trayapp.gui.app").debug("chatter")
    handler.flush()
    text = path.read_text()
    privacy.forget_all()
    assert "WARNING trayapp.gui.app: Slack refused https://hooks.slack.com/services/***\n" in text  # by its shape
    assert "WARNING trayapp.gui.app: Slack refused *** again" in text  # the whole URL masked
    assert "secretpart" not in text and "T000" not in text and "chatter" not in text
    if os.name == "posix":
        assert (path.parent.stat().st_mode & 0o777) == 0o700


def test_the_file_rotates(log_file) -> None:
    handler = log_file(max_bytes=2000, backups=2)
    path = Path(handler.baseFilename)
    for i in range(200):
        logging.getLogger("trayapp").warning("line %d of a long run", i)
    handler.flush()
    assert path.with_name("trayapp.log.1").exists() and path.with_name("trayapp.log.2").exists()
    assert not path.with_name("trayapp.log.3").exists()
    assert all(p.stat().st_size <= 2000 for p in path.parent.iterdir())
    assert "line 199 of a long run" in path.read_text()


def test_an_unwritable_log_folder_is_one_line_and_no_handler(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # a folder that cannot be made, even by root: /proc takes no new folders
    assert start_log_file(Path("/proc/trayapp-no-such/log/trayapp.log")) is None
    err = capsys.readouterr().err
    assert err.startswith("trayapp: cannot write the log file") and err.count("\n") == 1


def test_a_file_where_the_log_folder_goes_is_set_aside_and_the_log_written(tmp_path: Path) -> None:
    import logging

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    handler = start_log_file(blocker / "trayapp.log")
    try:
        assert handler is not None and blocker.is_dir()
        assert [p.read_text() for p in tmp_path.glob(".file*")] == ["not a folder"]  # kept, beside
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def test_doctor_names_the_log_file(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "TRAYAPP_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "trayapp.cli", "doctor"], capture_output=True, text=True, timeout=60, env=env)
    expected = tmp_path / "state" / "trayapp" / "log" / "trayapp.log"
    assert f"log        {expected} (the tray app's log; not written yet)" in done.stdout, done.stdout + done.stderr


class _Opened(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_the_menu_opens_the_log(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    app = TrayApp(Loaded(Config(), tmp_path / "config.toml", []), tmp_path / "data", tmp_path / "config.toml")
    opened = _Opened()
    QDesktopServices.setUrlHandler("file", opened, "open")  # Qt's own hook for where a URL goes
    try:
        action, = [a for a in app.tray.contextMenu().actions() if a.text() == "Open log"]
        action.trigger()  # no file yet: its folder
        assert [u.toLocalFile() for u in opened.urls] == [str(default_log_path().parent)]
        app.log_path = tmp_path / "logs" / "trayapp.log"
        app.log_path.parent.mkdir()
        app.log_path.write_text("x\n")
        action.trigger()
        assert opened.urls[-1].toLocalFile() == str(app.log_path)
    finally:
        QDesktopServices.unsetUrlHandler("file")
        app._collector.stop()


def test_no_viewer_for_the_log_shows_where_it_is(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A desktop with nothing to open a file with (no xdg-open): the path, shown and on the clipboard."""
    from PySide6.QtWidgets import QApplication

    from trayapp.gui import app as app_module

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(app_module.QDesktopServices, "openUrl", staticmethod(lambda url: False))  # what Qt says then
    app = TrayApp(Loaded(Config(), tmp_path / "config.toml", []), tmp_path / "data", tmp_path / "config.toml")
    try:
        app.log_path = tmp_path / "logs" / "trayapp.log"
        app.log_path.parent.mkdir()
        app.log_path.write_text("x\n")
        action, = [a for a in app.tray.contextMenu().actions() if a.text() == "Open log"]
        action.trigger()
        assert app._log_box.isVisible() and str(app.log_path) in app._log_box.text()
        assert QApplication.clipboard().text() == str(app.log_path)
        app._log_box.close()
    finally:
        app._collector.stop()


def test_the_real_app_writes_its_log(tmp_path: Path) -> None:
    """``trayapp`` as a process (offscreen Qt): the file appears in the log folder and says where
    it records; a config problem said at start is in it too. (It is stopped once it has seeded:
    a SIGTERM that comes before Qt's event loop runs is lost today: quit() is a no-op then.)"""
    import time

    config = tmp_path / "config.toml"
    config.write_text("[sampling]\ninterval_seconds = -1\n")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "QT_QPA_PLATFORM": "offscreen",
           "TRAYAPP_DATA_DIR": str(tmp_path / "data"), "TRAYAPP_CONFIG": str(config)}
    path = tmp_path / "state" / "trayapp" / "log" / "trayapp.log"
    proc = subprocess.Popen([sys.executable, "-m", "trayapp.cli"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (path.exists() and "seeded" in path.read_text()):
            time.sleep(0.1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    text = path.read_text()
    assert f"INFO trayapp.gui.app: trayapp started for {tmp_path / 'data'}" in text
    assert "WARNING trayapp.gui.app: config: [sampling] interval_seconds = -1: must be greater than 0" in text
    assert "INFO trayapp.engine: seeded 2 rule(s)" in text  # the core's lines too
    assert text.rstrip().endswith(f"INFO trayapp.gui.app: trayapp stopped for {tmp_path / 'data'}")  # not a crash
    assert proc.returncode == 0 and "Traceback" not in err
