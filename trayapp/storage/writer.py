"""The dataset's writer (``Store``): today's CSV, its rollover into the day files and their tiers
(with Arrow, here or in the child), the recorder's midnight without Arrow, retention.

Imports the storage modules that load no Arrow at import (never ``tier_builder`` at the top, never
``child_job``: the caller hands it a ``JobRunner``), ``model`` and ``jsonfile``; never Qt.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trayapp.jsonfile import make_folder, remove_quietly, replace_atomically
from trayapp.heap import release_memory
from trayapp.model import Sample
from trayapp.storage.bins import MinuteBins, unstack_bins
from trayapp.storage.csv_file import csv_fields, header_names, parse_csv
from trayapp.storage.day_files import load_day_file, remove_days_before
from trayapp.storage.layout import (
    CSV_DIR, CSV_MAX, CSV_NAME, DATASET_DIR, TIMESTAMP, StoreError, aside_path, column_order, day_files,
    day_number, day_of_number, day_path, local_day_numbers, local_zone, micros,
)
from trayapp.storage.midnight import LeftToChild, retention, roll
from trayapp.storage.ranges import csv_minutes, read, samples
from trayapp.storage.rows_file import RowsFile, rows_path
from trayapp.storage.tables import concat, stamps_us, take_rows, unique_sorted
from trayapp.storage.writer_lock import WriterLock, only_a_file, take_writer_lock

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("trayapp.storage")


class JobFailed(StoreError):
    """A dataset job run elsewhere (``child_job``: a child process) could not be done; the
    message is its one line."""


# runs one dataset job ({"job": "maintain" | "seed", ...}) elsewhere; returns (meta, arrays)
JobRunner = Callable[[dict[str, Any]], "tuple[dict[str, Any], dict[str, Any]]"]


class Store:
    """One data folder. Readers need nothing but ``read``; one writer holds ``open_writer``."""

    LOST_SAY_EVERY = 600.0  # seconds: a full disk is said at most this often

    def __init__(self, data_dir: str | os.PathLike[str], retention_days: int = 0, jobs: JobRunner | None = None, minutes: bool = False) -> None:
        """``jobs``: a long-running writer hands its Arrow work (rollover, seeding) to this runner
        (``child_job.run_job``, a short-lived child), so it never loads pyarrow itself.

        ``minutes``: the writer keeps its CSV's rows as minute bins in ``self.minutes`` (the tray
        app's window reads today from there); None until the writer opens, and whenever they are
        not known (a start-up rollover that failed): readers then parse the CSV."""
        self.data_dir = Path(data_dir)
        self.jobs = jobs
        self.keep_minutes = minutes
        self.minutes: MinuteBins | None = None
        self.dataset_dir = self.data_dir / DATASET_DIR
        self.csv_path = self.data_dir / CSV_DIR / CSV_NAME
        self.retention_days = retention_days
        self._fd: int | None = None
        self._header: list[str] = []
        self._names: tuple[str, ...] = ()  # the header's metric columns (after the timestamp), in order
        self._columns: frozenset[str] = frozenset()  # the same, to see at once whether a sample fits
        self._size = 0
        self._min_day: date | None = None
        self._lock: WriterLock | None = None
        self._retry_rollover_at = 0.0
        self._tz: tzinfo = timezone.utc
        self._lost = 0  # samples not written since the CSV last took one (a full disk)
        self._lost_unsaid = 0  # samples lost in outages not yet reported
        self._lost_said = False  # this outage was said
        self._lost_said_at: float | None = None
        self.rows: RowsFile | None = None  # the CSV's rows as numbers, for midnight in this process
        self._rows_info: dict[str, Any] | None = None

    # ------------------------------------------------------------------ paths

    def day_path(self, day: date) -> Path:
        return day_path(self.data_dir, day)

    def day_files(self) -> Iterator[tuple[date, Path]]:
        """Every day file in the dataset, in no particular order (for export and retention)."""
        return day_files(self.data_dir)

    # ----------------------------------------------------------------- writer

    def open_writer(self, now: datetime | None = None, seed: "tuple[datetime, datetime, list[str]] | None" = None) -> "Any":
        """Take the folder's writer lock, mend a torn CSV tail and roll earlier days over.

        With ``seed`` (start, end, metrics), also returns ``arrays(start, end, metrics)``, read
        after the rollover (by the same child, when this store keeps Arrow out)."""
        for folder in (self.data_dir, self.csv_path.parent, self.dataset_dir):
            make_folder(folder, self.data_dir)  # a file where a folder goes is set aside
        self._lock = take_writer_lock(self.data_dir)
        self._tz = local_zone()
        now = now or datetime.now(timezone.utc)
        if self.jobs is not None:
            try:
                seeded = self._maintain_in_child(now.astimezone(self._tz).date(), seed)
            except JobFailed as exc:  # never refuse to record: the CSV takes samples without Arrow
                log.warning("start-up rollover of %s failed (%s); recording anyway, will try again in 10 minutes", self.csv_path, exc)
                self._mend_csv()
                self._min_day = date.min  # unknown: the retry finds out
                self._retry_rollover_at = time.monotonic() + 600
                seeded = _no_samples(seed[2]) if seed else None
                self.minutes = None
        else:
            self.maintain(now.astimezone(self._tz).date())
            seeded = self.arrays(*seed) if seed else None
            self._minutes_from_csv()
        self._open_csv()
        self._adopt_rows()
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
        assert self.jobs is not None
        self._close_csv()
        self._drop_rows()  # the child writes it afresh

        only_a_file(rows_path(self.csv_path))  # a folder there would fail every rollover
        job: dict[str, Any] = {"job": "maintain", "data_dir": str(self.data_dir), "retention_days": self.retention_days, "today": today.isoformat()}
        if seed:
            job["seed"] = {"start": seed[0].isoformat(), "end": seed[1].isoformat(), "metrics": seed[2]}
        if self.keep_minutes:
            job["minutes"] = True
        job["rows"] = True  # the rows file: midnight without Arrow, in this process (``midnight.roll``)
        meta, arrays = self.jobs(job)
        self._rows_info = meta.get("rows")
        self._min_day = date.fromisoformat(meta["min_day"]) if meta.get("min_day") else None
        if self.keep_minutes:
            self.minutes = MinuteBins()
            self.minutes.seed(*unstack_bins(arrays["minutes"], meta["minute_names"]))
        return unpack_samples(meta, arrays) if seed else None

    def _adopt_rows(self) -> None:
        """Take over the rows file the child wrote beside the CSV (``rows_file``), if it is whole."""
        if self._rows_info is not None:

            self.rows = RowsFile.adopt(self.csv_path, self._rows_info, self._header)
            self._rows_info = None

    def _drop_rows(self) -> None:
        if self.rows is not None:
            self.rows.drop()
            self.rows = None

    def _minutes_from_csv(self) -> None:
        """``minutes`` afresh from the CSV, read here (a writer that does its Arrow work itself)."""
        if not self.keep_minutes:
            return

        self.minutes = MinuteBins()
        self.minutes.seed(*csv_minutes(self.data_dir))

    def _remove_stale_temporaries(self) -> None:
        """Temporary files a killed writer left (``.D.parquet.<random>.tmp``, ``.daily_dump.csv.
        <random>.tmp``): only the holder of the writer lock writes these, so any found now are dead."""
        for path in [*self.dataset_dir.glob("Year=*/Month=*/.*.tmp"), *self.csv_path.parent.glob(".*.tmp")]:
            remove_quietly(path)

    def _mend_csv(self) -> None:
        """Cut a torn last line (a crash mid-write) off, keeping its bytes aside; set aside a
        file that is not our CSV (its first field is not ``timestamp``)."""
        path = self.csv_path
        only_a_file(path, CSV_MAX)
        if not path.exists():
            return
        with open(path, "rb+") as f:
            data = f.read()
            if not data:
                return
            if header_names(data[: data.find(b"\n") if b"\n" in data else len(data)])[:1] != [TIMESTAMP]:
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
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        only_a_file(self.csv_path, CSV_MAX)
        make_folder(self.csv_path.parent, self.data_dir)
        self._fd = os.open(self.csv_path, flags, 0o644)  # without blocking: a FIFO put there since fails, never waits
        if hasattr(os, "set_blocking"):
            os.set_blocking(self._fd, True)
        self._size = os.fstat(self._fd).st_size
        self._set_header([])
        if self._size:
            with open(self.csv_path, "rb") as f:
                self._set_header(header_names(f.readline()))

    def append(self, sample: Sample, values: dict[str, float | None] | None = None) -> bool:
        """Write one sample to the CSV day file; roll earlier days over first when one ends.
        ``values``: ``sample.values()`` where the caller has it already.

        Returns False (after one warning) when the sample could not be written, e.g. a full
        disk; the file is left as it was, so nothing written before is harmed.
        """
        if self._fd is None:
            raise StoreError("the store is not open for writing")
        local = sample.timestamp.astimezone(self._tz)
        day = local.date()
        if self._min_day is not None and day > self._min_day and time.monotonic() >= self._retry_rollover_at:
            self._roll(day)
            local = sample.timestamp.astimezone(self._tz)  # a rollover reads the zone afresh
        if values is None:
            values = sample.values()
        try:
            if not self._header or not values.keys() <= self._columns:
                missing = [name for name in values if name not in self._columns]
                self._widen([*self._header, *column_order(missing)] if self._header else [TIMESTAMP, *column_order(values)])
            fields, numbers = csv_fields(values, self._names)
            line = (",".join([local.isoformat(timespec="microseconds"), *fields]) + "\n").encode()
            self._write(line)
            t_us = micros(sample.timestamp)
            if self.minutes is not None:
                self.minutes.add(t_us, dict(zip(self._names, numbers)))
            if self.rows is not None and not self.rows.add(line, t_us, numbers):
                self.rows = None  # the next midnight is the child's
        except OSError as exc:
            # once an outage, and not again within LOST_SAY_EVERY: a disk hovering at full would
            # otherwise fill the log with pairs of lines, pushing out what is worth keeping
            if not self._lost and (self._lost_said_at is None or time.monotonic() - self._lost_said_at >= self.LOST_SAY_EVERY):
                log.warning("cannot write to %s: %s; samples are not being kept until it can", self.csv_path, exc.strerror or exc)
                self._lost_said_at = time.monotonic()
                self._lost_said = True
            self._lost += 1
            return False
        if self._lost:
            self._lost_unsaid += self._lost
            self._lost = 0
            if self._lost_said:
                log.warning("writing to %s again; %d sample(s) were not kept", self.csv_path, self._lost_unsaid)
                self._lost_said, self._lost_unsaid = False, 0
        if self._min_day is None or day < self._min_day:
            self._min_day = day
        return True

    def _roll(self, today: date) -> None:
        if self.jobs is None:
            self.rollover(today)
            self._minutes_from_csv()
        elif not self._roll_here(today):
            try:
                self._maintain_in_child(today)
            except JobFailed as exc:
                self._retry_rollover_at = time.monotonic() + 600
                log.warning("rollover of the CSV day file failed (%s); kept it as it is, will try again in 10 minutes", exc)
            self._open_csv()
            self._adopt_rows()
        if self._min_day is not None and self._min_day < today:  # rows stayed behind: not on every sample
            self._retry_rollover_at = max(self._retry_rollover_at, time.monotonic() + 600)

    def _roll_here(self, today: date) -> bool:
        """Midnight in this process, without Arrow (``midnight.roll``); False when the child is
        to do it (it then also finishes whatever this began)."""
        if self.rows is None:
            return False
        try:
            self._min_day = roll(self.data_dir, self.csv_path, self.rows, self._tz, today, self._replace_csv, self.minutes)
            if self.rows.dropped:
                self.rows = None
            retention(self.data_dir, self.retention_days, self._tz, today)
        except LeftToChild as exc:
            log.info("midnight rollover goes to a child: %s", exc)
            return False
        except Exception as exc:  # noqa: BLE001 - the child's rollover mends whatever this left
            log.warning("midnight rollover in the app stopped (%s: %s); a child finishes it", type(exc).__name__, str(exc)[:160])
            self._drop_rows()
            if self._fd is None:
                self._open_csv()
            return False
        finally:
            release_memory()
        return True

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

    def _set_header(self, header: list[str]) -> None:
        self._header = header
        self._names = tuple(header[1:])
        self._columns = frozenset(self._names)

    def _widen(self, header: list[str]) -> None:
        """Start the file, or add columns (a GPU appeared): older rows get empty fields."""
        if not self._header:
            if self._size:
                raise StoreError("CSV has rows but no header")
            line = (",".join(header) + "\n").encode()
            self._write(line)
            self._set_header(header)  # only once written: a full disk here must not leave rows without a header
            if self.rows is not None and not self.rows.begin(line, header[1:]):
                self.rows = None
            return
        extra = len(header) - len(self._header)
        day_rows, self.rows = self.rows, None  # not trusted while the CSV is rewritten
        with open(self.csv_path, "rb") as f:
            f.readline()
            rows = f.read()
        padded = b"".join(line + b"," * extra + b"\n" for line in rows.split(b"\n") if line)  # \r inside a line stays
        content = (",".join(header) + "\n").encode() + padded
        del rows, padded
        self._replace_csv(content)
        self._set_header(header)
        if day_rows is not None:  # the rows file widened the same way: midnight stays in this process
            try:
                day_rows.widen(header[1:], content)
                self.rows = day_rows
            except (OSError, ValueError):
                day_rows.drop()

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

        content = parse_csv(self.csv_path, keep_lines=True, warn=False)
        if content is None:
            self._min_day = None
            self._apply_retention(today)
            return 0
        table = content.table
        days = _local_days(table, self._tz) if table.num_rows else np.empty(0, dtype="int64")
        first_kept = day_number(today)
        leaving = np.zeros(len(content.lines), dtype=bool)  # lines that may leave the CSV
        moved = 0
        unverified = 0
        try:
            earlier = np.sort(days[days < first_kept])  # not np.unique: it imports numpy.ma
            for number in earlier[np.r_[True, earlier[1:] != earlier[:-1]]].tolist() if len(earlier) else []:
                mask = days == number
                rows = take_rows(table, mask)
                if self._merge_day(day_of_number(number), rows):
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
        self._min_day = day_of_number(int(remaining.min())) if len(remaining) else None
        self._apply_retention(today)
        return moved

    def _merge_day(self, day: date, rows: "pa.Table") -> bool:
        """Merge ``rows`` into the day's file; True once they are read back from it.

        A day file the store cannot read in full (broken bytes, a timestamp it cannot read, a
        column of a type it cannot read) is never merged into or overwritten: it is renamed to
        ``.D.parquet.unreadable-<time>`` with one warning, and the new day file holds what could
        be read from it plus ``rows``."""
        import pyarrow as pa  # lazy: the tray app imports this module and must not load Arrow
        import pyarrow.parquet as pq  # lazy: Arrow, only when a file is read with it

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
        wanted = stamps_us(rows.column(TIMESTAMP))  # not to_numpy: it imports pandas
        there = stamps_us(back.column(TIMESTAMP))  # sorted: the file was written sorted
        if not len(there) or not bool(np.all(there[1:] > there[:-1])):
            return bool(np.isin(wanted, there).all())
        found = np.minimum(np.searchsorted(there, wanted), len(there) - 1)
        return bool(np.all(there[found] == wanted))

    def _apply_retention(self, today: date) -> None:
        if self.retention_days > 0:
            remove_days_before(self.data_dir, today - timedelta(days=self.retention_days))

    def close(self) -> None:
        """Close the CSV and the rows file and let go of the writer lock; idempotent."""
        self._close_csv()
        rows, self.rows = self.rows, None
        if rows is not None:
            rows.close()
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    # ----------------------------------------------------------------- reader

    def read(self, start: datetime | None = None, end: datetime | None = None, columns: Iterable[str] | None = None) -> "pa.Table":
        """``ranges.read`` of this folder: samples with ``start < timestamp <= end``."""

        return read(self.data_dir, start, end, columns)

    def arrays(self, start: datetime, end: datetime, metrics: list[str]) -> "tuple[Any, dict[str, Any]]":
        """``ranges.samples`` of this folder: epoch seconds and one float64 array per metric."""

        return samples(self.data_dir, start, end, metrics)

    def seed_arrays(self, start: datetime, end: datetime, metrics: list[str]) -> "tuple[Any, dict[str, Any]]":
        """``arrays``, read by the job runner when this store keeps Arrow out of its process."""
        if self.jobs is None:
            return self.arrays(start, end, metrics)
        return unpack_samples(*self.jobs({"job": "seed", "data_dir": str(self.data_dir), "start": start.isoformat(), "end": end.isoformat(), "metrics": metrics}))


def pack_samples(t: Any, columns: dict[str, Any]) -> "tuple[dict[str, Any], dict[str, Any]]":
    """A seed job's answer (``child_job``): epoch seconds and one array per metric as (meta, arrays)."""
    return {"metrics": list(columns)}, {"t": t, **{f"m_{name}": v for name, v in columns.items()}}


def unpack_samples(meta: dict[str, Any], arrays: dict[str, Any]) -> "tuple[Any, dict[str, Any]]":
    """``pack_samples`` undone: the (epoch seconds, {metric: values}) a seed job sent back."""
    return arrays["t"], {name: arrays[f"m_{name}"] for name in meta["metrics"]}


# ---------------------------------------------------------------------- the tiers, with Arrow


def _rollup_day(data_dir: Path, day: date, table: "pa.Table") -> None:
    """The day's rollup tiers from the rows just written; a failure never fails the rollover."""
    try:
        from trayapp.storage.tier_builder import build_day  # lazy: Arrow, loaded only by a rollover with Arrow

        build_day(data_dir, day, table)
    except Exception as exc:  # noqa: BLE001 - tiers are rebuilt from the day file at the next start
        log.warning("rollup of %s failed (%s); it is rebuilt at the next start", day, str(exc)[:160])


def _rollup_ensure(data_dir: Path) -> None:
    """Start-up: tiers for every day file that lacks a fresh one; a failure never stops recording."""
    try:
        from trayapp.storage.tier_builder import ensure  # lazy: Arrow, loaded only at start-up in the child

        ensure(data_dir)
    except Exception as exc:  # noqa: BLE001
        log.warning("rollups of %s could not be brought up to date (%s)", data_dir, str(exc)[:160])


def _no_samples(metrics: list[str]) -> "tuple[Any, dict[str, Any]]":
    """What ``arrays`` returns for no data (numpy only: no Arrow in the recorder)."""

    return np.empty(0), {name: np.empty(0) for name in metrics}


def _local_days(table: "pa.Table", tz: tzinfo) -> Any:
    """Each row's local calendar day as a day number (numpy), DST-aware, without pandas."""
    return local_day_numbers(stamps_us(table.column(TIMESTAMP)), tz)
