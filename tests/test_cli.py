"""The operator CLI, run as operators run it: python -m facecheck.cli, on a real SQLite file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facecheck import cli
from facecheck.store import AuthResult
from facecheck.store.sqlite import SQLiteStore

REPO_ROOT = Path(__file__).resolve().parent.parent
KEY_RE = re.compile(r"^(fc_[0-9a-f]{12}_\S+)$", re.MULTILINE)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "facecheck.db"


@pytest.fixture
def run_cli(db_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    env.update(
        FACECHECK_DB_PATH=str(db_path),
        BENTOML_DO_NOT_TRACK="True",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "facecheck.cli", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    return run


@pytest.fixture
def in_process(db_path: Path, monkeypatch: pytest.MonkeyPatch):
    """cli.main() in this process, same settings: for the cheap cases."""
    monkeypatch.setenv("FACECHECK_DB_PATH", str(db_path))
    monkeypatch.delenv("MONGODB_URI", raising=False)
    return cli.main


def _open(db_path: Path) -> SQLiteStore:
    return SQLiteStore(db_path, 5000)


def test_create_key_prints_a_working_key_once(run_cli, db_path: Path) -> None:
    created = run_cli("create-key", "--name", "acme demo", "--limit", "5")
    assert created.returncode == 0, created.stderr
    (plaintext,) = KEY_RE.findall(created.stdout)
    store = _open(db_path)
    try:
        result, key_id = store.authenticate(plaintext)
        assert result == AuthResult.OK
        assert key_id in created.stdout
        (info,) = store.list_keys()
        assert (info.name, info.limit, info.used) == ("acme demo", 5, 0)
    finally:
        store.close()

    listed = run_cli("list-keys")
    assert listed.returncode == 0, listed.stderr
    assert key_id in listed.stdout and "acme demo" in listed.stdout and "0/5" in listed.stdout
    secret = plaintext.split("_", 2)[2]
    assert secret not in listed.stdout and plaintext not in listed.stdout

    as_json = run_cli("list-keys", "--json")
    (entry,) = json.loads(as_json.stdout)
    assert entry["key_id"] == key_id and not any("hash" in field for field in entry)
    assert secret not in as_json.stdout


def test_disable_enable_limit_usage_reset(run_cli, db_path: Path) -> None:
    store = _open(db_path)
    info, plaintext = store.create_key("acme", None)
    assert store.consume(info.key_id)

    assert run_cli("disable", info.key_id).returncode == 0
    assert store.authenticate(plaintext) == (AuthResult.DISABLED, info.key_id)
    assert run_cli("enable", info.key_id).returncode == 0
    assert store.authenticate(plaintext) == (AuthResult.OK, info.key_id)

    assert run_cli("set-limit", info.key_id, "1").returncode == 0
    assert store.consume(info.key_id) is False

    usage = run_cli("usage", info.key_id, "--json")
    assert usage.returncode == 0, usage.stderr
    assert json.loads(usage.stdout)["used"] == 1 and json.loads(usage.stdout)["limit"] == 1

    assert run_cli("set-limit", info.key_id, "none").returncode == 0
    assert store.get_key(info.key_id).limit is None
    assert run_cli("reset-usage", info.key_id).returncode == 0
    assert store.get_key(info.key_id).used == 0
    store.close()


def test_unknown_key_id_exits_1(run_cli) -> None:
    result = run_cli("disable", "0123456789ab")
    assert result.returncode == 1
    assert "no key with id '0123456789ab'" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["enable", "nope"],
        ["set-limit", "nope", "3"],
        ["reset-usage", "nope"],
        ["usage", "nope"],
        ["usage", "nope", "--json"],
    ],
)
def test_unknown_key_id_exits_1_for_every_command(in_process, args, capsys) -> None:
    assert in_process(args) == 1
    assert "no key with id 'nope'" in capsys.readouterr().err


def test_usage_text_and_bad_limit(in_process, db_path: Path, capsys) -> None:
    store = _open(db_path)
    info, _ = store.create_key("acme", 3)
    assert store.consume(info.key_id)
    store.close()
    assert in_process(["usage", info.key_id]) == 0
    out = capsys.readouterr().out
    assert "1 of 3" in out and info.key_id in out
    with pytest.raises(SystemExit) as bad:
        in_process(["set-limit", info.key_id, "-2"])
    assert bad.value.code == 2


def test_store_unavailable_exits_2(in_process, tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "blocked").write_text("a file where the db directory should be")
    monkeypatch.setenv("FACECHECK_DB_PATH", str(tmp_path / "blocked" / "facecheck.db"))
    assert in_process(["list-keys"]) == 2
    assert "unavailable" in capsys.readouterr().err
