"""RFC 3161 time anchors: tokens from a Time-Stamping Authority over checkpoints and the manifest.

Why: the court's signing key sits on the server's disk, so whoever holds it could re-sign a
rewritten recording. A token from an independent TSA proves that the exact checkpoint (which
commits to the whole chain before it) or manifest existed at the TSA's `genTime`; a rewrite
made later cannot carry tokens that match it.

Design (docs/recording-format.md §12):
- What is stamped: the SHA-256 of exactly the CHECKPOINT record body (payload || signature) of
  every `every`-th checkpoint (seq % every == 0), and of the `manifest.json` file bytes.
- Tokens live outside the hash chain, like keys.json: they arrive after what they stamp and are
  self-authenticating (the TSA's signature). `timestamps/policy.json` says what was requested,
  `timestamps/cp-NNNNNN.tsr` / `timestamps/manifest.tsr` hold the DER TimeStampResp as the TSA
  sent it, `timestamps/missing.json` declares anchors given up on and why.
- Requesting never blocks the recording: the writer only puts a digest on a queue; one thread
  per recording talks HTTP, with a timeout and retries. When the TSA is slow or down, pending
  checkpoint anchors are superseded by the newest one (a token over a later checkpoint covers
  every record before it) and declared missing; the manifest anchor is never superseded.
- Verification is offline: tokens are checked against TSA certificates the verifier is given
  (rfc3161-client does the CMS/ESS/EKU checks); a token whose imprint, signature or chain does
  not verify is tampering.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cryptography.x509
from asn1crypto import tsp as asn1_tsp
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    Verifier,
    VerifierBuilder,
    decode_timestamp_response,
)

from .clock import iso
from .errors import FormatError, RecordingError
from .fsio import atomic_write
from .manifest import VERSION, dumps, loads

log = logging.getLogger(__name__)

DIRECTORY = "timestamps"
POLICY_FILE = "policy.json"
MISSING_FILE = "missing.json"
MANIFEST_TSR = "manifest.tsr"
CONTENT_TYPE_QUERY = "application/timestamp-query"
CONTENT_TYPE_REPLY = "application/timestamp-reply"
MAX_RESPONSE_BYTES = 64 * 1024
# Checkpoint anchors waiting while the TSA answers; beyond this (or while it fails) only the
# newest is kept.
MAX_BACKLOG = 32


def checkpoint_token_name(seq: int) -> str:
    return f"cp-{seq:06d}.tsr"


class TimestampError(RecordingError):
    """A TSA did not give a usable token (network, HTTP status, refusal, wrong imprint)."""


def decode_token(raw: bytes) -> TimeStampResponse:
    """Parse a DER TimeStampResp. Raises ValueError if it is not one.

    OpenSSL's TSA (and others) put the certificates of the SignedData in insertion order,
    while DER wants a SET OF sorted; rfc3161-client's strict parser then refuses a token that
    is otherwise valid (about half of all OpenSSL replies that carry a chain). The certificate
    set is outside what the TSA signs, so it is re-encoded sorted (asn1crypto) and parsed
    again; the stored file stays byte for byte what the TSA sent.
    """
    try:
        return decode_timestamp_response(raw)
    except ValueError as first:
        try:
            resp = asn1_tsp.TimeStampResp.load(raw)
            field = resp["time_stamp_token"]["content"]["certificates"]
            # Splice the sorted set over the original bytes: same certificates, same lengths,
            # so nothing around it changes (a full asn1crypto re-encode costs ~0.4 s a token).
            old = field.dump()
            certs = [c.dump() for c in field]
            header = old[: len(old) - sum(len(c) for c in certs)]
            fixed = raw.replace(old, header + b"".join(sorted(certs)), 1)
            return decode_timestamp_response(fixed)
        except (ValueError, TypeError, KeyError):
            raise first from None


@dataclass(frozen=True)
class TsaConfig:
    """Where and how often to ask for tokens.

    `every`: stamp checkpoints whose seq is a multiple of it (1 = all); the manifest always.
    `timeout`: seconds per HTTP request. `attempts`: tries per anchor; `retry_delay` seconds
    before the second try, doubling up to `max_retry_delay`.
    """

    url: str
    every: int = 15
    timeout: float = 10.0
    attempts: int = 5
    retry_delay: float = 2.0
    max_retry_delay: float = 30.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"TSA url must be http:// or https://, got {self.url!r}")
        if self.every < 1 or self.attempts < 1 or self.timeout <= 0:
            raise ValueError("TSA every and attempts must be >= 1, timeout > 0")


def anchor_recovered(
    path: Path,
    recording_id: str,
    config: TsaConfig,
    checkpoint: tuple[int, bytes] | None,
    manifest_raw: bytes,
) -> bool:
    """Recovery sealed a package that was being anchored (it has `timestamps/policy.json`):
    anchor what recovery signed - its checkpoint, if the package's policy wants that seq, and
    the manifest - as the writer would have, and wait for the TSA (its own timeout and
    attempts). A package never anchored stays so. Returns False if anchors were left pending;
    those the TSA refused are declared in missing.json as usual."""
    policy_file = path / DIRECTORY / POLICY_FILE
    if not policy_file.exists():
        return True
    try:
        every = int(json.loads(policy_file.read_bytes()).get("every", config.every))
        config = dataclasses.replace(config, every=max(1, every))
    except (ValueError, TypeError, AttributeError):
        pass  # a damaged policy: verify reports it; anchor with the court's own cadence
    anchorer = Anchorer(path, recording_id, config, keep_policy=True)
    if checkpoint is not None:
        anchorer.checkpoint(*checkpoint)
    anchorer.manifest(manifest_raw)
    budget = config.attempts * (config.timeout + config.max_retry_delay)
    return anchorer.wait(budget)


def request_token(url: str, message: bytes, timeout: float) -> bytes:
    """Ask the TSA at `url` for a token over SHA-256(message); return the DER TimeStampResp.

    Checks what the writer can check without the TSA's roots: status granted, the imprint is
    our digest, the nonce is ours. Raises TimestampError.
    """
    req = (
        TimestampRequestBuilder()
        .data(message)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    http_req = urllib.request.Request(  # noqa: S310 - scheme checked in TsaConfig
        url, data=req.as_bytes(), headers={"Content-Type": CONTENT_TYPE_QUERY}, method="POST"
    )
    try:
        with urllib.request.urlopen(http_req, timeout=timeout) as resp:  # noqa: S310
            raw: bytes = resp.read(MAX_RESPONSE_BYTES + 1)
    except (OSError, urllib.error.URLError) as exc:
        raise TimestampError(f"TSA {url} unreachable: {exc}") from exc
    if len(raw) > MAX_RESPONSE_BYTES:
        raise TimestampError(f"TSA {url} answered more than {MAX_RESPONSE_BYTES} bytes")
    try:
        tsr = decode_token(raw)
    except ValueError as exc:
        raise TimestampError(f"TSA {url} answered something that is not a token: {exc}") from exc
    if PKIStatus(tsr.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TimestampError(f"TSA {url} refused: status {tsr.status} {tsr.status_string}")
    if tsr.tst_info.message_imprint.message != hashlib.sha256(message).digest():
        raise TimestampError(f"TSA {url} stamped another digest than the one requested")
    if req.nonce is not None and tsr.tst_info.nonce != req.nonce:
        raise TimestampError(f"TSA {url} answered with another nonce (a replayed reply?)")
    return raw


@dataclass(frozen=True)
class _Job:
    part: str  # "checkpoint" | "manifest"
    seq: int | None
    message: bytes


Requester = Callable[[str, bytes, float], bytes]


class Anchorer:
    """Requests tokens for one recording on its own thread and stores them in the package.

    The writer calls `checkpoint()` / `manifest()` (they only enqueue); `wait()` lets a caller
    that wants the tokens on disk (tests, an orderly shutdown) wait with a deadline.
    """

    def __init__(
        self,
        directory: Path,
        recording_id: str,
        config: TsaConfig,
        *,
        requester: Requester = request_token,
        keep_policy: bool = False,
    ) -> None:
        """`keep_policy`: the package already has its policy (recovery adds the anchors of
        what it seals to a recording that was anchored): leave policy.json as it is."""
        self.config = config
        self._dir = directory / DIRECTORY
        self._requester = requester
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._missing: list[dict[str, Any]] = []
        self._manifest_queued = False
        self._failing = False
        self.tokens = 0
        self._dir.mkdir(exist_ok=True)
        policy = {
            "v": VERSION,
            "recording_id": recording_id,
            "tsa_url": config.url,
            "every": config.every,
            "hash": "sha256",
        }
        if not (keep_policy and (self._dir / POLICY_FILE).exists()):
            atomic_write(self._dir / POLICY_FILE, dumps(policy))
        self._thread = threading.Thread(
            target=self._run, name=f"tsa-{recording_id[:8]}", daemon=True
        )
        self._thread.start()

    @property
    def missing(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._missing)

    def checkpoint(self, seq: int, body: bytes) -> None:
        """Anchor checkpoint `seq` (its record body) if the policy says so. Never blocks."""
        if seq % self.config.every == 0:
            self._queue.put(_Job("checkpoint", seq, body))

    def manifest(self, raw: bytes) -> None:
        """Anchor the manifest file bytes; the last anchor of the recording. Never blocks."""
        self._manifest_queued = True
        self._queue.put(_Job("manifest", None, raw))
        self._queue.put(None)

    def close(self) -> None:
        """For a recording that ends unsealed: give up on what is still pending (declared
        missing) and end the thread. After `manifest()` it does nothing: the manifest anchor is
        still wanted, and the thread ends by itself once it is stored or declared."""
        if self._manifest_queued:
            return
        self._stop.set()
        self._queue.put(None)

    def wait(self, timeout: float) -> bool:
        """Wait until every anchor is stored or declared missing; False on timeout."""
        return self._done.wait(timeout)

    def _run(self) -> None:
        try:
            pending: list[_Job] = []
            finished = False
            while not finished or pending:
                if not pending:
                    job = self._queue.get()
                    if job is None:
                        finished = True
                        continue
                    pending.append(job)
                while True:  # take everything queued meanwhile, without waiting
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        finished = True
                    else:
                        pending.append(job)
                pending = self._supersede(pending)
                self._anchor(pending.pop(0))
        except Exception:  # never let a TSA problem take anything else down
            log.exception("time-stamping thread failed")
        finally:
            self._done.set()

    def _supersede(self, pending: list[_Job]) -> list[_Job]:
        # A token over a later checkpoint proves every record before it: when the TSA fails or
        # cannot keep up, older pending checkpoint anchors are dropped (declared) in favour of
        # the newest, so a dead TSA costs one timeout per anchor, not a growing queue.
        cps = [j for j in pending if j.part == "checkpoint"]
        if not self._failing and len(cps) <= MAX_BACKLOG:
            return pending
        reason = "TSA failing" if self._failing else "TSA too slow"
        for job in cps[:-1]:
            self._declare(job, 0, f"superseded by a later checkpoint ({reason})")
        return cps[-1:] + [j for j in pending if j.part != "checkpoint"]

    def _anchor(self, job: _Job) -> None:
        delay = self.config.retry_delay
        error = ""
        for attempt in range(1, self.config.attempts + 1):
            if self._stop.is_set():
                self._declare(job, attempt - 1, "recording closed before the TSA answered")
                return
            try:
                raw = self._requester(self.config.url, job.message, self.config.timeout)
            except TimestampError as exc:
                self._failing = True
                error = str(exc)
                log.warning("time-stamp %s attempt %d: %s", _name(job), attempt, error)
                if attempt < self.config.attempts:
                    # Waiting on the stop event, not sleeping: close() cuts the wait short.
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.config.max_retry_delay)
                continue
            try:
                atomic_write(self._dir / _name(job), raw)
            except OSError as exc:
                self._declare(job, attempt, f"cannot store the token: {exc}")
                return
            self._failing = False
            self.tokens += 1
            return
        self._declare(job, self.config.attempts, error)

    def _declare(self, job: _Job, attempts: int, reason: str) -> None:
        entry = {
            "part": job.part,
            "seq": job.seq,
            "imprint": hashlib.sha256(job.message).hexdigest(),
            "attempts": attempts,
            "reason": reason,
            "declared_at": iso(datetime.now(UTC)),
        }
        with self._lock:
            self._missing.append(entry)
            doc = {"v": VERSION, "missing": self._missing}
            try:
                atomic_write(self._dir / MISSING_FILE, dumps(doc))
            except OSError:
                log.exception("cannot declare a missing time anchor")


def _name(job: _Job) -> str:
    return MANIFEST_TSR if job.seq is None else checkpoint_token_name(job.seq)


# ---- verification -------------------------------------------------------------------------


def load_certificates(paths: Iterable[Path]) -> list[cryptography.x509.Certificate]:
    """Every certificate in the given PEM (or DER) files. Raises OSError, FormatError."""
    certs: list[cryptography.x509.Certificate] = []
    for path in paths:
        data = path.read_bytes()
        try:
            if b"-----BEGIN" in data:
                certs.extend(cryptography.x509.load_pem_x509_certificates(data))
            else:
                certs.append(cryptography.x509.load_der_x509_certificate(data))
        except ValueError as exc:
            raise FormatError(f"{path}: not a certificate ({exc})") from exc
    return certs


@dataclass(frozen=True)
class TsaTrust:
    """The TSA certificates a verifier trusts: self-signed ones are roots, others
    intermediates (or the TSA's own certificate)."""

    certificates: Sequence[cryptography.x509.Certificate]

    def verifier(self) -> Verifier:
        roots = [c for c in self.certificates if c.issuer == c.subject]
        others = [c for c in self.certificates if c.issuer != c.subject]
        if not roots:
            raise FormatError("the TSA certificates given contain no root (self-signed) CA")
        return VerifierBuilder(roots=roots, intermediates=others).build()


@dataclass(frozen=True)
class CheckedToken:
    """A token file parsed and (with trust) its signature and chain verified, before the
    package's bytes are known: `error` says why it failed; the imprint is matched later."""

    tsr: TimeStampResponse | None
    error: str | None


def precheck_tokens(path: Path, trust: TsaTrust | None) -> dict[str, CheckedToken]:
    """Parse and verify (signature, certificate chain, EKU) every `*.tsr` in `path/timestamps`.

    Independent of the segments, so verify runs it on another thread while the segments are
    hashed (the hashing threads release the GIL; this keeps verify at hashing speed). Raises
    OSError on read failure, FormatError if `trust` holds no root.
    """
    tdir = path / DIRECTORY
    if not tdir.is_dir():
        return {}
    verifier = trust.verifier() if trust is not None else None
    out: dict[str, CheckedToken] = {}
    for file in sorted(tdir.glob("*.tsr")):
        try:
            tsr = decode_token(file.read_bytes())
        except ValueError as exc:
            out[file.name] = CheckedToken(None, f"time-stamp token cannot be parsed ({exc})")
            continue
        if verifier is not None:
            try:
                # Against the token's own imprint: everything but "is it our bytes", which
                # check_anchors tests once the package's bytes are known.
                verifier.verify(tsr, tsr.tst_info.message_imprint.message)
            except (VerificationError, ValueError) as exc:
                out[file.name] = CheckedToken(
                    tsr,
                    f"time-stamp token does not verify against the trusted TSA certificates: {exc}",
                )
                continue
        out[file.name] = CheckedToken(tsr, None)
    return out


@dataclass
class Anchor:
    part: str
    seq: int | None
    file: str
    gen_time: datetime
    tsa: str


@dataclass
class AnchorReport:
    """What verify found in `timestamps/`."""

    present: bool = False
    checked: bool = False
    policy: dict[str, Any] | None = None
    anchors: list[Anchor] = field(default_factory=list)
    declared_missing: list[dict[str, Any]] = field(default_factory=list)
    undeclared_missing: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (message, file)
    unchecked: int = 0
    # Per checkpoint seq: the earliest genTime of a token over it or anything after it.
    existed_by: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "checked": self.checked,
            "policy": self.policy,
            "tokens": [
                {
                    "part": a.part,
                    "seq": a.seq,
                    "file": a.file,
                    "gen_time": iso(a.gen_time),
                    "tsa": a.tsa,
                }
                for a in self.anchors
            ],
            "declared_missing": self.declared_missing,
            "undeclared_missing": self.undeclared_missing,
            "unchecked_tokens": self.unchecked,
            "existed_by": self.existed_by,
        }


@dataclass(frozen=True)
class StampedPart:
    """A checkpoint as verify saw it: its seq, where it is, and its exact record body."""

    seq: int
    segment: int
    record: int
    body: bytes


def check_anchors(
    path: Path,
    checkpoints: Sequence[StampedPart],
    manifest_raw: bytes | None,
    trust: TsaTrust | None,
    prechecked: dict[str, CheckedToken] | None = None,
) -> AnchorReport:
    """Check `path/timestamps/` against the package's checkpoints and manifest bytes.
    `prechecked`: the result of `precheck_tokens(path, trust)` if the caller ran it already.

    Never raises for package content (problems are listed); raises OSError on read failure and
    FormatError if the trusted certificates hold no root.
    """
    report = AnchorReport()
    tdir = path / DIRECTORY
    if not tdir.is_dir():
        return report
    report.present = True
    files = {p.name for p in tdir.iterdir()}
    if POLICY_FILE in files:
        try:
            report.policy = loads((tdir / POLICY_FILE).read_bytes(), POLICY_FILE)
        except FormatError as exc:
            report.problems.append((str(exc), f"{DIRECTORY}/{POLICY_FILE}"))
    if MISSING_FILE in files:
        try:
            doc = loads((tdir / MISSING_FILE).read_bytes(), MISSING_FILE)
            report.declared_missing = [m for m in doc.get("missing", []) if isinstance(m, dict)]
        except FormatError as exc:
            report.problems.append((str(exc), f"{DIRECTORY}/{MISSING_FILE}"))
    if prechecked is None:
        prechecked = precheck_tokens(path, trust)
    report.checked = trust is not None
    by_seq = {cp.seq: cp for cp in checkpoints}
    expected: list[tuple[str, bytes | None]] = []
    every = report.policy.get("every") if report.policy else None
    if isinstance(every, int) and every >= 1:
        expected = [(checkpoint_token_name(s), by_seq[s].body) for s in by_seq if s % every == 0]
    if manifest_raw is not None:
        expected.append((MANIFEST_TSR, manifest_raw))
    declared = {
        MANIFEST_TSR if m.get("seq") is None else checkpoint_token_name(int(m["seq"]))
        for m in report.declared_missing
        if m.get("seq") is None or isinstance(m.get("seq"), int)
    }
    for name, _ in expected:
        if name not in files and name not in declared:
            report.undeclared_missing.append(name)
    for name in sorted(files - {POLICY_FILE, MISSING_FILE}):
        rel = f"{DIRECTORY}/{name}"
        if name == MANIFEST_TSR:
            part, seq, message = "manifest", None, manifest_raw
        elif name.startswith("cp-") and name.endswith(".tsr") and name[3:-4].isdigit():
            seq = int(name[3:-4])
            cp = by_seq.get(seq)
            part, message = "checkpoint", cp.body if cp is not None else None
        else:
            report.problems.append(("unknown file in the time-stamp directory", rel))
            continue
        if message is None:
            report.problems.append((f"token for a {part} that the package does not contain", rel))
            continue
        anchor = _check_token(prechecked.get(name), rel, part, seq, message, trust, report)
        if anchor is not None:
            report.anchors.append(anchor)
    report.existed_by = _existed_by(checkpoints, report.anchors)
    return report


def _check_token(
    checked: CheckedToken | None,
    rel: str,
    part: str,
    seq: int | None,
    message: bytes,
    trust: TsaTrust | None,
    report: AnchorReport,
) -> Anchor | None:
    if checked is None:  # a .tsr name that appeared after the precheck, or not *.tsr
        report.problems.append(("not a time-stamp token file", rel))
        return None
    if checked.tsr is None:
        report.problems.append((checked.error or "bad token", rel))
        return None
    tsr = checked.tsr
    if tsr.tst_info.message_imprint.message != hashlib.sha256(message).digest():
        report.problems.append(
            (f"time-stamp token does not stamp this {part} (message imprint differs)", rel)
        )
        return None
    if checked.error is not None:
        report.problems.append((checked.error, rel))
        return None
    if trust is None:
        report.unchecked += 1
        return None
    value = tsr.tst_info.name.value
    tsa = value.rfc4514_string() if isinstance(value, cryptography.x509.Name) else str(value)
    return Anchor(part, seq, rel, tsr.tst_info.gen_time.astimezone(UTC), tsa)


def _existed_by(checkpoints: Sequence[StampedPart], anchors: list[Anchor]) -> list[dict[str, Any]]:
    """For each stamped point, from the latest backwards: the records up to a checkpoint are
    proven to have existed by the earliest genTime of any valid token at or after it."""
    manifest = next((a for a in anchors if a.part == "manifest"), None)
    cp_anchor = {a.seq: a for a in anchors if a.part == "checkpoint"}
    out: list[dict[str, Any]] = []
    best = manifest
    for cp in sorted(checkpoints, key=lambda c: c.seq, reverse=True):
        a = cp_anchor.get(cp.seq)
        if a is None:
            continue
        if best is None or a.gen_time <= best.gen_time:
            best = a
        out.append(
            {
                "part": "checkpoint",
                "checkpoint": cp.seq,
                "segment": cp.segment,
                "record": cp.record,
                "existed_by": iso(best.gen_time),
                "token": best.file,
            }
        )
    out.reverse()
    if manifest is not None:
        out.append(
            {"part": "manifest", "existed_by": iso(manifest.gen_time), "token": manifest.file}
        )
    return out
