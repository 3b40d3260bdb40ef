"""Slack with the real slack_sdk clients against a real server on 127.0.0.1 that answers like Slack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import start_headless, trayapp_cmd, wait_for
from tests.slack_server import Answer, FakeSlack
from trayapp.model import Level, RuleResult, Sample, Transition
from trayapp.settings import Config, save
from trayapp.slack import Courier, Outbox, build_message, deliver, delivery_report, send_test, snooze, status_line
from trayapp.synthetic import write_history

HOOK_PATH = "/services/T000/B000/secretpart"
POST_PATH = "/api/chat.postMessage"


@pytest.fixture
def slack():
    server = FakeSlack()
    yield server
    server.stop()


def webhook_config(slack: FakeSlack, **extra) -> Config:
    return Config(slack_webhook_url=slack.webhook_url, **extra)


def bot_config(slack: FakeSlack, token: str = FakeSlack.TOKEN, **extra) -> Config:
    return Config(slack_bot_token=token, slack_channel="#alerts", slack_api_url=slack.api_url, **extra)


def red_change(at: datetime | None = None, previous: Level = Level.OK, current: Level = Level.RED) -> Transition:
    result = RuleResult("cpu_percent", 129600, 95.0, 2160, 36 * 3600 - 60, current, 80.0, 90.0)
    return Transition("cpu_percent/36h", previous, current, result, at or datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc))


def test_a_message_says_host_metric_average_threshold_window_coverage_and_when() -> None:
    message = build_message(red_change(), host="gpu-box-7", processes=["python (pid 4242): 97 %", "Xorg (pid 901): 2.0 %"])
    assert message["text"] == ":red_circle: RED: cpu_percent on gpu-box-7 (ok → red)"
    (attachment,) = message["attachments"]
    assert attachment["color"] == "#d93025"
    text = attachment["text"]
    for needle in ("*Host:* gpu-box-7", "*Metric:* cpu_percent", "*36 h average:* 95.0 % (red above 90 %)",
                   "*Window:* 36 h, with 36 h of data (2160 samples)", "*When:* 2026-11-27 13:00:00 (+0100)",
                   "*Top processes by CPU:*\n• python (pid 4242): 97 %\n• Xorg (pid 901): 2.0 %"):
        assert needle in text


@pytest.mark.parametrize(("current", "previous", "average", "needle"), [
    (Level.RED, Level.ORANGE, 8.0, "*10 min average:* 8.0 % (red below 10 %)"),
    (Level.ORANGE, Level.OK, 18.0, "*10 min average:* 18.0 % (orange from 20 % down, red below 10 %)"),
    (Level.OK, Level.ORANGE, 60.0, "*10 min average:* 60.0 % (above orange (20 %))"),
])
def test_a_falling_rules_message_says_it_the_right_way_round(current, previous, average, needle) -> None:
    result = RuleResult("battery_percent", 600, average, 60, 590.0, current, 20.0, 10.0, "below")
    change = Transition("battery_percent/10m", previous, current, result, datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc))
    assert needle in build_message(change, host="laptop")["attachments"][0]["text"]


def test_a_fan_rules_message_speaks_rpm_not_percent() -> None:
    result = RuleResult("fan_rpm", 300, 250.0, 150, 298.0, Level.RED, 600.0, 300.0, "below")
    change = Transition("fan_rpm/5m", Level.OK, Level.RED, result, datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc))
    text = build_message(change, host="box")["attachments"][0]["text"]
    assert "*5 min average:* 250 RPM (red below 300 RPM)" in text and "%" not in text.split("*Window:*")[0]


@pytest.mark.slow  # over a second or two: `make test-all`
def test_the_top_processes_name_their_pid_share_and_size_from_the_real_process_table() -> None:
    import re
    import subprocess
    import sys

    from trayapp.slack import top_processes

    holder = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(300_000_000); x[::4096] = b'1' * len(x[::4096]); time.sleep(60)"])
    # a process any local user could start, named to ping the whole channel (PR_SET_NAME)
    spinner = subprocess.Popen([sys.executable, "-c", "import ctypes; ctypes.CDLL(None).prctl(15, b'<!channel>', 0, 0, 0)\nwhile True: pass"])
    try:
        time.sleep(1.5)  # the memory touched, the spinner spinning
        by_memory = [line for line in top_processes("memory_percent", count=500) if f"(pid {holder.pid})" in line]
        assert len(by_memory) == 1, top_processes("memory_percent", count=500)
        size = re.fullmatch(r"python[\d.]* \(pid \d+\): [\d.]+ %, ([\d.]+) MB", by_memory[0])
        assert size and 300 <= float(size[1]) < 400, by_memory  # 300 MB touched, plus Python itself
        by_cpu = [line for line in top_processes("cpu_percent", count=500) if f"(pid {spinner.pid})" in line]
        assert len(by_cpu) == 1 and re.fullmatch(r"&lt;!channel&gt; \(pid \d+\): [\d.]+ %", by_cpu[0]), by_cpu
        assert float(by_cpu[0].split(": ")[1].split()[0]) >= 10  # a spinning process (on a busy CI box too), with no size
    finally:
        for proc in (holder, spinner):
            proc.kill()
            proc.wait()


def test_resolved_message_is_green() -> None:
    message = build_message(red_change(previous=Level.RED, current=Level.OK), host="h")
    assert message["text"].startswith(":large_green_circle: Resolved: cpu_percent on h")
    assert message["attachments"][0]["color"] == "#1e8e3e"


@pytest.mark.parametrize("make_config", [webhook_config, bot_config])
def test_delivery_ok(slack: FakeSlack, make_config) -> None:
    outcome = deliver(make_config(slack), build_message(red_change(), host="h"))
    assert outcome.kind == "ok"
    (payload,) = slack.messages()
    assert payload["text"].startswith(":red_circle: RED") and payload["attachments"][0]["color"] == "#d93025"
    if make_config is bot_config:
        assert payload["channel"] == "#alerts"


@pytest.mark.parametrize(
    ("path", "answer", "kind", "wait"),
    [
        (HOOK_PATH, Answer(429, "rate_limited", {"Retry-After": "7"}), "retry", 7.0),
        (HOOK_PATH, Answer(500, "internal error"), "retry", None),
        (HOOK_PATH, Answer(503, "unavailable"), "retry", None),
        (HOOK_PATH, Answer(403, "invalid_token"), "permanent", None),
        (HOOK_PATH, Answer(404, "no_service"), "permanent", None),
        (HOOK_PATH, Answer(drop=True), "retry", None),
        (HOOK_PATH, Answer(delay=3.0), "retry", None),  # slower than the client's timeout
    ],
)
def test_webhook_answers(slack: FakeSlack, path: str, answer: Answer, kind: str, wait: float | None) -> None:
    slack.then(path, answer)
    outcome = deliver(webhook_config(slack), build_message(red_change(), host="h"), timeout=1.0)
    assert (outcome.kind, outcome.wait) == (kind, wait), outcome
    assert "secretpart" not in outcome.detail


@pytest.mark.parametrize(
    ("answer", "kind", "wait"),
    [
        (Answer(200, {"ok": False, "error": "invalid_auth"}), "permanent", None),
        (Answer(200, {"ok": False, "error": "channel_not_found"}), "permanent", None),
        (Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3"}), "retry", 3.0),
        (Answer(500, {"ok": False, "error": "internal_error"}), "retry", None),
        (Answer(drop=True), "retry", None),
    ],
)
def test_web_api_answers(slack: FakeSlack, answer: Answer, kind: str, wait: float | None) -> None:
    slack.then(POST_PATH, answer)
    outcome = deliver(bot_config(slack), build_message(red_change(), host="h"), timeout=2.0)
    assert (outcome.kind, outcome.wait) == (kind, wait), outcome


def test_a_wrong_token_is_permanent_and_never_shown(slack: FakeSlack) -> None:
    config = bot_config(slack, token="xoxb-wrong-secret")
    outcome = deliver(config, {"text": "x"})
    assert outcome.kind == "permanent" and "invalid_auth" in outcome.detail
    assert "xoxb-wrong-secret" not in outcome.detail


def test_a_wrong_url_is_permanent() -> None:
    outcome = deliver(Config(slack_webhook_url="hooks.slack.com/services/x"), {"text": "x"})
    assert outcome.kind == "permanent" and "https://" in outcome.detail


def test_send_test_says_plainly(slack: FakeSlack) -> None:
    assert send_test(webhook_config(slack)) == (True, "Slack accepted the test message")
    slack.then(HOOK_PATH, Answer(403, "invalid_token"))
    ok, detail = send_test(webhook_config(slack))
    assert not ok and detail == "Slack did not accept the test message: refused: invalid_token (403)"


def test_outbox_survives_an_outage_and_delivers_in_order(slack: FakeSlack, data_dir: Path) -> None:
    config = webhook_config(slack)
    courier = Courier(data_dir, lambda: config)
    t0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    port = slack.port
    slack.stop()  # Slack is unreachable
    for i, (prev, cur) in enumerate([(Level.OK, Level.ORANGE), (Level.ORANGE, Level.RED), (Level.RED, Level.OK)]):
        courier.enqueue(build_message(red_change(t0 + timedelta(hours=i), prev, cur), host="h"))
    assert courier.deliver_pending() == 1.0 and courier.deliver_pending() == 2.0  # backing off
    assert len(courier.outbox.pending()) == 3
    assert "waiting" in status_line(courier.outbox)
    back = FakeSlack(port)  # and back
    try:
        assert courier.deliver_pending() is None
        got = back.messages()
        assert [m["text"].split(":")[1] for m in got] == ["large_orange_circle", "red_circle", "large_green_circle"]
        assert [m["attachments"][0]["ts"] for m in got] == [int((t0 + timedelta(hours=i)).timestamp()) for i in range(3)]
        assert courier.outbox.pending() == [] and courier.backoff == 1.0
    finally:
        back.stop()


def test_429_waits_retry_after_and_keeps_the_message(slack: FakeSlack, data_dir: Path) -> None:
    courier = Courier(data_dir, lambda: webhook_config(slack))
    courier.enqueue({"text": "one"})
    slack.then(HOOK_PATH, Answer(429, "rate_limited", {"Retry-After": "12"}))
    assert courier.deliver_pending() == 12.0
    assert courier.deliver_pending() is None and [m["text"] for m in slack.messages()] == ["one"]


def test_permanent_refusal_moves_on_and_is_reported(slack: FakeSlack, data_dir: Path) -> None:
    config = webhook_config(slack)
    courier = Courier(data_dir, lambda: config)
    courier.enqueue({"text": "refused"})
    slack.then(HOOK_PATH, Answer(404, "no_service"))
    assert courier.deliver_pending() is None  # no retry of that message
    (failed,) = courier.outbox.failed()
    assert json.loads(failed.read_text())["error"] == "refused: no_service (404)"
    assert status_line(courier.outbox) == "Slack refused a message: refused: no_service (404)"
    ok, detail = delivery_report(data_dir, config)
    assert ok is False and "no_service" in detail and "1 refused" in detail and "secretpart" not in detail
    courier.enqueue({"text": "next"})  # the next one goes through: Slack works again
    assert courier.deliver_pending() is None
    assert [m["text"] for m in slack.messages()] == ["next"]
    assert status_line(courier.outbox) == ""


def _tick(transitions: tuple[Transition, ...], results: tuple[RuleResult, ...] = ()):
    from trayapp.engine import Tick

    at = transitions[0].at if transitions else datetime.now(timezone.utc)
    return Tick(Sample(at, 1.0, 1.0, 1.0), results, Level.RED, transitions, True)


def test_snooze_holds_messages_then_sends_the_state_once(slack: FakeSlack, data_dir: Path) -> None:
    config = webhook_config(slack)
    lines: list[str] = []
    courier = Courier(data_dir, lambda: config, on_status=lines.append)
    now = datetime.now(timezone.utc)
    snooze(data_dir, now + timedelta(hours=1))
    courier.on_tick(_tick((red_change(now),)))
    assert courier.outbox.pending() == []
    assert lines[-1].startswith("Slack alerts snoozed until ")  # the tooltip hears of it
    snooze(data_dir, None)
    result = red_change(now).result
    courier.on_tick(_tick((), (result, result)))
    courier.on_tick(_tick((), (result, result)))
    (path,) = courier.outbox.pending()
    assert json.loads(path.read_text())["text"].startswith(":red_circle: Snooze over on")
    assert lines[-1] == ""


def test_resolved_is_not_sent_when_turned_off(slack: FakeSlack, data_dir: Path) -> None:
    config = webhook_config(slack, slack_send_resolved=False)
    courier = Courier(data_dir, lambda: config)
    courier.on_tick(_tick((red_change(previous=Level.RED, current=Level.OK),)))
    assert courier.outbox.pending() == []


# ----------------------------------------------------------------- end to end


@pytest.mark.slow  # kill -9 and an outage in real processes
def test_end_to_end_one_red_message_no_repeat_after_kill_9_and_delivery_after_an_outage(slack: FakeSlack, data_dir: Path, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 60, {"cpu_percent": 95.0, "memory_percent": 30.0, "disk_percent": 40.0})
    config_path = tmp_path / "config.toml"
    save(webhook_config(slack), config_path)

    proc = start_headless(data_dir, "--config", str(config_path))
    try:
        assert wait_for(lambda: len(slack.messages()) >= 1)
        time.sleep(1.5)  # more ticks at the same level send nothing more
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=20)
    (message,) = slack.messages()
    assert message["text"].startswith(":red_circle: RED: cpu_percent on")
    assert "95.0 %" in message["attachments"][0]["text"]

    proc = start_headless(data_dir, "--config", str(config_path))  # after kill -9: nothing more
    try:
        assert wait_for(lambda: (data_dir / "csv_dump" / "daily_dump.csv").stat().st_mtime > time.time() - 0.5)
        time.sleep(2.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert len(slack.messages()) == 1
    assert proc.returncode == 0 and "secretpart" not in err

    # Slack goes down; memory turns red meanwhile; the message arrives once Slack is back
    port = slack.port
    slack.stop()
    write_history(data_dir, datetime.now(timezone.utc) - timedelta(minutes=1), datetime.now(timezone.utc), 1,
                  {"cpu_percent": 95.0, "memory_percent": 30.0, "disk_percent": 40.0})
    save(webhook_config(slack, rules=(__import__("trayapp.rules").rules.Rule("disk_percent", 3600, 20.0, 30.0, 60),)), config_path)
    proc = start_headless(data_dir, "--config", str(config_path))
    try:
        assert wait_for(lambda: len(Outbox(data_dir).pending()) == 1)
        time.sleep(2.0)
        back = FakeSlack(port)
        try:
            assert wait_for(lambda: len(back.messages()) == 1, timeout=20)
            assert back.messages()[0]["text"].startswith(":red_circle: RED: disk_percent on")
        finally:
            back.stop()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert "retrying" in err and "secretpart" not in err


def test_slack_test_command(slack: FakeSlack, tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    save(webhook_config(slack), config_path)
    done = subprocess.run(trayapp_cmd("--config", str(config_path), "slack-test"), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "Slack accepted the test message" in done.stdout
    slack.then(HOOK_PATH, Answer(403, "invalid_token"))
    done = subprocess.run(trayapp_cmd("--config", str(config_path), "slack-test"), capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "invalid_token" in done.stderr and "secretpart" not in done.stderr


def test_snooze_command(data_dir: Path) -> None:
    env = {**os.environ, "TRAYAPP_DATA_DIR": str(data_dir)}
    done = subprocess.run(trayapp_cmd("snooze", "8h"), capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0 and "snoozed until" in done.stdout
    done = subprocess.run(trayapp_cmd("snooze", "sometime"), capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 1 and "'sometime'" in done.stderr


def test_the_first_snooze_on_a_fresh_machine_makes_private_folders(tmp_path: Path) -> None:
    import stat as st

    data_dir = tmp_path / "new" / "data"
    done = subprocess.run(trayapp_cmd("--data-dir", str(data_dir), "snooze", "1h"), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    _modes_are_private(data_dir)
    assert st.S_IMODE((data_dir / "state" / "snooze.json").stat().st_mode) == 0o600


# ------------------------------------------------------------------- secrets


def _everything_written(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(folder.rglob("*")) if p.is_file())


def _modes_are_private(data_dir: Path) -> None:
    import stat as st

    for folder in (data_dir, data_dir / "state", data_dir / "outbox"):
        assert st.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for path in [*(data_dir / "state").rglob("*"), *(data_dir / "outbox").rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        assert st.S_IMODE(path.stat().st_mode) == want, path


def test_a_webhook_path_echoed_back_is_never_printed_or_written(slack: FakeSlack, data_dir: Path, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 60, {"cpu_percent": 95.0, "memory_percent": 30.0, "disk_percent": 40.0})
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[slack]\nwebhook_url = "{slack.webhook_url}"\n')
    slack.then(HOOK_PATH, Answer(400, echo=True), Answer(400, echo=True))
    test = subprocess.run(trayapp_cmd("-v", "--config", str(config_path), "--data-dir", str(data_dir), "slack-test"),
                          capture_output=True, text=True, timeout=30)
    assert test.returncode == 1 and "no such hook ***" in test.stderr, test.stderr
    proc = start_headless(data_dir, "-v", "--config", str(config_path))
    try:
        assert wait_for(lambda: len(Outbox(data_dir).failed()) == 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    doctor = subprocess.run(trayapp_cmd("--config", str(config_path), "--data-dir", str(data_dir), "doctor"),
                            capture_output=True, text=True, timeout=60, env={**os.environ, "DISPLAY": ""})
    assert "refused: no such hook" in doctor.stdout
    assert len(slack.requests) == 2 and all("secretpart" in r["path"] for r in slack.requests)  # it was echoed
    assert "Sending a request" in err  # slack_sdk's own -v lines were there, and redacted
    for text in (test.stdout, test.stderr, out, err, doctor.stdout, doctor.stderr, _everything_written(data_dir)):
        assert "secretpart" not in text and "T000/B000" not in text
    _modes_are_private(data_dir)


def test_a_bot_token_echoed_back_or_holding_a_line_break_is_never_printed(slack: FakeSlack, data_dir: Path, tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[slack]\nbot_token = "{FakeSlack.TOKEN}"\nchannel = "#ops"\napi_url = "{slack.api_url}"\n')
    slack.then(POST_PATH, Answer(400, echo=True))
    echoed = subprocess.run(trayapp_cmd("-v", "--config", str(config_path), "--data-dir", str(data_dir), "slack-test"),
                            capture_output=True, text=True, timeout=30)
    assert echoed.returncode == 1 and "Sending a request" in echoed.stderr
    assert "Failed to decode Slack API response" in echoed.stderr and "(auth=Bearer ***)" in echoed.stderr  # slack_sdk's line
    config_path.write_text(f'[slack]\nbot_token = "xoxb-1234-abcdEFGH\\nsecondhalf99"\nchannel = "#ops"\napi_url = "{slack.api_url}"\n')
    broken = subprocess.run(trayapp_cmd("-v", "--config", str(config_path), "--data-dir", str(data_dir), "slack-test"),
                            capture_output=True, text=True, timeout=30)
    assert broken.returncode == 1 and "[slack] bot_token (a text, not shown): must be one line with no spaces" in broken.stderr
    for text in (echoed.stdout, echoed.stderr, broken.stdout, broken.stderr):
        assert "test-token-123" not in text and "abcdEFGH" not in text and "secondhalf99" not in text, text


def test_a_secret_of_the_wrong_type_is_not_shown(data_dir: Path, tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text('[slack]\nwebhook_url = ["https://hooks.example.org/x/wrongtypesecret"]\nbot_token = 12345678901\n')
    status = subprocess.run(trayapp_cmd("--config", str(config_path), "--data-dir", str(data_dir), "snooze", "off"),
                            capture_output=True, text=True, timeout=30)
    doctor = subprocess.run(trayapp_cmd("--config", str(config_path), "--data-dir", str(data_dir), "doctor"),
                            capture_output=True, text=True, timeout=60, env={**os.environ, "DISPLAY": ""})
    assert "[slack] webhook_url (a list, not shown): must be text in quotes" in status.stderr
    assert "[slack] bot_token (a number, not shown)" in doctor.stdout and doctor.returncode == 1
    for text in (status.stderr, doctor.stdout, doctor.stderr):
        assert "wrongtypesecret" not in text and "12345678901" not in text, text


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("POST https://hooks.slack.com/services/T0AB/B0CD/xyzXYZ123 failed", "xyzXYZ123"),
        ("url: http://10.0.0.1:8065/services/T1/B2/abcdefgh, body: {}", "abcdefgh"),
        ("mattermost http://mm.example/hooks/xk3mt9q8ejbpfb7mzdqkf1d7so", "xk3mt9q8ejbpfb7mzdqkf1d7so"),
        ("token=xoxb-111-222-AbCdEf rejected", "AbCdEf"),
        ("headers: {'Authorization': 'Bearer sk-anything-else'}", "sk-anything-else"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("auth=Bearer opaque.token.value", "opaque.token.value"),
        ('{"url": "https:\\/\\/hooks.slack.com\\/services\\/T0AB\\/B0CD\\/jsonEscaped9"}', "jsonEscaped9"),
        ("no_service: https%3A%2F%2Fhooks.slack.com%2Fservices%2FT0AB%2FB0CD%2FurlEncoded9", "urlEncoded9"),
        ("bad hook %2Fservices%2FT0AB%2FB0CD%2FpathEncoded9 here", "pathEncoded9"),
    ],
)
def test_redaction_by_shape(text: str, gone: str) -> None:
    from trayapp.privacy import redact

    assert gone not in redact(text) and "***" in redact(text)


def test_a_known_secret_is_redacted_whole_by_line_and_as_repr_shows_it() -> None:
    from trayapp import privacy

    privacy.remember({"odd": ["opaque-Secret\nsecond-Line"]})  # a wrong type, a line break, no known shape
    for text in ("opaque-Secret\nsecond-Line", repr("opaque-Secret\nsecond-Line"), "got second-Line back", "opaque-Secret"):
        assert "opaque-Secret" not in privacy.redact(text) and "second-Line" not in privacy.redact(text), text


# ------------------------------------------------------------------ delivery never dies, never drops


def _texts(slack: FakeSlack) -> list[str]:
    return [m["text"] for m in slack.messages()]


def test_delivery_outlives_a_folder_named_like_a_message_and_a_failed_folder_it_cannot_use(slack: FakeSlack, data_dir: Path) -> None:
    courier = Courier(data_dir, lambda: webhook_config(slack))
    outbox = data_dir / "outbox"
    (outbox / "00000000000000000001-1-000001.json").mkdir(parents=True)  # a folder, oldest name of all
    (outbox / "failed").write_text("a file where the failed/ folder goes")  # set aside, and the folder made
    slack.then(HOOK_PATH, Answer(404, "no_service"))
    courier.start()
    try:
        courier.enqueue({"text": "refused"})
        assert wait_for(lambda: len(slack.requests) == 1, timeout=10)
        courier.enqueue({"text": "next"})
        assert wait_for(lambda: _texts(slack) == ["next"], timeout=10), slack.requests
        assert courier.alive()
        kept = [p for p in outbox.iterdir() if p.name.startswith(".failed.unreadable-")]
        assert len(kept) == 1 and kept[0].read_text() == "a file where the failed/ folder goes"  # kept, not lost
        courier.enqueue({"text": "third"})
        assert wait_for(lambda: _texts(slack) == ["next", "third"], timeout=10)
        assert wait_for(lambda: len(Outbox(data_dir).failed()) == 1, timeout=10)
        assert courier.alive() and Outbox(data_dir).pending() == [] and len(slack.requests) == 3
    finally:
        courier.stop()


FULL_DISK_SCRIPT = r"""
import json, resource, signal, sys, time
from pathlib import Path
from trayapp.settings import Config
from trayapp.slack import Courier

folder, url = Path(sys.argv[1]), sys.argv[2]
courier = Courier(folder, lambda: Config(slack_webhook_url=url))
(folder / "outbox").mkdir(parents=True, exist_ok=True)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))  # every file write past 64 bytes fails: EFBIG
courier.enqueue({"text": "fired while the disk was full", "attachments": [{"text": "x" * 200}]})
courier.enqueue({"text": "second, still full", "attachments": [{"text": "y" * 200}]})
leftovers = [p.name for p in (folder / "outbox").iterdir()]
in_memory = courier.in_memory()
courier.start()
deadline = time.monotonic() + 15
while courier.in_memory() and time.monotonic() < deadline:
    time.sleep(0.05)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
courier.enqueue({"text": "after the disk had room"})
while courier.outbox.pending() and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.2)
courier.stop()
left = [p.name for p in (folder / "outbox").rglob("*")]
# Slack off, disk full: held in memory; the disk has room again by the time the app stops: written then
offline = Courier(folder / "second", lambda: Config())
resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))
offline.enqueue({"text": "while full and offline", "attachments": [{"text": "z" * 200}]})
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
offline.stop()
print(json.dumps({"leftovers": leftovers, "in_memory": in_memory, "left": left,
                  "state": sorted(p.name for p in (folder / "state").iterdir()),
                  "written_at_stop": [json.loads(p.read_text())["text"] for p in offline.outbox.pending()]}))
"""


def test_an_alert_on_a_full_disk_is_kept_in_memory_and_sent_and_leaves_no_temporary_files(slack: FakeSlack, data_dir: Path) -> None:
    import sys

    done = subprocess.run([sys.executable, "-c", FULL_DISK_SCRIPT, str(data_dir), slack.webhook_url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["in_memory"] == 2 and report["leftovers"] == []  # nothing written, no zero-byte temporary file
    assert "keeping it in memory" in done.stderr and done.stderr.count("keeping it in memory") == 2  # once per courier, not per message
    assert _texts(slack) == ["fired while the disk was full", "second, still full", "after the disk had room"]
    assert report["left"] == []
    assert report["written_at_stop"] == ["while full and offline"]
    assert report["state"] == ["slack.json"]  # status writes failed meanwhile: no temporary file left


@pytest.mark.slow  # over a second or two: `make test-all`
def test_a_429_holds_every_request_until_retry_after_ends_whatever_arrives(slack: FakeSlack, data_dir: Path) -> None:
    slack.then(HOOK_PATH, Answer(429, "rate_limited", {"Retry-After": "2"}))
    courier = Courier(data_dir, lambda: webhook_config(slack))
    courier.start()
    try:
        courier.enqueue({"text": "a"})
        assert wait_for(lambda: len(slack.requests) == 1, timeout=10)
        for text in ("b", "c", "d"):  # each one wakes the thread early
            time.sleep(0.2)
            courier.enqueue({"text": text})
        assert wait_for(lambda: len(slack.messages()) == 4, timeout=15)
    finally:
        courier.stop()
    assert _texts(slack) == ["a", "b", "c", "d"]
    first, second = slack.requests[0]["at"], slack.requests[1]["at"]
    assert second - first >= 1.95, [r["at"] - first for r in slack.requests]  # the server saw nothing sooner


@pytest.mark.slow  # over a second or two: `make test-all`
def test_early_wake_ups_neither_send_sooner_nor_lengthen_the_5xx_backoff(slack: FakeSlack, data_dir: Path) -> None:
    slack.then(HOOK_PATH, Answer(500, "oops"), Answer(500, "oops"), Answer(500, "oops"))
    courier = Courier(data_dir, lambda: webhook_config(slack))
    courier.backoff = courier.min_backoff = 0.3
    courier.start()
    try:
        courier.enqueue({"text": "first"})
        for i in range(20):  # a new alert every 0.1 s while Slack fails
            time.sleep(0.1)
            courier.enqueue({"text": f"more {i}"})
        assert wait_for(lambda: len(slack.messages()) == 21, timeout=20)
    finally:
        courier.stop()
    statuses = [r["status"] for r in slack.requests]
    assert statuses[:4] == [500, 500, 500, 200] and len(statuses) == 24, statuses
    at = [r["at"] for r in slack.requests[:4]]
    gaps = [b - a for a, b in zip(at, at[1:])]
    assert gaps[0] >= 0.28 and gaps[1] >= 0.58 and gaps[2] >= 1.18, gaps  # 0.3, 0.6, 1.2: each waited out
    assert gaps[2] < 10, gaps  # and not pushed towards the cap by the wake-ups
    assert courier.backoff == 0.3 and _texts(slack)[0] == "first"


def test_a_log_handler_added_after_start_is_redacted_too(tmp_path: Path) -> None:
    import sys

    code = (
        "import logging, sys\n"
        "from trayapp import privacy\n"
        "logging.basicConfig(stream=sys.stderr)\n"
        "privacy.install()\n"
        "later = logging.FileHandler(sys.argv[1]); logging.getLogger().addHandler(later)\n"
        "logging.getLogger('slack_sdk.webhook').warning('Sending a request - url: https://hooks.slack.com/services/T1/B2/lateSecret')\n"
        "try:\n"
        "    raise ValueError('Bearer xoxb-in-a-traceback')\n"
        "except ValueError:\n"
        "    logging.getLogger('x').exception('failed')\n"
    )
    log_file = tmp_path / "late.log"
    done = subprocess.run([sys.executable, "-c", code, str(log_file)], capture_output=True, text=True, timeout=30)
    written = log_file.read_text()
    assert "Sending a request" in written and "ValueError" in written
    for text in (written, done.stderr):
        assert "lateSecret" not in text and "xoxb-in-a-traceback" not in text, text


@pytest.mark.parametrize("retry_after", ["1e10", "inf", "-inf", "nan", "-5", "99999999", "soon", ""])
def test_an_odd_or_huge_retry_after_neither_ends_the_thread_nor_holds_delivery_for_years(
        slack: FakeSlack, data_dir: Path, retry_after: str) -> None:
    slack.then(HOOK_PATH, Answer(429, "rate_limited", {"Retry-After": retry_after}))
    courier = Courier(data_dir, lambda: webhook_config(slack))
    courier.backoff = courier.min_backoff = 0.2
    courier.max_backoff = 0.5  # the ceiling every wait is cut to (5 min in use)
    courier.start()
    try:
        courier.enqueue({"text": "after a 429"})
        assert wait_for(lambda: _texts(slack) == ["after a 429"], timeout=15), slack.requests
        assert courier.alive()
        courier.enqueue({"text": "and the next"})
        assert wait_for(lambda: _texts(slack) == ["after a 429", "and the next"], timeout=15)
        assert courier.alive()
    finally:
        courier.stop()
    assert [r["status"] for r in slack.requests] == [429, 200, 200]


@pytest.mark.parametrize(("retry_after", "wait"), [("1e10", 300.0), ("99999999", 300.0), ("inf", 1.0), ("nan", 1.0),
                                                   ("-3", 1.0), ("later", 1.0), ("0", 1.0), ("42", 42.0)])
def test_a_429_waits_at_most_the_backoff_ceiling_and_an_odd_retry_after_is_the_backoff(
        slack: FakeSlack, data_dir: Path, retry_after: str, wait: float) -> None:
    courier = Courier(data_dir, lambda: webhook_config(slack))
    courier.enqueue({"text": "one"})
    slack.then(HOOK_PATH, Answer(429, "rate_limited", {"Retry-After": retry_after}))
    assert courier.deliver_pending() == wait
    assert "retrying in" in json.loads((data_dir / "state" / "slack.json").read_text())["retrying"]


@pytest.mark.parametrize("echo", ["last", "upper", "urlenc", "json"])
def test_a_webhook_echoed_in_part_encoded_or_escaped_is_never_printed_or_written(
        slack: FakeSlack, data_dir: Path, tmp_path: Path, echo: str) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[slack]\nwebhook_url = "{slack.webhook_url}"\n')
    slack.then(HOOK_PATH, Answer(400, echo=echo), Answer(400, echo=echo))
    test = subprocess.run(trayapp_cmd("-v", "--config", str(config_path), "--data-dir", str(data_dir), "slack-test"),
                          capture_output=True, text=True, timeout=30)
    assert test.returncode == 1 and "***" in test.stderr, test.stderr
    code = ("import sys; from pathlib import Path; from trayapp import settings, privacy; from trayapp.slack import Courier\n"
            "import logging; logging.basicConfig(level=logging.DEBUG); privacy.install()\n"
            "config = settings.load(Path(sys.argv[2])).config\n"
            "courier = Courier(Path(sys.argv[1]), lambda: config); courier.enqueue({'text': 'x'}); courier.deliver_pending()\n")
    courier = subprocess.run([__import__("sys").executable, "-c", code, str(data_dir), str(config_path)],
                             capture_output=True, text=True, timeout=30)
    assert courier.returncode == 0 and "refused" in courier.stderr, courier.stderr
    assert len(Outbox(data_dir).failed()) == 1
    doctor = subprocess.run(trayapp_cmd("--config", str(config_path), "--data-dir", str(data_dir), "doctor"),
                            capture_output=True, text=True, timeout=60, env={**os.environ, "DISPLAY": ""})
    assert "last refusal: refused:" in doctor.stdout, doctor.stdout
    assert len(slack.requests) == 2
    for text in (test.stdout, test.stderr, courier.stderr, doctor.stdout, doctor.stderr, _everything_written(data_dir)):
        low = text.lower()
        assert "secretpart" not in low and "t000%2fb000" not in low and "t000\\/b000" not in low, text
