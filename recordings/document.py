"""Signed hearing documents: a transcript (笔录) or a mediation agreement, sealed by the court.

A sealed document is one UTF-8 JSON file that anyone can check offline with the court's public
key, the way a recording package is checked: the exact text, who signed it (each signature
bound to the SHA-256 of that exact text, with the handwritten image), who refused and why, and
the court's Ed25519 signature over all of it. The format is a contract for people who write
their own verifiers: docs/document-format.md.

This module imports nothing of the server: the hearing record service (server/hearings/)
builds a `DocumentContent` when a document is finalised and calls `seal_document`; the verifier
and the PDF renderer read what it wrote.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .keys import SigningKey

__all__ = [
    "FORMAT",
    "DocumentContent",
    "DocumentKind",
    "Refusal",
    "Signature",
    "canonical_json",
    "seal_document",
    "text_sha256",
]

FORMAT = "shared-court-document/1"

DocumentKind = Literal["transcript", "agreement"]


def text_sha256(text: str) -> str:
    """Hex SHA-256 of the text's UTF-8 bytes: what a signature is bound to."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> bytes:
    """The bytes that are signed: JSON with sorted keys, no spaces, UTF-8 (not ASCII-escaped)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Signature:
    """One person's signature on one exact text."""

    participant_id: str
    role: str  # hearing role (signaling.enums.HearingRole value)
    name: str
    signed_at: str  # RFC 3339, UTC
    text_sha256: str  # of the exact text this person reviewed and signed
    where: str  # "phone", "desk" or "station": where the handwriting was drawn
    image_png_b64: str  # the handwritten signature, PNG, base64


@dataclass(frozen=True)
class Refusal:
    """A person who refused to sign, and why (recorded, not an error)."""

    participant_id: str
    role: str
    name: str
    refused_at: str  # RFC 3339, UTC
    reason: str


@dataclass(frozen=True)
class DocumentContent:
    """What a finalised document says; sealed as the `document` member of the file."""

    kind: DocumentKind
    document_id: str
    version: int  # the saved version that was finalised (every version is kept by the court)
    court: str
    case_number: str
    hearing_id: str
    hearing_title: str
    text: str
    finalised_at: str  # RFC 3339, UTC
    signatures: tuple[Signature, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    # For an agreement: "effective" (the last party signed) or "refused"; "final" for a transcript.
    outcome: str = "final"
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The `document` member: the content plus the hash of its text."""
        data = asdict(self)
        data["signatures"] = [asdict(s) for s in self.signatures]
        data["refusals"] = [asdict(r) for r in self.refusals]
        data["text_sha256"] = text_sha256(self.text)
        return data


def seal_document(content: DocumentContent, key: SigningKey) -> bytes:
    """The sealed file's bytes: {format, document, court_signature}.

    The court's signature is Ed25519 over `canonical_json({"format": FORMAT, "document": ...})`.
    """
    signed = {"format": FORMAT, "document": content.body()}
    signature = key.sign(canonical_json(signed))
    sealed = {
        **signed,
        "court_signature": {
            "alg": "Ed25519",
            "key_id": key.key_id,
            "public_key": base64.b64encode(key.verify_key.raw).decode(),
            "signature": base64.b64encode(signature).decode(),
        },
    }
    return json.dumps(sealed, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"
