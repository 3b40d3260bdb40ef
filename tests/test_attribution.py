"""Who made a window average: the arithmetic (shares add up to the average), the day files (torn
tails, Parquet, DuckDB), the scan on real processes (redaction, names only, a short-lived child),
and a real recorder beside CPU burners of known duty (slow)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import wait_for
from trayapp import attribution, attribution_days
from trayapp.attribution import Attributor, DayWriter, MinuteRecord, RuleContributors, Scanner, contributors, make_record
from trayapp.rules import RollingWindow, average_over_time

A, B, C = ("python", "python a.py"), ("chrome", ""), ("python", "python b.py")


def _record(minute: int, busy: float, groups: dict, other: float = 0.0, used: float = 0.0, rss: dict | None = None) -> MinuteRecord:
    keys = tuple(groups)
    rss = rss or {}
    return MinuteRecord(minute, busy, used, keys, tuple(groups[k] for k in keys), tuple(rss.get(k, 0.0) for k in keys),
                        tuple((i + 1,) for i, _ in enumerate(keys)), other, 0.0)


def test_shares_are_the_mean_of_each_minute_part_and_add_up_to_the_average() -> None:
    records = [_record(100, 100.0, {A: 60.0, B: 20.0}, other=10.0), _record(101, 100.0, {A: 30.0})]
    means = {100: 80.0, 101: 40.0, 102: 10.0}  # minute 102 has samples but no record yet
    average = sum(means.values()) / 3
    found = contributors("cpu", records, means, 3, average)
    by_name = {(c.name, c.command): c.share for c in found}
    assert by_name[A] == pytest.approx((80 * 0.6 + 40 * 0.3) / 3)
    assert by_name[B] == pytest.approx(80 * 0.2 / 3)
    assert found[-1].name == "other" and found[-1].share == pytest.approx(average - by_name[A] - by_name[B])
    assert math.fsum(c.share for c in found) == pytest.approx(average)


def test_groups_summing_past_the_busy_time_are_scaled_to_it_and_never_past_the_average() -> None:
    # a scan's CPU times may add up to a little more than /proc/stat's busy time: the whole is the larger
    records = [_record(5, 50.0, {A: 40.0, B: 20.0})]
    found = contributors("cpu", records, {5: 30.0}, 1, 30.0)
    assert [round(c.share, 6) for c in found] == [20.0, 10.0, 0.0]


def test_memory_rules_split_by_mean_resident_memory_over_memory_in_use() -> None:
    records = [_record(7, 0.0, {A: 0.0, B: 0.0}, used=8e9, rss={A: 4e9, B: 1e9})]
    found = contributors("memory", records, {7: 50.0}, 1, 50.0)
    assert [(c.name, round(c.share, 6)) for c in found] == [("python", 25.0), ("chrome", 6.25), ("other", 18.75)]


def test_names_only_merges_groups_of_one_executable() -> None:
    records = [_record(1, 10.0, {A: 5.0, C: 3.0, B: 2.0})]
    found = contributors("cpu", records, {1: 100.0}, 1, 100.0, command_lines=False)
    assert [(c.name, c.command, round(c.share, 6)) for c in found] == [("python", "", 80.0), ("chrome", "", 20.0), ("other", "", 0.0)]


def test_no_record_in_the_window_gives_no_contributors_and_other_metrics_none() -> None:
    assert contributors("cpu", [_record(1, 10.0, {A: 5.0})], {2: 50.0}, 1, 50.0) == ()
    assert attribution.rule_kind("disk_percent") is None
    assert contributors(None, [_record(1, 10.0, {A: 5.0})], {1: 50.0}, 1, 50.0) == ()


def test_a_minute_keeps_the_groups_holding_95_percent_of_its_cpu_and_the_largest_by_memory() -> None:
    cpu = {("p", str(i)): 1.0 for i in range(100)}
    cpu[("big", "")] = 1000.0
    rss = {("p", str(i)): float(i) for i in range(100)}
    record = make_record(3, busy=1100.0, used=1e6, cpu=cpu, rss=rss, pids={})
    assert record.keys[0] == ("big", "")
    assert sum(record.cpu) >= 0.95 * sum(cpu.values()) - 1e-9
    assert {("p", "99"), ("p", "95")} <= set(record.keys)  # the largest by memory
    assert sum(record.cpu) + record.other_cpu == pytest.approx(sum(cpu.values()))
    assert sum(record.rss) + record.other_rss == pytest.approx(sum(rss.values()))


def test_the_engine_path_gives_what_status_gives_from_the_same_samples() -> None:
    """RuleContributors over a RollingWindow (the recorder) and contributors over arrays (status) agree."""
    rng = np.random.default_rng(3)
    t = 60.0 * 1000 + np.arange(0, 600, 2.0)
    v = rng.uniform(0, 100, t.size)
    window = RollingWindow(300)
    for ti, vi in zip(t, v):
        window.add(float(ti), float(vi))
    now = float(t[-1])
    attributor = Attributor.__new__(Attributor)  # records only: no scan, no file
    attributor.records = [_record(m, 100.0, {A: float(rng.uniform(0, 60)), B: 10.0}, other=5.0) for m in range(1000, 1010)]
    attributor.version = 1
    engine_side = RuleContributors("cpu_percent").result(attributor, window, window.average, True)
    keep = t > now - 300
    means = attribution.minute_means(t[keep], v[keep])
    average = average_over_time(t[keep], v[keep])
    status_side = contributors("cpu", attributor.records, means, len(means), average)
    assert window.average == pytest.approx(average)
    assert [(c.name, c.command) for c in engine_side] == [(c.name, c.command) for c in status_side]
    assert [c.share for c in engine_side] == pytest.approx([c.share for c in status_side])
    assert math.fsum(c.share for c in engine_side) == pytest.approx(window.average)


# --------------------------------------------------------------------------- the day files


def _minute_records(first: int, count: int) -> list[MinuteRecord]:
    return [make_record(first + i, {A: 30.0 + i, ("sh", 'sh -c "a, b"'): 10.0}, {A: 1e8}, {A: [10, 11]}, 70.0, 2e9)
            for i in range(count)]


def test_a_torn_minute_is_cut_at_open_and_whole_minutes_read_back(tmp_path: Path) -> None:
    minute = math.floor(datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc).timestamp() / 60)
    writer = DayWriter(tmp_path)
    for record in _minute_records(minute, 3):
        assert writer.append(record)
    writer.close()
    path = attribution.csv_path(tmp_path, attribution.local_day(minute))
    whole = path.read_bytes()
    block = attribution._csv_bytes(_minute_records(minute + 3, 1)[0].rows())
    path.write_bytes(whole + block[: len(block) - 20])  # a crash mid-write: the machine row is torn
    assert [r.minute for r in attribution.read_csv(path)] == [minute, minute + 1, minute + 2]
    writer = DayWriter(tmp_path)
    assert writer.append(_minute_records(minute + 3, 1)[0])  # opening cuts the torn minute first
    writer.close()
    back = attribution.read_csv(path)
    assert [r.minute for r in back] == [minute + i for i in range(4)]
    assert back[0].keys == _minute_records(minute, 1)[0].keys and back[0].pids[0] == (10, 11)


def test_a_day_file_of_garbage_is_read_as_nothing_and_set_aside_not_cut(tmp_path: Path) -> None:
    minute = math.floor(time.time() / 60)
    path = attribution.csv_path(tmp_path, attribution.local_day(minute))
    path.parent.mkdir(parents=True)
    garbage = bytes(range(256)) * 8192  # 2 MB with no whole minute in it
    path.write_bytes(garbage)
    assert attribution.read_csv(path) == []
    writer = DayWriter(tmp_path)
    assert writer.append(_minute_records(minute, 1)[0])
    writer.close()
    assert [r.minute for r in attribution.read_csv(path)] == [minute]
    (aside,) = path.parent.glob(f".{path.name}.unreadable-*")
    assert aside.read_bytes() == garbage


def test_finished_days_become_parquet_readable_by_duckdb_and_retention_applies(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    today = date.today()
    yesterday, old = today - timedelta(days=1), today - timedelta(days=40)
    writer = DayWriter(tmp_path)
    for day in (old, yesterday, today):
        noon = datetime(day.year, day.month, day.day, 12).astimezone()
        for record in _minute_records(math.floor(noon.timestamp() / 60), 2):
            writer.append(record)
    writer.close()
    attribution_days.convert(tmp_path, today, retention_days=30)
    assert attribution_days.parquet_path(tmp_path, yesterday).exists()
    assert not attribution.csv_path(tmp_path, yesterday).exists()
    assert attribution.csv_path(tmp_path, today).exists()  # today is still being written
    assert not attribution_days.parquet_path(tmp_path, old).exists() and not attribution.csv_path(tmp_path, old).exists()
    rows = duckdb.sql(f"select kind, name, command, cpu_seconds from read_parquet('{tmp_path}/Processes/*/*/*.parquet', "
                      "hive_partitioning=true) order by minute, kind").fetchall()
    assert len(rows) == 2 * 4 and ("machine", "", "", 70.0) in rows and ("process", "sh", 'sh -c "a, b"', 10.0) in rows
    start = datetime(yesterday.year, yesterday.month, yesterday.day).astimezone()
    back = attribution_days.read_records(tmp_path, start, datetime.now(timezone.utc) + timedelta(days=1))
    assert len(back) == 4  # yesterday's from Parquet, today's from the CSV
    meta, arrays = attribution_days.job({"job": "processes", "data_dir": str(tmp_path), "today": today.isoformat(),
                                         "start": start.isoformat(), "end": (start + timedelta(days=3)).isoformat()})
    assert [r.minute for r in attribution_days.records_of(arrays)] == [r.minute for r in back]


# --------------------------------------------------------------------------- real processes


def _sleeper(tmp_path: Path, *args: str) -> subprocess.Popen:
    script = tmp_path / "sleeper.py"
    script.write_text("import time\ntime.sleep(60)\n")
    return subprocess.Popen([sys.executable, str(script), *args])


def test_a_scan_masks_secrets_on_command_lines_and_names_only_drops_them(tmp_path: Path) -> None:
    proc = _sleeper(tmp_path, "--password=hunter2", "--user", "me")
    try:
        time.sleep(0.3)
        for command_lines in (True, False):
            scanner = Scanner(command_lines)
            scanner.scan()
            _cpu, rss, pids, _busy, used = scanner.scan()
            assert used > 0 and not any("hunter2" in command for _name, command in pids)
            if command_lines:
                mine = [key for key, ids in pids.items() if proc.pid in ids]
                assert len(mine) == 1 and rss[mine[0]] > 0
                name, command = mine[0]
                assert name.startswith("python")
                assert "--password=***" in command and "sleeper.py" in command
            else:  # executable names only: one group per name, no command line anywhere
                assert all(command == "" for _name, command in pids) and rss[(name, "")] > 0
    finally:
        proc.kill()
        proc.wait()


CHILD_BURNS = """
import subprocess, sys, time
time.sleep(0.5)
subprocess.run([sys.executable, "-c", "import time\\nt = time.process_time()\\nwhile time.process_time() - t < 1.0: pass"])
open(sys.argv[1], "w").close()
time.sleep(60)
"""


@pytest.mark.slow  # over a second or two: `make test-all`
def test_a_child_born_and_gone_between_scans_counts_to_its_parent(tmp_path: Path) -> None:
    done = tmp_path / "done"
    parent = subprocess.Popen([sys.executable, "-c", CHILD_BURNS, str(done)])
    try:
        time.sleep(0.2)
        scanner = Scanner(True)
        scanner.scan()
        assert wait_for(done.exists, timeout=30)
        cpu, _rss, pids, busy, _used = scanner.scan()
        key = next(key for key, ids in pids.items() if parent.pid in ids)
        assert cpu[key] >= 0.9  # the child's second of CPU, through the parent's children times
        assert busy >= cpu[key] - 0.1
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.slow  # over a second or two: `make test-all`
def test_a_process_seen_then_gone_is_not_counted_twice_through_its_parent(tmp_path: Path) -> None:
    """A child seen by one scan and reaped before the next: its parent's children times jump by
    the child's whole total, of which the scans counted the part before they lost it."""
    go = tmp_path / "go"
    child = tmp_path / "child_burns.py"
    child.write_text("import os, sys, time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass\n"
                     "while not os.path.exists(sys.argv[1]): time.sleep(0.05)\n")
    code = ("import subprocess, sys, time\n"
            "subprocess.run([sys.executable, sys.argv[1], sys.argv[2]])\n"
            "open(sys.argv[3], 'w').close()\ntime.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code, str(child), str(go), str(tmp_path / "reaped")])
    try:
        scanner = Scanner(True)
        scanner.scan()
        time.sleep(2.5)  # the child has burnt its second and waits
        first = scanner.scan()
        child_key = next(key for key, ids in first[2].items() if "child_burns.py" in key[1])
        go.touch()
        assert wait_for((tmp_path / "reaped").exists, timeout=30)
        cpu, _rss, pids, _busy, _used = scanner.scan()
        parent_key = next(key for key, ids in pids.items() if parent.pid in ids)
        assert first[0][child_key] >= 0.9
        assert cpu.get(parent_key, 0.0) < 0.5  # not the child's second again
    finally:
        parent.kill()
        parent.wait()


# --------------------------------------------------------------------------- a real recorder


BURNER = """
import os, sys, time
args = [a for a in sys.argv[1:] if not a.startswith("--")]
duty, life, log = float(args[0]), float(args[1]), args[2]
end = time.time() + life
with open(log, "a", buffering=1) as f:
    next_log = 0.0
    while True:
        now = time.time()
        if now >= next_log or now >= end:
            c = os.times()
            f.write(f"{now} {c.user + c.system}\\n")
            next_log = now + 0.5
        if now >= end:
            break
        t = time.perf_counter()
        while time.perf_counter() - t < 0.1 * duty:
            pass
        time.sleep(0.1 * (1 - duty))
"""

# runs the burner (beside it) and reaps it the moment it ends, as a shell or a job runner would
REAPER = """
import os, subprocess, sys, time
subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "burner.py"), *sys.argv[1:]])
time.sleep(600)
"""

CONFIG = """
[sampling]
interval_seconds = 0.5
gpu_backend = "off"
[storage]
data_dir = "{data}"
[[rules]]
metric = "cpu_percent"
window = "10m"
min_coverage = "0"
[[rules]]
metric = "memory_percent"
window = "10m"
min_coverage = "0"
"""


def _cpu_in(log: Path, minute: int) -> float:
    """A burner's own CPU seconds in one UTC minute, from the cumulative times it logged."""
    t, cpu = np.loadtxt(log, ndmin=2).T
    return float(np.interp((minute + 1) * 60.0, t, cpu, left=0.0) - np.interp(minute * 60.0, t, cpu, left=0.0))


def _samples(data: Path, since: float) -> tuple[np.ndarray, np.ndarray]:
    """The CPU samples on disk since ``since`` (the CSV and, past a local midnight, the day files)."""
    from trayapp.storage import Store

    stamps, columns = Store(data).arrays(datetime.fromtimestamp(since, timezone.utc), datetime.now(timezone.utc), ["cpu_percent"])
    values = np.asarray(columns["cpu_percent"], dtype="float64")
    keep = np.isfinite(values)
    return np.asarray(stamps, dtype="float64")[keep], values[keep]


def _second_of_minute_between(lo: float, hi: float) -> None:
    while not lo <= time.time() % 60 <= hi:
        time.sleep(0.2)


@pytest.mark.slow
def test_a_recorder_beside_burners_of_known_duty_names_them_with_their_own_cpu_share(tmp_path: Path) -> None:
    """Two burners (60 % and 20 % of a core) and one (40 %) that exits mid-window, beside a real
    ``run --headless``: each one's share in ``status --json`` is what its own cpu_times give,
    within 2 points; the shares add up to the average; its password never reaches a file; a
    kill -9 mid-minute loses that minute only, and the next start seeds from the records."""
    data = tmp_path / "data"
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(data=data))
    script = tmp_path / "burner.py"
    script.write_text(BURNER)
    reaper = tmp_path / "reaper.py"
    reaper.write_text(REAPER)
    log = tmp_path / "recorder.log"
    env = {**os.environ, "TRAYAPP_CONFIG": str(config)}
    began = time.time()
    with open(log, "w") as err:
        recorder = subprocess.Popen([sys.executable, "-m", "trayapp.cli", "--config", str(config), "run", "--headless"],
                                    stdout=subprocess.DEVNULL, stderr=err, env=env)
    burners: list[subprocess.Popen] = []
    try:
        assert wait_for(lambda: "recording every" in log.read_text(), timeout=60), log.read_text()
        time.sleep(1.5)  # the first scan (at the first tick) has primed the counters
        logs = {name: tmp_path / f"{name}.log" for name in "ABC"}
        for name, duty, life, extra in (("A", 0.6, 600, []), ("B", 0.2, 600, ["--password=hunter2"]), ("C", 0.4, 75, [])):
            runner = reaper if name == "C" else script  # C ends mid-window and is reaped at once by its parent
            burners.append(subprocess.Popen([sys.executable, str(runner), *extra, str(duty), str(life), str(logs[name])]))
        started = time.time()
        while time.time() < started + 100 or math.floor(time.time() / 60) <= math.floor((started + 76) / 60):
            time.sleep(1)  # and the minute C ends in is over (its record closed)
        for _ in range(3):
            _second_of_minute_between(15, 35)
            minute = math.floor(time.time() / 60)
            done = subprocess.run([sys.executable, "-m", "trayapp.cli", "--config", str(config), "status", "--json"],
                                  capture_output=True, text=True, timeout=60, env=env)
            stamps, values = _samples(data, began - 60)
            if math.floor(time.time() / 60) == minute:
                break
        assert done.returncode == 0, done.stderr
        assert "hunter2" not in done.stdout
        cpu_rule = json.loads(done.stdout)["rules"][0]
        found = cpu_rule["contributors"]
        assert found[-1]["name"] == "other"
        assert math.fsum(c["share"] for c in found) == pytest.approx(cpu_rule["average"], abs=0.01)
        records = attribution_days.read_records(data, datetime.fromtimestamp(began - 120, timezone.utc), datetime.now(timezone.utc))
        keep = stamps <= minute * 60 + 60
        means = attribution.minute_means(stamps[keep], values[keep])
        by_script = {}
        for c in found:
            if "burner.py" in c["command"]:
                by_script[next(w for w in c["command"].split() if w in ("0.6", "0.2", "0.4"))] = c
        assert set(by_script) == {"0.6", "0.2", "0.4"}, found
        assert "--password=***" in by_script["0.2"]["command"]
        c_ended = float(np.loadtxt(logs["C"], ndmin=2)[-1, 0])
        assert c_ended < started + 80 < time.time() - 20  # C ended mid-window (its parent lives on)
        c_last_minute = math.floor(c_ended / 60)  # C's CPU after the scan that opened this minute went to its parent
        for name, duty in (("A", "0.6"), ("B", "0.2"), ("C", "0.4")):
            expected = 0.0
            for record in records:
                if record.minute in means and (name != "C" or record.minute < c_last_minute):
                    whole = max(record.busy, sum(record.cpu) + record.other_cpu)
                    expected += means[record.minute] * _cpu_in(logs[name], record.minute) / whole
                    mine = [c for key, c in zip(record.keys, record.cpu) if "burner.py" in key[1] and f" {duty} " in key[1]]
                    if record.minute > math.floor(started / 60) and (name != "C" or record.minute < c_last_minute):
                        assert mine and mine[0] == pytest.approx(_cpu_in(logs[name], record.minute), abs=1.5)  # a whole minute
            expected /= len(means)
            assert by_script[duty]["share"] == pytest.approx(expected, abs=2.0), (name, by_script[duty], expected)
            assert by_script[duty]["share"] > 0.5
        # the minute C ended in: what it used after that minute's scan is counted through its parent
        (last,) = [r for r in records if r.minute == c_last_minute]
        parent = [c for ids, c in zip(last.pids, last.cpu) if burners[2].pid in ids]
        assert parent and parent[0] >= _cpu_in(logs["C"], c_last_minute) - 1.5

        # kill -9 mid-minute: only the minute in progress is lost
        _second_of_minute_between(25, 40)
        killed_in = math.floor(time.time() / 60)
        recorder.send_signal(signal.SIGKILL)
        recorder.wait(timeout=30)
        path = attribution.csv_path(data, attribution.local_day(killed_in))
        data_bytes = path.read_bytes()
        assert attribution._whole_length(data_bytes) == len(data_bytes)
        minutes = [r.minute for r in attribution_days.read_records(data, datetime.fromtimestamp(began - 120, timezone.utc),
                                                                  datetime.now(timezone.utc))]
        assert minutes[-1] == killed_in - 1 and minutes == list(range(minutes[0], killed_in))
        assert b"hunter2" not in data_bytes and "hunter2" not in log.read_text()
        every = attribution_days.read_records(data, datetime.fromtimestamp(began - 120, timezone.utc), datetime.now(timezone.utc))
        assert any("--password=***" in key[1] for r in every for key in r.keys)
        assert not any("hunter2" in key[1] for r in every for key in r.keys)

        with open(log, "a") as err:
            recorder = subprocess.Popen([sys.executable, "-m", "trayapp.cli", "--config", str(config), "run", "--headless"],
                                        stdout=subprocess.DEVNULL, stderr=err, env=env)
        assert wait_for(lambda: log.read_text().count("minute(s) of records from disk") == 2, timeout=60), log.read_text()
        seeded = int(log.read_text().split("process attribution on: ")[-1].split()[0])
        assert seeded == len(minutes)
    finally:
        for proc in [*burners, recorder]:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


# --------------------------------------------------------------------------- status, tooltip, Slack


def _history_with_records(data_dir: Path) -> None:
    from trayapp.synthetic import write_history

    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=2), now, 10, {"cpu_percent": 80.0, "memory_percent": 60.0, "disk_percent": 1.0})
    writer = DayWriter(data_dir)
    first = math.floor((now - timedelta(hours=2)).timestamp() / 60)
    for minute in range(first, math.floor(now.timestamp() / 60) + 1):
        cpu = {("python", "python train.py --token=***"): 30.0, ("chrome", "chrome --type=renderer"): 12.0, ("sh", "sh"): 6.0}
        rss = {("python", "python train.py --token=***"): 2e9, ("chrome", "chrome --type=renderer"): 1e9}
        assert writer.append(make_record(minute, cpu, rss, {("python", "python train.py --token=***"): [4242]}, 60.0, 8e9))
    writer.close()


def test_status_names_each_rules_contributors_from_the_records_on_disk(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _history_with_records(data_dir)
    done = subprocess.run([sys.executable, "-m", "trayapp.cli", "--data-dir", str(data_dir), "status", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cpu, memory = json.loads(done.stdout)["rules"]
    assert [(c["name"], c["command"], c["share"], c["pids"]) for c in cpu["contributors"]] == [
        ("python", "python train.py --token=***", pytest.approx(40.0, abs=0.01), [4242]),  # 80 % × 30 of 60 busy seconds
        ("chrome", "chrome --type=renderer", pytest.approx(16.0, abs=0.01), []),
        ("sh", "sh", pytest.approx(8.0, abs=0.01), []),
        ("other", "", pytest.approx(16.0, abs=0.01), []),  # 80 % × the 12 busy seconds no process accounts for
    ]
    assert [c["name"] for c in memory["contributors"]] == ["python", "chrome", "other"]
    assert memory["contributors"][0]["share"] == pytest.approx(15.0, abs=0.01)  # 60 % × 2 of 8 GB in use
    text = subprocess.run([sys.executable, "-m", "trayapp.cli", "--data-dir", str(data_dir), "status"],
                          capture_output=True, text=True, timeout=60).stdout
    assert "made by: python train.py 40, chrome 16, sh 8.0, other 16" in text
    config = tmp_path / "config.toml"
    config.write_text("[processes]\ncommand_lines = false\n")
    names_only = subprocess.run([sys.executable, "-m", "trayapp.cli", "--data-dir", str(data_dir), "--config", str(config),
                                 "status", "--json"], capture_output=True, text=True, timeout=60)
    assert {c["command"] for c in json.loads(names_only.stdout)["rules"][0]["contributors"]} == {""}


def test_the_tooltip_and_the_slack_message_name_the_contributors() -> None:
    from trayapp.engine import Tick
    from trayapp.gui.app import tooltip_text
    from trayapp.model import Contributor, Level, RuleResult, Sample, Transition
    from trayapp.slack import build_message

    made = (Contributor("python", "python train.py", 58.0, (4242,)), Contributor("<!channel>", "", 9.0, (7,)),
            Contributor("bash", "bash build.sh", 2.0, (9,)), Contributor("cc1", "", 1.0, ()), Contributor("other", "", 16.0, ()))
    result = RuleResult("cpu_percent", 129600, 86.0, 2160, 129540.0, Level.ORANGE, 80.0, 90.0, contributors=made)
    now = datetime.now(timezone.utc)
    tick = Tick(Sample(now, 86.0, 10.0, 10.0), (result,), Level.ORANGE, (), True)
    assert "    by python train.py 58, <!channel> 9.0, bash build.sh 2.0, other 17" in tooltip_text(tick).splitlines()
    text = build_message(Transition("cpu_percent/36h", Level.OK, Level.ORANGE, result, now), host="h")["attachments"][0]["text"]
    assert "*Made by (points of the 36 h average):*\n• python train.py: 58.0 (pid 4242) `python train.py`" in text
    assert "• &lt;!channel&gt;: 9.0 (pid 7)" in text and "<!channel>" not in text and "• other: 16.0" in text
    assert "Top processes" not in text


@pytest.mark.usefixtures("gc_on_gui_thread")
def test_the_history_windows_hover_names_that_minutes_busiest_processes(qtbot, data_dir: Path) -> None:
    pytest.importorskip("PySide6.QtWidgets")
    from trayapp.gui.history import HistoryWindow
    from trayapp.gui.live import LiveBuffer
    from trayapp.settings import Config
    from trayapp.synthetic import write_history

    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=2), now, 10, {"cpu_percent": 60.0, "memory_percent": 45.0, "disk_percent": 70.0})
    t = time.time() - 3600
    minute = math.floor(t / 60)
    records = [make_record(minute + i, {("python", "python train.py"): 60.0 - i, ("chrome", ""): 12.0, ("sh", "sh"): 0.5},
                           {}, {}, 80.0, 1e9) for i in (-1, 0, 1)]
    assert attribution.minute_line(records, t, 2) == "python train.py 50 %, chrome 10 %"  # sh was left to "other"
    assert attribution.minute_line(records, t + 7200, 2) == ""
    window = HistoryWindow(data_dir, LiveBuffer(), Config(), processes=lambda x: attribution.minute_line(records, x, 2))
    qtbot.addWidget(window)
    try:
        with qtbot.waitSignal(window.range_loaded, timeout=20000):
            window.show()
        window.hover_at(t)
        assert "CPU 60.0 %" in window.readout.text() and "busiest: python train.py 50 %, chrome 10 %" in window.readout.text()
        window.hover_at(time.time() - 5400)  # a minute without a record: no line for it
        assert "busiest" not in window.readout.text()
    finally:
        window.shutdown()


def test_a_fifo_where_a_day_file_goes_is_set_aside_never_waited_on(tmp_path: Path) -> None:
    minute = math.floor(time.time() / 60)
    path = attribution.csv_path(tmp_path, attribution.local_day(minute))
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    assert attribution.read_csv(path) == []  # returns at once: a FIFO is not read
    writer = DayWriter(tmp_path)
    assert writer.append(_minute_records(minute, 1)[0])
    writer.close()
    assert [r.minute for r in attribution.read_csv(path)] == [minute]
    assert len(list(path.parent.glob(f".{path.name}.unreadable-*"))) == 1


def test_a_transition_carries_the_windows_contributors_and_ticks_do_when_asked(tmp_path: Path) -> None:
    """The engine: a rule's transition (Slack, the log) names who made its average; other ticks
    only when ``contributors_each_tick`` (the tray app's tooltip)."""
    from trayapp.engine import Engine, transition_line
    from trayapp.model import Sample
    from trayapp.settings import validate

    config = validate({"sampling": {"gpu_backend": "off"},
                       "rules": [{"metric": "cpu_percent", "window": "10m", "min_coverage": "0", "orange": 50, "red": 90}]}, [])
    engine = Engine(config, tmp_path / "data", probe_factory=lambda c: None)
    engine.start()
    try:
        assert engine.attribution is not None
        now = time.time()
        minute = math.floor(now / 60)
        engine.attribution.seed([make_record(m, {("python", "python train.py"): 45.0, ("sh", "sh"): 5.0}, {}, {}, 60.0, 1e9)
                                 for m in range(minute - 5, minute)], now)

        def at(t: float, cpu: float):
            return engine.tick(Sample(datetime.fromtimestamp(t, timezone.utc), cpu, 10.0, 10.0))

        changes = 0
        for i in range(5 * 60, 0, -10):  # 95 % over the last five minutes: one transition, at the first tick
            tick = at(now - i, 95.0)
            if tick.transitions:
                changes += 1
                (change,) = tick.transitions
                assert change.result.contributors[0].name == "python" and change.result.contributors[-1].name == "other"
                assert "made by python train.py" in transition_line(change)
        assert changes == 1
        quiet = at(now, 95.0)
        assert not quiet.transitions and quiet.results[0].contributors == ()
        engine.contributors_each_tick = True
        shown = at(now + 1, 95.0).results[0]
        assert [c.name for c in shown.contributors] == ["python", "sh", "other"]
        minutes = engine.states[0].window.minutes  # 5 of them have a record; the newest not yet
        assert shown.contributors[0].share == pytest.approx(95.0 * 45 / 60 * 5 / minutes, rel=1e-6)
        assert math.fsum(c.share for c in shown.contributors) == pytest.approx(shown.average)
    finally:
        engine.stop()
