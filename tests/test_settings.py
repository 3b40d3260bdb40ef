"""Settings: one declaration, TOML load/save, clear messages for bad values, and no lost files."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from trayapp.rules import DEFAULT_RULES, Rule
from trayapp.settings import FIELDS, RULE_FIELDS, Config, check, load, save, validate


def test_every_setting_is_declared_with_default_type_and_help() -> None:
    for f in (*FIELDS, *RULE_FIELDS):
        assert f.label and f.help, f.key
        assert check(f, f.default) is not None or f.default == ""


def test_defaults_are_the_design_contract() -> None:
    c = Config()
    assert (c.sampling_interval_seconds, c.sampling_gpu_backend, c.storage_data_dir, c.storage_retention_days) == (2.0, "auto", "", 0)
    assert c.rules == (
        Rule("cpu_percent", 129600, 80.0, 90.0, 3600),
        Rule("memory_percent", 129600, 80.0, 90.0, 3600),
    )
    assert (c.slack_webhook_url, c.slack_bot_token, c.slack_channel, c.slack_send_resolved, c.slack_repeat_every) == ("", "", "", True, "0")


def test_the_design_example_file_loads_exactly(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        """
[sampling]
interval_seconds = 1.0
gpu_backend = "gputil"
[storage]
data_dir = "/srv/trayapp"
retention_days = 400
[[rules]]
metric = "gpu0_util_percent"
window = "6h"
orange = 50.0
red = 75.0
min_coverage = "10m"
[slack]
webhook_url = "http://127.0.0.1:9/hook"
repeat_every = "6h"
"""
    )
    loaded = load(path)
    assert loaded.warnings == []
    c = loaded.config
    assert (c.sampling_interval_seconds, c.sampling_gpu_backend, c.storage_data_dir, c.storage_retention_days) == (1.0, "gputil", "/srv/trayapp", 400)
    assert c.rules == (Rule("gpu0_util_percent", 21600, 50.0, 75.0, 600),)
    assert c.slack_repeat_every == "6h" and c.slack_configured


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[sampling]\ninterval_seconds = -1", "[sampling] interval_seconds = -1: must be greater than 0"),
        ("[sampling]\ninterval_seconds = 0", "[sampling] interval_seconds = 0: must be greater than 0"),
        ("[sampling]\ngpu_backend = 'cuda'", "[sampling] gpu_backend = 'cuda': must be one of auto, nvml, gputil, off"),
        ("[storage]\nretention_days = 1.5", "[storage] retention_days = 1.5: must be a whole number"),
        ("[storage]\nretention_days = 'forever'", "[storage] retention_days = 'forever': must be a number"),
        ("[slack]\nrepeat_every = 'often'", "[slack] repeat_every = 'often': must be a duration"),
        ("[slack]\nsend_resolved = 'yes'", "[slack] send_resolved = 'yes': must be true or false"),
        ("[[rules]]\nmetric = 'cpu_percent'\norange = 95\nred = 90", "orange must be below red"),
        ("[[rules]]\nmetric = 'cpu_percent'\nred = 120", "[[rules]] #1 red = 120: must be at most 100"),
        ("[[rules]]\nmetric = 'cpu percent'", "must be a column name"),
        ("[[rules]]\nmetric = 'cpu_percent'\nwindow = '1h'\nmin_coverage = '2h'", "cannot be longer than the window"),
        ("[sampling]\nintervall = 2", "unknown setting [sampling] intervall"),
    ],
)
def test_bad_values_name_the_key_and_value_and_fall_back(tmp_path: Path, toml: str, needle: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    loaded = load(path)
    assert any(needle in w for w in loaded.warnings), loaded.warnings
    assert loaded.config.sampling_interval_seconds == 2.0
    assert path.exists()  # a readable file with a bad value is not moved


def test_a_bad_rule_is_left_out_and_the_good_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[[rules]]\nmetric = 'cpu_percent'\n[[rules]]\nmetric = 'memory_percent'\norange = 99\nred = 1\n")
    loaded = load(path)
    assert [r.metric for r in loaded.config.rules] == ["cpu_percent"]


def test_an_empty_rule_list_means_no_rules(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("rules = []\n")
    assert load(path).config.rules == ()


def test_a_corrupt_file_is_read_as_defaults_and_left_in_place_until_saved_over(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[sampling\ninterval_seconds = = 3")
    loaded = load(path)
    assert loaded.config == Config() and loaded.broken
    assert "not valid TOML" in loaded.warnings[0] and "\n" not in loaded.warnings[0]
    assert path.read_text() == "[sampling\ninterval_seconds = = 3"  # reading never moves it
    assert not list(tmp_path.glob("config.toml.broken-*"))
    save(Config(sampling_interval_seconds=3.0), path)  # saving new settings keeps the old text aside
    (backup,) = tmp_path.glob("config.toml.broken-*")
    assert backup.read_text() == "[sampling\ninterval_seconds = = 3"
    assert load(path).config.sampling_interval_seconds == 3.0


def test_save_load_round_trip_is_atomic_and_private_with_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    config = Config(sampling_interval_seconds=1.5, slack_webhook_url="http://127.0.0.1:1/secret-hook", rules=(Rule("disk_percent", 600, 10, 20, 60),))
    save(config, path)
    assert load(path).config == config
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob(".*tmp"))
    doc = tomllib.loads(path.read_text())
    assert doc["version"] == 2 and doc["rules"][0]["window"] == "10m"  # 2: says where secrets are


def test_save_without_secret_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save(Config(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert load(path).config.rules == DEFAULT_RULES


def test_an_old_config_without_version_is_migrated_not_rejected(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[slack]\nwebhook = 'http://127.0.0.1:1/x'\n")
    loaded = load(path)
    assert loaded.warnings == []
    assert loaded.config.slack_webhook_url == "http://127.0.0.1:1/x"


def test_a_newer_config_is_read_with_a_warning(tmp_path: Path) -> None:
    warnings: list[str] = []
    config = validate({"version": 99, "sampling": {"interval_seconds": 5.0}}, warnings)
    assert config.sampling_interval_seconds == 5.0
    assert "newer trayapp" in warnings[0]


class MemoryKeyring:
    """A real keyring backend (keyring's own API), kept in memory so no user keyring is touched."""

    def __new__(cls):
        from keyring.backend import KeyringBackend

        class Backend(KeyringBackend):
            priority = 1

            def __init__(self) -> None:
                super().__init__()
                self.items: dict[tuple[str, str], str] = {}

            def set_password(self, service: str, username: str, password: str) -> None:
                self.items[(service, username)] = password

            def get_password(self, service: str, username: str) -> str | None:
                return self.items.get((service, username))

            def delete_password(self, service: str, username: str) -> None:
                from keyring.errors import PasswordDeleteError

                if self.items.pop((service, username), None) is None:
                    raise PasswordDeleteError(username)

        return Backend()


def test_secrets_go_to_the_os_keyring_when_there_is_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring

    ring = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(ring)
    monkeypatch.delenv("TRAYAPP_NO_KEYRING")
    try:
        path = tmp_path / "config.toml"
        config = Config(slack_bot_token="xoxb-very-secret", slack_channel="#ops")
        save(config, path)
        assert "xoxb-very-secret" not in path.read_text()
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # nothing secret in it
        assert ring.items[("trayapp", "slack.bot_token")] == "xoxb-very-secret"
        assert load(path).config == config  # read back from the keyring
        save(config.with_values(slack_bot_token=""), path)
        assert ("trayapp", "slack.bot_token") not in ring.items
    finally:
        keyring.set_keyring(previous)


@pytest.mark.parametrize(
    ("toml", "needle", "attr", "used"),
    [
        ("[sampling]\ninterval_seconds = 1e-6", "[sampling] interval_seconds = 1e-06: must be at least 0.1; using 2.0",
         "sampling_interval_seconds", 2.0),
        ("[sampling]\ninterval_seconds = inf", "[sampling] interval_seconds = inf: must be a finite number; using 2.0",
         "sampling_interval_seconds", 2.0),
        ("[slack]\nrepeat_every = '0.001s'", "[slack] repeat_every = '0.001s': must be 0 (never) or at least 1m; using '1m'",
         "slack_repeat_every", "1m"),
    ],
)
def test_values_that_would_flood_are_bounded_in_one_line(tmp_path: Path, toml: str, needle: str, attr: str, used) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    loaded = load(path)
    assert [w for w in loaded.warnings if needle in w], loaded.warnings
    assert getattr(loaded.config, attr) == used


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ("metric = 'cpu_percent'\nwindow = '99999999d'", "[[rules]] #1 window = '99999999d': must be at most 400d; that rule is left out"),
        ("metric = 'cpu_precent'", "[[rules]] #1 metric = 'cpu_precent': no probe measures it"),
        ("metric = 'gpu0_fan_percent'", "[[rules]] #1 metric = 'gpu0_fan_percent': no probe measures it"),
    ],
)
def test_a_rule_that_cannot_work_is_named_and_left_out(tmp_path: Path, rule: str, needle: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[[rules]]\n{rule}\n[[rules]]\nmetric = 'gpu1_temperature_c'\n")
    loaded = load(path)
    assert [w for w in loaded.warnings if needle in w], loaded.warnings
    assert [r.metric for r in loaded.config.rules] == ["gpu1_temperature_c"]


def test_when_no_rule_can_be_used_the_default_rules_watch_rather_than_none(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[[rules]]\nmetric = 'cpu_percent'\nwindow = '36x'\norange = 80\nred = 90\n")
    loaded = load(path)
    assert "config: none of the 1 [[rules]] could be used; using the default rules until they are mended" in loaded.warnings
    assert loaded.config.rules == DEFAULT_RULES
    path.write_text("rules = []\n")  # no alerts, on purpose
    loaded = load(path)
    assert loaded.config.rules == () and loaded.warnings == []
    path.write_text(MINE)  # every rule removed in the dialog, beside a table the loader skips
    save(load(path).config.with_values(rules=()), path)
    loaded = load(path)
    assert loaded.config.rules == () and loaded.warnings == []  # not the defaults
    lines = [line.strip() for line in path.read_text().splitlines()]
    assert '# [[rules]]  # typo rule\n# metric = "cpu"' in "\n".join(lines)  # its text is kept, inside rules = [ ]


@pytest.mark.parametrize("bad", [
    "[[rules]]  # typo rule\nmetric = 'cpu'\nwindow = '36h'\n",
    "rules = [{metric = 'cpu', window = '36h'}]  # typo rule\n",
])
def test_a_file_whose_rules_all_fail_saves_as_the_person_means(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "config.toml"
    text = "version = 2\n" + bad + "\n[slack]\nchannel = '#ops'\n"
    path.write_text(text)
    loaded = load(path)
    assert loaded.config.rules == DEFAULT_RULES and any("none of the 1 [[rules]]" in w for w in loaded.warnings)
    # another setting saved: the defaults in force are not written over the rule the person is mending
    save(loaded.config.with_values(sampling_interval_seconds=5.0), path)
    assert bad in path.read_text() and "cpu_percent" not in path.read_text()  # no default written in
    assert load(path).config.rules == DEFAULT_RULES
    # every rule removed: that sticks, and the rule's text stays, as comments
    save(load(path).config.with_values(rules=()), path)
    again = load(path)
    assert again.config.rules == () and again.warnings == [], again.warnings
    assert "metric = 'cpu'" in path.read_text() and again.config.sampling_interval_seconds == 5.0
    # a rule of their own: it loads, and the skipped text is still there
    mine = Rule("cpu_percent", 3600, 70.0, 80.0, 600)
    save(again.config.with_values(rules=(mine,)), path)
    assert load(path).config.rules == (mine,) and "metric = 'cpu'" in path.read_text()


def test_a_plain_http_webhook_to_another_machine_is_warned_about_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[slack]\nwebhook_url = 'http://chat.example.org/hooks/abcdefghijklmnop'\n")
    loaded = load(path)
    (warning,) = loaded.warnings
    assert "[slack] webhook_url is http://, not https://" in warning and "abcdefghijklmnop" not in warning
    assert loaded.config.slack_webhook_url.endswith("abcdefghijklmnop")  # still used
    path.write_text("[slack]\nwebhook_url = 'http://localhost:8080/hooks/x'\n")
    assert load(path).warnings == []


def test_only_a_regular_file_of_sane_size_is_read_and_nothing_else_is_written_over(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo.toml"  # reading one is tested in a child process (test_cli): it could block
    os.mkfifo(fifo)
    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * 200_000)
    assert "too big for a config" in load(big).warnings[0]
    with pytest.raises(OSError, match="not a regular file"):
        save(Config(), fifo)
    assert fifo.is_fifo()


HAND_WRITTEN = """\
# My trayapp settings -- written by hand, keep my notes!
version = 1

[sampling]
interval_seconds = 5    # this box is slow; do not sample faster
gpu_backend = "off"     # no GPU here

# Alerts: CPU first, then the scratch disk.
[[rules]]
metric = "cpu_percent"   # the one that matters
window = "36h"
orange = 80.0
red = 90.0

[[rules]]
# the scratch disk fills up on Fridays
metric = "disk_percent"
window = "2h"
orange = 85
red = 95
min_coverage = "10m"

[slack]
channel = "#ops"        # the team channel
"""


def test_save_keeps_the_users_comments_order_and_layout_and_touches_only_what_changed(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN)
    loaded = load(path)
    assert loaded.warnings == []
    disk = loaded.config.rules[1]
    changed = loaded.config.with_values(
        sampling_interval_seconds=10.0,
        slack_send_resolved=False,
        rules=(loaded.config.rules[0], Rule(disk.metric, disk.window_seconds, disk.orange, 97.0, disk.min_coverage_seconds)),
    )
    save(changed, path)
    text = path.read_text()
    expected = (HAND_WRITTEN
                .replace("interval_seconds = 5    #", "interval_seconds = 10.0    #")
                .replace("red = 95\n", "red = 97.0\n")
                .replace('channel = "#ops"        # the team channel\n',
                         'channel = "#ops"        # the team channel\nsend_resolved = false\n'))
    assert text == expected  # every comment, blank line and unchanged value exactly as it was
    assert load(path).config == changed
    save(changed, path)  # saving the same settings again changes nothing at all
    assert path.read_text() == expected


def test_save_writes_no_defaults_and_rules_as_tables(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save(Config(prometheus_port=9200), path)
    doc = tomllib.loads(path.read_text())
    assert doc == {"version": 2, "prometheus": {"port": 9200}}  # the default rules and values are not written
    rules = (Rule("cpu_percent", 3600, 50.0, 60.0, 600), Rule("gpu0_util_percent", 7200, 70.0, 80.0, 0))
    save(Config(prometheus_port=9200, rules=rules), path)
    text = path.read_text()
    assert text.count("[[rules]]") == 2 and "rules = [" not in text
    assert load(path).config == Config(prometheus_port=9200, rules=rules)


def test_deleting_a_rule_drops_its_table_only(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN)
    config = load(path).config
    save(config.with_values(rules=config.rules[1:]), path)
    text = path.read_text()
    assert "# the one that matters" not in text and "# the scratch disk fills up on Fridays" in text
    assert "# Alerts: CPU first, then the scratch disk." in text and "# this box is slow" in text
    assert load(path).config.rules == config.rules[1:]


def test_an_inline_rule_list_from_an_older_save_becomes_tables_when_rules_change(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('# keep me\nversion = 1\nrules = [{metric = "cpu_percent", window = "36h", orange = 80.0, red = 90.0, min_coverage = "1h"}]\n')
    save(Config(rules=(Rule("memory_percent", 3600, 70.0, 80.0, 60),)), path)
    text = path.read_text()
    assert text.startswith("# keep me\n") and "[[rules]]" in text and "rules = [" not in text
    assert load(path).config.rules == (Rule("memory_percent", 3600, 70.0, 80.0, 60),)


def test_a_secret_with_a_line_break_or_space_is_refused_without_being_shown(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[slack]\nbot_token = "xoxb-1\\nrest-of-it"\nchannel = "#ops"\nwebhook_url = "https://a b/c"\n')
    loaded = load(path)
    assert len(loaded.warnings) == 2 and all("must be one line with no spaces" in w for w in loaded.warnings)
    assert not any("rest-of-it" in w or "a b" in w for w in loaded.warnings)
    assert not loaded.config.slack_configured


@pytest.mark.parametrize("depth", [300, 5000])
def test_a_value_nested_very_deep_is_one_warning_not_a_crash(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[slack]\nwebhook_url = " + "[" * depth + '"https://hooks.example.org/x/deepSecretValue"' + "]" * depth + "\n")
    loaded = load(path)
    assert loaded.config == Config() and len(loaded.warnings) == 1, loaded.warnings
    assert "deepSecretValue" not in loaded.warnings[0]


# --------------------------------------------------------------- durations written back


from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

from trayapp.rules import format_duration, parse_duration  # noqa: E402
from trayapp.settings import MAX_WINDOW  # noqa: E402

_NUMBER = st.one_of(st.integers(0, 10**7).map(str),
                    st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)).map(lambda t: f"{t[0]}.{t[1]}"))
_DURATION_TEXT = st.lists(st.tuples(_NUMBER, st.sampled_from(["d", "h", "m", "min", "s", " s", "H"])), min_size=1, max_size=4).map(
    lambda parts: "".join(n + u for n, u in parts)) | _NUMBER


@hsettings(max_examples=400, deadline=None)
@given(_DURATION_TEXT)
def test_every_duration_the_parser_reads_is_written_back_readable_and_exact(text: str) -> None:
    seconds = parse_duration(text)
    assert parse_duration(format_duration(seconds)) == seconds, (text, format_duration(seconds))


@hsettings(max_examples=400, deadline=None)
@given(st.floats(min_value=0.0, max_value=MAX_WINDOW, allow_nan=False, allow_infinity=False))
def test_every_allowed_duration_float_is_written_back_exactly(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds, format_duration(seconds)


@pytest.mark.parametrize(("typed", "written"), [("12d30s", "12d30s"), ("90.5s", "90.5s"), ("1h0m1s", "1h1s"), ("36h", "36h")])
def test_a_rule_with_a_compound_or_fractional_window_is_saved_readable(tmp_path: Path, typed: str, written: str) -> None:
    path = tmp_path / "config.toml"  # as the rules editor saves a rule typed in it
    save(Config(rules=(Rule("cpu_percent", parse_duration(typed), 70.0, 90.0, 10.0),)), path)
    again = load(path)
    assert again.warnings == [] and len(again.config.rules) == 1, again.warnings
    assert again.config.rules[0].window_seconds == parse_duration(typed)
    assert f'window = "{written}"' in path.read_text()


# ------------------------------------------------------- rules the loader skipped, rules left alone

RULES_BLOCK = '''[[rules]]  # CPU rule
metric = "cpu_percent"
window = "36 h"  # spaced
orange = 80
red = 90
note = "my own key"

[[rules]]  # typo rule
metric = "cpu"
window = "36h"
orange = 80
red = 90

[[rules]]
metric = "memory_percent"
window = "90m"   # ninety minutes
orange = 85.5
red = 95
min_coverage = "30m"
'''
MINE = f'''# my trayapp config
[sampling]   # sampling section
interval_seconds = 5   # every 5 s, please

{RULES_BLOCK}
[slack]
channel = "#ops" # ops channel
'''


def test_an_unknown_key_in_a_rule_is_warned_about_and_the_rule_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINE)
    loaded = load(path)
    assert "config: [[rules]] #1: unknown key 'note'; ignored" in loaded.warnings
    assert any("#2 metric = 'cpu'" in w and "left out" in w for w in loaded.warnings)
    assert loaded.config.rules == (Rule("cpu_percent", 129600, 80.0, 90.0, 3600), Rule("memory_percent", 5400, 85.5, 95.0, 1800))


def test_saving_other_settings_keeps_every_rule_table_byte_for_byte_even_those_the_loader_skipped(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINE)
    loaded = load(path)
    save(loaded.config.with_values(sampling_interval_seconds=7.0, slack_channel="#new"), path)
    text = path.read_text()
    assert RULES_BLOCK in text, text
    again = load(path)
    assert again.config.rules == loaded.config.rules and again.warnings == loaded.warnings
    assert (again.config.sampling_interval_seconds, again.config.slack_channel) == (7.0, "#new")


def test_editing_one_rule_touches_only_that_rule_and_keeps_the_skipped_one(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINE)
    cpu, memory = load(path).config.rules
    save(load(path).config.with_values(rules=(cpu, Rule("memory_percent", 5400, 70.0, 95.0, 1800))), path)
    text = path.read_text()
    assert RULES_BLOCK.replace("orange = 85.5", "orange = 70.0") in text, text
    memory = load(path).config.rules[1]
    save(load(path).config.with_values(rules=(memory,)), path)  # the CPU rule deleted: the typo rule stays
    text = path.read_text()
    assert "# CPU rule" not in text and "# typo rule\nmetric = \"cpu\"" in text and "orange = 70.0\nred = 95\n" in text, text
    assert load(path).config.rules == (memory,)
    save(load(path).config.with_values(rules=(memory, cpu)), path)  # added at the end
    assert load(path).config.rules == (memory, cpu) and "# typo rule" in path.read_text()


def test_editing_one_rule_and_deleting_another_in_one_save_leaves_the_rest_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    third = '[[rules]]  # disk, untouched\nmetric = "disk_percent"\nwindow = "7 d"   # a week\norange = 85.25\nred = 97\n'
    path.write_text(MINE + "\n" + third)
    cpu, memory, disk = load(path).config.rules
    edited = Rule("memory_percent", 5400, 60.0, 95.0, 1800)
    save(load(path).config.with_values(rules=(edited, disk)), path)  # CPU deleted and memory edited at once
    text = path.read_text()
    assert third in text and "# typo rule\nmetric = \"cpu\"" in text and "# CPU rule" not in text, text
    assert load(path).config.rules == (edited, disk)
    fresh = Rule("swap_percent", 3600, 50.0, 60.0, 600)
    save(load(path).config.with_values(rules=(edited, fresh, disk)), path)  # one put in between
    assert third in path.read_text() and load(path).config.rules == (edited, fresh, disk)


_POOL = [Rule("cpu_percent", 129600, 80.0, 90.0, 3600), Rule("memory_percent", 5400, 85.5, 95.0, 1800),
         Rule("memory_percent", 5400, 60.0, 95.0, 1800), Rule("disk_percent", 604800, 85.25, 97.0, 3600),
         Rule("swap_percent", 3600, 50.0, 60.0, 600), Rule("cpu_percent", 3600, 70.0, 75.0, 600)]


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_POOL), max_size=5), st.lists(st.sampled_from(_POOL), max_size=5))
def test_any_two_saves_of_rule_lists_load_back_in_order_and_keep_the_skipped_table(first: list, second: list) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_text(MINE)
        for rules in (first, second):
            save(load(path).config.with_values(rules=tuple(rules)), path)
            assert load(path).config.rules == tuple(rules)
            text = path.read_text()  # the table the loader skipped, as it was or, once no rule was wanted, as comments
            stripped = "\n".join(line.strip() for line in text.splitlines())
            assert '# typo rule\nmetric = "cpu"' in text or '# [[rules]]  # typo rule\n# metric = "cpu"' in stripped


# ------------------------------------------------- direction = "below"


def test_a_rule_that_watches_a_value_fall_loads_and_saves(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[rules]]\nmetric = "battery_percent"\ndirection = "below"\nwindow = "10m"\n'
                    'orange = 20.0\nred = 10.0\nmin_coverage = "5m"\n')
    loaded = load(path)
    assert loaded.warnings == []
    battery, = loaded.config.rules
    assert battery == Rule("battery_percent", 600, 20.0, 10.0, 300, direction="below")
    # saved: "below" is written, the default "above" is not
    fan = Rule("fan_rpm", 300, 600.0, 300.0, 120, direction="below")
    cpu = Rule("cpu_percent", 3600, 50.0, 60.0, 600)
    save(Config(rules=(fan, cpu)), path)
    text = path.read_text()
    assert text.count('direction = "below"') == 1 and '"above"' not in text
    assert load(path).config.rules == (fan, cpu)
    # turned round in the editor and saved: the table says so, and back again
    save(Config(rules=(Rule("fan_rpm", 300, 600.0, 900.0, 120), cpu)), path)
    assert load(path).config.rules == (Rule("fan_rpm", 300, 600.0, 900.0, 120), cpu)


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        # a falling rule's red is the lower threshold: the check is the other way round, and says why
        ("direction = 'below'\norange = 10\nred = 20",
         "[[rules]] #1 orange = 10, red = 20: orange must be above red for a rule that watches a value fall"),
        ("direction = 'below'\norange = 20\nred = 20", "orange must be above red"),
        # a rising rule written with falling thresholds is told about direction
        ("orange = 20\nred = 10", 'orange must be below red (a rule that watches a value fall says direction = "below")'),
        ("direction = 'down'", "[[rules]] #1 direction = 'down': must be one of above, below"),
    ],
)
def test_a_rules_direction_is_checked_with_one_clear_line(tmp_path: Path, rule: str, needle: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[[rules]]\nmetric = 'battery_percent'\n{rule}\n")
    loaded = load(path)
    assert any(needle in w for w in loaded.warnings), loaded.warnings
    assert loaded.config.rules == DEFAULT_RULES  # the only rule could not be used: the defaults watch
