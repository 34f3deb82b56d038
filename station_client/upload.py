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
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from recordings import RecordingError
from recordings.fsio import file_sha256
from recordings.verify import read_info

log = logging.getLogger(__name__)

RECEIPT_SUFFIX = ".received.json"
CHUNK = 1 << 16


class UploadError(Exception):
    """The court refused the package (the message says why); sending it again will not help
    until that is fixed."""


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
    http: aiohttp.ClientSession,
    server: str,
    cookies: dict[str, str],
    pending: Pending,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Send one sealed package and have the court take it; returns the court's receipt (also
    written next to the package). Raises UploadError (refused), aiohttp.ClientError / OSError
    (the line or the disk: try again later)."""
    base = (
        f"{server.rstrip('/')}/api/hearings/{pending.hearing_id}"
        f"/station-backups/{pending.recording_id}"
    )
    headers = {"X-CSRF-Token": cookies.get("sc_csrf", "")}
    done = 0

    def sent(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None and pending.size:
            progress(min(1.0, done / pending.size))

    async with http.get(f"{base}/files", headers=headers, cookies=cookies) as resp:
        listing: dict[str, Any] = await resp.json(content_type=None)
        there: dict[str, str] = listing.get("files", {}) if resp.status == 200 else {}
    skipped = 0
    for name, file in await asyncio.to_thread(package_files, pending.path):
        if name in there and await asyncio.to_thread(file_sha256, file) == there[name]:
            # Arrived whole before the line dropped: not sent again.
            skipped += 1
            sent((await asyncio.to_thread(file.stat)).st_size)
            continue
        async with http.put(
            f"{base}/files/{name}", data=_chunks(file, sent), headers=headers, cookies=cookies
        ) as resp:
            if resp.status != 204:
                body = await resp.json(content_type=None)
                if resp.status == 409:  # the court already has it: nothing more to send
                    break
                raise UploadError(f"the court refused {name}: {body.get('message')}")
    async with http.post(f"{base}/receipt", headers=headers, cookies=cookies) as resp:
        receipt: dict[str, Any] = await resp.json(content_type=None)
        if resp.status == 409:  # received before (a receipt lost with a dropped line)
            receipt = {"recording_id": pending.recording_id, "received": True}
        elif resp.status != 201:
            problems = "; ".join(receipt.get("problems") or [str(receipt.get("message"))])
            raise UploadError(f"the court did not take backup {pending.recording_id}: {problems}")
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
