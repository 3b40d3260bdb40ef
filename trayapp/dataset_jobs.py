"""Dataset work for a long-running recorder, done in a short-lived child process.

Imports numpy and the standard library here; the child imports the store, pyarrow and pandas.
pyarrow loads pandas on its first conversion, and a process keeps both (~100 MB) for good once
loaded; the recorder only needs them at start-up (rollover, seeding the rule windows) and at
midnight, so it hands that work to a child (about a second each time) and stays small.

The parent holds the data folder's writer lock and has closed its CSV handle while a job runs.
A job goes to the child as JSON on stdin; the answer comes back as an ``.npz`` on stdout (arrays
plus a ``meta`` JSON); a failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timezone
from typing import Any

import numpy as np


class JobFailed(Exception):
    """The child could not do the job; the message is its one line."""


def child_command() -> list[str]:
    if getattr(sys, "frozen", False):  # a PyInstaller build: sys.executable is trayapp itself
        return [sys.executable, "dataset-job"]
    return [sys.executable, "-m", "trayapp.cli", "dataset-job"]


def run(job: dict[str, Any], timeout: float = 600.0) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Run one job in a child; returns (meta, arrays). Raises JobFailed."""
    try:
        done = subprocess.run(child_command(), input=json.dumps(job).encode(), capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JobFailed(f"dataset job {job.get('job')!r} could not run: {exc}") from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise JobFailed(lines[-1] if lines else f"dataset job {job.get('job')!r} failed ({done.returncode})")
    meta, arrays = _decode(done.stdout)
    for line in done.stderr.decode(errors="replace").splitlines():  # the child's warnings, passed on
        if line.strip():
            print(line, file=sys.stderr)
    return meta, arrays


# ---------------------------------------------------------------- in the child


def _maintain(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Rollover and retention; with ``seed`` in the job, the seed arrays too (one child at start)."""
    from trayapp.store import Store

    store = Store(job["data_dir"], int(job.get("retention_days", 0)))
    min_day = store.maintain(date.fromisoformat(job["today"]))
    meta: dict[str, Any] = {"min_day": min_day.isoformat() if min_day else None}
    if not job.get("seed"):
        return meta, {}
    seed_meta, arrays = _seed({"data_dir": job["data_dir"], **job["seed"]})
    return {**meta, **seed_meta}, arrays


def _seed(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from trayapp.store import Store

    t, columns = Store(job["data_dir"]).arrays(
        datetime.fromisoformat(job["start"]), datetime.fromisoformat(job["end"]), job["metrics"]
    )
    return {"metrics": list(columns)}, {"t": t, **{f"m_{name}": v for name, v in columns.items()}}


def seed_result(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The (epoch seconds, {metric: values}) a seed job sent back."""
    return arrays["t"], {name: arrays[f"m_{name}"] for name in meta["metrics"]}


def _history(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from trayapp.history_data import prepare_history

    window = {k: datetime.fromtimestamp(float(job[k]), timezone.utc) for k in ("start", "end") if job.get(k) is not None}
    series = prepare_history(job["data_dir"], float(job["span"]), now=window.get("end"), start=window.get("start"))
    return series.to_arrays()


JOBS = {"maintain": _maintain, "seed": _seed, "history": _history}


def _encode(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    np.savez(out, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    return out.getvalue()


def _decode(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return json.loads(arrays.pop("meta").tobytes().decode()), arrays


def main(serve: bool = False) -> int:
    """The child: one job from stdin, the answer to stdout; with ``serve``, one job per line,
    each answer as an 8-byte length and the archive (an error: length 0 and a line on stderr)."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="trayapp: %(message)s", stream=sys.stderr)
    if serve:  # load Arrow now, while the parent builds its window, not on the first request
        import trayapp.history_data  # noqa: F401
        import pyarrow.compute  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    lines = iter(sys.stdin.readline, "") if serve else [sys.stdin.read()]
    for line in lines:
        try:
            job = json.loads(line)
            answer = _encode(*JOBS[job["job"]](job))
        except Exception as exc:  # one line for the parent, which decides what the user sees
            print(f"dataset job failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            if not serve:
                return 1
            answer = b""
        if serve:
            sys.stdout.buffer.write(struct.pack("<Q", len(answer)))
        sys.stdout.buffer.write(answer)
        sys.stdout.buffer.flush()
    return 0


class Reader:
    """A child that stays up while it is used (the history window), so switching ranges is
    quick, and goes away ``idle_seconds`` after the last request, so the app gets small again.
    Thread-safe; every request may come from a worker thread."""

    def __init__(self, idle_seconds: float = 300.0) -> None:
        self.idle_seconds = idle_seconds
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._last = 0.0

    def request(self, job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        with self._lock:
            for attempt in (1, 2):
                try:
                    return self._ask(job)
                except (OSError, EOFError) as exc:  # the child died (killed, crashed): start anew once
                    self._stop()
                    if attempt == 2:
                        raise JobFailed(f"the history reader stopped: {exc}") from None
            raise AssertionError("unreachable")

    def start(self) -> None:
        """Start the child now (it loads Arrow meanwhile); requests would start it anyway."""
        with self._lock:
            self._spawn()

    def _spawn(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._stop()  # it died since the last request: close its pipes
        if self._proc is None:
            self._proc = subprocess.Popen([*child_command(), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self._last = time.monotonic()

    def _ask(self, job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._spawn()
        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(job).encode() + b"\n")
        self._proc.stdin.flush()
        head = self._proc.stdout.read(8)
        if len(head) < 8:
            raise EOFError("no answer")
        (size,) = struct.unpack("<Q", head)
        if size == 0:
            raise JobFailed(f"dataset job {job.get('job')!r} failed (see the log)")
        data = self._proc.stdout.read(size)
        if len(data) < size:
            raise EOFError("a short answer")
        self._last = time.monotonic()
        return _decode(data)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close_if_idle(self) -> bool:
        with self._lock:
            if self.running and time.monotonic() - self._last >= self.idle_seconds:
                self._stop()
                return True
            return False

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # end of input: the child's loop ends
            proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
