"""The tray app opens its data folder before it loads Qt (issue 10: ≤ 150 MB at every moment).

At start-up a one-shot child rolls earlier days over and reads 36 h of samples with Arrow (~90 MB
for a second or two). ``trayapp gui`` runs it before importing Qt, so the two are never resident
together. Checked in a real ``trayapp gui`` process (with a control in which Qt is loaded first,
so the check can fail), and in-process: a busy folder found early is said as before, and a first
start slower than the wait still shows the app and records once the child is done.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from tests.conftest import trayapp_cmd, wait_for  # noqa: E402
from trayapp.settings import Config, Loaded  # noqa: E402

pytestmark = pytest.mark.usefixtures("gc_on_gui_thread")

HEADER = "timestamp,cpu_percent,memory_percent,disk_percent"

# `trayapp gui` with every dataset job noted (was Qt loaded in this process at any time while it
# ran?); PRELOAD_QT is the control; SLOW seconds added to each job (a slow first start).
GUI = r"""
import json, sys
if PRELOAD_QT:
    import PySide6.QtWidgets
from trayapp.storage import child_job as dataset_jobs
real = dataset_jobs.run_job
def noted(job, *args, **kwargs):
    before = "PySide6.QtCore" in sys.modules
    if SLOW:
        import time; time.sleep(SLOW)
    answer = real(job, *args, **kwargs)
    print("JOB " + json.dumps({"job": job["job"], "qt": before or "PySide6.QtCore" in sys.modules}), flush=True)
    return answer
dataset_jobs.run_job = noted
from trayapp.cli import main
sys.exit(main(["--data-dir", DATA, "--config", CONFIG, "gui"]))
"""


def _yesterday_rows(n: int = 600) -> list[str]:
    start = (datetime.now().astimezone() - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    return [f"{(start + timedelta(seconds=10 * i)).isoformat(timespec='microseconds')},{i % 100}.0,50.0,70.0" for i in range(n)]


def _gui_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TRAYAPP_NO_KEYRING": "1", "TMPDIR": str(tmp_path),
            "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}


def _folder(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    (data / "csv_dump").mkdir(parents=True)
    (data / "csv_dump" / "daily_dump.csv").write_text(HEADER + "\n" + "\n".join(_yesterday_rows()) + "\n")
    config = tmp_path / "config.toml"
    config.write_text("[sampling]\ninterval_seconds = 0.2\n[alerts]\ndesktop_notifications = false\n")
    return data, config


def _start_gui(tmp_path: Path, data: Path, config: Path, preload_qt: bool = False, slow: float = 0.0,
               err: Path | None = None) -> "subprocess.Popen[str]":
    code = (GUI.replace("PRELOAD_QT", repr(preload_qt)).replace("SLOW", repr(slow))
            .replace("DATA", repr(str(data))).replace("CONFIG", repr(str(config))))
    with open(err or tmp_path / "gui.err", "wb") as stderr:
        # "gui" after the code: the process's command line names it, as `trayapp gui`'s does
        return subprocess.Popen([sys.executable, "-c", code, "gui"], env=_gui_env(tmp_path), stdout=subprocess.PIPE, stderr=stderr, text=True)


def _run_gui(tmp_path: Path, preload_qt: bool) -> tuple[list[dict], Path, str]:
    data, config = _folder(tmp_path)
    err = tmp_path / "gui.err"
    proc = _start_gui(tmp_path, data, config, preload_qt=preload_qt)
    csv = data / "csv_dump" / "daily_dump.csv"
    yesterday = _yesterday_rows(1)[0][:10]

    def recording() -> bool:  # the rollover took yesterday out of the CSV, and samples come in
        rows = csv.read_text().splitlines()[1:]
        return len(rows) >= 3 and not any(row.startswith(yesterday) for row in rows)

    try:
        assert wait_for(lambda: proc.poll() is not None or recording(), 60), err.read_text()
        assert proc.poll() is None, err.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.read_text()
    jobs = [json.loads(line[4:]) for line in out.splitlines() if line.startswith("JOB ")]
    return jobs, data, err.read_text()


def test_the_start_up_child_runs_before_qt_is_loaded(tmp_path: Path) -> None:
    jobs, data, err = _run_gui(tmp_path, preload_qt=False)
    assert jobs and jobs[0] == {"job": "maintain", "qt": False}, jobs
    day = (datetime.now().astimezone() - timedelta(days=1)).date()
    assert (data / "Monitoring" / f"Year={day.year}" / f"Month={day.month}" / f"{day.day}.parquet").exists()  # rolled over
    rows = (data / "csv_dump" / "daily_dump.csv").read_text().splitlines()[1:]
    assert rows and all(not row.startswith(day.isoformat()) for row in rows)  # and the CSV holds today's samples only
    assert "Traceback" not in err
    found = list((tmp_path / "state").rglob("trayapp.log"))  # started before the folder was opened
    assert found and "trayapp started for" in found[0].read_text()


def test_control_qt_loaded_first_is_seen(tmp_path: Path) -> None:
    """The same check, with Qt imported before ``trayapp gui`` starts: it must say so."""
    jobs, _, _ = _run_gui(tmp_path, preload_qt=True)
    assert jobs and jobs[0] == {"job": "maintain", "qt": True}, jobs


def test_a_busy_folder_found_early_is_said_and_the_app_quits(qtbot, data_dir: Path, tmp_path: Path) -> None:
    from trayapp.cli import open_early
    from trayapp.gui.app import TrayApp
    from trayapp.storage.writer import Store

    holder = Store(data_dir)
    holder.open_writer()
    try:
        config = Config(sampling_interval_seconds=0.2, alerts_desktop_notifications=False)
        early = open_early(config, data_dir, wait=30)
        assert early.wait(0) and early.error is not None
    finally:
        holder.close()  # free now: a sampler that opened again, not saying what the early open found, would record
    app = TrayApp(Loaded(config, tmp_path / "config.toml", []), data_dir, tmp_path / "config.toml", use_tray=False, early=early)
    try:
        with qtbot.waitSignal(app.sampler.failed, timeout=20000) as failed:
            app.start()
        assert "only one may write a data folder at a time" in failed.args[0]
        assert "not recording" in app.tray.toolTip()
    finally:
        app.shutdown()


@pytest.mark.slow  # over a second or two: `make test-all`
def test_a_first_start_slower_than_the_wait_shows_the_app_and_records_after(qtbot, data_dir: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from trayapp import engine
    from trayapp.cli import open_early
    from trayapp.gui.app import TrayApp

    real = engine.run_job_unless_loaded  # what the engine's store calls (in-process here: this process has Arrow)

    def slow(job, *args, **kwargs):
        time.sleep(2.0)  # a notebook-era history getting its tiers, say
        return real(job, *args, **kwargs)

    monkeypatch.setattr(engine, "run_job_unless_loaded", slow)
    csv = data_dir / "csv_dump" / "daily_dump.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text(HEADER + "\n" + "\n".join(_yesterday_rows(30)) + "\n")
    config = Config(sampling_interval_seconds=0.2, alerts_desktop_notifications=False)
    early = open_early(config, data_dir, wait=0.1)
    assert not early.wait(0)  # still at work: the app comes up anyway
    app = TrayApp(Loaded(config, tmp_path / "config.toml", []), data_dir, tmp_path / "config.toml", use_tray=False, early=early)
    try:
        with qtbot.waitSignal(app.tick_shown, timeout=30000):
            app.start()
        assert app.sampler.engine is early.engine and early.error is None
        assert app.sampler.engine.store.minutes is not None  # seeded by the same child
    finally:
        app.shutdown()
    assert "cpu_percent" in csv.read_text().splitlines()[0] and not any(
        row.startswith(_yesterday_rows(1)[0][:10]) for row in csv.read_text().splitlines()[1:])


@pytest.mark.slow  # two real app processes
def test_a_second_click_while_the_first_is_still_starting_brings_the_first_forward(tmp_path: Path) -> None:
    """The first ``trayapp gui`` holds the folder with its start-up child at work (4 s here) and
    has no Qt yet to answer on its socket; the second waits for it to answer instead of failing
    on the busy folder, and leaves it recording."""
    data, config = _folder(tmp_path)
    first = _start_gui(tmp_path, data, config, slow=4.0, err=tmp_path / "first.err")
    try:
        assert wait_for(lambda: (data / ".writer.pid").exists() or first.poll() is not None, 30)
        assert first.poll() is None, (tmp_path / "first.err").read_text()
        second = subprocess.run(trayapp_cmd("--data-dir", str(data), "--config", str(config), "gui", "--history", "7d"),
                                env=_gui_env(tmp_path), capture_output=True, text=True, timeout=90)
        assert second.returncode == 0, second.stderr
        assert "already running for this data folder; brought its window forward" in second.stderr
        csv = data / "csv_dump" / "daily_dump.csv"
        assert wait_for(lambda: first.poll() is not None or len(csv.read_text().splitlines()) >= 4, 30)
        assert first.poll() is None, (tmp_path / "first.err").read_text()
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0, (tmp_path / "first.err").read_text()


PARENT = r"""
import os, subprocess, sys, time
from trayapp.storage.child_job import PARENT_ENV, child_command
env = dict(os.environ)
if NAMED:
    env[PARENT_ENV] = str(os.getpid())  # as dataset_jobs.run_job passes it
job = open(FIFO, "rb")  # its writer is the test: the child never sees the end of its input
child = subprocess.Popen(child_command(), stdin=job, env=env)
print(child.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("named", [True, False], ids=["parent named", "control: not named"])
@pytest.mark.slow  # over a second or two: `make test-all`
def test_a_dataset_child_dies_with_the_process_that_started_it(tmp_path: Path, named: bool) -> None:
    import psutil

    fifo = tmp_path / "job.fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # held open by the test, not by the parent
    parent = subprocess.Popen([sys.executable, "-c", PARENT.replace("NAMED", repr(named)).replace("FIFO", repr(str(fifo)))],
                              stdout=subprocess.PIPE, text=True)
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        time.sleep(1.0)  # the child is reading its job, as one at work would be busy
        parent.kill()
        parent.wait(10)

        def gone() -> bool:
            try:
                return child.status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        if named:
            assert wait_for(gone, 10), "the child outlived the process that holds the lock for it"
        else:
            assert not wait_for(gone, 2), "the control child died too: this check shows nothing"
    finally:
        if parent.poll() is None:
            parent.kill()
        try:
            child.kill()
        except (psutil.NoSuchProcess, UnboundLocalError):
            pass
        os.close(writer)
        parent.stdout.close()
        parent.wait(10)


WINDOW_AT_START = r"""
import json, sys
from trayapp.gui import history as window_module
from trayapp.gui import sampler as sampler_module
if OLD_WAY:  # the control: the window does not wait for the recorder
    sampler_module.Sampler.starting = lambda self, data_dir: False
real_init = window_module.HistoryWindow.__init__
def init(self, *args, **kwargs):
    real_init(self, *args, **kwargs)
    if OLD_WAY:  # and it may read with Arrow, as it did
        self.arrow = True
    self.range_loaded.connect(lambda series: print("LOADED " + json.dumps(
        {"rows": series.rows, "arrow": "pyarrow" in sys.modules}), flush=True))
window_module.HistoryWindow.__init__ = init
from trayapp.cli import main
sys.exit(main(["--data-dir", DATA, "--config", CONFIG, "gui", "--history", "36h"]))
"""


@pytest.mark.parametrize("old_way", [False, True], ids=["waits for the recorder", "control: reads at once"])
def test_a_window_opened_at_start_reads_without_arrow(tmp_path: Path, old_way: bool) -> None:
    """``trayapp gui --history 36h`` (and any desktop without a tray, where the window opens at
    start): the window's first read waits for the recorder's minute bins instead of parsing the
    CSV with Arrow, which the app would then keep (~45 MB) for as long as it runs."""
    from trayapp.synthetic import write_history

    data, config = _folder(tmp_path)
    now = datetime.now().astimezone()
    (data / "csv_dump" / "daily_dump.csv").unlink()
    write_history(data, now - timedelta(hours=40), now, 30, {"cpu_percent": 40.0, "memory_percent": 60.0, "disk_percent": 70.0})
    code = (WINDOW_AT_START.replace("OLD_WAY", repr(old_way)).replace("DATA", repr(str(data)))
            .replace("CONFIG", repr(str(config))))
    err = tmp_path / "gui.err"
    with open(err, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", code, "gui"], env=_gui_env(tmp_path), stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line = proc.stdout.readline()  # the first range drawn from disk
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert line.startswith("LOADED "), (tmp_path / "gui.err").read_text()
    loaded = json.loads(line[7:])
    assert loaded["rows"] > 0
    if old_way:
        assert loaded["arrow"], "reading at once did not load Arrow: this check shows nothing"
    else:
        assert not loaded["arrow"], "the window's first read loaded Arrow into the tray app"
