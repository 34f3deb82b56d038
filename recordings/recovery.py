"""Start-up recovery: seal every unfinished recording with a signed incident.

Design (the "nothing silently lost" contract, research notes §6.4):
- A recording is unfinished when `recording.json` exists and `manifest.json` does not. Recovery
  is driven by this durable state only, never by in-memory "meeting ended" flags (the
  BigBlueButton failure mode).
- Recovery holds the signing key but not the data key, and whoever could write the directory
  between the crash and the restart may have edited it. So recovery never states as a fact what
  no writer checkpoint vouches for: it keeps every record that frames correctly and continues
  the hash chain, verifying every signed checkpoint on the way, but the records after the last
  writer checkpoint (at most ~2 s of a genuine crash) are the *unauthenticated tail*: preserved
  in the chain, declared in the incident (`tail_*`), left out of the manifest's timeline and
  streams, and the declared gap starts at the last checkpoint. Only a key holder can check them
  (their GCM tags; `export` does). A torn tail (an incomplete record being written at the crash)
  is cut off; its length and SHA-256 are stated in the incident. A segment file too short to
  hold a header is renamed `*.torn` (it holds no evidence).
- The writer's segment is never reopened (its nonces would repeat); recovery appends a new
  RECOVERY segment (no media, no encryption) holding an INCIDENT event naming the gap from the
  last record written to the time of recovery, a checkpoint and an END record, then writes the
  manifest with status "recovered". `verify` then exits 2 (intact with declared gaps).
- A package that was sealed completely but lost only its manifest (its last segment ends with
  the writer's final checkpoint and END, after `recording_stopped`, or after a disk-full
  incident) is re-sealed with its own status (`complete` / `failed`), without an incident:
  nothing was lost.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from . import container as cv
from .clock import Clock, SystemClock, from_unix_us, iso, unix_us
from .errors import FormatError, IntegrityError, KeyFileError, Location
from .fsio import atomic_write, fsync_dir
from .keys import SigningKey
from .manifest import VERSION, dumps, sign_checkpoint, sign_manifest
from .timeline import IncidentCause
from .timestamps import TsaConfig, anchor_recovered
from .verify import PackageScan, expected_incident, read_info, scan_package, segment_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecoveryResult:
    path: Path
    recording_id: str
    torn_tail_bytes: int
    records_kept: int
    gap_from: str
    gap_to: str
    status: str = "recovered"
    unauthenticated_records: int = 0


def find_unfinished(root: Path) -> list[Path]:
    """Recording directories under `root` (or `root` itself) that have no manifest."""
    candidates = (
        [root]
        if (root / "recording.json").exists()
        else sorted(p for p in root.iterdir() if p.is_dir())
    )
    return [
        p
        for p in candidates
        if (p / "recording.json").exists() and not (p / "manifest.json").exists()
    ]


def recover(
    root: Path,
    signing_key: SigningKey,
    *,
    clock: Clock | None = None,
    tsa: TsaConfig | None = None,
) -> list[RecoveryResult]:
    """Seal every unfinished recording under `root` (a recordings root or one package).

    A package that cannot be recovered (tampered before the tail, wrong key) is logged and
    skipped so one bad package does not block the others; call `recover_recording` to get its
    exception. Raises OSError if `root` cannot be listed.
    """
    results: list[RecoveryResult] = []
    for path in find_unfinished(root):
        try:
            results.append(recover_recording(path, signing_key, clock=clock, tsa=tsa))
        except (OSError, FormatError, IntegrityError, KeyFileError):
            log.exception("cannot recover recording at %s", path)
    return results


def recover_recording(
    path: Path,
    signing_key: SigningKey,
    *,
    clock: Clock | None = None,
    tsa: TsaConfig | None = None,
) -> RecoveryResult:
    """Seal one unfinished recording. With `tsa`, a recording that was being anchored gets
    the anchors of what recovery signs (its checkpoint, its manifest; timestamps.py).
    Raises KeyFileError (signing key is not the recording's), IntegrityError (damage before
    the tail: not a crash), FormatError, OSError."""
    clk = clock or SystemClock()
    info = read_info(path)
    if info.signing_key.key_id != signing_key.key_id:
        raise KeyFileError(
            f"recording {info.recording_id} was signed by key "
            f"{info.signing_key.key_id}, not {signing_key.key_id}"
        )
    if (path / "manifest.json").exists():
        raise FormatError("recording is already sealed", Location(file="manifest.json"))
    seg_dir = path / "segments"
    files, _ = segment_files(path)
    torn_file: str | None = None
    # A last segment that crashed before its header was complete holds no evidence.
    if files and files[-1].stat().st_size < cv.HEADER_LEN:
        renamed = files[-1].with_name(files[-1].name + ".torn")
        os.replace(files[-1], renamed)
        fsync_dir(seg_dir)
        files = files[:-1]
        torn_file = f"segments/{renamed.name}"
    scan = scan_package(path, info, signing_key.verify_key, stop_at_tail=True)
    if scan.problems:
        p = scan.problems[0]
        raise IntegrityError(f"cannot recover: {p.message}", p.location)
    sealed_status = _sealed_status(scan) if torn_file is None else None
    if sealed_status is not None:
        now_iso = iso(clk.now())
        payload = scan.summary.manifest_payload(
            info, status=sealed_status, sealed_at=now_iso, root_hash=scan.chain
        )
        manifest_raw = sign_manifest(payload, signing_key)
        atomic_write(path / "manifest.json", manifest_raw)
        if tsa is not None:
            anchor_recovered(path, info.recording_id, tsa, None, manifest_raw)
        log.warning(
            "recording %s had lost only its manifest: re-sealed as %s",
            info.recording_id,
            sealed_status,
        )
        return RecoveryResult(
            path, info.recording_id, 0, scan.summary.records, now_iso, now_iso, sealed_status
        )
    torn = 0
    torn_sha = hashlib.sha256(b"").hexdigest()
    last_index = -1
    summary = scan.summary
    if scan.scans:
        file, last = scan.scans[-1]
        last_index = last.header.segment_index
        if not last.terminated:
            size = file.stat().st_size
            if size > last.end_offset:
                with file.open("rb") as f:
                    f.seek(last.end_offset)
                    tail = f.read()
                torn = len(tail)
                torn_sha = hashlib.sha256(tail).hexdigest()
                fd = os.open(file, os.O_WRONLY)
                try:
                    os.ftruncate(fd, last.end_offset)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                log.warning(
                    "recording %s: cut %d torn bytes from %s", info.recording_id, torn, file.name
                )
            if not summary.segments or summary.segments[-1]["index"] != last_index:
                summary.end_segment(
                    last_index,
                    int(last.header.kind),
                    len(last.records),
                    last.end_offset,
                    scan.chain,
                    False,
                )
    now = clk.now()
    fields = expected_incident(scan)
    last_us = summary.last_record_time_us
    # The gap starts where the last writer checkpoint vouches (version 2); version 1 packages
    # keep their original rule (the last kept record).
    gap_from = str(
        fields.get("from")
        or (iso(from_unix_us(last_us)) if last_us is not None else info.created_at)
    )
    chain = scan.chain
    index = last_index + 1
    rid = cv.recording_id_bytes(info.recording_id)
    summary.begin_segment(index, int(cv.SegmentKind.RECOVERY), scan.version)
    header = cv.SegmentHeader(
        scan.version,
        cv.SUITE_AES256GCM_SHA256,
        cv.SegmentKind.RECOVERY,
        rid,
        index,
        bytes(7),
        bytes(32),
        info.dek_commit,
        chain,
    )
    raw_header = header.pack()
    chain = cv.chain_header(chain, raw_header)
    out = bytearray(raw_header)
    counter = 0
    time_us = unix_us(now)

    def add(rtype: cv.RecordType, body: bytes, flags: int = 0) -> None:
        nonlocal chain, counter
        rh = cv.RecordHeader(rtype, flags, 0, counter, time_us, len(body)).pack()
        out.extend(rh + body)
        chain = cv.chain_record(chain, rh, body)
        summary.add_record(int(rtype), 0, body, chain, time_us, counter)
        counter += 1

    incident = {
        **fields,
        "v": VERSION,
        "type": "incident",
        "time": iso(now),
        "cause": IncidentCause.CRASH.value,
        "from": gap_from,
        "to": iso(now),
        "torn_tail_bytes": torn,
        "torn_tail_sha256": torn_sha,
        "torn_file": torn_file,
    }
    add(cv.RecordType.EVENT, dumps(incident))
    checkpoint_seq = summary.checkpoints
    cp = {
        "v": VERSION,
        "recording_id": info.recording_id,
        "seq": checkpoint_seq,
        "segment": index,
        "record": counter,
        "chain": chain.hex(),
        "time": iso(now),
        "records": summary.records,
    }
    checkpoint_body = sign_checkpoint(cp, signing_key)
    add(cv.RecordType.CHECKPOINT, checkpoint_body)
    add(cv.RecordType.END, b"", cv.FLAG_LAST)
    summary.end_segment(index, int(cv.SegmentKind.RECOVERY), counter, len(out), chain, True)
    seg_path = seg_dir / cv.segment_name(index)
    fd = os.open(seg_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        os.write(fd, bytes(out))
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(seg_dir)
    payload = summary.manifest_payload(
        info, status="recovered", sealed_at=iso(now), root_hash=chain
    )
    manifest_raw = sign_manifest(payload, signing_key)
    atomic_write(path / "manifest.json", manifest_raw)
    if tsa is not None:
        anchor_recovered(
            path, info.recording_id, tsa, (checkpoint_seq, checkpoint_body), manifest_raw
        )
    log.warning(
        "recording %s recovered: gap %s .. %s, %d torn bytes",
        info.recording_id,
        gap_from,
        iso(now),
        torn,
    )
    return RecoveryResult(
        path,
        info.recording_id,
        torn,
        summary.writer_records,
        gap_from,
        iso(now),
        "recovered",
        summary.tail_records,
    )


def _sealed_status(scan: PackageScan) -> str | None:
    """`complete` or `failed` when the writer finished sealing and only the manifest is
    missing: every segment terminated, the last one ending with the final checkpoint and END,
    and the last vouched event the writer's last word (recording_stopped, or the disk-full /
    I/O incident it seals a failed package with). None for a crash."""
    if not scan.scans or not all(s.terminated and not s.torn_tail for _, s in scan.scans):
        return None
    records = scan.scans[-1][1].records
    types = [r.header.type for r in records[-2:]]
    if types != [cv.RecordType.CHECKPOINT, cv.RecordType.END] or not scan.summary.timeline:
        return None
    last = scan.summary.timeline[-1]
    if last.get("type") == "recording_stopped":
        return "complete"
    if last.get("type") == "incident" and last.get("cause") in ("disk_full", "io_error"):
        return "failed"
    return None
