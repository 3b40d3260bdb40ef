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
import subprocess
import sys
from datetime import date, datetime
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
    with np.load(io.BytesIO(done.stdout), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays.pop("meta").tobytes().decode())
    for line in done.stderr.decode(errors="replace").splitlines():  # the child's warnings, passed on
        if line.strip():
            print(line, file=sys.stderr)
    return meta, arrays


# ---------------------------------------------------------------- in the child


def _maintain(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from trayapp.store import Store

    store = Store(job["data_dir"], int(job.get("retention_days", 0)))
    min_day = store.maintain(date.fromisoformat(job["today"]))
    return {"min_day": min_day.isoformat() if min_day else None}, {}


def _seed(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from trayapp.store import Store

    t, columns = Store(job["data_dir"]).arrays(
        datetime.fromisoformat(job["start"]), datetime.fromisoformat(job["end"]), job["metrics"]
    )
    return {"metrics": list(columns)}, {"t": t, **{f"m_{name}": v for name, v in columns.items()}}


JOBS = {"maintain": _maintain, "seed": _seed}


def main() -> int:
    """The child: one job from stdin, the answer to stdout."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="trayapp: %(message)s", stream=sys.stderr)
    try:
        job = json.loads(sys.stdin.read())
        meta, arrays = JOBS[job["job"]](job)
    except Exception as exc:  # one line for the parent, which decides what the user sees
        print(f"dataset job failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    out = io.BytesIO()
    np.savez(out, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    sys.stdout.buffer.write(out.getvalue())
    sys.stdout.buffer.flush()
    return 0
