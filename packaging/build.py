"""`make package`: build dist/trayapp/ with PyInstaller from packaging/trayapp.spec.

With ``--locked`` it first checks that this environment is what packaging/constraints-3.X.txt pins
for this Python (packaging/lock.py) and builds nothing if not; without it a difference is only reported.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """``build.py [--locked[=CONSTRAINTS]] [DIST [WORK]]``: where the app and PyInstaller's work files go."""
    args = sys.argv[1:] if argv is None else list(argv)
    flags = [a for a in args if a.startswith("--locked")]
    args = [a for a in args if not a.startswith("--locked")]
    sys.path.insert(0, str(ROOT / "packaging"))
    import lock

    locked = bool(flags)
    constraints = Path(flags[-1].partition("=")[2]) if flags and "=" in flags[-1] else lock.CONSTRAINTS
    problems = lock.differences(constraints)
    for line in problems:
        print(f"build: {line}", file=sys.stderr)
    if problems:
        print(f"build: this environment is not what {constraints} pins"
              + (f"; not building (pip install -c {constraints} -e '.[package,prometheus]')" if locked else ""),
              file=sys.stderr)
        if locked:
            return 1
    import PyInstaller.__main__

    dist = Path(args[0]) if args else ROOT / "dist"
    work = Path(args[1]) if len(args) > 1 else ROOT / "build" / "pyinstaller"
    PyInstaller.__main__.run([
        str(ROOT / "packaging" / "trayapp.spec"),
        "--noconfirm",
        "--clean",
        "--log-level", "ERROR",
        "--distpath", str(dist),
        "--workpath", str(work),
    ])
    exe = dist / "trayapp" / ("trayapp.exe" if sys.platform == "win32" else "trayapp")
    print(f"built {exe}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
