"""Sampling: psutil for real; GPUtil through a fake nvidia-smi on PATH that prints output captured
on an H100; NVML through a stand-in module fed the same captured readings (this machine has no GPU)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from trayapp.model import GpuReading
from tests.conftest import FIXTURES, trayapp_cmd, wait_for
from trayapp.probes import GputilBackend, NoGpu, NvmlBackend, Probe, open_gpu_backend
from trayapp.synthetic import write_history

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
    assert gpu == GpuReading(0, "NVIDIA H100 80GB HBM3", 0.0, 0.0, 30.0, uuid="GPU-cb9d75ea-5bb7-ecf9-e4ba-7d7c1199eb13")
    # nvidia-smi's line as GPUtil asks for it has no power draw or memory-busy share: unknown, not 0
    assert gpu.power_w is None and gpu.memory_bandwidth_percent is None


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


@pytest.mark.slow  # over a second or two: `make test-all`
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
    # the killed nvidia-smi is reaped by GPUtil's reading thread as its wait returns: on a busy machine, a moment later
    while time.monotonic() < deadline and any(c.name() in ("sleep", "nvidia-smi") for c in psutil.Process().children(recursive=True)):
        time.sleep(0.05)
    assert not [c for c in psutil.Process().children(recursive=True) if c.name() in ("sleep", "nvidia-smi")]
    fake_smi("ok", gpu_fixtures / "nvidia-smi-h100-idle.csv")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and backend.read() == (GpuReading(0),):
        pass
    assert backend.read()[0].temperature_c == 30.0  # and readings come back


MIB = 1024 * 1024
H100_TOTAL = 85520809984  # bytes; nvidia-smi says 81559 MiB
H200_TOTAL_MIB = 143771


class FakeNvml:
    """Stands in for pynvml (nvidia-ml-py 13) with readings captured on a real GPU.

    Memory follows NVML: v1 ``used`` is everything not free, driver-reserved memory included;
    v2 reports ``reserved`` apart and its ``used`` is what nvidia-smi prints as memory.used.
    ``v2_library=False`` is an nvidia-ml-py without ``nvmlMemory_v2`` (its function takes no
    version); ``v2_driver=False`` a driver without ``nvmlDeviceGetMemoryInfo_v2``.
    """

    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def __init__(self, *, util: float = 0, mem_bw: float = 0, temp: float = 30, total: int = H100_TOTAL,
                 used: float = 0, reserved: float = 0, power_mw: int | None = 70_123, fail: set[str] = frozenset(),
                 count: int = 1, v2_library: bool = True, v2_driver: bool = True, no_v2: frozenset[int] = frozenset(),
                 name: bytes = b"NVIDIA H100 80GB HBM3") -> None:
        self.no_v2 = no_v2  # handles whose GPU answers v2 with an error (a mixed machine)
        self.util, self.mem_bw, self.temp, self.total, self.used, self.reserved = util, mem_bw, temp, total, used, reserved
        self.power_mw, self.fail, self.count, self.v2_driver, self.name, self.shut = power_mw, fail, count, v2_driver, name, False
        if v2_library:
            self.nvmlMemory_v2 = 0x02000028
            self.nvmlDeviceGetMemoryInfo = self._memory_info_13
        else:
            self.nvmlDeviceGetMemoryInfo = self._memory_info_old

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
        return self.name

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return f"GPU-cb9d75ea-5bb7-ecf9-e4ba-7d7c1199eb1{h}"

    def nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        self._maybe_fail("nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=self.util, memory=self.mem_bw)

    def _v1(self) -> SimpleNamespace:
        used = self.used + self.reserved
        return SimpleNamespace(total=self.total, used=used, free=self.total - used)

    def _memory_info_old(self, h: int) -> SimpleNamespace:  # nvidia-ml-py before the version argument
        return self._v1()

    def _memory_info_13(self, h: int, version: int | None = None) -> SimpleNamespace:
        if not version:
            return self._v1()
        assert version == self.nvmlMemory_v2
        if not self.v2_driver:
            raise self.NVMLError("Function Not Found")
        if h in self.no_v2:
            raise self.NVMLError("Not Supported")
        return SimpleNamespace(version=version, total=self.total, reserved=self.reserved, used=self.used,
                               free=self.total - self.reserved - self.used)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        self._maybe_fail("nvmlDeviceGetTemperature")
        return self.temp

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        self._maybe_fail("nvmlDeviceGetPowerUsage")
        return self.power_mw


def h100_nvml(reading: dict, **kw) -> FakeNvml:
    """The H100 capture: NVML v1 read ``mem_used_pct`` with the driver's reservation included;
    at idle nvidia-smi said 0 MiB used, so the idle reading is the reservation."""
    probe = json.loads((FIXTURES / "gpu" / "h100-probe.json").read_text())
    reserved = H100_TOTAL * probe["nvml_idle"]["mem_used_pct"] / 100
    used = H100_TOTAL * reading["mem_used_pct"] / 100 - reserved
    return FakeNvml(util=reading["gpu"], mem_bw=reading["mem_bw"], temp=reading["temp"], used=used, reserved=reserved, **kw)


def h200_smi_log() -> list[tuple[float, float, float, float]]:
    """(util %, memory.used MiB, memory.total MiB, temperature °C) from nvidia-smi on the H200."""
    rows = []
    for line in (FIXTURES / "gpu" / "h200" / "nvidia-smi-log-500ms.csv").read_text().splitlines():
        _, util, used, total, temp = (field.strip() for field in line.split(","))
        rows.append((float(util), float(used), float(total), float(temp)))
    return rows


# On the H200 NVML v1 read 0.42780706818482167 % at idle while nvidia-smi said 0 MiB used
# (gpu-check.json): the driver's reservation, in bytes.
H200_RESERVED = H200_TOTAL_MIB * MIB * 0.42780706818482167 / 100


def h200_nvml(util: float, used_mib: float, temp: float, **kw) -> FakeNvml:
    return FakeNvml(util=util, temp=temp, total=H200_TOTAL_MIB * MIB, used=used_mib * MIB, reserved=H200_RESERVED,
                    name=b"NVIDIA H200", **kw)


def test_nvml_reads_utilisation_memory_used_share_and_temperature(gpu_fixtures: Path) -> None:
    probe = json.loads((gpu_fixtures / "h100-probe.json").read_text())
    loaded = probe["under_load"][0]
    (gpu,) = NvmlBackend(h100_nvml(loaded["nvml"])).read()
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.util_percent == 99.0
    # used/total as nvidia-smi (and so GPUtil) counts it on the same GPU at the same moment,
    # not NVML v1's figure with the reservation in it, nor the memory-controller busy rate (33)
    assert gpu.memory_percent == pytest.approx(100 * loaded["gputil_memutil"], abs=0.001)
    assert gpu.memory_percent < loaded["nvml"]["mem_used_pct"] - 0.5
    assert gpu.temperature_c == 56.0


def test_nvml_memory_agrees_with_nvidia_smi_on_every_h200_row() -> None:
    rows = h200_smi_log()
    assert len(rows) > 90 and any(used > 1000 for _, used, _, _ in rows)  # idle and under load
    for util, used, total, temp in rows:
        assert total == H200_TOTAL_MIB
        (gpu,) = NvmlBackend(h200_nvml(util, used, temp)).read()
        assert gpu.memory_percent == pytest.approx(100 * used / total, abs=1e-9), (util, used)
        assert (gpu.util_percent, gpu.temperature_c) == (util, temp)


@pytest.mark.parametrize("old", ["library", "driver"])
def test_nvml_without_v2_falls_back_to_v1_as_captured_on_the_h200(gpu_fixtures: Path, old: str) -> None:
    """Where only v1 exists, the reading is what the H200 run stored with v1, row by row."""
    pairs = json.loads((gpu_fixtures / "h200" / "device-check.json").read_text())["nvml_vs_smi"]
    for row in pairs:
        used_mib = 0 if row["smi_mem"] == 0 else 1011  # the log's two states: idle, and 1011 MiB (0.70 %) under load
        assert round(100 * used_mib / H200_TOTAL_MIB, 2) == row["smi_mem"]
        nvml = h200_nvml(row["smi_util"], used_mib, row["smi_temp"], v2_library=old != "library", v2_driver=old != "driver")
        (gpu,) = NvmlBackend(nvml).read()
        assert gpu.memory_percent == pytest.approx(row["app_mem"], abs=0.001)


def test_nvml_picks_the_memory_info_version_per_gpu() -> None:
    util, used, total, temp = max(h200_smi_log(), key=lambda r: r[1])
    gpu0, gpu1 = NvmlBackend(h200_nvml(util, used, temp, count=2, no_v2=frozenset({1}))).read()
    assert gpu0.memory_percent == pytest.approx(100 * used / total, abs=1e-9)  # v2, as nvidia-smi
    assert gpu1.memory_percent == pytest.approx(100 * (used * MIB + H200_RESERVED) / (total * MIB), abs=1e-9)  # v1, not n/a


def test_nvml_and_gputil_agree_on_the_same_h200_reading(fake_smi, gpu_fixtures: Path) -> None:
    util, used, total, temp = max(h200_smi_log(), key=lambda r: r[1])  # under load: 1011 MiB
    fake_smi("ok", h200_smi_line(gpu_fixtures, util, used, total, temp))
    (via_smi,) = GputilBackend().read()
    (via_nvml,) = NvmlBackend(h200_nvml(util, used, temp)).read()
    assert via_nvml.memory_percent == pytest.approx(via_smi.memory_percent, abs=1e-6)
    assert (via_nvml.util_percent, via_nvml.temperature_c) == (via_smi.util_percent, via_smi.temperature_c)


def test_nvml_reads_power_in_watts_and_memory_bandwidth(gpu_fixtures: Path) -> None:
    loaded = json.loads((gpu_fixtures / "h100-probe.json").read_text())["under_load"][0]["nvml"]
    (gpu,) = NvmlBackend(h100_nvml(loaded, power_mw=412_345)).read()
    assert gpu.power_w == pytest.approx(412.345)  # NVML gives milliwatts
    assert gpu.memory_bandwidth_percent == 33.0  # utilization.memory: the memory controller's busy share
    assert gpu.uuid == "GPU-cb9d75ea-5bb7-ecf9-e4ba-7d7c1199eb10"
    assert gpu.memory_percent != gpu.memory_bandwidth_percent


def test_nvml_unsupported_field_is_none(gpu_fixtures: Path) -> None:
    reading = json.loads((gpu_fixtures / "h100-probe.json").read_text())["nvml_idle"]
    (gpu,) = NvmlBackend(h100_nvml(reading, fail={"nvmlDeviceGetTemperature", "nvmlDeviceGetPowerUsage"})).read()
    assert gpu.temperature_c is None and gpu.power_w is None
    assert gpu.util_percent == 0.0 and gpu.memory_bandwidth_percent == 0.0
    (gpu,) = NvmlBackend(h100_nvml(reading, fail={"nvmlDeviceGetUtilizationRates"})).read()
    assert gpu.util_percent is None and gpu.memory_bandwidth_percent is None  # e.g. a MIG slice
    assert gpu.memory_percent == pytest.approx(0.0, abs=1e-9)


def test_nvml_without_gpu_refuses() -> None:
    nvml = FakeNvml(count=0)
    with pytest.raises(RuntimeError):
        NvmlBackend(nvml)
    assert nvml.shut


def test_auto_on_this_machine_falls_back_to_no_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi; and no NVML library here
    assert open_gpu_backend("auto").name in ("none", "nvml")


def h200_smi_line(gpu_fixtures: Path, util: float, used: float, total: float, temp: float) -> str:
    """nvidia-smi's answer to GPUtil's query, with the H200 log's numbers in the H100 line's layout."""
    line = (gpu_fixtures / "nvidia-smi-h100-idle.csv").read_text().split(", ")
    line[2], line[3], line[4], line[5] = f"{util:.0f}", f"{total:.0f}", f"{used:.0f}", f"{total - used - 615:.0f}"
    line[7], line[11] = "NVIDIA H200", f"{temp:.0f}\n"
    return ", ".join(line)


def test_doctor_prints_rounded_gpu_numbers(fake_smi, gpu_fixtures: Path, data_dir: Path) -> None:
    util, used, total, temp = max(h200_smi_log(), key=lambda r: r[1])
    fake_smi("ok", h200_smi_line(gpu_fixtures, util, used, total, temp))
    done = subprocess.run(trayapp_cmd("--data-dir", str(data_dir), "doctor"), capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DISPLAY": ""})
    (line,) = [ln for ln in done.stdout.splitlines() if "gputil: GPU 0" in ln]
    assert f"util {util:.1f} %, memory 0.7 %, {temp:.1f} °C, power n/a, memory bandwidth n/a" in line, line
    assert "Traceback" not in done.stderr


@pytest.mark.slow  # over a second or two: `make test-all`
def test_new_gpu_columns_flow_from_a_recorder_to_export_as_null_not_zero(fake_smi, gpu_fixtures: Path, data_dir: Path, tmp_path: Path) -> None:
    """Yesterday written before power and bandwidth existed; today by a recorder reading GPUtil."""
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=30), now - timedelta(hours=26), 600,
                  {"cpu_percent": 5.0, "memory_percent": 6.0, "disk_percent": 7.0, "gpu0_util_percent": 50.0,
                   "gpu0_memory_percent": 1.0, "gpu0_temperature_c": 40.0}, today_in_csv=True)
    util, used, total, temp = max(h200_smi_log(), key=lambda r: r[1])
    fake_smi("ok", h200_smi_line(gpu_fixtures, util, used, total, temp))
    config = tmp_path / "config.toml"
    config.write_text('[sampling]\ngpu_backend = "gputil"\n')
    rec = subprocess.Popen(trayapp_cmd("--config", str(config), "--data-dir", str(data_dir), "run", "--headless", "--interval", "0.2"),
                           stderr=subprocess.PIPE, text=True)
    try:
        csv = data_dir / "csv_dump" / "daily_dump.csv"
        assert wait_for(lambda: csv.exists() and csv.read_text().count("\n") >= 4, timeout=30)
    finally:
        rec.send_signal(signal.SIGTERM)
        _, err = rec.communicate(timeout=30)
    assert rec.returncode == 0, err
    done = subprocess.run(trayapp_cmd("--config", str(config), "--data-dir", str(data_dir), "export", "--since", "2d", "--format", "json"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    old = [r for r in rows if r["gpu0_util_percent"] == 50.0]
    new = [r for r in rows if r["gpu0_util_percent"] == util]
    assert old and new and len(old) + len(new) == len(rows)
    for row in rows:
        assert row["gpu0_power_w"] is None and row["gpu0_memory_bandwidth_percent"] is None
    assert [r["gpu0_memory_percent"] for r in new] == [pytest.approx(100 * used / total, abs=1e-4)] * len(new)
