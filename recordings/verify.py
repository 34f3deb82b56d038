"""Offline verification of an evidence package, without the decryption key.

What is checked (docs/recording-format.md §Verification):
1. `recording.json` parses with a known version; its signing key is one the caller trusts (keys
   given, or the embedded key only when the caller opts in: anyone can re-sign a package with a
   key of their own, so an embedded key proves integrity, never origin).
2. Segments `segments/000000.cevr ...` are contiguous; each header names this recording, its own
   index, the recording's DEK commitment and the chain head at which it starts; framing is
   strict (counters consecutive, flags, bounded lengths, END last, nothing after END).
3. The SHA-256 hash chain is recomputed over every header and record byte; every checkpoint's
   Ed25519 signature is valid and commits to the chain head at its position.
4. `manifest.json` is a DSSE envelope signed by the recording's key, and every field it states
   (segments, chain heads, root hash, streams and their digests, timeline, gaps, counts) equals
   what was recomputed.
5. Only the last writer segment may be unterminated, and only if a RECOVERY segment follows
   whose signed incident names it; the incident's numbers (segment, last checkpoint, records
   kept, unauthenticated tail) equal what the package holds.
6. Checkpoint cadence (format 2): a record after the last writer checkpoint stamped more than
   5 s after it shows records appended after a crash or a package cut back to an older
   checkpoint.
7. keys.json names this recording and wraps the data key for every recipient recording.json
   names (a package nobody can decrypt is not intact); files the format does not define are
   listed (they are not evidence and do not change the verdict).
8. RFC 3161 tokens in `timestamps/` (timestamps.py): each stamps exactly its checkpoint or the
   manifest and, given TSA certificates, verifies; a bad one is tampering, a missing one a
   warning. The report says when each stamped part is proven to have existed.

Result: exit 0 intact; 2 intact with declared gaps (network gaps, incidents); 1 tampered,
silently incomplete, or signed by a key nobody trusted; 3 usage or I/O error. Every problem
carries a `Location`.

Speed: each file is read in one call and hashed once with hashlib over memoryviews, so the
cost is SHA-256 throughput plus a few microseconds per record.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import container as cv
from . import timestamps
from .clock import from_unix_us, iso
from .errors import FormatError, IntegrityError, Location, RecordingError
from .keys import VerifyKey, fingerprint
from .manifest import (
    SIG_LEN,
    PackageSummary,
    RecordingInfo,
    compare_manifest,
    loads,
    open_checkpoint,
    open_manifest,
    parse_keys_json,
)
from .timestamps import (
    AnchorReport,
    CheckedToken,
    StampedPart,
    TsaTrust,
    check_anchors,
    precheck_tokens,
)

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_GAPS = 2
EXIT_USAGE = 3
# How the signing key came to be trusted (Report.trust).
TRUST_GIVEN = "given key"
TRUST_EMBEDDED = "embedded key (trusted on request)"
TRUST_NONE = "untrusted"
# Checkpoint cadence (format version 2): in writer segments no record is stamped more than
# this after the checkpoint before it. The writer checkpoints every 2 s by default and writes
# a due checkpoint before any other record; the margin absorbs a small wall-clock step.
MAX_CHECKPOINT_SPACING_US = 5_000_000
MMAP_THRESHOLD = 1 << 20
PARALLEL_THRESHOLD = 4 << 20
HASH_THREADS = max(1, min(4, os.cpu_count() or 1))
SEGMENT_RE = re.compile(r"^(\d{6})\.cevr$")


@dataclass
class Problem:
    message: str
    location: Location

    def as_json(self) -> dict[str, Any]:
        loc = self.location
        return {
            "message": self.message,
            "file": loc.file,
            "segment": loc.segment,
            "record": loc.record,
            "offset": loc.offset,
        }


@dataclass
class Report:
    path: str
    recording_id: str | None = None
    status: str | None = None
    problems: list[Problem] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    segments: int = 0
    records: int = 0
    bytes: int = 0
    checkpoints: int = 0
    signing_key_id: str | None = None
    root_hash: str | None = None
    io_error: str | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    trust: str | None = None
    unknown_files: list[str] = field(default_factory=list)
    anchors: AnchorReport | None = None

    @property
    def exit_code(self) -> int:
        if self.io_error is not None:
            return EXIT_USAGE
        if self.problems:
            return EXIT_TAMPERED
        if self.gaps:
            return EXIT_GAPS
        return EXIT_OK

    @property
    def verdict(self) -> str:
        if self.trust == TRUST_NONE and len(self.problems) == 1 and self.io_error is None:
            return "UNTRUSTED SIGNER"
        return {
            EXIT_OK: "INTACT",
            EXIT_GAPS: "INTACT WITH DECLARED GAPS",
            EXIT_TAMPERED: "TAMPERED OR INCOMPLETE",
            EXIT_USAGE: "ERROR",
        }[self.exit_code]

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "exit_code": self.exit_code,
            "verdict": self.verdict,
            "recording_id": self.recording_id,
            "status": self.status,
            "signing_key_id": self.signing_key_id,
            "trust": self.trust,
            "root_hash": self.root_hash,
            "segments": self.segments,
            "records": self.records,
            "bytes": self.bytes,
            "checkpoints": self.checkpoints,
            "gaps": self.gaps,
            "warnings": self.warnings,
            "unknown_files": self.unknown_files,
            "problems": [p.as_json() for p in self.problems],
            "io_error": self.io_error,
            "time_anchors": self.anchors.as_json() if self.anchors is not None else None,
        }

    def text(self) -> str:
        lines = [f"{self.path}: {self.verdict}"]
        if self.recording_id:
            lines.append(
                f"  recording {self.recording_id}, status {self.status}, "
                f"signed by key {self.signing_key_id} ({self.trust})"
            )
        lines.append(
            f"  {self.segments} segments, {self.records} records, {self.bytes} bytes, "
            f"{self.checkpoints} checkpoints"
        )
        if self.root_hash:
            lines.append(f"  root hash {self.root_hash}")
        if self.io_error:
            lines.append(f"  I/O error: {self.io_error}")
        for p in self.problems:
            lines.append(f"  PROBLEM at {p.location}: {p.message}")
        for g in self.gaps:
            who = f" {g.get('participant')}/{g.get('track')}" if "participant" in g else ""
            cause = f" ({g['cause']})" if "cause" in g else ""
            lines.append(f"  declared gap: {g['type']}{who}{cause} from {g['from']} to {g['to']}")
        lines.extend(_anchor_lines(self.anchors))
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)


def _anchor_lines(anchors: AnchorReport | None) -> list[str]:
    if anchors is None or not anchors.anchors:
        return []
    lines = [f"  {len(anchors.anchors)} RFC 3161 time-stamp tokens verify"]
    shown = anchors.existed_by
    if len(shown) > 7:  # a long hearing has hundreds: the first and last few; --json has all
        lines.append(f"  ({len(shown) - 6} more time anchors in the --json report)")
        shown = shown[:3] + shown[-3:]
    for e in shown:
        what = (
            "the sealed manifest"
            if e["part"] == "manifest"
            else f"records up to segment {e['segment']} record {e['record']}"
        )
        lines.append(f"  existed by {e['existed_by']}: {what} ({e['token']})")
    return lines


@dataclass
class PackageScan:
    """Result of walking a package's segments (shared by verify and recovery)."""

    info: RecordingInfo
    summary: PackageSummary
    chain: bytes
    scans: list[tuple[Path, cv.ScanResult]]
    problems: list[Problem]
    last_checkpoint_chain: bytes | None = None
    version: int = cv.FORMAT_VERSION
    recovery_events: list[dict[str, Any]] = field(default_factory=list)


def read_segment(file: Path) -> bytes:
    """The segment's bytes. Large files are memory-mapped (MAP_POPULATE) rather than copied:
    hashing straight from the page cache is what lets verify run near SHA-256 speed."""
    size = file.stat().st_size
    if size < MMAP_THRESHOLD:
        return file.read_bytes()
    with file.open("rb") as f:
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        # The mapping outlives the file object; it is released when no view refers to it.
        return mmap.mmap(f.fileno(), size, flags=flags, prot=mmap.PROT_READ)  # type: ignore[return-value]


def read_info(path: Path) -> RecordingInfo:
    """Raises OSError, FormatError."""
    return RecordingInfo.parse((path / "recording.json").read_bytes())


def segment_files(path: Path) -> tuple[list[Path], list[str]]:
    seg_dir = path / "segments"
    files: list[Path] = []
    others: list[str] = []
    for p in sorted(seg_dir.iterdir()):
        if SEGMENT_RE.match(p.name):
            files.append(p)
        else:
            others.append(p.name)
    return files, others


def scan_package(
    path: Path,
    info: RecordingInfo,
    key: VerifyKey,
    *,
    stop_at_tail: bool = False,
    expected_heads: dict[int, str] | None = None,
) -> PackageScan:
    """Walk every segment in order, recomputing the chain and checking checkpoints.

    With stop_at_tail (recovery), a torn tail or framing error in the *last* segment is not a
    problem; the scan just ends there. Raises OSError on read failure.
    """
    problems: list[Problem] = []
    summary = PackageSummary()
    with ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="verify") as pool:

        def hasher(bodies: list[memoryview]) -> list[bytes]:
            # hashlib releases the GIL on large buffers, so big records hash in parallel.
            if sum(len(b) for b in bodies) < PARALLEL_THRESHOLD:
                return cv.hash_bodies_serial(bodies)
            # One task per thread over a contiguous slice: per-record futures cost more than
            # they save.
            n = -(-len(bodies) // HASH_THREADS)
            groups = [bodies[i : i + n] for i in range(0, len(bodies), n)]
            return [d for part in pool.map(cv.hash_bodies_serial, groups) for d in part]

        return _scan(path, info, key, problems, summary, hasher, stop_at_tail, expected_heads)


def _scan(
    path: Path,
    info: RecordingInfo,
    key: VerifyKey,
    problems: list[Problem],
    summary: PackageSummary,
    hasher: cv.BodyHasher,
    stop_at_tail: bool,
    expected_heads: dict[int, str] | None,
) -> PackageScan:
    chain = cv.genesis(info.raw)
    rid = cv.recording_id_bytes(info.recording_id)
    files, _ = segment_files(path)
    scans: list[tuple[Path, cv.ScanResult]] = []
    last_cp: bytes | None = None
    expected_cp_seq = 0
    version: int | None = None
    cadence_ref: int | None = None  # time_us of the last writer checkpoint (or first record)
    late_record: Problem | None = None  # a cadence breach no checkpoint has vouched for yet
    recovery_events: list[dict[str, Any]] = []
    for i, file in enumerate(files):
        rel = f"segments/{file.name}"
        is_last = i == len(files) - 1
        index = int(file.name[:6])
        if index != i:
            problems.append(
                Problem(
                    f"segment {i} missing (next file is {file.name})",
                    Location(file=rel, segment=i, offset=0),
                )
            )
            break
        data = read_segment(file)
        try:
            scan = cv.scan_segment(data, rel, chain, hasher)
        except FormatError as exc:
            if stop_at_tail and is_last and len(data) < cv.HEADER_LEN:
                break
            problems.append(Problem(str(exc).split(": ", 1)[-1], exc.location))
            break
        h = scan.header
        loc = Location(file=rel, segment=index, offset=0)
        if h.recording_id != rid:
            problems.append(Problem("segment belongs to another recording", loc))
            break
        if h.segment_index != index:
            problems.append(Problem(f"header says segment {h.segment_index}, file is {index}", loc))
            break
        if h.prev_chain != chain:
            problems.append(
                Problem(
                    "segment does not continue the chain (reordered, swapped "
                    "or a preceding segment was altered)",
                    loc,
                )
            )
            break
        if h.dek_commit != info.dek_commit:
            problems.append(
                Problem("segment's data-key commitment differs from recording.json", loc)
            )
            break
        if version is None:
            version = h.version
        elif h.version != version:
            problems.append(
                Problem(f"segment format version {h.version} in a version {version} package", loc)
            )
            break
        if scans and scans[-1][1].header.kind is cv.SegmentKind.RECOVERY:
            problems.append(Problem("a segment follows the recovery segment", loc))
            break
        if h.kind is cv.SegmentKind.RECOVERY and late_record is not None:
            problems.append(late_record)
            break
        scans.append((file, scan))
        summary.begin_segment(index, int(h.kind), h.version)
        prev = cv.chain_header(chain, bytes(data[: cv.HEADER_LEN]))
        broken = False
        cadence = h.version >= 2 and h.kind is cv.SegmentKind.WRITER
        for rec in scan.records:
            rloc = Location(file=rel, segment=index, record=rec.header.counter, offset=rec.offset)
            rt = rec.header.type
            # A checkpoint itself may come late (an idle writer has nothing to vouch for); the
            # records after it are measured from it. A late record that a later writer
            # checkpoint vouches for is the writer's own (a clock step), so only a late record
            # in the unauthenticated tail is a problem.
            if cadence and rt is not cv.RecordType.CHECKPOINT:
                if cadence_ref is None:
                    cadence_ref = rec.header.time_us
                late = rec.header.time_us - cadence_ref
                if late > MAX_CHECKPOINT_SPACING_US and late_record is None:
                    late_record = Problem(
                        f"record stamped {late / 1e6:.1f} s after the last checkpoint before "
                        "it, and no checkpoint vouches for it (the writer checkpoints at least "
                        f"every {MAX_CHECKPOINT_SPACING_US / 1e6:.0f} s): records were added "
                        "after a crash, or the package was cut back to an older checkpoint",
                        rloc,
                    )
            if rt is cv.RecordType.CHECKPOINT:
                try:
                    cp = open_checkpoint(rec.body, info.signing_key if key is None else key, rloc)
                except (IntegrityError, FormatError) as exc:
                    problems.append(Problem(str(exc).split(": ", 1)[-1], rloc))
                    broken = True
                    break
                if (
                    cp.get("chain") != prev.hex()
                    or cp.get("segment") != index
                    or cp.get("record") != rec.header.counter
                    or cp.get("recording_id") != info.recording_id
                    or cp.get("seq") != expected_cp_seq
                    or cp.get("records") != summary.records
                ):
                    problems.append(
                        Problem(
                            "checkpoint does not match the chain at its position "
                            "(records before it were altered, removed or "
                            "reordered)",
                            rloc,
                        )
                    )
                    broken = True
                    break
                expected_cp_seq += 1
                last_cp = prev
                if cadence:
                    cadence_ref = rec.header.time_us
                    late_record = None
            if (rec.header.stream_id == 0) != (
                rt not in (cv.RecordType.MEDIA, cv.RecordType.STREAM)
            ):
                problems.append(
                    Problem(
                        f"{rt.name} record with stream id {rec.header.stream_id} (MEDIA and "
                        "STREAM records name a stream >= 1, all others stream 0)",
                        rloc,
                    )
                )
                broken = True
                break
            if rt is cv.RecordType.MEDIA and h.kind is cv.SegmentKind.RECOVERY:
                problems.append(Problem("media record in a recovery segment", rloc))
                broken = True
                break
            if rt is cv.RecordType.END and h.kind is cv.SegmentKind.RECOVERY and rec.body:
                problems.append(Problem("recovery END record must be empty", rloc))
                broken = True
                break
            try:
                body = (
                    cv.clear_json(h, rt, rec.body)
                    if rt in (cv.RecordType.EVENT, cv.RecordType.STREAM)
                    else rec.body
                )
                summary.add_record(
                    int(rt),
                    rec.header.stream_id,
                    body,
                    rec.chain,
                    rec.header.time_us,
                    rec.header.counter,
                )
                if h.kind is cv.SegmentKind.RECOVERY and rt is cv.RecordType.EVENT:
                    recovery_events.append(loads(body, "timeline event"))
            except FormatError as exc:
                problems.append(Problem(str(exc).split(": ", 1)[-1], rloc))
                broken = True
                break
            prev = rec.chain
        if broken:
            break
        expected = (expected_heads or {}).get(index)
        if expected is not None and expected != prev.hex():
            cps = [r for r in scan.records if r.header.type is cv.RecordType.CHECKPOINT]
            first = cps[-1].header.counter + 1 if cps else 0
            offset = (
                (scan.records[first].offset if first < len(scan.records) else scan.end_offset)
                if cps
                else 0
            )
            last = len(scan.records) - 1
            if first > last:
                # Nothing follows the last checkpoint: records after it were removed.
                where = f"records after record {last} (the last checkpoint) were removed"
            elif first == last:
                where = f"the alteration lies in record {first}"
            else:
                where = f"the alteration lies in records {first} to {last}"
            problems.append(
                Problem(
                    f"segment content differs from the signed manifest (chain head mismatch); "
                    f"{where}"
                    + (" (after the last valid checkpoint)" if cps and first <= last else "")
                    + ("" if cps else " or the segment header"),
                    Location(file=rel, segment=index, record=first if cps else None, offset=offset),
                )
            )
            break
        chain = prev
        tail_loc = Location(
            file=rel, segment=index, record=len(scan.records), offset=scan.end_offset
        )
        if scan.error is not None:
            if not (stop_at_tail and is_last):
                problems.append(Problem(str(scan.error).split(": ", 1)[-1], scan.error.location))
                break
        elif scan.torn_tail and not (stop_at_tail and is_last):
            problems.append(
                Problem(
                    f"torn or truncated record: {scan.torn_tail} bytes that do "
                    "not form a complete record",
                    tail_loc,
                )
            )
            break
        if scan.trailing_after_end:
            problems.append(
                Problem(f"{scan.trailing_after_end} bytes after the END record", tail_loc)
            )
            break
        summary.end_segment(
            index, int(h.kind), len(scan.records), scan.end_offset, chain, scan.terminated
        )
    return PackageScan(
        info,
        summary,
        chain,
        scans,
        problems,
        last_cp,
        version if version is not None else cv.FORMAT_VERSION,
        recovery_events,
    )


def _check_unterminated(scan: PackageScan, problems: list[Problem]) -> None:
    segs = scan.summary.segments
    for i, seg in enumerate(segs):
        if seg["terminated"]:
            continue
        loc = Location(file=seg["file"], segment=seg["index"], record=seg["records"])
        nxt = segs[i + 1] if i + 1 < len(segs) else None
        declared = (
            nxt is not None
            and nxt["kind"] == "recovery"
            and any(
                ev.get("type") == "incident" and ev.get("segment") == seg["index"]
                for ev in scan.summary.timeline
            )
        )
        if not declared:
            problems.append(
                Problem(
                    "segment has no END record and no signed incident declares "
                    "the loss (truncated or unfinished)",
                    loc,
                )
            )


def _untrusted(key: VerifyKey, given: bool) -> Problem:
    fp = fingerprint(key.raw)
    why = (
        "which is not among the trusted public keys given"
        if given
        else "and no trusted public key was given"
    )
    return Problem(
        f"signed by key {key.key_id} (Ed25519, SHA-256 fingerprint {fp}), {why}: pass the "
        "court's signing public key with --public-key FILE (repeatable) or --trust-dir DIR, or "
        "knowingly accept the key the package names itself with --trust-embedded-key",
        Location(file="recording.json"),
    )


def expected_incident(scan: PackageScan) -> dict[str, Any]:
    """The fields of a crash incident that follow from the kept records (recovery writes them,
    verify requires them). Version 1 packages predate the unauthenticated tail."""
    summary = scan.summary
    cp = summary.last_writer_checkpoint
    cp_time = iso(from_unix_us(cp[2])) if cp is not None else None
    writer_segments = [s for s in summary.segments if s["kind"] == "writer"]
    fields: dict[str, Any] = {
        "cause": "crash",
        "segment": writer_segments[-1]["index"] if writer_segments else -1,
        "last_checkpoint": cp_time,
        "records_kept": summary.writer_records,
    }
    if scan.version >= 2:
        fields["from"] = cp_time if cp_time is not None else scan.info.created_at
        fields["tail_records"] = summary.unvouched_records
        fields["tail_segment"] = summary.tail_from[0] if summary.tail_from else None
        fields["tail_record"] = summary.tail_from[1] if summary.tail_from else None
    return fields


def _check_recovery(scan: PackageScan, problems: list[Problem]) -> None:
    """A recovery segment holds exactly one crash incident whose numbers match the package."""
    segs = scan.summary.segments
    if not segs or segs[-1]["kind"] != "recovery":
        return
    loc = Location(file=segs[-1]["file"], segment=segs[-1]["index"], record=0)
    if len(scan.recovery_events) != 1 or scan.recovery_events[0].get("type") != "incident":
        problems.append(Problem("a recovery segment must hold exactly one incident event", loc))
        return
    event = scan.recovery_events[0]
    for key, value in expected_incident(scan).items():
        if event.get(key) != value:
            problems.append(
                Problem(
                    f"recovery incident states {key} = {event.get(key)!r}, the package has "
                    f"{value!r}",
                    loc,
                )
            )
            return


def verify_package(
    path: Path,
    public_keys: list[VerifyKey] | None = None,
    *,
    trust_embedded_key: bool = False,
    tsa: TsaTrust | None = None,
) -> Report:
    """Verify the package at `path` against the signing keys in `public_keys`.

    The package must be signed by one of `public_keys`; with none given it is reported as
    signed by an untrusted key (exit 1, verdict UNTRUSTED SIGNER) unless `trust_embedded_key`
    accepts the key `recording.json` names (integrity only: anyone can re-sign a package).
    Never raises for package content; I/O failures are reported as `io_error` (exit 3).
    `tsa`: the TSA certificates RFC 3161 tokens are checked against (without it, tokens are
    only matched to what they stamp, and reported unchecked)."""
    report = Report(path=str(path))
    info: RecordingInfo | None = None
    try:
        if not path.is_dir():
            report.io_error = f"{path} is not a directory"
            return report
        try:
            info = read_info(path)
        except FormatError as exc:
            report.problems.append(Problem(str(exc).split(": ", 1)[-1], exc.location))
            return report
        report.recording_id = info.recording_id
        report.signing_key_id = info.signing_key.key_id
        if public_keys and info.signing_key.raw in {k.raw for k in public_keys}:
            report.trust = TRUST_GIVEN
        elif public_keys:
            report.problems.append(_untrusted(info.signing_key, True))
            return report
        elif trust_embedded_key:
            report.trust = TRUST_EMBEDDED
            report.warnings.append(
                f"trusting the signing key the package names itself ({info.signing_key.key_id}):"
                " this proves the package is unaltered since signing, not who signed it"
            )
        else:
            # Still check everything (the report is useful), but the verdict cannot be INTACT.
            report.trust = TRUST_NONE
        mpath = path / "manifest.json"
        heads: dict[int, str] | None = None
        if mpath.exists():
            try:
                signed = open_manifest(mpath.read_bytes(), info.signing_key)
                if signed.get("recording_id") != info.recording_id:
                    report.problems.append(
                        Problem(
                            f"manifest belongs to recording {signed.get('recording_id')!r}",
                            Location(file="manifest.json"),
                        )
                    )
                    return report
                heads = {
                    int(s["index"]): str(s["chain_head"])
                    for s in signed.get("segments", [])
                    if isinstance(s, dict) and "index" in s and "chain_head" in s
                }
            except (FormatError, IntegrityError, ValueError, TypeError):
                heads = None  # reported below, after the content has been checked
        # Time-stamp tokens are checked (signatures, chains) while the segments are hashed.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-tsa") as tsa_pool:
            tokens = tsa_pool.submit(precheck_tokens, path, tsa)
            scan = scan_package(path, info, info.signing_key, expected_heads=heads)
            prechecked, token_error = _token_result(tokens)
        report.problems.extend(scan.problems)
        report.segments = len(scan.summary.segments)
        report.records = scan.summary.records
        report.checkpoints = scan.summary.checkpoints
        report.bytes = sum(s["bytes"] for s in scan.summary.segments)
        report.timeline = scan.summary.timeline
        if report.problems:
            return report
        _check_unterminated(scan, report.problems)
        _check_recovery(scan, report.problems)
        if report.problems:
            return report
        if not mpath.exists():
            report.problems.append(
                Problem(
                    "not sealed: manifest.json is missing (unfinished recording; run recovery)",
                    Location(file="manifest.json"),
                )
            )
            return report
        try:
            stated = open_manifest(mpath.read_bytes(), info.signing_key)
        except (FormatError, IntegrityError) as exc:
            report.problems.append(
                Problem(str(exc).split(": ", 1)[-1], Location(file="manifest.json"))
            )
            return report
        computed = scan.summary.manifest_payload(
            info, status=str(stated.get("status")), sealed_at="", root_hash=scan.chain
        )
        diff = compare_manifest(stated, computed)
        if diff is not None:
            report.problems.append(
                Problem(
                    f"manifest disagrees with the package: {diff}", Location(file="manifest.json")
                )
            )
            return report
        if stated.get("status") not in ("complete", "recovered", "failed"):
            report.problems.append(
                Problem(f"unknown status {stated.get('status')!r}", Location(file="manifest.json"))
            )
        elif (stated.get("status") == "recovered") != (
            bool(scan.summary.segments) and scan.summary.segments[-1]["kind"] == "recovery"
        ):
            report.problems.append(
                Problem(
                    f"status {stated.get('status')!r} does not fit the package "
                    "(status 'recovered' if and only if the last segment is a recovery segment)",
                    Location(file="manifest.json"),
                )
            )
        report.status = str(stated["status"])
        report.root_hash = scan.chain.hex()
        report.gaps = computed["gaps"]
        if token_error is not None:
            report.io_error = token_error
            return report
        _verify_anchors(path, scan, mpath.read_bytes(), tsa, prechecked, report)
    except OSError as exc:
        report.io_error = f"{exc.filename or path}: {exc.strerror or exc}"
    except RecordingError as exc:  # pragma: no cover - defensive: content errors are problems
        report.problems.append(Problem(str(exc), Location()))
    finally:
        if info is not None:
            _check_package(path, info, report)
    return report


def _check_package(path: Path, info: RecordingInfo, report: Report) -> None:
    """What is checked whatever the content showed: keys.json, unknown files, and the verdict
    on an untrusted signer (last, so that the content checks above ran in full)."""
    try:
        _check_keys(path, info, report.problems, report.warnings)
        _find_unknown_files(path, report)
    except OSError as exc:
        report.io_error = report.io_error or f"{exc.filename or path}: {exc.strerror or exc}"
    if report.trust == TRUST_NONE:
        report.problems.insert(0, _untrusted(info.signing_key, False))


WRAPPED_DEK_LEN = 32 + cv.TAG_LEN
# What a package holds besides segments/NNNNNN.cevr and its time anchors (docs/
# recording-format.md §2, §12).
PACKAGE_FILES = frozenset(
    {"recording.json", "keys.json", "manifest.json", "segments", timestamps.DIRECTORY}
)
ANCHOR_FILE_RE = re.compile(r"^(policy\.json|missing\.json|manifest\.tsr|cp-[0-9]{6}\.tsr)$")


def _find_unknown_files(path: Path, report: Report) -> None:
    """List every file the format does not define (leftovers, copies, extra files): they are
    outside the evidence, so they do not change the verdict, but they must not pass silently.
    A `*.torn` file named by the recovery incident (`torn_file`) is defined. Raises OSError."""
    declared = {ev.get("torn_file") for ev in report.timeline if ev.get("type") == "incident"}
    found: list[str] = []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        if rel in PACKAGE_FILES or rel in declared:
            continue
        if p.parent == path / "segments" and SEGMENT_RE.match(p.name) and p.is_file():
            continue
        if p.parent == path / timestamps.DIRECTORY and ANCHOR_FILE_RE.match(p.name):
            continue
        if p.is_dir() and any(True for _ in p.iterdir()):
            continue  # its files are listed themselves
        found.append(rel)
    report.unknown_files = found
    for rel in found:
        report.warnings.append(f"unknown file {rel}: not part of the evidence, not verified")


def _check_keys(
    path: Path, info: RecordingInfo, problems: list[Problem], warnings: list[str]
) -> None:
    """keys.json is outside the chain (keys can be re-wrapped), but a package nobody can
    decrypt is not intact: it must name this recording and hold one well-formed stanza for
    every recipient recording.json names. Stanzas for other keys (a re-wrap for a new archive
    key) are allowed and reported; only `export` can check that a stanza opens (dek_commit).
    Raises OSError (other than a missing file)."""
    loc = Location(file="keys.json")
    try:
        raw = (path / "keys.json").read_bytes()
    except FileNotFoundError:
        problems.append(Problem("keys.json is missing: nobody can decrypt the recording", loc))
        return
    try:
        key_rid, stanzas = parse_keys_json(raw)
    except FormatError as exc:
        problems.append(Problem(f"keys.json is damaged: {str(exc).split(': ', 1)[-1]}", loc))
        return
    if key_rid != info.recording_id:
        problems.append(Problem(f"keys.json belongs to recording {key_rid!r} (swapped)", loc))
        return
    ids = [s.recipient_key_id for s in stanzas]
    for s in stanzas:
        if len(s.ephemeral_public) != 32 or len(s.wrapped) != WRAPPED_DEK_LEN:
            problems.append(Problem(f"keys.json: stanza for {s.recipient_key_id} is damaged", loc))
            return
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(Problem(f"keys.json: more than one stanza for {duplicates}", loc))
        return
    missing = [r for r in info.recipients if r not in ids]
    if missing:
        problems.append(
            Problem(
                "keys.json has no wrapped data key for recipient(s) "
                f"{', '.join(missing)} named in recording.json",
                loc,
            )
        )
        return
    extra = [i for i in ids if i not in info.recipients]
    if extra:
        warnings.append(
            f"keys.json also wraps the data key for {', '.join(extra)} (not named in "
            "recording.json: a re-wrap; export proves it by the data-key commitment)"
        )


def _token_result(
    future: Future[dict[str, CheckedToken]],
) -> tuple[dict[str, CheckedToken], str | None]:
    """The precheck's tokens, or the reason they cannot be checked (a usage/I-O error)."""
    try:
        return future.result(), None
    except FormatError as exc:
        return {}, str(exc)
    except OSError as exc:
        return {}, f"{exc.filename}: {exc.strerror or exc}"


def _verify_anchors(
    path: Path,
    scan: PackageScan,
    manifest_raw: bytes,
    tsa: TsaTrust | None,
    prechecked: dict[str, CheckedToken],
    report: Report,
) -> None:
    """RFC 3161 anchors (recordings/timestamps.py): a token that does not verify is
    tampering; anchors missing (declared or not) are warnings, since the chain and signatures
    still prove integrity, only not the time."""
    parts: list[StampedPart] = []
    for seg_file, seg in scan.scans:
        for rec in seg.records:
            if rec.header.type is cv.RecordType.CHECKPOINT:
                seq = loads(rec.body[:-SIG_LEN], "checkpoint").get("seq")
                if isinstance(seq, int):
                    parts.append(
                        StampedPart(
                            seq, int(seg_file.name[:6]), rec.header.counter, bytes(rec.body)
                        )
                    )
    try:
        anchors = check_anchors(path, parts, manifest_raw, tsa, prechecked)
    except FormatError as exc:
        report.io_error = str(exc)
        return
    report.anchors = anchors
    for message, file in anchors.problems:
        report.problems.append(Problem(message, Location(file=file)))
    if not anchors.present:
        if tsa is not None:
            report.warnings.append("no RFC 3161 time-stamp tokens: the recording is not anchored")
        return
    if anchors.unchecked:
        report.warnings.append(
            f"{anchors.unchecked} time-stamp tokens not checked: pass the TSA's CA certificate "
            "with --tsa-ca"
        )
    for m in anchors.declared_missing:
        what = "manifest" if m.get("seq") is None else f"checkpoint {m.get('seq')}"
        report.warnings.append(
            f"time anchor of the {what} declared missing ({m.get('reason')}); it is covered by "
            "a later anchor if there is one"
        )
    for name in anchors.undeclared_missing:
        report.warnings.append(f"time anchor timestamps/{name} missing and not declared")


def load_manifest_unverified(path: Path) -> dict[str, Any]:
    """The manifest envelope as JSON, for display only (no signature check)."""
    return loads((path / "manifest.json").read_bytes(), "manifest.json")
