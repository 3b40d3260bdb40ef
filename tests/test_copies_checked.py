"""Every derived copy (the window's numpy copies, ``tiers.json``, the tier files) is checked
against the checksum written with it before it is used: altered in place, it is ignored with one
warning, reads return what the day files hold, and a midnight afterwards writes the truth."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.test_midnight import D, assert_tiers_equal, at, feed, history_before, recorder
from trayapp.storage import bins, ranges as history, tier_builder as rollups
from trayapp.storage import tiers
from tests import tier_reads

DAY = D - timedelta(days=2)  # a day with a day file, tiers and copies before the test's midnight


def tamper_copy(path: Path, how: str) -> None:
    """Change a copy in place, its size and its ``.json``'s claims as they were."""
    meta = json.loads(path.with_suffix(".json").read_text())
    if how == "names":
        names = meta["names"]
        names[0], names[1] = names[1], names[0]
        path.with_suffix(".json").write_text(json.dumps(meta, sort_keys=True))
        return
    size = path.stat().st_size
    table = np.load(path)
    if how == "values":
        table[2, table.shape[1] // 4: table.shape[1] // 2] = 1e9  # the first metric's means
    elif how == "nan":
        table[1:, : table.shape[1] // 2] = np.nan
    elif how == "times":
        table[0] += 1  # every bin 1 µs late
    with open(path, "r+b") as f:  # in place: same header, same size
        f.seek(size - table.nbytes)
        f.write(table.astype("<f8").tobytes())
    assert path.stat().st_size == size


def truth(data_dir: Path, tier: str) -> tuple[np.ndarray, dict]:
    """The tier's bins as read with no copies and no tier files: from the day files."""
    return tier_reads.read_tier(data_dir, tier, at(DAY - timedelta(days=1)), at(D), ["cpu_percent", "memory_percent", "load_percent"])


def same(a: tuple[np.ndarray, dict], b: tuple[np.ndarray, dict]) -> None:
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1].keys() == b[1].keys()
    for name in a[1]:
        for x, y in zip(a[1][name], b[1][name]):
            np.testing.assert_allclose(x, y, rtol=1e-12, equal_nan=True)


@pytest.fixture
def twin(tmp_path: Path) -> tuple[Path, Path]:
    a = tmp_path / "tampered"
    history_before(a)
    b = tmp_path / "truth"
    shutil.copytree(a, b)
    shutil.rmtree(b / "Rollups")  # b's reads come from its day files
    return a, b


@pytest.mark.parametrize("how", ["values", "nan", "names", "times"])
@pytest.mark.parametrize("tier", ["minute", "hour"])
def test_an_altered_window_copy_is_read_as_the_truth_with_one_warning(twin: tuple[Path, Path], tier: str, how: str, caplog: pytest.LogCaptureFixture) -> None:
    a, b = twin
    path = tiers.cache_path(a, tier, DAY if tier == "minute" else (DAY.year, DAY.month))
    assert tiers.read_cache(path) is not None
    tamper_copy(path, how)
    with caplog.at_level(logging.WARNING):
        assert tiers.read_cache(path) is None
        assert tiers.cache_intact(path) is None
        same(tier_reads.read_tier(a, tier, at(DAY - timedelta(days=1)), at(D), ["cpu_percent", "memory_percent", "load_percent"]), truth(b, tier))
        same(tier_reads.read_tier(a, tier, at(DAY - timedelta(days=1)), at(D), ["cpu_percent", "memory_percent", "load_percent"]), truth(b, tier))
    assert caplog.text.count(str(path)) == 1  # said once, not at every read
    assert rollups.ensure(a) == 0  # the tier files are fine: only the copy is made again
    assert tiers.read_cache(path) is not None


@pytest.mark.parametrize("how", ["values", "nan", "names", "times"])
@pytest.mark.slow  # over a second or two: `make test-all`
def test_a_midnight_after_a_copy_was_altered_writes_the_truth(tmp_path: Path, how: str) -> None:
    a = tmp_path / "here"
    history_before(a)
    b = tmp_path / "child"
    shutil.copytree(a, b)
    here, child = recorder(a, at(D, 20)), recorder(b, at(D, 20))
    tamper_copy(tiers.cache_path(a, "minute", DAY), how)  # after the start: the midnight meets it
    feed(here, at(D, 20), at(D + timedelta(days=1), 0, 10), 10)
    feed(child, at(D, 20), at(D + timedelta(days=1), 0, 10), 10, child=True)
    here.close()
    child.close()
    for day in (DAY, D - timedelta(days=1), D):
        assert_tiers_equal(tiers.minute_path(a, day), tiers.minute_path(b, day))
    assert_tiers_equal(tiers.hour_path(a, D.year, D.month), tiers.hour_path(b, D.year, D.month))  # every value, as the child made it
    copy = tiers.read_cache(tiers.cache_path(a, "minute", DAY))  # made again from the tier
    assert copy is not None
    same(copy[:2], tiers.read_cache(tiers.cache_path(b, "minute", DAY))[:2])


def test_an_altered_tier_file_is_read_from_the_day_files_and_rebuilt(twin: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    a, b = twin
    path = tiers.minute_path(a, DAY)
    table = pq.read_table(path)
    i = table.column_names.index("cpu_percent_mean")
    values = table.column(i).to_numpy(zero_copy_only=False).copy()
    values[:50] = 99.0
    altered = table.set_column(i, "cpu_percent_mean", pa.array(values))  # the footer's checksum stays as it was
    pq.write_table(altered.replace_schema_metadata(table.schema.metadata), path, compression="zstd")
    tiers.remove_cache(a, "minute", DAY)  # the Parquet tier is read
    with caplog.at_level(logging.WARNING):
        same(truth(a, "minute"), truth(b, "minute"))
    assert "does not match its checksum" in caplog.text
    assert rollups.ensure(a) >= 1  # set aside and rebuilt from the day file
    rebuilt = pq.read_table(tiers.minute_path(a, DAY)).column("cpu_percent_mean").to_pylist()
    assert rebuilt == pytest.approx(table.column("cpu_percent_mean").to_pylist(), rel=1e-12)
    assert list(path.parent.glob(f".{path.name}.unreadable-*"))


def test_an_altered_tiers_json_is_not_trusted(twin: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    a, _ = twin
    rollups.ensure(a)
    index = a / "Rollups" / ".window" / "tiers.json"
    known = json.loads(index.read_text())
    key = next(iter(known["files"]))
    known["files"][key]["stamp"][1] += 1
    index.write_text(json.dumps(known, sort_keys=True))
    with caplog.at_level(logging.WARNING):
        assert rollups.ensure(a) == 0
    assert "does not match its checksum" in caplog.text


def test_tiers_from_an_earlier_trayapp_are_rebuilt_once_quietly_not_set_aside(twin: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    # an upgrade: every tier file lacks the checksum this version writes; none is damaged
    a, _ = twin
    tiers = sorted(p for p in (a / "Rollups").rglob("*.parquet") if not p.name.startswith("."))
    assert {p.parts[-4] if "minute" in p.parts else p.parts[-3] for p in tiers} == {"minute", "hour"}
    for path in tiers:
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[rollups.META_KEY])
        meta.pop("crc")
        pq.write_table(table.replace_schema_metadata({rollups.META_KEY: json.dumps(meta)}), path, compression="zstd")
    (a / "Rollups" / ".window" / "tiers.json").unlink(missing_ok=True)
    with caplog.at_level(logging.INFO, logger="trayapp"):
        rollups.ensure(a)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text  # an upgrade is not a fault
    assert caplog.text.count("rebuilt once") == 1
    assert not list((a / "Rollups").rglob(".*unreadable*"))  # nothing set aside
    for path in tiers:
        assert "crc" in json.loads(pq.read_schema(path).metadata[rollups.META_KEY])  # each rebuilt with its checksum
