"""Reading the machine: psutil for CPU, memory and disk; NVML or GPUtil for NVIDIA GPUs.

Imports only ``model``; a missing GPU, driver or field is a normal state that reads as ``None``.
"""

from __future__ import annotations

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
from typing import Any, Protocol

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
    say_once(
        "gpu:none",
        "GPU: no NVIDIA GPU readable (" + "; ".join(reasons) + "); GPU columns stay empty",
        logging.INFO if choice == "auto" else logging.WARNING,
    )
    return NoGpu()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


class Probe:
    """Reads one ``Sample``. Create it on the thread that samples: it primes psutil there."""

    def __init__(self, gpu_backend: str = "auto", disk_path: str | None = None) -> None:
        self.disk_path = disk_path or default_disk_path()
        psutil.cpu_percent(interval=None)  # the first call returns 0.0; prime it
        self.gpu: GpuBackend = open_gpu_backend(gpu_backend)

    def read(self, now: datetime | None = None) -> Sample:
        timestamp = now or datetime.now(timezone.utc)
        cpu = _finite(psutil.cpu_percent(interval=None))
        try:
            memory = _finite(psutil.virtual_memory().percent)
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
        return Sample(timestamp, cpu, memory, disk, gpus)

    def close(self) -> None:
        self.gpu.close()
