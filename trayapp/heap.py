"""How the long-running processes (the tray app, ``run --headless``) ask glibc to hold memory, and
hand back what a big read freed.

Imports nothing of trayapp's; only ctypes and linecache, and glibc only on Linux.

glibc's defaults suit short programs: a freed block of a few hundred KB stays in the heap (the
mmap threshold rises to the size of the last big block freed), and each thread that allocates
gets its own arena of retained memory. A process that reads a range, draws it and waits for
hours keeps those pages for good. Fixed limits make big buffers come from mmap and go back to
the OS the moment they are freed, and keep the arenas few.
"""

from __future__ import annotations

import ctypes
import linecache
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 256 * 1024  # bytes: a block this big or bigger is its own mapping, unmapped on free
TRIM_THRESHOLD = 1024 * 1024  # bytes of free heap top kept before it is handed back
ARENA_MAX = 2  # the main thread's and one for every other thread together


def hold_little() -> bool:
    """Set the limits above for this process; True when glibc took them all (False elsewhere:
    musl, macOS, Windows, where the defaults already return big blocks)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in
               ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, ARENA_MAX)))


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
