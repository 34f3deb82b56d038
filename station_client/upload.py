"""Sending the station's sealed backup recordings to the court.

A sealed package is sent file by file (`PUT /api/hearings/{id}/station-backups/{rid}/files/
{name}`: recording.json, keys.json, each segment, manifest.json last), then the court is asked
to take it (`POST .../receipt`), which it does only if the package verifies against the key the
station registered. An upload the line cut short is resumed: the court lists what it holds
(`GET .../files`, with SHA-256s) and only what is missing or different is sent again.
The court's answer is kept next to the package as `<rid>.received.json`; a package without one
is sent at the next chance (the end of the next hearing, or `shared-court station send`), so a
village line that drops mid-upload costs what was not yet sent, never the recording. Files
are read off the event loop and streamed (chunked), never held in memory.

This module holds what is about the packages on the station's disk (which are pending, their
files in sending order, the receipts) and the order of an upload; the HTTP calls themselves
are station_client.court_api's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recordings import RecordingError
from recordings.fsio import file_sha256
from recordings.verify import read_info

from .court_api import CourtApi

log = logging.getLogger(__name__)

RECEIPT_SUFFIX = ".received.json"
CHUNK = 1 << 16


@dataclass(frozen=True)
class Pending:
    """A sealed backup the court has not confirmed receiving."""

    path: Path
    recording_id: str
    hearing_id: str
    size: int


def pending_uploads(root: Path) -> list[Pending]:
    """Sealed packages under `root` with no receipt, oldest first. Blocks (reads the disk)."""
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if not (path / "manifest.json").is_file() or receipt_path(path).exists():
            continue
        try:
            info = read_info(path)
        except (RecordingError, OSError) as exc:
            log.warning("backup %s is unreadable, not sent: %s", path, exc)
            continue
        hearing_id = str(info.metadata.get("hearing_id", ""))
        if not hearing_id:
            continue
        size = sum(f.stat().st_size for _, f in package_files(path))
        found.append(Pending(path, str(info.recording_id), hearing_id, size))
    return sorted(found, key=lambda p: p.path.stat().st_mtime)


def receipt_path(package: Path) -> Path:
    return package.with_name(package.name + RECEIPT_SUFFIX)


def package_files(package: Path) -> list[tuple[str, Path]]:
    """(name to send, file) in sending order: headers, segments, the manifest last (so a
    package is never complete on the court's side before all its records are)."""
    files = [("recording.json", package / "recording.json"), ("keys.json", package / "keys.json")]
    segments = sorted((package / "segments").glob("[0-9][0-9][0-9][0-9][0-9][0-9].cevr"))
    files += [(s.name, s) for s in segments]
    files.append(("manifest.json", package / "manifest.json"))
    return files


async def _chunks(file: Path, sent: Callable[[int], None]) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(file.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            sent(len(chunk))
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


async def upload_backup(
    api: CourtApi,
    pending: Pending,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Send one sealed package and have the court take it; returns the court's receipt (also
    written next to the package). Raises UploadError (refused), aiohttp.ClientError / OSError
    (the line or the disk: try again later)."""
    hearing_id, recording_id = pending.hearing_id, pending.recording_id
    done = 0

    def sent(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None and pending.size:
            progress(min(1.0, done / pending.size))

    there = await api.backup_files(hearing_id, recording_id)
    skipped = 0
    for name, file in await asyncio.to_thread(package_files, pending.path):
        if name in there and await asyncio.to_thread(file_sha256, file) == there[name]:
            # Arrived whole before the line dropped: not sent again.
            skipped += 1
            sent((await asyncio.to_thread(file.stat)).st_size)
            continue
        if not await api.put_backup_file(hearing_id, recording_id, name, _chunks(file, sent)):
            break  # the court has taken the package already
    receipt = await api.receive_backup(hearing_id, recording_id)
    await asyncio.to_thread(
        receipt_path(pending.path).write_text, json.dumps(receipt, sort_keys=True), "utf-8"
    )
    log.info(
        "backup %s received by the court (%d files were there already)",
        pending.recording_id,
        skipped,
    )
    receipt["files_already_there"] = skipped
    return receipt
