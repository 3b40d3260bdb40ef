"""Process attribution where the process table is not what it seems: a pid the kernel hands to a
new process, and processes the recorder may not read (another user's, under ``hidepid``).

Both need root (CI runs as root): the kernel hands a chosen pid out only through
``/proc/sys/kernel/ns_last_pid``, and a private ``/proc`` with ``hidepid`` is mounted in a mount
namespace of the test's own (``unshare``), so the machine's ``/proc`` is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import wait_for
from trayapp.attribution import Scanner

pytestmark = pytest.mark.slow  # real processes burning seconds of CPU

NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")
BURN = "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < float(sys.argv[1]): pass\nopen(sys.argv[2], 'w').close()\ntime.sleep(60)\n"


def spawn_at(pid: int, argv: list[str]) -> subprocess.Popen | None:
    """A new process with ``pid`` (the kernel gives ``ns_last_pid + 1`` to the next fork), or
    None when another fork took it each time."""
    for _ in range(50):
        NS_LAST_PID.write_text(str(pid - 1))
        proc = subprocess.Popen(argv)
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    return None


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(NS_LAST_PID, os.W_OK), reason="choosing a pid needs root")
def test_a_reused_pid_is_a_new_process_with_its_own_command_and_cpu_time(tmp_path: Path) -> None:
    """A process that used 1.5 s of CPU ends; the next process given its pid uses 0.4 s. The scan
    after names the new one by its own command line and counts its own 0.4 s: keyed by pid alone,
    the old command line would stay and the new time would be taken for a fall (max(0.4 - 1.5, 0))."""
    (tmp_path / "old_burner.py").write_text(BURN)
    (tmp_path / "new_burner.py").write_text(BURN)
    old = subprocess.Popen([sys.executable, str(tmp_path / "old_burner.py"), "1.5", str(tmp_path / "old-done")])
    new = None
    try:
        assert wait_for((tmp_path / "old-done").exists, timeout=60)
        scanner = Scanner(True)
        scanner.scan()
        first = scanner.scan()
        assert first is not None
        assert any("old_burner.py" in key[1] and old.pid in ids for key, ids in first[2].items())
        pid = old.pid
        old.kill()
        old.wait()
        new = spawn_at(pid, [sys.executable, str(tmp_path / "new_burner.py"), "0.4", str(tmp_path / "new-done")])
        assert new is not None, f"pid {pid} was taken by another process each of 50 times"
        assert wait_for((tmp_path / "new-done").exists, timeout=60)
        own = sum(psutil.Process(pid).cpu_times()[:2])
        cpu, _rss, pids, busy, _used = scanner.scan()
        keys = [key for key, ids in pids.items() if pid in ids]
        assert len(keys) == 1 and "new_burner.py" in keys[0][1], keys
        assert cpu.get(keys[0], 0.0) == pytest.approx(own, abs=0.05)
        assert not any("old_burner.py" in key[1] for key in cpu)  # its end adds nothing to anyone
    finally:
        for proc in (old, new):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


HIDDEN_SCAN = """
import json, sys, time
from trayapp.attribution import Scanner, make_record
scanner = Scanner(True)
scanner.scan()
time.sleep(float(sys.argv[1]))
cpu, rss, pids, busy, used = scanner.scan()
record = make_record(0, cpu, rss, pids, busy, used)
print(json.dumps({"busy": busy, "named": sum(cpu.values()), "other": record.other_cpu,
                  "pids": sorted(p for ids in pids.values() for p in ids),
                  "commands": [key[1] for key in pids]}))
"""


def _can_hide() -> bool:
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("unshare", "setpriv", "mount"))


@pytest.mark.skipif(not _can_hide(), reason="a private /proc with hidepid needs root, unshare and setpriv")
def test_processes_the_recorder_may_not_read_go_to_the_rest_and_the_scan_goes_on(tmp_path: Path) -> None:
    """Another user's busy process, under ``hidepid``: the recorder (root without its
    capabilities, so another user's /proc entries are closed to it) names none of it and has
    no error; the machine's busy time still counts it, and it is in the part no group holds,
    so a rule's shares still add up. The recorder's own processes are named as usual."""
    burner = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               "sh", "-c", "while :; do :; done"])
    try:
        time.sleep(0.5)
        hidden = psutil.Process(burner.pid)
        before = sum(hidden.cpu_times()[:2])
        script = tmp_path / "scan.py"
        script.write_text(HIDDEN_SCAN)
        # gid: the group that may see all (root's by default, which the recorder is in)
        inner = (f"mount -t proc -o hidepid=1,gid=65533 proc /proc && exec setpriv --inh-caps=-all --bounding-set=-all "
                 f"{sys.executable} {script} 2.0")
        out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner],
                             capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})
        used = sum(hidden.cpu_times()[:2]) - before
    finally:
        burner.kill()
        burner.wait()
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    assert burner.pid not in seen["pids"]
    assert not any("while :" in command for command in seen["commands"])
    assert used > 1.0  # the burner ran through the scan
    # its time is in the machine's busy time and in no group: the part the shares call "other"
    assert seen["busy"] - seen["named"] >= 0.7 * used
    assert any("scan.py" in command for command in seen["commands"])  # what the recorder may read is named
