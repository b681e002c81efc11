"""The MongoDB store, for the containerised deployment (MONGODB_URI set)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import DuplicateKeyError, PyMongoError

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

# consume() reads the limit, then increments only if neither `used` nor `limit` moved past
# it. A lost race means another request took a unit (or the operator changed the key), so
# retries always make progress; the cap only guards against pathological contention.
_CONSUME_ATTEMPTS = 100
# Everything but the hash.
_KEY_FIELDS = {f: 1 for f in ("key_id", "name", "created_at", "disabled", "limit", "used")}
_KEY_FIELDS["_id"] = 0
_RECORD_FIELDS = [
    "key_id",
    "endpoint",
    "started_at",
    "status",
    "outcome",
    "liveness_score",
    "deepfake_score",
    "latency_ms",
]


def _key_info(doc: dict[str, Any]) -> KeyInfo:
    return KeyInfo(
        key_id=doc["key_id"],
        name=doc["name"],
        created_at=float(doc["created_at"]),
        disabled=bool(doc.get("disabled", False)),
        limit=doc.get("limit"),
        used=int(doc.get("used", 0)),
    )


class MongoStore:
    """Collections `api_keys` (unique key_id) and `requests`. Every pymongo error becomes
    StoreUnavailable; pymongo reconnects by itself, so the store heals once MongoDB is back."""

    def __init__(self, uri: str, db: str, timeout_ms: int) -> None:
        self._client: MongoClient = MongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=timeout_ms,
            connect=False,  # don't block start-up: the first call connects
        )
        self._db = self._client[db]
        self._keys = self._db["api_keys"]
        self._requests = self._db["requests"]
        self._meta = self._db["meta"]
        self._indexes_ready = False

    def _run(self, op: Callable[[], T]) -> T:
        try:
            if not self._indexes_ready:
                self._keys.create_index([("key_id", ASCENDING)], unique=True)
                self._requests.create_index([("started_at", DESCENDING)])
                self._requests.create_index([("key_id", ASCENDING), ("outcome", ASCENDING)])
                self._indexes_ready = True
            return op()
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB store: {exc}") from exc

    def close(self) -> None:
        self._client.close()

    def ping(self) -> None:
        def check() -> None:
            self._db.command("ping")
            self._keys.find_one({}, {"_id": 1})
            self._meta.update_one({"_id": "ping"}, {"$set": {"at": time.time()}}, upsert=True)

        self._run(check)

    # -- keys --------------------------------------------------------------------------

    def create_key(self, name: str, limit: int | None) -> tuple[KeyInfo, str]:
        limit = check_limit(limit)

        def insert() -> tuple[KeyInfo, str]:
            while True:
                key_id, plaintext, key_hash = keys.new_key()
                info = KeyInfo(key_id, str(name), time.time(), False, limit, 0)
                try:
                    self._keys.insert_one({**asdict(info), "key_hash": key_hash})
                except DuplicateKeyError:
                    continue  # key id collision (48 random bits): draw another
                return info, plaintext

        return self._run(insert)

    def get_key(self, key_id: str) -> KeyInfo | None:
        doc = self._run(lambda: self._keys.find_one({"key_id": str(key_id)}, _KEY_FIELDS))
        return _key_info(doc) if doc else None

    def list_keys(self) -> list[KeyInfo]:
        docs = self._run(lambda: list(self._keys.find({}, _KEY_FIELDS)))
        return sorted((_key_info(d) for d in docs), key=lambda k: (k.created_at, k.key_id))

    def _update_key(self, key_id: str, update: dict[str, Any]) -> bool:
        result = self._run(lambda: self._keys.update_one({"key_id": str(key_id)}, update))
        return result.matched_count == 1

    def set_disabled(self, key_id: str, disabled: bool) -> bool:
        return self._update_key(key_id, {"$set": {"disabled": bool(disabled)}})

    def set_limit(self, key_id: str, limit: int | None) -> bool:
        return self._update_key(key_id, {"$set": {"limit": check_limit(limit)}})

    def reset_usage(self, key_id: str) -> bool:
        return self._update_key(key_id, {"$set": {"used": 0}})

    def authenticate(self, plaintext: object) -> tuple[AuthResult, str | None]:
        key_id = keys.parse_key(plaintext)
        if key_id is None:
            keys.verify("", keys.DUMMY_HASH)
            return AuthResult.INVALID, None
        doc = self._run(
            lambda: self._keys.find_one({"key_id": key_id}, {"_id": 0, "key_hash": 1, "disabled": 1})
        )
        matches = keys.verify(plaintext, doc["key_hash"] if doc else keys.DUMMY_HASH)
        if doc is None or not matches:
            return AuthResult.INVALID, None
        return (AuthResult.DISABLED if doc.get("disabled") else AuthResult.OK), key_id

    # -- quota -------------------------------------------------------------------------

    def consume(self, key_id: str) -> bool:
        key_id = str(key_id)

        def take_one() -> bool:
            for _ in range(_CONSUME_ATTEMPTS):
                doc = self._keys.find_one(
                    {"key_id": key_id}, {"_id": 0, "disabled": 1, "limit": 1, "used": 1}
                )
                if doc is None or doc.get("disabled"):
                    return False
                limit = doc.get("limit")
                if limit is not None and doc.get("used", 0) >= limit:
                    return False
                # Plain query operators only (no $expr), so MongoDB-compatible servers
                # without aggregation expressions in filters count exactly too.
                condition: dict[str, Any] = {"key_id": key_id, "disabled": False, "limit": limit}
                if limit is not None:
                    condition["used"] = {"$lt": limit}
                if self._keys.update_one(condition, {"$inc": {"used": 1}}).matched_count:
                    return True
            raise StoreUnavailable(f"consume({key_id}): gave up after {_CONSUME_ATTEMPTS} races")

        return self._run(take_one)

    def release(self, key_id: str) -> None:
        self._run(
            lambda: self._keys.update_one({"key_id": str(key_id), "used": {"$gt": 0}}, {"$inc": {"used": -1}})
        )

    # -- request log -------------------------------------------------------------------

    def record(self, rec: RequestRecord) -> None:
        self._run(lambda: self._requests.insert_one(asdict(rec)))

    def recent_records(self, limit: int = 100) -> list[RequestRecord]:
        limit = max(int(limit), 0)
        if limit == 0:
            return []
        docs = self._run(
            lambda: list(self._requests.find({}, {"_id": 0}).sort("started_at", DESCENDING).limit(limit))
        )
        return [RequestRecord(**{f: d.get(f) for f in _RECORD_FIELDS}) for d in docs]

    def usage(self, key_id: str) -> Usage | None:
        key_id = str(key_id)

        def read() -> Usage | None:
            doc = self._keys.find_one({"key_id": key_id}, {"_id": 0, "used": 1, "limit": 1})
            if doc is None:
                return None
            groups = self._requests.aggregate(
                [{"$match": {"key_id": key_id}}, {"$group": {"_id": "$outcome", "n": {"$sum": 1}}}]
            )
            outcomes = {g["_id"]: int(g["n"]) for g in groups}
            return Usage(
                key_id=key_id,
                used=int(doc.get("used", 0)),
                limit=doc.get("limit"),
                outcomes=outcomes,
            )

        return self._run(read)
