"""What a tick reads and does (issue 29): /proc/meminfo read by the probe gives psutil's numbers
exactly; files stay open; the snooze file is looked at when a tick needs it, not every tick."""

from __future__ import annotations

import json
import os
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest

from trayapp import probes
from trayapp.probes import MachineReader, meminfo_bytes, meminfo_memory_percent, meminfo_swap, parse_swap

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/meminfo is Linux's")


def meminfo_text(total_kb: int, free_kb: int, available_kb: int | None, swap: tuple[int, int] | None = (0, 0)) -> bytes:
    """A /proc/meminfo in the kernel's layout, with the rest of its lines."""
    lines = [f"MemTotal:       {total_kb} kB", f"MemFree:        {free_kb} kB"]
    if available_kb is not None:
        lines.append(f"MemAvailable:   {available_kb} kB")
    lines += ["Buffers:           66564 kB", "Cached:          1002536 kB", "SwapCached:            0 kB",
              "Active:           661132 kB", "Inactive:         691656 kB", "Active(file):     661076 kB",
              "Inactive(file):   397804 kB", "Shmem:             10220 kB", "Slab:             280084 kB",
              "SReclaimable:     243112 kB"]
    if swap is not None:
        lines += [f"SwapTotal:      {swap[0]} kB", f"SwapFree:       {swap[1]} kB"]
    lines += ["Dirty:             11448 kB", "HugePages_Total:       0", "Hugepagesize:       2048 kB"]
    return ("\n".join(lines) + "\n").encode()


def psutil_reading(tmp_path: Path, text: bytes, monkeypatch: pytest.MonkeyPatch):
    """psutil's virtual_memory() and swap_memory() of exactly this meminfo (its PROCFS_PATH)."""
    proc = tmp_path / "proc"
    proc.mkdir(exist_ok=True)
    (proc / "meminfo").write_bytes(text)
    (proc / "vmstat").write_bytes(b"pswpin 0\npswpout 0\n")
    monkeypatch.setattr(psutil, "PROCFS_PATH", str(proc))
    try:
        return psutil.virtual_memory(), psutil.swap_memory()
    finally:
        monkeypatch.setattr(psutil, "PROCFS_PATH", "/proc")


@linux_only
def test_this_machines_meminfo_gives_psutils_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = Path("/proc/meminfo").read_bytes()
    memory, swap = psutil_reading(tmp_path, text, monkeypatch)
    assert meminfo_memory_percent(text) == memory.percent
    assert meminfo_swap(text) == (swap.total, swap.percent)
    assert parse_swap(meminfo_swap(text)) == parse_swap(swap)
    assert meminfo_bytes(text, b"MemTotal:") == memory.total


@linux_only
def test_meminfo_percents_match_psutil_float_for_float(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(29)
    for _ in range(300):
        total = rng.randint(1, 2**40)  # kB: up to 1 PB
        available = rng.randint(1, total)
        free = rng.randint(0, available)
        swap_total = rng.choice([0, rng.randint(1, 2**34)])
        swap = (swap_total, rng.randint(0, swap_total))
        text = meminfo_text(total, free, available, swap)
        memory, psutil_swap = psutil_reading(tmp_path, text, monkeypatch)
        assert meminfo_memory_percent(text) == memory.percent, (total, available)
        assert meminfo_swap(text) == (psutil_swap.total, psutil_swap.percent), swap
        assert parse_swap(meminfo_swap(text)) == parse_swap(psutil_swap)
    # 2000 kB: every used figure lands on a half-way point (0.05 %, 0.15 %, …), where a formula
    # that multiplies before it divides rounds the other way
    for used in range(0, 2001):
        text = meminfo_text(2000, 2000 - used, 2000 - used or 1, (2000, 2000 - used))
        memory, psutil_swap = psutil_reading(tmp_path, text, monkeypatch)
        assert meminfo_memory_percent(text) == memory.percent, used
        assert meminfo_swap(text) == (psutil_swap.total, psutil_swap.percent), used


@linux_only
def test_a_container_whose_available_exceeds_its_total_uses_free_as_psutil_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = meminfo_text(1_000_000, 250_000, 4_000_000)
    memory, _ = psutil_reading(tmp_path, text, monkeypatch)
    assert meminfo_memory_percent(text) == memory.percent == 75.0


def test_where_psutil_estimates_the_probe_asks_psutil() -> None:
    assert meminfo_memory_percent(meminfo_text(1_000_000, 250_000, None)) is None  # a kernel before 3.14
    assert meminfo_memory_percent(meminfo_text(1_000_000, 250_000, 0)) is None  # psutil issue 1915
    assert meminfo_memory_percent(b"") is None and meminfo_memory_percent(b"MemTotal: x kB\n") is None
    assert meminfo_swap(meminfo_text(1_000_000, 250_000, 500_000, swap=None)) is None  # psutil asks sysinfo()
    assert parse_swap(meminfo_swap(meminfo_text(1_000_000, 250_000, 500_000, swap=(0, 0)))) is None  # no swap: null


@linux_only
def test_the_probe_reads_memory_from_meminfo_kept_open(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = MachineReader("/")
    first = reader.memory()
    fd = reader._meminfo._fd
    assert fd is not None and os.readlink(f"/proc/self/fd/{fd}") == "/proc/meminfo"

    def no(*_args, **_kwargs):
        raise AssertionError("psutil asked on a machine whose /proc/meminfo says it all")

    monkeypatch.setattr(psutil, "virtual_memory", no)
    monkeypatch.setattr(psutil, "swap_memory", no)
    assert reader.memory() == pytest.approx(first, abs=5.0) and reader._meminfo._fd == fd
    reader._read_slow(0.0)
    reader.close()
    assert reader._meminfo._fd is None


def test_without_proc_meminfo_the_probe_asks_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = MachineReader("/")
    reader._meminfo.close()
    reader._meminfo = probes.ProcFile("/nonexistent/meminfo")  # a container without it, or macOS
    asked = []
    real = psutil.virtual_memory
    monkeypatch.setattr(psutil, "virtual_memory", lambda: asked.append(1) or real())
    value = reader.memory()
    assert asked == [1] and value is not None and 0 <= value <= 100
    reader.close()


def test_the_csv_fields_and_numbers_are_format_values_and_what_it_reads_back() -> None:
    from trayapp.storage.csv_file import csv_fields as _fields
    from trayapp.storage import csv_field

    values = [None, 0.0, -0.0, 1.0, 12.34565, 99.99995, 1e-9, -3.25, 1234567890123.456789, 2**60, True, 7,
              float("nan"), float("inf"), -float("inf"), 0.1 + 0.2, 5e-05, 4.99995e-05]
    rng = random.Random(29)
    values += [rng.uniform(-1e6, 1e6) for _ in range(500)] + [rng.random() / 1000 for _ in range(200)]
    names = tuple(f"c{i}" for i in range(len(values))) + ("not_in_the_sample",)
    fields, numbers = _fields(dict(zip(names, values)), names)
    assert fields == [csv_field(v) for v in values] + [""]
    assert numbers == [float(f) if f else None for f in fields]
    assert [str(n) for n in numbers] == [str(float(f)) if f else "None" for f in fields]  # -0.0 stays -0.0


# --- the snooze file: looked at when a tick needs it, not on every tick


def _courier_tick(at: datetime, transitions=(), results=()):
    from trayapp.engine import Tick
    from trayapp.model import Level, Sample

    return Tick(Sample(at, 1.0, 1.0, 1.0), tuple(results), Level.RED, tuple(transitions), True)


def _outside_snooze(data_dir: Path, until: datetime | None, held: int = 0) -> None:
    """snooze.json as another process (``trayapp snooze``) writes it: not through this process's write_snooze."""
    (data_dir / "state").mkdir(parents=True, exist_ok=True)
    path = data_dir / "state" / "snooze.json"
    path.write_text(json.dumps({"until": until.isoformat() if until else None, "held": held}))
    stamp = path.stat().st_mtime_ns + 1_000_000  # a later mtime, however coarse the file system's clock
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def courier(data_dir: Path):
    from trayapp.settings import Config
    from trayapp.slack import Courier

    data_dir.mkdir(parents=True)
    config = Config(slack_webhook_url="http://127.0.0.1:9/hook")  # nothing is delivered: no thread started
    return Courier(data_dir, lambda: config)


def test_a_snooze_from_outside_holds_the_next_alert_though_quiet_ticks_did_not_look(courier, data_dir: Path) -> None:
    from tests.test_slack import red_change

    courier.SNOOZE_LOOK_EVERY = 3600.0
    now = datetime.now(timezone.utc)
    courier.on_tick(_courier_tick(now))  # the first tick looks
    _outside_snooze(data_dir, now + timedelta(hours=1))
    courier.on_tick(_courier_tick(now + timedelta(seconds=1)))
    assert courier.snoozed is None  # a tick with nothing to send does not look again yet
    courier.on_tick(_courier_tick(now + timedelta(seconds=2), (red_change(now + timedelta(seconds=2)),)))
    assert courier.outbox.pending() == []  # held: a tick with an alert looks first
    assert courier.snoozed is not None
    assert json.loads((data_dir / "state" / "snooze.json").read_text())["held"] == 1


def test_a_snooze_from_outside_is_seen_by_quiet_ticks_within_the_period(courier, data_dir: Path) -> None:
    courier.SNOOZE_LOOK_EVERY = 0.0
    now = datetime.now(timezone.utc)
    courier.on_tick(_courier_tick(now))
    _outside_snooze(data_dir, now + timedelta(hours=1))
    courier.on_tick(_courier_tick(now + timedelta(seconds=1)))
    assert courier.snoozed == now + timedelta(hours=1)
    _outside_snooze(data_dir, None, held=0)  # 'trayapp snooze off'
    courier.on_tick(_courier_tick(now + timedelta(seconds=2)))
    assert courier.snoozed is None


def test_a_snooze_that_ran_out_ends_without_reading_the_file(courier, data_dir: Path) -> None:
    from tests.test_slack import red_change

    courier.SNOOZE_LOOK_EVERY = 3600.0
    now = datetime.now(timezone.utc)
    _outside_snooze(data_dir, now + timedelta(seconds=30))
    courier.on_tick(_courier_tick(now, (red_change(now),)))  # held
    assert courier.snoozed is not None and courier.outbox.pending() == []
    result = red_change(now).result
    courier.on_tick(_courier_tick(now + timedelta(seconds=31), (), (result,)))  # ran out: the summary, once
    (path,) = courier.outbox.pending()
    assert json.loads(path.read_text())["text"].startswith(":red_circle: Snooze over on")
    assert courier.snoozed is None
    assert json.loads((data_dir / "state" / "snooze.json").read_text()) == {"until": None, "held": 0}


def test_a_new_snooze_from_outside_is_not_overwritten_when_the_old_one_runs_out(courier, data_dir: Path) -> None:
    from tests.test_slack import red_change

    courier.SNOOZE_LOOK_EVERY = 3600.0
    now = datetime.now(timezone.utc)
    _outside_snooze(data_dir, now + timedelta(seconds=30))
    courier.on_tick(_courier_tick(now, (red_change(now),)))  # held: 1
    courier.on_tick(_courier_tick(now + timedelta(seconds=1)))  # sees its own write; the next looks in an hour
    later = now + timedelta(seconds=31)
    _outside_snooze(data_dir, later + timedelta(hours=8), held=1)  # snoozed again just as it ran out
    courier.on_tick(_courier_tick(later, (), (red_change(now).result,)))
    assert courier.outbox.pending() == []  # no summary: the file says snoozed
    assert json.loads((data_dir / "state" / "snooze.json").read_text())["held"] == 1
    assert courier.snoozed == later + timedelta(hours=8)
