"""`trayapp doctor`'s tray check, run in a child process (Qt aborts a process with no display).

Exit 0: a tray is there; 3: no tray (the app shows its window instead); other: Qt failed.
"""

from __future__ import annotations

import sys


def main() -> int:
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication, QSystemTrayIcon

    app = QApplication(sys.argv[:1])
    platform = QGuiApplication.platformName()
    if QSystemTrayIcon.isSystemTrayAvailable():
        print(f"system tray available (Qt {platform} platform)")
        return 0
    print(f"no system tray on this desktop (Qt {platform}); the app will show its window instead")
    del app
    return 3


if __name__ == "__main__":
    sys.exit(main())
