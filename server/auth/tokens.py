"""Bearer secrets: invitation tokens, session tokens, station keys.

Each is 256 bits from the OS CSPRNG, shown once, and stored only as SHA-256. High-entropy
secrets need no slow hash (ASVS 6.5.2); the digest is what the database indexes and compares.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh URL-safe token carrying 256 random bits."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def plausible(token: object) -> bool:
    """Cheap shape check before touching the database: URL-safe base64 of 32 bytes."""
    return (
        isinstance(token, str) and len(token) == 43 and all(c.isalnum() or c in "-_" for c in token)
    )


def same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
