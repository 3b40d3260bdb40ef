"""Reading the machine: psutil for CPU, memory, disk, network, sensors; NVML or GPUtil for NVIDIA GPUs.

Imports only ``model``; a missing GPU, sensor, battery, driver or field is a normal state that reads as ``None``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple, Protocol

import psutil

from trayapp.model import GpuReading, Sample

log = logging.getLogger(__name__)

GPU_BACKENDS = ("auto", "nvml", "gputil", "off")

_said: set[str] = set()
_said_lock = threading.Lock()


def say_once(key: str, message: str, level: int = logging.WARNING) -> None:
    """Log ``message`` the first time ``key`` is seen in this process, and never again."""
    with _said_lock:
        if key in _said:
            return
        _said.add(key)
    log.log(level, message)


def default_disk_path() -> str:
    """The system drive: ``C:\\`` (or wherever Windows lives), ``/`` elsewhere."""
    if sys.platform == "win32":
        return os.environ.get("SystemDrive", "C:") + "\\"
    return "/"


def _finite(value: Any) -> float | None:
    """A float, or ``None`` for anything that is not a finite number (``[N/A]``, NaN)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class GpuBackend(Protocol):
    name: str

    def read(self) -> tuple[GpuReading, ...]: ...

    def close(self) -> None: ...


class GpuProcesses(NamedTuple):
    """One GPU's processes at one moment (``NvmlBackend.processes``): the GPU's memory in use
    (bytes) and utilisation (%), each process's GPU memory (bytes; 0 where NVML does not say,
    as under Windows' WDDM), and each one's SM utilisation (%) where the driver reports it."""

    index: int
    used: float | None
    util: float | None
    memory: dict[int, float]
    sm: dict[int, float] | None


def _process_memory(value: Any) -> float:
    """A process's ``usedGpuMemory``: None or NVML_VALUE_NOT_AVAILABLE (all bits set) read as 0."""
    number = _finite(value)
    return number if number is not None and 0 <= number < 2**63 else 0.0


class NoGpu:
    """The backend of a machine without NVIDIA GPUs (or with GPU sampling off)."""

    name = "none"

    def read(self) -> tuple[GpuReading, ...]:
        return ()

    def close(self) -> None:
        pass


class NvmlBackend:
    """NVML in-process: about 20 µs a GPU (see the H100 fixture), no subprocess.

    ``nvml`` is the ``pynvml`` module from nvidia-ml-py; tests may pass a stand-in with the
    same functions, since this machine has no GPU.
    """

    name = "nvml"

    def __init__(self, nvml: Any | None = None) -> None:
        if nvml is None:
            _nvml_library()
            import pynvml as nvml  # nvidia-ml-py
        self._nvml = nvml
        nvml.nvmlInit()  # raises NVMLError when there is no driver or library
        try:
            count = nvml.nvmlDeviceGetCount()
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._names = [self._call(nvml.nvmlDeviceGetName, h) for h in self._handles]
            self._uuids = [self._call(nvml.nvmlDeviceGetUUID, h) for h in self._handles]
        except Exception:
            nvml.nvmlShutdown()
            raise
        if not self._handles:
            nvml.nvmlShutdown()
            raise RuntimeError("NVML found no GPU")
        self._memory_versions = [self._pick_memory_version(h) for h in self._handles]
        self._util_seen: dict[int, int] = {}  # per GPU: the newest process-utilisation sample read (µs)

    def _pick_memory_version(self, handle: Any) -> int | None:
        """``nvmlMemory_v2`` where the library and the driver have it, else ``None`` (v1).

        v1's ``used`` counts the memory the driver reserves (0.43 % of an H200 at idle), which
        nvidia-smi and GPUtil leave out; v2 reports it apart, so ``used`` matches nvidia-smi.
        """
        nvml = self._nvml
        version = getattr(nvml, "nvmlMemory_v2", None)
        if version is None:
            why = "this nvidia-ml-py has no nvmlMemory_v2"
        else:
            try:
                nvml.nvmlDeviceGetMemoryInfo(handle, version=version)
                return version
            except TypeError:  # an nvidia-ml-py whose nvmlDeviceGetMemoryInfo takes no version
                why = "this nvidia-ml-py cannot ask for it"
            except nvml.NVMLError as exc:  # a driver without nvmlDeviceGetMemoryInfo_v2
                why = f"the driver says {exc}"
        say_once("nvml:memory_v1", f"GPU: NVML memory info v2 not available ({why}); memory % includes driver-reserved memory", logging.INFO)
        return None

    def _memory(self, index: int, handle: Any) -> Any:
        nvml, version = self._nvml, self._memory_versions[index]
        if version is None:
            return self._call(nvml.nvmlDeviceGetMemoryInfo, handle)
        return self._call(nvml.nvmlDeviceGetMemoryInfo, handle, version=version)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            value = fn(*args, **kwargs)
        except self._nvml.NVMLError as exc:
            say_once(f"nvml:{fn.__name__}", f"GPU: NVML cannot read {fn.__name__}: {exc}; shown as n/a")
            return None
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        return value

    def read(self) -> tuple[GpuReading, ...]:
        nvml = self._nvml
        readings = []
        for index, handle in enumerate(self._handles):
            util = self._call(nvml.nvmlDeviceGetUtilizationRates, handle)
            mem = self._memory(index, handle)
            temp = self._call(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
            milliwatts = self._call(nvml.nvmlDeviceGetPowerUsage, handle)
            mem_pct = None
            if mem is not None and getattr(mem, "total", 0):
                # used / total: the share of memory taken, not NVML's "memory busy" rate.
                mem_pct = _finite(100.0 * mem.used / mem.total)
            power = _finite(milliwatts)
            readings.append(
                GpuReading(
                    index=index,
                    name=self._names[index],
                    util_percent=_finite(util.gpu) if util is not None else None,
                    memory_percent=mem_pct,
                    temperature_c=_finite(temp),
                    power_w=None if power is None else power / 1000.0,
                    memory_bandwidth_percent=_finite(util.memory) if util is not None else None,
                    uuid=self._uuids[index],
                )
            )
        return tuple(readings)

    def processes(self) -> tuple[GpuProcesses, ...]:
        """Each GPU's compute and graphics processes now: their GPU memory and, where the driver
        reports it, their SM utilisation since the last call. A GPU whose processes NVML cannot
        list is left out (said once); the others are read."""
        nvml = self._nvml
        out = []
        for index, handle in enumerate(self._handles):
            try:
                memory: dict[int, float] = {}
                for listing in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
                    for proc in self._listing(getattr(nvml, listing, None), handle):
                        pid = int(proc.pid)
                        # a process doing both compute and graphics is listed twice, with the same memory
                        memory[pid] = max(memory.get(pid, 0.0), _process_memory(getattr(proc, "usedGpuMemory", None)))
            except nvml.NVMLError as exc:
                say_once(f"nvml:processes:{index}", f"GPU {index}: NVML cannot list its processes ({exc}); "
                         "their GPU use is left out of the process records while it cannot")
                continue
            mem = self._memory(index, handle)
            util = self._call(nvml.nvmlDeviceGetUtilizationRates, handle)
            out.append(GpuProcesses(index, _finite(getattr(mem, "used", None)), _finite(getattr(util, "gpu", None)),
                                    memory, self._process_utilization(index, handle)))
        return tuple(out)

    def _listing(self, fn: Callable[..., Any] | None, handle: Any) -> Sequence[Any]:
        """One of NVML's process lists; [] where the GPU has no such list (a compute-only GPU's graphics)."""
        if fn is None:
            return []
        try:
            return fn(handle) or []
        except self._nvml.NVMLError as exc:
            if self._normal(exc):
                return []
            raise

    def _normal(self, exc: BaseException) -> bool:
        """NVML's "not supported" and "not found" (no samples since then): a GPU's normal answers."""
        value = getattr(exc, "value", None)
        nvml = self._nvml
        return value in (getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", 3), getattr(nvml, "NVML_ERROR_NOT_FOUND", 6), 0) or \
            type(exc).__name__ in ("NVMLError_NotSupported", "NVMLError_NotFound")

    def _process_utilization(self, index: int, handle: Any) -> dict[int, float] | None:
        """pid → mean SM util (%) of the driver's samples since the last call; None where the
        driver does not report it (left out, not 0)."""
        fn = getattr(self._nvml, "nvmlDeviceGetProcessUtilization", None)
        if fn is None:
            return None
        seen = self._util_seen.get(index, 0)
        try:
            samples = fn(handle, seen)
        except self._nvml.NVMLError as exc:
            if not self._normal(exc):
                say_once(f"nvml:process_util:{index}", f"GPU {index}: NVML cannot read its processes' utilisation ({exc}); "
                         "their GPU memory weighs them instead", logging.INFO)
            return None
        sums: dict[int, float] = {}
        counts: dict[int, int] = {}
        latest = seen
        for sample in samples or ():
            value = _finite(getattr(sample, "smUtil", None))
            if value is None or not 0.0 <= value <= 100.0:
                continue
            pid = int(sample.pid)
            sums[pid] = sums.get(pid, 0.0) + value
            counts[pid] = counts.get(pid, 0) + 1
            latest = max(latest, int(getattr(sample, "timeStamp", 0) or 0))
        self._util_seen[index] = latest
        return {pid: sums[pid] / counts[pid] for pid in sums}

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # shutting down a library that is going away: nothing to tell
            pass


def _no_window_popen() -> None:
    """On Windows, stop GPUtil's nvidia-smi from flashing a console window."""
    if sys.platform != "win32":
        return
    import functools
    import subprocess

    import GPUtil.GPUtil as gputil_module

    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)
    gputil_module.Popen = functools.partial(subprocess.Popen, creationflags=flags)


class GputilBackend:
    """GPUtil, which runs ``nvidia-smi`` once per call (about 30 ms on an H100).

    GPUtil waits on nvidia-smi without a timeout, so the call runs on a worker thread: a sample
    waits at most ``budget`` seconds for it, and an nvidia-smi that hangs past ``kill_after`` is
    killed. Sampling never stalls; a late or failed reading is ``None``.
    """

    name = "gputil"

    def __init__(self, budget: float = 0.5, kill_after: float = 5.0) -> None:
        if shutil.which("nvidia-smi") is None and sys.platform != "win32":
            raise RuntimeError("nvidia-smi is not on PATH")
        with warnings.catch_warnings():  # GPUtil imports distutils, deprecated on 3.11
            warnings.simplefilter("ignore", DeprecationWarning)
            import GPUtil
        _no_window_popen()
        self._get_gpus = GPUtil.getGPUs
        self._budget = budget
        self._kill_after = kill_after
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._result: tuple[GpuReading, ...] | None = None
        self._started_at: float | None = None
        self._count = 0
        first = self._fetch_blocking(timeout=max(budget, 3.0))
        if not first:
            raise RuntimeError("nvidia-smi reported no GPU")
        self._count = len(first)

    def _worker(self) -> None:
        try:
            gpus = self._get_gpus()
            result = tuple(
                GpuReading(
                    index=i,
                    name=str(getattr(g, "name", "")) or None,
                    util_percent=_scaled(getattr(g, "load", None)),
                    memory_percent=_scaled(getattr(g, "memoryUtil", None)),
                    temperature_c=_finite(getattr(g, "temperature", None)),
                    # GPUtil's nvidia-smi query has no power or memory-busy field: unknown, not 0
                    uuid=str(getattr(g, "uuid", "")) or None,
                )
                for i, g in enumerate(gpus)
            )
        except Exception as exc:  # GPUtil raises whatever its parser trips on (error text, bad lines)
            say_once("gputil:parse", f"GPU: nvidia-smi gave output GPUtil cannot read ({type(exc).__name__}); GPU shown as n/a")
            result = ()
        with self._lock:
            self._result = result
            self._started_at = None
            self._done.set()

    def _start(self) -> None:
        self._done.clear()
        self._started_at = time.monotonic()
        threading.Thread(target=self._worker, name="trayapp-gputil", daemon=True).start()

    def _fetch_blocking(self, timeout: float) -> tuple[GpuReading, ...] | None:
        with self._lock:
            if self._started_at is None:
                self._start()
            started = self._started_at
        if self._done.wait(timeout):
            with self._lock:
                return self._result
        if started is not None and time.monotonic() - started > self._kill_after:
            self._kill_stuck()
        return None

    def _kill_stuck(self) -> None:
        say_once("gputil:hung", f"GPU: nvidia-smi did not answer in {self._kill_after:g} s; stopping it")
        try:
            stuck = [c for c in psutil.Process().children(recursive=True) if "nvidia-smi" in c.name()]
            for proc in stuck:
                for victim in [*proc.children(recursive=True), proc]:  # a wrapper script's children too
                    victim.kill()
        except psutil.Error:
            pass

    def read(self) -> tuple[GpuReading, ...]:
        result = self._fetch_blocking(self._budget)
        if result:
            self._count = len(result)
            return result
        # late, failed or empty: the GPUs are still there, their fields unknown this tick
        return tuple(GpuReading(index=i) for i in range(self._count))

    def close(self) -> None:
        pass


def _scaled(fraction: Any) -> float | None:
    value = _finite(fraction)
    return None if value is None else round(value * 100.0, 6)  # 6 places: float noise off, precision kept


def _nvml_library() -> None:
    """On Linux, load the library pynvml would (OSError when there is no NVIDIA driver): a
    machine without one then never imports pynvml, ~1.5 MB of ctypes types kept for good."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libnvidia-ml.so.1")


def open_gpu_backend(choice: str) -> GpuBackend:
    """The backend named by the ``gpu_backend`` setting; ``auto`` takes the first that works."""
    if choice == "off":
        return NoGpu()
    order: Sequence[str] = ("nvml", "gputil") if choice == "auto" else (choice,)
    reasons = []
    for name in order:
        try:
            if name == "nvml":
                return NvmlBackend()
            if name == "gputil":
                return GputilBackend()
        except Exception as exc:  # each backend fails in its own way: no library, no driver, no GPU
            reasons.append(f"{name}: {_short(exc)}")
    # "auto" on a machine without an NVIDIA GPU is the usual case, not news at every start:
    # `trayapp doctor` says it; a backend asked for by name that does not work is a warning
    say_once(
        "gpu:none",
        "GPU: no NVIDIA GPU readable (" + "; ".join(reasons) + "); GPU columns stay empty",
        logging.DEBUG if choice == "auto" else logging.WARNING,
    )
    return NoGpu()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


# --- more of the machine: pure parsing of psutil's output, so fixtures from other machines test it

SLOW_PERIOD_S = 10.0  # temperatures, fans, battery and swap are read at most this often, then reused
ABSENT_RECHECK_S = 300.0  # a machine that showed no sensor, fan or battery is asked again this often


def is_loopback(name: str) -> bool:
    """``lo`` (Linux), ``lo0`` (macOS, BSD), ``Loopback Pseudo-Interface 1`` (Windows)."""
    lowered = name.lower()
    return lowered == "lo" or (lowered.startswith("lo") and lowered[2:].isdigit()) or "loopback" in lowered


class CounterRates:
    """Bytes/s from monotonic counters read at two instants, summed over keys (interfaces, disks).

    A key seen for the first time or gone since the last reading contributes nothing, and so does
    a counter that went backwards (wrapped, or reset by a driver reload): no bogus spike. No key
    with two good readings (the first tick): ``None``, never 0.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, ...]] = {}
        self._at: float | None = None

    def update(self, counters: dict[str, tuple[int, ...]], at: float) -> tuple[float | None, ...]:
        last, then = self._last, self._at
        self._last, self._at = counters, at
        width = len(next(iter(counters.values()), ()))
        if then is None or at <= then or width == 0:
            return (None,) * max(width, 2)
        elapsed = at - then
        totals: list[float | None] = [None] * width
        for key, now in counters.items():
            before = last.get(key)
            if before is None or len(before) != width:
                continue
            for i in range(width):
                delta = now[i] - before[i]
                if delta >= 0:
                    totals[i] = (totals[i] or 0.0) + delta
        return tuple(None if t is None else t / elapsed for t in totals)


def net_counters(pernic: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """psutil's ``net_io_counters(pernic=True)`` → {interface: (received, sent)}, loopback left out."""
    return {name: (c.bytes_recv, c.bytes_sent) for name, c in pernic.items() if not is_loopback(name)}


def disk_device(path: str, partitions: Sequence[Any], names: Sequence[str]) -> str | None:
    """The key of ``disk_io_counters(perdisk=True)`` for the partition holding ``path``, or ``None``.

    The mount with the longest mount point that holds ``path``; its device's name (``/dev/sda1`` →
    ``sda1``, ``/dev/mapper/root`` → ``dm-0`` through the link); else, on Linux, the device number
    of ``path`` through ``/sys/dev/block``; else (Windows' ``PhysicalDriveN``, macOS' ``diskN``) the
    only disk there is, or the whole disk a macOS slice belongs to.
    """
    names = list(names)
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        real = path
    best = None
    for part in partitions:
        mount = part.mountpoint
        norm_mount, norm_real = os.path.normcase(mount), os.path.normcase(real)
        inside = norm_real == norm_mount or norm_real.startswith(norm_mount.rstrip("/\\") + os.sep) or norm_mount in ("/", "\\")
        if inside and (best is None or len(mount) > len(best.mountpoint)):
            best = part
    if best is not None and best.device:
        device = best.device
        try:
            resolved = os.path.realpath(device) if os.path.isabs(device) else device
        except (OSError, ValueError):
            resolved = device
        for candidate in (os.path.basename(resolved), os.path.basename(device)):
            if candidate in names:
                return candidate
        whole = _mac_whole_disk(os.path.basename(device))
        if whole in names:
            return whole
    if sys.platform.startswith("linux"):
        try:
            st = os.stat(path)
            link = f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
            name = os.path.basename(os.path.realpath(link))
            if name in names:
                return name
        except (OSError, ValueError):
            pass
    physical = [n for n in names if not n.startswith(("loop", "ram", "zram", "sr"))]
    return physical[0] if len(physical) == 1 else None


def _mac_whole_disk(name: str) -> str:
    """``disk3s1s1`` → ``disk3``."""
    if name.startswith("disk"):
        digits = name[4:].split("s", 1)[0]
        if digits.isdigit():
            return f"disk{digits}"
    return name


class ProcFile:
    """A Linux ``/proc`` file kept open and re-read with ``pread`` at offset 0 (the kernel writes it
    afresh): about 5 µs, where opening it each time costs 20 µs and psutil's parser 45 µs in all.
    ``None`` where the file is not there (not Linux, a container without it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._size = 1 << 16

    def read(self) -> bytes | None:
        for _attempt in (1, 2):
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDONLY)  # not inherited by child processes
                data = os.pread(self._fd, self._size, 0)
            except OSError:
                self.close()
                return None
            if len(data) < self._size:
                return data
            self._size *= 4  # hundreds of disks or interfaces: read it whole next time
        return None

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    __del__ = close  # a Probe dropped without close() must not leak its descriptors


_LINUX = sys.platform.startswith("linux")


def netdev_counters(text: bytes) -> dict[str, tuple[int, int]]:
    """Linux's ``/proc/net/dev`` → {interface: (bytes received, bytes sent)}, loopback left out;
    the same numbers as psutil's ``net_io_counters(pernic=True)``."""
    out = {}
    for line in text.split(b"\n")[2:]:
        name, sep, rest = line.partition(b":")
        fields = rest.split()
        if sep and len(fields) >= 9:
            iface = _interface(name)
            if iface is not None:
                out[iface] = (int(fields[0]), int(fields[8]))
    return out


@functools.lru_cache(maxsize=256)  # bounded: containers come and go with new interface names
def _interface(field: bytes) -> str | None:
    """An interface's name from its ``/proc/net/dev`` field, decided once a name; None for loopback."""
    name = field.strip().decode(errors="replace")
    return None if is_loopback(name) else name


def diskstats_bytes(text: bytes | str, device: str) -> tuple[int, int] | None:
    """(bytes read, bytes written) of one device from Linux's ``/proc/diskstats``, or ``None``.

    Used instead of psutil's ``disk_io_counters(perdisk=True)`` on Linux, which also opens every
    disk's sysfs sector size on each call (10 files here, hundreds with many loop devices): for one
    device, one line. The kernel counts these sectors in 512-byte units whatever the disk's own.
    """
    if isinstance(text, str):
        text = text.encode()
    name = device.encode()
    for line in text.split(b"\n"):
        fields = line.split(None, 3)
        if len(fields) < 4 or fields[2] != name:
            continue
        fields = line.split()
        read, written = (fields[5], fields[9]) if len(fields) >= 14 else (fields[4], fields[6])  # 7: an old kernel's partition
        try:
            return int(read) * 512, int(written) * 512
        except ValueError:
            return None
    return None


def meminfo_bytes(text: bytes, name: bytes) -> int | None:
    """One field of Linux's ``/proc/meminfo`` (``name`` as ``b"MemTotal:"``) in bytes, as psutil
    reads it (the kB figure × 1024); ``None`` where the line is not there."""
    if text.startswith(name):
        start = 0
    else:
        start = text.find(b"\n" + name)
        if start < 0:
            return None
        start += 1
    end = text.find(b"\n", start)
    fields = text[start : end if end >= 0 else len(text)].split()
    try:
        return int(fields[1]) * 1024
    except (IndexError, ValueError):
        return None


def _usage_percent(used: int, total: int) -> float:
    """psutil's ``usage_percent(used, total, round_=1)``, the same float operations."""
    return round((float(used) / total) * 100, 1) if total else 0.0


def meminfo_memory_percent(text: bytes) -> float | None:
    """``virtual_memory().percent`` from the text of ``/proc/meminfo``, computed as psutil does:
    (total − available) / total, with MemFree as available where MemAvailable exceeds the total
    (a container). ``None`` where psutil would estimate it instead (no MemAvailable, or 0)."""
    total = meminfo_bytes(text, b"MemTotal:")
    available = meminfo_bytes(text, b"MemAvailable:")
    if total is None or not available or available < 0:
        return None
    if available > total:
        available = meminfo_bytes(text, b"MemFree:")
        if available is None:
            return None
    return _usage_percent(total - available, total)


class SwapUse(NamedTuple):
    """The fields of psutil's ``swap_memory()`` that ``parse_swap`` reads."""

    total: int
    percent: float


def meminfo_swap(text: bytes) -> SwapUse | None:
    """SwapTotal and psutil's swap ``percent`` from ``/proc/meminfo``; ``None`` without those lines."""
    total = meminfo_bytes(text, b"SwapTotal:")
    free = meminfo_bytes(text, b"SwapFree:")
    if total is None or free is None:
        return None
    return SwapUse(total, _usage_percent(total - free, total))


_CPU_CHIPS = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "soc_thermal", "thinkpad")


def _plausible(value: Any) -> float | None:
    """A sensor's reading, or ``None`` for an unplugged probe's 0, -128, 127 or 255, and NaN."""
    number = _finite(value)
    return number if number is not None and 0.0 < number < 127.0 else None


def parse_temperatures(temps: dict[str, Sequence[Any]] | None) -> tuple[float | None, float | None]:
    """(CPU package °C, hottest sensor °C) from ``sensors_temperatures()``.

    CPU: coretemp's "Package id N" (the hottest package on a multi-socket server), else its
    hottest "Core N"; k10temp/zenpower "Tdie" (Tctl can carry an offset), else "Tctl"; a Raspberry
    Pi's cpu_thermal; the ThinkPad EC's "CPU". Hottest: the highest plausible reading of any sensor.
    """
    if not temps:
        return None, None
    readings = [(chip, str(entry.label or ""), _plausible(entry.current)) for chip, entries in temps.items() for entry in entries]
    with_tdie = {chip for chip, label, _ in readings if label == "Tdie"}
    # Tctl is a fan-control value (Threadripper: Tdie + 27 °C), not a temperature, where Tdie is there
    hottest = max((v for c, label, v in readings if v is not None and not (label == "Tctl" and c in with_tdie)), default=None)

    def best(chip: str, *prefixes: str) -> float | None:
        for prefix in prefixes:
            found = [v for c, label, v in readings if c == chip and v is not None and label.startswith(prefix)]
            if found:
                return max(found)
        return None

    cpu = None
    for chip in _CPU_CHIPS:
        if chip not in temps:
            continue
        if chip == "coretemp":
            cpu = best(chip, "Package id", "Physical id", "Core ")
        elif chip in ("k10temp", "zenpower"):
            cpu = best(chip, "Tdie", "Tctl", "")
        elif chip == "thinkpad":
            cpu = best(chip, "CPU")
        else:
            cpu = best(chip, "")
        if cpu is not None:
            break
    return cpu, hottest


def parse_fans(fans: dict[str, Sequence[Any]] | None) -> float | None:
    """The fastest fan's RPM from ``sensors_fans()`` (0 is a real, stopped fan); ``None`` without fans."""
    speeds = [_finite(entry.current) for entries in (fans or {}).values() for entry in entries]
    speeds = [s for s in speeds if s is not None and s >= 0]
    return max(speeds) if speeds else None


def parse_battery(battery: Any) -> tuple[float | None, float | None]:
    """(charge %, 1.0 on AC / 0.0 on battery) from ``sensors_battery()``; ``None`` where it cannot say."""
    if battery is None:
        return None, None
    plugged = getattr(battery, "power_plugged", None)
    return _finite(getattr(battery, "percent", None)), None if plugged is None else float(bool(plugged))


def parse_swap(swap: Any) -> float | None:
    """Swap used % from ``swap_memory()``; ``None`` on a machine with no swap (0 of 0 is not 0 %)."""
    if swap is None or not getattr(swap, "total", 0):
        return None
    return _finite(swap.percent)


def cpu_busy_percents(before: Sequence[Any], after: Sequence[Any]) -> tuple[float | None, tuple[float, ...]]:
    """(all cores %, each core %) between two ``cpu_times(percpu=True)`` readings, as psutil counts it.

    psutil's own formula: busy = total − idle − iowait, where total leaves out guest time (already
    in user). One read of the per-core times gives both numbers, so per-core costs no second read.
    """
    return busy_percents([_busy_total(t) for t in before], [_busy_total(t) for t in after])


def busy_percents(before: Sequence[tuple[float, float]], after: Sequence[tuple[float, float]]) -> tuple[float | None, tuple[float, ...]]:
    """``cpu_busy_percents`` on (busy, total) pairs per core, in any one unit of time."""
    cores: list[float] = []
    all_busy = all_total = 0.0
    for (busy0, total0), (busy, total) in zip(before, after):
        d_total, d_busy = total - total0, busy - busy0
        if d_total <= 0:  # no time passed for this core (read twice within a clock tick)
            cores.append(0.0)
            continue
        d_busy = min(max(d_busy, 0.0), d_total)
        cores.append(round(100.0 * d_busy / d_total, 1))
        all_busy += d_busy
        all_total += d_total
    if all_total <= 0:
        return None, ()
    return round(100.0 * all_busy / all_total, 1), tuple(cores)


def proc_stat_cores(text: bytes) -> list[tuple[int, int]]:
    """Linux's ``/proc/stat`` → (busy, total) jiffies per online core, as ``_busy_total`` counts them:
    user nice system idle iowait irq softirq steal [guest guest_nice], guest already in user."""
    cores = []
    for line in text.split(b"\n"):
        if not line.startswith(b"cpu"):
            if cores:
                break  # the cpu lines come first, together
            continue
        if line[3:4] == b" ":
            continue  # the all-cores line
        fields = [int(x) for x in line.split()[1:9]]
        total = sum(fields)
        cores.append((total - fields[3] - (fields[4] if len(fields) > 4 else 0), total))
    return cores


def _busy_total(times: Any) -> tuple[float, float]:
    total = sum(times)
    if sys.platform.startswith("linux"):
        total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    idle = getattr(times, "idle", 0.0) + getattr(times, "iowait", 0.0)
    return total - idle, total


class MachineReader:
    """Everything but disk space and GPUs, read in the sampler's tick.

    On Linux the ``/proc`` files (stat, meminfo, net/dev, diskstats) are kept open and re-read
    with one ``pread`` each and parsed for the few fields used, by psutil's own formulas; psutil
    itself is the fallback elsewhere (macOS, Windows, BSD) and where a file is missing.

    Rates (network, disk I/O) and per-core CPU need two readings: the first tick has ``None``.
    Sensors, battery and swap change slowly and cost the most on some laptops (sysfs walks), so
    they are read at most every ``SLOW_PERIOD_S`` seconds and the last value is reused between.
    """

    def __init__(self, disk_path: str) -> None:
        self.disk_path = disk_path
        self._net = CounterRates()
        self._disk = CounterRates()
        self._cores = max(psutil.cpu_count() or 1, 1)
        self._cpu_times: list[tuple[float, float]] | None = None
        self._slow_at: float | None = None
        self._slow: dict[str, float | None] = {}
        self._device: str | None = None
        self._device_known = False
        self._netdev, self._diskstats = ProcFile("/proc/net/dev"), ProcFile("/proc/diskstats")
        self._stat = ProcFile("/proc/stat")
        self._meminfo = ProcFile("/proc/meminfo")
        self._absent: dict[str, float] = {}  # a sensor kind this machine showed none of: when to look again
        self._cpu_times = self._core_times()

    def _guard(self, key: str, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # a sensor driver or /proc file that fails must not stop sampling
            say_once(f"machine:{key}", f"{what}: cannot read ({_short(exc)}); shown as n/a")
            return None

    def cpu(self) -> tuple[float | None, tuple[float, ...]]:
        """(all cores %, each core %) since the last call."""
        now = self._core_times()
        before, self._cpu_times = self._cpu_times, now
        if not now or not before or len(now) != len(before):  # a core taken offline or back
            return None, ()
        return busy_percents(before, now)

    def _core_times(self) -> list[tuple[float, float]] | None:
        text = self._stat.read() if _LINUX else None
        if text is not None:
            cores = self._guard("cpu", "CPU", proc_stat_cores, text)
            if cores:
                return cores
        times = self._guard("cpu", "CPU", lambda: psutil.cpu_times(percpu=True))
        return [_busy_total(t) for t in times] if times else None

    def memory(self) -> float | None:
        """RAM in use, % (``virtual_memory().percent``): on Linux from ``/proc/meminfo`` kept
        open, by psutil's formula; psutil where that file is not there or lacks MemAvailable."""
        text = self._meminfo.read() if _LINUX else None
        percent = meminfo_memory_percent(text) if text is not None else None
        if percent is None:
            percent = psutil.virtual_memory().percent
        return _finite(percent)

    def read(self, at: float | None = None) -> dict[str, float | None]:
        at = time.monotonic() if at is None else at
        row: dict[str, float | None] = {}
        recv, sent = self._net.update(self._net_counters(), at)[:2]
        row["net_recv_bytes_per_s"], row["net_sent_bytes_per_s"] = recv, sent
        row["disk_read_bytes_per_s"], row["disk_write_bytes_per_s"] = self._disk_rates(at)
        load = self._guard("load", "load average", psutil.getloadavg)
        row["load_percent"] = None if not load else _finite(100.0 * load[0] / self._cores)
        if self._slow_at is None or at - self._slow_at >= SLOW_PERIOD_S or at < self._slow_at:
            self._slow_at = at
            self._slow = self._read_slow(at)
        row.update(self._slow)
        return row

    def _net_counters(self) -> dict[str, tuple[int, int]]:
        text = self._netdev.read() if _LINUX else None
        if text is not None:
            return self._guard("net", "network", netdev_counters, text) or {}
        # nowrap=False: CounterRates drops a counter that went backwards; psutil's own fix-up costs 25 %
        pernic = self._guard("net", "network", lambda: psutil.net_io_counters(pernic=True, nowrap=False))
        return net_counters(pernic) if pernic else {}

    def _disk_rates(self, at: float) -> tuple[float | None, float | None]:
        if not self._device_known:
            perdisk = self._guard("diskio", "disk I/O", lambda: psutil.disk_io_counters(perdisk=True, nowrap=False))
            if not perdisk:
                return None, None
            partitions = self._guard("partitions", "disk partitions", lambda: psutil.disk_partitions(all=False)) or []
            self._device = disk_device(self.disk_path, partitions, list(perdisk))
            self._device_known = True
            if self._device is None:
                say_once("machine:diskdev", f"disk I/O: cannot tell which disk holds {self.disk_path!r}; disk read/write shown as n/a")
        device = self._device
        if device is None:
            return None, None
        text = self._diskstats.read() if _LINUX else None
        if text is not None:
            counters = self._guard("diskio", "disk I/O", diskstats_bytes, text, device)
        else:
            perdisk = self._guard("diskio", "disk I/O", lambda: psutil.disk_io_counters(perdisk=True, nowrap=False)) or {}
            c = perdisk.get(device)
            counters = None if c is None else (c.read_bytes, c.write_bytes)
        if counters is None:  # the device went away (a USB disk pulled): n/a, and look again next tick
            self._device_known = False
            self._disk = CounterRates()
            return None, None
        return self._disk.update({device: counters}, at)[:2]

    def close(self) -> None:
        for proc_file in (self._netdev, self._diskstats, self._stat, self._meminfo):
            proc_file.close()

    def _sensor(self, kind: str, what: str, at: float) -> Any:
        """psutil's ``sensors_<kind>()``; where it found none, not asked again for ``ABSENT_RECHECK_S``."""
        fn = getattr(psutil, f"sensors_{kind}", None)  # temperatures and fans: Linux and FreeBSD only
        if fn is None or at < self._absent.get(kind, -math.inf):
            return None
        found = self._guard(kind, what, fn)
        if not found:
            self._absent[kind] = at + ABSENT_RECHECK_S
        return found

    def _swap(self) -> float | None:
        """Swap used % (``swap_memory().percent``), from ``/proc/meminfo`` on Linux: psutil's
        call also reads ``/proc/vmstat`` for swap-in/out counts this column does not use."""
        text = self._meminfo.read() if _LINUX else None
        swap = meminfo_swap(text) if text is not None else None
        return parse_swap(swap if swap is not None else psutil.swap_memory())

    def _read_slow(self, at: float) -> dict[str, float | None]:
        row: dict[str, float | None] = {}
        cpu, hottest = parse_temperatures(self._sensor("temperatures", "temperatures", at))
        row["cpu_temperature_c"], row["hottest_temperature_c"] = cpu, hottest
        row["fan_rpm"] = parse_fans(self._sensor("fans", "fans", at))
        row["battery_percent"], row["battery_plugged"] = parse_battery(self._sensor("battery", "battery", at))
        row["swap_percent"] = self._guard("swap", "swap", self._swap)
        return row


class Probe:
    """Reads one ``Sample``. Create it on the thread that samples: it primes psutil there."""

    def __init__(self, gpu_backend: str = "auto", disk_path: str | None = None) -> None:
        self.disk_path = disk_path or default_disk_path()
        self.machine = MachineReader(self.disk_path)  # primes the per-core CPU times
        self.gpu: GpuBackend = open_gpu_backend(gpu_backend)

    def read(self, now: datetime | None = None) -> Sample:
        timestamp = now or datetime.now(timezone.utc)
        cpu, cores = self.machine.cpu()  # one read of the per-core times gives the total and each core
        try:
            memory = self.machine.memory()
        except (OSError, psutil.Error) as exc:
            say_once("mem", f"memory: cannot read ({exc}); shown as n/a")
            memory = None
        try:
            disk = _finite(psutil.disk_usage(self.disk_path).percent)
        except (OSError, psutil.Error) as exc:
            say_once("disk", f"disk: cannot read {self.disk_path!r} ({exc}); shown as n/a")
            disk = None
        try:
            gpus = self.gpu.read()
        except Exception as exc:  # a driver that goes away mid-run must not stop sampling
            say_once("gpu:read", f"GPU: reading failed ({_short(exc)}); shown as n/a")
            gpus = ()
        try:
            more = self.machine.read()
        except Exception as exc:  # parsing a driver's odd output: this tick's extras are n/a, nothing stops
            say_once("machine:read", f"machine: reading failed ({_short(exc)}); network, disk I/O and sensors shown as n/a")
            more = {}
        return Sample(timestamp, cpu, memory, disk, gpus, **more, cpu_core_max_percent=max(cores) if cores else None, cores=cores)

    def close(self) -> None:
        self.machine.close()
        self.gpu.close()
