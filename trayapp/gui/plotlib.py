"""PySide6 and pyqtgraph, imported so that they keep what they do not use out of memory.

Imports PySide6 and pyqtgraph only; nothing of trayapp's.

``check_sources_uncached``: PySide6 reads the source of every module imported after it, to see
whether it says "PySide6" (for its ``__feature__`` switches), with ``inspect.getsource``, which
keeps every file's lines in ``linecache`` for good: ~8 MB of text in a process that runs for
months, once pyqtgraph and the app are imported. The same check reads the file and keeps nothing.

PySide6 creates a module's classes and enums the first time each is looked up. pyqtgraph's
``Qt`` package copies every name of QtCore, QtGui and QtWidgets into mirror modules of its own
at import (``_copy_attrs``: ``dir`` and ``getattr`` of each), which creates all of them at once,
for good: most of what importing pyqtgraph costs in resident memory, for classes the tray app
never uses. Here the mirrors are modules that look a name up in PySide6's module when it is
first asked for, and PySide6's modules list no names while pyqtgraph imports (so the copy finds
nothing to copy). Everything pyqtgraph and trayapp use resolves to the same PySide6 objects.
"""

from __future__ import annotations

import sys
import types
from typing import Any

MIRRORED = ("QtCore", "QtGui", "QtWidgets")


def _mirror(name: str, real: types.ModuleType) -> types.ModuleType:
    mirror = types.ModuleType(f"pyqtgraph.Qt.{name}", f"PySide6.{name}, each name looked up when first used")

    def lookup(attr: str) -> Any:
        value = getattr(real, attr)  # AttributeError for a name PySide6 does not have, as a module gives
        setattr(mirror, attr, value)  # found once: the next lookup is the module's own
        return value

    mirror.__getattr__ = lookup  # type: ignore[method-assign]  # PEP 562
    return mirror


def check_sources_uncached() -> bool:
    """PySide6's check of each imported module's source, made without ``linecache`` (above).
    True when it is in place; False (PySide6's own check) where PySide6 does not have it."""
    try:
        import PySide6.QtCore  # noqa: F401 - installs the import hook and its support modules

        feature = sys.modules["PySide6.support.feature"]
        upstream = feature._mod_uses_pyside
    except (ImportError, KeyError, AttributeError):
        return False
    if getattr(upstream, "uncached", False):
        return True

    def uses_pyside(module: types.ModuleType) -> bool:
        path = getattr(module, "__file__", None)
        if not (isinstance(path, str) and path.endswith(".py")):
            return upstream(module)  # a built-in or compiled module: no source, no lines kept
        try:
            with open(path, "rb") as source:
                return b"PySide6" in source.read()
        except OSError:
            return upstream(module)

    uses_pyside.uncached = True  # type: ignore[attr-defined]
    feature._mod_uses_pyside = uses_pyside
    return True


def import_pyqtgraph() -> types.ModuleType:
    """``pyqtgraph``, imported as above the first time (as usual if it is already imported, or
    if its ``Qt`` package is not what this expects: then the import is pyqtgraph's own)."""
    if "pyqtgraph" in sys.modules:
        return sys.modules["pyqtgraph"]
    from PySide6 import QtCore, QtGui, QtWidgets

    reals = {"QtCore": QtCore, "QtGui": QtGui, "QtWidgets": QtWidgets}
    listing = {name: real.__dict__.get("__dir__") for name, real in reals.items()}
    mirrors = {name: _mirror(name, real) for name, real in reals.items()}
    for name, real in reals.items():
        sys.modules[f"pyqtgraph.Qt.{name}"] = mirrors[name]
        real.__dir__ = list  # type: ignore[attr-defined]  # an empty listing while pyqtgraph copies
    try:
        import pyqtgraph
    except Exception:  # a pyqtgraph this does not fit: its own import, from the start
        for name in list(sys.modules):
            if name == "pyqtgraph" or name.startswith("pyqtgraph."):
                del sys.modules[name]
        _restore(reals, listing)
        import pyqtgraph
    finally:
        _restore(reals, listing)
    return pyqtgraph


def _restore(reals: dict[str, types.ModuleType], listing: dict[str, Any]) -> None:
    for name, real in reals.items():
        if listing[name] is None:
            real.__dict__.pop("__dir__", None)
        else:
            real.__dir__ = listing[name]  # type: ignore[attr-defined]
