"""Small JSON files trayapp keeps beside the dataset (alert state, snooze, Slack outbox).

Standard library only. Writes are atomic (a temporary dot-file, fsynced, renamed into place), so
a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def write(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` atomically; raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_dict(path: Path, warn: bool = False) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when it is missing or unreadable (said once if ``warn``)."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        if warn:
            log.warning("%s is unreadable (%s); starting from scratch", path, exc)
        return {}
    return value if isinstance(value, dict) else {}
