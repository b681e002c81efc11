"""What every key/usage store provides, whatever database is behind it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypedDict, runtime_checkable


class StoreUnavailable(Exception):
    """The database can't be reached, read or written right now; the call may succeed later."""


class AuthResult(StrEnum):
    OK = "ok"
    INVALID = "invalid"
    DISABLED = "disabled"


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    created_at: float  # epoch seconds
    disabled: bool
    limit: int | None  # None: unlimited
    used: int


@dataclass(frozen=True)
class RequestRecord:
    """One scored (or refused) request. Never holds image data."""

    key_id: str | None
    endpoint: str
    started_at: float  # epoch seconds
    status: int
    outcome: str
    liveness_score: float | None
    deepfake_score: float | None
    latency_ms: float


class Usage(TypedDict):
    key_id: str
    used: int
    limit: int | None
    outcomes: dict[str, int]  # number of recorded requests per outcome


def check_limit(limit: int | None) -> int | None:
    """A request limit is None (unlimited) or a whole number >= 0."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be None or an integer >= 0, got {limit!r}")
    return limit


@runtime_checkable
class Store(Protocol):
    def ping(self) -> None:
        """Raise StoreUnavailable unless the database can be both read and written."""

    def create_key(self, name: str, limit: int | None) -> tuple[KeyInfo, str]:
        """Create a key; returns its info and the plaintext key (the only time it exists)."""

    def get_key(self, key_id: str) -> KeyInfo | None: ...

    def list_keys(self) -> list[KeyInfo]: ...

    def set_disabled(self, key_id: str, disabled: bool) -> bool:
        """False when the key doesn't exist (likewise set_limit and reset_usage)."""

    def set_limit(self, key_id: str, limit: int | None) -> bool: ...

    def reset_usage(self, key_id: str) -> bool: ...

    def authenticate(self, plaintext: object) -> tuple[AuthResult, str | None]:
        """(result, key_id). Read-only; any malformed or unknown input is INVALID, never raises."""

    def consume(self, key_id: str) -> bool:
        """Atomically count one request; False when the key is used up, disabled or unknown."""

    def release(self, key_id: str) -> None:
        """Undo one consume (used never goes below 0), e.g. when scoring failed."""

    def record(self, rec: RequestRecord) -> None: ...

    def recent_records(self, limit: int = 100) -> list[RequestRecord]:
        """Newest first."""

    def usage(self, key_id: str) -> Usage | None:
        """None when the key doesn't exist."""

    def close(self) -> None: ...
