"""The writer lock: one recorder per data folder, whether the other one is an older trayapp (which
took the lock through filelock) or a filesystem that answers ``flock`` otherwise."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trayapp.storage.writer_lock import DataDirBusy
from trayapp.storage.writer import Store


def test_a_writer_of_an_older_version_still_keeps_the_folder_to_itself(data_dir: Path) -> None:
    # older trayapp took the writer lock through filelock; both take flock on the same file
    code = textwrap.dedent(f"""
        import sys, time, filelock
        lock = filelock.FileLock({str(data_dir / ".writer.lock")!r})
        lock.acquire(timeout=0)
        print("held", flush=True)
        sys.stdin.read()
    """)
    data_dir.mkdir(parents=True, exist_ok=True)
    other = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(DataDirBusy):
            Store(data_dir).open_writer()
    finally:
        other.communicate("", timeout=10)
    store = Store(data_dir)
    store.open_writer()  # free again once it ended
    store.close()


@pytest.mark.parametrize("code, busy", [(errno.EACCES, True), (errno.EAGAIN, True), (errno.ENOSYS, False), (errno.EOPNOTSUPP, False)])
def test_a_filesystem_that_answers_flock_otherwise(data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, code: int, busy: bool) -> None:
    # some filesystems say a held lock is EACCES; some have no file locks at all: recording goes
    # on, with one warning that nothing guards the folder; the OS call is the stand-in
    import fcntl

    def refuse(fd: int, op: int) -> None:
        raise OSError(code, os.strerror(code))

    data_dir.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(fcntl, "flock", refuse)
    store = Store(data_dir)
    if busy:
        with pytest.raises(DataDirBusy):
            store.open_writer()
    else:
        store.open_writer()  # recording, unguarded
        assert "without file locks" in caplog.text
        store.close()
