"""Property-based fuzzing of everything in the data folder and the config (issue 12).

Hypothesis generates CSV lines (random bytes, other encodings, wrong widths, huge lines, NaN/inf,
times far in the past or future, repeated headers), damaged Parquet day files (truncated,
bit-flipped), random state/outbox JSON and random TOML; the store, ``status``, ``export`` and a
short ``run --headless`` in real processes must keep every good row and never print a traceback.
Derandomized, no example database: CI runs the same examples each time, bounded to about a minute.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import trayapp_cmd, wait_for
from trayapp.model import Sample
from trayapp.storage.layout import CSV_DIR, CSV_NAME
from trayapp.storage.writer import Store
from trayapp.storage.day_files import read_day_file

HEADER = b"timestamp,cpu_percent,memory_percent,disk_percent"

CHEAP = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example, HealthCheck.function_scoped_fixture])
# no shrinking: each example starts processes, and a failure should be reported in seconds
PROCESSES = settings(max_examples=15, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example, HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------------------------ strategies

def _stamp(moment: datetime) -> str:
    return moment.astimezone().isoformat(timespec="microseconds")


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "Infinity", "NaN", "1e308", "-1e308", "", " ", "NA", "0x10", "1,5", "--1"]),
    st.text(alphabet="0123456789.e-+", max_size=12),
)
far_times = st.sampled_from([
    "0001-01-01T00:00:00+00:00", "1900-01-01T00:00:00+01:00", "1969-12-31T23:59:59.999999+00:00",
    "2262-04-12T00:00:00+00:00", "9999-12-31T23:59:59.999999+14:00", "2026-13-45T99:99:99+01:00",
    "2026-03-10 12:00:00", "2026-03-29T02:30:00", "yesterday", "", "T", "+01:00",
])


def _line_kinds(odd_stamp: str) -> st.SearchStrategy[bytes]:
    """One generated line. ``odd_stamp``: a time no good row has, so a readable junk row never
    takes a good row's place (one row per timestamp)."""
    return st.one_of(
        st.binary(max_size=120),
        st.text(max_size=60).map(lambda t: t.encode("latin-1", "replace")),
        st.text(max_size=40).map(lambda t: t.encode("utf-16")),
        st.lists(numbers, max_size=9).map(lambda vs: ",".join([odd_stamp, *vs]).encode()),
        st.lists(numbers, min_size=3, max_size=3).map(lambda vs: ",".join([odd_stamp, *vs]).encode()),
        st.tuples(far_times, st.lists(numbers, max_size=5)).map(lambda p: ",".join([p[0], *p[1]]).encode()),
        st.integers(1, 1_500_000).map(lambda n: b"9" * n),
        st.integers(1, 200).map(lambda n: b"\x00" * n),
        st.just(HEADER),
        st.just(HEADER + b",gpu0_util_percent"),
        st.just(b"\r"),
        st.just(b""),
    )


@st.composite
def csv_files(draw: st.DrawFn, now: datetime, good: list[bytes]) -> bytes:
    """A CSV day file: a (sometimes odd) header, the good lines in order, junk lines between."""
    header = draw(st.sampled_from([HEADER, HEADER + b",gpu0_util_percent", HEADER + b",cpu_percent", HEADER + b"\r"]))
    lines = list(good)
    for k in range(draw(st.integers(0, 6))):
        odd = _stamp(now - timedelta(minutes=draw(st.integers(0, 2000)), seconds=31 + k))
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(_line_kinds(odd)))
    body = header + b"\n" + b"".join(line + b"\n" for line in lines)
    if draw(st.booleans()) and draw(st.booleans()):
        body += draw(st.binary(min_size=1, max_size=40)).replace(b"\n", b"")  # a torn last line
    return body


def _damage(data: bytes, how: tuple[str, int, list[int]]) -> bytes:
    kind, cut, flips = how
    if kind == "truncate":
        return data[: cut % max(len(data), 1)]
    if kind == "append":
        return data + bytes(b % 256 for b in flips)
    out = bytearray(data)
    for bit in flips:
        position = bit % (len(out) * 8)
        out[position // 8] ^= 1 << (position % 8)
    return bytes(out)


damages = st.tuples(st.sampled_from(["truncate", "flip", "append"]), st.integers(0, 1 << 20),
                    st.lists(st.integers(0, 1 << 24), min_size=1, max_size=24))

json_blobs = st.one_of(
    st.binary(max_size=80),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.text(max_size=20)),
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)),
        max_leaves=12,
    ).map(lambda v: __import__("json").dumps(v).encode()),
    st.sampled_from([b'{"until": "2026-01-01T00:00"}', b'{"until": 5, "held": "x"}', b'{"cpu_percent/36h": []}',
                     b'{"cpu_percent/36h": {"level": "red", "since": 1e400}}', b'{"text": NaN}', b"[" * 5000]),
)

toml_values = st.one_of(
    st.booleans(), st.integers(-(1 << 63), (1 << 63) - 1), st.floats(), st.text(max_size=20),
    st.sampled_from(["36h", "0", "-1", "99999999d", "0.001s", "1h30m", "inf", "nan", "auto", "nvml", "off"]),
    st.lists(st.integers(), max_size=3),
)
SECTIONS = {
    "sampling": ["interval_seconds", "gpu_backend", "disk_path"],
    "storage": ["retention_days"],
    "alerts": ["hysteresis", "desktop_notifications"],
    "slack": ["send_resolved", "repeat_every", "channel"],
    "prometheus": ["port"],
    "rules": ["metric", "window", "orange", "red", "min_coverage"],
}


@st.composite
def toml_configs(draw: st.DrawFn, keep_history: bool = False) -> bytes:
    """A config file: random TOML built from the declared keys (and some that are not), or
    random bytes. Nothing in it can reach the network (no webhook, no token, Prometheus off);
    with ``keep_history``, retention is off (it deletes old day files on purpose)."""
    import tomli_w

    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=200))
    doc: dict = {"version": draw(st.one_of(st.just(1), toml_values))}
    for section, keys in SECTIONS.items():
        if not draw(st.booleans()):
            continue
        table = {key: draw(toml_values) for key in keys if draw(st.booleans())}
        if draw(st.booleans()):
            table[draw(st.text(min_size=1, max_size=8))] = draw(toml_values)
        if section == "rules":
            doc["rules"] = [table] if draw(st.booleans()) else [table, {"metric": "memory_percent"}]
        else:
            doc[section] = table
    doc["prometheus"] = {**doc.get("prometheus", {}), "enabled": False}
    doc.setdefault("slack", {}).update({"webhook_url": "", "bot_token": ""})
    if keep_history:
        doc["storage"] = {**doc.get("storage", {}), "retention_days": 0}
    return tomli_w.dumps(doc).encode()


# ------------------------------------------------------------------------------- helpers

def _good_rows(now: datetime, minutes: range, cpu: float) -> list[bytes]:
    return [f"{_stamp(now - timedelta(minutes=m))},{cpu},50.0,70.0".encode() for m in minutes]


def _stamps_of(lines: list[bytes]) -> set[datetime]:
    return {datetime.fromisoformat(line.split(b",")[0].decode()) for line in lines}


def _read_all(data_dir: Path) -> tuple[set[datetime], dict[datetime, float]]:
    table = Store(data_dir).read(None, None)
    stamps = table.column("timestamp").to_pylist()
    return set(stamps), dict(zip(stamps, table.column("cpu_percent").to_pylist()))


def _write_day_file(data_dir: Path, day_start: datetime, n: int, cpu: float) -> tuple[Path, set[datetime]]:
    """A good day file as the store writes it, through the store itself."""
    store = Store(data_dir)
    store.open_writer(day_start)
    stamps = [day_start + timedelta(minutes=10 * i) for i in range(n)]
    for at in stamps:
        store.append(Sample(at, cpu, 50.0, 70.0))
    store.close()
    store = Store(data_dir)
    store.open_writer(day_start + timedelta(days=1, hours=1))  # rolls it into its day file
    store.close()
    path = store.day_path(day_start.astimezone().date())
    assert path.exists() and pq.read_table(path).num_rows == n
    return path, set(stamps)


def _moment(line: bytes) -> datetime | None:
    """The time a CSV line starts with, as Python reads ISO-8601 or else as the store does
    (pandas reads '2000-1-1T00'); naive times are local."""
    from trayapp.storage.tables import parse_timestamps

    try:
        text = line.split(b",")[0].decode()
    except UnicodeDecodeError:
        return None
    try:
        return datetime.fromisoformat(text).astimezone()
    except (ValueError, OverflowError):
        pass
    parsed = parse_timestamps([text])[0]
    return None if parsed is None or parsed != parsed else parsed.to_pydatetime()


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


# ----------------------------------------------------------------- the store, in-process


@pytest.mark.slow  # many generated CSVs
@CHEAP
@given(data=st.data())
def test_any_csv_reads_and_rolls_over_without_losing_a_good_row_or_a_byte(data: st.DataObject) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    yesterday_noon = now.astimezone().replace(hour=12, minute=0) - timedelta(days=1)  # same second as every good row
    good = _good_rows(yesterday_noon, range(60, 0, -1), 11.0) + _good_rows(now, range(min(50, now.astimezone().hour * 60), 0, -1), 22.0)
    content = data.draw(csv_files(now, good))
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        csv = data_dir / CSV_DIR / CSV_NAME
        csv.parent.mkdir(parents=True)
        csv.write_bytes(content)
        expected = _stamps_of(good)
        stamps, cpu = _read_all(data_dir)  # a reader: never raises, every good row there
        assert expected <= stamps
        assert all(cpu[t] in (11.0, 22.0) for t in expected)
        store = Store(data_dir)
        store.open_writer(now)  # start-up: mend, roll yesterday over, keep bad bytes aside
        store.append(Sample(now + timedelta(seconds=1), 33.0, 50.0, 70.0))
        store.close()
        stamps, cpu = _read_all(data_dir)
        assert expected <= stamps and all(cpu[t] in (11.0, 22.0) for t in expected)
        day = Store(data_dir).day_path(yesterday_noon.astimezone().date())
        assert _stamps_of(good[:60]) <= set(pq.read_table(day).column("timestamp").to_pylist())
        # every line that was there is still in the CSV, or kept aside, or a row now on disk
        after = _lines(csv.read_bytes())
        aside = [line for path in csv.parent.glob(".rejected-*.csv") for line in _lines(path.read_bytes())]
        original = _lines(content)
        for line in original[1:]:
            if not line.strip() or line in after or line in aside:
                continue
            assert _moment(line) in stamps, f"line lost: {line[:80]!r}"
        # and a second start changes nothing
        before = csv.read_bytes()
        store = Store(data_dir)
        store.open_writer(now + timedelta(seconds=2))
        store.close()
        assert csv.read_bytes() == before
        assert len(list(csv.parent.glob(".rejected-*.csv"))) <= 2  # the first start's, and a torn tail's


@pytest.mark.slow  # many generated damages
@CHEAP
@given(how=damages)
def test_a_damaged_day_file_never_stops_a_reader_or_takes_rows_with_it(how: tuple[str, int, list[int]]) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        _, kept = _write_day_file(data_dir, midnight - timedelta(days=3), 30, 1.0)
        damaged, _ = _write_day_file(data_dir, midnight - timedelta(days=2), 30, 2.0)
        broken = _damage(damaged.read_bytes(), how)
        damaged.write_bytes(broken)
        read_day_file(damaged, None)  # never raises
        stamps, _ = _read_all(data_dir)
        assert kept <= stamps  # the other day file reads whatever this one holds
        # rows of the damaged day arrive in the CSV (a clock that went back): rollover keeps them
        csv = data_dir / CSV_DIR / CSV_NAME
        late = _good_rows(midnight - timedelta(days=2) + timedelta(hours=20), range(5, 0, -1), 3.0)
        csv.write_bytes(HEADER + b"\n" + b"".join(line + b"\n" for line in late))
        from trayapp.storage.day_files import load_day_file

        _, problems = load_day_file(damaged, None)
        store = Store(data_dir)
        store.open_writer(now)
        store.close()
        aside = list(damaged.parent.glob(f".{damaged.name}.unreadable-*"))
        if problems:
            assert [p.read_bytes() for p in aside] == [broken]  # set aside as it was, never merged into
        stamps, _ = _read_all(data_dir)
        assert kept | _stamps_of(late) <= stamps


@CHEAP
@given(text=toml_configs())
def test_any_config_file_loads_with_warnings_never_an_exception(text: bytes) -> None:
    from trayapp.settings import load

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_bytes(text)
        loaded = load(path)
        assert loaded.config.sampling_interval_seconds > 0
        assert path.read_bytes() == text  # reading never moves or rewrites the file


# ------------------------------------------------------------ the commands, in real processes


def _run(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(trayapp_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # real processes on many generated folders
@PROCESSES
@given(data=st.data(), config=toml_configs(keep_history=True), how=damages, state=st.lists(json_blobs, min_size=4, max_size=4))
def test_the_commands_survive_any_data_folder(data: st.DataObject, config: bytes, how: tuple[str, int, list[int]], state: list[bytes]) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        _, kept = _write_day_file(data_dir, midnight - timedelta(days=3), 20, 1.0)
        damaged, _ = _write_day_file(data_dir, midnight - timedelta(days=2), 20, 2.0)
        damaged.write_bytes(_damage(damaged.read_bytes(), how))
        good = _good_rows(now, range(min(40, now.astimezone().hour * 60), 0, -1), 22.0)
        csv = data_dir / CSV_DIR / CSV_NAME
        csv.write_bytes(data.draw(csv_files(now, good)))
        for name, blob in zip(("state/alerts.json", "state/snooze.json", "state/slack.json", "outbox/00000000000000000001-1-000001.json"), state):
            (data_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (data_dir / name).write_bytes(blob)
        config_file = Path(folder) / "config.toml"
        config_file.write_bytes(config)
        common = ["--config", str(config_file), "--data-dir", str(data_dir)]
        readers = [_run([*common, "status"]), _run([*common, "status", "--json"]), _run([*common, "export", "--format", "csv"])]
        for proc in readers:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode in (0, 1), (proc.args, proc.returncode, err)
            assert "Traceback" not in err, err
        err_file = Path(folder) / "headless.err"
        with open(err_file, "w") as err_out:
            proc = subprocess.Popen(trayapp_cmd(*common, "run", "--headless", "--interval", "0.2"), stdout=subprocess.DEVNULL, stderr=err_out, text=True)
            try:
                assert wait_for(lambda: "recording every" in err_file.read_text() or proc.poll() is not None, 60)
                time.sleep(1.5)
                running = proc.poll() is None
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        err = err_file.read_text()
        assert running and proc.returncode == 0, err  # nothing in the folder stops the recorder
        assert "Traceback" not in err, err
        stamps, cpu = _read_all(data_dir)
        assert kept | _stamps_of(good) <= stamps
        assert all(cpu[t] == 22.0 for t in _stamps_of(good))

