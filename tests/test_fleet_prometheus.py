"""The fleet through Prometheus: a real Prometheus scraping three real recorders on 127.0.0.1 (slow),
and a tiny real HTTP server on 127.0.0.1 that answers as a broken, locked or slow Prometheus would."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import ROOT, debian_tool, trayapp_cmd
from trayapp.fleet import (
    SCOPE_FLEET,
    SCOPE_THIS_MACHINE,
    FleetReader,
    FleetState,
    Health,
    Machine,
    changes,
    merged_level,
    notification,
    table,
)
from trayapp.model import Level
from trayapp.settings import load, save, validate

SECRET = "s3cret-Pa55word-xyz"
TOKEN = "tok-0123456789abcdef"


# ------------------------------------------------------------------- level merging, a truth table


def state(*levels: Health, error: str = "") -> FleetState:
    machines = tuple(Machine(f"m{i}:9101", f"m{i}", lv, "", None) for i, lv in enumerate(levels))
    return FleetState("http://127.0.0.1:9090", machines, error)


@pytest.mark.parametrize(("local", "fleet", "scope", "shown", "remote"), [
    (Level.OK, (Health.RED, Health.OK), SCOPE_FLEET, Level.RED, True),
    (Level.OK, (Health.RED,), SCOPE_THIS_MACHINE, Level.OK, False),  # this machine only: the fleet is listed, not shown
    (Level.RED, (Health.RED,), SCOPE_FLEET, Level.RED, False),  # as bad here: this machine is the cause
    (Level.RED, (Health.ORANGE,), SCOPE_FLEET, Level.RED, False),
    (Level.OK, (Health.DOWN,), SCOPE_FLEET, Level.ORANGE, True),  # down is never ok
    (Level.OK, (Health.STALE, Health.OK), SCOPE_FLEET, Level.ORANGE, True),  # nor is stopped reporting
    (Level.UNKNOWN, (Health.OK,), SCOPE_FLEET, Level.OK, True),
    (Level.OK, (Health.UNKNOWN,), SCOPE_FLEET, Level.OK, False),
    (Level.ORANGE, (Health.DOWN,), SCOPE_FLEET, Level.ORANGE, False),
    (Level.OK, (), SCOPE_FLEET, Level.OK, False),
])
def test_the_icon_shows_the_worst_of_this_machine_and_the_fleet(local, fleet, scope, shown, remote) -> None:
    assert merged_level(local, state(*fleet), scope) == (shown, remote)


def test_a_fleet_that_cannot_be_read_adds_nothing_to_the_icon_and_says_one_line() -> None:
    broken = state(Health.RED, error="cannot reach Prometheus at http://127.0.0.1:9: connection refused (is it running?)")
    assert merged_level(Level.OK, broken, SCOPE_FLEET) == (Level.OK, False)
    assert broken.lines() == ["fleet: cannot reach Prometheus at http://127.0.0.1:9: connection refused (is it running?)"]
    assert merged_level(Level.ORANGE, None, SCOPE_FLEET) == (Level.ORANGE, False)


def test_worst_is_red_then_down_then_stale_then_orange() -> None:
    assert state(Health.OK, Health.ORANGE, Health.STALE).worst is Health.STALE
    assert state(Health.ORANGE, Health.DOWN, Health.STALE).worst is Health.DOWN
    assert state(Health.DOWN, Health.RED).worst is Health.RED
    assert state(Health.UNKNOWN, Health.OK).worst is Health.OK
    assert state().worst is None


def test_a_change_of_a_remote_machine_is_news_once_and_a_failed_poll_is_none() -> None:
    first = state(Health.OK, Health.RED)
    found = changes({}, first)
    assert [(c.machine.name, c.previous) for c in found] == [("m1", None)]  # first seen at ok: no news
    before = {m.instance: m.level for m in first.machines}
    assert changes(before, first) == []  # nothing changed: nothing said again
    assert changes(before, state(Health.OK, Health.RED, error="down")) == []
    later = state(Health.DOWN, Health.OK)
    found = changes(before, later)
    assert [(c.machine.level, c.previous, c.better) for c in found] == [(Health.DOWN, Health.OK, False), (Health.OK, Health.RED, True)]
    title, _text = notification(found)
    assert title == "m0 down, m1 back to ok"


# ------------------------------------------------------------------- a tiny real server on 127.0.0.1


class Answers:
    """What the server says next: a status, a body, a delay, and the login it wants."""

    def __init__(self) -> None:
        self.status, self.body, self.delay = 200, b"{}", 0.0
        self.headers: dict[str, str] = {}
        self.wanted_auth: str | None = None
        self.seen_auth: list[str | None] = []
        self.queries: list[str] = []
        self.by_query: dict[str, Any] = {}


@pytest.fixture
def server():
    answers = Answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            answers.seen_auth.append(self.headers.get("Authorization"))
            query = parse_qs(urlsplit(self.path).query).get("query", [""])[0]
            answers.queries.append(query)
            if answers.delay:
                time.sleep(answers.delay)
            status, body = answers.status, answers.body
            if answers.wanted_auth is not None and self.headers.get("Authorization") != answers.wanted_auth:
                status, body = 401, b"Unauthorized\n"
            elif answers.by_query:
                key = "recent" if query.startswith("last_over_time") else "pace" if query.startswith("changes") else "now"
                body = json.dumps(answers.by_query.get(key, vector(time.time()))).encode()
            try:
                self.send_response(status)
                for name, value in answers.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up (the timeout test)
                pass

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    answers.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield answers
    httpd.shutdown()
    httpd.server_close()


def vector(now: float, *series: tuple[dict[str, str], float]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": labels, "value": [now, repr(value)]} for labels, value in series]}}


def rule_series(instance: str, metric: str, level: int, ratio: float | None, window: str = "36h") -> list[tuple[dict[str, str], float]]:
    base = {"job": "trayapp", "instance": instance, "metric": metric, "window": window}
    out = [({**base, "__name__": "trayapp_rule_level"}, level)]
    if ratio is not None:
        out.append(({**base, "__name__": "trayapp_rule_average_ratio"}, ratio))
    return out


def up(instance: str, value: float) -> tuple[dict[str, str], float]:
    return {"__name__": "up", "job": "trayapp", "instance": instance}, value


def test_each_machine_gets_its_level_worst_rule_and_down_or_stale_of_its_own(server) -> None:
    now = time.time()
    server.by_query = {
        "now": vector(now, up("gpu-3:9101", 1), up("laptop:9101", 1), up("box:9101", 0), up("paused:9101", 1),
                      *rule_series("gpu-3:9101", "gpu0_util_percent", 2, 0.94),
                      *rule_series("gpu-3:9101", "cpu_percent", 1, 0.85),
                      *rule_series("laptop:9101", "cpu_percent", 0, 0.31),
                      *rule_series("laptop:9101", "memory_percent", -1, None),
                      *rule_series("paused:9101", "cpu_percent", 0, 0.2)),
        "recent": vector(now, *[({"job": "trayapp", "instance": i}, t) for i, t in
                                (("gpu-3:9101", now - 1), ("laptop:9101", now - 2), ("box:9101", now - 600),
                                 ("paused:9101", now - 3600), ("gone:9101", now - 1200))]),
    }
    reader = FleetReader(server.url)
    got = reader.poll()
    assert got.error == ""
    levels = {m.name: m.level for m in got.machines}
    assert levels == {"gpu-3": Health.RED, "laptop": Health.OK, "box": Health.DOWN, "paused": Health.STALE, "gone": Health.STALE}
    assert got.worst is Health.RED
    assert got.machines[0].line() == "gpu-3: red — 36 h avg GPU 0 util 94 %"
    assert [m.name for m in got.machines] == ["gpu-3", "box", "gone", "paused", "laptop"]  # worst first
    by_name = {m.name: m for m in got.machines}
    assert by_name["laptop"].reason == "36 h avg CPU 31 %"
    assert by_name["box"].reason.startswith("down: Prometheus cannot scrape its recorder (last sample 10 min ago")
    assert "no longer among Prometheus' targets" in by_name["gone"].reason
    assert "stopped reporting" in by_name["paused"].reason
    assert by_name["gpu-3"].last_seen == datetime.fromtimestamp(now - 1, timezone.utc)
    assert 'job="trayapp"' in server.queries[0]
    printed = table(got, now=datetime.fromtimestamp(now, timezone.utc))
    assert printed.splitlines()[0].startswith("fleet: red   (5 machines via http://127.0.0.1:")
    assert printed.splitlines()[1].split() == ["machine", "level", "worst", "rule", "last", "seen"]
    assert printed.splitlines()[2].split() == ["gpu-3", "red", "36", "h", "avg", "GPU", "0", "util", "94", "%", "1", "s", "ago"]
    # the gone machine falls out of last_over_time's hour: still listed, from what the reader saw
    server.by_query["recent"] = vector(now, ({"job": "trayapp", "instance": "gpu-3:9101"}, now))
    again = {m.name: m.level for m in reader.poll().machines}
    assert again["gone"] is Health.STALE and again["paused"] is Health.STALE
    # a day later (the server's clock): the machine that left the targets is forgotten, the others stay
    later = now + 86400 + 1300
    server.by_query = {"now": vector(later, *[(labels, value) for labels, value in
                                              ((r["metric"], float(r["value"][1])) for r in server.by_query["now"]["data"]["result"])]),
                       "recent": vector(later, ({"job": "trayapp", "instance": "gpu-3:9101"}, later))}
    assert {m.name for m in reader.poll().machines} == {"gpu-3", "laptop", "box", "paused"}


def test_hosts_shared_by_several_recorders_keep_their_ports(server) -> None:
    now = time.time()
    server.by_query = {"now": vector(now, up("127.0.0.1:9101", 1), up("127.0.0.1:9102", 1), up("gpu-1:9101", 1)),
                       "recent": vector(now)}
    names = sorted(m.name for m in FleetReader(server.url).poll().machines)
    assert names == ["127.0.0.1:9101", "127.0.0.1:9102", "gpu-1"]


@pytest.mark.parametrize(("status", "body", "headers", "said"), [
    (200, b"<html>Grafana</html>", {}, "did not answer as Prometheus' API does (not JSON"),
    (200, b'{"hello": "world"}', {}, "did not answer as Prometheus' API does (no status"),
    (200, b'{"status": "success", "data": {"resultType": "matrix", "result": []}}', {}, "something other than a vector"),
    (200, b"\xff\xfe\x00garbage", {}, "not JSON"),
    (400, b'{"status":"error","errorType":"bad_data","error":"parse error at char 3"}', {}, "refused the query (HTTP 400): parse error at char 3"),
    (200, b'{"status":"error","error":"query timed out in expression evaluation"}', {}, "refused the query: query timed out"),
    (401, b"", {}, "refused the login (HTTP 401)"),
    (403, b"forbidden", {}, "refused the login (HTTP 403)"),
    (404, b"404 page not found", {}, "has no Prometheus API (HTTP 404)"),
    (502, b"Bad Gateway", {}, "answered HTTP 502"),
    (302, b"", {"Location": "http://127.0.0.1:1/login"}, "redirects to http://127.0.0.1:1/login (HTTP 302)"),
])
def test_a_broken_answer_is_one_line_never_a_traceback(server, caplog, status, body, headers, said) -> None:
    server.status, server.body, server.headers = status, body, headers
    reader = FleetReader(server.url, token=TOKEN)
    with caplog.at_level(logging.INFO, logger="trayapp.fleet"):
        first, second = reader.poll(), reader.poll()
    assert said in first.error and "\n" not in first.error
    assert first.machines == () and first.lines() == [f"fleet: {first.error}"]
    assert second.error == first.error
    assert [r.getMessage() for r in caplog.records] == [f"fleet: {first.error}"]  # logged once, not per poll
    assert TOKEN not in first.error and TOKEN not in caplog.text
    if status == 302:
        assert len(server.queries) == 2  # the redirect was not followed with the login


def test_basic_auth_and_bearer_token_are_sent_and_a_wrong_one_is_refused(server, caplog) -> None:
    now = time.time()
    server.by_query = {"now": vector(now, up("gpu-1:9101", 1), *rule_series("gpu-1:9101", "cpu_percent", 0, 0.1)),
                       "recent": vector(now, ({"job": "trayapp", "instance": "gpu-1:9101"}, now))}
    server.wanted_auth = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    with caplog.at_level(logging.DEBUG):
        assert FleetReader(server.url, user="alice", password=SECRET).poll().worst is Health.OK
        refused = FleetReader(server.url, user="alice", password="wrong-password").poll()
        assert "refused the login (HTTP 401)" in refused.error
        server.wanted_auth = f"Bearer {TOKEN}"
        assert FleetReader(server.url, token=TOKEN).poll().worst is Health.OK
        assert "refused the login" in FleetReader(server.url).poll().error
    assert server.seen_auth[-1] is None  # no login set: none sent
    assert SECRET not in caplog.text and TOKEN not in caplog.text and "wrong-password" not in caplog.text


def test_a_slow_server_times_out_and_a_closed_port_is_refused(server) -> None:
    server.delay = 3.0
    slow = FleetReader(server.url, timeout=0.5).poll()
    assert slow.error == f"{server.url} did not answer within 0.5 s"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = FleetReader(f"http://127.0.0.1:{port}").poll()
    assert closed.error == f"cannot reach Prometheus at http://127.0.0.1:{port}: connection refused (is it running?)"


def test_a_server_that_hangs_up_mid_answer_is_one_line() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"status\": \"succ")
        conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    got = FleetReader(f"http://127.0.0.1:{listener.getsockname()[1]}").poll()
    listener.close()
    assert got.error and "\n" not in got.error and got.machines == ()


@pytest.mark.parametrize(("url", "said"), [
    ("prometheus:9090", "must start with http:// or https://"),
    ("ftp://prometheus", "must start with http:// or https://"),
    ("http://alice:pw@prometheus:9090", "holds a user or password"),
    ("http://", "names no host"),
    ("http://prometheus:port", "not a URL"),
    ("http://prometheus:9090/?query=up", "without ?query"),
])
def test_a_wrong_url_is_one_line_in_the_settings_and_in_the_reader(url: str, said: str) -> None:
    warnings: list[str] = []
    config = validate({"fleet": {"url": url}}, warnings)
    assert config.fleet_url == ""  # not used: the default, this machine only
    assert len(warnings) == 1 and said in warnings[0] and warnings[0].startswith("config: [fleet] url")
    got = FleetReader(url).poll()
    assert said in got.error and got.machines == ()
    if "pw@" in url:
        assert "pw" not in warnings[0].split("url", 1)[1].split(":", 1)[0]


def test_fleet_settings_are_checked_and_secrets_stay_out_of_the_file_in_the_clear(tmp_path: Path, monkeypatch) -> None:
    warnings: list[str] = []
    config = validate({"fleet": {"url": "https://prom.example:9090/", "interval": "0.2s", "scope": "everything",
                                 "token": TOKEN, "user": "alice", "verify_tls": False}}, warnings)
    assert config.fleet_url == "https://prom.example:9090"
    assert (config.fleet_interval, config.fleet_scope, config.fleet_token) == ("30s", "fleet too", TOKEN)
    assert any("[fleet] interval = '0.2s': must be at least 1s" in w for w in warnings)
    assert any("[fleet] scope = 'everything': must be one of this machine, fleet too" in w for w in warnings)
    assert any("both a token and a user" in w for w in warnings)
    assert any("verify_tls = false" in w for w in warnings)
    assert not any(TOKEN in w for w in warnings)
    spaced = validate({"fleet": {"password": "correct horse battery", "token": "two\nlines"}}, warnings := [])
    assert spaced.fleet_password == "correct horse battery" and spaced.fleet_token == ""  # a passphrase is fine, a newline is not
    assert warnings == ["config: [fleet] token (a text, not shown): must be one line of printable characters; using ''"]
    monkeypatch.setenv("TRAYAPP_NO_KEYRING", "1")  # no keyring here: the file holds it, 0600
    path = tmp_path / "config.toml"
    save(config.with_values(fleet_password=SECRET, fleet_user="", fleet_token=""), path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    back = load(path).config
    assert (back.fleet_url, back.fleet_password, back.fleet_verify_tls) == ("https://prom.example:9090", SECRET, False)


# ------------------------------------------------------------------- a real Prometheus, three real recorders


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.recorders: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.server: subprocess.Popen | None = None
        self.url = ""

    def start_recorder(self, name: str, cpu: float) -> None:
        folder = self.tmp / name
        now = datetime.now(timezone.utc)
        from trayapp.synthetic import write_history

        write_history(folder / "data", now - timedelta(hours=36), now, 60, {"cpu_percent": cpu, "memory_percent": 30.0, "disk_percent": 40.0})
        port = free_port()
        (folder / "config.toml").write_text(f"[prometheus]\nenabled = true\nport = {port}\n")
        self.ports[name] = port
        with open(folder / "stderr.txt", "w") as stderr:  # the child keeps its own copy: a pipe nobody reads would fill
            self.recorders[name] = subprocess.Popen(
                trayapp_cmd("--config", str(folder / "config.toml"), "--data-dir", str(folder / "data"), "run", "--headless", "--interval", "1"),
                stdout=subprocess.DEVNULL, stderr=stderr)

    def start_prometheus(self) -> None:
        prom_dir = self.tmp / "prom"
        prom_dir.mkdir()
        targets = ", ".join(f'"127.0.0.1:{p}"' for p in self.ports.values())
        (prom_dir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}\n"
            f"scrape_configs:\n  - job_name: trayapp\n    static_configs:\n      - targets: [{targets}]\n")
        port = free_port()
        self.server = subprocess.Popen([debian_tool("prometheus", "prometheus"), f"--config.file={prom_dir / 'prometheus.yml'}",
                                        f"--storage.tsdb.path={prom_dir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                                       cwd=prom_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"

    def stop(self, proc: subprocess.Popen | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def name(self, recorder: str) -> str:
        return f"127.0.0.1:{self.ports[recorder]}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    debian_tool("prometheus", "prometheus")
    pytest.importorskip("prometheus_client")
    running = Fleet(tmp_path_factory.mktemp("fleet"))
    try:
        for name, cpu in (("ok", 30.0), ("orange", 85.0), ("red", 95.0)):
            running.start_recorder(name, cpu)
        running.start_prometheus()
        yield running
    finally:
        running.stop(running.server)
        for proc in running.recorders.values():
            running.stop(proc)


def wait_for(reader: FleetReader, wanted, seconds: float = 60.0) -> FleetState:
    deadline = time.monotonic() + seconds
    got = reader.poll()
    while not wanted(got) and time.monotonic() < deadline:
        time.sleep(0.5)
        got = reader.poll()
    return got


def levels(got: FleetState) -> dict[str, Health]:
    return {m.name: m.level for m in got.machines}


@pytest.mark.slow  # a real Prometheus server and three recorders
def test_a_real_prometheus_shows_three_recorders_at_ok_orange_and_red(fleet: Fleet, tmp_path: Path) -> None:
    reader = FleetReader(fleet.url)
    wanted = {fleet.name("ok"): Health.OK, fleet.name("orange"): Health.ORANGE, fleet.name("red"): Health.RED}
    got = wait_for(reader, lambda g: levels(g) == wanted)
    assert levels(got) == wanted, (got, [p.poll() for p in fleet.recorders.values()])
    assert got.worst is Health.RED
    red = got.machines[0]
    assert red.name == fleet.name("red") and red.reason.startswith("36 h avg CPU 9") and red.reason.endswith(" %")
    assert red.last_seen is not None and abs((datetime.now(timezone.utc) - red.last_seen).total_seconds()) < 120
    # the command line prints the same table, and the JSON of it
    config = tmp_path / "config.toml"
    config.write_text(f'[fleet]\nurl = "{fleet.url}"\n')
    shown = subprocess.run(trayapp_cmd("--config", str(config), "status", "--fleet"), capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"fleet: red   (3 machines via {fleet.url})")
    assert lines[1].split() == ["machine", "level", "worst", "rule", "last", "seen"]
    assert lines[2].split()[:2] == [fleet.name("red"), "red"] and lines[4].split()[:2] == [fleet.name("ok"), "ok"]
    as_json = subprocess.run(trayapp_cmd("--config", str(config), "status", "--fleet", "--json", "--exit-code"),
                             capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 2, as_json.stderr  # red, as a Nagios plugin says it
    answer = json.loads(as_json.stdout)
    assert answer["level"] == "red" and {m["machine"]: m["level"] for m in answer["machines"]} == {k: v.value for k, v in wanted.items()}
    assert answer["machines"][0]["rules"][0]["metric"] == "cpu_percent"


# ------------------------------------------------------------------- the tray app


def start_app(qtbot, tmp_path: Path, url: str, cpu: float = 30.0, scope: str = SCOPE_FLEET):
    from trayapp.gui.app import TrayApp
    from trayapp.settings import Config, Loaded
    from trayapp.synthetic import write_history

    data_dir = tmp_path / "local"
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=36), now, 60, {"cpu_percent": cpu, "memory_percent": 30.0, "disk_percent": 40.0})
    config = Config(sampling_interval_seconds=0.2, fleet_url=url, fleet_interval="1s", fleet_scope=scope)
    app = TrayApp(Loaded(config, tmp_path / "config.toml", []), data_dir, tmp_path / "config.toml")
    shown: list[tuple[str, str]] = []
    app.tray.showMessage = lambda title, text, *rest: shown.append((title, text))
    with qtbot.waitSignal(app.tick_shown, timeout=20000):
        app.start()
    app.notifier = None  # Qt's tray messages, recorded above, whatever the desktop offers
    return app, shown


@pytest.mark.slow  # over a second or two: `make test-all`
def test_the_tray_app_shows_a_remote_red_with_a_badge_notifies_once_and_goes_on_without_prometheus(qtbot, server, tmp_path: Path) -> None:
    now = time.time()
    server.by_query = {"now": vector(now, up("gpu-3:9101", 1), up("laptop:9101", 1),
                                     *rule_series("gpu-3:9101", "gpu0_util_percent", 2, 0.94),
                                     *rule_series("laptop:9101", "cpu_percent", 0, 0.31)),
                       "recent": vector(now, ({"job": "trayapp", "instance": "gpu-3:9101"}, now), ({"job": "trayapp", "instance": "laptop:9101"}, now))}
    app, shown = start_app(qtbot, tmp_path, server.url)
    try:
        qtbot.waitUntil(lambda: app.fleet_state is not None and not app.fleet_state.error, timeout=10000)
        assert app.last.level is Level.OK  # this machine
        assert app._icon_key[4:] == (Level.RED, True)  # the icon: red, badged as another machine's
        tip = app.tray.toolTip()
        assert "gpu-3: red — 36 h avg GPU 0 util 94 %" in tip and "laptop: ok — 36 h avg CPU 31 %" in tip
        assert tip.startswith("trayapp — ok")
        polls = len(server.queries)
        qtbot.waitUntil(lambda: len(server.queries) >= polls + 6, timeout=15000)  # two more polls (3 queries each): no news, no notification
        assert [title for title, _ in shown] == ["gpu-3 red"]
        server.by_query["now"]["data"]["result"] = [r for r in server.by_query["now"]["data"]["result"]
                                                    if r["metric"].get("instance") != "gpu-3:9101" or r["metric"]["__name__"] == "up"]
        server.by_query["now"]["data"]["result"] += [{"metric": {"__name__": "trayapp_rule_level", "job": "trayapp", "instance": "gpu-3:9101",
                                                                 "metric": "gpu0_util_percent", "window": "36h"}, "value": [now, "0"]}]
        qtbot.waitUntil(lambda: len(shown) == 2, timeout=10000)
        assert shown[1][0] == "gpu-3 back to ok"
        qtbot.waitUntil(lambda: app._icon_key[4:] == (Level.OK, False), timeout=5000)
        # a server that answers slowly holds only the poller: the samples keep coming
        server.delay = 4.0
        for _ in range(5):
            qtbot.waitSignal(app.tick_shown, timeout=5000).wait()
        server.delay = 0.0
        # Prometheus gone: one line in the tooltip, this machine's monitoring as before
        server.by_query = {}
        server.status, server.body = 503, b"Service Unavailable"
        qtbot.waitUntil(lambda: app.fleet_state is not None and bool(app.fleet_state.error), timeout=40000)  # after the slow poll
        with qtbot.waitSignal(app.tick_shown, timeout=5000):
            pass
        tip = app.tray.toolTip()
        assert tip.splitlines()[-1] == f"fleet: {server.url} answered HTTP 503 Service Unavailable"
        assert "gpu-3" not in tip and tip.startswith("trayapp — ok")
        assert app._icon_key[4:] == (Level.OK, False) and len(shown) == 2
        # this machine only: the fleet is listed but does not colour the icon
        app.apply(app.config.with_values(fleet_scope=SCOPE_THIS_MACHINE))
        assert app.fleet.running
        app.apply(app.config.with_values(fleet_url=""))
        assert not app.fleet.running and app.fleet_state is None and "fleet" not in app.tray.toolTip()
    finally:
        app.shutdown()


@pytest.mark.slow  # a real Prometheus server and three recorders
def test_the_tray_app_pointed_at_a_real_prometheus_shows_red_with_all_three(qtbot, fleet: Fleet, tmp_path: Path) -> None:
    app, shown = start_app(qtbot, tmp_path, fleet.url)
    try:
        qtbot.waitUntil(lambda: app.fleet_state is not None and len(app.fleet_state.machines) == 3
                        and {m.level for m in app.fleet_state.machines} == {Health.OK, Health.ORANGE, Health.RED}, timeout=60000)
        assert app._icon_key[4:] == (Level.RED, True)
        tip = app.tray.toolTip().splitlines()
        assert tip[-3].startswith(f"{fleet.name('red')}: red — 36 h avg CPU 9")
        assert tip[-2].startswith(f"{fleet.name('orange')}: orange — 36 h avg CPU 8")
        assert tip[-1].startswith(f"{fleet.name('ok')}: ok — 36 h avg CPU ")
        assert [title.split(", ") for title, _ in shown][-1] == [f"{fleet.name('red')} red", f"{fleet.name('orange')} orange"]
    finally:
        app.shutdown()


@pytest.mark.slow  # a real Prometheus server and three recorders
def test_a_remote_machines_samples_from_query_range_are_its_own_exported_samples(fleet: Fleet) -> None:
    from trayapp.fleet import Prometheus, remote_samples

    server = Prometheus(fleet.url)
    instance = fleet.name("red")
    end = time.time()
    stamps, columns = remote_samples(server, instance, "trayapp", end - 600, end)
    deadline = time.monotonic() + 30
    while len(stamps) < 5 and time.monotonic() < deadline:  # a fresh server: a few scrapes first
        time.sleep(1)
        end = time.time()
        stamps, columns = remote_samples(server, instance, "trayapp", end - 600, end)
    assert len(stamps) >= 5, (stamps, columns)
    assert {"cpu_percent", "memory_percent", "disk_percent"} <= set(columns)
    exported = subprocess.run(trayapp_cmd("--config", str(fleet.tmp / "red" / "config.toml"), "--data-dir", str(fleet.tmp / "red" / "data"),
                                          "export", "--since", "15m", "--format", "json"), capture_output=True, text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    rows = {round(datetime.fromisoformat(r["timestamp"]).timestamp(), 6): r for r in json.loads(exported.stdout)}
    for i, stamp in enumerate(stamps):
        row = rows[round(stamp, 6)]  # every step shows a sample the machine recorded, at its own time
        for column in ("cpu_percent", "memory_percent", "disk_percent"):
            assert columns[column][i] == pytest.approx(row[column], rel=1e-9, abs=1e-9), (column, stamp)
    assert stamps == sorted(set(stamps))


# the last of the real fleet's tests: it kills a recorder and stops the server
@pytest.mark.slow  # a real Prometheus server and three recorders
def test_a_killed_recorder_is_down_within_two_polls_and_a_stopped_prometheus_is_one_line(fleet: Fleet, caplog) -> None:
    reader = FleetReader(fleet.url)
    got = wait_for(reader, lambda g: len(g.machines) == 3 and all(m.level is not Health.UNKNOWN for m in g.machines))
    assert len(got.machines) == 3, got
    fleet.recorders["ok"].kill()  # kill -9: no goodbye
    fleet.recorders["ok"].wait()
    scrape_interval = 1.0
    polls = []
    for _ in range(2):  # two polls at the scrape interval (the tray app polls at 30 s, scrapes come every 15 s)
        time.sleep(scrape_interval * 2)
        polls.append(reader.poll())
    assert levels(polls[-1])[fleet.name("ok")] is Health.DOWN, polls
    assert levels(polls[-1])[fleet.name("red")] is Health.RED
    down = next(m for m in polls[-1].machines if m.name == fleet.name("ok"))
    assert down.line().startswith(f"{fleet.name('ok')}: down — down: Prometheus cannot scrape its recorder")
    fleet.stop(fleet.server)
    with caplog.at_level(logging.INFO, logger="trayapp.fleet"):
        gone = [reader.poll() for _ in range(3)]
    assert gone[0].error == f"cannot reach Prometheus at {fleet.url}: connection refused (is it running?)"
    assert [r.getMessage() for r in caplog.records] == [f"fleet: {gone[0].error}"]
    # a recorder kept recording all along: local monitoring does not depend on Prometheus
    assert fleet.recorders["red"].poll() is None


# ------------------------------------------------------------------- the icon, the dialog, the command line


def test_the_remote_badge_sits_bottom_right_and_leaves_the_rest(qapp) -> None:
    import numpy as np

    from trayapp.gui import icon as tray_icon

    def pixels(**kw) -> "np.ndarray":
        image = tray_icon.render(Level.RED, size=48, **kw)
        return np.frombuffer(bytes(image.constBits()), dtype=np.uint8).reshape(48, 48, 4).astype(int)

    plain, remote = pixels(), pixels(remote=True)
    assert np.abs(plain[24:, 24:] - remote[24:, 24:]).mean() > 20  # a badge bottom right
    assert np.array_equal(plain[:24], remote[:24]) and np.array_equal(plain[:, :24], remote[:, :24])
    assert tray_icon.icon(Level.RED, None, remote=True) is not tray_icon.icon(Level.RED, None)


def test_the_machines_tab_checks_the_url_warns_about_tls_and_saves(qtbot, tmp_path: Path) -> None:
    from trayapp.gui.settings_dialog import SettingsDialog
    from trayapp.settings import Config

    path = tmp_path / "config.toml"
    dialog = SettingsDialog(Config(), path, tmp_path / "data")
    qtbot.addWidget(dialog)
    tabs = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert "Machines" in tabs
    url, tls = dialog.editors["fleet.url"].widget, dialog.editors["fleet.verify_tls"].widget
    assert dialog.editors["fleet.password"].widget.echoMode() == dialog.editors["fleet.password"].widget.EchoMode.Password
    url.setText("http://alice:pw@prom:9090")
    assert not dialog.ok_button.isEnabled()
    assert "holds a user or password" in dialog.editors["fleet.url"].error.text()
    url.setText("https://prom.example:9090")
    tls.setChecked(False)
    assert not dialog.tls_warning.isHidden()  # verification off for an https URL: said beside the box
    tls.setChecked(True)
    assert dialog.tls_warning.isHidden()
    dialog.editors["fleet.scope"].widget.setCurrentText("this machine")
    dialog.editors["fleet.token"].widget.setText(TOKEN)
    dialog.editors["fleet.interval"].widget.setText("10s")
    assert dialog.ok_button.isEnabled()
    with qtbot.waitSignal(dialog.applied) as applied:
        dialog.accept()
    config = applied.args[0]
    assert (config.fleet_url, config.fleet_scope, config.fleet_token, config.fleet_interval) == (
        "https://prom.example:9090", "this machine", TOKEN, "10s")
    back = load(path)
    assert back.warnings == [] and back.config.fleet_token == TOKEN and back.config.fleet_url == "https://prom.example:9090"


def test_status_fleet_says_one_line_without_a_server_or_when_it_fails(server, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    none = subprocess.run(trayapp_cmd("--config", str(config), "status", "--fleet"), capture_output=True, text=True, timeout=60)
    assert (none.returncode, none.stdout) == (1, "")
    assert none.stderr == "trayapp: no Prometheus server to ask: set [fleet] url in the config (or Settings → Machines)\n"
    config.write_text(f'[fleet]\nurl = "{server.url}"\ntoken = "{TOKEN}"\n')
    server.status, server.body = 401, b"no"
    refused = subprocess.run(trayapp_cmd("--config", str(config), "status", "--fleet", "--json", "--exit-code"),
                             capture_output=True, text=True, timeout=60)
    assert (refused.returncode, refused.stdout) == (3, "")  # --exit-code: "could not tell"
    assert refused.stderr.startswith(f"trayapp: fleet: {server.url} refused the login (HTTP 401)")
    assert len(refused.stderr.splitlines()) == 1 and "Traceback" not in refused.stderr
    assert server.seen_auth[-1] == f"Bearer {TOKEN}" and TOKEN not in refused.stderr


def test_a_self_signed_certificate_is_refused_unless_verification_is_off_for_that_url(server, tmp_path: Path, caplog) -> None:
    import ssl

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    now = time.time()
    server.by_query = {"now": vector(now, up("gpu-1:9101", 1), *rule_series("gpu-1:9101", "cpu_percent", 1, 0.85)),
                       "recent": vector(now, ({"job": "trayapp", "instance": "gpu-1:9101"}, now))}
    # the same answers over TLS: a second listener wrapping the fixture's handler
    from http.server import ThreadingHTTPServer as Server

    plain_port = int(server.url.rsplit(":", 1)[1])

    class Relay(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{plain_port}{self.path}", timeout=10) as answer:
                body = answer.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    tls = Server(("127.0.0.1", 0), Relay)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    thread = threading.Thread(target=tls.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{tls.server_address[1]}"
    try:
        refused = FleetReader(url, token=TOKEN).poll()
        assert refused.error.startswith(f"{url}: its TLS certificate is not trusted (")
        assert "turn TLS verification off for this URL" in refused.error
        with caplog.at_level(logging.WARNING, logger="trayapp.fleet"):
            trusted = FleetReader(url, token=TOKEN, verify_tls=False).poll()
        assert trusted.error == "" and trusted.worst is Health.ORANGE
        assert f"fleet: TLS certificates of {url} are not verified (turned off in the settings)" in caplog.text
    finally:
        tls.shutdown()
        tls.server_close()


def test_a_large_fleet_stays_a_readable_tooltip_and_notification() -> None:
    big = state(*([Health.RED] * 2 + [Health.OK] * 20))
    lines = big.lines()
    assert len(lines) == 13 and lines[-1] == "… and 10 more: trayapp status --fleet"
    title, text = notification(changes({}, state(*([Health.DOWN] * 5))))
    assert title == "m0 down, m1 down, m2 down, 2 more" and len(text.splitlines()) == 5


def test_doctor_says_whether_the_fleet_can_be_read(server, tmp_path: Path) -> None:
    now = time.time()
    server.by_query = {"now": vector(now, up("gpu-1:9101", 1), *rule_series("gpu-1:9101", "cpu_percent", 2, 0.95)),
                       "recent": vector(now, ({"job": "trayapp", "instance": "gpu-1:9101"}, now))}
    config = tmp_path / "config.toml"

    def doctor() -> list[str]:
        done = subprocess.run(trayapp_cmd("--config", str(config), "--data-dir", str(tmp_path / "data"), "doctor"),
                              capture_output=True, text=True, timeout=120, env={**os.environ, "DISPLAY": ""})
        return [line for line in done.stdout.splitlines() if line[5:].startswith("fleet")]

    config.write_text("")
    assert doctor() == ["--   fleet      off (no [fleet] url: the tray shows this machine only)"]
    config.write_text(f'[fleet]\nurl = "{server.url}"\n')
    assert doctor() == [f"ok   fleet      1 machine via {server.url} (job 'trayapp'), the worst red"]
    server.by_query, server.status, server.body = {}, 403, b"no"
    (line,) = doctor()
    assert line.startswith(f"FAIL fleet      {server.url} refused the login (HTTP 403)")


def test_polling_the_fleet_loads_neither_arrow_nor_pandas(server) -> None:
    now = time.time()
    server.by_query = {"now": vector(now, up("gpu-1:9101", 1), *rule_series("gpu-1:9101", "cpu_percent", 2, 0.95)),
                       "recent": vector(now, ({"job": "trayapp", "instance": "gpu-1:9101"}, now))}
    code = ("import sys\nfrom trayapp.fleet import FleetReader, remote_samples, Prometheus\nimport trayapp.gui.machines\n"
            f"state = FleetReader({server.url!r}).poll()\nassert state.worst.value == 'red', state\n"
            "print(sorted(m for m in ('pyarrow', 'pandas') if m in sys.modules))\n")
    done = subprocess.run([*trayapp_cmd()[:1], "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_a_recorder_that_samples_slowly_is_stale_only_after_three_of_its_intervals(server) -> None:
    now = time.time()
    machines = {"slow:9101": now - 900, "slower:9101": now - 2400, "paused:9101": now - 400}
    server.by_query = {
        "now": vector(now, *[up(i, 1) for i in machines], *[s for i in machines for s in rule_series(i, "cpu_percent", 0, 0.2)]),
        "recent": vector(now, *[({"job": "trayapp", "instance": i}, t) for i, t in machines.items()]),
        # over 6 hours: 36 new samples (every 10 min) for two of them; none for the one paused 6 h ago
        "pace": vector(now, ({"job": "trayapp", "instance": "slow:9101"}, 36), ({"job": "trayapp", "instance": "slower:9101"}, 36),
                       ({"job": "trayapp", "instance": "paused:9101"}, 0)),
    }
    got = levels(FleetReader(server.url).poll())
    assert got == {"slow": Health.OK, "slower": Health.STALE, "paused": Health.STALE}


def test_the_fleet_password_and_token_go_to_the_os_keyring_as_the_slack_secrets_do(tmp_path: Path, monkeypatch) -> None:
    import keyring

    from tests.test_settings import MemoryKeyring
    from trayapp.settings import Config

    ring = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(ring)
    monkeypatch.delenv("TRAYAPP_NO_KEYRING")
    try:
        path = tmp_path / "config.toml"
        config = Config(fleet_url="https://prom.example:9090", fleet_user="alice", fleet_password=SECRET)
        save(config, path)
        text = path.read_text()
        assert SECRET not in text and 'user = "alice"' in text
        assert ring.items[("trayapp", "fleet.password")] == SECRET
        assert load(path).config == config  # read back from the keyring
        save(config.with_values(fleet_password="", fleet_token=TOKEN), path)
        assert ("trayapp", "fleet.password") not in ring.items and ring.items[("trayapp", "fleet.token")] == TOKEN
        assert TOKEN not in path.read_text() and load(path).config.fleet_token == TOKEN
    finally:
        keyring.set_keyring(previous)
