"""The command line as a user runs it: real processes, real data folders, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import start_headless, trayapp_cmd, wait_for
from trayapp.cli import main
from trayapp.synthetic import write_history


def hot_history(data_dir: Path, cpu: float = 95.0, memory: float = 85.0, hours: float = 36, step: float = 60) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=hours), now, step, {"cpu_percent": cpu, "memory_percent": memory, "disk_percent": 40.0})


def run_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(trayapp_cmd(*args), capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_status_json_says_red_for_cpu_orange_for_memory(data_dir: Path) -> None:
    hot_history(data_dir)
    done = run_cli("--data-dir", str(data_dir), "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["level"] == "red"
    cpu, mem = status["rules"]
    assert set(cpu) == {"metric", "window_seconds", "average", "samples", "coverage_seconds", "level", "contributors"}
    assert cpu["contributors"] == [] and mem["contributors"] == []  # no process records in this history
    assert (cpu["metric"], cpu["level"], mem["metric"], mem["level"]) == ("cpu_percent", "red", "memory_percent", "orange")
    assert cpu["average"] == pytest.approx(95.0) and mem["average"] == pytest.approx(85.0)
    assert cpu["window_seconds"] == 129600
    assert cpu["samples"] == 36 * 60  # one a minute in (written - 36 h, written]
    assert cpu["coverage_seconds"] == pytest.approx(36 * 3600 - 60, abs=1)


def test_status_text_and_unknown_without_enough_data(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    hot_history(data_dir, hours=0.5)
    assert main(["--data-dir", str(data_dir), "status"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("trayapp status: unknown")
    # in the tooltip's words, and when it will know rather than just "unknown"
    assert "36 h avg CPU 95 % — collecting data: 29 min of the 1 h it needs (first verdict in 31 min of recording)" in out


def test_status_says_one_sample_not_one_samples(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(seconds=30), now, 60, {"cpu_percent": 5.0, "memory_percent": 6.0})  # a first minute: one sample
    assert main(["--data-dir", str(data_dir), "status"]) == 0
    out = capsys.readouterr().out
    assert "; 1 sample" in out and "1 samples" not in out, out


def test_status_says_a_falling_rules_thresholds_the_right_way_round(data_dir: Path, tmp_path: Path) -> None:
    """A battery running low and a stopped fan, watched with direction = "below"; CPU beside them."""
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=2), now, 10,
                  {"cpu_percent": 20.0, "memory_percent": 30.0, "disk_percent": 40.0, "battery_percent": 15.0, "fan_rpm": 250.0})
    config = tmp_path / "rules.toml"
    config.write_text('[[rules]]\nmetric = "battery_percent"\ndirection = "below"\nwindow = "1h"\norange = 20.0\nred = 10.0\n'
                      'min_coverage = "5m"\n[[rules]]\nmetric = "fan_rpm"\ndirection = "below"\nwindow = "5m"\norange = 600.0\n'
                      'red = 300.0\nmin_coverage = "2m"\n[[rules]]\nmetric = "cpu_percent"\nwindow = "1h"\nmin_coverage = "30m"\n')
    text = run_cli("--config", str(config), "--data-dir", str(data_dir), "status")
    assert text.returncode == 0, text.stderr
    battery, fan, cpu = text.stdout.splitlines()[1:4]
    assert "— orange" in battery and "orange ≤ 20, red < 10;" in battery
    assert "— red" in fan and "orange ≤ 600 RPM, red < 300 RPM;" in fan
    assert "— ok" in cpu and "orange ≥ 80, red > 90;" in cpu
    levels = [r["level"] for r in json.loads(run_cli("--config", str(config), "--data-dir", str(data_dir), "status", "--json").stdout)["rules"]]
    assert levels == ["orange", "red", "ok"]


def test_status_without_data_folder_is_one_line(tmp_path: Path) -> None:
    done = run_cli("--data-dir", str(tmp_path / "nothing"), "status")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "no data folder" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_writes_the_range(data_dir: Path, tmp_path: Path, fmt: str) -> None:
    hot_history(data_dir, hours=3)
    out = tmp_path / f"out.{fmt}"
    done = run_cli("--data-dir", str(data_dir), "export", "--since", "2h", "--format", fmt, "--output", str(out))
    assert done.returncode == 0, done.stderr
    if fmt == "parquet":
        table = pq.read_table(out)
        assert table.num_rows == 120 and str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    elif fmt == "json":
        rows = json.loads(out.read_text())
        assert len(rows) == 120 and rows[0]["cpu_percent"] == 95.0
    else:
        lines = out.read_text().splitlines()
        assert lines[0] == "timestamp,cpu_percent,memory_percent,disk_percent" and len(lines) == 121
        assert datetime.fromisoformat(lines[1].split(",")[0]).tzinfo is not None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["export", "--since", "yesterday-ish"], "neither an ISO time"),
        (["export", "--since", "1h", "--until", "2h"], "--since must be before --until"),
        (["export", "--format", "parquet"], "give --output FILE"),
        (["run", "--headless", "--interval", "0"], "must be greater than 0"),
    ],
)
def test_bad_input_is_one_clear_line(data_dir: Path, args: list[str], needle: str) -> None:
    data_dir.mkdir(parents=True)
    done = run_cli("--data-dir", str(data_dir), *args)
    assert done.returncode == 1
    assert needle in done.stderr and "Traceback" not in done.stderr


def test_malformed_config_warns_and_keeps_going(data_dir: Path, tmp_path: Path) -> None:
    hot_history(data_dir, hours=2)
    config = tmp_path / "bad.toml"
    config.write_text("[sampling]\ninterval_seconds = 'fast'\n")
    done = run_cli("--config", str(config), "--data-dir", str(data_dir), "status")
    assert done.returncode == 0
    assert "[sampling] interval_seconds = 'fast': must be a number; using 2.0" in done.stderr


def test_read_only_commands_never_move_a_broken_config_and_doctor_says_so(data_dir: Path, tmp_path: Path) -> None:
    hot_history(data_dir, hours=2)
    config = tmp_path / "config.toml"
    text = '[slack]\nwebhook_url = "https://hooks.slack.com/services/T1/B2/abcdef"\n[sampling\n'
    config.write_text(text)
    for args in (["status"], ["status", "--json"], ["export", "--since", "1h"], ["snooze", "off"]):
        done = run_cli("--config", str(config), "--data-dir", str(data_dir), *args)
        assert done.returncode == 0, (args, done.stderr)
        warning = [line for line in done.stderr.splitlines() if "not valid TOML" in line]
        assert len(warning) == 1 and "abcdef" not in done.stderr, (args, done.stderr)
        assert config.read_text() == text and not list(tmp_path.glob("config.toml.broken-*")), args
    doctor = run_cli("--config", str(config), "--data-dir", str(data_dir), "doctor", env={"DISPLAY": ""})
    assert doctor.returncode == 1 and "all good" not in doctor.stdout
    assert any(line.startswith("FAIL config") for line in doctor.stdout.splitlines()), doctor.stdout
    assert config.read_text() == text and not list(tmp_path.glob("config.toml.broken-*"))


def _csv_rows(data_dir: Path) -> int:
    path = data_dir / "csv_dump" / "daily_dump.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_headless_runs_until_a_signal_then_flushes_and_exits_0(data_dir: Path, sig: int) -> None:
    proc = start_headless(data_dir)
    try:
        assert wait_for(lambda: _csv_rows(data_dir) >= 5), proc.stderr
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped; every sample is on disk" in err and "Traceback" not in err
    assert (data_dir / "csv_dump" / "daily_dump.csv").read_text().endswith("\n")
    if not Path("/dev/nvidiactl").exists():  # no GPU here: not news at every start (doctor says it)
        assert "GPU" not in err, err


def test_doctor_says_when_there_is_no_gpu(data_dir: Path) -> None:
    if Path("/dev/nvidiactl").exists():
        pytest.skip("this machine has an NVIDIA GPU")
    done = run_cli("--data-dir", str(data_dir), "doctor")
    assert "no NVIDIA GPU readable" in done.stdout + done.stderr


def test_a_second_writer_says_so_and_exits(data_dir: Path) -> None:
    first = start_headless(data_dir)
    try:
        assert wait_for(lambda: _csv_rows(data_dir) >= 1)
        second = run_cli("--data-dir", str(data_dir), "run", "--headless")
        assert second.returncode == 1
        assert "already recording" in second.stderr and "Traceback" not in second.stderr
        status = run_cli("--data-dir", str(data_dir), "status", "--json")  # readers work alongside
        assert status.returncode == 0 and json.loads(status.stdout)["rules"][0]["samples"] >= 1
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=20)


def test_headless_logs_a_transition_from_seeded_history(data_dir: Path) -> None:
    hot_history(data_dir)
    proc = start_headless(data_dir)
    try:
        assert wait_for(lambda: (data_dir / "state" / "alerts.json").exists())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert "cpu_percent/36h ok → red: 36 h avg cpu_percent 95.0 %" in err
    assert "memory_percent/36h ok → orange" in err
    assert json.loads((data_dir / "state" / "alerts.json").read_text())["cpu_percent/36h"]["level"] == "red"


def test_doctor_reports_each_part(data_dir: Path) -> None:
    done = run_cli("--data-dir", str(data_dir), "doctor", env={"DISPLAY": ""})
    lines = done.stdout.splitlines()
    for part in ("config", "data", "midnight", "gpu", "tray", "slack"):
        assert any(line[5:].startswith(part) for line in lines), (part, done.stdout)
    assert "no display" in done.stdout
    assert done.returncode == 0


def test_doctor_names_the_process_holding_the_writer_lock_not_a_stale_pid_file(data_dir: Path) -> None:
    import sys

    data_dir.mkdir(parents=True, exist_ok=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # some other program
    holder = None
    try:
        (data_dir / ".writer.pid").write_text(f"{other.pid}\n")  # left by a crash; the number taken since
        (data_dir / ".writer.lock").touch()
        done = run_cli("--data-dir", str(data_dir), "doctor", env={"DISPLAY": ""})
        assert "; no recorder running" in done.stdout, done.stdout
        # a recorder holds the lock (and wrote no pid file yet): it is the one named
        (data_dir / ".writer.pid").unlink()
        holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom trayapp.storage.writer import WriterLock\n"
                                   "assert WriterLock(Path(sys.argv[1]) / '.writer.lock').acquire()\nprint('held', flush=True)\ntime.sleep(60)",
                                   str(data_dir)], stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        done = run_cli("--data-dir", str(data_dir), "doctor", env={"DISPLAY": ""})
        assert f"; recorder running (pid {holder.pid})" in done.stdout, done.stdout
    finally:
        for proc in (other, holder):
            if proc is not None:
                proc.kill()
                proc.wait()
        if holder is not None:
            holder.stdout.close()


def test_gui_without_display_points_to_headless(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run(trayapp_cmd(), capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == "trayapp: no display to show a tray icon on; on a server use 'trayapp run --headless'"


def test_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("trayapp 0.")


def test_the_core_imports_without_qt() -> None:
    code = (
        "import sys, trayapp.cli, trayapp.engine, trayapp.storage.writer, trayapp.rules, trayapp.settings, "
        "trayapp.slack, trayapp.probes, trayapp.model, trayapp.synthetic\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'shiboken6'))]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--headless", "--interval", "inf"], "--interval inf: must be a finite number"),
        (["run", "--headless", "--interval", "nan"], "--interval nan: must be a finite number"),
        (["run", "--headless", "--interval", "1e-6"], "--interval 1e-06: must be at least 0.1"),
        (["run", "--headless", "--interval", "7200"], "--interval 7200: must be at most 3600"),
        (["run", "--headless", "--interval", "fast"], "argument --interval: invalid float value: 'fast'"),
        (["export", "--since", "99999999d"], "'99999999d' reaches back before year 1"),
        (["export", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["frobnicate"], "unknown command 'frobnicate' (choose from gui, run, status, export, doctor, slack-test, snooze)"),
        (["--no-such-flag", "status"], "unrecognized arguments: --no-such-flag"),
        (["gui", "--wait-for-tray", "inf"], "argument --wait-for-tray: inf: must be between 0 and 3600 seconds"),
        (["gui", "--wait-for-tray", "nan"], "argument --wait-for-tray: nan: must be between 0 and 3600 seconds"),
        (["snooze", "99999999d"], "'99999999d': snooze until a time before the year 10000"),
    ],
)
def test_command_line_mistakes_are_one_line_and_exit_1(data_dir: Path, args: list[str], needle: str) -> None:
    data_dir.mkdir(parents=True)
    done = run_cli("--data-dir", str(data_dir), *args, timeout=30)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr
    assert "usage:" not in done.stderr and "tray-check" not in done.stderr and "Traceback" not in done.stderr


def test_help_lists_only_the_commands_people_use() -> None:
    done = run_cli("--help")
    assert done.returncode == 0 and "usage: trayapp" in done.stdout and "snooze" in done.stdout
    assert "SUPPRESS" not in done.stdout and "tray-check" not in done.stdout and "dataset-job" not in done.stdout
    assert run_cli("export", "--help").returncode == 0


def test_a_config_that_is_not_a_regular_file_is_one_line_and_defaults(data_dir: Path, tmp_path: Path) -> None:
    hot_history(data_dir, hours=2)
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for config in (str(fifo), "/dev/zero"):
        done = run_cli("--config", config, "--data-dir", str(data_dir), "status", "--json", timeout=30)
        assert done.returncode == 0 and json.loads(done.stdout)["level"] == "red", done.stderr
        assert done.stderr == f"trayapp: config: {config} is not a regular file; using defaults\n"


def test_a_huge_rule_window_is_refused_so_status_and_export_work(data_dir: Path, tmp_path: Path) -> None:
    hot_history(data_dir, hours=2)
    config = tmp_path / "config.toml"
    config.write_text("[[rules]]\nmetric = 'cpu_percent'\nwindow = '99999999d'\n[[rules]]\nmetric = 'cpu_percent'\nwindow = '400d'\n")
    done = run_cli("--config", str(config), "--data-dir", str(data_dir), "status", "--json")
    assert done.returncode == 0, done.stderr
    assert "window = '99999999d': must be at most 400d" in done.stderr and "Traceback" not in done.stderr
    (rule,) = json.loads(done.stdout)["rules"]
    assert rule["window_seconds"] == 400 * 86400 and rule["samples"] == 120
    export = run_cli("--config", str(config), "--data-dir", str(data_dir), "export", "--since", "400d", "--format", "json")
    assert export.returncode == 0 and len(json.loads(export.stdout)) == 120


def test_status_json_gives_each_field_one_type_whatever_the_rule_came_from(data_dir: Path, tmp_path: Path) -> None:
    hot_history(data_dir, hours=2)
    config = tmp_path / "config.toml"
    config.write_text("[[rules]]\nmetric = 'cpu_percent'\nwindow = 129600\n[[rules]]\nmetric = 'memory_percent'\nwindow = '1.5h'\n")
    from_file = json.loads(run_cli("--config", str(config), "--data-dir", str(data_dir), "status", "--json").stdout)
    default = json.loads(run_cli("--data-dir", str(data_dir), "status", "--json").stdout)
    for rule in (*from_file["rules"], *default["rules"]):
        assert type(rule["window_seconds"]) is int and type(rule["samples"]) is int, rule
        assert type(rule["coverage_seconds"]) is float, rule
    assert [r["window_seconds"] for r in from_file["rules"]] == [129600, 5400]
    assert default["rules"][0]["window_seconds"] == 129600


@pytest.mark.parametrize(("cpu", "memory", "code"), [(10.0, 10.0, 0), (85.0, 10.0, 1), (95.0, 85.0, 2)])
def test_status_exit_code_follows_the_level_only_when_asked(data_dir: Path, cpu: float, memory: float, code: int) -> None:
    hot_history(data_dir, cpu=cpu, memory=memory, hours=2)
    assert run_cli("--data-dir", str(data_dir), "status", "--exit-code").returncode == code
    assert run_cli("--data-dir", str(data_dir), "status", "--json", "--exit-code").returncode == code
    assert run_cli("--data-dir", str(data_dir), "status").returncode == 0


def test_status_exit_code_is_3_for_unknown_and_for_could_not_tell(data_dir: Path, tmp_path: Path) -> None:
    hot_history(data_dir, hours=0.5)  # less than min_coverage: unknown
    assert run_cli("--data-dir", str(data_dir), "status", "--exit-code").returncode == 3
    missing = run_cli("--data-dir", str(tmp_path / "nothing"), "status", "--exit-code")
    assert missing.returncode == 3 and "no data folder" in missing.stderr


def test_export_writes_one_timestamp_form_in_csv_and_json(data_dir: Path) -> None:
    hot_history(data_dir, hours=1)
    common = ("--data-dir", str(data_dir), "export", "--since", "30m")
    csv_stamps = [line.split(",")[0] for line in run_cli(*common, "--format", "csv").stdout.splitlines()[1:]]
    json_stamps = [row["timestamp"] for row in json.loads(run_cli(*common, "--format", "json").stdout)]
    assert csv_stamps == json_stamps and len(csv_stamps) == 30
    import re

    for stamp in csv_stamps:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", stamp), stamp
        assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0)


def test_help_says_snooze_holds_back_desktop_and_slack_alerts() -> None:
    done = run_cli("--help")
    line = next(l for l in done.stdout.splitlines() if l.strip().startswith("snooze"))
    assert "desktop" in line and "Slack" in line, line


@pytest.mark.parametrize("args", [["status", "--exit-code", "--bogus"], ["status", "--bogus", "--exit-code"],
                                  ["--exit-code", "status"], ["status", "--exit-co", "--json", "extra"]])
def test_a_usage_error_with_exit_code_is_3_could_not_tell(data_dir: Path, args: list[str]) -> None:
    done = run_cli("--data-dir", str(data_dir), *args)
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert run_cli("--data-dir", str(data_dir), "status", "--bogus").returncode == 1  # without it: a plain mistake


def test_a_config_starting_with_a_byte_order_mark_loads_and_saves(data_dir: Path, tmp_path: Path) -> None:
    from trayapp.settings import load, save

    hot_history(data_dir, cpu=10.0, memory=10.0)
    config_path = tmp_path / "config.toml"
    config_path.write_bytes(b"\xef\xbb\xbf# from Notepad\n[[rules]]\nmetric = \"memory_percent\"\nwindow = \"1h\"\nmin_coverage = \"10m\"\norange = 5\nred = 9\n")
    done = run_cli("--config", str(config_path), "--data-dir", str(data_dir), "status", "--json")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    status = json.loads(done.stdout)
    assert status["level"] == "red" and [r["metric"] for r in status["rules"]] == ["memory_percent"]
    loaded = load(config_path)
    save(loaded.config.with_values(slack_channel="#ops"), config_path)  # not set aside as broken
    assert list(tmp_path.glob("*.broken-*")) == [] and "# from Notepad" in config_path.read_text(encoding="utf-8-sig")
    assert load(config_path).config.rules == loaded.config.rules


def test_doctor_does_not_create_a_missing_data_folder(tmp_path: Path) -> None:
    missing = tmp_path / "not" / "here"
    done = run_cli("--config", str(tmp_path / "none.toml"), "--data-dir", str(missing), "doctor", env={"DISPLAY": ""})
    assert f"{missing} does not exist yet" in done.stdout, done.stdout
    assert not missing.exists() and not (tmp_path / "not").exists()


def test_the_global_options_work_after_the_command_too(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`trayapp status --data-dir D` as `trayapp --data-dir D status`; the one after wins."""
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=37), now, 60, {"cpu_percent": 95.0, "memory_percent": 85.0, "disk_percent": 40.0})
    assert main(["--data-dir", str(tmp_path / "elsewhere"), "status", "--json", "--data-dir", str(data_dir)]) == 0
    after = json.loads(capsys.readouterr().out)
    assert main(["--data-dir", str(data_dir), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == after and after["level"] == "red"
    assert main(["status", "--data-dir", str(tmp_path / "none"), "-v"]) != 0  # no history there: a real answer, not a usage error
    assert "unrecognized arguments" not in capsys.readouterr().err


def test_a_reader_that_stops_reading_gets_no_error_line(data_dir: Path) -> None:
    """`trayapp status | head -0`: the pipe is closed before trayapp writes; nothing on stderr."""
    hot_history(data_dir)
    read, write = os.pipe()
    os.close(read)  # no reader: the first write fails with EPIPE
    try:
        done = subprocess.run(trayapp_cmd("--data-dir", str(data_dir), "status"), stdout=write, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write)
    assert done.stderr.decode() == ""
    assert done.returncode == 1


def test_export_since_and_until_both_include_their_moment(data_dir: Path, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    write_history(data_dir, now - timedelta(hours=1), now - timedelta(minutes=1), 60, {"cpu_percent": 10.0})
    since, until = now - timedelta(minutes=30), now - timedelta(minutes=20)  # both on a sample
    out = tmp_path / "out.json"
    done = run_cli("--data-dir", str(data_dir), "export", "--since", since.isoformat(), "--until", until.isoformat(),
                   "--format", "json", "--output", str(out))
    assert done.returncode == 0, done.stderr
    stamps = [datetime.fromisoformat(row["timestamp"]) for row in json.loads(out.read_text())]
    assert stamps[0] == since and stamps[-1] == until and len(stamps) == 11


def test_status_projects_at_the_pace_the_recorder_samples_now() -> None:
    import numpy as np

    from trayapp.cli import _observed_interval

    history_then_now = np.concatenate([np.arange(0, 36000, 60.0), np.arange(36000, 36100, 2.0)])  # 60 s, then 2 s
    assert _observed_interval(history_then_now) == 2.0  # the last 5 minutes' pace, not the last 600 samples'
    assert _observed_interval(np.arange(0, 36000, 60.0)) == 60.0
    assert _observed_interval(np.array([0.0, 1000.0, 2000.0])) == 1000.0  # sparse: the last 600 samples speak
    assert _observed_interval(np.array([5.0])) is None


def test_doctor_without_a_lock_table_knows_a_recorder_by_its_pid_file(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # where /proc/locks names no holder (macOS, Windows, btrfs' device numbers), the pid file decides,
    # and a recorder started as autostart starts it (python -P -m trayapp.cli) counts
    import sys

    from trayapp import cli

    monkeypatch.setattr(cli, "_flock_holder", lambda lock: (False, None))
    proc = subprocess.Popen([sys.executable, "-P", "-m", "trayapp.cli", "--data-dir", str(data_dir), "run", "--headless", "--interval", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(Path(__file__).resolve().parent.parent))
    try:
        assert wait_for(lambda: (data_dir / ".writer.pid").exists(), timeout=30)
        assert cli._recorder_pid(data_dir) == proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    (data_dir / ".writer.pid").write_text(f"{proc.pid}\n")  # stale now: the process is gone
    assert cli._recorder_pid(data_dir) is None
