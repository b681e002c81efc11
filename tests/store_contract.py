"""The behaviour every Store must have, whatever database is behind it.

Test modules subclass StoreContract (as Test...) and provide three fixtures:
  store:        a fresh, empty store
  reopen:       a callable that opens a *new* store object on the same database
  raw_contents: a callable returning every byte the database holds (files or raw documents)
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import threading
from collections.abc import Callable

import pytest

from facecheck.store import AuthResult, RequestRecord, Store

OpenStore = Callable[[], Store]


def _with_other_id(key: str) -> str:
    return "fc_" + ("0" if key[3] != "0" else "1") + key[4:]


def _with_other_secret(key: str) -> str:
    return key[:-1] + ("A" if key[-1] != "A" else "B")


# Every JSON type, operator injection, and strings that are nearly a key.
MALFORMED_KEYS: dict[str, Callable[[str], object]] = {
    "none": lambda k: None,
    "true": lambda k: True,
    "int": lambda k: 0,
    "float": lambda k: 1.5,
    "empty": lambda k: "",
    "prefix-only": lambda k: "fc_",
    "mongo-ne": lambda k: {"$ne": None},
    "mongo-gt": lambda k: {"$gt": ""},
    "mongo-regex": lambda k: {"$regex": ".*"},
    "dict-with-key": lambda k: {"hash_id": k},
    "empty-dict": lambda k: {},
    "list-of-key": lambda k: [k],
    "empty-list": lambda k: [],
    "10kB": lambda k: "a" * 10_000,
    "10kB-after-key": lambda k: k + "a" * 10_000,
    "nul-after": lambda k: k + "\x00",
    "nul-inside": lambda k: k[:10] + "\x00" + k[11:],
    "unicode": lambda k: k[:-1] + "é",
    "unicode-id": lambda k: "fc_" + "٠" * 12 + k[15:],
    "lone-surrogate": lambda k: k[:-1] + "\ud800",
    "uppercase": lambda k: k.upper(),
    "leading-space": lambda k: " " + k,
    "trailing-newline": lambda k: k + "\n",
    "sql-ish": lambda k: k[:16] + "' OR '1'='1",
    "regex-ish": lambda k: ".*",
    "other-id": _with_other_id,
    "other-secret": _with_other_secret,
    "bytes": lambda k: k.encode(),
}


def _record(key_id: str | None, outcome: str, started_at: float, **extra) -> RequestRecord:
    values = {
        "key_id": key_id,
        "endpoint": "/liveness",
        "started_at": started_at,
        "status": 201,
        "outcome": outcome,
        "liveness_score": 0.875,
        "deepfake_score": None,
        "latency_ms": 12.5,
    }
    return RequestRecord(**{**values, **extra})


def _consume_in_child(reopen: OpenStore, key_id: str, attempts: int, results) -> None:
    store = reopen()
    try:
        results.put(sum(store.consume(key_id) for _ in range(attempts)))
    finally:
        store.close()


class StoreContract:
    def test_ping_on_a_healthy_store(self, store: Store) -> None:
        assert isinstance(store, Store)  # has every method of the protocol
        store.ping()

    def test_created_key_authenticates(self, store: Store) -> None:
        info, plaintext = store.create_key("alice", None)
        assert store.authenticate(plaintext) == (AuthResult.OK, info.key_id)
        assert store.authenticate(plaintext)[0] == "ok"  # AuthResult compares as its string
        assert store.get_key(info.key_id) == info
        assert (info.name, info.disabled, info.limit, info.used) == ("alice", False, None, 0)
        assert store.list_keys() == [info]

    def test_keys_are_distinct(self, store: Store) -> None:
        (a, key_a), (b, key_b) = store.create_key("a", None), store.create_key("b", 5)
        assert a.key_id != b.key_id and key_a != key_b
        assert store.authenticate(key_b) == (AuthResult.OK, b.key_id)
        assert [k.key_id for k in store.list_keys()] == [a.key_id, b.key_id]

    @pytest.mark.parametrize("make_bad", MALFORMED_KEYS.values(), ids=list(MALFORMED_KEYS))
    def test_malformed_or_wrong_key_is_invalid(self, store: Store, make_bad) -> None:
        info, plaintext = store.create_key("alice", 10)
        assert store.authenticate(make_bad(plaintext)) == (AuthResult.INVALID, None)
        assert store.get_key(info.key_id) == info  # nothing changed

    def test_authenticate_is_read_only(self, store: Store) -> None:
        info, plaintext = store.create_key("alice", 1)
        for _ in range(3):
            store.authenticate(plaintext)
        assert store.get_key(info.key_id) == info

    def test_disabled_key(self, store: Store) -> None:
        info, plaintext = store.create_key("alice", None)
        assert store.set_disabled(info.key_id, True)
        assert store.authenticate(plaintext) == (AuthResult.DISABLED, info.key_id)
        assert store.authenticate(_with_other_secret(plaintext)) == (AuthResult.INVALID, None)
        assert store.consume(info.key_id) is False
        assert store.get_key(info.key_id).disabled is True
        assert store.set_disabled(info.key_id, False)
        assert store.authenticate(plaintext) == (AuthResult.OK, info.key_id)
        assert store.consume(info.key_id) is True

    def test_unknown_key_id(self, store: Store) -> None:
        assert store.get_key("0123456789ab") is None
        assert store.set_disabled("0123456789ab", True) is False
        assert store.set_limit("0123456789ab", 5) is False
        assert store.reset_usage("0123456789ab") is False
        assert store.consume("0123456789ab") is False
        store.release("0123456789ab")
        assert store.usage("0123456789ab") is None

    def test_only_a_hash_is_stored(self, store: Store, raw_contents) -> None:
        info, plaintext = store.create_key("alice", None)
        secret = plaintext.split("_", 2)[2]
        stored = raw_contents()
        assert hashlib.sha256(plaintext.encode()).hexdigest().encode() in stored  # right bytes
        assert info.key_id.encode() in stored
        assert plaintext.encode() not in stored
        assert secret.encode() not in stored
        assert not any("hash" in f.name for f in dataclasses.fields(info))

    def test_quota_is_exact_across_threads(self, store: Store) -> None:
        info, _ = store.create_key("demo", 50)
        threads_n, attempts = 8, 100
        start = threading.Barrier(threads_n)
        results: list[bool] = []

        def hammer(n: int) -> None:
            start.wait()
            results.extend(store.consume(info.key_id) for _ in range(n))

        shares = [attempts // threads_n + (i < attempts % threads_n) for i in range(threads_n)]
        threads = [threading.Thread(target=hammer, args=(n,)) for n in shares]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == attempts
        assert results.count(True) == 50
        assert store.get_key(info.key_id).used == 50

    def test_quota_is_exact_across_processes(self, store: Store, reopen: OpenStore) -> None:
        info, _ = store.create_key("demo", 60)
        fork = multiprocessing.get_context("fork")
        results = fork.Queue()
        children = [
            fork.Process(target=_consume_in_child, args=(reopen, info.key_id, 30, results)) for _ in range(4)
        ]
        for child in children:
            child.start()
        granted = [results.get(timeout=120) for _ in children]
        for child in children:
            child.join(timeout=30)
            assert child.exitcode == 0
        assert sum(granted) == 60
        assert store.get_key(info.key_id).used == 60

    def test_quota_survives_reopening(self, store: Store, reopen: OpenStore) -> None:
        info, plaintext = store.create_key("demo", 3)
        assert store.consume(info.key_id) and store.consume(info.key_id)
        store.close()
        again = reopen()
        try:
            assert again.get_key(info.key_id) == dataclasses.replace(info, used=2)
            assert again.authenticate(plaintext) == (AuthResult.OK, info.key_id)
            assert again.consume(info.key_id) is True
            assert again.consume(info.key_id) is False
        finally:
            again.close()

    def test_release_undoes_one_consume(self, store: Store) -> None:
        info, _ = store.create_key("demo", 1)
        assert store.consume(info.key_id) is True
        assert store.consume(info.key_id) is False
        store.release(info.key_id)
        assert store.consume(info.key_id) is True
        for _ in range(3):
            store.release(info.key_id)
        assert store.get_key(info.key_id).used == 0  # never below zero

    def test_set_limit_and_reset_usage(self, store: Store) -> None:
        info, _ = store.create_key("demo", 2)
        assert store.consume(info.key_id) and store.consume(info.key_id)
        assert store.consume(info.key_id) is False
        assert store.set_limit(info.key_id, 3)
        assert store.consume(info.key_id) is True
        assert store.consume(info.key_id) is False
        assert store.set_limit(info.key_id, None)
        assert all(store.consume(info.key_id) for _ in range(5))
        assert store.get_key(info.key_id).limit is None
        assert store.get_key(info.key_id).used == 8
        assert store.set_limit(info.key_id, 0)
        assert store.consume(info.key_id) is False
        assert store.reset_usage(info.key_id)
        assert store.get_key(info.key_id).used == 0
        with pytest.raises(ValueError):
            store.set_limit(info.key_id, -1)
        with pytest.raises(ValueError):
            store.create_key("bad", -5)

    def test_records_round_trip(self, store: Store) -> None:
        assert store.recent_records() == []
        records = [
            _record("0123456789ab", "ok", 1_700_000_001.25),
            _record(None, "invalid_credentials", 1_700_000_003.5, status=401, liveness_score=None),
            _record("0123456789ab", "deepfake", 1_700_000_002.0, deepfake_score=0.25),
        ]
        for rec in records:
            store.record(rec)
        newest_first = sorted(records, key=lambda r: r.started_at, reverse=True)
        assert store.recent_records() == newest_first
        assert store.recent_records(limit=2) == newest_first[:2]
        assert not any("image" in f.name for f in dataclasses.fields(RequestRecord))

    def test_usage_counts(self, store: Store) -> None:
        info, _ = store.create_key("demo", 10)
        other, _ = store.create_key("other", None)
        for _ in range(3):
            assert store.consume(info.key_id)
        for i, outcome in enumerate(["ok", "ok", "spoof", "invalid_image"]):
            store.record(_record(info.key_id, outcome, 1_700_000_000.0 + i))
        store.record(_record(other.key_id, "ok", 1_700_000_010.0))
        store.record(_record(None, "invalid_credentials", 1_700_000_011.0))
        usage = store.usage(info.key_id)
        assert usage == {
            "key_id": info.key_id,
            "used": 3,
            "limit": 10,
            "outcomes": {"ok": 2, "spoof": 1, "invalid_image": 1},
        }
        assert store.usage(other.key_id)["outcomes"] == {"ok": 1}
