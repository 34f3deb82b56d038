"""Export: verify, then decrypt a package into playable per-participant WebM files.

Design: export refuses a package that does not verify (exit 1), so a decrypted copy always
derives from authenticated evidence. The archive private key unwraps the data key from
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
from .keys import ArchivePrivateKey, VerifyKey, unwrap_data_key
from .manifest import JSONDict, loads, parse_keys_json
from .verify import EXIT_TAMPERED, Report, read_info, segment_files, verify_package

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
    report: Report
    files: list[Path]
    timeline: Path | None
    streams: list[ExportedStream] = field(default_factory=list)


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


def export_package(
    path: Path,
    key: ArchivePrivateKey,
    out: Path,
    *,
    progress: Callable[[int], None] | None = None,
    public_keys: list[VerifyKey] | None = None,
    trust_embedded_key: bool = False,
) -> ExportResult:
    """Verify `path` (against `public_keys` when given), then decrypt it into `out/`.

    Returns the verification report and written files (no files if verification failed).
    Raises KeyFileError (no stanza for this key / wrong key), IntegrityError (a record does not
    decrypt: cannot happen on a verified package unless keys.json was tampered), OSError.
    """
    report = verify_package(path, public_keys, trust_embedded_key=trust_embedded_key)
    if report.exit_code in (EXIT_TAMPERED, 3):
        return ExportResult(report, [], None)
    info = read_info(path)
    rid = cv.recording_id_bytes(info.recording_id)
    key_rid, stanzas = parse_keys_json((path / "keys.json").read_bytes())
    if key_rid != info.recording_id:
        raise KeyFileError("keys.json belongs to another recording")
    stanza = next((s for s in stanzas if s.recipient_key_id == key.key_id), None)
    if stanza is None:
        raise KeyFileError(
            f"the data key is not wrapped for archive key {key.key_id} "
            f"(recipients: {', '.join(s.recipient_key_id for s in stanzas)})"
        )
    dek = unwrap_data_key(stanza, key, rid)
    if dek.commitment(rid) != info.dek_commit:
        raise IntegrityError(
            "unwrapped data key does not match the recording's commitment",
            Location(file="keys.json"),
        )
    out.mkdir(parents=True, exist_ok=True)
    files, _ = segment_files(path)
    total = sum(f.stat().st_size for f in files)
    done = 0
    raw_paths: dict[int, Path] = {}
    handles: dict[int, Any] = {}
    names: dict[int, str] = {}
    declared: dict[int, JSONDict] = {}
    try:
        for file in files:
            data = file.read_bytes()
            rel = f"segments/{file.name}"
            scan = cv.scan_segment(data, rel, bytes(32))
            h = scan.header
            if h.kind is cv.SegmentKind.RECOVERY:
                done += len(data)
                continue
            aead = AESGCM(cv.payload_key(dek.material(), h))
            for rec in scan.records:
                rh = rec.header
                if rh.type is cv.RecordType.STREAM:
                    decl = loads(rec.body, "stream declaration")
                    base = _safe_name(str(decl["participant"]))
                    part = int(decl["part"])
                    name = base + (f"-part{part}" if part else "")
                    if name in names.values():  # two participants whose ids sanitise alike
                        name = f"{name}-stream{rh.stream_id}"
                    names[rh.stream_id] = name
                    declared[rh.stream_id] = decl
                elif rh.type in (cv.RecordType.MEDIA, cv.RecordType.END):
                    last = rh.type is cv.RecordType.END
                    try:
                        pt = aead.decrypt(
                            cv.nonce(h.nonce_prefix, rh.counter, last),
                            bytes(rec.body),
                            cv.aad(scan.header_hash, rec.raw_header),
                        )
                    except InvalidTag:
                        raise IntegrityError(
                            "record does not decrypt",
                            Location(
                                file=rel,
                                segment=h.segment_index,
                                record=rh.counter,
                                offset=rec.offset,
                            ),
                        ) from None
                    if last:
                        continue
                    fh = handles.get(rh.stream_id)
                    if fh is None:
                        if rh.stream_id not in names:
                            raise FormatError(f"media for undeclared stream {rh.stream_id}")
                        raw = out / f".{names[rh.stream_id]}.live.webm"
                        raw_paths[rh.stream_id] = raw
                        fh = handles[rh.stream_id] = raw.open("wb")
                    fh.write(pt)
            done += len(data)
            if progress is not None:
                progress(done)
    finally:
        for fh in handles.values():
            fh.close()
        dek.wipe()
    origins = {
        int(ev["stream_id"]): str(ev["origin"])
        for ev in report.timeline
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
    timeline = out / "timeline.json"
    timeline.write_text(
        json.dumps(
            {
                "recording_id": info.recording_id,
                "verdict": report.verdict,
                "gaps": report.gaps,
                "events": report.timeline,
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    if progress is not None:
        progress(total)
    return ExportResult(report, written, timeline, streams)


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
