"""The dataset on disk: today's CSV day file and the Parquet day files it rolls into.

Imports ``model``, pyarrow and (for time-zone arithmetic and lenient parsing) pandas; never Qt.

Layout (kept from the notebook, so its data still reads):
``<data_dir>/Monitoring/Year=YYYY/Month=M/D.parquet`` and ``<data_dir>/csv_dump/daily_dump.csv``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trayapp.model import BASE_COLUMNS, Sample

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
        m = re.match(r"gpu(\d+)_(.*)$", name)
        if m:
            return (2, int(m.group(1)), m.group(2))
        return (3, 0, name)

    return sorted(set(names), key=key)


def format_value(value: float | None) -> str:
    return "" if value is None else repr(round(float(value), 4))


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
            except JobFailed as exc:
                self.close()
                raise StoreError(str(exc)) from None
        else:
            self.maintain(now.astimezone(self._tz).date())
            seeded = self.arrays(*seed) if seed else None
        self._open_csv()
        return seeded

    def maintain(self, today: date) -> date | None:
        """Mend a torn CSV tail, roll earlier days over, apply retention; returns the earliest
        day left in the CSV. The caller holds the writer lock (this process or its parent)."""
        self._tz = local_zone()
        self._mend_csv()
        self._open_csv()
        try:
            self.rollover(today)
        finally:
            self._close_csv()
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

    def _mend_csv(self) -> None:
        """Drop a torn last line (a crash mid-write); set aside a file that is not our CSV."""
        path = self.csv_path
        if not path.exists():
            return
        with open(path, "rb+") as f:
            data = f.read()
            if not data:
                return
            if not data.startswith(TIMESTAMP.encode()):
                aside = path.with_name(f"{CSV_NAME}.unreadable-{int(time.time())}")
                f.close()
                os.replace(path, aside)
                log.warning("CSV day file had no header; kept it aside as %s and started a new one", aside)
                return
            if not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                f.truncate(cut)
                log.warning("CSV day file ended in a torn line (a crash while writing); skipped it")

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
                self._header = f.readline().decode().strip().split(",")

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
            return
        from trayapp.dataset_jobs import JobFailed

        try:
            self._maintain_in_child(today)
        except JobFailed as exc:
            self._retry_rollover_at = time.monotonic() + 600
            log.warning("rollover of the CSV day file failed (%s); kept it as it is, will try again in 10 minutes", exc)
        self._open_csv()

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
        padded = b"".join(line + b"," * extra + b"\n" for line in rows.splitlines() if line)
        self._replace_csv((",".join(header) + "\n").encode() + padded)
        self._header = header

    def _replace_csv(self, content: bytes) -> None:
        tmp = self.csv_path.with_name(f".{CSV_NAME}.tmp")
        with open(tmp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        self._close_csv()
        os.replace(tmp, self.csv_path)
        self._open_csv()

    def rollover(self, today: date) -> int:
        """Move every CSV row of a day before ``today`` into that day's Parquet file.

        Each day file is merged with what is there, written under a temporary name and renamed
        into place; only then is the CSV trimmed. Running it twice changes nothing. Returns the
        number of rows moved.
        """
        table = read_csv(self.csv_path)
        if table is None or table.num_rows == 0:
            self._min_day = None
            self._apply_retention(today)
            return 0
        import numpy as np

        days = _local_days(table, self._tz)  # day numbers since 1970-01-01, local time
        first_kept = _day_number(today)
        moved = 0
        try:
            for number in np.unique(days[days < first_kept]).tolist():
                rows = table.filter(days == number)
                self._merge_day(_from_day_number(number), rows)
                moved += rows.num_rows
            if moved:
                self._replace_csv(self._csv_bytes(table.filter(days >= first_kept)))
        except OSError as exc:
            self._retry_rollover_at = time.monotonic() + 600
            log.warning("rollover of the CSV day file failed (%s); kept it as it is, will try again in 10 minutes", exc.strerror or exc)
            return 0
        remaining = days[days >= first_kept]
        self._min_day = _from_day_number(int(remaining.min())) if len(remaining) else None
        self._apply_retention(today)
        return moved

    def _csv_bytes(self, table: "pa.Table") -> bytes:
        header = self._header or column_order(table.column_names)
        lines = [",".join(header)]
        cols = {name: table.column(name).to_pylist() if name in table.column_names else None for name in header}
        for i in range(table.num_rows):
            stamp = cols[TIMESTAMP][i].astimezone(self._tz).isoformat(timespec="microseconds")  # type: ignore[index]
            lines.append(",".join([stamp, *(format_value(cols[n][i] if cols[n] is not None else None) for n in header[1:])]))  # type: ignore[index]
        return ("\n".join(lines) + "\n").encode()

    def _merge_day(self, day: date, rows: "pa.Table") -> None:
        import pyarrow.parquet as pq

        path = self.day_path(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = [rows]
        if path.exists():
            existing = read_day_file(path, None)
            if existing is None:
                aside = path.with_name(f".{path.name}.unreadable-{int(time.time())}")
                os.replace(path, aside)
                log.warning("day file %s could not be read; kept it aside as %s", path, aside)
            else:
                parts.insert(0, existing)
        merged = unique_sorted(concat(parts))
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(merged, tmp, compression="zstd")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

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


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_csv(path: Path, columns: list[str] | None = None) -> "pa.Table | None":
    """The CSV day file as a table; a torn last line and malformed lines are skipped.

    Safe to call while another process appends: only complete lines are read.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

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
    header = data[: data.find(b"\n")].decode(errors="replace").strip().split(",")
    if not header or header[0] != TIMESTAMP:
        _warn_once(f"csv-header:{path}", f"{path} does not start with a 'timestamp' header; skipped")
        return None
    include = None if columns is None else [c for c in columns if c in header]
    skipped: list[Any] = []

    def skip(row: Any) -> str:
        skipped.append(row)
        return "skip"

    types = {name: (pa.timestamp("us", tz="UTC") if name == TIMESTAMP else pa.float64()) for name in header}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            parse_options=pacsv.ParseOptions(invalid_row_handler=skip),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=include),
        )
    except pa.ArrowInvalid:
        # a bad value or a naive (notebook) timestamp somewhere: the careful, slower path
        skipped.clear()
        table = _read_csv_leniently(data, header, include, skip)
    if skipped:
        _warn_once(f"csv-rows:{path}:{len(skipped)}", f"{path}: skipped {len(skipped)} malformed line(s)")
    return _fill_columns(table, columns)


def _read_csv_leniently(data: bytes, header: list[str], include: list[str] | None, skip: Any) -> "pa.Table":
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    raw = pacsv.read_csv(
        pa.py_buffer(data),
        parse_options=pacsv.ParseOptions(invalid_row_handler=skip),
        convert_options=pacsv.ConvertOptions(
            include_columns=include, column_types={name: pa.string() for name in header}, strings_can_be_null=True
        ),
        read_options=pacsv.ReadOptions(use_threads=True),
    )
    frame = raw.to_pandas()
    frame[TIMESTAMP] = parse_timestamps(frame[TIMESTAMP].astype("string"))
    bad = int(frame[TIMESTAMP].isna().sum())
    for name in frame.columns:
        if name != TIMESTAMP:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    if bad:
        for _ in range(bad):
            skip(None)
        frame = frame[frame[TIMESTAMP].notna()]
    return pa.Table.from_pandas(frame, preserve_index=False)


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
    """One Parquet day file, normalised: timestamp[us, UTC] and float64 metrics.

    With ``start``/``end``, a file whose timestamp statistics show it lies wholly outside
    ``(start, end]`` is not read at all (the day of margin on each side of a range costs a
    footer, not a file).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as parquet:
            names = parquet.schema_arrow.names
            if _outside(parquet, names, start, end):
                return None
            include = None if columns is None else [c for c in columns if c in names]
            table = parquet.read(columns=include)
    except (OSError, pa.ArrowException) as exc:
        _warn_once(f"parquet:{path}", f"skipped unreadable day file {path}: {str(exc).splitlines()[0][:160]}")
        return None
    if TIMESTAMP not in table.column_names:
        _warn_once(f"parquet-ts:{path}", f"skipped day file {path}: it has no 'timestamp' column")
        return None
    return _fill_columns(normalise(table), columns)


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


def normalise(table: "pa.Table") -> "pa.Table":
    import pyarrow as pa
    import pyarrow.compute as pc

    ts = table.column(TIMESTAMP)
    if pa.types.is_timestamp(ts.type):
        if ts.type.tz is None:
            ts = pa.chunked_array([pa.array(localize(ts.to_pandas()), type=pa.timestamp("us", tz="UTC"))])
        else:
            ts = ts.cast(pa.timestamp("us", tz="UTC"))
    else:  # strings: the notebook wrote read_csv's text straight into Parquet
        ts = pa.array(parse_timestamps(ts.to_pandas()), type=pa.timestamp("us", tz="UTC"))
    columns = {TIMESTAMP: ts}
    for name in table.column_names:
        if name == TIMESTAMP or name.startswith("__"):
            continue
        col = table.column(name)
        if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
            columns[name] = col.cast(pa.float64())
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            columns[name] = _to_float(col)
    table = pa.table(columns)
    if table.column(TIMESTAMP).null_count == 0:
        return table
    return table.filter(pc.is_valid(table.column(TIMESTAMP)))


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
