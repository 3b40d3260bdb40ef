"""The tray app's rotating log file. Imports the standard library and ``privacy``: it starts
before Qt is loaded, so that what the start-up's dataset work says is in the file too."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from trayapp.settings import default_log_path

LOG_BYTES = 1_000_000  # the log file rotates at 1 MB and keeps 3 old ones: at most 4 MB
LOG_BACKUPS = 3


def start_log_file(path: Path | None = None, max_bytes: int = LOG_BYTES, backups: int = LOG_BACKUPS) -> "logging.Handler | None":
    """Write the app's log to a rotating file (started at login, its warnings would go nowhere
    a person can read). Secrets are redacted there as on every handler. None if it cannot be
    written (one line on stderr; the app runs on)."""
    from logging.handlers import RotatingFileHandler

    from trayapp import privacy

    path = Path(path) if path is not None else default_log_path()
    try:
        privacy.private_dir(path.parent)
        handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=False)
    except OSError as exc:
        print(f"trayapp: cannot write the log file {path}: {exc.strerror or exc}", file=sys.stderr)
        return None
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    privacy.install()  # the redacting filter on this handler too
    return handler


def _into_file(handler: logging.Handler, level: int, message: str, *args: object) -> None:
    """One line into the file only (not through the root logger to the terminal)."""
    log = logging.getLogger("trayapp.gui.app")
    handler.handle(log.makeRecord(log.name, level, __file__, 0, message, args, None))


def note_start(handler: logging.Handler, folder: Path, warnings: list[str]) -> None:
    """The start and the config's warnings, into the file only: the terminal, if any, has seen
    the warnings already."""
    _into_file(handler, logging.INFO, "trayapp started for %s", folder)
    for warning in warnings:
        _into_file(handler, logging.WARNING, "%s", warning)


def note_stop(handler: logging.Handler, folder: Path) -> None:
    """The end, after the sampler has flushed the store: a log that stops mid-way was a crash."""
    _into_file(handler, logging.INFO, "trayapp stopped for %s", folder)
