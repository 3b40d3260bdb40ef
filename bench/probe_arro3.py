"""What midnight would cost with arro3 (arrow-rs) as the Parquet writer instead of Arrow's child.

Not a dependency and not part of ``run_all``: this probe backs the README's account of why the
midnight target is not met. Install it beside the project to run it::

    .venv/bin/pip install arro3-io && .venv/bin/python -m bench.probe_arro3

Each measurement runs in a fresh process holding what the tray app holds (numpy, PySide6's
widgets, pyqtgraph, a QApplication): arro3's import, then a day of 1 s samples streamed from the
CSV into a zstd Parquet file, as resident-memory growth (VmRSS, and VmHWM after resetting it).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, sys, time
def mem():
    out = {}
    for line in open("/proc/self/status"):
        key, value = line.split(":", 1)
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out
import numpy, pyqtgraph
from PySide6 import QtWidgets
app = QtWidgets.QApplication([])
before = mem()["VmRSS"]
import arro3.core as ac, arro3.io as aio
imported = mem()["VmRSS"]
csv = sys.argv[1]
names = open(csv).readline().strip().split(",")
schema = ac.Schema([ac.Field(names[0], ac.DataType.timestamp("us", tz="UTC"), nullable=False)]
                   + [ac.Field(n, ac.DataType.float64(), nullable=True) for n in names[1:]])
open("/proc/self/clear_refs", "w").write("5")
t0 = time.perf_counter()
aio.write_parquet(aio.read_csv(csv, schema, has_header=True, batch_size=4096), sys.argv[2], compression="zstd(1)")
took = time.perf_counter() - t0
after = mem()
print(json.dumps({"app_mb": before, "import_mb": imported - before, "write_peak_mb": after["VmHWM"] - imported,
                  "write_kept_mb": after["VmRSS"] - imported, "write_ms": took * 1000}))
"""


def main(repeat: int = 3) -> int:
    try:
        import arro3.io  # noqa: F401
    except ImportError:
        print("arro3-io is not installed (it is not a dependency): .venv/bin/pip install arro3-io", file=sys.stderr)
        return 0
    from bench.bench_rollover import write_day_csv

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "day.csv"
        write_day_csv(csv, 1.0)
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        for _ in range(repeat):
            done = subprocess.run([sys.executable, "-c", _CHILD, str(csv), str(Path(tmp) / "day.parquet")],
                                  env=env, capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = {key: round(statistics.median(run[key] for run in runs), 1) for key in runs[0]}
    print(json.dumps(median))
    print(f"arro3 import +{median['import_mb']} MB; a day of 1 s samples written: +{median['write_peak_mb']} MB peak, "
          f"+{median['write_kept_mb']} MB kept, {median['write_ms']} ms (medians of {repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
