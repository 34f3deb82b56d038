"""Export: verify, then decrypt a package into playable per-participant WebM files.

Design: a decrypted copy only ever holds authenticated evidence, but one bad byte must not
block the rest. Export refuses (exit 1) only when the recording's header cannot be trusted
(untrusted signer, no valid checkpoint); otherwise the data key, bound to the signed
recording.json by `dek_commit`, authenticates every record by its GCM tag, and export writes
each stream up to its first bad record and reports what it left out and where (exit 1).
The archive private key unwraps the data key from
`keys.json`; the unwrapped key must match the DEK commitment in `recording.json`. Every MEDIA
record is opened with AES-256-GCM (nonce and AAD as written), and every writer segment's END
record must open with the last-record flag (Tink/age truncation rule). The decrypted stream is a
live-mode WebM (no cues, no duration); it is remuxed once more (no re-encoding) into a seekable
WebM with durations so ordinary players and ffprobe show the length. The timeline is written as
`timeline.json` next to the media.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import av
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import container as cv
from .errors import FormatError, IntegrityError, KeyFileError, Location
from .keys import ArchivePrivateKey, DataKey, VerifyKey, unwrap_data_key
from .manifest import JSONDict, RecordingInfo, loads, parse_keys_json
from .verify import (
    EXIT_TAMPERED,
    EXIT_USAGE,
    TRUST_EMBEDDED,
    TRUST_GIVEN,
    Report,
    read_info,
    segment_files,
    verify_package,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportedStream:
    """One participant stream written by `export_package`."""

    stream_id: int
    participant: str
    part: int
    tracks: tuple[str, ...]
    file: Path
    # Wall time (ISO, from the stream's `media_started` event) of media time 0; None for a
    # package written before that event existed.
    origin: str | None


@dataclass
class ExportResult:
    """What `export_package` did. `refused`: why nothing was written (None if it exported);
    `left_out`: the parts not exported (tampered or damaged), each with its place."""

    report: Report
    files: list[Path]
    timeline: Path | None
    streams: list[ExportedStream] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    refused: str | None = None

    @property
    def exit_code(self) -> int:
        """0 / 2 everything exported (intact / with declared gaps); 1 refused, or exported
        only in part (tampered); 3 I/O error."""
        if self.report.io_error is not None:
            return EXIT_USAGE
        if self.refused is not None or self.left_out or self.report.problems:
            return EXIT_TAMPERED
        return self.report.exit_code


class ProgressBar:
    """A plain percentage bar on a text stream (stderr by default)."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._last = -1

    def update(self, done: int) -> None:
        pct = min(100, done * 100 // self.total)
        if pct == self._last:
            return
        self._last = pct
        filled = pct * self.width // 100
        self.stream.write(f"\rexport [{'#' * filled}{'.' * (self.width - filled)}] {pct:3d}%")
        if pct == 100:
            self.stream.write("\n")
        self.stream.flush()


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80] or "participant"


@dataclass(frozen=True)
class LeftOut:
    """A part of the package `export_package` did not write, where it starts, and why."""

    what: str  # "stream 1 (participant p1, part 0)", "timeline events", "everything"
    location: Location
    reason: str

    def __str__(self) -> str:
        return f"left out: {self.what}, from {self.location} on: {self.reason}"

    def as_json(self) -> JSONDict:
        loc = self.location
        return {
            "what": self.what,
            "reason": self.reason,
            "file": loc.file,
            "segment": loc.segment,
            "record": loc.record,
            "offset": loc.offset,
        }


def _unwrap(path: Path, info: RecordingInfo, key: ArchivePrivateKey) -> DataKey:
    """The recording's data key from keys.json. Raises IntegrityError when keys.json is
    missing, damaged, swapped or lacks a stanza recording.json promises (tampering: nobody can
    decrypt), KeyFileError when `key` is simply not a recipient (a usage error)."""
    loc = Location(file="keys.json")
    rid = cv.recording_id_bytes(info.recording_id)
    try:
        key_rid, stanzas = parse_keys_json((path / "keys.json").read_bytes())
    except FileNotFoundError:
        raise IntegrityError("keys.json is missing: the data key is lost", loc) from None
    except FormatError as exc:
        raise IntegrityError(f"keys.json is damaged ({exc})", loc) from None
    if key_rid != info.recording_id:
        raise IntegrityError(f"keys.json belongs to recording {key_rid!r} (swapped)", loc)
    stanza = next((s for s in stanzas if s.recipient_key_id == key.key_id), None)
    if stanza is None:
        if key.key_id in info.recipients:
            raise IntegrityError(
                f"keys.json lacks the stanza for archive key {key.key_id}, which "
                "recording.json names as a recipient",
                loc,
            )
        raise KeyFileError(
            f"the data key is not wrapped for archive key {key.key_id} "
            f"(recipients: {', '.join(s.recipient_key_id for s in stanzas)})"
        )
    try:
        dek = unwrap_data_key(stanza, key, rid)
    except IntegrityError:
        raise IntegrityError(
            f"the stanza for archive key {key.key_id} does not open (damaged)", loc
        ) from None
    if dek.commitment(rid) != info.dek_commit:
        dek.wipe()
        raise IntegrityError("unwrapped data key does not match the recording's commitment", loc)
    return dek


def export_package(
    path: Path,
    key: ArchivePrivateKey,
    out: Path,
    *,
    progress: Callable[[int], None] | None = None,
    public_keys: list[VerifyKey] | None = None,
    trust_embedded_key: bool = False,
    only_if_intact: bool = False,
) -> ExportResult:
    """Verify `path` (trust as in `verify_package`), then decrypt what is authenticated into
    `out/`. With `only_if_intact`, refuse (write nothing) unless verification passes (exit 0
    or 2): for callers whose policy is never to decrypt what does not verify.

    Refused (no files) when verification cannot establish the recording's header: an I/O
    error, an untrusted signer, or no valid signed checkpoint. Otherwise every record whose
    GCM tag opens under the data key is authenticated (the key is bound to the signed
    recording.json by `dek_commit`), so export writes each stream up to its first bad record,
    the timeline up to its first bad event, and everything up to the first structural break
    (missing segment, framing error, END that does not open); `ExportResult.left_out` says what
    was left out and where, and `exit_code` is then 1.
    Raises IntegrityError (keys.json missing, damaged or swapped: tampering), KeyFileError
    (`key` is not a recipient), OSError.
    """
    report = verify_package(path, public_keys, trust_embedded_key=trust_embedded_key)
    if report.io_error is not None:
        return ExportResult(report, [], None, refused=report.io_error)
    if report.trust not in (TRUST_GIVEN, TRUST_EMBEDDED):
        return ExportResult(report, [], None, refused="the signing key is not trusted")
    if only_if_intact and report.problems:
        return ExportResult(report, [], None, refused="the package does not verify")
    if report.checkpoints == 0:
        return ExportResult(
            report, [], None, refused="no valid signed checkpoint vouches for recording.json"
        )
    info = read_info(path)
    dek = _unwrap(path, info, key)
    out.mkdir(parents=True, exist_ok=True)
    files, _ = segment_files(path)
    total = sum(f.stat().st_size for f in files)
    done = 0
    raw_paths: dict[int, Path] = {}
    handles: dict[int, Any] = {}
    names: dict[int, str] = {}
    declared: dict[int, JSONDict] = {}
    stopped: dict[int, LeftOut] = {}
    left_out: list[LeftOut] = []
    events: list[tuple[tuple[int, int], JSONDict]] = []
    events_stopped = False
    try:
        for i, file in enumerate(files):
            rel = f"segments/{file.name}"
            if int(file.name[:6]) != i:
                left_out.append(
                    LeftOut("everything", Location(file=rel, segment=i), f"segment {i} missing")
                )
                break
            data = file.read_bytes()
            try:
                scan = cv.scan_segment(data, rel, bytes(32))
            except FormatError as exc:
                left_out.append(LeftOut("everything", exc.location, str(exc).split(": ", 1)[-1]))
                break
            h = scan.header
            if (
                h.recording_id != cv.recording_id_bytes(info.recording_id)
                or h.segment_index != i
                or h.dek_commit != info.dek_commit
            ):
                left_out.append(
                    LeftOut(
                        "everything",
                        Location(file=rel, segment=i, offset=0),
                        "segment header does not belong here",
                    )
                )
                break
            if h.kind is cv.SegmentKind.RECOVERY:
                done += len(data)
                continue
            aead = AESGCM(cv.payload_key(dek.material(), h))
            broken: LeftOut | None = None
            for rec in scan.records:
                rh = rec.header
                loc = Location(file=rel, segment=i, record=rh.counter, offset=rec.offset)
                if not _authentic(aead, scan, rec):
                    what = {
                        cv.RecordType.MEDIA: f"stream {rh.stream_id}",
                        cv.RecordType.STREAM: f"stream {rh.stream_id}",
                        cv.RecordType.EVENT: "timeline events",
                    }.get(rh.type)
                    reason = f"{rh.type.name} record does not authenticate (forged or damaged)"
                    if what is None:  # END: the segment's end is not authentic
                        broken = LeftOut("everything", loc, reason)
                        break
                    if rh.type is cv.RecordType.EVENT:
                        if not events_stopped:
                            left_out.append(LeftOut(what, loc, reason))
                        events_stopped = True
                    elif rh.stream_id not in stopped:
                        stopped[rh.stream_id] = LeftOut(_describe(what, declared, rh), loc, reason)
                        left_out.append(stopped[rh.stream_id])
                    continue
                if rh.type is cv.RecordType.STREAM:
                    decl = loads(cv.clear_json(h, rh.type, rec.body), "stream declaration")
                    base = _safe_name(str(decl["participant"]))
                    part = int(decl["part"])
                    name = base + (f"-part{part}" if part else "")
                    if name in names.values():  # two participants whose ids sanitise alike
                        name = f"{name}-stream{rh.stream_id}"
                    names[rh.stream_id] = name
                    declared[rh.stream_id] = decl
                elif rh.type is cv.RecordType.EVENT and not events_stopped:
                    event = loads(cv.clear_json(h, rh.type, rec.body), "timeline event")
                    events.append(((i, rh.counter), event))
                elif rh.type is cv.RecordType.MEDIA and rh.stream_id not in stopped:
                    if rh.stream_id not in names:
                        stopped[rh.stream_id] = LeftOut(
                            f"stream {rh.stream_id}", loc, "media for an undeclared stream"
                        )
                        left_out.append(stopped[rh.stream_id])
                        continue
                    try:
                        plaintext = _open_media(aead, scan, rec)
                    except InvalidTag:
                        stopped[rh.stream_id] = LeftOut(
                            _describe(f"stream {rh.stream_id}", declared, rh),
                            loc,
                            "MEDIA record does not decrypt (forged or damaged)",
                        )
                        left_out.append(stopped[rh.stream_id])
                        continue
                    fh = handles.get(rh.stream_id)
                    if fh is None:
                        raw = out / f".{names[rh.stream_id]}.live.webm"
                        raw_paths[rh.stream_id] = raw
                        fh = handles[rh.stream_id] = raw.open("wb")
                    fh.write(plaintext)
            if broken is None:
                tail = Location(
                    file=rel, segment=i, record=len(scan.records), offset=scan.end_offset
                )
                if scan.error is not None:
                    broken = LeftOut(
                        "everything", scan.error.location, str(scan.error).split(": ", 1)[-1]
                    )
                elif scan.torn_tail:
                    broken = LeftOut(
                        "everything", tail, f"{scan.torn_tail} bytes do not form a record"
                    )
                elif not scan.terminated and not _declared_crash(report, i):
                    broken = LeftOut("everything", tail, "segment has no END record (truncated)")
            if broken is not None:
                left_out.append(broken)
                break
            done += len(data)
            if progress is not None:
                progress(done)
    except BaseException:
        # No hidden half-written files: the caller gets the exception, not a partial copy.
        for fh in handles.values():
            fh.close()
        for raw in raw_paths.values():
            raw.unlink(missing_ok=True)
        raise
    finally:
        for fh in handles.values():
            fh.close()
        dek.wipe()
    origins = {
        int(ev["stream_id"]): str(ev["origin"])
        for _, ev in events
        if ev.get("type") == "media_started" and "origin" in ev
    }
    written: list[Path] = []
    streams: list[ExportedStream] = []
    for sid, raw in sorted(raw_paths.items()):
        final = out / f"{names[sid]}.webm"
        if _finalize_webm(raw, final):
            written.append(final)
            decl = declared[sid]
            streams.append(
                ExportedStream(
                    stream_id=sid,
                    participant=str(decl["participant"]),
                    part=int(decl["part"]),
                    tracks=tuple(str(t) for t in decl.get("tracks", [])),
                    file=final,
                    origin=origins.get(sid),
                )
            )
    tail_from = _tail_from(report)
    timeline = out / "timeline.json"
    timeline.write_text(
        json.dumps(
            {
                "recording_id": info.recording_id,
                "verdict": report.verdict,
                "gaps": report.gaps,
                "events": report.timeline,
                # Events after the last writer checkpoint of a crashed recording: no signature
                # vouches for them, their GCM tags under the data key do.
                "tail_events": [
                    ev for pos, ev in events if tail_from is not None and pos >= tail_from
                ],
                "left_out": [x.as_json() for x in left_out],
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    if progress is not None:
        progress(total)
    return ExportResult(report, written, timeline, streams, left_out)


def _authentic(aead: AESGCM, scan: cv.ScanResult, rec: cv.ScannedRecord) -> bool:
    rh = rec.header
    if not cv.is_tagged(scan.header, rh.type):
        return True  # CHECKPOINT (signed; verify checks it), or a version 1 clear record
    last = rh.type is cv.RecordType.END
    nonce = cv.nonce(scan.header.nonce_prefix, rh.counter, last)
    try:
        if rh.type in (cv.RecordType.EVENT, cv.RecordType.STREAM):
            body = rec.body
            aad = cv.clear_aad(scan.header_hash, rec.raw_header, body[: -cv.TAG_LEN])
            aead.decrypt(nonce, bytes(body[-cv.TAG_LEN :]), aad)
        elif rh.type is cv.RecordType.END:
            aead.decrypt(nonce, bytes(rec.body), cv.aad(scan.header_hash, rec.raw_header))
        else:
            return True  # MEDIA: checked when it is opened
    except InvalidTag:
        return False
    return True


def _open_media(aead: AESGCM, scan: cv.ScanResult, rec: cv.ScannedRecord) -> bytes:
    """Plaintext of a MEDIA record; raises InvalidTag."""
    return aead.decrypt(
        cv.nonce(scan.header.nonce_prefix, rec.header.counter, False),
        bytes(rec.body),
        cv.aad(scan.header_hash, rec.raw_header),
    )


def _describe(what: str, declared: dict[int, JSONDict], rh: cv.RecordHeader) -> str:
    decl = declared.get(rh.stream_id)
    if decl is None:
        return what
    return f"{what} (participant {decl.get('participant')}, part {decl.get('part')})"


def _declared_crash(report: Report, index: int) -> bool:
    return any(
        ev.get("type") == "incident" and ev.get("segment") == index for ev in report.timeline
    )


def _tail_from(report: Report) -> tuple[int, int] | None:
    for ev in report.timeline:
        if ev.get("type") == "incident" and isinstance(ev.get("tail_segment"), int):
            return int(ev["tail_segment"]), int(ev["tail_record"])
    return None


def _finalize_webm(raw: Path, final: Path) -> bool:
    """Remux (no re-encoding) the live-mode stream into a seekable WebM with durations; keep
    the raw stream if the remux fails (it is still playable). Returns False (and writes
    nothing) when the stream holds no media packet at all (e.g. a crash right after start)."""
    packets = 0
    try:
        src_container = av.open(str(raw))
    except av.error.EOFError:
        # Only the WebM header was recorded (a crash within the first cluster): no media.
        log.warning("%s ends inside its header; nothing exported for it", raw.name)
        raw.unlink()
        return False
    except (av.FFmpegError, OSError):
        log.exception("cannot open %s for remuxing; keeping the live stream", raw)
        raw.replace(final)
        return True
    try:
        with src_container as src:
            streams = [s for s in src.streams if s.type in ("video", "audio")]
            if streams:
                with av.open(str(final), "w", format="webm") as dst:
                    mapping = {s.index: dst.add_stream_from_template(s) for s in streams}
                    for packet in src.demux(streams):
                        if packet.dts is None or packet.stream.index not in mapping:
                            continue
                        packet.stream = mapping[packet.stream.index]
                        dst.mux(packet)
                        packets += 1
    except (av.FFmpegError, OSError, ValueError):
        log.exception("remuxing %s into a seekable file failed; keeping the live stream", raw)
        raw.replace(final)
        return True
    if packets == 0:
        log.warning("%s holds no media packet; nothing exported for it", raw.name)
        raw.unlink()
        final.unlink(missing_ok=True)
        return False
    raw.unlink()
    return True
