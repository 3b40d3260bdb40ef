"""A real HTTP server on 127.0.0.1 that answers like Slack: an incoming webhook and chat.postMessage.

Each path has a queue of scripted answers (then 200 ok); every request is recorded with its arrival
time (``time.monotonic()``), so tests can check the gaps between requests as the server saw them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote


@dataclass
class Answer:
    status: int = 200
    body: str | dict = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without answering
    echo: bool | str = False  # put the request's path and Authorization header in the body, as some servers do;
    # or only part of the path, in another form: "last" (its last segment), "upper" (that in capitals),
    # "urlenc" (the path URL-encoded), "json" (the whole URL JSON-escaped: https:\/\/…)


class FakeSlack:
    TOKEN = "xoxb-test-token-123"

    def __init__(self, port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []  # every request: path, arrival time, status answered
        self.script: dict[str, deque[Answer]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._port = port
        self.server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def port(self) -> int:
        return self._port

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/services/T000/B000/secretpart"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/"

    def then(self, path: str, *answers: Answer) -> None:
        with self._lock:
            self.script[path].extend(answers)

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                path = self.path.split("?")[0]
                with fake._lock:
                    queue = fake.script.get(path) or fake.script.get("*")
                    answer = queue.popleft() if queue else None
                if answer is None:
                    answer = Answer(200, {"ok": True, "ts": str(time.time())} if "/api/" in path else "ok")
                with fake._lock:
                    fake.requests.append({"path": path, "at": time.monotonic(), "status": answer.status})
                if answer.echo:
                    last = self.path.rsplit("/", 1)[-1]
                    said = {
                        "last": f"no such hook: {last}",
                        "upper": f"unknown webhook {last.upper()}",
                        "urlenc": f"no_service: {quote(self.path, safe='')}",
                        "json": json.dumps({"error": "bad", "url": "https://hooks.slack.com" + self.path}).replace("/", "\\/"),
                    }.get(answer.echo, f"no such hook {self.path} (auth={self.headers.get('Authorization')})")
                    answer = Answer(answer.status, said, answer.headers)  # plain text, not Slack's JSON
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if "json" in (self.headers.get("Content-Type") or ""):
                    payload = json.loads(raw or "{}")
                else:
                    payload = {k: v[0] for k, v in parse_qs(raw).items()}
                if answer.status == 200 and (answer.body == "ok" or (isinstance(answer.body, dict) and answer.body.get("ok"))):
                    if "/api/" in path and self.headers.get("Authorization") != f"Bearer {FakeSlack.TOKEN}":
                        answer = Answer(200, {"ok": False, "error": "invalid_auth"})
                    else:
                        with fake._lock:
                            fake.received.append({"path": path, "payload": payload, "at": time.time()})
                body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
                self.send_response(answer.status)
                self.send_header("Content-Type", "text/plain" if isinstance(answer.body, str) else "application/json")
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self.server.daemon_threads = True
        self._port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r["payload"] for r in self.received]
