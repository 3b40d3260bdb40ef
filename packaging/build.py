"""`make package`: build dist/trayapp/ with PyInstaller from packaging/trayapp.spec."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    import PyInstaller.__main__

    PyInstaller.__main__.run([
        str(ROOT / "packaging" / "trayapp.spec"),
        "--noconfirm",
        "--clean",
        "--log-level", "WARN",
        "--distpath", str(ROOT / "dist"),
        "--workpath", str(ROOT / "build" / "pyinstaller"),
    ])
    exe = ROOT / "dist" / "trayapp" / ("trayapp.exe" if sys.platform == "win32" else "trayapp")
    print(f"built {exe}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
