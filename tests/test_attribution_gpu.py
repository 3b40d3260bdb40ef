"""GPU rules' contributors: the minute scan asks NVML (a stand-in fed the H100 capture, answering
per process as nvidia-ml-py does) for each GPU's processes, real child processes give the pids
their names, and the records on disk (CSV, Parquet, DuckDB) and ``status --json`` carry them."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import FIXTURES
from tests.test_probes import FakeNvml, h100_nvml
from trayapp import attribution, attribution_days
from trayapp.attribution import Attributor, DayWriter, RuleContributors, contributors, describe_contributors, make_record
from trayapp.probes import NoGpu, NvmlBackend

GIB = 1 << 30
NOT_AVAILABLE = (1 << 64) - 1  # NVML_VALUE_NOT_AVAILABLE as a c_ulonglong
NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_NOT_FOUND, NVML_ERROR_GPU_IS_LOST = 3, 6, 15


class ProcessNvml(FakeNvml):
    """The H100 stand-in plus NVML's per-process calls: ``compute``/``graphics`` per GPU are lists
    of ``c_nvmlProcessInfo_v2_t``-like objects (``pid``, ``usedGpuMemory``, None where NVML
    cannot say); ``samples`` per GPU are ``c_nvmlProcessUtilizationSample_t``-like (``pid``,
    ``timeStamp`` in µs, ``smUtil``, ``memUtil``), or an NVML error code the call raises.
    Errors carry ``value`` as nvidia-ml-py's do (its ``NVMLError_NotSupported`` and kin)."""

    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_NOT_FOUND = NVML_ERROR_NOT_FOUND

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.compute: dict[int, list | int] = {}
        self.graphics: dict[int, list | int] = {}
        self.samples: dict[int, list | int] = {}
        self.asked_since: list[tuple[int, int]] = []

    def error(self, value: int) -> Exception:
        exc = self.NVMLError({3: "Not Supported", 6: "Not Found", 15: "GPU is lost"}.get(value, "Unknown Error"))
        exc.value = value
        return exc

    def _answer(self, table: dict, h: int) -> list:
        found = table.get(h, [])
        if isinstance(found, int):
            raise self.error(found)
        return found

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list:
        return self._answer(self.compute, h)

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: int) -> list:
        return self._answer(self.graphics, h)

    def nvmlDeviceGetProcessUtilization(self, h: int, since: int) -> list:
        self.asked_since.append((h, since))
        return [s for s in self._answer(self.samples, h) if s.timeStamp > since]


def info(pid: int, memory: int | None) -> SimpleNamespace:
    return SimpleNamespace(pid=pid, usedGpuMemory=memory, gpuInstanceId=0xFFFFFFFF, computeInstanceId=0xFFFFFFFF)


def sample(pid: int, sm: int, stamp: int, mem: int = 10) -> SimpleNamespace:
    return SimpleNamespace(pid=pid, timeStamp=stamp, smUtil=sm, memUtil=mem, encUtil=0, decUtil=0)


def loaded_h100(**kw) -> ProcessNvml:
    """The H100 under load as captured (99 % util), with ``used`` GPU memory as the test sets it."""
    reading = json.loads((FIXTURES / "gpu" / "h100-probe.json").read_text())["under_load"][0]["nvml"]
    nvml = h100_nvml(reading)
    out = ProcessNvml(util=reading["gpu"], mem_bw=reading["mem_bw"], temp=reading["temp"], total=nvml.total,
                      reserved=nvml.reserved, **kw)
    return out


@pytest.fixture
def two_trainers(tmp_path: Path):
    """Two real processes standing for GPU jobs: ``python train_a.py`` and ``python train_b.py``."""
    procs = []
    for name in ("train_a.py", "train_b.py"):
        script = tmp_path / name
        script.write_text("import time\ntime.sleep(300)\n")
        procs.append(subprocess.Popen([sys.executable, str(script)], cwd=tmp_path))
    time.sleep(0.2)  # exec'd: /proc shows the script in the command line
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait(timeout=30)


def _on_disk(data: Path, first: int) -> list:
    return attribution_days.read_records(data, datetime.fromtimestamp(first * 60, timezone.utc), datetime.now(timezone.utc))


def _group(record_keys, pid_lists, pid: int):
    (key,) = [k for k, ids in zip(record_keys, pid_lists) if pid in ids]
    return key


def _run_minutes(attributor: Attributor, gpu, minutes: int, before_each=None) -> int:
    """Scans at the start of ``minutes + 2`` minutes (the first only primes CPU times); returns
    the first closed minute. ``before_each(i)`` may change the stand-in's answers first."""
    first = math.floor(time.time() / 60) - minutes - 3
    for i in range(minutes + 2):
        if before_each is not None:
            before_each(i)
        attributor.tick(first * 60.0 + 60.0 * i + 0.5, gpu)
    return first + 1


def test_two_gpu_processes_split_a_gpu_util_rule_by_sm_util_and_a_memory_rule_by_gpu_memory(tmp_path: Path, two_trainers) -> None:
    a, b = (p.pid for p in two_trainers)
    nvml = loaded_h100(used=10 * GIB)
    nvml.compute[0] = [info(a, 6 * GIB), info(b, 2 * GIB)]
    stamp = [1_700_000_000_000_000]

    def answers(i: int) -> None:  # a fresh second of samples per scan: 60 % and 20 % of the SMs
        stamp[0] += 60_000_000
        nvml.samples[0] = [sample(a, 55, stamp[0] - 500_000), sample(a, 65, stamp[0]), sample(b, 20, stamp[0])]

    attributor = Attributor(tmp_path / "data")
    backend = NvmlBackend(nvml)
    first = _run_minutes(attributor, backend, 2, answers)
    attributor.close()
    records = [r for r in attributor.records if r.minute >= first]
    assert [r.minute for r in records] == [first, first + 1]
    gpu = records[0].gpus[0]
    assert gpu.index == 0 and gpu.used == 10 * GIB and gpu.util == 99.0
    key_a, key_b = _group(gpu.keys, gpu.pids, a), _group(gpu.keys, gpu.pids, b)
    assert key_a[1].endswith("train_a.py") and key_b[1].endswith("train_b.py")
    # each scan asked for the samples newer than the last one it read, not all of them again
    assert nvml.asked_since[-1] == (0, stamp[0] - 60_000_000)

    kind = attribution.rule_kind("gpu0_util_percent")
    means = {first: 90.0, first + 1: 70.0}
    found = contributors(kind, records, means, 2, 80.0)
    by = {(c.name, c.command): c.share for c in found}
    # per minute: the mean times the group's SM util over the larger of the processes' sum (80) and the GPU's 99 %
    assert by[key_a] == pytest.approx((90 * 60 / 99 + 70 * 60 / 99) / 2)
    assert by[key_b] == pytest.approx((90 * 20 / 99 + 70 * 20 / 99) / 2)
    assert found[-1].name == "other" and math.fsum(c.share for c in found) == pytest.approx(80.0)
    assert {c.by for c in found} == {"SM util"}
    assert describe_contributors(found).endswith("(split by SM util)")
    assert describe_contributors(found).startswith(f"{attribution.short_name(*key_a)} 48, ")

    memory = contributors(attribution.rule_kind("gpu0_memory_percent"), records, {first: 12.5, first + 1: 12.5}, 2, 12.5)
    assert [(c.name, c.command, round(c.share, 6)) for c in memory] == [
        (*key_a, 7.5), (*key_b, 2.5), ("other", "", 2.5)]  # 6 and 2 of the 10 GiB in use; 2 GiB no process holds
    assert memory[0].by == "GPU memory"
    assert contributors(attribution.rule_kind("gpu1_util_percent"), records, means, 2, 80.0) == ()  # no GPU 1

    # the day files hold the same minutes: CSV today, Parquet once the day is done, DuckDB reads it
    data = tmp_path / "data"
    assert [r.gpus for r in _on_disk(data, first)] == [r.gpus for r in records]
    attribution_days.convert(data, date.today() + timedelta(days=2))
    assert not list((data / "Processes" / "csv").glob("*.csv"))
    assert [r.gpus for r in _on_disk(data, first)] == [r.gpus for r in records]
    parquet = attribution_days.parquet_path(data, attribution.local_day(first))
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(f"select kind, gpu, gpu_memory_bytes, gpu_sm_percent, cpu_seconds from read_parquet('{parquet}') "
                      f"where kind like 'gpu%' and minute = to_timestamp({first * 60}) order by kind, gpu_memory_bytes").fetchall()
    assert rows == [("gpu", 0, 10.0 * GIB, 99.0, None), ("gpu_other", 0, 0.0, 0.0, None),
                    ("gpu_process", 0, 2.0 * GIB, 20.0, None), ("gpu_process", 0, 6.0 * GIB, 60.0, None)]


def test_utilisation_the_driver_does_not_report_falls_back_to_gpu_memory(tmp_path: Path, two_trainers, caplog) -> None:
    a, b = (p.pid for p in two_trainers)
    nvml = loaded_h100(used=9 * GIB)
    nvml.compute[0] = [info(a, 6 * GIB)]
    nvml.graphics[0] = [info(b, 2 * GIB), info(a, 6 * GIB)]  # a in both lists: counted once
    nvml.graphics[0].append(info(b + 10**6, None))  # a process NVML gives no memory for (WDDM): nothing to weigh
    nvml.samples[0] = NVML_ERROR_NOT_SUPPORTED
    attributor = Attributor(tmp_path / "data")
    with caplog.at_level(logging.INFO):
        first = _run_minutes(attributor, NvmlBackend(nvml), 1)
    attributor.close()
    (record,) = [r for r in attributor.records if r.minute >= first]
    (gpu,) = record.gpus
    assert gpu.sm is None and gpu.other_sm is None
    found = contributors("gpu0_util", [record], {first: 80.0}, 1, 80.0)
    key_a, key_b = _group(gpu.keys, gpu.pids, a), _group(gpu.keys, gpu.pids, b)
    assert [(c.name, c.command, round(c.share, 6), c.by) for c in found] == [
        (*key_a, 60.0, "GPU memory"), (*key_b, 20.0, "GPU memory"), ("other", "", 0.0, "GPU memory")]
    assert "(split by GPU memory)" in describe_contributors(found)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and "utilisation" in r.getMessage()]  # normal: not news

    # a window whose minutes had SM util in part says both
    mixed = make_record(first + 5, {}, {}, {}, 60.0, 1e9, gpus=(attribution.make_gpu_minute(
        0, {key_a: 6.0 * GIB}, {key_a: 50.0}, {key_a: [a]}, 9.0 * GIB, 50.0),))
    both = contributors("gpu0_util", [record, mixed], {first: 80.0, first + 5: 50.0}, 2, 65.0)
    assert both[0].by == "SM util, else GPU memory"
    assert both[0].share == pytest.approx((60.0 + 50.0) / 2)


def test_an_nvml_error_mid_scan_loses_only_that_gpus_minute(tmp_path: Path, two_trainers, caplog) -> None:
    a, b = (p.pid for p in two_trainers)
    nvml = loaded_h100(used=8 * GIB, count=2)
    nvml.compute = {0: [info(a, 6 * GIB)], 1: [info(b, 4 * GIB)]}
    nvml.samples = {0: NVML_ERROR_NOT_FOUND}

    def answers(i: int) -> None:
        nvml.compute[1] = NVML_ERROR_GPU_IS_LOST if i == 2 else [info(b, 4 * GIB)]  # the second minute's scan
        nvml.samples[1] = [sample(b, 70, 1000 + i)]

    attributor = Attributor(tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        first = _run_minutes(attributor, NvmlBackend(nvml), 3, answers)
    attributor.close()
    records = [r for r in attributor.records if r.minute >= first]
    assert [[g.index for g in r.gpus] for r in records] == [[0, 1], [0], [0, 1]]
    assert all(r.keys for r in records)  # the CPU side of every minute is there
    assert not any(r.exc_info for r in caplog.records) and "GPU is lost" in caplog.text
    assert records[1].gpus[0].sm is None  # GPU 0: "not found" (no samples) leaves its SM util out, quietly
    # GPU 1's rule over the three minutes: the minute without its processes goes to "other"
    means = {m: 60.0 for m in (first, first + 1, first + 2)}
    found = contributors("gpu1_util", records, means, 3, 60.0)
    assert found[0].command.endswith("train_b.py") and found[0].share == pytest.approx(2 * 60.0 * 70 / 99 / 3)
    assert found[-1].share == pytest.approx(60.0 - found[0].share)
    assert [[g.index for g in r.gpus] for r in _on_disk(tmp_path / "data", first)] == [[0, 1], [0], [0, 1]]


@pytest.mark.parametrize("gpu", [None, NoGpu()], ids=["no backend", "no GPU"])
def test_a_machine_without_nvml_records_as_before(tmp_path: Path, gpu) -> None:
    attributor = Attributor(tmp_path / "data")
    first = _run_minutes(attributor, gpu, 1)
    attributor.close()
    (record,) = [r for r in attributor.records if r.minute >= first]
    assert record.gpus == () and record.keys
    import csv

    rows = [row for p in (tmp_path / "data" / "Processes" / "csv").glob("*.csv") for row in csv.reader(p.read_text().splitlines())]
    assert rows and {row[1] for row in rows} == {"kind", "process", "other", "machine"}
    assert {tuple(row[7:]) for row in rows if row[1] != "kind"} == {("", "", "")}
    assert contributors("gpu0_util", [record], {first: 50.0}, 1, 50.0) == ()


def _old_rows(record) -> list[list[str]]:
    """A record's rows as written before the GPU columns existed."""
    return [row[:len(attribution.BASE_COLUMNS)] for row in record.rows()]


def test_records_written_before_the_gpu_columns_still_read(tmp_path: Path) -> None:
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    today = date.today()
    noon = math.floor(datetime(today.year, today.month, today.day, 12).astimezone().timestamp() / 60)
    key = ("python", "python train.py")
    old = [make_record(noon + i, {key: 30.0}, {key: 1e9}, {key: [7]}, 60.0, 4e9) for i in range(2)]
    # today's CSV begun by the older recorder (seven columns), continued by this one
    path = attribution.csv_path(tmp_path, attribution.local_day(noon))
    path.parent.mkdir(parents=True)
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([list(attribution.BASE_COLUMNS), *_old_rows(old[0]), *_old_rows(old[1])])
    new = make_record(noon + 2, {key: 30.0}, {key: 1e9}, {key: [7]}, 60.0, 4e9, gpus=(attribution.make_gpu_minute(
        0, {key: 2.0 * GIB}, None, {key: [7]}, 3.0 * GIB, None),))
    writer = DayWriter(tmp_path)
    assert writer.append(new)
    writer.close()
    back = attribution.read_csv(path)
    assert [(r.minute, r.gpus, r.cpu) for r in back] == [(r.minute, r.gpus, tuple(r.cpu)) for r in [*old, new]]
    assert back[2].gpus[0].util is None and back[2].gpus[0].sm is None

    # a Parquet day written before the columns existed
    yesterday = today - timedelta(days=1)
    noon = math.floor(datetime(yesterday.year, yesterday.month, yesterday.day, 12).astimezone().timestamp() / 60)
    old = [make_record(noon + i, {key: 30.0}, {key: 1e9}, {key: [7]}, 60.0, 4e9) for i in range(2)]
    target = attribution_days.parquet_path(tmp_path, yesterday)
    target.parent.mkdir(parents=True)
    rows = [row for r in old for row in _old_rows(r)]
    names = attribution.BASE_COLUMNS
    table = pa.table({
        "minute": pa.array([datetime.fromisoformat(r[0]) for r in rows], pa.timestamp("us", tz="UTC")),
        **{n: [r[i] for r in rows] for i, n in enumerate(names) if n in ("kind", "name", "command", "pids")},
        "cpu_seconds": [float(r[4]) for r in rows], "rss_bytes": [float(r[5]) for r in rows]})
    pq.write_table(table, target, compression="zstd")
    read = attribution_days.read_parquet(target)
    assert [(r.minute, r.keys, r.gpus) for r in read] == [(r.minute, r.keys, ()) for r in old]
    # and merging a late CSV of that day into it writes the new columns, old minutes with none
    late = attribution.csv_path(tmp_path, yesterday)
    late_record = make_record(noon + 5, {key: 1.0}, {}, {}, 60.0, 4e9, gpus=new.gpus)
    with open(late, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([list(attribution.COLUMNS), *late_record.rows()])
    attribution_days.convert(tmp_path, today)
    merged = attribution_days.read_parquet(target)
    assert [bool(r.gpus) for r in merged] == [False, False, True]
    assert pq.read_schema(target).names == list(attribution.COLUMNS)


def test_the_engine_records_gpu_processes_with_the_probes_nvml_and_results_name_them(tmp_path: Path, two_trainers) -> None:
    """The recorder's path: the engine hands its probe's NVML backend to the scan, and a GPU
    rule's results (tooltip, Slack, the log) carry the contributors; no second ``nvmlInit``."""
    from trayapp.engine import Engine, Tick
    from trayapp.gui.app import tooltip_text
    from trayapp.model import Level, Sample, Transition
    from trayapp.probes import Probe
    from trayapp.settings import validate
    from trayapp.slack import build_message

    a, b = (p.pid for p in two_trainers)
    nvml = loaded_h100(used=8 * GIB)
    nvml.compute[0] = [info(a, 6 * GIB), info(b, 2 * GIB)]
    inits = []
    original_init = nvml.nvmlInit
    nvml.nvmlInit = lambda: (inits.append(1), original_init())[1]

    def probe(_config):
        made = Probe(gpu_backend="off")
        made.gpu = NvmlBackend(nvml)
        return made

    config = validate({"rules": [{"metric": "gpu0_util_percent", "window": "10m", "min_coverage": "0", "orange": 50, "red": 90}]}, [])
    engine = Engine(config, tmp_path / "data", probe_factory=probe)
    engine.start()
    try:
        assert engine.attribution is not None
        now = time.time()
        minute = math.floor(now / 60)
        for m in range(minute - 4, minute + 1):  # the scans of five minutes, through the engine's own step
            nvml.samples[0] = [sample(a, 75, m), sample(b, 25, m)]
            engine._attribute(engine.attribution, m * 60.0 + 0.5)
        assert len(inits) == 1
        records = [r for r in engine.attribution.records if r.gpus]
        assert len(records) == 3  # the first scan primes; the newest minute is still open
        engine.contributors_each_tick = True
        tick = None
        for i in range(5 * 60, 0, -10):
            tick = engine.tick(Sample(datetime.fromtimestamp(now - i, timezone.utc), 5.0, 10.0, 10.0,
                                      gpus=(engine.probe.gpu.read()[0],)))
        result = tick.results[0]
        assert [c.command.split("/")[-1] for c in result.contributors[:2]] == ["train_a.py", "train_b.py"]
        assert result.contributors[-1].name == "other" and {c.by for c in result.contributors} == {"SM util"}
        assert math.fsum(c.share for c in result.contributors) == pytest.approx(result.average)
        assert result.contributors[0].share == pytest.approx(3 * 99.0 * 75 / 100 / engine.states[0].window.minutes, rel=1e-6)
        text = tooltip_text(Tick(tick.sample, (result,), Level.RED, (), True))
        assert "(split by SM util)" in text and "train_a.py" in text
        message = build_message(Transition("gpu0_util_percent/10m", Level.OK, Level.RED, result, tick.sample.timestamp), host="h")
        body = message["attachments"][0]["text"]
        assert "average, split by SM util):*" in body
        assert "train_a.py" in body
    finally:
        engine.stop()
    assert nvml.shut


def test_status_json_names_a_gpu_rules_contributors(tmp_path: Path) -> None:
    from trayapp.synthetic import write_history

    data_dir = tmp_path / "data"
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=2), now, 10,
                  {"cpu_percent": 20.0, "memory_percent": 30.0, "disk_percent": 1.0, "gpu0_util_percent": 90.0,
                   "gpu0_memory_percent": 10.0})
    trainer, viewer = ("python", "python train.py --token=***"), ("Xorg", "")
    writer = DayWriter(data_dir)
    first = math.floor((now - timedelta(hours=2)).timestamp() / 60)
    for minute in range(first, math.floor(now.timestamp() / 60) + 1):
        gpu = attribution.make_gpu_minute(0, {trainer: 6.0 * GIB, viewer: 1.0 * GIB}, {trainer: 60.0, viewer: 20.0},
                                          {trainer: [4242], viewer: [900]}, 8.0 * GIB, 100.0)
        assert writer.append(make_record(minute, {trainer: 10.0}, {}, {trainer: [4242]}, 60.0, 8e9, gpus=(gpu,)))
    writer.close()
    config = tmp_path / "config.toml"
    config.write_text('[[rules]]\nmetric = "gpu0_util_percent"\nwindow = "1h"\norange = 80.0\nred = 95.0\nmin_coverage = "0"\n'
                      '[[rules]]\nmetric = "gpu0_memory_percent"\nwindow = "1h"\norange = 80.0\nred = 95.0\nmin_coverage = "0"\n')
    done = subprocess.run([sys.executable, "-m", "trayapp.cli", "--data-dir", str(data_dir), "--config", str(config), "status", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    util, memory = json.loads(done.stdout)["rules"]
    assert [(c["name"], c["share"], c["pids"], c["by"]) for c in util["contributors"]] == [
        ("python", pytest.approx(54.0, abs=0.01), [4242], "SM util"),  # 90 % × 60 of the GPU's 100
        ("Xorg", pytest.approx(18.0, abs=0.01), [900], "SM util"),
        ("other", pytest.approx(18.0, abs=0.01), [], "SM util")]
    assert [(c["name"], c["share"]) for c in memory["contributors"]] == [
        ("python", pytest.approx(7.5, abs=0.01)), ("Xorg", pytest.approx(1.25, abs=0.01)), ("other", pytest.approx(1.25, abs=0.01))]
    text = subprocess.run([sys.executable, "-m", "trayapp.cli", "--data-dir", str(data_dir), "--config", str(config), "status"],
                          capture_output=True, text=True, timeout=60).stdout
    assert "made by: python train.py 54, Xorg 18, other 18 (split by SM util)" in text, text


def test_a_backend_that_breaks_mid_run_is_said_once_and_the_cpu_side_goes_on(tmp_path: Path, caplog) -> None:
    """Not an NVMLError (a driver unloaded under ctypes): one warning, no traceback, the CPU side kept."""
    class Broken:
        def processes(self):
            raise OSError("libnvidia-ml.so.1: cannot read")

    attributor = Attributor(tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        first = _run_minutes(attributor, Broken(), 3)
    attributor.close()
    records = [r for r in attributor.records if r.minute >= first]
    assert len(records) == 3 and all(r.keys and r.gpus == () for r in records)
    said = [r for r in caplog.records if "GPU processes could not be read" in r.getMessage()]
    assert len(said) == 1 and not said[0].exc_info
