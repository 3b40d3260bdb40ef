"""Made-up history in the real dataset layout, for tests, benchmarks and screenshots.

Imports the store's layout and pyarrow; never Qt. Writes day files the way a rollover would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from trayapp.storage import TIMESTAMP, Store, column_order, csv_field, local_zone

Values = dict[str, float | Callable[["object"], "object"]]


def write_history(
    data_dir: Path,
    start: datetime,
    end: datetime,
    step_seconds: float,
    values: Values,
    today_in_csv: bool = True,
) -> int:
    """Samples every ``step_seconds`` in ``(start, end]``, each column a constant or a function
    of the epoch-seconds array. Earlier days go to Parquet day files; today's rows to the CSV
    day file (unless ``today_in_csv`` is False). Returns the number of samples written.
    """
    import numpy as np

    t0, t1 = start.timestamp(), end.timestamp()
    stamps = np.arange(t1, t0, -step_seconds)[::-1]
    columns = {name: value(stamps) if callable(value) else np.full(len(stamps), float(value)) for name, value in values.items()}
    return write_samples(data_dir, stamps, columns, today_in_csv)


def write_samples(data_dir: Path, stamps: "object", columns: "dict[str, object]", today_in_csv: bool = True) -> int:
    """Samples at any epoch seconds (irregular, out of order, repeated: a sampler that skips or a
    clock that stepped), each column an array of values, written as ``write_history`` writes:
    each day file in time order, today's rows to the CSV in the order given."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = Store(data_dir)
    stamps = np.asarray(stamps, dtype="float64")
    if not len(stamps):
        return 0
    micro = np.round(stamps * 1e6).astype("int64")
    ts = pa.array(micro, type=pa.timestamp("us", tz="UTC"))
    names = column_order(columns)
    table = pa.table({TIMESTAMP: ts, **{n: pa.array(np.asarray(columns[n], dtype="float64")) for n in names}})
    zone = local_zone()
    days = pd.Series(pd.to_datetime(micro, unit="us", utc=True)).dt.tz_convert(zone).dt.date.to_numpy()
    today = datetime.now(timezone.utc).astimezone(zone).date()
    for day in sorted(set(days)):
        mask = days == day
        part = table.filter(pa.array(mask))
        if day >= today and today_in_csv:
            _append_csv(store.csv_path, part, names, zone)
            continue
        path = store.day_path(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():  # a second call for the same day adds to it (tests write gaps that way)
            part = pa.concat_tables([pq.read_table(path), part], promote_options="default")
        pq.write_table(part.sort_by(TIMESTAMP), path, compression="zstd")
    return len(stamps)


def _append_csv(path: Path, table: "object", names: list[str], zone: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    stamps = table.column(TIMESTAMP).to_pylist()  # type: ignore[attr-defined]
    cols = [table.column(n).to_pylist() for n in names]  # type: ignore[attr-defined]
    with open(path, "a", encoding="utf-8") as f:
        if new:
            f.write(",".join([TIMESTAMP, *names]) + "\n")
        for i, stamp in enumerate(stamps):
            f.write(",".join([stamp.astimezone(zone).isoformat(timespec="microseconds"), *(csv_field(c[i]) for c in cols)]) + "\n")
