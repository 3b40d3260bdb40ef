"""Sampling: psutil for real; GPUtil through a fake nvidia-smi on PATH that prints output captured
on an H100; NVML through a stand-in module fed the same captured readings (this machine has no GPU)."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from trayapp.model import GpuReading
from trayapp.probes import GputilBackend, NoGpu, NvmlBackend, Probe, open_gpu_backend

FAKE_SMI = """#!/bin/sh
case "$FAKE_SMI_MODE" in
  hang) sleep 60 ;;
  fail) cat "$FAKE_SMI_OUT"; exit 9 ;;
  empty) exit 0 ;;
  *) cat "$FAKE_SMI_OUT" ;;
esac
"""


@pytest.fixture
def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    script.write_text(FAKE_SMI)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def use(mode: str, output: str | Path | None = None) -> None:
        monkeypatch.setenv("FAKE_SMI_MODE", mode)
        if output is not None:
            out = tmp_path / "smi-out.txt"
            out.write_text(Path(output).read_text() if isinstance(output, Path) else output)
            monkeypatch.setenv("FAKE_SMI_OUT", str(out))

    return use


def test_psutil_sample_is_sane() -> None:
    probe = Probe(gpu_backend="off")
    time.sleep(0.05)
    s = probe.read()
    assert s.timestamp.tzinfo is not None and s.timestamp.utcoffset().total_seconds() == 0
    for value in (s.cpu_percent, s.memory_percent, s.disk_percent):
        assert value is not None and 0.0 <= value <= 100.0
    assert s.gpus == ()


def test_missing_disk_is_none_not_zero(tmp_path: Path) -> None:
    probe = Probe(gpu_backend="off", disk_path=str(tmp_path / "no" / "such" / "disk"))
    assert probe.read().disk_percent is None


def test_gputil_reads_the_h100_line(fake_smi, gpu_fixtures: Path) -> None:
    fake_smi("ok", gpu_fixtures / "nvidia-smi-h100-idle.csv")
    backend = GputilBackend()
    (gpu,) = backend.read()
    assert gpu == GpuReading(0, "NVIDIA H100 80GB HBM3", 0.0, 0.0, 30.0)


def test_gputil_under_load_scales_to_percent(fake_smi, gpu_fixtures: Path) -> None:
    probe = json.loads((gpu_fixtures / "h100-probe.json").read_text())
    loaded = probe["under_load"][0]
    line = (gpu_fixtures / "nvidia-smi-h100-idle.csv").read_text().split(", ")
    line[2] = str(round(loaded["gputil_load"] * 100))  # utilization.gpu
    line[4] = str(round(loaded["gputil_memutil"] * 81559))  # memory.used (MiB)
    line[11] = f"{loaded['gputil_temp']:.0f}\n"
    fake_smi("ok", ", ".join(line))
    (gpu,) = GputilBackend().read()
    assert gpu.util_percent == pytest.approx(99.0)
    assert gpu.memory_percent == pytest.approx(100 * loaded["gputil_memutil"], abs=0.01)
    assert gpu.temperature_c == 56.0


def test_gputil_na_fields_are_none(fake_smi, gpu_fixtures: Path) -> None:
    line = (gpu_fixtures / "nvidia-smi-h100-idle.csv").read_text().split(", ")
    line[2] = "[N/A]"
    line[11] = "[N/A]\n"
    fake_smi("ok", ", ".join(line))
    (gpu,) = GputilBackend().read()
    assert gpu.util_percent is None and gpu.temperature_c is None
    assert gpu.memory_percent == 0.0


@pytest.mark.parametrize("mode", ["fail", "empty"])
def test_gputil_no_driver_or_no_output_means_no_gpu(fake_smi, gpu_fixtures: Path, mode: str) -> None:
    fake_smi(mode, gpu_fixtures / "nvidia-smi-no-driver.txt")
    with pytest.raises(RuntimeError):
        GputilBackend()
    assert isinstance(open_gpu_backend("gputil"), NoGpu)


def test_gputil_driver_going_away_mid_run_reads_none(fake_smi, gpu_fixtures: Path) -> None:
    fake_smi("ok", gpu_fixtures / "nvidia-smi-h100-idle.csv")
    backend = GputilBackend()
    fake_smi("fail", gpu_fixtures / "nvidia-smi-no-driver.txt")
    assert backend.read() == (GpuReading(0),)


def test_a_hung_nvidia_smi_never_stalls_sampling(fake_smi, gpu_fixtures: Path) -> None:
    fake_smi("ok", gpu_fixtures / "nvidia-smi-h100-idle.csv")
    backend = GputilBackend(budget=0.2, kill_after=1.0)
    fake_smi("hang")
    started = time.monotonic()
    readings = [backend.read() for _ in range(3)]
    assert time.monotonic() - started < 3 * 0.2 + 1.0  # each read waited at most its budget
    assert all(r == (GpuReading(0),) for r in readings)
    time.sleep(1.1)
    backend.read()  # past kill_after: the stuck nvidia-smi is killed
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any("sleep" in (c.name() or "") for c in psutil.Process().children(recursive=True)):
        time.sleep(0.05)
    assert not [c for c in psutil.Process().children(recursive=True) if c.name() in ("sleep", "nvidia-smi")]
    fake_smi("ok", gpu_fixtures / "nvidia-smi-h100-idle.csv")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and backend.read() == (GpuReading(0),):
        pass
    assert backend.read()[0].temperature_c == 30.0  # and readings come back


class FakeNvml:
    """Stands in for pynvml with the readings captured by NVML on an H100 under load."""

    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def __init__(self, reading: dict, fail: set[str] = frozenset(), count: int = 1) -> None:
        self.reading, self.fail, self.count, self.shut = reading, fail, count, False

    def _maybe_fail(self, name: str) -> None:
        if name in self.fail:
            raise self.NVMLError(f"{name}: Not Supported")

    def nvmlInit(self) -> None:
        self._maybe_fail("nvmlInit")

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        self._maybe_fail("nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=self.reading["gpu"], memory=self.reading["mem_bw"])

    def nvmlDeviceGetMemoryInfo(self, h: int) -> SimpleNamespace:
        total = 85520809984
        return SimpleNamespace(total=total, used=total * self.reading["mem_used_pct"] / 100, free=0)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        self._maybe_fail("nvmlDeviceGetTemperature")
        return self.reading["temp"]


def test_nvml_reads_utilisation_memory_used_share_and_temperature(gpu_fixtures: Path) -> None:
    reading = json.loads((gpu_fixtures / "h100-probe.json").read_text())["under_load"][0]["nvml"]
    (gpu,) = NvmlBackend(FakeNvml(reading)).read()
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.util_percent == 99.0
    # used/total, not NVML's memory-controller busy rate (mem_bw = 33)
    assert gpu.memory_percent == pytest.approx(reading["mem_used_pct"])
    assert gpu.temperature_c == 56.0


def test_nvml_unsupported_field_is_none(gpu_fixtures: Path) -> None:
    reading = json.loads((gpu_fixtures / "h100-probe.json").read_text())["nvml_idle"]
    (gpu,) = NvmlBackend(FakeNvml(reading, fail={"nvmlDeviceGetTemperature"})).read()
    assert gpu.temperature_c is None and gpu.util_percent == 0.0


def test_nvml_without_gpu_refuses() -> None:
    nvml = FakeNvml({}, count=0)
    with pytest.raises(RuntimeError):
        NvmlBackend(nvml)
    assert nvml.shut


def test_auto_on_this_machine_falls_back_to_no_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi; and no NVML library here
    assert open_gpu_backend("auto").name in ("none", "nvml")
