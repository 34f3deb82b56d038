"""Keys: Ed25519 signing keys, X25519 archive keys, and the data-key wrap.

Design decisions:
- Each recording has its own random 32-byte data key (DEK). It is never persisted in clear; it is
  wrapped for one or more archive X25519 public keys (records office, escrow) in `keys.json`,
  which is deliberately outside the hash chain so keys can be re-wrapped without touching the
  evidence. `dek_commit = HMAC-SHA256(DEK, "cevr/v1/dek-commit" || rec_id)` is in the signed
  `recording.json`, so whoever unwraps a key can prove it is *the* key of this recording
  (AES-GCM is not key-committing).
- The wrap is HPKE-like but spelled out with `cryptography` primitives so a third party can
  reimplement it from docs/recording-format.md: ephemeral X25519, shared secret through
  HKDF-SHA256 (salt = eph_pub || recipient_pub, info = "cevr/v1/dek-wrap" || rec_id) to a KEK,
  AES-256-GCM of the DEK under a zero nonce (the KEK is single-use) with rec_id as AAD.
- Key ids are the first 8 bytes of SHA-256 over the raw public key, hex.
- Key objects redact themselves in `repr`; private key files are written 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import IntegrityError, KeyFileError

log = logging.getLogger(__name__)

WRAP_INFO = b"cevr/v1/dek-wrap"
COMMIT_INFO = b"cevr/v1/dek-commit"
ZERO_NONCE = bytes(12)


def key_id(raw_public: bytes) -> str:
    """Key id: hex of the first 8 bytes of SHA-256(raw public key)."""
    return hashlib.sha256(raw_public).digest()[:8].hex()


def _raw_pub(pub: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class VerifyKey:
    """An Ed25519 public key that checks signatures."""

    def __init__(self, public: Ed25519PublicKey) -> None:
        self._public = public
        self.raw = _raw_pub(public)
        self.key_id = key_id(self.raw)

    @classmethod
    def from_raw(cls, raw: bytes) -> VerifyKey:
        """Raises KeyFileError if `raw` is not a 32-byte Ed25519 key."""
        try:
            return cls(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as exc:
            raise KeyFileError(f"not an Ed25519 public key: {exc}") from exc

    def pem(self) -> str:
        """The key as PEM text (SubjectPublicKeyInfo)."""
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self._public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"VerifyKey(key_id={self.key_id})"


class SigningKey:
    """An Ed25519 private key (the recorder's). Redacted in repr."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.verify_key = VerifyKey(private.public_key())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @property
    def key_id(self) -> str:
        return self.verify_key.key_id

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def private_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id}, private=<redacted>)"


class ArchivePublicKey:
    """An archive (records office / escrow) X25519 public key: DEKs are wrapped for it."""

    def __init__(self, public: X25519PublicKey) -> None:
        self._public = public
        self.raw = _raw_pub(public)
        self.key_id = key_id(self.raw)

    @property
    def public(self) -> X25519PublicKey:
        return self._public

    def pem(self) -> str:
        """SubjectPublicKeyInfo PEM (what `load_archive_public_key` reads)."""
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    @classmethod
    def from_pem(cls, data: str | bytes, what: str = "public key") -> ArchivePublicKey:
        """Raises KeyFileError if `data` is not a PEM X25519 public key."""
        raw = data.encode("ascii") if isinstance(data, str) else data
        try:
            pub = serialization.load_pem_public_key(raw)
        except ValueError as exc:
            raise KeyFileError(f"{what}: not a PEM public key") from exc
        if not isinstance(pub, X25519PublicKey):
            raise KeyFileError(f"{what}: not an X25519 public key")
        return cls(pub)

    def __repr__(self) -> str:
        return f"ArchivePublicKey(key_id={self.key_id})"


class ArchivePrivateKey:
    """The archive X25519 private key, needed only to export (decrypt). Redacted in repr."""

    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private
        self.public_key = ArchivePublicKey(private.public_key())

    @classmethod
    def generate(cls) -> ArchivePrivateKey:
        return cls(X25519PrivateKey.generate())

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    def exchange(self, peer_raw: bytes) -> bytes:
        return self._private.exchange(X25519PublicKey.from_public_bytes(peer_raw))

    def private_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return f"ArchivePrivateKey(key_id={self.key_id}, private=<redacted>)"


class DataKey:
    """A recording's 32-byte AES-256-GCM data key. Kept in a bytearray, wiped by `wipe()`
    (as far as Python allows). Redacted in repr."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise ValueError("data key must be 32 bytes")
        self._raw = bytearray(raw)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(secrets.token_bytes(32))

    def material(self) -> bytes:
        if not self._raw:
            raise ValueError("data key was wiped")
        return bytes(self._raw)

    def commitment(self, recording_id_bytes: bytes) -> bytes:
        return hmac.new(self.material(), COMMIT_INFO + recording_id_bytes, "sha256").digest()

    def wipe(self) -> None:
        for i in range(len(self._raw)):
            self._raw[i] = 0
        self._raw = bytearray()

    def __repr__(self) -> str:
        return "DataKey(<redacted>)"


class KeyProvider(Protocol):
    """Where the writer gets its keys (the server may back this by an HSM or config files)."""

    def signing_key(self) -> SigningKey: ...

    def archive_keys(self) -> list[ArchivePublicKey]: ...


@dataclass(frozen=True)
class StaticKeyProvider:
    """`KeyProvider` over keys already in memory."""

    signer: SigningKey
    recipients: tuple[ArchivePublicKey, ...]

    def signing_key(self) -> SigningKey:
        return self.signer

    def archive_keys(self) -> list[ArchivePublicKey]:
        return list(self.recipients)


@dataclass(frozen=True)
class WrappedKey:
    """One recipient stanza of keys.json."""

    recipient_key_id: str
    ephemeral_public: bytes
    wrapped: bytes


def _kek(shared: bytes, eph_pub: bytes, recipient_pub: bytes, recording_id_bytes: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=eph_pub + recipient_pub,
        info=WRAP_INFO + recording_id_bytes,
    ).derive(shared)


def wrap_data_key(
    dek: DataKey, recipient: ArchivePublicKey, recording_id_bytes: bytes
) -> WrappedKey:
    """Wrap `dek` for `recipient` (ephemeral X25519 + HKDF-SHA256 + AES-256-GCM)."""
    eph = X25519PrivateKey.generate()
    eph_pub = _raw_pub(eph.public_key())
    kek = _kek(eph.exchange(recipient.public), eph_pub, recipient.raw, recording_id_bytes)
    wrapped = AESGCM(kek).encrypt(ZERO_NONCE, dek.material(), recording_id_bytes)
    return WrappedKey(recipient.key_id, eph_pub, wrapped)


def unwrap_data_key(
    stanza: WrappedKey, private: ArchivePrivateKey, recording_id_bytes: bytes
) -> DataKey:
    """Unwrap a stanza. Raises IntegrityError if it was not made for this key and recording."""
    try:
        shared = private.exchange(stanza.ephemeral_public)
        kek = _kek(shared, stanza.ephemeral_public, private.public_key.raw, recording_id_bytes)
        raw = AESGCM(kek).decrypt(ZERO_NONCE, stanza.wrapped, recording_id_bytes)
    except (InvalidTag, ValueError) as exc:
        raise IntegrityError("data key stanza does not open with this archive key") from exc
    return DataKey(raw)


# ---- PEM files -------------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc


def load_signing_key(path: Path) -> SigningKey:
    """Raises KeyFileError if the file is unreadable or not an Ed25519 private key."""
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 private key")
    return SigningKey(key)


def load_verify_key(path: Path) -> VerifyKey:
    """Load an Ed25519 public key (PEM public key, or a PEM private key whose public half is
    used). Raises KeyFileError."""
    data = _read(path)
    try:
        pub = serialization.load_pem_public_key(data)
    except ValueError:
        return load_signing_key(path).verify_key
    if not isinstance(pub, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 public key")
    return VerifyKey(pub)


def load_trust_dir(directory: Path) -> list[VerifyKey]:
    """Every Ed25519 public key (`*.pub`, `*.pem`) in `directory`: the signing keys an auditor
    or a court has decided to trust. Raises KeyFileError if the directory cannot be read or a
    key file in it is not an Ed25519 public key (a trust store must not half-load)."""
    try:
        files = sorted(p for p in directory.iterdir() if p.suffix in (".pub", ".pem"))
    except OSError as exc:
        raise KeyFileError(f"cannot read trust directory {directory}: {exc.strerror}") from exc
    return [load_verify_key(p) for p in files]


def fingerprint(raw_public: bytes) -> str:
    """The full SHA-256 of a raw public key, hex: what a case file prints for a key id."""
    return hashlib.sha256(raw_public).hexdigest()


def load_archive_private_key(path: Path) -> ArchivePrivateKey:
    """Raises KeyFileError if the file is unreadable or not an X25519 private key."""
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a PEM private key") from exc
    if not isinstance(key, X25519PrivateKey):
        raise KeyFileError(f"{path}: not an X25519 private key")
    return ArchivePrivateKey(key)


def load_archive_public_key(path: Path) -> ArchivePublicKey:
    """Raises KeyFileError if the file is unreadable or not an X25519 public key."""
    return ArchivePublicKey.from_pem(_read(path), str(path))


def write_private(path: Path, data: bytes) -> None:
    """Create `path` holding `data`, mode 0600, synced. Raises FileExistsError if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class KeyFiles:
    """Paths written by `keygen`."""

    archive_private: Path
    archive_public: Path
    signing_private: Path
    signing_public: Path


def keygen(directory: Path) -> KeyFiles:
    """Create an archive X25519 pair and an Ed25519 signing pair as PEM files in `directory`.

    Private keys are created 0600 and never overwritten. Raises KeyFileError if a file exists.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = KeyFiles(
        directory / "archive.key",
        directory / "archive.pub",
        directory / "signing.key",
        directory / "signing.pub",
    )
    for p in (
        files.archive_private,
        files.archive_public,
        files.signing_private,
        files.signing_public,
    ):
        if p.exists():
            raise KeyFileError(f"{p} exists; refusing to overwrite a key")
    archive = ArchivePrivateKey.generate()
    signer = SigningKey.generate()
    write_private(files.archive_private, archive.private_pem())
    write_private(files.signing_private, signer.private_pem())
    files.archive_public.write_bytes(
        archive.public_key.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    files.signing_public.write_bytes(
        Ed25519PublicKey.from_public_bytes(signer.verify_key.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    log.info("generated archive key %s and signing key %s", archive.key_id, signer.key_id)
    return files
