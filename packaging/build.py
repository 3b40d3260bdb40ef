"""`make package`: build dist/trayapp/ with PyInstaller from packaging/trayapp.spec."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """``build.py [DIST [WORK]]``: where the app and PyInstaller's work files go."""
    import PyInstaller.__main__

    args = sys.argv[1:] if argv is None else argv
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
