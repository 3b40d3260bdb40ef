"""Memory a process has freed, handed back: glibc's heap after a big read, and the source lines
PySide6's import hook caches.

Imports the standard library only.
"""

from __future__ import annotations

import ctypes
import linecache
import sys


def release_memory() -> None:
    """Hand memory freed after a big read back to the OS (glibc keeps it otherwise), and drop
    the source lines PySide6 caches: its import hook (PYSIDE-2029) reads the source of every
    module imported after it into ``linecache``, a cache that only tracebacks use and that
    refills itself lazily."""
    linecache.clearcache()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim
            pass
