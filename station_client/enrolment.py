"""The station's own key pair (issue 14): created on first run, registered with the court by a
one-time enrolment code an administrator issues, then used to sign every login. The private
key never leaves the PC (PEM, PKCS#8, file mode 0600); nobody pastes a secret.

`StationConfig.key_file` holds either the shared station key of `station add` (a line of
text: the installed stations keep working) or this private key (a PEM block): the app logs in
with whichever it finds.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from .court_api import StationError

PEM_MARK = "-----BEGIN PRIVATE KEY-----"


def is_key_pair(text: str) -> bool:
    """Whether a key file's text is the station's own private key (else a shared key)."""
    return text.lstrip().startswith(PEM_MARK)


def load_private_key(text: str) -> Ed25519PrivateKey:
    """The station's private key from its PEM. Raises StationError."""
    try:
        key = load_pem_private_key(text.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise StationError(f"the station's key file is damaged: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise StationError("the station's key file does not hold an Ed25519 key")
    return key


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The station's key pair, created (0600, never overwritten) on first use. Blocks: call it
    in a thread. Raises StationError (a damaged file), OSError."""
    if path.exists():
        return load_private_key(path.read_text(encoding="ascii"))
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key


def public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
