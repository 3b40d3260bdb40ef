"""What made a window average: per-minute CPU time, memory and GPU use of process groups, and a rule's contributors.

Imports psutil, ``model``, ``privacy``, ``jsonfile`` and the standard library; never Arrow, pandas or Qt (the
recorder runs it). The Parquet side of the per-minute records is ``attribution_days``, in a child.

How a rule's average is split. A rule's average is the mean of its minutes' means (``rules``).
Every ``SCAN_EVERY`` seconds the recorder scans the processes once; between two scans each process
used some CPU time (the change of its cumulative ``cpu_times``, its reaped children's included, so
a short-lived child is counted through its parent), and the machine was busy some CPU time (from
``/proc/stat`` or the OS's equivalent). Per minute, the processes are grouped by executable name
and redacted command line; a group's part of that minute's mean of ``cpu_percent`` is the mean
times the group's CPU time over the machine's busy time (memory rules: the group's mean resident
memory over the memory in use). A window's contributor share is the mean of these parts over the
window's minutes, so the shares of all groups plus "other" add up to the rule's average.
GPU rules split the same way, by each group's SM util (else GPU memory) or GPU memory on that
GPU, from what the probe's NVML backend says of the GPU's processes at each scan.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import sys
import time
from collections import deque
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from trayapp import jsonfile, privacy
from trayapp.model import Contributor, gpu_and_field

log = logging.getLogger(__name__)

# seconds: one process scan per slot of this length, at the slot's first tick (aligned to the clock,
# so a scan closes each minute). A scan reads every /proc/<pid>/stat: with ~300 processes that is
# about as much CPU as a minute of 1 s sampling, so scanning more often would double the recorder's
# cost. CPU time is cumulative, so a longer slot misses nothing of a process that lives across it.
SCAN_EVERY = 60.0
TOP_CPU = 50  # per minute, at most this many groups by CPU time: enough for 95 % of a busy machine's
CPU_COVERED = 0.95  # ... share of the minute's CPU time kept by name; the rest is "other"
TOP_MEMORY = 5  # and the groups holding the most memory
COMMAND_MAX = 160  # characters of a (redacted) command line kept
PIDS_KEPT = 5  # process ids listed per group
SHOWN = 5  # contributors a result carries (plus "other")
FOLDER = "Processes"  # beside the dataset's folder, in the data folder
CSV_FOLDER = "csv"  # today's (and not yet converted days') records, one CSV a local day
DAY_MAX = 1 << 30  # bytes: a day CSV larger than this is not one of these
TORN_MAX = 1 << 20  # bytes past the last whole minute that ``mend`` cuts; a longer tail is set aside
TOP_GPU = 5  # per GPU and minute, the groups holding the most GPU memory and those with the most SM util
BASE_COLUMNS = ("minute", "kind", "name", "command", "cpu_seconds", "rss_bytes", "pids")
GPU_COLUMNS = ("gpu", "gpu_memory_bytes", "gpu_sm_percent")  # empty on the CPU rows; files without them still read
COLUMNS = (*BASE_COLUMNS, *GPU_COLUMNS)
MACHINE, PROCESS, OTHER = "machine", "process", "other"
GPU_PROCESS, GPU_OTHER, GPU_DEVICE = "gpu_process", "gpu_other", "gpu"
SM_UTIL, GPU_MEMORY = "SM util", "GPU memory"  # what a GPU rule's contributors are weighted by

GroupKey = tuple[str, str]  # (executable name, redacted command line or "")


def rule_kind(metric: str) -> str | None:
    """Which per-minute measure splits a rule's metric: ``cpu``, ``memory``, ``gpuN_util``,
    ``gpuN_memory``, or None (not attributed)."""
    if metric == "cpu_percent":
        return "cpu"
    if metric == "memory_percent":
        return "memory"
    gpu = gpu_and_field(metric)
    if gpu is not None and gpu[1] in ("util_percent", "memory_percent"):
        return f"gpu{gpu[0]}_{gpu[1].split('_')[0]}"
    return None


def _gpu_of(kind: str) -> tuple[int, str] | None:
    """``gpu2_util`` → (2, "util")."""
    if kind.startswith("gpu"):
        index, _, what = kind[3:].partition("_")
        if index.isdigit():
            return int(index), what
    return None


def clean_command(parts: Iterable[str]) -> str:
    """A command line as stored and shown: redacted (``privacy.redact_command``), one line, at most
    ``COMMAND_MAX`` characters."""
    text = " ".join(parts)
    text = privacy.redact_command(text)
    text = "".join(" " if c in "\r\n\t\x00" or ord(c) < 32 else c for c in text)
    return text[:COMMAND_MAX].strip()


def short_name(name: str, command: str) -> str:
    """What a person calls a group: ``python train.py`` rather than ``python``."""
    words = command.split()
    if len(words) >= 2 and os.path.basename(words[0]).startswith(name[:15]):
        script = next((w for w in words[1:] if not w.startswith("-")), "")
        if script:
            return f"{name} {os.path.basename(script.rstrip('/'))}"
    return name


# ----------------------------------------------------------------------- one minute's record


@dataclass(frozen=True, slots=True)
class GpuMinute:
    """One GPU's minute: its memory in use (bytes) and utilisation (%, None when not read), the
    kept groups' GPU memory (bytes) and SM util (%; ``sm`` None where the driver reports no
    per-process utilisation), the rest as "other". Means over the minute's scans."""

    index: int
    used: float
    util: float | None
    keys: tuple[GroupKey, ...]
    memory: "Sequence[float]"
    sm: "Sequence[float] | None"
    pids: tuple[tuple[int, ...], ...]
    other_memory: float
    other_sm: float | None

    def rows(self, stamp: str) -> list[list[str]]:
        gpu, sm = str(self.index), self.sm if self.sm is not None else [None] * len(self.keys)
        rows = [[stamp, GPU_PROCESS, name, command, "", "", " ".join(map(str, p)), gpu, _bytes(m), _opt(s)]
                for (name, command), m, s, p in zip(self.keys, self.memory, sm, self.pids)]
        rows.append([stamp, GPU_OTHER, "", "", "", "", "", gpu, _bytes(self.other_memory), _opt(self.other_sm)])
        rows.append([stamp, GPU_DEVICE, "", "", "", "", "", gpu, _bytes(self.used), _opt(self.util)])
        return rows


@dataclass(frozen=True, slots=True)
class MinuteRecord:
    """One UTC minute (``floor(t / 60)``): the machine's busy CPU seconds and memory in use
    (bytes, mean over the scans), the kept groups' CPU seconds and mean resident memory, and the
    rest as "other"."""

    minute: int
    busy: float
    used: float
    keys: tuple[GroupKey, ...]
    cpu: "Sequence[float]"  # an array('d') in the recorder, a tuple when read back
    rss: "Sequence[float]"
    pids: tuple[tuple[int, ...], ...]
    other_cpu: float
    other_rss: float
    gpus: tuple[GpuMinute, ...] = ()  # the GPUs whose processes NVML listed in the minute

    def rows(self) -> list[list[str]]:
        """The record as CSV rows, the machine row last (a minute counts only with it)."""
        stamp = datetime.fromtimestamp(self.minute * 60, timezone.utc).isoformat()
        rows = [[stamp, PROCESS, name, command, _num(c), _num(r), " ".join(map(str, p)), "", "", ""]
                for (name, command), c, r, p in zip(self.keys, self.cpu, self.rss, self.pids)]
        for gpu in self.gpus:
            rows.extend(gpu.rows(stamp))
        rows.append([stamp, OTHER, "", "", _num(self.other_cpu), _num(self.other_rss), "", "", "", ""])
        rows.append([stamp, MACHINE, "", "", _num(self.busy), _num(self.used), "", "", "", ""])
        return rows


def _num(value: float) -> str:
    return f"{value:.6g}"


def _bytes(value: float) -> str:
    return f"{value:.0f}"  # whole bytes: a GPU's gigabytes keep every digit


def _opt(value: float | None) -> str:
    return "" if value is None else _num(value)


def make_record(minute: int, cpu: dict[GroupKey, float], rss: dict[GroupKey, float], pids: dict[GroupKey, list[int]],
                busy: float, used: float, shared: dict[Any, Any] | None = None, gpus: tuple[GpuMinute, ...] = ()) -> MinuteRecord:
    """Keep the groups that hold ``CPU_COVERED`` of the minute's CPU time (at most ``TOP_CPU``) and
    the ``TOP_MEMORY`` largest by memory; the rest goes to "other". ``shared``: one object for
    equal keys and pid lists across minutes (36 h of minutes in memory cost a few MB, not tens)."""
    share = shared.setdefault if shared is not None else (lambda value, _default: value)
    total_cpu = sum(cpu.values())
    kept: list[GroupKey] = []
    covered = 0.0
    for key, seconds in sorted(cpu.items(), key=lambda kv: kv[1], reverse=True)[:TOP_CPU]:
        if seconds <= 0 or (total_cpu > 0 and covered >= CPU_COVERED * total_cpu):
            break
        kept.append(key)
        covered += seconds
    chosen = set(kept)
    for key, _ in sorted(rss.items(), key=lambda kv: kv[1], reverse=True)[:TOP_MEMORY]:
        if key not in chosen:
            kept.append(key)
            chosen.add(key)
    kept_cpu = array("d", (cpu.get(k, 0.0) for k in kept))
    kept_rss = array("d", (rss.get(k, 0.0) for k in kept))
    kept_pids = _kept_pids(kept, pids, share)
    return MinuteRecord(
        minute=minute, busy=busy, used=used, keys=tuple(share(k, k) for k in kept), cpu=kept_cpu, rss=kept_rss,
        pids=tuple(kept_pids),
        other_cpu=max(total_cpu - sum(kept_cpu), 0.0), other_rss=max(sum(rss.values()) - sum(kept_rss), 0.0), gpus=gpus,
    )


def _kept_pids(kept: list[GroupKey], pids: dict[GroupKey, list[int]], share: Callable[[Any, Any], Any]) -> list[tuple[int, ...]]:
    """Each kept group's first ``PIDS_KEPT`` pids, one shared tuple for equal lists across minutes."""
    out = []
    for key in kept:
        ids = tuple(sorted(pids.get(key, ()))[:PIDS_KEPT])
        out.append(share(ids, ids))
    return out


def make_gpu_minute(index: int, memory: dict[GroupKey | None, float], sm: dict[GroupKey | None, float] | None,
                    pids: dict[GroupKey, list[int]], used: float, util: float | None,
                    shared: dict[Any, Any] | None = None) -> GpuMinute:
    """One GPU's minute: the ``TOP_GPU`` groups holding the most GPU memory and the ``TOP_GPU``
    with the most SM util; the rest goes to "other"."""
    share = shared.setdefault if shared is not None else (lambda value, _default: value)
    named = [(k, v) for k, v in memory.items() if k is not None]  # the None key: pids no scan named
    kept = [k for k, v in sorted(named, key=lambda kv: kv[1], reverse=True)[:TOP_GPU] if v > 0]
    chosen = set(kept)
    for key, value in sorted(((k, v) for k, v in (sm or {}).items() if k is not None), key=lambda kv: kv[1], reverse=True)[:TOP_GPU]:
        if value > 0 and key not in chosen:
            kept.append(key)
            chosen.add(key)
    kept_memory = tuple(memory.get(k, 0.0) for k in kept)
    kept_sm = None if sm is None else tuple(sm.get(k, 0.0) for k in kept)
    kept_pids = _kept_pids(kept, pids, share)
    return GpuMinute(
        index=index, used=used, util=util, keys=tuple(share(k, k) for k in kept), memory=kept_memory, sm=kept_sm,
        pids=tuple(kept_pids), other_memory=max(sum(memory.values()) - sum(kept_memory), 0.0),
        other_sm=None if sm is None or kept_sm is None else max(sum(sm.values()) - sum(kept_sm), 0.0),
    )


# ----------------------------------------------------------------------- a rule's contributors


def minute_parts(kind: str, record: MinuteRecord) -> tuple[tuple[float, ...], float] | None:
    """Each kept group's fraction of the minute's measure and the other groups' together, or
    None when the minute says nothing (no CPU time, no memory). The whole is the larger of the
    machine's figure and the groups' sum, so the fractions never add up past 1."""
    if kind == "cpu":
        values, other, machine = record.cpu, record.other_cpu, record.busy
    else:
        values, other, machine = record.rss, record.other_rss, record.used
    whole = max(machine, sum(values) + other)
    if not whole > 0 or not math.isfinite(whole):
        return None
    return tuple(v / whole for v in values), other / whole


def minute_split(kind: str, record: MinuteRecord) -> tuple[tuple[GroupKey, ...], tuple[tuple[int, ...], ...], tuple[float, ...], str] | None:
    """(groups, their pids, each one's fraction of the minute's measure, what weighed them) for
    any rule kind; None when the minute says nothing for it. GPU util: by the groups' SM util
    over the larger of their sum and the GPU's utilisation, else (the driver reports none) by
    their share of the GPU memory the processes hold; GPU memory: by GPU memory over the
    larger of the GPU's memory in use and the groups' sum. What weighed them: "" for CPU and
    memory, ``SM_UTIL`` or ``GPU_MEMORY``."""
    gpu = _gpu_of(kind)
    if gpu is None:
        parts = minute_parts(kind, record)
        return None if parts is None else (record.keys, record.pids, parts[0], "")
    index, what = gpu
    found = next((g for g in record.gpus if g.index == index), None)
    if found is None:
        return None
    held = sum(found.memory) + found.other_memory
    if what == "util":
        if found.sm is not None:
            busy = sum(found.sm) + (found.other_sm or 0.0)
            if busy > 0 and math.isfinite(busy):
                whole = max(busy, found.util or 0.0)
                return found.keys, found.pids, tuple(v / whole for v in found.sm), SM_UTIL
        whole = held
    else:
        whole = max(found.used, held)
    if not whole > 0 or not math.isfinite(whole):
        return None
    return found.keys, found.pids, tuple(v / whole for v in found.memory), GPU_MEMORY


def contributors(kind: str | None, records: Iterable[MinuteRecord], means: dict[int, float], minutes: int,
                 average: float | None, command_lines: bool = True, shown: int = SHOWN) -> tuple[Contributor, ...]:
    """A rule's contributors over its window: ``means`` holds the window's minutes' means of the
    metric (by ``floor(t / 60)``), ``minutes`` how many they are (the average's denominator).
    Each group's share is the mean over those minutes of its part of the minute's mean (a minute
    with no record gives it nothing); "other" is the rest of ``average``: groups not kept, time
    no scan covered. The shares, "other" included, add up to ``average``; () when no minute of
    the window has a record."""
    if kind is None or average is None or not minutes or not math.isfinite(average):
        return ()
    named = named_shares(kind, records, means, minutes, command_lines, shown)
    total = sum(c.share for c in named)
    if not named:
        return ()
    if total > average > 0:  # a window edge where one minute counts in part: scale down, never past the average
        named = [Contributor(c.name, c.command, c.share * average / total, c.pids, c.by) for c in named]
        total = average
    return (*named, Contributor(name="other", command="", share=average - total, pids=(), by=named[0].by))


def named_shares(kind: str, records: Iterable[MinuteRecord], means: dict[int, float], minutes: int,
                 command_lines: bool = True, shown: int = SHOWN) -> list[Contributor]:
    """The ``shown`` largest groups' shares of a window (``contributors`` without "other")."""
    sums: dict[GroupKey, float] = {}
    pids: dict[GroupKey, tuple[int, ...]] = {}
    weighed: set[str] = set()
    for record in records:
        mean = means.get(record.minute)
        if mean is None:
            continue
        split = minute_split(kind, record)
        if split is None:
            continue
        keys, record_pids, parts, by = split
        weighed.add(by)
        for key, part, ids in zip(keys, parts, record_pids):
            if not command_lines:
                key = (key[0], "")
            sums[key] = sums.get(key, 0.0) + mean * part
            pids[key] = ids  # the latest minute's
    top = sorted(((s / minutes, key) for key, s in sums.items() if s > 0), reverse=True)[:shown]
    # a GPU util window may mix minutes the driver gave SM util for and minutes it did not
    by = f"{SM_UTIL}, else {GPU_MEMORY}" if weighed >= {SM_UTIL, GPU_MEMORY} else next(iter(weighed - {""}), "")
    return [Contributor(name=key[0], command=key[1], share=share, pids=pids.get(key, ()), by=by) for share, key in top]


def describe_contributors(found: tuple[Contributor, ...], count: int = 3) -> str:
    """``python train.py 58, chrome 9, other 19`` (points of the metric); the top ``count``
    named, then "other" holding the rest."""
    if not found:
        return ""
    # a group whose share reads 0.0 names nothing (records that cover a few minutes of a long
    # window): it stays in "other", which the shares still add up to
    named = [c for c in found if (c.name != "other" or c.command) and c.share >= 0.05][:count]
    rest = sum(c.share for c in found) - sum(c.share for c in named)
    parts = [f"{short_name(c.name, c.command)} {_points(c.share)}" for c in named]
    parts.append(f"other {_points(max(rest, 0.0))}")
    by = found[0].by  # a GPU rule's: what weighed the processes
    return ", ".join(parts) + (f" (split by {by})" if by else "")


def minute_line(records: "Sequence[MinuteRecord]", t: float, cores: int, count: int = 3) -> str:
    """The busiest groups of the minute holding ``t`` as % of the machine (the history window's
    hover): ``python train.py 42 %, chrome 9.0 %``; "" when no record holds that minute."""
    import bisect

    minute = math.floor(t / 60)
    i = bisect.bisect_left(records, minute, key=lambda r: r.minute)
    if i >= len(records) or records[i].minute != minute:
        return ""
    record = records[i]
    ranked = sorted(zip(record.cpu, record.keys), reverse=True)[:count]
    parts = [f"{short_name(*key)} {_points(100.0 * cpu / (max(cores, 1) * 60.0))} %" for cpu, key in ranked if cpu > 0]
    return ", ".join(parts)


def span_line(records: "Sequence[MinuteRecord]", start: float, end: float, cores: int, count: int = 3) -> str:
    """Who used the machine over ``[start, end]`` (the history window's range on screen), from
    the records of the minutes in it: the busiest groups' CPU as % of the machine over the minutes
    recorded, then "other" (the groups not kept and time no scan saw, so the parts add up to the
    machine's use), and the largest by mean resident memory; with how much of the span the
    records cover when it is not all of it. "" when no record falls in the span."""
    import bisect

    from trayapp.model import format_bytes

    first, last = math.floor(start / 60), math.floor(end / 60)
    lo = bisect.bisect_left(records, first, key=lambda r: r.minute)
    hi = bisect.bisect_right(records, last, key=lambda r: r.minute)
    if hi <= lo:
        return ""
    cpu: dict[GroupKey, float] = {}
    rss: dict[GroupKey, float] = {}
    busy = 0.0
    for record in records[lo:hi]:
        busy += max(record.busy, sum(record.cpu) + record.other_cpu)
        for key, seconds, resident in zip(record.keys, record.cpu, record.rss):
            cpu[key] = cpu.get(key, 0.0) + seconds
            rss[key] = rss.get(key, 0.0) + resident
    minutes = hi - lo
    capacity = max(cores, 1) * 60.0 * minutes
    ranked = [(seconds, key) for key, seconds in cpu.items() if 100.0 * seconds / capacity >= 0.05]
    ranked.sort(reverse=True)
    parts = [f"{short_name(*key)} {_points(100.0 * seconds / capacity)} %" for seconds, key in ranked[:count]]
    rest = busy - sum(seconds for seconds, _key in ranked[:count])
    cpu_text = ", ".join([*parts, f"other {_points(max(100.0 * rest / capacity, 0.0))} %"])
    heavy = sorted(((total / minutes, key) for key, total in rss.items() if total > 0), reverse=True)[:count]
    memory_text = ", ".join(f"{short_name(*key)} {format_bytes(mean)}" for mean, key in heavy)
    spanned = last - first + 1
    covered = "" if minutes >= spanned else f" (recorded {minutes} of its {spanned} minutes)"
    line = f"CPU: {cpu_text}"
    if memory_text:
        line += f" · memory: {memory_text}"
    return line + covered


def _points(share: float) -> str:
    return f"{share:.0f}" if abs(share) >= 9.95 or share == 0 else f"{share:.1f}"


def minute_means(stamps: Any, values: Any) -> dict[int, float]:
    """Each UTC minute's mean of some samples (numpy arrays of epoch seconds and usable values)."""
    import numpy as np

    t = np.asarray(stamps, dtype="float64")
    v = np.asarray(values, dtype="float64")
    if not t.size:
        return {}
    minutes = np.floor(t / 60.0)
    order = np.argsort(minutes, kind="stable")
    minutes, v = minutes[order], v[order]
    starts = np.flatnonzero(np.concatenate(([True], minutes[1:] != minutes[:-1])))
    sums = np.add.reduceat(v, starts)
    counts = np.diff(np.append(starts, v.size))
    return dict(zip(minutes[starts].astype("int64").tolist(), (sums / counts).tolist()))


# ----------------------------------------------------------------------- the scan


class Scanner:
    """Scans the processes and says, since the previous scan, the CPU seconds each group used and
    the machine was busy, and each group's resident memory now.

    A process is known by (pid, start time), so a reused pid starts afresh. A process that ended
    since the last scan leaves the CPU time it used after that scan to its parent's children
    times once the parent reaps it: the parent's group gets it (its total as last seen is taken
    off, so nothing counts twice). A process born and gone between scans counts the same way."""

    def __init__(self, command_lines: bool = True) -> None:
        import psutil

        self._psutil = psutil
        self._proc = sys.platform.startswith("linux") and os.path.isfile("/proc/self/stat")
        self._tick = float(os.sysconf("SC_CLK_TCK")) if self._proc else 100.0
        self._page = float(os.sysconf("SC_PAGE_SIZE")) if self._proc else 4096.0
        self._stats: dict[str, tuple[bytes, tuple[int, float, str, int, float, float, float | None]]] = {}
        self.command_lines = command_lines
        self._known: dict[tuple[int, float], tuple[GroupKey, float, float, int]] = {}  # → key, own, children, ppid
        self._busy: float | None = None
        self._commands: dict[tuple[int, float], str] = {}
        self.groups: dict[int, GroupKey] = {}  # pid → group, as the last scan saw it (for the GPUs' processes)

    def _machine_busy(self) -> float:
        times = self._psutil.cpu_times()
        idle = getattr(times, "idle", 0.0) + getattr(times, "iowait", 0.0)
        # guest time is already counted in user time on Linux
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        return total - idle

    def _proc_entries(self) -> Iterator[tuple[int, float, str, int, float, float, float | None]]:
        """Linux: each process's /proc/<pid>/stat, one read (what psutil would read, without its
        per-process objects): pid, start time (ticks), name, ppid, own and reaped children's CPU
        seconds, resident bytes."""
        tick, page = self._tick, self._page
        try:
            names = os.listdir("/proc")
        except OSError:
            return
        before, cache = self._stats, {}
        self._stats = cache
        for entry in names:
            if not entry.isdigit():
                continue
            try:
                fd = os.open(f"/proc/{entry}/stat", os.O_RDONLY)
            except OSError:  # gone since the listing
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                continue
            finally:
                os.close(fd)
            seen = before.get(entry)
            if seen is not None and seen[0] == data:  # an idle process: the same bytes as last time
                cache[entry] = seen
                yield seen[1]
                continue
            head, _, rest = data.rpartition(b")")
            fields = rest.split()
            if len(fields) < 22:
                continue
            try:
                name = head.partition(b"(")[2].decode("utf-8", "replace")
                parsed = (int(entry), float(fields[19]), name, int(fields[1]),
                          (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick,
                          int(fields[21]) * page)
            except ValueError:
                continue
            cache[entry] = (data, parsed)
            yield parsed

    def _psutil_entries(self) -> Iterator[tuple[int, float, str, int, float, float, float | None]]:
        """Elsewhere: the same through psutil."""
        for proc in self._psutil.process_iter(["name", "ppid", "cpu_times", "memory_info", "create_time"]):
            info = proc.info
            times = info.get("cpu_times")
            if times is None:  # gone, or not ours to read: nothing to count
                continue
            memory_info = info.get("memory_info")
            yield (proc.pid, info.get("create_time") or 0.0, info.get("name") or "?", info.get("ppid") or 0,
                   times.user + times.system,
                   getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0),
                   float(memory_info.rss) if memory_info is not None else None)

    def _command(self, pid: int) -> str:
        """A process's command line, cleaned; "" when it cannot be read (another user's, gone)."""
        if self._proc:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    raw = f.read(64 * 1024)
            except OSError:
                return ""
            return clean_command(part.decode("utf-8", "replace") for part in raw.rstrip(b"\0").split(b"\0") if part)
        try:
            return clean_command(self._psutil.Process(pid).cmdline())
        except (self._psutil.Error, OSError):
            return ""

    def scan(self) -> tuple[dict[GroupKey, float], dict[GroupKey, float], dict[GroupKey, list[int]], float, float] | None:
        """(CPU seconds by group since the last scan, resident bytes by group, pids by group,
        machine busy CPU seconds since the last scan, memory in use); None the first time."""
        psutil = self._psutil
        busy_now = self._machine_busy()
        memory = psutil.virtual_memory()
        used = float(memory.total - memory.available)
        known, seen = self._known, {}
        cpu: dict[GroupKey, float] = {}
        rss: dict[GroupKey, float] = {}
        pids: dict[GroupKey, list[int]] = {}
        groups: dict[int, GroupKey] = {}
        commands = self._commands
        for pid, started, name, ppid, own, children, resident in (self._proc_entries() if self._proc else self._psutil_entries()):
            ident = (pid, started)
            command = commands.get(ident)
            if command is None:
                command = commands[ident] = self._command(pid)
            key = (name, command if self.command_lines else "")
            seen[ident] = (key, own, children, ppid)
            groups[pid] = key
            if resident is not None:
                rss[key] = rss.get(key, 0.0) + resident
            ids = pids.setdefault(key, [])
            if len(ids) < PIDS_KEPT:
                ids.append(pid)
        first = self._busy is None
        busy = 0.0 if first else max(busy_now - self._busy, 0.0)  # type: ignore[operator]
        self._busy = busy_now
        if not first:
            gone_totals: dict[int, float] = {}  # by parent pid: the totals of its children seen last time, now gone
            for ident, (_key, own, children, ppid) in known.items():
                if ident not in seen:
                    gone_totals[ppid] = gone_totals.get(ppid, 0.0) + own + children
            for ident, (key, own, children, _ppid) in seen.items():
                before = known.get(ident)
                if before is None:  # new since the last scan: all it used counts (it began after that scan, or nearly)
                    used_cpu = own + children
                else:
                    reaped = max(children - before[2] - gone_totals.get(ident[0], 0.0), 0.0)
                    used_cpu = max(own - before[1], 0.0) + reaped
                if used_cpu > 0:
                    cpu[key] = cpu.get(key, 0.0) + used_cpu
        self._known = seen
        self.groups = groups
        if len(commands) > 2 * len(seen) + 64:
            self._commands = {ident: commands[ident] for ident in seen if ident in commands}
        if first:
            return None
        return cpu, rss, pids, busy, used


# ----------------------------------------------------------------------- today's file


def csv_path(data_dir: Path, day: date) -> Path:
    return Path(data_dir) / FOLDER / CSV_FOLDER / f"{day.isoformat()}.csv"


def local_day(minute: int) -> date:
    return datetime.fromtimestamp(minute * 60, timezone.utc).astimezone().date()


class DayWriter:
    """Appends minute records to their local day's CSV: whole minutes in one write, the machine
    row last; a torn tail (a crash mid-write) is cut back to the last whole minute when the file
    is opened, and a failed write leaves the file as it was."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.day: date | None = None
        self._fd: int | None = None
        self._size = 0
        self._failing = False

    def _open(self, day: date) -> None:
        self.close()
        path = csv_path(self.data_dir, day)
        jsonfile.make_folder(path.parent, self.data_dir)  # a file where a folder goes is set aside
        if not jsonfile.is_regular_or_missing(path):  # a FIFO, a folder, a link to one: never opened, never waited on
            jsonfile.set_aside(path, "not a regular file")
        mend(path)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        self._fd = os.open(path, flags, 0o600)  # command lines: for this user only
        if hasattr(os, "set_blocking"):
            os.set_blocking(self._fd, True)
        self._size = os.fstat(self._fd).st_size
        self.day = day
        if not self._size:
            self._write(_csv_bytes([list(COLUMNS)]))

    def append(self, record: MinuteRecord) -> bool:
        """Write one minute; False (said once until it works again) when it could not be."""
        try:
            day = local_day(record.minute)
            if day != self.day or self._fd is None:
                self._open(day)
            self._write(_csv_bytes(record.rows()))
        except OSError as exc:
            if not self._failing:
                log.warning("cannot write process records to %s: %s; they are not kept until it can",
                            csv_path(self.data_dir, local_day(record.minute)), exc.strerror or exc)
            self._failing = True
            return False
        if self._failing:
            log.warning("writing process records again")
        self._failing = False
        return True

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        try:
            if os.write(self._fd, data) != len(data):
                raise OSError(28, "short write (disk full?)")
        except OSError:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            raise
        self._size += len(data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8", errors="replace")


def mend(path: Path) -> None:
    """Cut a day CSV back to its last whole minute (the end of its last machine row)."""
    try:
        with jsonfile.open_own(path, DAY_MAX) as f:
            data = f.read()
    except FileNotFoundError:
        return
    except OSError:  # not a regular file, or too large to be one of these: set aside whole
        jsonfile.set_aside(path, "not a day file of process records")
        return
    keep = _whole_length(data)
    if keep == len(data):
        return
    if len(data) - keep > TORN_MAX:  # more than a torn minute: not ours to cut; kept aside whole
        aside = path.with_name(f".{path.name}.unreadable-{time.time_ns()}")
        os.replace(path, aside)
        log.warning("%s does not end in whole minutes; kept it aside as %s", path, aside)
        return
    with open(path, "r+b") as f:
        f.truncate(keep)
    log.info("%s: cut %d byte(s) of a minute not written in full", path, len(data) - keep)


def _whole_length(data: bytes) -> int:
    """The length of ``data`` up to the end of its last machine row (the header alone if none)."""
    end = len(data)
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        line = data[start:end]
        if line.endswith(b"\n") and _is_machine_row(line):
            return end
        if start == 0:
            break
        end = start
    header_end = data.find(b"\n") + 1
    return header_end if data.startswith(b"minute,") and header_end else 0


def _is_machine_row(line: bytes) -> bool:
    try:
        row = next(csv.reader([line.decode("utf-8")]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return False
    return len(row) in (len(BASE_COLUMNS), len(COLUMNS)) and row[1] == MACHINE


def read_csv(path: Path) -> list[MinuteRecord]:
    """The whole minutes of one day CSV (a torn or broken minute is left out)."""
    try:
        with jsonfile.open_own(path, DAY_MAX) as f:
            text = f.read().decode("utf-8", errors="replace").replace("\0", "")
    except OSError:  # gone, or not a regular file of a sane size: nothing to read
        return []
    try:
        return records_from_rows(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:  # a file mangled past what the csv module reads: its minutes are not shown
        log.warning("process records %s could not be read (%s)", path, exc)
        return []


def records_from_rows(rows: Iterable[list[str]]) -> list[MinuteRecord]:
    """Minute records from rows in the CSV's column order (rows without the GPU columns, as
    written before they existed, too); a minute counts once its machine row comes, and a
    repeated minute keeps its first record."""
    out: list[MinuteRecord] = []
    done: set[int] = set()
    pending: list[list[str]] = []
    for row in rows:
        if len(row) == len(BASE_COLUMNS):
            row = [*row, "", "", ""]
        if len(row) != len(COLUMNS) or row[0] == "minute":
            continue
        if row[1] != MACHINE:
            pending.append(row)
            continue
        try:
            minute = _minute_of(row[0])
            keys, cpu, rss, pids, other_cpu, other_rss = [], [], [], [], 0.0, 0.0
            gpus: dict[int, dict[str, Any]] = {}
            for p in pending:
                if _minute_of(p[0]) != minute:
                    continue
                if p[1] == OTHER:
                    other_cpu, other_rss = float(p[4]), float(p[5])
                elif p[1] == PROCESS:
                    keys.append((p[2], p[3]))
                    cpu.append(float(p[4]))
                    rss.append(float(p[5]))
                    pids.append(_pids(p[6]))
                elif p[1] in (GPU_PROCESS, GPU_OTHER, GPU_DEVICE):
                    _gpu_row(gpus.setdefault(int(p[7]), {"keys": [], "memory": [], "sm": [], "pids": []}), p)
            record = MinuteRecord(minute, float(row[4]), float(row[5]), tuple(keys), tuple(cpu), tuple(rss),
                                  tuple(pids), other_cpu, other_rss, tuple(_gpu_minute(i, g) for i, g in sorted(gpus.items())
                                                                          if "used" in g))
        except (ValueError, OverflowError, TypeError):
            pending = []
            continue
        pending = []
        numbers = (record.busy, record.used, *record.cpu, *record.rss,
                   *(x for g in record.gpus for x in (g.used, g.other_memory, *g.memory)))
        if minute not in done and all(math.isfinite(x) for x in numbers):
            done.add(minute)
            out.append(record)
    return out


def _pids(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split() if x.isdigit())


def _optional(text: str) -> float | None:
    if not text:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _gpu_row(gpu: dict[str, Any], row: list[str]) -> None:
    memory, sm = float(row[8]), _optional(row[9])
    if row[1] == GPU_PROCESS:
        gpu["keys"].append((row[2], row[3]))
        gpu["memory"].append(memory)
        gpu["sm"].append(sm)
        gpu["pids"].append(_pids(row[6]))
    elif row[1] == GPU_OTHER:
        gpu["other_memory"], gpu["other_sm"] = memory, sm
    else:
        gpu["used"], gpu["util"] = memory, sm


def _gpu_minute(index: int, gpu: dict[str, Any]) -> GpuMinute:
    """A GPU's rows read back; its SM util is known when every one of its rows has it."""
    other_sm = gpu.get("other_sm")
    known = other_sm is not None and all(v is not None for v in gpu["sm"])
    return GpuMinute(index, gpu["used"], gpu["util"], tuple(gpu["keys"]), tuple(gpu["memory"]),
                     tuple(gpu["sm"]) if known else None, tuple(gpu["pids"]), gpu.get("other_memory", 0.0),
                     other_sm if known else None)


def _minute_of(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return math.floor(moment.timestamp() / 60)


# ----------------------------------------------------------------------- the recorder's part


class Attributor:
    """The recorder's attribution: a scan at the first tick of each ``SCAN_EVERY`` slot, each
    scan's CPU time spread over the minutes it covers, a minute closed (written, kept in memory)
    by the first scan after it ends. ``records`` holds the minutes of the longest rule window."""

    def __init__(self, data_dir: Path, command_lines: bool = True, keep_seconds: float = 36 * 3600,
                 scan_every: float = SCAN_EVERY) -> None:
        self.scanner = Scanner(command_lines)
        self.writer = DayWriter(data_dir)
        self.keep_seconds = keep_seconds
        self.scan_every = scan_every
        self.records: deque[MinuteRecord] = deque()
        self.version = 0  # changes whenever ``records`` does
        self._slot: int | None = None
        self._last_scan: float | None = None
        self._open: dict[int, dict[str, Any]] = {}  # minutes not closed yet
        self._shared: dict[Any, Any] = {}  # one object per group key and pid list (``make_record``)
        self._closed = 0
        self.scans = 0
        self.scan_seconds = 0.0  # CPU time the scans took (the cost, for doctor and bench)
        self._gpu_failing = False  # the GPUs' processes could not be read (said once)

    @property
    def command_lines(self) -> bool:
        return self.scanner.command_lines

    @command_lines.setter
    def command_lines(self, value: bool) -> None:
        self.scanner.command_lines = value

    def seed(self, records: Iterable[MinuteRecord], now: float) -> None:
        """Minutes from disk (sorted), before the first tick."""
        start = math.floor((now - self.keep_seconds) / 60)
        last = self.records[-1].minute if self.records else None
        for record in sorted(records, key=lambda r: r.minute):
            if record.minute >= start and (last is None or record.minute > last):
                share = self._shared.setdefault
                self.records.append(MinuteRecord(
                    record.minute, record.busy, record.used, tuple(share(k, k) for k in record.keys),
                    array("d", record.cpu), array("d", record.rss), tuple(share(p, p) for p in record.pids),
                    record.other_cpu, record.other_rss, record.gpus))
                last = record.minute
        self.version += 1

    def tick(self, t: float, gpu: Any = None) -> bool:
        """Scan if ``t`` starts a new slot; True when a minute closed (the contributors change).
        ``gpu``: the probe's GPU backend; one with ``processes`` (NVML) has its GPUs' processes
        recorded too."""
        slot = math.floor(t / self.scan_every)
        if slot == self._slot:
            return False
        self._slot = slot
        began = time.process_time()
        try:
            scanned = self.scanner.scan()
        except Exception as exc:  # noqa: BLE001 - psutil on an odd platform: no attribution this time, sampling goes on
            log.warning("process scan failed (%s: %s)", type(exc).__name__, str(exc)[:160])
            scanned = None
        self.scans += 1
        self.scan_seconds += time.process_time() - began
        previous, self._last_scan = self._last_scan, t
        if scanned is None:
            return False
        cpu, rss, pids, busy, used = scanned
        self._spread(previous if previous is not None and previous < t else t, t, cpu, busy)
        here = self._minute(math.floor(t / 60))
        for key, value in rss.items():
            here["rss"][key] = here["rss"].get(key, 0.0) + value
        for key, ids in pids.items():
            here["pids"][key] = ids
        here["used"] += used
        here["scans"] += 1
        read_gpus = getattr(gpu, "processes", None)
        if read_gpus is not None:
            self._gpu_scan(read_gpus, here)
        return self._close_before(math.floor(t / 60))

    def _gpu_scan(self, read_gpus: Any, here: dict[str, Any]) -> None:
        """Each GPU's processes now, by group, added to the minute ``here``. A pid no scan saw
        (another PID namespace's) counts to that GPU's "other"."""
        began = time.process_time()
        try:
            found = read_gpus()
        except Exception as exc:  # noqa: BLE001 - a driver gone mid-run: this minute's GPU processes are not kept
            if not self._gpu_failing:  # once until it works again, not every minute for months
                log.warning("GPU processes could not be read (%s: %s); left out of the process records until they can be",
                            type(exc).__name__, str(exc)[:160])
            self._gpu_failing = True
            return
        finally:
            self.scan_seconds += time.process_time() - began
        self._gpu_failing = False
        groups = self.scanner.groups
        for reading in found:
            entry = here["gpus"].get(reading.index)
            if entry is None:
                entry = here["gpus"][reading.index] = {"memory": {}, "sm": {}, "pids": {}, "used": 0.0, "util": 0.0,
                                                       "scans": 0, "util_scans": 0, "sm_scans": 0}
            entry["scans"] += 1
            entry["used"] += reading.used or 0.0
            if reading.util is not None:
                entry["util"] += reading.util
                entry["util_scans"] += 1
            memory, sm, pids = entry["memory"], entry["sm"], entry["pids"]
            for pid, value in reading.memory.items():
                key = groups.get(pid)
                memory[key] = memory.get(key, 0.0) + value
                if key is not None:
                    ids = pids.setdefault(key, set())
                    if len(ids) < PIDS_KEPT:
                        ids.add(pid)
            if reading.sm is not None:
                entry["sm_scans"] += 1
                for pid, value in reading.sm.items():
                    key = groups.get(pid)
                    sm[key] = sm.get(key, 0.0) + value

    def _minute(self, minute: int) -> dict[str, Any]:
        entry = self._open.get(minute)
        if entry is None:
            entry = self._open[minute] = {"cpu": {}, "rss": {}, "pids": {}, "busy": 0.0, "used": 0.0, "scans": 0, "gpus": {}}
        return entry

    def _spread(self, a: float, b: float, cpu: dict[GroupKey, float], busy: float) -> None:
        """The CPU seconds of the interval (a, b] go to the minutes it spans, by the time in each."""
        span = b - a
        if span <= 0:
            pieces = [(math.floor(b / 60), 1.0)]
        else:
            pieces = []
            start = a
            while start < b:
                minute = math.floor(start / 60)
                end = min((minute + 1) * 60.0, b)
                pieces.append((minute, (end - start) / span))
                start = end
                if len(pieces) > 3:  # a long gap (suspend): only the last minutes count
                    pieces = pieces[-3:]
            total = sum(w for _, w in pieces)
            pieces = [(m, w / total) for m, w in pieces] if total > 0 else [(math.floor(b / 60), 1.0)]
        for minute, weight in pieces:
            entry = self._minute(minute)
            entry["busy"] += busy * weight
            target = entry["cpu"]
            for key, seconds in cpu.items():
                target[key] = target.get(key, 0.0) + seconds * weight

    def _close_before(self, minute: int) -> bool:
        closed = False
        for m in sorted(k for k in self._open if k < minute):
            entry = self._open.pop(m)
            scans = entry["scans"]
            rss = {k: v / scans for k, v in entry["rss"].items()} if scans else {}
            used = entry["used"] / scans if scans else 0.0
            gpus = tuple(self._gpu_minute(index, g) for index, g in sorted(entry["gpus"].items()))
            record = make_record(m, entry["cpu"], rss, entry["pids"], entry["busy"], used, self._shared, gpus)
            self.writer.append(record)
            if not self.records or record.minute > self.records[-1].minute:
                self.records.append(record)
            closed = True
        if closed:
            oldest = minute - math.ceil(self.keep_seconds / 60) - 1
            while self.records and self.records[0].minute < oldest:
                self.records.popleft()
            self._closed += 1
            if self._closed % 60 == 0:  # hourly: forget the keys and pid lists no minute holds any more
                self._shared = {}
                for record in self.records:
                    for k, ids in zip(record.keys, record.pids):
                        self._shared.setdefault(k, k)
                        self._shared.setdefault(ids, ids)
                    for gpu in record.gpus:
                        for k, ids in zip(gpu.keys, gpu.pids):
                            self._shared.setdefault(k, k)
                            self._shared.setdefault(ids, ids)
            self.version += 1
        return closed

    def _gpu_minute(self, index: int, entry: dict[str, Any]) -> GpuMinute:
        """A GPU's minute from its scans: means over the scans that read each figure."""
        scans, sm_scans, util_scans = entry["scans"], entry["sm_scans"], entry["util_scans"]
        return make_gpu_minute(
            index, {k: v / scans for k, v in entry["memory"].items()},
            {k: v / sm_scans for k, v in entry["sm"].items()} if sm_scans else None,
            {k: list(v) for k, v in entry["pids"].items()}, entry["used"] / scans,
            entry["util"] / util_scans if util_scans else None, self._shared)

    def close(self) -> None:
        self.writer.close()


class RuleContributors:
    """One rule's contributors for the engine: computed afresh when a minute closes (or the rule
    window's minutes change), then only "other" follows the average from tick to tick."""

    __slots__ = ("kind", "_key", "_named", "_sum")

    def __init__(self, metric: str) -> None:
        self.kind = rule_kind(metric)
        self._key: tuple[int, int, int, bool] | None = None
        self._named: tuple[Contributor, ...] = ()
        self._sum = 0.0

    def result(self, attributor: Attributor, window: Any, average: float | None, command_lines: bool) -> tuple[Contributor, ...]:
        if self.kind is None or average is None or not math.isfinite(average):
            return ()
        minutes = window.minutes
        first = window.first_minute()
        key = (attributor.version, minutes, first, command_lines)
        if key != self._key:
            self._key = key
            self._named = tuple(named_shares(self.kind, attributor.records, window.minute_means(), minutes, command_lines))
            self._sum = sum(c.share for c in self._named)
        named, total = self._named, self._sum
        if not named:  # no minute of the window has a record yet
            return ()
        if total > average > 0:
            named = tuple(Contributor(c.name, c.command, c.share * average / total, c.pids, c.by) for c in named)
            total = average
        return (*named, Contributor("other", "", average - total, (), named[0].by))
