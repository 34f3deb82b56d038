"""Signed JSON structures: `recording.json`, `keys.json`, checkpoints and the manifest.

Design decisions:
- JSON is serialised once (sorted keys, compact separators, UTF-8) and the exact bytes are what
  is hashed and signed, so no canonicalisation is needed to verify: a verifier signs/hashes the
  bytes as stored.
- The manifest travels in a DSSE envelope (`manifest.json`): the Ed25519 signature covers
  PAE("DSSEv1", payload_type, payload) as in the DSSE spec, so the payload type is bound too.
- Checkpoint signatures cover "cevr/v1/checkpoint\\n" || payload (domain separation from the
  manifest signature).
- Every structure carries `"v": 1`; anything else is refused with UnsupportedVersionError.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .container import CHECKPOINT_CONTEXT, RecordType, segment_name
from .errors import FormatError, IntegrityError, Location, UnsupportedVersionError
from .keys import SigningKey, VerifyKey, WrappedKey

VERSION = 1
MANIFEST_PAYLOAD_TYPE = "application/vnd.shared-court.recording-manifest.v1+json"
MANIFEST_SCHEMA = "shared-court/recording-manifest/v1"
SIG_LEN = 64

JSONDict = dict[str, Any]


def dumps(obj: object) -> bytes:
    """The one JSON serialisation used for everything hashed or signed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | memoryview, what: str, location: Location | None = None) -> JSONDict:
    """Parse a versioned JSON object. Raises FormatError / UnsupportedVersionError."""
    try:
        obj = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{what}: not valid JSON ({exc})", location) from exc
    if not isinstance(obj, dict):
        raise FormatError(f"{what}: not a JSON object", location)
    if obj.get("v") != VERSION:
        raise UnsupportedVersionError(f"{what}: unknown version {obj.get('v')!r}", location)
    return obj


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise FormatError(f"{what}: expected base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise FormatError(f"{what}: bad base64") from exc


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


# ---- recording.json --------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordingInfo:
    """Contents of `recording.json`, written once when the recording starts."""

    raw: bytes
    recording_id: str
    created_at: str
    suite: int
    signing_key: VerifyKey
    recipients: list[str]
    dek_commit: bytes
    metadata: dict[str, str]

    @staticmethod
    def build(
        recording_id: str,
        created_at: str,
        suite: int,
        signing_key: VerifyKey,
        recipients: list[str],
        dek_commit: bytes,
        metadata: dict[str, str],
    ) -> bytes:
        return dumps(
            {
                "v": VERSION,
                "format": "cevr",
                "recording_id": recording_id,
                "created_at": created_at,
                "suite": suite,
                "signing_key": {"key_id": signing_key.key_id, "ed25519": b64(signing_key.raw)},
                "recipients": recipients,
                "dek_commit": dek_commit.hex(),
                "metadata": metadata,
            }
        )

    @classmethod
    def parse(cls, raw: bytes) -> RecordingInfo:
        """Raises FormatError / UnsupportedVersionError."""
        loc = Location(file="recording.json")
        obj = loads(raw, "recording.json", loc)
        try:
            sk = obj["signing_key"]
            verify_key = VerifyKey.from_raw(unb64(sk["ed25519"], "signing key"))
            if verify_key.key_id != sk["key_id"]:
                raise FormatError("signing key id does not match the key", loc)
            return cls(
                raw=raw,
                recording_id=str(obj["recording_id"]),
                created_at=str(obj["created_at"]),
                suite=int(obj["suite"]),
                signing_key=verify_key,
                recipients=[str(r) for r in obj["recipients"]],
                dek_commit=bytes.fromhex(obj["dek_commit"]),
                metadata={str(k): str(v) for k, v in obj.get("metadata", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"recording.json: missing or bad field ({exc})", loc) from exc


# ---- keys.json -------------------------------------------------------------------------------


def build_keys_json(recording_id: str, stanzas: list[WrappedKey]) -> bytes:
    return dumps(
        {
            "v": VERSION,
            "recording_id": recording_id,
            "recipients": [
                {
                    "key_id": s.recipient_key_id,
                    "ephemeral_x25519": b64(s.ephemeral_public),
                    "wrapped_dek": b64(s.wrapped),
                }
                for s in stanzas
            ],
        }
    )


def parse_keys_json(raw: bytes) -> tuple[str, list[WrappedKey]]:
    """Raises FormatError / UnsupportedVersionError."""
    obj = loads(raw, "keys.json", Location(file="keys.json"))
    try:
        return str(obj["recording_id"]), [
            WrappedKey(
                str(r["key_id"]),
                unb64(r["ephemeral_x25519"], "ephemeral key"),
                unb64(r["wrapped_dek"], "wrapped key"),
            )
            for r in obj["recipients"]
        ]
    except (KeyError, TypeError) as exc:
        raise FormatError(f"keys.json: missing or bad field ({exc})") from exc


# ---- checkpoints -----------------------------------------------------------------------------


def sign_checkpoint(payload: JSONDict, key: SigningKey) -> bytes:
    """Record body of a checkpoint: payload JSON bytes followed by a 64-byte signature."""
    data = dumps(payload)
    return data + key.sign(CHECKPOINT_CONTEXT + data)


def open_checkpoint(body: bytes | memoryview, key: VerifyKey, location: Location) -> JSONDict:
    """Check a checkpoint's signature and parse it. Raises IntegrityError / FormatError."""
    if len(body) <= SIG_LEN:
        raise FormatError("checkpoint record too short", location)
    data = bytes(body[:-SIG_LEN])
    sig = bytes(body[-SIG_LEN:])
    if not key.verify(sig, CHECKPOINT_CONTEXT + data):
        raise IntegrityError("checkpoint signature invalid", location)
    return loads(data, "checkpoint", location)


# ---- manifest --------------------------------------------------------------------------------


def sign_manifest(payload: JSONDict, key: SigningKey) -> bytes:
    """Build the DSSE envelope bytes of `manifest.json`."""
    body = dumps(payload)
    sig = key.sign(pae(MANIFEST_PAYLOAD_TYPE, body))
    return dumps(
        {
            "v": VERSION,
            "payloadType": MANIFEST_PAYLOAD_TYPE,
            "payload": b64(body),
            "signatures": [{"keyid": key.key_id, "sig": b64(sig)}],
        }
    )


def open_manifest(raw: bytes, key: VerifyKey) -> JSONDict:
    """Check the envelope signature by `key` and return the payload.

    Raises FormatError / UnsupportedVersionError (malformed) or IntegrityError (no valid
    signature by `key`).
    """
    loc = Location(file="manifest.json")
    env = loads(raw, "manifest.json", loc)
    if env.get("payloadType") != MANIFEST_PAYLOAD_TYPE:
        raise IntegrityError(f"unexpected payloadType {env.get('payloadType')!r}", loc)
    body = unb64(env.get("payload"), "manifest payload")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise IntegrityError("manifest carries no signature", loc)
    ok = False
    for s in sigs:
        if isinstance(s, dict) and s.get("keyid") == key.key_id:
            ok = ok or key.verify(
                unb64(s.get("sig"), "signature"), pae(MANIFEST_PAYLOAD_TYPE, body)
            )
    if not ok:
        raise IntegrityError(f"manifest has no valid signature by key {key.key_id}", loc)
    payload = loads(body, "manifest payload", loc)
    if payload.get("schema") != MANIFEST_SCHEMA:
        raise UnsupportedVersionError(f"unknown manifest schema {payload.get('schema')!r}", loc)
    return payload


# ---- the package summary (computed identically by writer, recovery and verify) ---------------


def gaps_from_timeline(timeline: list[JSONDict]) -> list[JSONDict]:
    """Declared gaps: network gaps and incidents, in timeline order."""
    gaps: list[JSONDict] = []
    for ev in timeline:
        if ev.get("type") in ("network_gap", "incident"):
            gap = {"type": ev["type"], "from": ev.get("from"), "to": ev.get("to")}
            for extra in ("participant", "track", "cause", "seconds"):
                if extra in ev:
                    gap[extra] = ev[extra]
            gaps.append(gap)
    return gaps


@dataclass
class _StreamSummary:
    stream_id: int
    participant: str
    part: int
    tracks: list[str]
    media_records: int = 0
    ciphertext_bytes: int = 0
    digest: Any = None

    def as_json(self) -> JSONDict:
        return {
            "stream_id": self.stream_id,
            "participant": self.participant,
            "part": self.part,
            "tracks": self.tracks,
            "media_records": self.media_records,
            "ciphertext_bytes": self.ciphertext_bytes,
            "digest": self.digest.hexdigest() if self.digest is not None else None,
        }


class PackageSummary:
    """Everything the manifest states about the content, accumulated record by record.

    The writer feeds it as it writes; verify and recovery feed it as they scan; the manifest is
    then compared field by field, so a single code path defines what the manifest means.
    Per-stream digest = SHA-256 over the chain values (32 bytes each) after each of the stream's
    media records, so every ciphertext byte is hashed only once.

    Facts (timeline, streams, media and event counts) come only from records a signature
    vouches for: in version 2 writer segments, a record's facts are held back until the next
    writer CHECKPOINT; records still held when a recovery segment starts are the
    *unauthenticated tail* of a crash (`tail_*`), kept in the chain but never stated as facts,
    because whoever can write the directory may have appended them. `records`, `checkpoints`
    and the segment list count every record.
    """

    def __init__(self) -> None:
        self.segments: list[JSONDict] = []
        self.streams: dict[int, _StreamSummary] = {}
        self.timeline: list[JSONDict] = []
        self.checkpoints = 0
        self.records = 0
        self.media_records = 0
        self.last_record_time_us: int | None = None
        self.last_checkpoint_time_us: int | None = None
        self.last_media_time_us: int | None = None
        # Version-2 writer segments hold facts back until a checkpoint vouches for them.
        self._hold = False
        self._held: list[tuple[int, int, bytes | memoryview | JSONDict, bytes, int]] = []
        self._declared: set[int] = set()
        self.segment_index = 0
        self.writer_records = 0  # records in writer segments (what recovery kept)
        self.last_writer_checkpoint: tuple[int, int, int] | None = None  # segment, record, us
        self.tail_records = 0
        self.tail_from: tuple[int, int] | None = None  # first unvouched record: segment, record
        self._writer = True

    @property
    def unvouched_records(self) -> int:
        """Records after the last writer checkpoint: the tail (before and after a recovery
        segment starts)."""
        return self.tail_records + len(self._held)

    def begin_segment(self, index: int, kind: int, version: int) -> None:
        """Call before a segment's records. A recovery segment turns whatever is still held
        (records after the last writer checkpoint) into the unauthenticated tail."""
        self.segment_index = index
        self._writer = kind == 0
        if kind != 0:
            if self._held:
                self.tail_records = len(self._held)
            self._held = []
            self._hold = False
        else:
            self._hold = version >= 2

    def add_record(
        self,
        rtype: int,
        stream_id: int,
        body: bytes | memoryview,
        chain: bytes,
        time_us: int,
        counter: int = 0,
    ) -> None:
        """`body`: the ciphertext of MEDIA, the JSON (tag removed) of EVENT/STREAM. Raises
        FormatError on an undecodable STREAM/EVENT body or unknown stream id."""
        self.records += 1
        self.last_record_time_us = time_us
        if self._writer:
            self.writer_records += 1
        if self._hold and not self._held and rtype != RecordType.CHECKPOINT:
            self.tail_from = (self.segment_index, counter)
        parsed: bytes | memoryview | JSONDict = body
        # Checked at once (so an error names its record); stated as a fact only when vouched.
        if rtype == RecordType.MEDIA:
            if stream_id not in self._declared:
                raise FormatError(f"media for undeclared stream {stream_id}")
        elif rtype == RecordType.STREAM:
            parsed = loads(body, "stream declaration")
            try:
                sid = int(parsed["stream_id"])
                int(parsed["part"])
                str(parsed["participant"])
                [str(t) for t in parsed["tracks"]]
            except (KeyError, TypeError, ValueError) as exc:
                raise FormatError(f"bad stream declaration ({exc})") from exc
            if sid != stream_id:
                raise FormatError("stream declaration id differs from its record header")
            if sid in self._declared:
                raise FormatError(f"stream {sid} is declared twice")
            self._declared.add(sid)
        elif rtype == RecordType.EVENT:
            parsed = loads(body, "timeline event")
        elif rtype == RecordType.CHECKPOINT:
            self.checkpoints += 1
            self.last_checkpoint_time_us = time_us
            if self._writer:
                self.last_writer_checkpoint = (self.segment_index, counter, time_us)
            if self._hold:
                self.tail_from = None
                held, self._held = self._held, []
                for item in held:
                    self._fact(*item)
            return
        if self._hold:
            self._held.append((rtype, stream_id, parsed, chain, time_us))
        else:
            self._fact(rtype, stream_id, parsed, chain, time_us)

    def _fact(
        self,
        rtype: int,
        stream_id: int,
        body: bytes | memoryview | JSONDict,
        chain: bytes,
        time_us: int,
    ) -> None:
        if rtype == RecordType.MEDIA:
            assert not isinstance(body, dict)
            st = self.streams[stream_id]
            if st.digest is None:
                st.digest = hashlib.sha256()
            st.digest.update(chain)
            st.media_records += 1
            st.ciphertext_bytes += len(body)
            self.media_records += 1
            self.last_media_time_us = time_us
        elif rtype == RecordType.STREAM:
            assert isinstance(body, dict)
            sid = int(body["stream_id"])
            self.streams[sid] = _StreamSummary(
                sid, str(body["participant"]), int(body["part"]), [str(t) for t in body["tracks"]]
            )
        elif rtype == RecordType.EVENT:
            assert isinstance(body, dict)
            self.timeline.append(body)

    def end_segment(
        self, index: int, kind: int, records: int, size: int, chain_head: bytes, terminated: bool
    ) -> None:
        self.segments.append(
            {
                "index": index,
                "file": f"segments/{segment_name(index)}",
                "kind": "writer" if kind == 0 else "recovery",
                "records": records,
                "bytes": size,
                "chain_head": chain_head.hex(),
                "terminated": terminated,
            }
        )

    def manifest_payload(
        self, info: RecordingInfo, *, status: str, sealed_at: str, root_hash: bytes
    ) -> JSONDict:
        return {
            "v": VERSION,
            "schema": MANIFEST_SCHEMA,
            "recording_id": info.recording_id,
            "recording_json_sha256": hashlib.sha256(info.raw).hexdigest(),
            "status": status,
            "sealed_at": sealed_at,
            "signing_key_id": info.signing_key.key_id,
            "root_hash": root_hash.hex(),
            "segments": self.segments,
            "streams": [
                s.as_json() for s in sorted(self.streams.values(), key=lambda s: s.stream_id)
            ],
            "timeline": self.timeline,
            "gaps": gaps_from_timeline(self.timeline),
            "counts": {
                "records": self.records,
                "media_records": self.media_records,
                "events": len(self.timeline),
                "checkpoints": self.checkpoints,
            },
        }


def compare_manifest(stated: JSONDict, computed: JSONDict) -> str | None:
    """Name the first field where the signed manifest and the recomputed one differ."""
    for key in sorted(set(stated) | set(computed)):
        if key in ("sealed_at", "status"):
            continue
        a, b = stated.get(key), computed.get(key)
        if a == b:
            continue
        if isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                return f"{key}: manifest lists {len(a)} entries, package has {len(b)}"
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                if x != y:
                    return f"{key}[{i}]: manifest says {x!r}, package has {y!r}"
        return f"{key}: manifest says {a!r}, package has {b!r}"
    return None
