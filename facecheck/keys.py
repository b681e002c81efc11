"""API key format, parsing and hashing.

A key looks like ``fc_<key_id>_<secret>``: the key id is public (it names the key in logs
and in the operator CLI), the secret is not. Only the SHA-256 of the whole key is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

KEY_PREFIX = "fc_"
MAX_KEY_CHARS = 200
_KEY_RE = re.compile(r"fc_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
# Hash of a key nobody holds: compared against when the key id is unknown, so an
# unknown id costs the same work as a wrong secret.
DUMMY_HASH = hashlib.sha256(b"fc_000000000000_no-such-key").hexdigest()


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> tuple[str, str, str]:
    """A fresh key: (key_id, plaintext_key, key_hash). Show the plaintext once, store the hash."""
    key_id = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return key_id, plaintext, hash_key(plaintext)


def parse_key(value: object) -> str | None:
    """The key id of a well-formed key, else None. Never raises, whatever the input."""
    if not isinstance(value, str) or len(value) > MAX_KEY_CHARS:
        return None
    if not value.isascii() or not value.isprintable():
        return None
    match = _KEY_RE.fullmatch(value)
    return match.group(1) if match else None


def verify(plaintext: object, stored_hash: str) -> bool:
    """Constant-time check of a presented key against a stored hash."""
    if not isinstance(plaintext, str):
        return False
    presented = hash_key(plaintext).encode("ascii")
    return hmac.compare_digest(presented, stored_hash.encode("utf-8", "replace"))
