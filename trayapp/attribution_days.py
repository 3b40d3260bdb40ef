"""The per-minute process records on disk as Parquet: finished days out of their CSV, retention, reads.

Imports ``attribution`` and ``jsonfile``; pyarrow only inside the functions that read or write
Parquet, which run in the dataset child of a long-running recorder (``trayapp.storage.child_job``) or in
``trayapp status``: the recorder itself calls ``request`` and ``records_of`` only.

Layout: ``<data>/Processes/Year=Y/Month=M/D.parquet`` per local day (as the samples' dataset),
columns ``minute`` (timestamp[us, UTC], the minute's start), ``kind`` (``process``, ``other`` or
``machine``), ``name``, ``command`` (redacted; "" when not read or not kept), ``cpu_seconds``
(CPU time used in the minute; the machine row: the machine's busy CPU time), ``rss_bytes`` (mean
resident memory; the machine row: memory in use), ``pids`` (space-separated), and with NVML
``gpu``, ``gpu_memory_bytes``, ``gpu_sm_percent`` (rows of kind ``gpu_process``, ``gpu_other``,
``gpu``; null elsewhere, and absent from days written before them). Today's minutes are in
``<data>/Processes/csv/YYYY-MM-DD.csv`` with the same columns.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from trayapp import attribution
from trayapp.attribution import COLUMNS, FOLDER, MinuteRecord

log = logging.getLogger("trayapp.storage")


def parquet_path(data_dir: Path, day: date) -> Path:
    return Path(data_dir) / FOLDER / f"Year={day.year}" / f"Month={day.month}" / f"{day.day}.parquet"


def _parquet_days(data_dir: Path) -> list[tuple[date, Path]]:
    out = []
    for path in (Path(data_dir) / FOLDER).glob("Year=*/Month=*/*.parquet"):
        try:
            out.append((date(int(path.parent.parent.name[5:]), int(path.parent.name[6:]), int(path.stem)), path))
        except ValueError:
            continue
    return out


def _csv_days(data_dir: Path) -> list[tuple[date, Path]]:
    out = []
    for path in (Path(data_dir) / FOLDER / attribution.CSV_FOLDER).glob("*.csv"):
        try:
            out.append((date.fromisoformat(path.stem), path))
        except ValueError:
            continue
    return out


def _table(records: list[MinuteRecord]) -> Any:
    import pyarrow as pa

    rows = [row for record in records for row in record.rows()]
    schema = pa.schema([("minute", pa.timestamp("us", tz="UTC")), ("kind", pa.string()), ("name", pa.string()),
                        ("command", pa.string()), ("cpu_seconds", pa.float64()), ("rss_bytes", pa.float64()),
                        ("pids", pa.string()), ("gpu", pa.int16()), ("gpu_memory_bytes", pa.float64()),
                        ("gpu_sm_percent", pa.float64())])

    def numbers(i: int, kind: Any = float) -> list[Any]:
        return [kind(r[i]) if r[i] else None for r in rows]  # null where the row has none (a GPU row's CPU time)

    return pa.table({
        "minute": pa.array([datetime.fromisoformat(r[0]) for r in rows], pa.timestamp("us", tz="UTC")),
        "kind": [r[1] for r in rows], "name": [r[2] for r in rows], "command": [r[3] for r in rows],
        "cpu_seconds": numbers(4), "rss_bytes": numbers(5), "pids": [r[6] for r in rows],
        "gpu": numbers(7, int), "gpu_memory_bytes": numbers(8), "gpu_sm_percent": numbers(9),
    }, schema=schema)


def read_parquet(path: Path) -> list[MinuteRecord]:
    """The minutes of one Parquet day file ([] with one warning when it cannot be read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trayapp.jsonfile import open_own

    try:
        with open_own(path, 1 << 34) as f:  # a FIFO or a folder there is never waited on
            data = f.read()
        table = pq.read_table(pa.py_buffer(data))
        table = table.select([name for name in COLUMNS if name in table.column_names])  # a day before the GPU columns has none
        columns = [table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows
                   for name in COLUMNS]
    except Exception as exc:  # noqa: BLE001 - a broken file costs its minutes, nothing else
        log.warning("process records %s could not be read (%s); left as they are", path, str(exc)[:160])
        return []
    columns[0] = [m.isoformat() if m is not None else "" for m in columns[0]]
    rows = ([("" if v is None else v if isinstance(v, str) else repr(v)) for v in row] for row in zip(*columns))
    return attribution.records_from_rows(rows)


def convert(data_dir: Path, today: date, retention_days: int = 0) -> int:
    """Every day CSV before ``today`` into its Parquet file (merged with one there, read back),
    then the CSV goes; retention as the samples'. Returns the minutes moved."""
    from trayapp.jsonfile import replace_atomically

    import pyarrow.parquet as pq

    moved = 0
    for day, path in sorted(_csv_days(data_dir)):
        if day >= today:
            continue
        records = attribution.read_csv(path)
        if not records:
            try:
                if path.stat().st_size <= len(",".join(COLUMNS)) + 1:  # the header alone (either width)
                    path.unlink()
                else:
                    log.warning("process records %s hold no whole minute; left as they are", path)
            except OSError:
                pass
            continue
        target = parquet_path(data_dir, day)
        if target.exists():
            have = {r.minute for r in records}
            records = sorted([*records, *(r for r in read_parquet(target) if r.minute not in have)], key=lambda r: r.minute)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            sink = io.BytesIO()
            pq.write_table(_table(records), sink, compression="zstd")
            replace_atomically(target, sink.getvalue(), mode=0o600)  # command lines: for this user only
            if len(read_parquet(target)) != len(records):
                log.warning("process records of %s were not all found in %s after writing it; kept the CSV", day, target)
                continue
            path.unlink()
        except OSError as exc:
            log.warning("process records of %s could not be written to %s (%s); kept the CSV", day, target, exc.strerror or exc)
            continue
        moved += len(records)
    if retention_days > 0:
        cutoff = today - timedelta(days=retention_days)
        for day, path in [*_parquet_days(data_dir), *_csv_days(data_dir)]:
            if day < cutoff:
                try:
                    path.unlink()
                except OSError as exc:
                    log.warning("retention: cannot delete %s: %s", path, exc.strerror or exc)
    return moved


def read_records(data_dir: Path, start: datetime, end: datetime) -> list[MinuteRecord]:
    """The minutes in [start, end] from the Parquet days and the CSVs (each minute once)."""
    first, last = start.astimezone().date() - timedelta(days=1), end.astimezone().date() + timedelta(days=1)
    lo, hi = int(start.timestamp() // 60), int(end.timestamp() // 60)
    found: dict[int, MinuteRecord] = {}
    for reader, days in ((attribution.read_csv, _csv_days(data_dir)), (read_parquet, _parquet_days(data_dir))):
        for day, path in days:
            if first <= day <= last:
                for record in reader(path):
                    if lo <= record.minute <= hi:
                        found.setdefault(record.minute, record)
    return [found[m] for m in sorted(found)]


def job(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dataset child's ``processes`` job: convert finished days, and with ``start``/``end``
    return those minutes as CSV text (``records_of`` reads it back)."""
    import numpy as np

    data_dir = Path(request["data_dir"])
    convert(data_dir, date.fromisoformat(request["today"]), int(request.get("retention_days", 0)))
    if not request.get("start"):
        return {}, {}
    records = read_records(data_dir, datetime.fromisoformat(request["start"]), datetime.fromisoformat(request["end"]))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(row for record in records for row in record.rows())
    return {"minutes": len(records)}, {"records": np.frombuffer(out.getvalue().encode(), dtype=np.uint8)}


def records_of(arrays: dict[str, Any]) -> list[MinuteRecord]:
    """The minutes a ``job`` sent back."""
    data = arrays.get("records")
    if data is None:
        return []
    return attribution.records_from_rows(csv.reader(io.StringIO(bytes(data).decode())))


def request(data_dir: Path, now: datetime, keep_seconds: float, retention_days: int) -> dict[str, Any]:
    start = now - timedelta(seconds=min(keep_seconds, 400 * 86400))
    return {"job": "processes", "data_dir": str(data_dir), "today": now.astimezone().date().isoformat(),
            "retention_days": retention_days, "start": start.astimezone(timezone.utc).isoformat(),
            "end": now.astimezone(timezone.utc).isoformat()}
