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
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC
from typing import Any, Literal

import cryptography.x509
from rfc3161_client import VerificationError

from .clock import iso
from .errors import FormatError
from .keys import SigningKey, VerifyKey, fingerprint, key_id
from .timestamps import TimestampError, TsaConfig, TsaTrust, decode_token, request_token

__all__ = [
    "FORMAT",
    "DocumentContent",
    "DocumentKind",
    "DocumentReport",
    "NotADocumentError",
    "Refusal",
    "Signature",
    "anchor_document",
    "canonical_json",
    "looks_like_document",
    "seal_document",
    "signed_bytes",
    "text_sha256",
    "verify_document",
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


# ---- time anchor and verification (docs/document-format.md) --------------------------------

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_USAGE = 3
TOP_LEVEL = frozenset({"format", "document", "court_signature", "time_anchor"})
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRUST_GIVEN = "given key"
TRUST_EMBEDDED = "embedded key (trusted on request)"
TRUST_NONE = "untrusted"
# The `document` member's fields and their JSON types, as DocumentContent.body() writes them.
_DOC_FIELDS: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "document_id": str,
    "version": int,
    "court": str,
    "case_number": str,
    "hearing_id": str,
    "hearing_title": str,
    "text": str,
    "text_sha256": str,
    "finalised_at": str,
    "signatures": list,
    "refusals": list,
    "outcome": str,
    "extra": dict,
}
_SIG_FIELDS = ("participant_id", "role", "name", "signed_at", "text_sha256", "where")
_REFUSAL_FIELDS = ("participant_id", "role", "name", "refused_at", "reason")


class NotADocumentError(ValueError):
    """The bytes are not a sealed document at all (not UTF-8 JSON with our `format`)."""


def signed_bytes(sealed: dict[str, Any]) -> bytes:
    """The exact bytes the court signed and the TSA stamped: canonical {format, document}."""
    return canonical_json({"format": sealed.get("format"), "document": sealed.get("document")})


def _dump(sealed: dict[str, Any]) -> bytes:
    return json.dumps(sealed, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"


def _parse(raw: bytes, duplicates: list[str] | None = None) -> dict[str, Any]:
    """Raises NotADocumentError. Member names that occur twice in one object are appended to
    `duplicates` (JSON readers differ on which one wins, so a verifier refuses them)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, item in items:
            if name in out and duplicates is not None:
                duplicates.append(name)
            out[name] = item
        return out

    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=pairs)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotADocumentError(f"not a sealed document (not UTF-8 JSON: {exc})") from exc
    fmt = value.get("format") if isinstance(value, dict) else None
    if not isinstance(fmt, str) or not fmt.startswith("shared-court-document/"):
        raise NotADocumentError("not a sealed document (no shared-court-document format member)")
    result: dict[str, Any] = value
    return result


def looks_like_document(raw: bytes) -> bool:
    """True when the bytes claim to be a sealed document (verify picks its checks by this)."""
    try:
        _parse(raw)
    except NotADocumentError:
        return False
    return True


def anchor_document(sealed: bytes, config: TsaConfig) -> bytes:
    """The sealed document with an RFC 3161 `time_anchor` added: a token from the court's TSA
    over SHA-256(signed_bytes). Blocking (HTTP, tries `config.attempts` times): the service
    calls it in a thread after `seal_document`. The anchor is outside what the court signs, like
    a recording's tokens: it arrives after the seal and is authenticated by the TSA's own
    signature. Raises TimestampError when the TSA gives no usable token (the document stays
    valid unanchored; the caller logs it), NotADocumentError for bytes that are no document."""
    value = _parse(sealed)
    message = signed_bytes(value)
    last: TimestampError | None = None
    for _ in range(config.attempts):
        try:
            token = request_token(config.url, message, config.timeout)
            break
        except TimestampError as exc:
            last = exc
    else:
        assert last is not None
        raise last
    value["time_anchor"] = {
        "alg": "RFC3161",
        "hash": "SHA-256",
        "imprint": hashlib.sha256(message).hexdigest(),
        "token_b64": base64.b64encode(token).decode(),
    }
    return _dump(value)


@dataclass
class DocumentReport:
    """What verify_document found. `problems` are (place, message): each one is tampering."""

    path: str
    kind: str | None = None
    document_id: str | None = None
    version: int | None = None
    case_number: str | None = None
    text_sha256: str | None = None
    signed_sha256: str | None = None
    key_id: str | None = None
    key_fingerprint: str | None = None
    trust: str | None = None
    outcome: str | None = None
    signatures: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    not_signed: list[str] = field(default_factory=list)
    time_anchor: dict[str, Any] | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    io_error: str | None = None

    @property
    def exit_code(self) -> int:
        if self.io_error is not None:
            return EXIT_USAGE
        return EXIT_TAMPERED if self.problems else EXIT_OK

    @property
    def verdict(self) -> str:
        if self.trust == TRUST_NONE and len(self.problems) == 1 and self.io_error is None:
            return "UNTRUSTED SIGNER"
        return {EXIT_OK: "INTACT", EXIT_TAMPERED: "TAMPERED", EXIT_USAGE: "ERROR"}[self.exit_code]

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": "document",
            "exit_code": self.exit_code,
            "verdict": self.verdict,
            "kind": self.kind,
            "document_id": self.document_id,
            "version": self.version,
            "case_number": self.case_number,
            "outcome": self.outcome,
            "text_sha256": self.text_sha256,
            "signed_sha256": self.signed_sha256,
            "signing_key_id": self.key_id,
            "signing_key_fingerprint": self.key_fingerprint,
            "trust": self.trust,
            "signatures": self.signatures,
            "refusals": self.refusals,
            "not_signed": self.not_signed,
            "time_anchor": self.time_anchor,
            "problems": [{"place": p, "message": m} for p, m in self.problems],
            "warnings": self.warnings,
            "io_error": self.io_error,
        }

    def text(self) -> str:
        lines = [f"{self.path}: {self.verdict}"]
        if self.document_id:
            lines.append(
                f"  {self.kind} {self.document_id} version {self.version}, case "
                f"{self.case_number}, outcome {self.outcome}; sealed by key {self.key_id} "
                f"({self.trust})"
            )
            lines.append(f"  text SHA-256 {self.text_sha256}")
            lines.append(f"  signed bytes SHA-256 {self.signed_sha256}")
        for s in self.signatures:
            lines.append(
                f"  signed by {s['name']} ({s['role']}) at {s['signed_at']}, {s['where']}: "
                f"{s['status']}"
            )
        for r in self.refusals:
            lines.append(f"  refused by {r['name']} ({r['role']}) at {r['refused_at']}")
        for pid in self.not_signed:
            lines.append(f"  not signed this text (pending or stale): participant {pid}")
        if self.time_anchor is not None and self.time_anchor.get("gen_time"):
            lines.append(
                f"  RFC 3161 time anchor verifies: existed by {self.time_anchor['gen_time']} "
                f"({self.time_anchor['tsa']})"
            )
        if self.io_error:
            lines.append(f"  I/O error: {self.io_error}")
        for place, message in self.problems:
            lines.append(f"  PROBLEM at {place}: {message}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)


def verify_document(
    raw: bytes,
    public_keys: list[VerifyKey],
    *,
    trust_embedded_key: bool = False,
    tsa: TsaTrust | None = None,
    path: str = "document",
) -> DocumentReport:
    """Check a sealed document offline (docs/document-format.md §Verification).

    Never raises for content: what does not hold is a problem named by its place (exit 1).
    Bytes that are no document at all are an I/O-class error (exit 3); so is a TSA trust
    without a root certificate.
    """
    report = DocumentReport(path)
    duplicates: list[str] = []
    try:
        value = _parse(raw, duplicates)
    except NotADocumentError as exc:
        report.io_error = str(exc)
        return report
    for name in duplicates:
        report.problems.append((name, "member name occurs twice in one object"))
    if value["format"] != FORMAT:
        # A later version is not tampering: this verifier cannot judge it (like a recording's
        # unknown version).
        report.io_error = f"unsupported format {value['format']!r} (this verifier reads {FORMAT})"
        return report
    for name in sorted(set(value) - TOP_LEVEL):
        report.problems.append((name, "member the format does not define (not sealed)"))
    doc = value.get("document")
    if not isinstance(doc, dict):
        report.problems.append(("document", "missing or not an object"))
        return report
    _check_document(doc, report)
    message = signed_bytes(value)
    report.signed_sha256 = hashlib.sha256(message).hexdigest()
    _check_court_signature(
        value.get("court_signature"), message, public_keys, trust_embedded_key, report
    )
    _check_anchor(value.get("time_anchor"), message, tsa, report)
    return report


def _check_document(doc: dict[str, Any], report: DocumentReport) -> None:
    for name, kind in _DOC_FIELDS.items():
        if not isinstance(doc.get(name), kind) or isinstance(doc.get(name), bool):
            report.problems.append((f"document.{name}", "missing or of the wrong type"))
    for name in sorted(set(doc) - set(_DOC_FIELDS)):
        report.problems.append((f"document.{name}", "member the format does not define"))
    text = doc.get("text")
    if not isinstance(text, str):
        return
    actual = text_sha256(text)
    report.text_sha256 = actual
    report.kind = str(doc.get("kind"))
    report.document_id = str(doc.get("document_id"))
    report.version = doc.get("version") if isinstance(doc.get("version"), int) else None
    report.case_number = str(doc.get("case_number"))
    report.outcome = str(doc.get("outcome"))
    if doc.get("text_sha256") != actual:
        report.problems.append(
            (
                "document.text_sha256",
                f"states {doc.get('text_sha256')}, the text hashes to {actual}",
            )
        )
    signatures = doc.get("signatures")
    refusals = doc.get("refusals")
    for i, sig in enumerate(signatures if isinstance(signatures, list) else []):
        _check_signature(i, sig, actual, report)
    for i, ref in enumerate(refusals if isinstance(refusals, list) else []):
        place = f"document.refusals[{i}]"
        if not isinstance(ref, dict) or any(
            not isinstance(ref.get(f), str) for f in _REFUSAL_FIELDS
        ):
            report.problems.append((place, "missing fields or of the wrong type"))
            continue
        report.refusals.append({f: ref[f] for f in _REFUSAL_FIELDS})
    extra = doc.get("extra")
    if isinstance(extra, dict) and isinstance(extra.get("not_signed"), list):
        report.not_signed = [str(p) for p in extra["not_signed"]]


def _check_signature(i: int, sig: Any, text_hash: str, report: DocumentReport) -> None:
    place = f"document.signatures[{i}]"
    if not isinstance(sig, dict) or any(
        not isinstance(sig.get(f), str) for f in (*_SIG_FIELDS, "image_png_b64")
    ):
        report.problems.append((place, "missing fields or of the wrong type"))
        return
    who = f"{sig['name']} ({sig['role']})"
    entry: dict[str, Any] = {f: sig[f] for f in _SIG_FIELDS}
    status = "valid"
    if sig["text_sha256"] != text_hash:
        status = "does not match the text"
        report.problems.append(
            (
                f"{place}.text_sha256",
                f"{who} signed a text hashing to {sig['text_sha256']}, the document's text "
                f"hashes to {text_hash} (a sealed document holds only signatures on its text)",
            )
        )
    try:
        image = base64.b64decode(sig["image_png_b64"], validate=True)
    except (binascii.Error, ValueError):
        image = b""
    entry["image_sha256"] = hashlib.sha256(image).hexdigest()
    if not image.startswith(PNG_MAGIC):
        status = "bad signature image"
        report.problems.append((f"{place}.image_png_b64", f"{who}: not a base64 PNG image"))
    entry["status"] = status
    report.signatures.append(entry)


def _check_court_signature(
    cs: Any,
    message: bytes,
    public_keys: list[VerifyKey],
    trust_embedded_key: bool,
    report: DocumentReport,
) -> None:
    place = "court_signature"
    if not isinstance(cs, dict) or cs.get("alg") != "Ed25519":
        report.problems.append((place, "missing, or not an Ed25519 signature"))
        return
    try:
        raw_pub = base64.b64decode(str(cs.get("public_key")), validate=True)
        sig = base64.b64decode(str(cs.get("signature")), validate=True)
        key = VerifyKey.from_raw(raw_pub)
    except (binascii.Error, ValueError) as exc:
        report.problems.append((f"{place}.public_key", f"not a base64 Ed25519 key ({exc})"))
        return
    report.key_id = key.key_id
    report.key_fingerprint = fingerprint(key.raw)
    if cs.get("key_id") != key_id(key.raw):
        report.problems.append(
            (f"{place}.key_id", f"states {cs.get('key_id')}, the public key's id is {key.key_id}")
        )
    if not key.verify(sig, message):
        report.problems.append(
            (
                f"{place}.signature",
                "the court's Ed25519 signature does not verify over the document "
                "(text, signatures or another member changed after sealing)",
            )
        )
    if any(k.raw == key.raw for k in public_keys):
        report.trust = TRUST_GIVEN
    elif trust_embedded_key:
        report.trust = TRUST_EMBEDDED
        report.warnings.append(
            "the court's key was taken from the document itself (--trust-embedded-key): this "
            "proves integrity, not that a court sealed it"
        )
    else:
        report.trust = TRUST_NONE
        why = "not among the trusted public keys given" if public_keys else "no trusted key given"
        report.problems.append(
            (
                place,
                f"sealed by key {key.key_id} (SHA-256 fingerprint {report.key_fingerprint}), "
                f"{why}: pass the court's public key with --public-key FILE or --trust-dir DIR, "
                "or knowingly accept the embedded key with --trust-embedded-key",
            )
        )


def _check_anchor(
    anchor: Any, message: bytes, tsa: TsaTrust | None, report: DocumentReport
) -> None:
    place = "time_anchor"
    if anchor is None:
        if tsa is not None:
            report.warnings.append("no RFC 3161 time anchor: the document is not anchored")
        return
    digest = hashlib.sha256(message).digest()
    if not isinstance(anchor, dict) or anchor.get("alg") != "RFC3161":
        report.problems.append((place, "not an RFC3161 time anchor"))
        return
    if anchor.get("imprint") != digest.hex():
        report.problems.append((f"{place}.imprint", "does not equal SHA-256 of the signed bytes"))
    try:
        tsr = decode_token(base64.b64decode(str(anchor.get("token_b64")), validate=True))
    except (binascii.Error, ValueError) as exc:
        report.problems.append((f"{place}.token_b64", f"not a time-stamp token ({exc})"))
        return
    if tsr.tst_info.message_imprint.message != digest:
        report.problems.append(
            (f"{place}.token_b64", "the token does not stamp this document (imprint differs)")
        )
        return
    if tsa is None:
        report.time_anchor = {"checked": False}
        report.warnings.append(
            "time anchor not checked: pass the TSA's CA certificate with --tsa-ca"
        )
        return
    try:
        verifier = tsa.verifier()
    except FormatError as exc:
        report.io_error = str(exc)
        return
    try:
        verifier.verify(tsr, digest)
    except (VerificationError, ValueError) as exc:
        report.problems.append(
            (f"{place}.token_b64", f"does not verify against the trusted TSA certificates: {exc}")
        )
        return
    value = tsr.tst_info.name.value
    name = value.rfc4514_string() if isinstance(value, cryptography.x509.Name) else str(value)
    report.time_anchor = {
        "checked": True,
        "gen_time": iso(tsr.tst_info.gen_time.astimezone(UTC)),
        "tsa": name,
    }
