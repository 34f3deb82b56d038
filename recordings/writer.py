"""The evidence writer: remuxed media in, sealed evidence package out.

Design decisions:
- Synchronous core (`RecordingWriter`), one instance per recording, driven by an injected
  `Clock` so checkpoints, segment rotation and gap detection are deterministic in tests. The
  server calls it from its event loop through `AsyncRecordingWriter`, which runs every call on
  one worker thread (order preserved) behind a bounded queue.
- Every record is appended with an unbuffered `os.write`, so a killed process loses only what
  the muxer still holds (<= one 1 s cluster). Each checkpoint (every `checkpoint_interval`
  seconds, default 2 s; also on demand) is signed and followed by fsync, which bounds loss on
  power failure to ~2 s.
- Segments rotate every `segment_seconds` (default 10 s); a segment is never reopened, each has
  a fresh salt and nonce prefix, so a nonce can never repeat under a key.
- Timeline events (start/stop, pause/resume with a mandatory reason, join/leave, network gaps)
  are EVENT records inside the chain, clear JSON followed by a GCM tag under the segment's key
  (format version 2), so that a key holder can tell an event appended by someone who could only
  write the directory. A network gap is declared automatically when a track's media resumes
  after more than `gap_threshold` seconds of silence outside a pause.
- No record is appended more than `checkpoint_interval` after the last checkpoint: a due
  checkpoint is written first. Verify enforces this cadence (docs/recording-format.md), so
  records appended after cutting a crashed package back to an older checkpoint show.
- RFC 3161 time anchors (optional, `tsa=`): every Nth checkpoint's record body and the
  manifest bytes are handed to an `Anchorer` (timestamps.py), which asks the TSA on its own
  thread; `writer.anchorer.wait(timeout)` waits for the tokens. A TSA that does not answer never
  delays or stops the recording; what it did not stamp is declared in `timestamps/missing.json`.
- ENOSPC: the torn record is truncated away, the writer tries to seal the package with a signed
  disk-full incident, then raises `DiskFullError` so the server can alert the judge. Any other
  I/O error raises `RecordingIOError`; the package is then sealed by `recover()` at start-up.

Layout of a package directory (see docs/recording-format.md):
    recording.json   signed-by-chain header (ids, signing key, recipients, DEK commitment)
    keys.json        wrapped data keys (outside the chain, re-wrappable)
    segments/NNNNNN.cevr
    manifest.json    DSSE envelope, written when sealed
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import container as cv
from .clock import Clock, SystemClock, from_unix_us, iso, unix_us
from .errors import (
    DiskFullError,
    InvalidReasonError,
    RecordingError,
    RecordingIOError,
    RecordingStateError,
)
from .fsio import AppendFile, FileOpener, atomic_write, fsync_dir, open_append
from .ids import ParticipantId, RecordingId
from .keys import DataKey, KeyProvider, SigningKey, wrap_data_key
from .manifest import (
    VERSION,
    PackageSummary,
    RecordingInfo,
    build_keys_json,
    dumps,
    sign_checkpoint,
    sign_manifest,
)
from .remux import ParticipantRemuxer
from .timeline import EventType, IncidentCause, PauseReason
from .timestamps import Anchorer, TsaConfig

log = logging.getLogger(__name__)

MAX_RECORD_PLAINTEXT = 1024 * 1024
RECORD_TARGET_BYTES = 64 * 1024


@dataclass(frozen=True)
class WriterConfig:
    checkpoint_interval: float = 2.0
    segment_seconds: float = 10.0
    segment_max_bytes: int = 64 * 1024 * 1024
    gap_threshold: float = 3.0
    record_interval: float = 0.25


@dataclass
class _Segment:
    index: int
    file: AppendFile
    header: cv.SegmentHeader
    header_hash: bytes
    aead: AESGCM | None
    started: float
    size: int = cv.HEADER_LEN
    counter: int = 0


@dataclass
class _Participant:
    pid: ParticipantId
    stream_id: int
    part: int
    video: bool
    audio: bool
    remuxer: ParticipantRemuxer
    last_arrival: dict[str, tuple[float, str]] = field(default_factory=dict)


class RecordingWriter:
    """Writes one evidence package. Not thread-safe: call from one thread (see
    `AsyncRecordingWriter`).

    Raises on construction: FileExistsError if the directory exists and is not empty,
    RecordingIOError on I/O failure.
    """

    def __init__(
        self,
        directory: Path,
        keys: KeyProvider,
        *,
        recording_id: RecordingId | None = None,
        clock: Clock | None = None,
        config: WriterConfig | None = None,
        metadata: Mapping[str, str] | None = None,
        opener: FileOpener = open_append,
        tsa: TsaConfig | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.recording_id = recording_id or RecordingId(str(uuid.uuid4()))
        self._rid = cv.recording_id_bytes(self.recording_id)
        self._clock: Clock = clock or SystemClock()
        self.config = config or WriterConfig()
        self._opener = opener
        self._signer: SigningKey = keys.signing_key()
        recipients = keys.archive_keys()
        if not recipients:
            raise RecordingStateError("at least one archive public key is required")
        self._dek = DataKey.generate()
        self._summary = PackageSummary()
        self._participants: dict[ParticipantId, _Participant] = {}
        self._next_stream = 1
        self._checkpoint_seq = 0
        self._paused: PauseReason | None = None
        self._sealed = False
        self._error: RecordingError | None = None
        self._segment: _Segment | None = None
        self._checkpointing = False
        self._pending: dict[int, tuple[bytearray, float]] = {}
        self._parts: dict[ParticipantId, int] = {}
        self.dropped_while_paused = 0

        if self.directory.exists() and any(self.directory.iterdir()):
            raise FileExistsError(f"{self.directory} exists and is not empty")
        try:
            (self.directory / "segments").mkdir(parents=True, exist_ok=True)
            fsync_dir(self.directory.parent)
            stanzas = [wrap_data_key(self._dek, r, self._rid) for r in recipients]
            # keys.json first: whenever recording.json exists, the key to read it exists too.
            atomic_write(self.directory / "keys.json", build_keys_json(self.recording_id, stanzas))
            info_raw = RecordingInfo.build(
                self.recording_id,
                iso(self._clock.now()),
                cv.SUITE_AES256GCM_SHA256,
                self._signer.verify_key,
                [r.key_id for r in recipients],
                self._dek.commitment(self._rid),
                dict(metadata or {}),
            )
            atomic_write(self.directory / "recording.json", info_raw)
        except OSError as exc:
            raise RecordingIOError(f"cannot create recording at {self.directory}: {exc}") from exc
        self._info = RecordingInfo.parse(info_raw)
        self._chain = cv.genesis(info_raw)
        # RFC 3161 anchors are requested on the anchorer's own thread: the write path only
        # enqueues a checkpoint's bytes (docs/recording-format.md §12).
        self.anchorer: Anchorer | None = None
        if tsa is not None:
            try:
                self.anchorer = Anchorer(self.directory, self.recording_id, tsa)
            except OSError as exc:
                raise RecordingIOError(f"cannot create {self.directory}/timestamps: {exc}") from exc
        self._last_checkpoint = self._clock.monotonic()
        self._guard(self._open_segment, 0)
        self._guard(self._event, EventType.RECORDING_STARTED, {})
        self._guard(self._checkpoint)
        log.info("recording %s started in %s", self.recording_id, self.directory)

    # ---- public API --------------------------------------------------------------------------

    @property
    def sealed(self) -> bool:
        return self._sealed

    @property
    def paused(self) -> PauseReason | None:
        return self._paused

    def has_participant(self, participant: ParticipantId) -> bool:
        """Whether `participant` is on the recording now (added and not removed)."""
        return participant in self._participants

    def add_participant(
        self, participant: ParticipantId, *, video: bool, audio: bool, audio_channels: int = 2
    ) -> int:
        """Declare a participant stream (one WebM with the given tracks) and log the join.

        Returns the stream id. If the participant is already present with a different set of
        tracks, their current stream is closed and a new part is started. Raises
        RecordingStateError when sealed/failed, ValueError if neither track is given.
        """
        self._check_open()
        old = self._participants.get(participant)
        if old is not None and (old.video, old.audio) == (video, audio):
            return old.stream_id
        # Each stream of a participant (a rejoin, a changed set of tracks) is a new "part".
        part = self._parts.get(participant, 0)
        self._parts[participant] = part + 1
        if old is not None:
            self._guard(old.remuxer.close)
        sid = self._next_stream
        self._next_stream += 1
        remuxer = ParticipantRemuxer(
            functools.partial(self._on_media_bytes, sid),
            video=video,
            audio=audio,
            audio_channels=audio_channels,
            on_origin=functools.partial(self._media_started, participant, sid),
        )
        self._participants[participant] = _Participant(
            participant, sid, part, video, audio, remuxer
        )
        tracks = [t for t, on in (("video", video), ("audio", audio)) if on]
        decl = {
            "v": VERSION,
            "stream_id": sid,
            "participant": participant,
            "part": part,
            "tracks": tracks,
            "container": "webm",
            "codecs": {"video": "vp8", "audio": "opus"},
        }
        self._guard(self._append, cv.RecordType.STREAM, dumps(decl), sid)
        self._guard(
            self._event,
            EventType.PARTICIPANT_JOINED,
            {"participant": participant, "stream_id": sid, "tracks": tracks},
        )
        return sid

    def add_track(self, participant: ParticipantId, kind: str) -> int:
        """Add a video or audio track to a present participant (starts a new part)."""
        p = self._require(participant)
        return self.add_participant(
            participant, video=p.video or kind == "video", audio=p.audio or kind == "audio"
        )

    def remove_participant(self, participant: ParticipantId, reason: str = "left") -> None:
        """Flush the participant's stream and log the leave. Raises KeyError if unknown."""
        p = self._require(participant)
        self._guard(p.remuxer.close)
        del self._participants[participant]
        self._guard(
            self._event,
            EventType.PARTICIPANT_LEFT,
            {"participant": participant, "stream_id": p.stream_id, "reason": reason},
        )

    def write_video(
        self, participant: ParticipantId, data: bytes, rtp_timestamp: int, keyframe: bool
    ) -> None:
        """One encoded VP8 frame (depayloaded) with its 90 kHz RTP timestamp."""
        self._media(participant, "video", data, rtp_timestamp, keyframe)

    def write_audio(self, participant: ParticipantId, data: bytes, rtp_timestamp: int) -> None:
        """One Opus packet with its 48 kHz RTP timestamp."""
        self._media(participant, "audio", data, rtp_timestamp, True)

    def sender_report(
        self, participant: ParticipantId, kind: str, rtp_timestamp: int, ntp_unix: float
    ) -> None:
        """An RTCP SR mapping for the participant's `kind` track: rtp_timestamp <-> NTP time
        (as Unix seconds). Used to align audio and video."""
        self._require(participant).remuxer.sender_report(kind, rtp_timestamp, ntp_unix)

    def pause(self, reason: PauseReason | str, note: str = "") -> None:
        """Stop recording media, logging why. Raises InvalidReasonError unless `reason` is one
        of PauseReason; RecordingStateError if already paused or sealed."""
        try:
            code = PauseReason(reason)
        except ValueError:
            raise InvalidReasonError(
                f"a pause needs a reason from {[r.value for r in PauseReason]}, got {reason!r}"
            ) from None
        self._check_open()
        if self._paused is not None:
            raise RecordingStateError("recording is already paused")
        self._guard(self._event, EventType.PAUSED, {"reason": code.value, "note": note})
        self._paused = code
        self._guard(self._checkpoint)

    def resume(self) -> None:
        """Resume after `pause`. Raises RecordingStateError if not paused."""
        self._check_open()
        if self._paused is None:
            raise RecordingStateError("recording is not paused")
        self._paused = None
        for p in self._participants.values():
            p.remuxer.require_keyframe()
            p.last_arrival.clear()
        self._guard(self._event, EventType.RESUMED, {})

    def note(self, text: str, **details: str) -> None:
        """A free-text timeline note (e.g. the clerk's remark)."""
        self._check_open()
        self._guard(self._event, EventType.NOTE, {"text": text, **details})

    def tick(self) -> None:
        """Call periodically (about once a second): rotates segments and checkpoints on time
        even when no media arrives."""
        self._check_open()
        self._guard(self._flush_aged)
        self._guard(self._maybe_rotate)
        self._guard(self._maybe_checkpoint)

    def checkpoint(self) -> dict[str, Any]:
        """Write a signed checkpoint over the current chain head, then fsync. Returns it.

        Raises RecordingStateError when sealed, RecordingIOError / DiskFullError on I/O failure.
        """
        self._check_open()
        result: dict[str, Any] = self._guard(self._checkpoint)
        return result

    def _checkpoint(self) -> dict[str, Any]:
        self._checkpointing = True
        try:
            self._flush_all()
        finally:
            self._checkpointing = False
        seg = self._seg()
        now = self._clock.now()
        payload = {
            "v": VERSION,
            "recording_id": self.recording_id,
            "seq": self._checkpoint_seq,
            "segment": seg.index,
            "record": seg.counter,
            "chain": self._chain.hex(),
            "time": iso(now),
            "records": self._summary.records,
        }
        body = sign_checkpoint(payload, self._signer)
        self._append(cv.RecordType.CHECKPOINT, body, 0)
        seq = self._checkpoint_seq
        self._checkpoint_seq += 1
        self._fsync(seg)
        self._last_checkpoint = self._clock.monotonic()
        if self.anchorer is not None:
            self.anchorer.checkpoint(seq, body)
        return payload

    def seal(self) -> dict[str, Any]:
        """Flush every stream, log the stop, close the last segment and write the signed
        manifest. Returns the manifest payload.

        Raises RecordingStateError if already sealed, RecordingIOError / DiskFullError if the
        package cannot be written.
        """
        if self._sealed:
            raise RecordingStateError("recording already sealed")
        self._check_open()
        for p in list(self._participants.values()):
            self._guard(p.remuxer.close)
        self._guard(self._event, EventType.RECORDING_STOPPED, {})
        manifest: dict[str, Any] = self._guard(self._finish, "complete")
        return manifest

    def abort(self) -> None:
        """Close files without sealing (the package stays for `recover()`). Idempotent."""
        seg = self._segment
        self._segment = None
        if seg is not None:
            seg.file.close()
        if self.anchorer is not None:
            self.anchorer.close()
        self._dek.wipe()
        self._sealed = True

    # ---- internals ---------------------------------------------------------------------------

    def _require(self, participant: ParticipantId) -> _Participant:
        p = self._participants.get(participant)
        if p is None:
            raise KeyError(f"unknown participant {participant!r}")
        return p

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._sealed:
            raise RecordingStateError("recording is sealed")

    def _seg(self) -> _Segment:
        if self._segment is None:
            raise RecordingStateError("no open segment")
        return self._segment

    def _guard(self, fn: Any, *args: Any) -> Any:
        """Run fn, turning OSError into the writer's failure path; re-raise a failure the
        muxer callback recorded."""
        try:
            result = fn(*args)
        except OSError as exc:
            self._fail(exc)
            result = None
        if self._error is not None:
            raise self._error
        return result

    def _media(
        self, participant: ParticipantId, kind: str, data: bytes, ts: int, key: bool
    ) -> None:
        self._check_open()
        p = self._require(participant)
        if self._paused is not None:
            self.dropped_while_paused += 1
            return
        mono = self._clock.monotonic()
        now = self._clock.now()
        last = p.last_arrival.get(kind)
        if last is not None and mono - last[0] > self.config.gap_threshold:
            self._guard(
                self._event,
                EventType.NETWORK_GAP,
                {
                    "participant": participant,
                    "track": kind,
                    "from": last[1],
                    "to": iso(now),
                    "seconds": round(mono - last[0], 3),
                },
            )
        p.last_arrival[kind] = (mono, iso(now))
        wall = unix_us(now) / 1e6
        if kind == "video":
            self._guard(p.remuxer.video_frame, data, ts, key, wall)
        else:
            self._guard(p.remuxer.audio_frame, data, ts, wall)
        self._guard(self._flush_aged)
        self._guard(self._maybe_rotate)
        self._guard(self._maybe_checkpoint)

    def _media_started(self, participant: ParticipantId, stream_id: int, origin: float) -> None:
        # The stream's media time 0 in wall time: what lines the streams up on playback.
        self._event(
            EventType.MEDIA_STARTED,
            {
                "participant": participant,
                "stream_id": stream_id,
                "origin": iso(from_unix_us(round(origin * 1_000_000))),
            },
        )

    def _on_media_bytes(self, stream_id: int, chunk: bytes) -> None:
        # Called from inside PyAV's muxer: never let an exception escape into C code.
        if self._error is not None:
            return
        pending = self._pending.get(stream_id)
        if pending is None:
            pending = self._pending[stream_id] = (bytearray(), self._clock.monotonic())
        pending[0].extend(chunk)
        if (
            len(pending[0]) >= RECORD_TARGET_BYTES
            or self._clock.monotonic() - pending[1] >= self.config.record_interval
        ):
            try:
                self._flush_stream(stream_id, rotate=True)
            except OSError as exc:
                self._fail(exc)

    def _flush_stream(self, stream_id: int, *, rotate: bool) -> None:
        pending = self._pending.pop(stream_id, None)
        if pending is None:
            return
        data = bytes(pending[0])
        for start in range(0, len(data), MAX_RECORD_PLAINTEXT):
            if rotate:
                self._maybe_rotate()
            self._append(
                cv.RecordType.MEDIA,
                data[start : start + MAX_RECORD_PLAINTEXT],
                stream_id,
                encrypt=True,
            )

    def _flush_aged(self) -> None:
        # The muxer emits a whole cluster at once and then nothing for ~1 s: flush what has
        # waited record_interval on the next frame, not on the next cluster.
        now = self._clock.monotonic()
        for sid, (_, first) in list(self._pending.items()):
            if now - first >= self.config.record_interval:
                self._flush_stream(sid, rotate=True)

    def _flush_all(self) -> None:
        for sid in list(self._pending):
            self._flush_stream(sid, rotate=False)

    def _maybe_rotate(self) -> None:
        seg = self._seg()
        if (
            self._clock.monotonic() - seg.started >= self.config.segment_seconds
            or seg.size >= self.config.segment_max_bytes
        ):
            self._close_segment()
            self._open_segment(seg.index + 1)

    def _maybe_checkpoint(self) -> None:
        if self._clock.monotonic() - self._last_checkpoint >= self.config.checkpoint_interval:
            self._checkpoint()

    def _open_segment(self, index: int, kind: cv.SegmentKind = cv.SegmentKind.WRITER) -> None:
        salt = secrets.token_bytes(32)
        header = cv.SegmentHeader(
            cv.FORMAT_VERSION,
            cv.SUITE_AES256GCM_SHA256,
            kind,
            self._rid,
            index,
            secrets.token_bytes(7),
            salt,
            self._info.dek_commit,
            self._chain,
        )
        raw = header.pack()
        path = self.directory / "segments" / cv.segment_name(index)
        f = self._opener(path)
        self._segment = _Segment(
            index,
            f,
            header,
            cv.sha256(raw),
            AESGCM(cv.payload_key(self._dek.material(), header)),
            self._clock.monotonic(),
        )
        f.write(raw)
        f.fsync()
        fsync_dir(path.parent)
        self._chain = cv.chain_header(self._chain, raw)
        self._summary.begin_segment(index, int(kind), header.version)

    def _close_segment(self) -> None:
        self._flush_all()
        seg = self._seg()
        self._append(cv.RecordType.END, b"", 0, encrypt=True, last=True)
        self._summary.end_segment(
            seg.index, int(seg.header.kind), seg.counter, seg.size, self._chain, True
        )
        self._fsync(seg)
        seg.file.close()
        self._segment = None

    def _fsync(self, seg: _Segment) -> None:
        seg.file.fsync()

    def _event(self, etype: EventType, fields: dict[str, Any]) -> None:
        body = {"v": VERSION, "type": etype.value, "time": iso(self._clock.now()), **fields}
        self._append(cv.RecordType.EVENT, dumps(body), 0)

    def _append(
        self,
        rtype: cv.RecordType,
        body: bytes,
        stream_id: int,
        *,
        encrypt: bool = False,
        last: bool = False,
    ) -> None:
        if (
            rtype is not cv.RecordType.CHECKPOINT
            and not self._checkpointing
            and self._clock.monotonic() - self._last_checkpoint >= self.config.checkpoint_interval
        ):
            # The cadence rule verify enforces: nothing is written long after a checkpoint.
            self._checkpoint()
        seg = self._seg()
        time_us = unix_us(self._clock.now())
        flags = cv.FLAG_LAST if last else 0
        tagged = encrypt or cv.is_tagged(seg.header, rtype)
        body_len = len(body) + (cv.TAG_LEN if tagged else 0)
        rec_header = cv.RecordHeader(rtype, flags, stream_id, seg.counter, time_us, body_len).pack()
        fact = body
        if encrypt:
            assert seg.aead is not None
            body = seg.aead.encrypt(
                cv.nonce(seg.header.nonce_prefix, seg.counter, last),
                body,
                cv.aad(seg.header_hash, rec_header),
            )
            fact = body
        elif tagged:
            # Clear JSON, authenticated: the tag of an empty plaintext with the JSON in the AAD.
            assert seg.aead is not None
            body = body + seg.aead.encrypt(
                cv.nonce(seg.header.nonce_prefix, seg.counter, False),
                b"",
                cv.clear_aad(seg.header_hash, rec_header, body),
            )
        try:
            seg.file.write(rec_header + body)
        except OSError:
            self._truncate_torn(seg)
            raise
        self._chain = cv.chain_record(self._chain, rec_header, body)
        seg.size += len(rec_header) + len(body)
        seg.counter += 1
        self._summary.add_record(int(rtype), stream_id, fact, self._chain, time_us, seg.counter - 1)

    def _truncate_torn(self, seg: _Segment) -> None:
        try:
            seg.file.truncate(seg.size)
        except OSError:
            log.exception("cannot truncate the torn record of segment %d", seg.index)

    def _finish(self, status: str) -> dict[str, Any]:
        self._checkpoint()
        self._close_segment()
        payload = self._summary.manifest_payload(
            self._info, status=status, sealed_at=iso(self._clock.now()), root_hash=self._chain
        )
        envelope = sign_manifest(payload, self._signer)
        atomic_write(self.directory / "manifest.json", envelope)
        if self.anchorer is not None:
            self.anchorer.manifest(envelope)
        self._sealed = True
        self._dek.wipe()
        log.info(
            "recording %s sealed (%s), root %s", self.recording_id, status, self._chain.hex()[:16]
        )
        return payload

    def _fail(self, exc: OSError) -> None:
        if self._error is not None:
            return
        if exc.errno == errno.ENOSPC:
            log.error("disk full while writing recording %s", self.recording_id)
            sealed = False
            try:
                now = iso(self._clock.now())
                self._event(
                    EventType.INCIDENT,
                    {"cause": IncidentCause.DISK_FULL.value, "from": now, "to": now},
                )
                self._finish("failed")
                sealed = True
            except (OSError, RecordingError):
                log.exception("could not seal recording %s after ENOSPC", self.recording_id)
            self._error = DiskFullError(
                f"disk full while writing recording {self.recording_id}"
                + (
                    " (package sealed with a disk-full incident)"
                    if sealed
                    else " (package left for recovery)"
                ),
                sealed=sealed,
            )
        else:
            log.error("I/O error in recording %s: %s", self.recording_id, exc)
            self._error = RecordingIOError(f"I/O error in recording {self.recording_id}: {exc}")
        self._sealed = True
        seg = self._segment
        if seg is not None:
            with contextlib.suppress(OSError):
                seg.file.close()
            self._segment = None
        if self.anchorer is not None:
            self.anchorer.close()
        self._dek.wipe()


def create_writer(
    root: Path,
    keys: KeyProvider,
    *,
    recording_id: RecordingId | None = None,
    clock: Clock | None = None,
    config: WriterConfig | None = None,
    metadata: Mapping[str, str] | None = None,
    tsa: TsaConfig | None = None,
) -> RecordingWriter:
    """Start a recording in `root/<recording_id>/`. Raises as `RecordingWriter`."""
    rid = recording_id or RecordingId(str(uuid.uuid4()))
    return RecordingWriter(
        root / rid, keys, recording_id=rid, clock=clock, config=config, metadata=metadata, tsa=tsa
    )
