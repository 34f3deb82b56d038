"""Password hashing: argon2id (RFC 9106) from `cryptography`, stored as PHC strings.

Parameters follow the OWASP floor (m = 19 MiB, t = 2, p = 1). Hashes carry their parameters, so
raising them later only needs ``needs_rehash`` at the next successful login. Hashing costs tens
of milliseconds and memory: callers run it off the event loop and rate-limit before hashing.
"""

from __future__ import annotations

import os
import re

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

MEMORY_KIB = 19 * 1024
ITERATIONS = 2
LANES = 1
MIN_LENGTH = 8
MAX_LENGTH = 256

_PARAMS = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")

# A hash of a random password, checked against when the user does not exist, so that a login
# for an unknown user costs the same time as one for a known user.
_DUMMY_HASH: str | None = None


class WeakPasswordError(ValueError):
    """The password does not meet the length policy."""


def check_policy(password: str) -> None:
    """Raise WeakPasswordError unless MIN_LENGTH <= len(password) <= MAX_LENGTH (ASVS 6.2)."""
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"password must be at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    kdf = Argon2id(
        salt=os.urandom(16),
        length=32,
        iterations=ITERATIONS,
        lanes=LANES,
        memory_cost=MEMORY_KIB,
    )
    return kdf.derive_phc_encoded(password.encode("utf-8"))


def verify_password(password: str, phc: str | None) -> bool:
    """True if `password` matches `phc`. With `phc=None`, spends the same time and returns False."""
    global _DUMMY_HASH
    if phc is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(os.urandom(16).hex())
        phc = _DUMMY_HASH
        password = ""
        result = False
    else:
        result = True
    try:
        Argon2id.verify_phc_encoded(password.encode("utf-8"), phc)
    except (InvalidKey, ValueError):
        return False
    return result


def needs_rehash(phc: str) -> bool:
    match = _PARAMS.match(phc)
    if match is None:
        return True
    memory, iterations, lanes = (int(g) for g in match.groups())
    return (memory, iterations, lanes) != (MEMORY_KIB, ITERATIONS, LANES)
