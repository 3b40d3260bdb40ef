"""Pin what `make package` bundles: trayapp[package,prometheus] and everything it pulls in.
Reads installed metadata only: imports nothing of trayapp and needs no network.

One file per Python minor version, packaging/constraints-3.X.txt, each written on that Python:
pyproject.toml asks for different releases per Python (PySide6, setuptools), so one set of pins
cannot hold for all of them.

    python packaging/lock.py                  # write this Python's constraints-3.X.txt from this environment
    python packaging/lock.py --check [FILE]   # exit 1, naming each package, where this environment differs

Install against it with `pip install -c packaging/constraints-3.X.txt -e '.[package,prometheus]'`
(the Makefile picks the file from $(PYTHON)'s version). The dependency walk reads the installed
distributions' metadata (importlib.metadata). Platform-only dependencies of other systems
(Windows, macOS) are not in a Linux-made file.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
CONSTRAINTS = ROOT / "packaging" / f"constraints-{PYTHON_VERSION}.txt"  # the pins for the Python running this
ROOT_DIST, EXTRAS = "trayapp", ("package", "prometheus")


def bundled() -> dict[str, str]:
    """name → installed version for every distribution trayapp[package,prometheus] needs here."""
    found: dict[str, str] = {}
    done: set[tuple[str, str]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(ROOT_DIST, frozenset(EXTRAS))]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        wanted = {extra for extra in extras if (key, extra) not in done}
        if key in found and not wanted:
            continue
        dist = metadata.distribution(name)  # PackageNotFoundError: the environment lacks it
        found[key] = dist.version
        done.update((key, extra) for extra in wanted | {""})
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in wanted | {""}):
                todo.append((req.name, frozenset(req.extras)))
    found.pop(canonicalize_name(ROOT_DIST))
    return dict(sorted(found.items()))


def render(pins: dict[str, str]) -> str:
    head = (
        "# What `make package` bundles: trayapp[package,prometheus] and everything it pulls in, pinned.\n"
        f"# Written by `python packaging/lock.py` on {platform.python_implementation()} {platform.python_version()}, "
        f"{sys.platform} {platform.machine()}; check with `python packaging/lock.py --check`.\n"
        f"# Use: pip install -c packaging/{CONSTRAINTS.name} -e '.[package,prometheus]'\n"
    )
    return head + "".join(f"{name}=={version}\n" for name, version in pins.items())


def read(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def differences(path: Path = CONSTRAINTS) -> list[str]:
    """One line per package where this environment is not what ``path`` pins."""
    if not path.is_file():
        return [f"{path} does not exist: no pins for Python {PYTHON_VERSION} yet "
                "(install trayapp[package,prometheus] on it, then run packaging/lock.py there)"]
    pinned = read(path)
    problems = []
    try:
        here = bundled()
    except metadata.PackageNotFoundError as exc:
        return [f"{exc.name} is required but not installed"]
    for name, version in here.items():
        if name not in pinned:
            problems.append(f"{name} {version} is bundled but not pinned")
        elif pinned[name] != version:
            problems.append(f"{name} {version} is installed, {pinned[name]} is pinned")
    return problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        path = Path(argv[1]) if len(argv) > 1 else CONSTRAINTS
        problems = differences(path)
        for line in problems:
            print(f"lock: {line}", file=sys.stderr)
        if problems:
            print(f"lock: this environment differs from {path}; "
                  f"pip install -c {path} -e '.[package,prometheus]' (or re-run packaging/lock.py)", file=sys.stderr)
        return 1 if problems else 0
    path = Path(argv[0]) if argv else CONSTRAINTS
    path.write_text(render(bundled()))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
