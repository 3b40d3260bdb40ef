"""How the long-running processes hold memory (``trayapp.heap``): glibc's limits, and the page
cache of freshly written libraries dropped before they are mapped."""

from __future__ import annotations

import mmap
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trayapp.heap import hold_little, map_libraries_small

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("fincore"),
                                reason="Linux page cache, seen with util-linux's fincore")


def cached(path: Path) -> int:
    """Bytes of ``path`` in the page cache (util-linux ``fincore``)."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "-o", "RES", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def test_libraries_just_written_leave_the_page_cache_unless_some_process_maps_them(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "freshpkg"
    (package / "Qt" / "lib").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    libraries = [package / "_core.abi3.so", package / "Qt" / "lib" / "libBig.so.6"]
    for path in libraries:
        with open(path, "wb") as f:  # written as pip writes a wheel's files: through the page cache
            for _ in range(32):
                f.write(os.urandom(1 << 18))
    other = package / "notes.txt"
    other.write_bytes(os.urandom(1 << 20))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert all(cached(p) == 8 << 20 for p in libraries)
    # another process has the second one mapped and in use: its pages stay
    holder = subprocess.Popen([sys.executable, "-c", (
        "import mmap, sys\n"
        f"f = open({str(libraries[1])!r}, 'rb'); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n"
        "total = sum(m[i] for i in range(0, len(m), 4096)); print('mapped', flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "mapped"
        assert map_libraries_small(("freshpkg", "not_installed_anywhere")) == 2
        assert cached(libraries[0]) == 0
        assert cached(libraries[1]) == 8 << 20
        assert cached(other) == 1 << 20  # not a library: not asked about
    finally:
        holder.stdin.close()
        holder.wait(10)
        holder.stdout.close()
    with open(libraries[0], "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
        assert m[:16] == libraries[0].read_bytes()[:16]  # read back from disk as it was


def test_glibc_takes_the_limits() -> None:
    assert hold_little() is True
