"""The one-shot child that keeps Arrow out of a long-running recorder, and the module layout
that lets one module own reading history: no import circle, no reader child."""

from __future__ import annotations

import ast
import json
import subprocess
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

import trayapp
from trayapp.storage import child_job as dataset_jobs, ranges as history
from trayapp.storage.writer import JobFailed
from trayapp.storage.child_job import run_job as run
from trayapp.storage.writer import unpack_samples
from trayapp.synthetic import write_history
from trayapp.storage import writer


def test_a_seed_from_the_child_equals_reading_here(data_dir: Path) -> None:
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=3), now, 10, {"cpu_percent": lambda t: t % 100, "memory_percent": 50.0})
    start, end = now - timedelta(hours=2), now
    job = {"job": "seed", "data_dir": str(data_dir), "start": start.isoformat(), "end": end.isoformat(), "metrics": ["cpu_percent", "gpu0_util_percent"]}
    t_child, cols_child = unpack_samples(*run(job))
    t_here, cols_here = history.samples(data_dir, start, end, ["cpu_percent", "gpu0_util_percent"])
    assert len(t_here) == 720
    np.testing.assert_array_equal(t_child, t_here)
    np.testing.assert_array_equal(cols_child["cpu_percent"], cols_here["cpu_percent"])
    assert np.isnan(cols_child["gpu0_util_percent"]).all()  # a column never recorded: NaN, not 0


def test_a_failed_job_is_one_line(capfd: pytest.CaptureFixture) -> None:
    with pytest.raises(JobFailed, match="dataset job failed: KeyError"):
        run({"job": "no such job"})
    with pytest.raises(JobFailed, match="dataset job failed: ValueError"):
        run({"job": "seed", "data_dir": "/nonexistent", "start": "not a time", "end": "x", "metrics": []})
    assert "Traceback" not in capfd.readouterr().err


def _imports(path: Path) -> set[str]:
    """The trayapp modules a module imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trayapp"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # 'from trayapp import history'
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("trayapp"))
    return found


def test_no_module_imports_back_one_that_imports_it() -> None:
    # The issue: store -> dataset_jobs -> history_data -> store. Reading history is one module's
    # (``history``); the writer and the jobs call it, and nothing it imports calls them back.
    root = Path(trayapp.__file__).parent
    modules = {".".join(("trayapp", *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__"): p for p in root.rglob("*.py")}
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    assert graph["trayapp.storage.ranges"] >= {"trayapp.storage.day_files", "trayapp.storage.tier_builder"}  # the check sees lazy imports too
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_a_process_with_arrow_loaded_does_the_job_itself(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the tray app after its window read history: a child would add ~70 MB beside it at midnight
    import subprocess
    import sys

    import pyarrow.parquet  # noqa: F401 - loaded, as in the app after a read
    from trayapp.storage import child_job as dataset_jobs

    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=2), now, 10, {"cpu_percent": 5.0})
    job = {"job": "seed", "data_dir": str(data_dir), "start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat(), "metrics": ["cpu_percent"]}
    monkeypatch.setattr(dataset_jobs, "child_command", lambda: [sys.executable, "-c", "raise SystemExit(1)"])
    t, cols = unpack_samples(*dataset_jobs.run_job_unless_loaded(job))  # no child was asked
    assert len(t) == 360 and set(cols["cpu_percent"]) == {5.0}
    with pytest.raises(JobFailed, match="dataset job failed: ValueError"):
        dataset_jobs.run_job_unless_loaded({**job, "start": "not a time"})
    # a process without Arrow (the recorder) hands the job to a child: a failing child shows
    code = (
        "import sys, json\n"
        "from trayapp.storage import child_job as dataset_jobs\n"
        "dataset_jobs.child_command = lambda: [sys.executable, '-c', 'import sys; print(\"from the child\", file=sys.stderr); sys.exit(1)']\n"
        f"job = json.loads({json.dumps(json.dumps(job))})\n"
        "try:\n    dataset_jobs.run_job_unless_loaded(job)\nexcept dataset_jobs.JobFailed as exc:\n    print(exc)\n"
        "print('pyarrow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.split("\n")
    assert out[:2] == ["from the child", "False"]


def test_a_child_started_beside_a_clone_named_trayapp_still_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a user who cloned the project into ~/trayapp and starts trayapp from ~: the working folder
    # holds a 'trayapp' folder that is not the package; with it on sys.path every child failed
    clone = tmp_path / "home" / "trayapp"
    clone.mkdir(parents=True)
    (clone / "README.md").write_text("a clone\n")
    monkeypatch.chdir(clone.parent)
    data_dir = tmp_path / "data"
    now = datetime.now(timezone.utc)
    write_history(data_dir, now - timedelta(hours=2), now, 60, {"cpu_percent": 1.0})
    meta, _ = dataset_jobs.run_job({"job": "maintain", "data_dir": str(data_dir), "retention_days": 0, "today": date.today().isoformat()})
    assert "min_day" in meta
    without = [a for a in dataset_jobs.child_command() if a != "-P"]  # the control: the old command fails here
    done = subprocess.run(without, input=b"{}", capture_output=True, timeout=60)
    assert done.returncode != 0 and b"trayapp" in done.stderr
