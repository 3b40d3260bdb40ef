"""Network and disk I/O rates, temperatures, fans, battery, swap, load and per-core CPU (issue 13).

Real psutil on this machine for what it has (network, disk, CPU times); psutil's own named tuples
filled from fixtures captured on other machines for what it lacks (sensors, fans, battery).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

try:  # psutil's own named tuples: in _ntuples since psutil 7.1, in _common before
    from psutil._ntuples import sbattery, sdiskpart, sfan, shwtemp, snetio
except ImportError:  # pragma: no cover
    from psutil._common import sbattery, sdiskpart, sfan, shwtemp, snetio

from tests.conftest import FIXTURES, start_headless, trayapp_cmd, wait_for
from trayapp import probes
from trayapp.model import MACHINE_COLUMNS, RATE_COLUMNS, Sample, format_value, metric_label, metric_range, metric_unit
from trayapp.probes import (
    CounterRates,
    MachineReader,
    Probe,
    cpu_busy_percents,
    disk_device,
    diskstats_bytes,
    net_counters,
    parse_battery,
    parse_fans,
    parse_swap,
    parse_temperatures,
)
from trayapp.settings import SettingError, check_rule

PSUTIL_FIXTURES = sorted((FIXTURES / "psutil").glob("*.json"))


def load_fixture(path: Path) -> tuple[dict, dict, object, dict]:
    data = json.loads(path.read_text())
    temps = {chip: [shwtemp(*e) for e in entries] for chip, entries in data["temperatures"].items()}
    fans = {chip: [sfan(*e) for e in entries] for chip, entries in data["fans"].items()}
    battery = sbattery(*data["battery"]) if data["battery"] is not None else None
    return temps, fans, battery, data["expect"]


# --- sensors, fans, battery: fixtures from other machines through the probe's parsing


@pytest.mark.parametrize("path", PSUTIL_FIXTURES, ids=lambda p: p.stem)
def test_sensors_from_captured_psutil_output(path: Path) -> None:
    temps, fans, battery, expect = load_fixture(path)
    cpu, hottest = parse_temperatures(temps)
    percent, plugged = parse_battery(battery)
    got = {"cpu_temperature_c": cpu, "hottest_temperature_c": hottest, "fan_rpm": parse_fans(fans),
           "battery_percent": percent, "battery_plugged": plugged}
    assert got == expect


def test_fixtures_cover_each_kind_of_machine() -> None:
    assert {p.stem for p in PSUTIL_FIXTURES} >= {"thinkpad_t14_intel", "server_epyc_k10temp", "server_xeon_coretemp",
                                                 "workstation_threadripper_k10temp", "container_nothing"}


def test_unplugged_probes_and_nan_are_not_temperatures() -> None:
    temps = {"nct6779": [shwtemp("AUXTIN0", 127.0, None, None), shwtemp("AUXTIN1", -62.0, None, None),
                         shwtemp("AUXTIN2", float("nan"), None, None), shwtemp("x", 0.0, None, None)]}
    assert parse_temperatures(temps) == (None, None)  # unknown, never 0 or 127
    assert parse_temperatures({}) == (None, None)
    assert parse_temperatures(None) == (None, None)


def test_a_stopped_fan_is_zero_but_no_fan_is_unknown() -> None:
    assert parse_fans({"nct6779": [sfan("fan2", 0)]}) == 0.0
    assert parse_fans({}) is None
    assert parse_fans({"thinkpad": []}) is None


def test_battery_truth_table() -> None:
    assert parse_battery(sbattery(100, psutil.POWER_TIME_UNLIMITED, True)) == (100.0, 1.0)
    assert parse_battery(sbattery(12.5, 600, False)) == (12.5, 0.0)
    assert parse_battery(sbattery(50, psutil.POWER_TIME_UNKNOWN, None)) == (50.0, None)
    assert parse_battery(None) == (None, None)


def test_no_swap_is_unknown_not_zero_percent() -> None:
    swap_type = type(psutil.swap_memory())
    assert parse_swap(swap_type(0, 0, 0, 0.0, 0, 0)) is None
    assert parse_swap(swap_type(8 << 30, 2 << 30, 6 << 30, 25.0, 0, 0)) == 25.0


# --- rates: counter wrap and interfaces that come and go, as a truth table


def test_counter_rates_truth_table() -> None:
    rates = CounterRates()
    assert rates.update({"eth0": (1000, 500)}, 10.0) == (None, None)  # the first reading: no rate yet
    assert rates.update({"eth0": (3000, 1500)}, 12.0) == (1000.0, 500.0)
    # a new interface (a VPN coming up with 5 GB already counted) adds nothing until its second reading
    assert rates.update({"eth0": (5000, 2500), "tun0": (5_000_000_000, 10)}, 14.0) == (1000.0, 500.0)
    assert rates.update({"eth0": (7000, 3500), "tun0": (5_000_002_000, 30)}, 16.0) == (2000.0, 510.0)
    # tun0 vanishes: only eth0 counts, no negative spike
    assert rates.update({"eth0": (9000, 4500)}, 18.0) == (1000.0, 500.0)
    # eth0 wraps (a 32-bit counter) or is reset by a driver reload: that interval is dropped for it
    assert rates.update({"eth0": (100, 4600), "wlan0": (0, 0)}, 20.0) == (None, 50.0)
    assert rates.update({"eth0": (2100, 4800), "wlan0": (400, 0)}, 22.0) == (1200.0, 100.0)
    # a clock that did not advance gives no rate instead of a division by zero
    assert rates.update({"eth0": (2200, 4800)}, 22.0) == (None, None)
    assert rates.update({}, 30.0) == (None, None)


def test_loopback_is_left_out() -> None:
    pernic = {name: snetio(10, 20, 1, 1, 0, 0, 0, 0) for name in ("lo", "lo0", "Loopback Pseudo-Interface 1", "eth0", "wlp3s0")}
    assert set(net_counters(pernic)) == {"eth0", "wlp3s0"}


def test_cpu_busy_percents_follow_psutil_formula() -> None:
    times = type(psutil.cpu_times())
    fields = times._fields
    zero = dict.fromkeys(fields, 0.0)
    before = [times(**zero), times(**zero)]
    after = [times(**{**zero, "user": 3.0, "idle": 1.0}), times(**{**zero, "idle": 4.0})]
    total, cores = cpu_busy_percents(before, after)
    assert cores == (75.0, 0.0) and total == 37.5
    if "guest" in fields and "iowait" in fields:  # Linux: guest is already in user, iowait is idle
        after = [times(**{**zero, "user": 2.0, "guest": 2.0, "iowait": 2.0}), times(**{**zero, "idle": 4.0})]
        assert cpu_busy_percents(before, after) == (25.0, (50.0, 0.0))
    assert cpu_busy_percents(before, before) == (None, ())  # no time passed: unknown, not 0 %


def test_real_cpu_total_agrees_with_psutil_under_load() -> None:
    reader = MachineReader("/")
    psutil.cpu_percent(interval=None)
    reader.cpu()
    stop = time.monotonic() + 0.6
    while time.monotonic() < stop:  # one core busy
        pass
    theirs = psutil.cpu_percent(interval=None)
    ours, cores = reader.cpu()
    assert len(cores) == psutil.cpu_count()
    assert ours is not None and abs(ours - theirs) <= 5.0, (ours, theirs)
    assert max(cores) >= 50.0  # the busy loop's core (it may have moved between cores)


# --- the watched disk's device


def test_disk_device_picks_the_longest_mount_and_follows_links(tmp_path: Path) -> None:
    parts = [sdiskpart("/dev/sda2", "/", "ext4", "rw"), sdiskpart("/dev/sda3", "/home", "ext4", "rw"),
             sdiskpart("/dev/nvme0n1p1", "/home/me/data", "xfs", "rw")]
    names = ["sda", "sda2", "sda3", "nvme0n1", "nvme0n1p1", "loop0"]
    assert disk_device("/home/me/notes", parts, names) == "sda3"
    assert disk_device("/home/me/data/x", parts, names) == "nvme0n1p1"
    assert disk_device("/homework", parts, names) == "sda2"  # /home is not a prefix of /homework
    link = tmp_path / "dm-link"
    link.symlink_to("/dev/dm-0")  # /dev/mapper/root → ../dm-0
    assert disk_device("/", [sdiskpart(str(link), "/", "ext4", "rw")], ["dm-0", "sda"]) == "dm-0"
    # Windows' PhysicalDriveN and macOS' diskN: the only physical disk, or the slice's whole disk
    assert disk_device("C:\\", [sdiskpart("C:\\", "C:\\", "NTFS", "rw")], ["PhysicalDrive0"]) == "PhysicalDrive0"
    assert disk_device("/", [sdiskpart("/dev/disk3s1s1", "/", "apfs", "ro")], ["disk0", "disk3"]) == "disk3"
    assert disk_device("C:\\", [], ["PhysicalDrive0", "PhysicalDrive1"]) is None  # cannot tell: n/a


def test_diskstats_lines_of_each_kernel_form() -> None:
    text = ("   8       0 sda 1200 30 40000 100 900 20 16000 50 0 120 150 0 0 0 0 0 0\n"
            "   8       1 sda1 1000 25 30000 90 800 10 12000 40 0 100 130 0 0 0 0\n"
            "   8       2 sda2 10 200 20 400\n")
    assert diskstats_bytes(text, "sda") == (40000 * 512, 16000 * 512)
    assert diskstats_bytes(text, "sda1") == (30000 * 512, 12000 * 512)
    assert diskstats_bytes(text, "sda2") == (200 * 512, 400 * 512)
    assert diskstats_bytes(text, "sdb") is None


def test_real_disk_write_rate_is_positive_and_plausible(tmp_path: Path) -> None:
    reader = MachineReader(str(tmp_path))
    assert reader.read()["disk_write_bytes_per_s"] is None  # the first reading
    assert reader._device in psutil.disk_io_counters(perdisk=True)
    t0 = time.monotonic()
    size = 16 << 20
    with open(tmp_path / "blob", "wb") as f:
        f.write(os.urandom(size))
        f.flush()
        os.fsync(f.fileno())
    row = reader.read()
    elapsed = time.monotonic() - t0
    written = row["disk_write_bytes_per_s"]
    assert written is not None and row["disk_read_bytes_per_s"] is not None
    assert written * elapsed >= size * 0.9, (written, elapsed)  # at least what we wrote
    assert written < 50e9  # and no counter-reset spike


def test_real_loopback_traffic_rate_is_positive_and_plausible() -> None:
    """Traffic may only go to 127.0.0.1, which is loopback and left out of the columns; so this
    checks the arithmetic on the real counters of ``lo``, and that the real probe leaves it out."""
    pernic = psutil.net_io_counters(pernic=True, nowrap=False)
    loopback = [n for n in pernic if probes.is_loopback(n)]
    assert loopback and not set(loopback) & set(net_counters(pernic))
    rates = CounterRates()

    def lo_counters() -> dict:
        nics = psutil.net_io_counters(pernic=True, nowrap=False)
        return {n: (nics[n].bytes_recv, nics[n].bytes_sent) for n in loopback}

    server = socket.create_server(("127.0.0.1", 0))
    size = 8 << 20
    received = []

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            got = 0
            while got < size:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
            received.append(got)

    thread = threading.Thread(target=sink)
    thread.start()
    t0 = time.monotonic()
    rates.update(lo_counters(), t0)
    with socket.create_connection(server.getsockname()) as client:
        client.sendall(b"x" * size)
    thread.join(10)
    server.close()
    t1 = time.monotonic()
    recv, sent = rates.update(lo_counters(), t1)
    assert received == [size]
    assert recv is not None and sent is not None
    assert recv * (t1 - t0) >= size and sent * (t1 - t0) >= size
    assert recv < 200e9


def test_real_probe_first_sample_has_null_rates_then_numbers() -> None:
    probe = Probe("off")
    first = probe.read()
    assert all(first.values()[c] is None for c in RATE_COLUMNS)
    time.sleep(0.2)
    second = probe.read()
    values = second.values()
    assert set(MACHINE_COLUMNS) <= set(values) and "cores" not in values
    assert values["net_recv_bytes_per_s"] is not None and values["net_recv_bytes_per_s"] >= 0
    assert values["disk_write_bytes_per_s"] is not None and values["disk_write_bytes_per_s"] >= 0
    assert len(second.cores) == psutil.cpu_count() and values["cpu_core_max_percent"] == max(second.cores)
    assert values["load_percent"] == pytest.approx(100 * os.getloadavg()[0] / psutil.cpu_count(), abs=50)
    # what this machine lacks is null, never 0
    if not psutil.sensors_temperatures():
        assert values["cpu_temperature_c"] is None and values["hottest_temperature_c"] is None
    if psutil.sensors_battery() is None:
        assert values["battery_percent"] is None and values["battery_plugged"] is None
    if psutil.swap_memory().total == 0:
        assert values["swap_percent"] is None
    probe.close()


def test_slow_sensors_are_read_every_ten_seconds_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    temps, fans, battery, _ = load_fixture(FIXTURES / "psutil" / "thinkpad_t14_intel.json")
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: calls.append("t") or temps, raising=False)
    monkeypatch.setattr(psutil, "sensors_fans", lambda: fans, raising=False)
    monkeypatch.setattr(psutil, "sensors_battery", lambda: battery, raising=False)
    reader = MachineReader("/")
    rows = [reader.read(at) for at in (100.0, 101.0, 105.0, 109.9, 110.0, 111.0)]
    assert calls == ["t", "t"]  # at 100 and 110
    assert all(r["cpu_temperature_c"] == 54.0 and r["fan_rpm"] == 2470.0 and r["battery_plugged"] == 0.0 for r in rows)


def test_a_sensor_driver_that_raises_is_unknown_and_sampling_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken():
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(psutil, "sensors_temperatures", broken, raising=False)
    monkeypatch.setattr(psutil, "net_io_counters", lambda **_: (_ for _ in ()).throw(RuntimeError("bad /proc/net/dev")))
    sample = Probe("off").read()
    assert sample.cpu_temperature_c is None and sample.net_recv_bytes_per_s is None
    assert sample.memory_percent is not None


# --- what people read


@pytest.mark.parametrize(("column", "value", "text"), [
    ("net_recv_bytes_per_s", 12_345_678.0, "12.3 MB/s"),
    ("net_sent_bytes_per_s", 740_000.0, "740 KB/s"),
    ("disk_read_bytes_per_s", 999.0, "999 B/s"),
    ("disk_write_bytes_per_s", 1_500.0, "1.50 KB/s"),
    ("disk_write_bytes_per_s", 2.5e12, "2.50 TB/s"),
    ("disk_write_bytes_per_s", 0.0, "0 B/s"),
    ("cpu_temperature_c", 61.4, "61 °C"),
    ("fan_rpm", 1850.0, "1,850 RPM"),
    ("swap_percent", 42.2, "42 %"),
    ("load_percent", 3.25, "3.2 %"),
    ("battery_plugged", 1.0, "plugged in"),
    ("battery_plugged", 0.0, "on battery"),
    ("gpu0_power_w", 412.3, "412 W"),
    ("battery_percent", None, "n/a"),
    ("fan_rpm", float("nan"), "n/a"),
])
def test_format_value(column: str, value: float | None, text: str) -> None:
    assert format_value(column, value) == text


def test_every_new_column_has_a_name_a_unit_and_a_range() -> None:
    labels = {c: metric_label(c) for c in MACHINE_COLUMNS}
    assert labels == {
        "net_recv_bytes_per_s": "network receive", "net_sent_bytes_per_s": "network send",
        "disk_read_bytes_per_s": "disk read", "disk_write_bytes_per_s": "disk write",
        "cpu_temperature_c": "CPU temperature", "hottest_temperature_c": "hottest sensor", "fan_rpm": "fan",
        "battery_percent": "battery", "battery_plugged": "on AC power", "swap_percent": "swap", "load_percent": "load",
        "cpu_core_max_percent": "busiest core",
    }
    assert [metric_unit(c) for c in RATE_COLUMNS] == ["B/s"] * 4
    assert metric_unit("fan_rpm") == "RPM" and metric_unit("cpu_temperature_c") == "°C"
    assert metric_range("net_recv_bytes_per_s")[1] >= 1e10 and metric_range("fan_rpm")[1] >= 10000
    assert metric_range("swap_percent") == (0.0, 100.0)


def test_rules_accept_every_new_metric_in_its_own_units() -> None:
    base = {"window": "1h", "min_coverage": "10m"}
    check_rule({**base, "metric": "net_recv_bytes_per_s", "orange": 50e6, "red": 100e6}, 0)
    check_rule({**base, "metric": "fan_rpm", "orange": 3000.0, "red": 4500.0}, 0)
    for column in MACHINE_COLUMNS:
        low, high = metric_range(column)
        rule = check_rule({**base, "metric": column, "orange": low + (high - low) * 0.5, "red": high * 0.9}, 0)
        assert rule.metric == column
    with pytest.raises(SettingError, match="swap_percent.*|must be at most 100"):
        check_rule({**base, "metric": "swap_percent", "orange": 80.0, "red": 150.0}, 0)
    with pytest.raises(SettingError, match="no probe measures it"):
        check_rule({**base, "metric": "net_rx", "orange": 1.0, "red": 2.0}, 0)


def test_per_core_list_is_not_a_column() -> None:
    from datetime import datetime, timezone

    sample = Sample(datetime.now(timezone.utc), 50.0, 40.0, 30.0, cpu_core_max_percent=100.0, cores=tuple([0.0] * 127 + [100.0]))
    assert "cores" not in sample.values() and len(sample.values()) == 3 + len(MACHINE_COLUMNS)


# --- the real recorder and export


@pytest.mark.slow  # a real recorder, export and status
def test_headless_records_the_new_columns_and_export_and_status_show_them(data_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[rules]]\nmetric = "net_recv_bytes_per_s"\nwindow = "1h"\norange = 50e6\nred = 100e6\nmin_coverage = "0"\n'
                      '[[rules]]\nmetric = "cpu_core_max_percent"\nwindow = "1h"\norange = 98\nred = 99\nmin_coverage = "0"\n')
    proc = start_headless(data_dir, "--config", str(config), interval=0.2)
    dump = data_dir / "csv_dump" / "daily_dump.csv"
    try:
        assert wait_for(lambda: dump.exists() and len(dump.read_text().splitlines()) >= 6), proc.stderr
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    out = tmp_path / "out.csv"
    done = subprocess.run(trayapp_cmd("--data-dir", str(data_dir), "export", "--since", "1h", "--format", "csv",
                                      "--output", str(out)), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    header = list(rows[0])
    assert header[:4 + len(MACHINE_COLUMNS)] == ["timestamp", "cpu_percent", "memory_percent", "disk_percent", *MACHINE_COLUMNS]
    assert rows[0]["net_recv_bytes_per_s"] == "" and rows[0]["disk_write_bytes_per_s"] == ""  # first tick: no rate
    later = rows[1:]
    assert later and all(float(r["net_recv_bytes_per_s"]) >= 0 and r["disk_read_bytes_per_s"] != "" for r in later)
    assert all(r["cpu_core_max_percent"] != "" and r["load_percent"] != "" for r in later)
    if psutil.sensors_battery() is None:
        assert all(r["battery_percent"] == "" and r["battery_plugged"] == "" for r in rows)  # null, never 0
    status = subprocess.run(trayapp_cmd("--config", str(config), "--data-dir", str(data_dir), "status"),
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    assert "avg network receive" in status.stdout and "orange ≥ 50.0 MB/s, red > 100 MB/s" in status.stdout
    assert "avg busiest core" in status.stdout
    as_json = subprocess.run(trayapp_cmd("--config", str(config), "--data-dir", str(data_dir), "status", "--json"),
                             capture_output=True, text=True, timeout=60)
    net, core = json.loads(as_json.stdout)["rules"]
    assert net["metric"] == "net_recv_bytes_per_s" and net["average"] is not None and net["samples"] == len(later)
    assert core["metric"] == "cpu_core_max_percent" and core["samples"] >= len(rows) - 1  # the first may be n/a


# --- the Linux fast paths read the same numbers psutil does


NETDEV = (b"Inter-|   Receive                                                |  Transmit\n"
          b" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
          b"    lo: 1604529   15097    0    0    0     0          0         0  1604529   15097    0    0    0     0       0          0\n"
          b"  eth0: 561924922   13004    0    0    0     0          0         0   601700    7571    0    0    0     0       0          0\n"
          b"wlp3s0:4294967295 1 0 0 0 0 0 0 12 1 0 0 0 0 0 0\n")


def test_netdev_parsing_truth_table() -> None:
    assert probes.netdev_counters(NETDEV) == {"eth0": (561924922, 601700), "wlp3s0": (4294967295, 12)}
    assert probes.netdev_counters(NETDEV.split(b"\n")[0]) == {}


@pytest.mark.skipif(not os.path.exists("/proc/net/dev"), reason="Linux only")
def test_fast_paths_agree_with_psutil_on_this_machine() -> None:
    ours = probes.netdev_counters(probes.ProcFile("/proc/net/dev").read())
    theirs = net_counters(psutil.net_io_counters(pernic=True, nowrap=False))
    assert set(ours) == set(theirs)
    assert all(theirs[k][i] >= ours[k][i] for k in ours for i in (0, 1))  # read after ours: never less
    stat = probes.ProcFile("/proc/stat")
    cores = probes.proc_stat_cores(stat.read())
    assert len(cores) == len(psutil.cpu_times(percpu=True))
    assert all(0 <= busy <= total for busy, total in cores)
    again = probes.proc_stat_cores(stat.read())  # the same open file, read afresh
    assert all(t1 >= t0 for (_, t0), (_, t1) in zip(cores, again))
    stat.close()


def test_a_machine_without_sensors_is_asked_again_only_every_five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: calls.append("t") or {}, raising=False)
    reader = MachineReader("/")
    for at in (0.0, 10.0, 20.0, 290.0, 300.0, 310.0):
        assert reader.read(at)["cpu_temperature_c"] is None
    assert calls == ["t", "t"]  # at 0 and 300
