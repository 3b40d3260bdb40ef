"""The dataset: today's CSV, the rows file beside it, the Parquet day files, the rollup tiers and
their numpy copies; writing them, rolling days over, reading a range. This is its public face.

Imports its modules, none of which loads Arrow or pandas at import: the tray app and the headless
recorder import this. ``tier_builder`` (Arrow) is imported where a tier is built or read with Arrow.
"""

from trayapp.storage.bins import MinuteBins, median
from trayapp.storage.child_job import child_main, run_job, run_job_unless_loaded
from trayapp.storage.csv_file import csv_field
from trayapp.storage.layout import (
    CSV_DIR, CSV_NAME, EARLIEST, LATEST, TIMESTAMP, StoreError, column_order, day_path, local_zone,
)
from trayapp.storage.ranges import read, samples
from trayapp.storage.window_series import (
    Series, break_gaps, clock_or_day, plotted_columns, prepare_history, series_from_memory,
)
from trayapp.storage.writer import JobFailed, JobRunner, Store
from trayapp.storage.writer_lock import LOCK_NAME, DataDirBusy

__all__ = [
    "CSV_DIR", "CSV_NAME", "EARLIEST", "LATEST", "LOCK_NAME", "TIMESTAMP",
    "DataDirBusy", "JobFailed", "JobRunner", "MinuteBins", "Series", "Store", "StoreError",
    "break_gaps", "child_main", "clock_or_day", "column_order", "csv_field", "day_path", "local_zone", "median",
    "plotted_columns", "prepare_history", "read", "run_job", "run_job_unless_loaded", "samples", "series_from_memory",
]
