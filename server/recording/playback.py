"""Playback of sealed recordings for presiding staff, in the browser.

Design (issue 5, point 8; evidence research §1.6, "hot playback key"):
- The server never holds an archive key. An optional *playback key* (X25519,
  `recording.playback_key_file`) is one more recipient of every new recording, so the server
  can decrypt the recordings it made for the court's staff. Removing the playback stanza from a
  package's `keys.json` (outside the evidence chain) ends that without touching the evidence;
  an archive key holder can always `shared-court export`.
- Preparing a recording is `recordings.export_package` in a worker thread: verify against the
  server's own signing key, then decrypt and remux (never re-encode) each participant stream
  into a seekable WebM in a private cache directory, served with HTTP range requests so the
  browser can seek. The verification report and the signed timeline come back whether or not
  the media can be decrypted; media of a package that fails verification is never decrypted.
- Plaintext at rest is the price of seekable playback: the cache directory is 0700, a copy is
  deleted when unused for `playback_cache_ttl_s`, and the whole cache at every start-up.
- One preparation per recording at a time; concurrent requests share it. Progress (bytes of
  segments processed) is polled by the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from recordings import (
    ArchivePrivateKey,
    ExportedStream,
    RecordingError,
    VerifyKey,
    export_package,
    verify_package,
)
from recordings.manifest import loads, unb64
from recordings.verify import (
    EXIT_TAMPERED,
    EXIT_USAGE,
    Report,
    load_manifest_unverified,
    read_info,
    segment_files,
)
from server.clock import Clock
from server.errors import CourtError, ErrorCode
from server.ids import HearingId, RecordingId, parse_id

log = logging.getLogger(__name__)


class PlaybackStatus(StrEnum):
    PREPARING = "preparing"
    READY = "ready"
    FAILED = "failed"


class RecordingState(StrEnum):
    """What a package on disk is: still being written, or sealed with a manifest status."""

    RECORDING = "recording"
    COMPLETE = "complete"
    RECOVERED = "recovered"
    FAILED = "failed"


class MediaUnavailable(StrEnum):
    """Why a prepared recording has no media to play (its timeline and badge still show)."""

    NO_PLAYBACK_KEY = "NO_PLAYBACK_KEY"  # the server has no playback key configured
    NOT_A_RECIPIENT = "NOT_A_RECIPIENT"  # recorded before it: an archive key holder exports
    VERIFICATION_FAILED = "VERIFICATION_FAILED"  # never decrypt what does not verify
    NO_MEDIA = "NO_MEDIA"


class RecordingSource(StrEnum):
    COURT = "court"  # made by the court's SFU workers, signed with the server's key
    STATION_BACKUP = "station-backup"  # a station's local backup, signed with the station's key


@dataclass(frozen=True)
class RecordingSummary:
    recording_id: RecordingId
    hearing_id: HearingId
    created_at: str
    state: RecordingState
    # The playback key is a recipient of the data key: the server can decrypt it.
    playable: bool
    source: RecordingSource
    path: Path


@dataclass
class Playback:
    """One recording's playback preparation and its result."""

    recording_id: RecordingId
    hearing_id: HearingId
    path: Path
    status: PlaybackStatus = PlaybackStatus.PREPARING
    total_bytes: int = 0
    done_bytes: int = 0
    report: Report | None = None
    streams: list[ExportedStream] = field(default_factory=list)
    # Why there is no media although preparation finished (None when there is media).
    media_unavailable: MediaUnavailable | None = None
    error: str | None = None
    last_used: float = 0.0
    # The signing keys it must verify against (the server's, or the station's registered key).
    trusted: list[VerifyKey] = field(default_factory=list)

    @property
    def progress(self) -> float:
        if self.status is not PlaybackStatus.PREPARING:
            return 1.0
        return min(1.0, self.done_bytes / self.total_bytes) if self.total_bytes else 0.0

    def stream_file(self, stream_id: int) -> Path | None:
        return next((s.file for s in self.streams if s.stream_id == stream_id), None)


class _Closing(Exception):
    """Raised from the progress callback to abandon a preparation at shutdown."""


def _not_found() -> CourtError:
    return CourtError(ErrorCode.NOT_FOUND, "no such recording of this hearing")


class PlaybackService:
    """Lists a hearing's recordings and prepares them for playback (see the module docstring).

    `key` is the playback private key (None: recordings can be verified and their timeline
    shown, but not played); `trusted` the signing keys the court's recordings must be signed
    with. Station backups the court received (`station_root`) are listed too; each is verified
    against the key its station registered, which the caller passes to `prepare`.
    """

    def __init__(
        self,
        recordings_root: Path,
        cache_root: Path,
        key: ArchivePrivateKey | None,
        trusted: Sequence[VerifyKey],
        clock: Clock,
        ttl_s: float,
        station_root: Path | None = None,
    ) -> None:
        self.recordings_root = recordings_root
        self.station_root = station_root
        self.cache_root = cache_root
        self._key = key
        self._trusted = list(trusted)
        self._clock = clock
        self.ttl_s = ttl_s
        self._playbacks: dict[RecordingId, Playback] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def playback_key(self) -> ArchivePrivateKey | None:
        return self._key

    async def start(self) -> None:
        """Remove every decrypted copy a previous run left (they are stale plaintext)."""
        await asyncio.to_thread(self._reset_cache)

    def _reset_cache(self) -> None:
        shutil.rmtree(self.cache_root, ignore_errors=True)
        self.cache_root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.cache_root, 0o700)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        await asyncio.to_thread(shutil.rmtree, self.cache_root, True)

    # -- recordings on disk -----------------------------------------------------------------

    async def list_recordings(self, hearing_id: HearingId) -> list[RecordingSummary]:
        """The hearing's recordings, oldest first (read from the packages' headers)."""
        return await asyncio.to_thread(self._list, hearing_id)

    def _roots(self) -> list[tuple[Path, RecordingSource]]:
        roots = [(self.recordings_root, RecordingSource.COURT)]
        if self.station_root is not None:
            roots.append((self.station_root, RecordingSource.STATION_BACKUP))
        return roots

    def _list(self, hearing_id: HearingId) -> list[RecordingSummary]:
        found = []
        for root, source in self._roots():
            if not root.is_dir():
                continue
            for entry in root.iterdir():
                summary = self._summary(entry, source)
                if summary is not None and summary.hearing_id == hearing_id:
                    found.append(summary)
        return sorted(found, key=lambda r: (r.created_at, r.recording_id))

    def _summary(self, path: Path, source: RecordingSource) -> RecordingSummary | None:
        if parse_id(path.name) is None or not (path / "recording.json").is_file():
            return None
        try:
            info = read_info(path)
        except (RecordingError, OSError):
            log.warning("unreadable recording header in %s", path)
            return None
        if info.recording_id != path.name:
            log.warning("%s holds recording %s; ignored", path, info.recording_id)
            return None
        state = RecordingState.RECORDING
        if (path / "manifest.json").exists():
            # For the list only (unverified): playback verifies the signature.
            try:
                envelope = load_manifest_unverified(path)
                payload = loads(unb64(envelope.get("payload"), "manifest payload"), "manifest")
                state = RecordingState(str(payload.get("status")))
            except (RecordingError, OSError, ValueError):
                state = RecordingState.FAILED
        return RecordingSummary(
            recording_id=RecordingId(info.recording_id),
            hearing_id=HearingId(str(info.metadata.get("hearing_id", ""))),
            created_at=info.created_at,
            state=state,
            playable=self._key is not None and self._key.key_id in info.recipients,
            source=source,
            path=path,
        )

    async def find(self, hearing_id: HearingId, recording_id: str) -> RecordingSummary:
        """The recording if it is one of this hearing's; NOT_FOUND otherwise."""
        rid = parse_id(recording_id)
        if rid is None:
            raise _not_found()
        for root, source in self._roots():
            summary = await asyncio.to_thread(self._summary, root / rid, source)
            if summary is not None and summary.hearing_id == hearing_id:
                return summary
        raise _not_found()

    # -- preparation ------------------------------------------------------------------------

    async def prepare(
        self,
        hearing_id: HearingId,
        recording_id: str,
        trusted: Sequence[VerifyKey] | None = None,
    ) -> Playback:
        """Start (or join) preparing the recording for playback; returns at once. `trusted`:
        the keys it must be signed with (default: the court's own).

        Raises NOT_FOUND (not this hearing's), CONFLICT (still being recorded).
        """
        summary = await self.find(hearing_id, recording_id)
        if summary.state is RecordingState.RECORDING:
            raise CourtError(
                ErrorCode.CONFLICT,
                "the recording is still being written; it can be played once it is sealed",
            )
        current = self._playbacks.get(summary.recording_id)
        if current is not None and current.status is not PlaybackStatus.FAILED:
            current.last_used = self._clock.monotonic()
            return current
        playback = Playback(
            summary.recording_id,
            hearing_id,
            summary.path,
            last_used=self._clock.monotonic(),
            trusted=list(self._trusted if trusted is None else trusted),
        )
        self._playbacks[summary.recording_id] = playback
        task = asyncio.create_task(self._run(playback, summary.playable))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return playback

    def get(self, hearing_id: HearingId, recording_id: str) -> Playback:
        """The preparation started by `prepare`; NOT_FOUND if there is none (or it expired)."""
        playback = self._playbacks.get(RecordingId(recording_id))
        if playback is None or playback.hearing_id != hearing_id:
            raise CourtError(ErrorCode.NOT_FOUND, "this recording is not prepared for playback")
        playback.last_used = self._clock.monotonic()
        return playback

    async def _run(self, playback: Playback, playable: bool) -> None:
        try:
            await asyncio.to_thread(self._prepare, playback, playable)
            playback.status = PlaybackStatus.READY
        except _Closing:
            playback.status = PlaybackStatus.FAILED
            playback.error = "the server is shutting down"
        except (RecordingError, OSError) as exc:
            log.exception("preparing recording %s for playback failed", playback.recording_id)
            playback.status = PlaybackStatus.FAILED
            playback.error = str(exc)
        playback.last_used = self._clock.monotonic()

    def _prepare(self, playback: Playback, playable: bool) -> None:
        """Runs in a worker thread: verify, and decrypt when the playback key may."""
        files, _ = segment_files(playback.path)
        playback.total_bytes = sum(f.stat().st_size for f in files)
        if not playable:
            playback.report = verify_package(playback.path, playback.trusted)
            playback.media_unavailable = (
                MediaUnavailable.NO_PLAYBACK_KEY
                if self._key is None
                else MediaUnavailable.NOT_A_RECIPIENT
            )
            return
        assert self._key is not None
        out = self.cache_root / playback.recording_id
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(mode=0o700)

        def progress(done: int) -> None:
            if self._closing:
                raise _Closing
            playback.done_bytes = done

        result = export_package(
            playback.path,
            self._key,
            out,
            progress=progress,
            public_keys=playback.trusted,
            only_if_intact=True,  # staff never play what does not verify
        )
        playback.report = result.report
        playback.streams = result.streams
        if result.report.exit_code in (EXIT_TAMPERED, EXIT_USAGE):
            playback.media_unavailable = MediaUnavailable.VERIFICATION_FAILED
        elif not result.streams:
            playback.media_unavailable = MediaUnavailable.NO_MEDIA

    # -- cache expiry -----------------------------------------------------------------------

    async def sweep(self) -> list[RecordingId]:
        """Delete decrypted copies unused for `ttl_s`; returns the recordings dropped."""
        now = self._clock.monotonic()
        expired = [
            p
            for p in self._playbacks.values()
            if p.status is not PlaybackStatus.PREPARING and now - p.last_used >= self.ttl_s
        ]
        for playback in expired:
            del self._playbacks[playback.recording_id]
            await asyncio.to_thread(shutil.rmtree, self.cache_root / playback.recording_id, True)
            log.info("playback copy of %s deleted (unused)", playback.recording_id)
        return [p.recording_id for p in expired]

    async def sweep_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)  # a periodic job, not a wait for a condition
            await self.sweep()


def playback_json(
    playback: Playback, names: dict[str, dict[str, Any]], url_for: Callable[[int], str]
) -> dict[str, Any]:
    """The page's view of a playback: status, verification, signed timeline, streams.

    `names` maps participant ids to {"display_name", "role"} for labels; `url_for(stream_id)`
    is where the stream's media is served.
    """
    report = playback.report
    out: dict[str, Any] = {
        "recording_id": playback.recording_id,
        "status": playback.status.value,
        "progress": round(playback.progress, 4),
        "error": playback.error,
        "media_unavailable": playback.media_unavailable,
        "participants": [
            {"participant_id": pid, "display_name": n.get("display_name"), "role": n.get("role")}
            for pid, n in names.items()
        ],
        "verification": None,
        "timeline": [],
        "streams": [],
    }
    if report is None:
        return out
    out["verification"] = {
        "exit_code": report.exit_code,
        "verdict": report.verdict,
        "status": report.status,
        "root_hash": report.root_hash,
        "signing_key_id": report.signing_key_id,
        "gaps": report.gaps,
        "problems": [p.as_json() for p in report.problems],
    }
    out["timeline"] = report.timeline
    if playback.status is PlaybackStatus.READY:
        out["streams"] = [
            {
                "stream_id": s.stream_id,
                "participant_id": s.participant,
                "display_name": names.get(s.participant, {}).get("display_name"),
                "role": names.get(s.participant, {}).get("role"),
                "part": s.part,
                "tracks": list(s.tracks),
                "origin": s.origin,
                "url": url_for(s.stream_id),
            }
            for s in playback.streams
        ]
    return out
