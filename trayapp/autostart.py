"""Start at login: an XDG autostart entry on Linux, the Run key on Windows, a LaunchAgent on macOS.

Standard library only; never Qt. The started app waits for the tray to appear (``--wait-for-tray``).
"""

from __future__ import annotations

import os
import plistlib
import re
import sys
from pathlib import Path

from trayapp.jsonfile import replace_atomically

APP_ID = "io.github.trayapp"
WAIT_FOR_TRAY = 120


def command() -> list[str]:
    """How to start this install of trayapp at login."""
    from trayapp import self_command

    return [*self_command(), "gui", "--wait-for-tray", str(WAIT_FOR_TRAY)]


def xdg_entry_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "autostart" / "trayapp.desktop"


def launch_agent_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{APP_ID}.plist"


# The Desktop Entry spec's reserved characters: an argument holding one must be double-quoted.
_RESERVED = frozenset(" \t\n\r\"'\\><~|&;$*?#()`")


def exec_argument(arg: str) -> str:
    """One argument of a desktop entry's ``Exec`` key, quoted as the Desktop Entry spec says.

    Only double quotes are allowed. Inside them a double quote, backtick, dollar sign or backslash
    takes a backslash; then the whole value is escaped as any desktop-entry string (a backslash
    doubled, a newline written as backslash-n), so one literal backslash is written as four.
    A percent sign is doubled, or it would be read as a field code.
    """
    arg = arg.replace("%", "%%")
    if arg and not _RESERVED.intersection(arg):
        return arg
    quoted = re.sub(r'(["`$\\])', r"\\\1", arg)
    quoted = quoted.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{quoted}"'


def desktop_entry(cmd: list[str]) -> str:
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=trayapp\n"
        "Comment=System-tray resource monitor\n"
        f"Exec={' '.join(exec_argument(arg) for arg in cmd)}\n"
        "Icon=trayapp\n"
        "Terminal=false\n"
        "Categories=System;Monitor;\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def set_autostart(enabled: bool, platform: str = sys.platform) -> str:
    """Turn start at login on or off; returns where it was written. Raises OSError."""
    cmd = command()
    if platform == "win32":
        import winreg  # type: ignore[import-not-found]

        key = winreg.OpenKey(winreg.HKEY_CURRENT_USER, r"Software\Microsoft\Windows\CurrentVersion\Run", 0, winreg.KEY_SET_VALUE)
        with key:
            if enabled:
                winreg.SetValueEx(key, "trayapp", 0, winreg.REG_SZ, " ".join(f'"{c}"' for c in cmd))
            else:
                try:
                    winreg.DeleteValue(key, "trayapp")
                except FileNotFoundError:
                    pass
        return r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\trayapp"
    path = launch_agent_path() if platform == "darwin" else xdg_entry_path()
    if not enabled:
        path.unlink(missing_ok=True)
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if platform == "darwin":
        content = plistlib.dumps({"Label": APP_ID, "ProgramArguments": cmd, "RunAtLoad": True, "ProcessType": "Interactive"})
    else:
        content = desktop_entry(cmd).encode()
    # replaced whole or not at all: a session manager never reads half an entry
    replace_atomically(path, content, mode=0o644)
    return str(path)


def is_enabled(platform: str = sys.platform) -> bool:
    if platform == "win32":
        return False  # read back through the registry only when asked; the setting is the truth
    return (launch_agent_path() if platform == "darwin" else xdg_entry_path()).exists()
