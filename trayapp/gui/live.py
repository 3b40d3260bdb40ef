"""The live view's data: the last 10 minutes of samples, in memory, fed by every tick.

Imports numpy and ``model``; not pyqtgraph, so the app starts without it (it loads with the window).
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timezone

import numpy as np

from trayapp.storage import break_gaps
from trayapp.model import BASE_COLUMNS, Sample

LIVE_SECONDS = 600


class LiveBuffer:
    """The last ``seconds`` of samples, in memory, fed by every tick (window open or not)."""

    def __init__(self, seconds: float = LIVE_SECONDS) -> None:
        self.seconds = seconds
        self.samples: deque[Sample] = deque()

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        limit = sample.timestamp.timestamp() - self.seconds
        while self.samples and self.samples[0].timestamp.timestamp() <= limit:
            self.samples.popleft()

    def seed(self, recent: dict, before: float) -> int:
        """Fill the buffer, at start, from samples already in memory (the rule windows'
        ``{metric: (stamps, values)}``) older than ``before``, so the live view does not start
        empty on every launch. Metrics the windows do not hold stay empty until sampled."""
        rows: dict[float, dict[str, float]] = {}
        for name in ("cpu_percent", "memory_percent", "disk_percent"):
            stamps, values = recent.get(name, ((), ()))
            for t, v in zip(stamps, values):
                if before - self.seconds < t < before:
                    rows.setdefault(t, {})[name] = v
        old = [Sample(datetime.fromtimestamp(t, timezone.utc), r.get("cpu_percent"), r.get("memory_percent"),
                      r.get("disk_percent")) for t, r in sorted(rows.items())]
        self.samples.extendleft(reversed(old))
        return len(old)

    def measured(self) -> list[str]:
        """The columns some sample in the buffer has a value for (the base metrics always)."""
        return _measured([s.values() for s in self.samples])

    def arrays(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Epoch seconds and each measured column (NaN where a sample lacks it), gaps broken.
        Columns no sample has (a fan on a server) are left out: there is nothing to draw."""
        rows = [s.values() for s in self.samples]  # once per sample, not once per column
        t = np.fromiter((s.timestamp.timestamp() for s in self.samples), dtype="float64", count=len(rows))
        out = {name: np.fromiter((_nan(r.get(name)) for r in rows), dtype="float64", count=len(rows))
               for name in _measured(rows)}
        return break_gaps(t, out)


def _measured(rows: list[dict[str, float | None]]) -> list[str]:
    names: dict[str, None] = dict.fromkeys(BASE_COLUMNS)
    for row in rows:
        for name, value in row.items():
            if value is not None:
                names.setdefault(name)
    return list(names)


def _nan(value: float | None) -> float:
    return math.nan if value is None else value
