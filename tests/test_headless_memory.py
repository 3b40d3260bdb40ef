"""What a headless recorder loads (no keyring, no cryptography with the default settings), and that
secrets in a real keyring backend (keyrings.alt's plaintext file, in a tmp folder) are still read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import wait_for

# Runs the real command line (``trayapp --data-dir D run --headless``) and, on SIGUSR1, writes the
# names of the modules loaded so far to $MODULES_TO: a pure-Python module is not in /proc/<pid>/maps.
RECORDER = r"""
import json, os, signal, sys

def dump(signum, frame):
    with open(os.environ["MODULES_TO"] + ".part", "w") as f:
        json.dump(sorted(sys.modules), f)
    os.replace(os.environ["MODULES_TO"] + ".part", os.environ["MODULES_TO"])

signal.signal(signal.SIGUSR1, dump)
from trayapp.cli import main
sys.exit(main(sys.argv[1:]))
"""

NOT_AT_STEADY_STATE = ("keyring", "secretstorage", "cryptography", "jeepney", "slack_sdk", "pyarrow", "pandas", "tomlkit")


def _csv_rows(data_dir: Path) -> int:
    path = data_dir / "csv_dump" / "daily_dump.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def test_a_headless_recorder_with_default_settings_loads_no_keyring_nor_cryptography(tmp_path: Path) -> None:
    data_dir, modules = tmp_path / "data", tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k not in ("TRAYAPP_NO_KEYRING", "PYTHON_KEYRING_BACKEND")}
    # keyring's own discovery, as on a user's machine, but with no session bus to reach: nothing real is asked
    env.update(HOME=str(tmp_path / "home"), DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path / 'no-bus'}",
               MODULES_TO=str(modules))
    assert not Path(env["TRAYAPP_CONFIG"]).exists()  # the default settings: no config file
    proc = subprocess.Popen([sys.executable, "-c", RECORDER, "--data-dir", str(data_dir), "run", "--headless",
                             "--interval", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert wait_for(lambda: _csv_rows(data_dir) >= 5 or proc.poll() is not None), "no samples recorded"
        assert proc.poll() is None, proc.communicate()[1]
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        proc.send_signal(signal.SIGUSR1)
        assert wait_for(modules.exists, timeout=10)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    libraries = {line.split()[-1] for line in maps.splitlines() if len(line.split()) == 6}
    assert "psutil" in " ".join(libraries)  # the maps were read while it was sampling
    assert not [lib for lib in libraries if "/cryptography/" in lib or "_cffi_backend" in lib or "libssl" in lib]
    loaded = set(json.loads(modules.read_text()))
    assert "trayapp.engine" in loaded and "psutil" in loaded
    assert sorted(loaded & set(NOT_AT_STEADY_STATE)) == []


# ---------------------------------------------------------------- a real keyring backend

WEBHOOK = "https://hooks.slack.invalid/services/T0FAKE/B0FAKE/fakefakefakefake"
TOKEN = "xoxb-0000-fake-token"

SETTINGS = r"""
import json, os, sys
from pathlib import Path
from trayapp.settings import load, save

path = Path(os.environ["TRAYAPP_CONFIG"])
op, arg = sys.argv[1], json.loads(sys.argv[2])
if op == "save":  # as the settings dialog does: the settings in force, some changed
    save(load(path).config.with_values(**arg), path)
elif op == "ring-set":
    import keyring
    for key, value in arg.items():
        keyring.set_password("trayapp", key, value)
elif op == "ring-get":
    import keyring
    print(json.dumps({key: keyring.get_password("trayapp", key) for key in arg}))
    sys.exit(0)
loaded = load(path)
print(json.dumps({"webhook_url": loaded.config.slack_webhook_url, "bot_token": loaded.config.slack_bot_token,
                  "warnings": loaded.warnings, "keyring": "keyring" in sys.modules}))
"""


def settings(op: str, arg: object = None, **env: str) -> dict:
    """One fresh process with keyrings.alt's plaintext keyring (under $XDG_DATA_HOME, a tmp folder)."""
    environ = {k: v for k, v in os.environ.items() if k != "TRAYAPP_NO_KEYRING"}
    environ.update(PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring", **env)
    done = subprocess.run([sys.executable, "-c", SETTINGS, op, json.dumps(arg or {})], capture_output=True, text=True,
                          env=environ, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ring(*keys: str) -> dict:
    return settings("ring-get", list(keys))


def config_file() -> Path:
    return Path(os.environ["TRAYAPP_CONFIG"])


def test_a_secret_saved_to_the_keyring_is_marked_read_back_and_forgotten_when_cleared() -> None:
    path = config_file()
    assert settings("load")["keyring"] is False  # no file: nothing in the keyring to ask for
    saved = settings("save", {"slack_webhook_url": WEBHOOK, "sampling_interval_seconds": 5.0})
    assert saved["webhook_url"] == WEBHOOK and saved["keyring"] is True
    text = path.read_text()
    assert WEBHOOK not in text and "fakefake" not in text
    assert tomllib.loads(text) == {"version": 2, "sampling": {"interval_seconds": 5.0}, "slack": {"secrets_in": "keyring"}}
    assert ring("slack.webhook_url") == {"slack.webhook_url": WEBHOOK}
    loaded = settings("load")  # a fresh process: from the keyring, because the file says so
    assert (loaded["webhook_url"], loaded["keyring"], loaded["warnings"]) == (WEBHOOK, True, [])

    cleared = settings("save", {"slack_webhook_url": ""})
    assert cleared["webhook_url"] == "" and cleared["keyring"] is True  # asked, to delete it
    assert tomllib.loads(path.read_text()) == {"version": 2, "sampling": {"interval_seconds": 5.0}}
    assert ring("slack.webhook_url") == {"slack.webhook_url": None}
    assert settings("load") == {"webhook_url": "", "bot_token": "", "warnings": [], "keyring": False}


def test_a_config_saved_the_old_way_still_gets_its_secrets_from_the_keyring() -> None:
    """Up to version 1, a save put the secrets in the keyring and wrote nothing about it: only
    ``version = 1`` and the settings that differ from their defaults (maybe none in [slack])."""
    path = config_file()
    path.parent.mkdir(parents=True)
    settings("ring-set", {"slack.webhook_url": WEBHOOK})
    path.write_text("version = 1\n\n[sampling]\ninterval_seconds = 5.0\n")
    loaded = settings("load")
    assert (loaded["webhook_url"], loaded["warnings"]) == (WEBHOOK, [])

    settings("ring-set", {"slack.bot_token": TOKEN})
    path.write_text('version = 1\n\n[slack]\nchannel = "#ops"\n')  # a bot token: the channel is in the file
    loaded = settings("load")
    assert (loaded["webhook_url"], loaded["bot_token"]) == (WEBHOOK, TOKEN)

    # Saved by this version (the dialog's OK), the file says where the secrets are, and still gets them.
    settings("save", {"sampling_interval_seconds": 3.0})
    assert tomllib.loads(path.read_text()) == {
        "version": 2, "sampling": {"interval_seconds": 3.0}, "slack": {"channel": "#ops", "secrets_in": "keyring"}}
    assert ring("slack.webhook_url", "slack.bot_token") == {"slack.webhook_url": WEBHOOK, "slack.bot_token": TOKEN}
    loaded = settings("load")
    assert (loaded["webhook_url"], loaded["bot_token"], loaded["keyring"]) == (WEBHOOK, TOKEN, True)


def test_a_save_that_cannot_reach_the_keyring_keeps_an_old_config_asking_it() -> None:
    path = config_file()
    path.parent.mkdir(parents=True)
    settings("ring-set", {"slack.webhook_url": WEBHOOK})
    path.write_text("version = 1\n")
    settings("save", {"sampling_interval_seconds": 4.0}, TRAYAPP_NO_KEYRING="1")
    assert tomllib.loads(path.read_text()) == {"version": 1, "sampling": {"interval_seconds": 4.0}}
    assert settings("load")["webhook_url"] == WEBHOOK  # the next start with the keyring there


def test_a_file_that_holds_its_secrets_or_says_nothing_never_imports_keyring() -> None:
    path = config_file()
    path.parent.mkdir(parents=True)
    settings("ring-set", {"slack.bot_token": TOKEN})
    # a version-1 file with one secret in it (written there by hand) may still have the other in
    # the keyring, saved there before the mark existed: it is asked for the missing one
    path.write_text(f'version = 1\n[slack]\nwebhook_url = "{WEBHOOK}"\n')
    loaded = settings("load")
    assert (loaded["keyring"], loaded["webhook_url"], loaded["bot_token"]) == (True, WEBHOOK, TOKEN)
    for text in (
        f'version = 2\n[slack]\nwebhook_url = "{WEBHOOK}"\nbot_token = "xoxb-1-in-file"\nsecrets_in = "keyring"\n',
        "[sampling]\ninterval_seconds = 5.0\n",  # written by hand: no version, never saved by trayapp
        "version = 2\n[sampling]\ninterval_seconds = 5.0\n",  # saved by this version with no secret
    ):
        path.write_text(text)
        loaded = settings("load")
        assert (loaded["keyring"], loaded["warnings"]) == (False, []), text
        assert loaded["webhook_url"] == (WEBHOOK if "webhook_url" in text else ""), text
        assert loaded["bot_token"] == ("xoxb-1-in-file" if "bot_token" in text else ""), text  # not the keyring's


def test_secrets_said_to_be_in_an_unusable_keyring_get_one_line_not_shown() -> None:
    path = config_file()
    path.parent.mkdir(parents=True)
    path.write_text('version = 2\n[slack]\nsecrets_in = "keyring"\n')
    loaded = settings("load", TRAYAPP_NO_KEYRING="1")
    assert loaded["keyring"] is False and loaded["webhook_url"] == ""
    (warning,) = loaded["warnings"]
    assert "OS keyring cannot be used (TRAYAPP_NO_KEYRING is set)" in warning and "\n" not in warning
    path.write_text('version = 2\n[slack]\nsecrets_in = "file"\n')
    (warning,) = settings("load")["warnings"]
    assert warning == "config: [slack] secrets_in: trayapp writes only \"keyring\" there; ignored (the value is not shown: it could be a secret)"
