"""Station backup recordings received from the stations, kept with the court's recordings.

A station uploads its sealed backup package file by file (`PUT .../files/{name}`), then asks
the court to take it (`POST .../receipt`). `GET .../files` lists what has arrived with each
file's SHA-256, so a station whose line dropped mid-upload sends only what is missing or
different. Design:

- Only the package's own file names are accepted (`recording.json`, `keys.json`,
  `manifest.json`, `NNNNNN.cevr` for `segments/NNNNNN.cevr`), each bounded in size, streamed
  to disk off the event loop and renamed into place when complete, so a half-received file is
  never mistaken for a whole one. Until the receipt, a file may be sent again.
- The receipt verifies the package against the key the station registered for it (the
  hearing's event log holds it), never against a key inside the upload. Only an intact package
  (verify exit 0, or 2: declared gaps) is taken: it moves from `.incoming/` to
  `data_dir/station-backups/<recording id>/` and is never written again. A package that fails
  verification stays in `.incoming/` for the station to send again, and the court learns why.
- The court cannot decrypt it either: like the court's recordings it is sealed for the archive
  keys (and the playback key, when the court has one).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from recordings import Report, VerifyKey, verify_package
from recordings.fsio import file_sha256, fsync_dir
from server.errors import CourtError, ErrorCode
from server.ids import RecordingId

log = logging.getLogger(__name__)

FILE_NAME = re.compile(r"^(recording\.json|keys\.json|manifest\.json|[0-9]{6}\.cevr)$")
MAX_JSON_BYTES = 1024 * 1024
MAX_SEGMENT_BYTES = 128 * 1024 * 1024  # the writer rotates segments at 64 MiB
# A whole package: ~0.7 Mbit/s of picture and sound is ~3.2 GB in 10 hours; a station cannot
# fill the court's disk beyond this per backup (and a hearing takes at most 50 backups).
MAX_PACKAGE_BYTES = 16 * 1024 * 1024 * 1024
INCOMING = ".incoming"
# An upload left unfinished this long is dropped (the station keeps its copy and its next
# attempt sends every file again).
INCOMING_TTL_S = 30 * 24 * 3600


class StationBackupStore:
    """Files under `root` (data_dir/station-backups); see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def package(self, recording_id: RecordingId) -> Path:
        return self.root / recording_id

    def _incoming(self, recording_id: RecordingId) -> Path:
        return self.root / INCOMING / recording_id

    async def received(self, recording_id: RecordingId) -> bool:
        return await asyncio.to_thread(self.package(recording_id).is_dir)

    async def store_file(
        self, recording_id: RecordingId, name: str, chunks: AsyncIterator[bytes]
    ) -> int:
        """Write one file of the package from `chunks`; returns its size. Raises CourtError
        BAD_FIELD (not a package file name), TOO_LARGE."""
        if not FILE_NAME.match(name):
            raise CourtError(
                ErrorCode.BAD_FIELD,
                "not a file of a recording package: send recording.json, keys.json, "
                "manifest.json or NNNNNN.cevr",
                field="name",
            )
        directory = self._incoming(recording_id)
        target = directory / ("segments/" + name if name.endswith(".cevr") else name)
        partial = target.with_name(target.name + ".part")
        room = MAX_PACKAGE_BYTES - await asyncio.to_thread(_stored_bytes, directory, target)
        limit = min(MAX_SEGMENT_BYTES if name.endswith(".cevr") else MAX_JSON_BYTES, room)
        handle = await asyncio.to_thread(_open_new, partial)
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise CourtError(
                        ErrorCode.TOO_LARGE,
                        f"{name} would exceed {limit} bytes (a file, or what is left of "
                        f"{MAX_PACKAGE_BYTES} for the whole package)",
                        limit=limit,
                    )
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(_close_synced, handle)
        except BaseException:
            await asyncio.to_thread(_discard, handle, partial)
            raise
        await asyncio.to_thread(os.replace, partial, target)
        return size

    def sweep_incoming(self, now: float, max_age_s: float = INCOMING_TTL_S) -> list[str]:
        """Drop uploads nothing was sent to for `max_age_s` (at start-up); returns their ids.
        Blocks (file system): call through `asyncio.to_thread`."""
        incoming = self.root / INCOMING
        if not incoming.is_dir():
            return []
        dropped = []
        for upload in incoming.iterdir():
            times = [p.stat().st_mtime for p in upload.rglob("*")] + [upload.stat().st_mtime]
            if now - max(times) >= max_age_s:
                shutil.rmtree(upload, ignore_errors=True)
                dropped.append(upload.name)
                log.info("unfinished station backup upload %s dropped (stale)", upload.name)
        return dropped

    async def stored_files(self, recording_id: RecordingId) -> dict[str, str]:
        """The files of an upload in progress, by the name they were sent under, with their
        SHA-256 (hex): what a station resuming an upload need not send again."""
        return await asyncio.to_thread(self._stored_files, recording_id)

    def _stored_files(self, recording_id: RecordingId) -> dict[str, str]:
        directory = self._incoming(recording_id)
        if not directory.is_dir():
            return {}
        found = {}
        for path in sorted(directory.rglob("*")):
            if path.is_file() and FILE_NAME.match(path.name):
                found[path.name] = file_sha256(path)
        return found

    async def accept(self, recording_id: RecordingId, key: VerifyKey) -> Report:
        """Verify the uploaded package against `key`; if intact (exit 0 or 2) it becomes the
        kept copy. Returns the report either way. Raises CourtError CONFLICT (already taken),
        NOT_FOUND (nothing uploaded)."""
        return await asyncio.to_thread(self._accept, recording_id, key)

    def _accept(self, recording_id: RecordingId, key: VerifyKey) -> Report:
        final = self.package(recording_id)
        if final.exists():
            raise CourtError(ErrorCode.CONFLICT, "this backup recording was already received")
        incoming = self._incoming(recording_id)
        if not incoming.is_dir():
            raise CourtError(ErrorCode.NOT_FOUND, "no file of this backup recording was sent")
        report = verify_package(incoming, [key])
        if report.exit_code in (0, 2):
            os.replace(incoming, final)
            fsync_dir(self.root)
            log.info("station backup %s received (%s)", recording_id, report.status)
        return report


def _stored_bytes(directory: Path, replaced: Path) -> int:
    """Bytes already sent for a package, but for the file about to be replaced."""
    if not directory.is_dir():
        return 0
    return sum(
        p.stat().st_size
        for p in directory.rglob("*")
        if p.is_file() and p != replaced and not p.name.endswith(".part")
    )


def _open_new(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


def _close_synced(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _discard(handle: BinaryIO, path: Path) -> None:
    handle.close()
    path.unlink(missing_ok=True)


__all__ = [
    "FILE_NAME",
    "MAX_JSON_BYTES",
    "MAX_PACKAGE_BYTES",
    "MAX_SEGMENT_BYTES",
    "StationBackupStore",
]
