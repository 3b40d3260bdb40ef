"""Secrets kept out of every log line and file: redaction by shape and of the configured secrets,
a logging filter for every handler (third-party loggers too), private (0700) folders. Stdlib and ``jsonfile`` only."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

MASK = "***"

# Each pattern's group "s" is the secret part; what comes before it stays readable.
_SLASH = r"(?:/|\\/|%2F)"  # a slash as written plainly, JSON-escaped (\/) or URL-encoded (%2F)
_SHAPES: tuple[re.Pattern[str], ...] = (
    re.compile(r"hooks\.slack\.com/services/(?P<s>[^\s'\"<>)\]}]+)", re.I),
    re.compile(rf"hooks\.slack\.com{_SLASH}services{_SLASH}(?P<s>[A-Za-z0-9_%\\/-]+)", re.I),
    re.compile(r"/services/(?P<s>T[A-Za-z0-9_-]*/[^\s'\"<>)\]}]+)"),
    re.compile(rf"{_SLASH}services{_SLASH}(?P<s>T[A-Za-z0-9_-]*{_SLASH}[A-Za-z0-9_%\\/-]+)", re.I),
    re.compile(r"/hooks/(?P<s>[A-Za-z0-9_-]{12,})"),
    re.compile(r"\b(?:xox[a-z]|xapp)-(?P<s>[^\s'\",;)\]}]+)", re.I),
    re.compile(r"authorization['\"]?\s*[:=]\s*['\"]?(?P<s>[^'\"\r\n]+)", re.I),
    re.compile(r"bearer\s+(?P<s>[^\s'\",;)\]}]+)", re.I),
)

# what a command line carries secrets in: --password=…, --token …, a URL's user:password@, ?key=…
_SECRET_WORD = r"(?:password|passwd|pass|pwd|token|secret|api[-_]?key|access[-_]?key|auth|credentials?|private[-_]?key)"
_COMMAND_SHAPES: tuple[re.Pattern[str], ...] = (
    re.compile(rf"(?:^|\s)-{{1,2}}[\w-]*{_SECRET_WORD}[\w-]*(?:=|\s+)(?P<s>\S+)", re.I),
    re.compile(rf"\b[\w.-]*{_SECRET_WORD}[\w.-]*=(?P<s>[^\s&]+)", re.I),
    re.compile(r"://[^/\s:@]+:(?P<s>[^@\s/]+)@"),
)

_known: dict[str, re.Pattern[str]] = {}  # secret → its case-blind pattern (a server may echo it in capitals)
_SECRET_PATH = re.compile(r"/(?:services|hooks)/(.+)", re.I)
MIN_FRAGMENT = 8  # a path segment this long after /services/ or /hooks/ is a secret on its own
_lock = threading.Lock()


def remember(value: Any) -> None:
    """Treat ``value`` (text, or text inside lists and tables: a wrong-type secret) as a secret."""
    stack = [value]  # a loop, not recursion: a config value can be nested hundreds deep
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _remember_text(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)


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
        # A server may echo only a part: each long segment after /services/ or /hooks/ is secret alone.
        secret_path = _SECRET_PATH.search(parts.path)
        if secret_path:
            pieces.add(secret_path.group(1).strip("/"))
            pieces.update(seg for seg in secret_path.group(1).split("/") if len(seg) >= MIN_FRAGMENT)
    # ... or write it URL-encoded (%2Fservices%2F…) or JSON-escaped (https:\/\/…).
    for piece in list(pieces):
        if len(piece) < 6:
            continue
        pieces.add(quote(piece, safe=""))
        pieces.add(quote_plus(piece, safe=""))
        pieces.add(quote(piece))
        pieces.add(piece.replace("/", "\\/"))
        pieces.add(json.dumps(piece)[1:-1])
        pieces.add(json.dumps(piece)[1:-1].replace("/", "\\/"))
    with _lock:
        # Short pieces ("/", "a") would mask ordinary words; a real secret is longer than this.
        for piece in pieces:
            if len(piece) >= 6 and piece not in _known:
                _known[piece] = re.compile(re.escape(piece), re.I)


def forget_all() -> None:
    """For tests: start with no known secrets."""
    with _lock:
        _known.clear()


def redact(text: str) -> str:
    """``text`` with every secret-shaped part and every known secret replaced by ``***``.

    All spans are found in the original text first (known secrets and shapes), merged where they
    overlap, then masked: one kind of match can never cut another short and leave a piece."""
    if not text:
        return text
    with _lock:
        known = list(_known.values())
    spans: list[tuple[int, int]] = []
    for pattern in known:
        spans.extend(m.span() for m in pattern.finditer(text))
    for pattern in _SHAPES:
        spans.extend(m.span("s") for m in pattern.finditer(text))
    if not spans:
        return text
    spans.sort()
    out, pos = [], 0
    merged_start, merged_end = spans[0]
    for start, end in spans[1:] + [(len(text) + 1, len(text) + 1)]:
        if start <= merged_end:
            merged_end = max(merged_end, end)
            continue
        out.append(text[pos:merged_start])
        out.append(MASK)
        pos = merged_end
        merged_start, merged_end = start, end
    out.append(text[pos:])
    return "".join(out)


def redact_command(text: str) -> str:
    """A process's command line as it may be shown or stored: ``redact`` and the shapes secrets
    take on a command line (``--password=***``, ``--token ***``, ``https://user:***@host``)."""
    text = redact(text)
    merged: list[list[int]] = []
    for start, end in sorted(m.span("s") for pattern in _COMMAND_SHAPES for m in pattern.finditer(text)):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        text = text[:start] + MASK + text[end:]
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
    from trayapp.jsonfile import make_folder

    path = make_folder(path, mode=0o700)  # a file where the folder goes is set aside
    if os.name == "posix":
        try:
            if path.stat().st_uid == os.getuid():
                os.chmod(path, 0o700)
        except OSError:
            pass
    return path
