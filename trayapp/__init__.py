"""trayapp: a system-tray resource monitor with alert rules and Slack.

The core (everything outside ``trayapp.gui``) never imports Qt.
"""

import os as _os

__version__ = "0.1.0"


def self_command() -> list[str]:
    """How to run this install of trayapp again (a child, autostart): the frozen binary, or this
    Python with the package by name. ``-P`` keeps the working folder off ``sys.path``: a folder
    named ``trayapp`` there (the clone, in the home folder) would shadow the installed package
    and every child would fail to import."""
    import sys

    if getattr(sys, "frozen", False):  # a PyInstaller build: sys.executable is trayapp itself
        return [sys.executable]
    return [sys.executable, "-P", "-m", "trayapp.cli"]

# Arrow's default allocator (mimalloc) keeps freed memory for reuse; for an app that reads a
# burst at start-up and then idles for months, the system allocator gives it back (bench/).
_os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
