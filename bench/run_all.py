"""`make bench`: every benchmark, results in bench/results/*.json and on stdout."""

from __future__ import annotations

import importlib
import sys

BENCHES = ["bench.bench_averages", "bench.bench_rollover", "bench.bench_rollups", "bench.bench_cpu", "bench.bench_gui", "bench.bench_panel", "bench.bench_year",
           "bench.bench_attribution"]


def main() -> int:
    only = sys.argv[1:]
    for name in BENCHES:
        if only and not any(o in name for o in only):
            continue
        print(f"== {name}", file=sys.stderr)
        importlib.import_module(name).main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
