"""The embedded store: one SQLite file in WAL mode, shared by every worker process."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from facecheck import keys
from facecheck.store.base import (
    AuthResult,
    KeyInfo,
    RequestRecord,
    StoreUnavailable,
    Usage,
    check_limit,
)

T = TypeVar("T")

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS api_keys (
    key_id        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    key_hash      TEXT NOT NULL,
    created_at    REAL NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    request_limit INTEGER,
    used          INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS requests (
    id             INTEGER PRIMARY KEY,
    key_id         TEXT,
    endpoint       TEXT NOT NULL,
    started_at     REAL NOT NULL,
    status         INTEGER NOT NULL,
    outcome        TEXT NOT NULL,
    liveness_score REAL,
    deepfake_score REAL,
    latency_ms     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_by_time ON requests (started_at);
CREATE INDEX IF NOT EXISTS requests_by_key ON requests (key_id, outcome);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
COMMIT;
"""

_KEY_COLUMNS = "key_id, name, created_at, disabled, request_limit, used"
_RECORD_COLUMNS = "key_id, endpoint, started_at, status, outcome, liveness_score, deepfake_score, latency_ms"


def _key_info(row: tuple) -> KeyInfo:
    key_id, name, created_at, disabled, limit, used = row
    return KeyInfo(key_id, name, float(created_at), bool(disabled), limit, int(used))


class SQLiteStore:
    """Safe across threads (one connection per thread) and processes (SQLite file locks).

    Every sqlite3 error becomes StoreUnavailable and drops the calling thread's connection,
    so the next call reconnects: the store heals by itself once the file is usable again."""

    def __init__(self, path: Path, timeout_ms: int) -> None:
        self.path = Path(path)
        self._timeout_ms = int(timeout_ms)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._schema_ready = False
        self._closed = False
        try:  # create the file and schema now if we can; a failure here is not fatal
            self._run(lambda conn: None)
        except StoreUnavailable:
            pass

    # -- connections -------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        if self._pid != os.getpid():
            # Forked: the parent's connections must not be used (or closed) in this process.
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._local = threading.local()
            self._connections = []
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=self._timeout_ms / 1000,
            isolation_level=None,  # autocommit; transactions are explicit
            check_same_thread=False,  # only so close() may close it from another thread
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._timeout_ms}")
            # WAL + NORMAL: no fsync per commit; a committed count survives any process
            # crash or restart (only an OS crash or power cut can lose the last commits).
            conn.execute("PRAGMA synchronous = NORMAL")
            if not self._schema_ready:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
                self._schema_ready = True
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is None:
            return
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        try:
            conn.close()
        except sqlite3.Error:
            pass

    def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return op(self._connection())
        except (sqlite3.Error, OSError) as exc:
            self._drop_connection()
            raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    # -- health ------------------------------------------------------------------------

    def ping(self) -> None:
        def check(conn: sqlite3.Connection) -> None:
            # Take the write lock and write a row, then roll back: proves both read and write.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("SELECT count(*) FROM api_keys").fetchone()
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES ('ping', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (str(time.time()),),
                )
            finally:
                conn.execute("ROLLBACK")

        self._run(check)

    # -- keys --------------------------------------------------------------------------

    def create_key(self, name: str, limit: int | None) -> tuple[KeyInfo, str]:
        limit = check_limit(limit)

        def insert(conn: sqlite3.Connection) -> tuple[KeyInfo, str]:
            while True:
                key_id, plaintext, key_hash = keys.new_key()
                info = KeyInfo(key_id, str(name), time.time(), False, limit, 0)
                try:
                    conn.execute(
                        "INSERT INTO api_keys (key_id, name, key_hash, created_at, disabled,"
                        " request_limit, used) VALUES (?, ?, ?, ?, 0, ?, 0)",
                        (key_id, info.name, key_hash, info.created_at, limit),
                    )
                except sqlite3.IntegrityError:
                    continue  # key id collision (48 random bits): draw another
                return info, plaintext

        return self._run(insert)

    def get_key(self, key_id: str) -> KeyInfo | None:
        row = self._run(
            lambda conn: conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (str(key_id),)
            ).fetchone()
        )
        return _key_info(row) if row else None

    def list_keys(self) -> list[KeyInfo]:
        rows = self._run(
            lambda conn: conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
            ).fetchall()
        )
        return [_key_info(row) for row in rows]

    def _update(self, sql: str, params: tuple) -> bool:
        return self._run(lambda conn: conn.execute(sql, params).rowcount == 1)

    def set_disabled(self, key_id: str, disabled: bool) -> bool:
        return self._update(
            "UPDATE api_keys SET disabled = ? WHERE key_id = ?", (int(bool(disabled)), str(key_id))
        )

    def set_limit(self, key_id: str, limit: int | None) -> bool:
        return self._update(
            "UPDATE api_keys SET request_limit = ? WHERE key_id = ?",
            (check_limit(limit), str(key_id)),
        )

    def reset_usage(self, key_id: str) -> bool:
        return self._update("UPDATE api_keys SET used = 0 WHERE key_id = ?", (str(key_id),))

    def authenticate(self, plaintext: object) -> tuple[AuthResult, str | None]:
        key_id = keys.parse_key(plaintext)
        if key_id is None:
            keys.verify("", keys.DUMMY_HASH)
            return AuthResult.INVALID, None
        row = self._run(
            lambda conn: conn.execute(
                "SELECT key_hash, disabled FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        )
        matches = keys.verify(plaintext, row[0] if row else keys.DUMMY_HASH)
        if row is None or not matches:
            return AuthResult.INVALID, None
        return (AuthResult.DISABLED if row[1] else AuthResult.OK), key_id

    # -- quota -------------------------------------------------------------------------

    def consume(self, key_id: str) -> bool:
        # One conditional UPDATE: SQLite's write lock makes check-and-increment atomic
        # across every thread and process sharing the file.
        return self._update(
            "UPDATE api_keys SET used = used + 1 WHERE key_id = ? AND disabled = 0"
            " AND (request_limit IS NULL OR used < request_limit)",
            (str(key_id),),
        )

    def release(self, key_id: str) -> None:
        self._update("UPDATE api_keys SET used = used - 1 WHERE key_id = ? AND used > 0", (key_id,))

    # -- request log -------------------------------------------------------------------

    def record(self, rec: RequestRecord) -> None:
        self._run(
            lambda conn: conn.execute(
                f"INSERT INTO requests ({_RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.key_id,
                    rec.endpoint,
                    rec.started_at,
                    rec.status,
                    rec.outcome,
                    rec.liveness_score,
                    rec.deepfake_score,
                    rec.latency_ms,
                ),
            )
        )

    def recent_records(self, limit: int = 100) -> list[RequestRecord]:
        rows = self._run(
            lambda conn: conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM requests ORDER BY started_at DESC, id DESC LIMIT ?",
                (max(int(limit), 0),),
            ).fetchall()
        )
        return [RequestRecord(*row) for row in rows]

    def usage(self, key_id: str) -> Usage | None:
        def read(conn: sqlite3.Connection) -> Usage | None:
            conn.execute("BEGIN")  # one snapshot for both reads
            try:
                key = conn.execute(
                    "SELECT used, request_limit FROM api_keys WHERE key_id = ?", (key_id,)
                ).fetchone()
                counts = conn.execute(
                    "SELECT outcome, count(*) FROM requests WHERE key_id = ? GROUP BY outcome",
                    (key_id,),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            if key is None:
                return None
            return Usage(key_id=key_id, used=key[0], limit=key[1], outcomes=dict(counts))

        return self._run(read)
