"""SQLiteStore: the store contract on a real file, plus what happens when the file misbehaves."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from facecheck.settings import Settings
from facecheck.store import RequestRecord, StoreUnavailable, open_store
from facecheck.store.sqlite import SQLiteStore

try:
    from tests.store_contract import StoreContract
except ImportError:  # tests/ is not a package and the repo root is not on sys.path
    from store_contract import StoreContract

TIMEOUT_MS = 5000


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "facecheck.db"  # parent dir doesn't exist yet


@pytest.fixture
def store(db_path: Path):
    store = SQLiteStore(db_path, TIMEOUT_MS)
    yield store
    store.close()


@pytest.fixture
def reopen(db_path: Path):
    return lambda: SQLiteStore(db_path, TIMEOUT_MS)


@pytest.fixture
def raw_contents(db_path: Path):
    def read() -> bytes:
        files = [db_path, db_path.with_name(db_path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())

    return read


class TestSQLiteStoreContract(StoreContract):
    pass


def _a_record() -> RequestRecord:
    return RequestRecord("0123456789ab", "/liveness", 1_700_000_000.0, 201, "ok", 0.9, None, 5.0)


def test_open_store_picks_sqlite_without_mongodb_uri(db_path: Path) -> None:
    store = open_store(Settings(db_path=db_path, mongodb_uri=""))
    try:
        assert isinstance(store, SQLiteStore)
        store.ping()
    finally:
        store.close()
    assert db_path.exists()


def test_file_is_in_wal_mode_and_has_no_column_for_images(store: SQLiteStore) -> None:
    store.ping()
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        for table in ("api_keys", "requests"):
            columns = conn.execute(f"PRAGMA table_info({table})").fetchall()
            assert columns
            for _, name, type_, *_ in columns:
                assert "image" not in name and "selfie" not in name
                assert type_.upper() != "BLOB"


def test_reopening_keeps_schema_and_data(db_path: Path) -> None:
    first = SQLiteStore(db_path, TIMEOUT_MS)
    info, _ = first.create_key("alice", 5)
    first.close()
    second = SQLiteStore(db_path, TIMEOUT_MS)  # CREATE TABLE IF NOT EXISTS again: harmless
    try:
        assert second.list_keys() == [info]
    finally:
        second.close()


def test_write_lock_held_elsewhere_then_released(db_path: Path) -> None:
    """Another connection holds the write lock: writes fail fast with StoreUnavailable, reads
    still work (WAL), and the same store object works again once the lock is gone."""
    store = SQLiteStore(db_path, timeout_ms=100)
    info, plaintext = store.create_key("alice", 10)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable):
            store.ping()
        with pytest.raises(StoreUnavailable):
            store.consume(info.key_id)
        with pytest.raises(StoreUnavailable):
            store.record(_a_record())
        assert store.authenticate(plaintext)[0] == "ok"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.ping()
    assert store.consume(info.key_id) is True
    store.record(_a_record())
    assert store.get_key(info.key_id).used == 1
    assert store.recent_records() == [_a_record()]
    store.close()


def test_unusable_location_then_fixed(tmp_path: Path) -> None:
    """The db's directory can't be created (a plain file is in the way): nothing raises at
    construction, every call raises StoreUnavailable, and the store heals once it's fixed."""
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    store = SQLiteStore(blocker / "facecheck.db", TIMEOUT_MS)
    with pytest.raises(StoreUnavailable):
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.consume("0123456789ab")
    with pytest.raises(StoreUnavailable):
        store.record(_a_record())
    blocker.unlink()
    store.ping()
    info, plaintext = store.create_key("alice", None)
    assert store.authenticate(plaintext) == ("ok", info.key_id)
    store.close()


def test_read_only_file_then_writable_again(db_path: Path) -> None:
    store = SQLiteStore(db_path, TIMEOUT_MS)
    info, _ = store.create_key("alice", 10)
    store.close()
    directory = db_path.parent
    os.chmod(db_path, 0o444)
    os.chmod(directory, 0o555)
    try:
        if os.access(db_path, os.W_OK):
            pytest.skip("running as root: chmod can't make the file read-only (see lock test)")
        store = SQLiteStore(db_path, TIMEOUT_MS)
        with pytest.raises(StoreUnavailable):
            store.ping()
        with pytest.raises(StoreUnavailable):
            store.consume(info.key_id)
        with pytest.raises(StoreUnavailable):
            store.record(_a_record())
    finally:
        os.chmod(directory, 0o755)
        os.chmod(db_path, 0o644)
    store.ping()
    assert store.consume(info.key_id) is True
    store.close()


def test_closed_store_raises(store: SQLiteStore) -> None:
    store.close()
    with pytest.raises(StoreUnavailable):
        store.ping()
