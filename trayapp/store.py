"""The dataset on disk: today's CSV day file and the Parquet day files it rolls into.

Imports ``model``, ``jsonfile``, pyarrow and (for time-zone arithmetic and lenient parsing) pandas; never Qt.

Layout (kept from the notebook, so its data still reads):
``<data_dir>/Monitoring/Year=YYYY/Month=M/D.parquet`` and ``<data_dir>/csv_dump/daily_dump.csv``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trayapp.jsonfile import remove_quietly, replace_atomically
from trayapp.model import BASE_COLUMNS, MACHINE_COLUMNS, Sample

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

DATASET_DIR = "Monitoring"
CSV_DIR = "csv_dump"
CSV_NAME = "daily_dump.csv"
LOCK_NAME = ".writer.lock"
PID_NAME = ".writer.pid"
TIMESTAMP = "timestamp"
_DAY_FILE = re.compile(r"^Year=(\d{4})$|^Month=(\d{1,2})$|^(\d{1,2})\.parquet$")
_HAS_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


class StoreError(Exception):
    """A problem with the data folder that the user must hear about in one line."""


class DataDirBusy(StoreError):
    """Another process already writes to this data folder."""


def local_zone() -> tzinfo:
    """The machine's IANA time zone (DST-aware), read afresh so a changed zone is noticed."""
    import tzlocal

    try:
        return tzlocal.get_localzone()
    except Exception as exc:  # tzlocal raises its own errors on odd set-ups; fall back to UTC
        _warn_once("tz", f"time zone: cannot tell the local zone ({exc}); using UTC for day files")
        return timezone.utc


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def column_order(names: Iterable[str]) -> list[str]:
    """timestamp, the base metrics, then the GPU columns by GPU index and field."""

    def key(name: str) -> tuple[int, int, str]:
        if name == TIMESTAMP:
            return (0, 0, "")
        if name in BASE_COLUMNS:
            return (1, BASE_COLUMNS.index(name), "")
        if name in MACHINE_COLUMNS:  # network, disk I/O, sensors, swap, load: after the base, before GPUs
            return (1, len(BASE_COLUMNS) + MACHINE_COLUMNS.index(name), "")
        m = re.match(r"gpu(\d+)_(.*)$", name)
        if m:
            return (2, int(m.group(1)), m.group(2))
        return (3, 0, name)

    return sorted(set(names), key=key)


def format_value(value: float | None) -> str:
    """A CSV field; ``None`` and non-finite values (NaN, ±inf mean "not available") are empty."""
    if value is None:
        return ""
    value = float(value)
    return repr(round(value, 4)) if math.isfinite(value) else ""


# Timestamps outside these years are a broken clock or broken bytes: such a row is not read (it is
# kept aside at rollover). The bounds keep every later step (local days, pandas, Parquet) safe.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
_EARLIEST_US = int(EARLIEST.timestamp()) * 1_000_000
_LATEST_US = int(LATEST.timestamp()) * 1_000_000


class Store:
    """One data folder. Readers need nothing but ``read``; one writer holds ``open_writer``."""

    def __init__(self, data_dir: str | os.PathLike[str], retention_days: int = 0, in_child: bool = False) -> None:
        """``in_child``: a long-running writer does its Arrow work (rollover, seeding) in a child
        process (``dataset_jobs``), so it never loads pyarrow and pandas itself."""
        self.data_dir = Path(data_dir)
        self.in_child = in_child
        self.dataset_dir = self.data_dir / DATASET_DIR
        self.csv_path = self.data_dir / CSV_DIR / CSV_NAME
        self.retention_days = retention_days
        self._fd: int | None = None
        self._header: list[str] = []
        self._size = 0
        self._min_day: date | None = None
        self._lock: Any = None
        self._retry_rollover_at = 0.0
        self._tz: tzinfo = timezone.utc

    # ------------------------------------------------------------------ paths

    def day_path(self, day: date) -> Path:
        return self.dataset_dir / f"Year={day.year}" / f"Month={day.month}" / f"{day.day}.parquet"

    def day_files(self) -> Iterator[tuple[date, Path]]:
        """Every day file in the dataset, in no particular order (for export and retention)."""
        if not self.dataset_dir.is_dir():
            return
        for year_dir in self.dataset_dir.glob("Year=*"):
            for month_dir in year_dir.glob("Month=*"):
                for path in month_dir.glob("*.parquet"):
                    try:
                        yield (
                            date(int(year_dir.name[5:]), int(month_dir.name[6:]), int(path.stem)),
                            path,
                        )
                    except ValueError:
                        continue

    # ----------------------------------------------------------------- writer

    def open_writer(self, now: datetime | None = None, seed: "tuple[datetime, datetime, list[str]] | None" = None) -> "Any":
        """Take the folder's writer lock, mend a torn CSV tail and roll earlier days over.

        With ``seed`` (start, end, metrics), also returns ``arrays(start, end, metrics)``, read
        after the rollover (by the same child, when this store keeps Arrow out)."""
        import filelock

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        self.dataset_dir.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.data_dir / LOCK_NAME))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            pid = _read_text(self.data_dir / PID_NAME) or "unknown"
            raise DataDirBusy(
                f"another trayapp (pid {pid}) is already recording into {self.data_dir}; "
                "only one may write a data folder at a time"
            ) from None
        self._lock = lock
        (self.data_dir / PID_NAME).write_text(str(os.getpid()))
        self._tz = local_zone()
        now = now or datetime.now(timezone.utc)
        if self.in_child:
            from trayapp.dataset_jobs import JobFailed

            try:
                seeded = self._maintain_in_child(now.astimezone(self._tz).date(), seed)
            except JobFailed as exc:  # never refuse to record: the CSV takes samples without Arrow
                log.warning("start-up rollover of %s failed (%s); recording anyway, will try again in 10 minutes", self.csv_path, exc)
                self._mend_csv()
                self._min_day = date.min  # unknown: the retry finds out
                self._retry_rollover_at = time.monotonic() + 600
                seeded = _no_samples(seed[2]) if seed else None
        else:
            self.maintain(now.astimezone(self._tz).date())
            seeded = self.arrays(*seed) if seed else None
        self._open_csv()
        return seeded

    def maintain(self, today: date) -> date | None:
        """Mend a torn CSV tail, roll earlier days over, apply retention; returns the earliest
        day left in the CSV. The caller holds the writer lock (this process or its parent)."""
        self._tz = local_zone()
        self._remove_stale_temporaries()
        self._mend_csv()
        self._open_csv()
        try:
            self.rollover(today)
        finally:
            self._close_csv()
        _rollup_ensure(self.data_dir)
        return self._min_day

    def _maintain_in_child(self, today: date, seed: "tuple[datetime, datetime, list[str]] | None" = None) -> "Any":
        from trayapp import dataset_jobs

        self._close_csv()
        job: dict[str, Any] = {"job": "maintain", "data_dir": str(self.data_dir), "retention_days": self.retention_days, "today": today.isoformat()}
        if seed:
            job["seed"] = {"start": seed[0].isoformat(), "end": seed[1].isoformat(), "metrics": seed[2]}
        meta, arrays = dataset_jobs.run(job)
        self._min_day = date.fromisoformat(meta["min_day"]) if meta.get("min_day") else None
        return dataset_jobs.seed_result(meta, arrays) if seed else None

    def _remove_stale_temporaries(self) -> None:
        """Temporary files a killed writer left (``.D.parquet.<random>.tmp``, ``.daily_dump.csv.
        <random>.tmp``): only the holder of the writer lock writes these, so any found now are dead."""
        for path in [*self.dataset_dir.glob("Year=*/Month=*/.*.tmp"), *self.csv_path.parent.glob(".*.tmp")]:
            remove_quietly(path)

    def _mend_csv(self) -> None:
        """Cut a torn last line (a crash mid-write) off, keeping its bytes aside; set aside a
        file that is not our CSV (its first field is not ``timestamp``)."""
        path = self.csv_path
        if not path.exists():
            return
        with open(path, "rb+") as f:
            data = f.read()
            if not data:
                return
            if _header_names(data[: data.find(b"\n") if b"\n" in data else len(data)])[:1] != [TIMESTAMP]:
                aside = path.with_name(f"{CSV_NAME}.unreadable-{int(time.time())}")
                f.close()
                os.replace(path, aside)
                log.warning("CSV day file had no header; kept it aside as %s and started a new one", aside)
                return
            if not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                aside = self._keep_aside(data[:cut].split(b"\n", 1)[0], [data[cut:]])
                f.truncate(cut)
                log.warning("CSV day file ended in a torn line (a crash while writing); skipped it%s",
                            f", its bytes kept in {aside}" if aside else "")

    def _keep_aside(self, header: bytes, lines: list[bytes]) -> Path | None:
        """Write lines the store could not read to ``csv_dump/.rejected-<day>-<ns>.csv`` (the
        header first), fsynced, before they leave the CSV; a dot-name, so no reader takes it for
        data. Returns the file, or None if there was nothing worth keeping. Raises OSError."""
        lines = [line for line in lines if line.strip()]
        if not lines:
            return None
        stamp = datetime.now(self._tz)
        path = self.csv_path.with_name(f".rejected-{stamp.date().isoformat()}-{time.time_ns()}.csv")
        replace_atomically(path, header + b"\n" + b"".join(line + b"\n" for line in lines))
        return path

    def _close_csv(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open_csv(self) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        self._fd = os.open(self.csv_path, flags, 0o644)
        self._size = os.fstat(self._fd).st_size
        self._header = []
        if self._size:
            with open(self.csv_path, "rb") as f:
                self._header = _header_names(f.readline())

    def append(self, sample: Sample) -> bool:
        """Write one sample to the CSV day file; roll earlier days over first when one ends.

        Returns False (after one warning) when the sample could not be written, e.g. a full
        disk; the file is left as it was, so nothing written before is harmed.
        """
        if self._fd is None:
            raise StoreError("the store is not open for writing")
        day = sample.timestamp.astimezone(self._tz).date()
        if self._min_day is not None and day > self._min_day and time.monotonic() >= self._retry_rollover_at:
            self._roll(day)
        values = sample.values()
        missing = [name for name in values if name not in self._header]
        try:
            if not self._header or missing:
                self._widen([*self._header, *column_order(missing)] if self._header else [TIMESTAMP, *column_order(values)])
            stamp = sample.timestamp.astimezone(self._tz).isoformat(timespec="microseconds")
            line = ",".join([stamp, *(format_value(values.get(name)) for name in self._header[1:])]) + "\n"
            self._write(line.encode())
        except OSError as exc:
            _warn_once(f"append:{exc.errno}", f"cannot write to {self.csv_path}: {exc.strerror or exc}; samples are not being kept")
            return False
        if self._min_day is None or day < self._min_day:
            self._min_day = day
        return True

    def _roll(self, today: date) -> None:
        if not self.in_child:
            self.rollover(today)
        else:
            from trayapp.dataset_jobs import JobFailed

            try:
                self._maintain_in_child(today)
            except JobFailed as exc:
                self._retry_rollover_at = time.monotonic() + 600
                log.warning("rollover of the CSV day file failed (%s); kept it as it is, will try again in 10 minutes", exc)
            self._open_csv()
        if self._min_day is not None and self._min_day < today:  # rows stayed behind: not on every sample
            self._retry_rollover_at = max(self._retry_rollover_at, time.monotonic() + 600)

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(28, "short write (disk full?)")
        except OSError:
            try:  # leave no torn line behind for the next sample to glue onto
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            raise
        self._size += len(data)

    def _widen(self, header: list[str]) -> None:
        """Start the file, or add columns (a GPU appeared): older rows get empty fields."""
        if not self._header:
            if self._size:
                raise StoreError("CSV has rows but no header")
            self._header = header
            self._write((",".join(header) + "\n").encode())
            return
        extra = len(header) - len(self._header)
        with open(self.csv_path, "rb") as f:
            f.readline()
            rows = f.read()
        padded = b"".join(line + b"," * extra + b"\n" for line in rows.split(b"\n") if line)  # \r inside a line stays
        self._replace_csv((",".join(header) + "\n").encode() + padded)
        self._header = header

    def _replace_csv(self, content: bytes) -> None:
        self._close_csv()  # Windows cannot rename over an open file
        try:
            replace_atomically(self.csv_path, content)
        finally:
            self._open_csv()

    def rollover(self, today: date) -> int:
        """``_rollover``; whatever it hits (a file no test foresaw), the CSV is kept as it is (it
        is rewritten only after the day files are read back) and it is tried again in 10 minutes."""
        try:
            return self._rollover(today)
        except Exception as exc:  # noqa: BLE001 - no content of the data folder may stop the recorder
            self._retry_rollover_at = time.monotonic() + 600
            log.warning("rollover of %s failed (%s: %s); kept it as it is, will try again in 10 minutes",
                        self.csv_path, type(exc).__name__, str(exc)[:160])
            return 0

    def _rollover(self, today: date) -> int:
        """Move every CSV row of a day before ``today`` into that day's Parquet file.

        Each day file is merged with what is there, written under a temporary name and renamed
        into place, then read back: only rows found there leave the CSV. Lines the store cannot
        read (bytes that are not text, a wrong number of fields, no time) are written to
        ``csv_dump/.rejected-*.csv`` first, then leave the CSV; a line read only in part goes to
        the day file and its bytes to the same place. Every other line stays in the CSV, byte for
        byte. Running it twice changes nothing. Returns the number of rows moved.
        """
        import numpy as np

        content = parse_csv(self.csv_path, keep_lines=True, warn=False)
        if content is None:
            self._min_day = None
            self._apply_retention(today)
            return 0
        table = content.table
        days = _local_days(table, self._tz) if table.num_rows else np.empty(0, dtype="int64")
        first_kept = _day_number(today)
        leaving = np.zeros(len(content.lines), dtype=bool)  # lines that may leave the CSV
        moved = 0
        unverified = 0
        try:
            for number in np.unique(days[days < first_kept]).tolist():
                mask = days == number
                rows = table.filter(mask)
                if self._merge_day(_from_day_number(number), rows):
                    leaving[content.row_lines[mask]] = True
                    moved += rows.num_rows
                else:
                    unverified += rows.num_rows
            lossy = [i for i in content.lossy if leaving[i]]
            aside = self._keep_aside(content.header_line, [content.lines[i] for i in sorted({*content.bad, *lossy})])
            if aside is not None:
                log.warning("%s: %d line(s) could not be read in full (not text, no time, a repeated header, more fields "
                            "than the header, or a value that is not a number); their bytes are kept in %s",
                            self.csv_path, len(content.bad) + len(lossy), aside)
            leaving[content.bad] = True
            leaving[content.blank] = True
            if leaving.any():
                kept = b"".join(content.lines[i] + b"\n" for i in np.flatnonzero(~leaving).tolist())
                self._replace_csv(content.header_line + b"\n" + kept)
        except OSError as exc:
            self._retry_rollover_at = time.monotonic() + 600
            log.warning("rollover of the CSV day file failed (%s); kept it as it is, will try again in 10 minutes", exc.strerror or exc)
            return 0
        if unverified:
            self._retry_rollover_at = time.monotonic() + 600
            log.warning("rollover: %d row(s) of %s were not found in their day file after writing it; "
                        "kept them in the CSV, will try again in 10 minutes", unverified, self.csv_path)
        remaining = days[~leaving[content.row_lines]] if table.num_rows else days
        self._min_day = _from_day_number(int(remaining.min())) if len(remaining) else None
        self._apply_retention(today)
        return moved

    def _merge_day(self, day: date, rows: "pa.Table") -> bool:
        """Merge ``rows`` into the day's file; True once they are read back from it.

        A day file the store cannot read in full (broken bytes, a timestamp it cannot read, a
        column of a type it cannot read) is never merged into or overwritten: it is renamed to
        ``.D.parquet.unreadable-<time>`` with one warning, and the new day file holds what could
        be read from it plus ``rows``."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.day_path(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = [rows]
        if path.exists():
            existing, problems = load_day_file(path, None)
            if problems:
                aside = aside_path(path)
                os.replace(path, aside)
                carried = existing.num_rows if existing is not None else 0
                log.warning("day file %s could not be read in full (%s); kept it aside as %s%s", path, "; ".join(problems), aside,
                            f" and carried its {carried} readable row(s) over" if carried else "")
            if existing is not None and existing.num_rows:
                parts.insert(0, existing)
        merged = unique_sorted(concat(parts))
        sink = pa.BufferOutputStream()
        pq.write_table(merged, sink, compression="zstd")
        replace_atomically(path, sink.getvalue().to_pybytes())
        _rollup_day(self.data_dir, day, merged)
        back, problems = load_day_file(path, [TIMESTAMP])
        if back is None or problems:
            return False
        wanted = rows.column(TIMESTAMP).cast("int64").to_numpy()
        there = back.column(TIMESTAMP).cast("int64").to_numpy()  # sorted: the file was written sorted
        if not len(there) or not bool(np.all(there[1:] > there[:-1])):
            return bool(np.isin(wanted, there).all())
        found = np.minimum(np.searchsorted(there, wanted), len(there) - 1)
        return bool(np.all(there[found] == wanted))

    def _apply_retention(self, today: date) -> None:
        if self.retention_days <= 0:
            return
        cutoff = today - timedelta(days=self.retention_days)
        for day, path in list(self.day_files()):
            if day < cutoff:
                try:
                    path.unlink()
                    if not any(path.parent.iterdir()):
                        path.parent.rmdir()
                except OSError as exc:
                    _warn_once(f"retention:{path}", f"retention: cannot delete {path}: {exc}")

    def close(self) -> None:
        self._close_csv()
        if self._lock is not None:
            try:
                (self.data_dir / PID_NAME).unlink(missing_ok=True)
            except OSError:
                pass
            self._lock.release()
            self._lock = None

    # ----------------------------------------------------------------- reader

    def read(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        columns: Iterable[str] | None = None,
    ) -> "pa.Table":
        """Samples with ``start < timestamp <= end`` from Parquet and the CSV together.

        Only the day files the range needs are opened, so the cost follows the range, not the
        history. Unreadable files and lines are skipped with one warning each. The result is
        sorted by time, with one row per timestamp, and ``timestamp`` as ``timestamp[us, UTC]``.
        """
        wanted = None if columns is None else [TIMESTAMP, *[c for c in columns if c != TIMESTAMP]]
        # The CSV first: a rollover writes the day file before it trims the CSV, so reading in
        # this order can see a row twice (dropped below) but never miss one.
        csv_table = read_csv(self.csv_path, wanted)
        parts = []
        for path in self._paths_for(start, end):
            table = read_day_file(path, wanted, start, end)
            if table is not None:
                parts.append(_in_range(table, start, end))
        if csv_table is not None:
            parts.append(_in_range(csv_table, start, end))  # today's rows come last in time
        return unique_sorted(concat(parts, wanted))

    def arrays(self, start: datetime, end: datetime, metrics: list[str]) -> "tuple[Any, dict[str, Any]]":
        """``read`` as numpy: epoch seconds and one float64 array (NaN for null) per metric."""
        table = self.read(start, end, columns=metrics)
        t = table.column(TIMESTAMP).cast("int64").to_numpy() / 1e6
        columns = {name: table.column(name).to_numpy(zero_copy_only=False).astype("float64") for name in metrics}
        return t, columns

    def seed_arrays(self, start: datetime, end: datetime, metrics: list[str]) -> "tuple[Any, dict[str, Any]]":
        """``arrays``, from a child process when this store keeps Arrow out of its own."""
        if not self.in_child:
            return self.arrays(start, end, metrics)
        from trayapp import dataset_jobs

        return dataset_jobs.seed_result(*dataset_jobs.run(
            {"job": "seed", "data_dir": str(self.data_dir), "start": start.isoformat(), "end": end.isoformat(), "metrics": metrics}
        ))

    def _paths_for(self, start: datetime | None, end: datetime | None) -> list[Path]:
        if start is None:
            return [path for day, path in sorted(self.day_files()) if end is None or day <= _local_date(end) + timedelta(days=1)]
        # one day of margin each side: a row's file is its local day when written, and the
        # zone may have changed since (travel, DST rules)
        first = _local_date(start) - timedelta(days=1)
        last = _local_date(end or datetime.now(timezone.utc)) + timedelta(days=1)
        paths = []
        day = first
        while day <= last:
            path = self.day_path(day)
            if path.exists():
                paths.append(path)
            day += timedelta(days=1)
        return paths


# ---------------------------------------------------------------------- tables


def _rollup_day(data_dir: Path, day: date, table: "pa.Table") -> None:
    """The day's rollup tiers from the rows just written; a failure never fails the rollover."""
    try:
        from trayapp import rollups

        rollups.build_day(data_dir, day, table)
    except Exception as exc:  # noqa: BLE001 - tiers are rebuilt from the day file at the next start
        log.warning("rollup of %s failed (%s); it is rebuilt at the next start", day, str(exc)[:160])


def _rollup_ensure(data_dir: Path) -> None:
    """Start-up: tiers for every day file that lacks a fresh one; a failure never stops recording."""
    try:
        from trayapp import rollups

        rollups.ensure(data_dir)
    except Exception as exc:  # noqa: BLE001
        log.warning("rollups of %s could not be brought up to date (%s)", data_dir, str(exc)[:160])


def _local_date(moment: datetime) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(local_zone()).date()


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def _from_day_number(number: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + number)


def _local_days(table: "pa.Table", tz: tzinfo) -> Any:
    """Each row's local calendar day as a day number (numpy), DST-aware, without pandas.

    The zone's offset is looked up once per distinct quarter hour (UTC offsets change on
    quarter-hour boundaries), so a day of samples costs about a hundred look-ups.
    """
    import numpy as np

    seconds = table.column(TIMESTAMP).cast("int64").to_numpy() // 1_000_000
    quarters = seconds // 900
    unique, inverse = np.unique(quarters, return_inverse=True)
    offsets = np.array(
        [datetime.fromtimestamp(int(q) * 900, timezone.utc).astimezone(tz).utcoffset().total_seconds() for q in unique],  # type: ignore[union-attr]
        dtype="int64",
    )
    return (seconds + offsets[inverse]) // 86400


def release_memory() -> None:
    """Hand memory freed after a big read back to the OS (glibc keeps it otherwise)."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim
            pass


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _no_samples(metrics: list[str]) -> "tuple[Any, dict[str, Any]]":
    """What ``arrays`` returns for no data (numpy only: no Arrow in the recorder)."""
    import numpy as np

    return np.empty(0), {name: np.empty(0) for name in metrics}


def _unused(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``… whichever does not exist yet."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def aside_path(path: Path) -> Path:
    """Where a file that cannot be read is kept for a person to look at: the dot-file
    ``.<name>.unreadable-<time>`` beside it (dataset readers skip dot-files), never one taken."""
    return _unused(path.with_name(f".{path.name}.unreadable-{int(time.time())}"))


def _header_names(line: bytes) -> list[str]:
    """The CSV header's column names, whatever bytes it holds."""
    return line.decode("utf-8", errors="replace").strip().split(",")


@dataclass
class CsvContent:
    """What ``parse_csv`` made of the CSV day file.

    ``table``: the readable rows (timestamp[us, UTC], float64 values; non-finite values null).
    With ``keep_lines``: ``lines`` (the raw data lines after the header, without their newline),
    ``row_lines`` (each table row's index in ``lines``), ``bad`` (lines not read at all: not
    UTF-8, one field, no readable time, a repeated header), ``lossy`` (lines read in part: more
    fields than the header, a value that is not a number) and ``blank``. ``narrow``: rows with
    fewer fields than the header (a column added later; the rest read as null)."""

    header_line: bytes
    table: "pa.Table"
    lines: "Sequence[bytes]" = field(default_factory=list)
    row_lines: Any = None
    bad: list[int] = field(default_factory=list)
    lossy: list[int] = field(default_factory=list)
    blank: list[int] = field(default_factory=list)
    narrow: int = 0


def read_csv(path: Path, columns: list[str] | None = None) -> "pa.Table | None":
    """The CSV day file as a table; a torn last line and malformed lines are skipped.

    Safe to call while another process appends: only complete lines are read. Any bytes read:
    what cannot be read is skipped with one warning naming the file.
    """
    content = parse_csv(path, columns)
    return None if content is None else content.table


def parse_csv(path: Path, columns: list[str] | None = None, keep_lines: bool = False, warn: bool = True) -> CsvContent | None:
    """Read the CSV day file: a fast pass with pyarrow when every line is well formed, else a
    line-by-line pass that reads each line it can. None when there is no file, no complete
    line, or no ``timestamp`` header. ``warn``: say once what could not be read (rollover
    says it itself, with where the bytes went)."""
    import numpy as np

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _warn_once(f"csv:{path}", f"cannot read {path}: {exc}")
        return None
    end = data.rfind(b"\n")
    if end < 0:
        return None
    data = data[: end + 1]
    cut = data.find(b"\n")
    header_line = data[:cut]
    header = _header_names(header_line)
    if header[0] != TIMESTAMP:
        _warn_once(f"csv-header:{path}", f"{path} does not start with a 'timestamp' header; skipped")
        return None
    include = None if columns is None else [c for c in columns if c in header]
    content = _parse_fast(data, header, include, keep_lines)
    if content is None:
        content = _parse_lines(data, header, include)
    content.header_line = header_line
    if warn and (content.bad or content.lossy):
        parts = [f"skipped {len(content.bad)} malformed line(s) (not text, no time, or a repeated header)"] if content.bad else []
        if content.lossy:
            parts.append(f"read {len(content.lossy)} line(s) only in part (more fields than the header, or a value that is not a number)")
        _warn_once(f"csv-rows:{path}:{len(content.bad)}:{len(content.lossy)}",
                   f"{path}: {'; '.join(parts)}; the next rollover keeps their bytes in {path.parent / '.rejected-*.csv'}")
    if warn and content.narrow:
        _warn_once(f"csv-narrow:{path}", f"{path}: {content.narrow} line(s) have fewer fields than the header; read the columns they have")
    if content.row_lines is None:
        content.row_lines = np.arange(content.table.num_rows)
    content.table = _fill_columns(content.table, columns)
    return content


def _parse_fast(data: bytes, header: list[str], include: list[str] | None, keep_lines: bool) -> CsvContent | None:
    """pyarrow's reader, when every line is UTF-8, has the header's width and converts; None
    otherwise (the careful pass then reads what it can)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if len(set(header)) != len(header) or not all(header):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    invalid: list[int] = []

    def on_invalid(row: Any) -> str:
        invalid.append(1)
        return "skip"

    types = {name: (pa.timestamp("us", tz="UTC") if name == TIMESTAMP else pa.float64()) for name in header}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=include),
        )
    except (pa.ArrowException, ValueError, UnicodeDecodeError):
        return None
    if invalid:
        return None
    stamps = table.column(TIMESTAMP)
    if stamps.null_count:
        return None
    us = stamps.cast("int64").to_numpy()
    if len(us) and (us.min() < _EARLIEST_US or us.max() >= _LATEST_US):
        return None
    content = CsvContent(b"", _finite(table))
    if keep_lines:
        if b"\r" in data:  # pyarrow ends a line at a lone \r too: let the careful pass map rows to lines
            return None
        lines = _Lines(data)
        blank = np.flatnonzero(np.diff(lines.ends) == 1).tolist() if b"\n\n" in data else []
        if len(lines) - len(blank) != table.num_rows:
            return None
        row_lines = np.arange(len(lines))
        if blank:
            row_lines = np.delete(row_lines, blank)
        content.lines, content.blank, content.row_lines = lines, blank, row_lines
    return content


class _Lines:
    """The data lines of a CSV (after the header, without their newline), sliced on demand:
    a day of 1 s samples is 86,400 lines, and a rollover needs only the few it keeps."""

    def __init__(self, data: bytes) -> None:
        import numpy as np

        self.data = data
        self.ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)  # the header's newline first

    def __len__(self) -> int:
        return max(len(self.ends) - 1, 0)

    def __getitem__(self, i: int) -> bytes:
        return self.data[int(self.ends[i]) + 1 : int(self.ends[i + 1])]


_NOT_A_NUMBER = {"", "nan", "-nan", "+nan", "na", "n/a", "null", "none"}


def _parse_lines(data: bytes, header: list[str], include: list[str] | None) -> CsvContent:
    """Every line on its own: the ones that cannot be read are listed, the rest read."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    names = list(dict.fromkeys(n for n in (include if include is not None else header) if n))  # a repeated name: its first column
    position: dict[str, int] = {}
    for i, name in enumerate(header):
        if name and name not in position:
            position[name] = i
    width = len(header)
    lines = data.split(b"\n")[1:-1]
    header_line = data[: data.find(b"\n")]
    bad: list[int] = []
    blank: list[int] = []
    short: list[int] = []
    wide: list[int] = []
    row_lines: list[int] = []
    cells: dict[str, list[str]] = {name: [] for name in names}
    for i, raw in enumerate(lines):
        if not raw.strip():
            blank.append(i)
            continue
        if raw.rstrip(b"\r") == header_line.rstrip(b"\r"):
            bad.append(i)  # a header repeated mid-file (two writers, a bad copy): no data
            continue
        try:
            fields = raw.decode("utf-8").rstrip("\r").split(",")
        except UnicodeDecodeError:
            bad.append(i)
            continue
        if len(fields) < 2:
            bad.append(i)
            continue
        if len(fields) < width:  # a column the header gained later: null for this row
            short.append(i)
        elif len(fields) > width:  # fields the header does not name: read the others, keep the bytes
            wide.append(i)
        row_lines.append(i)
        for name in names:
            at = position[name]
            cells[name].append(fields[at] if at < len(fields) else "")
    stamps = pa.array(parse_timestamps(pd.Series(cells.get(TIMESTAMP, []), dtype="object")), type=pa.timestamp("us", tz="UTC"))
    us = stamps.cast("int64").fill_null(0).to_numpy()
    ok = stamps.is_valid().to_numpy(zero_copy_only=False) & (us >= _EARLIEST_US) & (us < _LATEST_US)
    lines_of_rows = np.asarray(row_lines, dtype="int64")
    bad.extend(lines_of_rows[~ok].tolist())
    lossy = set(lines_of_rows[np.isin(lines_of_rows, wide) & ok].tolist())
    columns: dict[str, Any] = {TIMESTAMP: stamps.filter(pa.array(ok))}
    for name in names:
        if name == TIMESTAMP:
            continue
        text = pd.Series(cells[name], dtype="object").str.strip()
        values = np.array(pd.to_numeric(text, errors="coerce"), dtype="float64")
        unread = np.isnan(values) & ~text.str.lower().isin(_NOT_A_NUMBER).to_numpy()
        lossy.update(lines_of_rows[unread & ok].tolist())
        values[~np.isfinite(values)] = np.nan
        columns[name] = pa.array(values[ok], type=pa.float64(), from_pandas=True)
    narrow = int(np.isin(lines_of_rows[ok], short).sum()) if short else 0
    return CsvContent(header_line, pa.table(columns), lines, lines_of_rows[ok], sorted(bad), sorted(lossy), blank, narrow)


def _finite(table: "pa.Table") -> "pa.Table":
    """NaN and ±inf in value columns become null: "not available", as everywhere else."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if name == TIMESTAMP or not pa.types.is_floating(col.type):
            continue
        finite = pc.is_finite(col)  # null stays null
        if pc.any(pc.invert(finite)).as_py():
            table = table.set_column(i, name, pc.if_else(finite, col, pa.scalar(None, col.type)))
    return table


def parse_timestamps(values: Any) -> Any:
    """Strings (ISO-8601, with or without an offset) to UTC; naive ones are local time."""
    import pandas as pd

    text = pd.Series(values, dtype="string").str.strip()
    has_offset = text.str.contains(_HAS_OFFSET, na=False)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    if has_offset.any():
        out[has_offset] = pd.to_datetime(text[has_offset], utc=True, errors="coerce", format="ISO8601").astype("datetime64[us, UTC]")
    naive = ~has_offset & text.notna()
    if naive.any():
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        out[naive] = localize(parsed).astype("datetime64[us, UTC]")
    return out


def localize(naive: Any) -> Any:
    """Naive local timestamps (the notebook's) to UTC, DST-aware."""
    import pandas as pd

    series = pd.Series(naive)
    zone = local_zone()
    try:
        aware = series.dt.tz_localize(zone, ambiguous="infer", nonexistent="shift_forward")
    except Exception:  # pandas cannot infer an ambiguous autumn hour from a gap; mark it unknown
        aware = series.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
    return aware.dt.tz_convert("UTC")


def read_day_file(
    path: Path, columns: list[str] | None, start: datetime | None = None, end: datetime | None = None
) -> "pa.Table | None":
    """One Parquet day file, normalised: timestamp[us, UTC] and float64 metrics; what cannot be
    read (the whole file, some rows, a column) is skipped with one warning naming the file.

    With ``start``/``end``, a file whose timestamp statistics show it lies wholly outside
    ``(start, end]`` is not read at all (the day of margin on each side of a range costs a
    footer, not a file).
    """
    table, problems = load_day_file(path, columns, start, end)
    if problems:
        _warn_once(f"parquet:{path}", f"day file {path}: {'; '.join(problems)}; " + ("skipped it" if table is None else "read the rest"))
    return table


def load_day_file(
    path: Path, columns: list[str] | None, start: datetime | None = None, end: datetime | None = None
) -> "tuple[pa.Table | None, list[str]]":
    """``read_day_file`` without the warning: (what could be read or None, what could not)."""
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as parquet:
            names = parquet.schema_arrow.names
            if _outside(parquet, names, start, end):
                return None, []
            include = None if columns is None else [c for c in columns if c in names]
            table = parquet.read(columns=include)
    except Exception as exc:  # any bytes may be there: pyarrow raises OSError, ArrowException, ValueError…
        text = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return None, [f"unreadable ({text})"]
    if TIMESTAMP not in table.column_names:
        return None, ["it has no 'timestamp' column"]
    try:
        table, problems = normalise(table, with_problems=True)
    except Exception as exc:  # a value pandas or Arrow chokes on: the file is unreadable, not the program
        return None, [f"unreadable ({type(exc).__name__}: {str(exc)[:120]})"]
    return _fill_columns(table, columns), problems


def _outside(parquet: Any, names: list[str], start: datetime | None, end: datetime | None) -> bool:
    """True when the file's UTC timestamp statistics put every row outside ``(start, end]``."""
    import pyarrow as pa

    if (start is None and end is None) or TIMESTAMP not in names:
        return False
    field = parquet.schema_arrow.field(TIMESTAMP)
    if not (pa.types.is_timestamp(field.type) and field.type.tz is not None):
        return False  # naive or text timestamps (the notebook's): their statistics are not UTC
    meta = parquet.metadata
    index = names.index(TIMESTAMP)
    lows, highs = [], []
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            return False
        lows.append(stats.min)
        highs.append(stats.max)
    if not lows:
        return False
    low, high = _aware(min(lows)), _aware(max(highs))
    return (start is not None and high <= start) or (end is not None and low > end)


def _aware(moment: Any) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def normalise(table: "pa.Table", with_problems: bool = False) -> Any:
    """timestamp[us, UTC] and float64 columns from what a day file holds (ours, the notebook's
    text or naive times). Rows without a readable time and columns of types that are not numbers
    are left out; NaN and ±inf become null. With ``with_problems``: (table, what was left out)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    problems: list[str] = []
    ts = table.column(TIMESTAMP)
    readable = True
    if pa.types.is_timestamp(ts.type):
        if ts.type.tz is None:
            ts = pa.chunked_array([pa.array(localize(ts.to_pandas()), type=pa.timestamp("us", tz="UTC"))])
        else:
            ts = ts.cast(pa.timestamp("us", tz="UTC"), safe=False)
    elif pa.types.is_string(ts.type) or pa.types.is_large_string(ts.type):  # the notebook's read_csv text
        ts = pa.array(parse_timestamps(ts.to_pandas()), type=pa.timestamp("us", tz="UTC"))
    else:
        problems.append(f"its timestamp column is {ts.type}, not a time")
        readable = False
        ts = pa.nulls(table.num_rows, pa.timestamp("us", tz="UTC"))
    columns = {TIMESTAMP: ts}
    for name in table.column_names:
        if name == TIMESTAMP or name.startswith("__"):
            continue
        col = table.column(name)
        if pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_null(col.type):
            columns[name] = col.cast(pa.float64(), safe=False)
        elif pa.types.is_decimal(col.type):
            columns[name] = col.cast(pa.float64(), safe=False)
            problems.append(f"column {name!r} is {col.type} (read as float)")
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            columns[name] = _to_float(col)
            unread = columns[name].null_count - col.null_count
            if unread:
                problems.append(f"{unread} value(s) of {name!r} are not numbers")
        else:
            problems.append(f"column {name!r} is {col.type}, not numbers; left out")
    table = _finite(pa.table(columns))
    stamps = table.column(TIMESTAMP)
    us = stamps.cast("int64")
    valid = pc.and_kleene(pc.greater_equal(us, _EARLIEST_US), pc.less(us, _LATEST_US)).fill_null(False)
    dropped = table.num_rows - pc.sum(valid).as_py() if table.num_rows else 0
    if dropped and readable:
        problems.append(f"{dropped} row(s) without a readable time (or one before 1970 or after 2199)")
    if dropped:
        table = table.filter(valid)
    return (table, problems) if with_problems else table


def _to_float(col: Any) -> Any:
    import pandas as pd
    import pyarrow as pa

    return pa.array(pd.to_numeric(col.to_pandas(), errors="coerce"), type=pa.float64())


def _fill_columns(table: "pa.Table", columns: list[str] | None) -> "pa.Table":
    """Asked-for columns a file lacks read as null (a GPU column added mid-history)."""
    import pyarrow as pa

    if columns is None:
        return table
    for name in columns:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.float64()))
    return table.select(columns)


def empty_table(columns: list[str] | None = None) -> "pa.Table":
    import pyarrow as pa

    names = columns or [TIMESTAMP, *BASE_COLUMNS]
    return pa.table({n: pa.array([], type=pa.timestamp("us", tz="UTC") if n == TIMESTAMP else pa.float64()) for n in names})


def concat(parts: list["pa.Table"], columns: list[str] | None = None) -> "pa.Table":
    import pyarrow as pa

    parts = [p for p in parts if p.num_rows]
    if not parts:
        return empty_table(columns)
    if len(parts) == 1:
        table = parts[0]
    else:
        table = pa.concat_tables(parts, promote_options="default")
    return table.select(column_order(table.column_names))


def _in_range(table: "pa.Table", start: datetime | None, end: datetime | None) -> "pa.Table":
    import pyarrow as pa
    import pyarrow.compute as pc

    if not table.num_rows:
        return table
    ts = table.column(TIMESTAMP)
    mask = None
    if start is not None:
        mask = pc.greater(ts, pa.scalar(start, type=pa.timestamp("us", tz="UTC")))
    if end is not None:
        upper = pc.less_equal(ts, pa.scalar(end, type=pa.timestamp("us", tz="UTC")))
        mask = upper if mask is None else pc.and_(mask, upper)
    return table if mask is None else table.filter(mask)


def unique_sorted(table: "pa.Table") -> "pa.Table":
    """Sorted by time, one row per timestamp (the first one seen wins).

    Day files in date order followed by the CSV are usually sorted already: then this costs one
    pass over the timestamps instead of a sort.
    """
    import numpy as np
    import pyarrow.compute as pc

    if table.num_rows < 2:
        return table
    stamps = table.column(TIMESTAMP).cast("int64").to_numpy()
    if bool(np.all(stamps[1:] > stamps[:-1])):
        return table
    order = pc.sort_indices(table.column(TIMESTAMP))
    table = table.take(order)
    stamps = stamps[order.to_numpy()]
    keep = np.empty(len(stamps), dtype=bool)
    keep[0] = True
    np.not_equal(stamps[1:], stamps[:-1], out=keep[1:])
    return table if keep.all() else table.filter(keep)
