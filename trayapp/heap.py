"""How the long-running processes (the tray app, ``run --headless``) ask glibc to hold memory, and
hand back what a big read freed.

Imports nothing of trayapp's, only the standard library; glibc and the page cache only on Linux.

glibc's defaults suit short programs: a freed block of a few hundred KB stays in the heap (the
mmap threshold rises to the size of the last big block freed), and each thread that allocates
gets its own arena of retained memory. A process that reads a range, draws it and waits for
hours keeps those pages for good. Fixed limits make big buffers come from mmap and go back to
the OS the moment they are freed, and keep the arenas few.
"""

from __future__ import annotations

import ctypes
import importlib.util
import linecache
import os
import sys
from pathlib import Path

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
    ``linecache``: source lines that only tracebacks use and that refill lazily (PySide6's import
    hook no longer fills it in the tray app: ``gui.plotlib.check_sources_uncached``)."""
    linecache.clearcache()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim
            pass


LIBRARY_PACKAGES = ("PySide6", "shiboken6", "numpy", "numpy.libs", "pyqtgraph")


def map_libraries_small(packages: tuple[str, ...] = LIBRARY_PACKAGES) -> int:
    """Ask the kernel to drop the page cache of these packages' shared libraries before they are
    loaded, when no process has them mapped; returns how many files were asked about.

    Files just written (a fresh ``pip install``) sit in the page cache in large pieces, and a
    process that maps them gets whole pieces resident: far more of the tray app's Qt and numpy
    than the same libraries read back from disk, where only the pages used are read.
    Pages some process has mapped are kept, so another trayapp loses nothing. Linux only."""
    if not sys.platform.startswith("linux") or not hasattr(os, "posix_fadvise"):
        return 0
    asked = 0
    for name in packages:
        try:
            spec = importlib.util.find_spec(name) if "." not in name else None
        except (ImportError, ValueError):
            continue
        folder = Path(spec.origin).parent if spec is not None and spec.origin else None
        if folder is None and "." in name:  # a wheel's vendored libraries: a folder beside the package
            base = importlib.util.find_spec(name.split(".")[0])
            folder = Path(base.origin).parent.parent / name if base is not None and base.origin else None
        if folder is None or not folder.is_dir():
            continue
        for path in folder.rglob("*.so*"):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                os.fdatasync(fd)  # pages still being written back cannot be dropped: written now (a no-op when clean)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                asked += 1
            except OSError:
                pass
            finally:
                os.close(fd)
    return asked
