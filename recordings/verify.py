"""Offline verification of an evidence package, without the decryption key.

What is checked (docs/recording-format.md §Verification):
1. `recording.json` parses with a known version; its signing key is pinned (if keys are given).
2. Segments `segments/000000.cevr ...` are contiguous; each header names this recording, its own
   index, the recording's DEK commitment and the chain head at which it starts; framing is
   strict (counters consecutive, flags, bounded lengths, END last, nothing after END).
3. The SHA-256 hash chain is recomputed over every header and record byte; every checkpoint's
   Ed25519 signature is valid and commits to the chain head at its position.
4. `manifest.json` is a DSSE envelope signed by the recording's key, and every field it states
   (segments, chain heads, root hash, streams and their digests, timeline, gaps, counts) equals
   what was recomputed.
5. Only the last writer segment may be unterminated, and only if a RECOVERY segment follows
   whose signed incident names it.
6. RFC 3161 tokens in `timestamps/` (timestamps.py): each stamps exactly its checkpoint or the
   manifest and, given TSA certificates, verifies; a bad one is tampering, a missing one a
   warning. The report says when each stamped part is proven to have existed.

Result: exit 0 intact; 2 intact with declared gaps (network gaps, incidents); 1 tampered or
silently incomplete; 3 usage or I/O error. Every problem carries a `Location`.

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
from .errors import FormatError, IntegrityError, Location, RecordingError
from .keys import VerifyKey
from .manifest import (
    SIG_LEN,
    PackageSummary,
    RecordingInfo,
    compare_manifest,
    loads,
    open_checkpoint,
    open_manifest,
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
            "root_hash": self.root_hash,
            "segments": self.segments,
            "records": self.records,
            "bytes": self.bytes,
            "checkpoints": self.checkpoints,
            "gaps": self.gaps,
            "warnings": self.warnings,
            "problems": [p.as_json() for p in self.problems],
            "io_error": self.io_error,
            "time_anchors": self.anchors.as_json() if self.anchors is not None else None,
        }

    def text(self) -> str:
        lines = [f"{self.path}: {self.verdict}"]
        if self.recording_id:
            lines.append(
                f"  recording {self.recording_id}, status {self.status}, "
                f"signed by key {self.signing_key_id}"
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
        scans.append((file, scan))
        prev = cv.chain_header(chain, bytes(data[: cv.HEADER_LEN]))
        broken = False
        for rec in scan.records:
            rloc = Location(file=rel, segment=index, record=rec.header.counter, offset=rec.offset)
            rt = rec.header.type
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
            if rt is cv.RecordType.MEDIA and h.kind is cv.SegmentKind.RECOVERY:
                problems.append(Problem("media record in a recovery segment", rloc))
                broken = True
                break
            if rt is cv.RecordType.END and h.kind is cv.SegmentKind.RECOVERY and rec.body:
                problems.append(Problem("recovery END record must be empty", rloc))
                broken = True
                break
            try:
                summary.add_record(
                    int(rt), rec.header.stream_id, rec.body, rec.chain, rec.header.time_us
                )
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
            problems.append(
                Problem(
                    "segment content differs from the signed manifest (chain head mismatch); the "
                    f"alteration lies in records {first}..{len(scan.records) - 1}"
                    + (" (after the last valid checkpoint)" if cps else " or the segment header"),
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
    return PackageScan(info, summary, chain, scans, problems, last_cp)


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


def verify_package(
    path: Path, public_keys: list[VerifyKey] | None = None, *, tsa: TsaTrust | None = None
) -> Report:
    """Verify the package at `path`. Never raises for package content; I/O failures are
    reported as `io_error` (exit 3). `tsa`: the TSA certificates RFC 3161 tokens are checked
    against (without it, tokens are only matched to what they stamp, and reported unchecked)."""
    report = Report(path=str(path))
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
        if public_keys:
            if info.signing_key.key_id not in {k.key_id for k in public_keys}:
                report.problems.append(
                    Problem(
                        f"signed by key {info.signing_key.key_id}, which is not among the trusted "
                        "public keys given",
                        Location(file="recording.json"),
                    )
                )
                return report
        else:
            report.warnings.append(
                "no --public-key given: trusting the signing key recorded in "
                f"recording.json ({info.signing_key.key_id})"
            )
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
    return report


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
