"""Secrets kept out of every log line and file: redaction by shape and of the configured secrets,
a logging filter for every handler (third-party loggers too), private (0700) folders. Stdlib only."""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MASK = "***"

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(hooks\.slack\.com/services/)[^\s'\"<>)\]}]+", re.I), r"\1" + MASK),
    (re.compile(r"(/services/)T[A-Za-z0-9_-]*/[^\s'\"<>)\]}]+"), r"\1" + MASK),
    (re.compile(r"(/hooks/)[A-Za-z0-9_-]{12,}"), r"\1" + MASK),
    (re.compile(r"\b(xox[a-z]|xapp)-[^\s'\",;)\]}]+", re.I), r"\1-" + MASK),
    (re.compile(r"(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n]+", re.I), r"\1" + MASK),
    (re.compile(r"(bearer\s+)[^\s'\",;)\]}]+", re.I), r"\1" + MASK),
)

_known: set[str] = set()
_lock = threading.Lock()


def remember(value: Any) -> None:
    """Treat ``value`` (text, or text inside lists and tables: a wrong-type secret) as a secret."""
    if isinstance(value, str):
        _remember_text(value)
    elif isinstance(value, dict):
        for item in value.values():
            remember(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            remember(item)


def _remember_text(text: str) -> None:
    pieces = {text, text.strip(), repr(text)[1:-1], repr(text.strip())[1:-1]}
    pieces.update(line.strip() for line in text.splitlines())
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        parts = None
    if parts is not None and parts.scheme and parts.netloc:
        pieces.add(parts.path)
        pieces.add(parts.path.strip("/"))
        if parts.query:
            pieces.add(parts.query)
    with _lock:
        # Short pieces ("/", "a") would mask ordinary words; a real secret is longer than this.
        _known.update(p for p in pieces if len(p) >= 6)


def forget_all() -> None:
    """For tests: start with no known secrets."""
    with _lock:
        _known.clear()


def redact(text: str) -> str:
    """``text`` with every secret-shaped part and every known secret replaced by ``***``."""
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


def scrub(value: Any) -> Any:
    """``value`` with ``redact`` applied to every string inside it (for JSON written to disk)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with ``redact``; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


_factory_installed = False


def install(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of ``logger`` (the root logger): records of every logger,
    slack_sdk's and urllib3's included, reach those handlers and are redacted there. Records are
    also redacted as they are made (a record factory), so a handler added later is covered too."""
    global _factory_installed
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    if not _factory_installed:
        _factory_installed = True
        previous = logging.getLogRecordFactory()

        def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _FILTER.filter(record)
            return record

        logging.setLogRecordFactory(make_record)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 0700 (owner only), where it is ours."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        try:
            if path.stat().st_uid == os.getuid():
                os.chmod(path, 0o700)
        except OSError:
            pass
    return path
