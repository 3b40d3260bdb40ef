"""The dataset work a long-running recorder hands to a short-lived child process (start-up,
seeding the rule windows, a midnight it cannot do itself), and the child's side of it.

Imports the writer and the readers (no Arrow at import) and the standard library; the child loads
pyarrow. A process keeps Arrow for good once it is loaded; a recorder needs it only at start-up and
at some midnights, so it hands that work to a child and stays small: ``Store(..., jobs=run_job)``.

The parent holds the data folder's writer lock and has closed its CSV handle while a job runs.
A job goes to the child as JSON on stdin; the answer comes back as an ``.npz`` on stdout (arrays
plus a ``meta`` JSON); a failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import ctypes
import io
import json
import logging
import os
import signal
import subprocess
import sys
from datetime import date, datetime
from typing import Any

import numpy as np

from trayapp import self_command

from trayapp.heap import hold_little, release_memory
from trayapp.storage.bins import stack_bins
from trayapp.storage.csv_file import parse_csv
from trayapp.storage.ranges import csv_minutes, samples
from trayapp.storage.rows_file import write_rows
from trayapp.storage.writer import JobFailed, Store, pack_samples

log = logging.getLogger("trayapp.storage")


def child_command() -> list[str]:
    return [*self_command(), "dataset-job"]


def run_job(job: dict[str, Any], timeout: float = 600.0) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Run one job in a child; returns (meta, arrays). Raises JobFailed."""
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    try:
        done = subprocess.run(child_command(), input=json.dumps(job).encode(), capture_output=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JobFailed(f"dataset job {job.get('job')!r} could not run: {exc}") from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise JobFailed(lines[-1] if lines else f"dataset job {job.get('job')!r} failed ({done.returncode})")
    meta, arrays = _decode(done.stdout)
    for line in done.stderr.decode(errors="replace").splitlines():  # the child's warnings, into this log (and its file)
        if line.strip():
            log.warning("%s", line.removeprefix("trayapp: "))
    return meta, arrays


def run_job_unless_loaded(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``run``, or the job right here when this process has Arrow loaded already (the tray app
    once its window has read history): a child would only add its own Arrow beside it."""
    if "pyarrow.parquet" not in sys.modules:
        return run_job(job)
    try:
        return JOBS[job["job"]](job)
    except Exception as exc:  # the same one line a child would give
        raise JobFailed(f"dataset job failed: {type(exc).__name__}: {exc}") from None
    finally:

        release_memory()  # a day's rollover and tiers read a lot: none of it stays with the app


# ---------------------------------------------------------------- in the child


def _maintain(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Rollover and retention; with ``seed`` in the job, the seed arrays too (one child at start)."""
    store = Store(job["data_dir"], int(job.get("retention_days", 0)))
    min_day = store.maintain(date.fromisoformat(job["today"]))
    meta: dict[str, Any] = {"min_day": min_day.isoformat() if min_day else None}
    arrays: dict[str, np.ndarray] = {}
    if not (job.get("minutes") or job.get("seed") or job.get("rows")):
        return meta, arrays

    content = parse_csv(store.csv_path, keep_lines=True)  # the CSV left after the rollover, parsed once for all
    csv_table = content.table if content is not None else None
    if job.get("minutes"):  # as minute bins (``Store.minutes``)
        meta["minute_names"], arrays["minutes"] = stack_bins(*csv_minutes(job["data_dir"], csv_table))
    if job.get("rows"):  # and as the rows file for a midnight without Arrow

        meta["rows"] = write_rows(store.csv_path, content)
    if not job.get("seed"):
        return meta, arrays
    seed_meta, seed_arrays = _seed({"data_dir": job["data_dir"], **job["seed"]}, csv_table)
    return {**meta, **seed_meta}, {**arrays, **seed_arrays}


def _seed(job: dict[str, Any], csv_table: Any = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The rule windows' samples; ``csv_table``: the CSV, when ``_maintain`` read it already."""
    start, end = datetime.fromisoformat(job["start"]), datetime.fromisoformat(job["end"])
    return pack_samples(*samples(job["data_dir"], start, end, job["metrics"], csv_table))


def _processes(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from trayapp import attribution_days

    return attribution_days.job(job)


JOBS = {"maintain": _maintain, "seed": _seed, "processes": _processes}


def _encode(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    np.savez(out, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    return out.getvalue()


def _decode(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return json.loads(arrays.pop("meta").tobytes().decode()), arrays


PARENT_ENV = "TRAYAPP_PARENT_PID"


def _die_with_parent() -> None:
    """On Linux the kernel kills this child when the process that started it dies: the parent
    holds the data folder's writer lock for it, so a rollover never goes on without the lock,
    beside a recorder started after (a ``kill`` of the app at start-up, its exit before Qt)."""
    parent = os.environ.pop(PARENT_ENV, "")
    if not sys.platform.startswith("linux") or not parent.isdigit():
        return
    try:

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # it died before the line above
        os._exit(1)


def child_main() -> int:
    """The child: one job from stdin, the answer to stdout; a failure is one line on stderr."""
    _die_with_parent()
    # Beside the app for its seconds: Arrow's buffers from glibc under the same fixed limits as
    # the app's (jemalloc, Arrow's default, keeps what it freed for a while), before Arrow loads.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    hold_little()

    logging.basicConfig(level=logging.WARNING, format="trayapp: %(message)s", stream=sys.stderr)
    try:
        job = json.loads(sys.stdin.read())
        answer = _encode(*JOBS[job["job"]](job))
    except Exception as exc:  # one line for the parent, which decides what the user sees
        print(f"dataset job failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    sys.stdout.buffer.write(answer)
    sys.stdout.buffer.flush()
    # The answer is out whole: leave now. Python's teardown with Arrow's thread pools still about
    # can abort the process ("terminate called without an active exception", SIGABRT) after a
    # job that succeeded, and the parent would read that as a failure.
    sys.stderr.flush()
    os._exit(0)
