"""Key and usage storage: embedded SQLite by default, MongoDB when MONGODB_URI is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facecheck.store.base import (
    AuthResult,
    KeyInfo,
    RequestRecord,
    Store,
    StoreUnavailable,
    Usage,
)

if TYPE_CHECKING:
    from facecheck.settings import Settings

__all__ = [
    "AuthResult",
    "KeyInfo",
    "RequestRecord",
    "Store",
    "StoreUnavailable",
    "Usage",
    "open_store",
]


def open_store(settings: Settings) -> Store:
    if settings.mongodb_uri:
        # Imported here so the embedded deployment never needs pymongo.
        from facecheck.store.mongo import MongoStore

        return MongoStore(settings.mongodb_uri, settings.mongodb_db, settings.store_timeout_ms)
    from facecheck.store.sqlite import SQLiteStore

    return SQLiteStore(settings.db_path, settings.store_timeout_ms)
