"""The sealed evidence package of the station's backup, and the station's signing key.

The package is the same sealed evidence package as the court's (``recordings/``,
docs/recording-format.md): encrypted for the court's archive keys (the station can write, never
read back), signed by a key that only this station holds (``load_or_create_signing_key``), and
verified by the same ``shared-court verify``.

Design decisions:

* **One thread.** Encoding (``BackupEncoder``), muxing, sealing and fsync run on the writer's
  single thread (``AsyncRecordingWriter.offer``/``run``): in order, never on the loop. Frames
  are offered without waiting, through a bounded queue that drops video before audio when the
  PC cannot keep up (counted in ``dropped_frames``).
* **On the timeline only in the main room.** ``enter``/``leave`` put the station on and off
  the package's timeline, ``pause``/``resume`` carry the court's reason; what to do when is
  ``BackupController``'s decision, not this module's.
* **Crash-safe like the court's.** A killed station loses at most the last ~2 s; the next
  ``shared-court station run`` seals unfinished backups with a signed crash incident
  (``recover_unfinished``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import av
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recordings import (
    ArchivePublicKey,
    AsyncRecordingWriter,
    ParticipantId,
    PauseReason,
    RecordingError,
    RecordingId,
    RecordingWriter,
    SigningKey,
    StaticKeyProvider,
    create_writer,
    load_signing_key,
    recover,
)
from recordings.keys import write_private

from .encoder import BackupEncoder

log = logging.getLogger(__name__)

# The station's stream in its own backup when it has no participant id of the hearing to use.
STATION = ParticipantId("station")
AUDIO_ANCHOR_S = 30.0  # re-anchor the microphone's sample clock to wall time this often


class BackupState(StrEnum):
    IDLE = "idle"  # not started (nothing on the record yet)
    RECORDING = "recording"
    PAUSED = "paused"  # the court interrupted the record (recess, a lawful reason)
    ABSENT = "absent"  # the station is outside the main room: its media is not on the record
    SEALED = "sealed"
    FAILED = "failed"  # the disk is full or failing; the package is sealed or recoverable


def load_or_create_signing_key(path: Path) -> SigningKey:
    """The station's backup signing key, created (Ed25519, mode 0600) on first use.

    Blocks (file I/O): call through ``asyncio.to_thread``. Raises recordings.KeyFileError if
    the file exists but is not an Ed25519 private key, OSError if it cannot be created.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with contextlib.suppress(FileExistsError):  # another process made it first: use that
            write_private(path, pem)
            log.info("created the station's backup signing key %s", path)
    return load_signing_key(path)


def verify_key_pem(key: SigningKey) -> str:
    """The public half of `key` as PEM text (what the court is told)."""
    return key.verify_key.pem()


def recover_unfinished(root: Path, key: SigningKey) -> list[str]:
    """Seal the backups a killed station left unfinished (signed crash incidents); returns
    their recording ids. Blocks: call through ``asyncio.to_thread``."""
    if not root.is_dir():
        return []
    return [str(r.recording_id) for r in recover(root, key)]


class StationBackup:
    """One hearing's backup recording on the station (see the module docstring).

    `offer_video` / `offer_audio` are tee sinks: they never block and drop frames when not
    recording. The other methods are awaited from one task at a time (`BackupController`).
    """

    def __init__(
        self,
        root: Path,
        signing_key: SigningKey,
        *,
        fps: float = 15.0,
        bitrate: int = 600_000,
        max_pending: int = 64,
        on_failure: Callable[[str], None] | None = None,
        on_state: Callable[[BackupState], None] | None = None,
    ) -> None:
        self.root = root
        self._on_state = on_state
        self.signing_key = signing_key
        self.fps, self.bitrate = fps, bitrate
        self._max_pending = max_pending
        self._on_failure = on_failure
        self._state = BackupState.IDLE
        self.recording_id: RecordingId | None = None
        self.participant = STATION
        self.root_hash: str | None = None
        self.error: str | None = None
        self._writer: AsyncRecordingWriter | None = None
        self._encoder: BackupEncoder | None = None
        self._anchored: dict[str, float] = {}  # kind -> wall time of its last clock anchor
        self._kinds: tuple[bool, bool] = (True, True)
        self._resume_to = BackupState.ABSENT
        self._ticker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.frames_written = 0

    @property
    def state(self) -> BackupState:
        return self._state

    def _set(self, state: BackupState) -> None:
        # On the loop only (the writer thread reads it).
        if state is not self._state:
            self._state = state
            if self._on_state is not None:
                self._on_state(state)

    @property
    def path(self) -> Path | None:
        return self.root / self.recording_id if self.recording_id else None

    @property
    def dropped_frames(self) -> int:
        return self._writer.dropped_frames if self._writer is not None else 0

    async def start(
        self,
        recording_id: RecordingId,
        recipients: list[ArchivePublicKey],
        *,
        video: bool,
        audio: bool,
        metadata: dict[str, str] | None = None,
        participant: str | None = None,
    ) -> None:
        """Create the package (the station is on its timeline from `enter()` on, as
        `participant`: its participant id in the hearing, so the court's playback names it).
        Raises RecordingError (no recipient, I/O), FileExistsError."""
        if self.state is not BackupState.IDLE:
            raise RuntimeError(f"the backup is {self.state}, not idle")
        self._loop = asyncio.get_running_loop()
        keys = StaticKeyProvider(self.signing_key, tuple(recipients))

        def make() -> RecordingWriter:  # on a worker thread: it creates files
            self.root.mkdir(parents=True, exist_ok=True)
            return create_writer(
                self.root,
                keys,
                recording_id=recording_id,
                metadata=metadata,
            )

        self._writer = await AsyncRecordingWriter.create(make, max_pending=self._max_pending)
        self.recording_id = recording_id
        self.participant = ParticipantId(participant) if participant else STATION
        self._encoder = BackupEncoder(self.fps, self.bitrate)
        self._kinds = (video, audio)
        self._set(BackupState.ABSENT)
        self._ticker = asyncio.ensure_future(self._tick())
        log.info("backup recording %s started in %s", recording_id, self.path)

    # -- on the record or not -----------------------------------------------------------------

    async def enter(self) -> None:
        """The station is (back) in the main room: its media is on the record again."""
        if self.state is not BackupState.ABSENT:
            return
        await self._call(self._enter_on_thread, *self._kinds)
        if self.state is BackupState.ABSENT:
            self._set(BackupState.RECORDING)

    def _enter_on_thread(self, video: bool, audio: bool) -> None:
        assert self._writer is not None
        assert self._encoder is not None
        self._writer.writer.add_participant(self.participant, video=video, audio=audio)
        self._encoder.restart_video()  # the new part starts with a keyframe
        self._anchored.clear()

    async def leave(self, reason: str) -> None:
        """The station left the main room (`reason`: waiting_room, caucus ...)."""
        if self.state is not BackupState.RECORDING:
            return
        self._set(BackupState.ABSENT)  # first: frames offered from now on are not taken
        assert self._writer is not None
        await self._call(self._writer.writer.remove_participant, self.participant, reason)

    async def pause(self, reason: PauseReason, note: str = "") -> None:
        if self.state not in (BackupState.RECORDING, BackupState.ABSENT):
            return
        self._resume_to = self.state
        self._set(BackupState.PAUSED)
        assert self._writer is not None
        await self._call(self._writer.writer.pause, reason, note)

    async def resume(self) -> None:
        if self.state is not BackupState.PAUSED:
            return
        await self._call(self._resume_on_thread)
        self._set(self._resume_to)

    def _resume_on_thread(self) -> None:
        assert self._writer is not None
        assert self._encoder is not None
        self._writer.writer.resume()
        self._encoder.restart_video()  # the record must be decodable from the resumption

    async def note(self, text: str) -> None:
        if self._writer is not None and self.state not in (BackupState.SEALED, BackupState.FAILED):
            await self._call(self._writer.writer.note, text)

    async def seal(self) -> str | None:
        """Seal the package; returns its root hash (None if it was never started)."""
        if self._writer is None or self.state in (BackupState.SEALED, BackupState.FAILED):
            return self.root_hash
        self._set(BackupState.SEALED)
        await self._stop_ticker()
        writer = self._writer
        with contextlib.suppress(RecordingError):
            await writer.run(self._leave_quietly)
        try:
            manifest = await writer.seal()
        except RecordingError as exc:
            self._failed(f"sealing failed: {exc}")
            return None
        self.root_hash = str(manifest.get("root_hash", "")) or None
        log.info("backup recording %s sealed", self.recording_id)
        return self.root_hash

    def _leave_quietly(self) -> None:
        assert self._writer is not None
        with contextlib.suppress(RecordingError):
            if self._writer.writer.has_participant(self.participant):
                self._writer.writer.remove_participant(self.participant, "hearing_closed")

    async def aclose(self) -> None:
        """Stop without sealing (a station shutting down mid-hearing: the next start seals it
        with an incident naming the gap). Idempotent."""
        await self._stop_ticker()
        if self._writer is not None and self.state is not BackupState.SEALED:
            await self._writer.aclose()

    # -- media ---------------------------------------------------------------------------------

    def offer_video(self, frame: av.VideoFrame | av.AudioFrame) -> None:
        if self.state is BackupState.RECORDING and isinstance(frame, av.VideoFrame):
            assert self._writer is not None
            # pts now: the live encoder rewrites it in place later, on its own thread.
            self._writer.offer(self._write_video, frame, frame.pts, time.time(), audio=False)

    def offer_audio(self, frame: av.VideoFrame | av.AudioFrame) -> None:
        if self.state is BackupState.RECORDING and isinstance(frame, av.AudioFrame):
            assert self._writer is not None
            self._writer.offer(self._write_audio, frame, frame.pts, time.time(), audio=True)

    def _recording_writer(self) -> tuple[RecordingWriter, BackupEncoder] | None:
        # On the writer's thread: the writer and encoder if the station is on the record now.
        if self._writer is None or self._encoder is None:
            return None
        writer = self._writer.writer
        if self.state is not BackupState.RECORDING or not writer.has_participant(self.participant):
            return None
        return writer, self._encoder

    def _write_video(self, frame: av.VideoFrame, pts: int | None, received: float) -> None:
        # On the writer's thread.
        if (ready := self._recording_writer()) is None:
            return
        writer, encoder = ready
        try:
            packets = encoder.video(frame, pts)
            if packets and "video" not in self._anchored and pts is not None:
                # The camera's 90 kHz clock counts from the capture instant: one anchor holds.
                writer.sender_report(self.participant, "video", pts & 0xFFFFFFFF, received)
                self._anchored["video"] = received
            for data, ts, keyframe in packets:
                writer.write_video(self.participant, data, ts, keyframe)
                self.frames_written += 1
        except RecordingError as exc:
            self._failed_threadsafe(str(exc))

    def _write_audio(self, frame: av.AudioFrame, pts: int | None, received: float) -> None:
        # On the writer's thread.
        if (ready := self._recording_writer()) is None:
            return
        writer, encoder = ready
        try:
            if received - self._anchored.get("audio", -AUDIO_ANCHOR_S) > AUDIO_ANCHOR_S:
                # The microphone's sample clock drifts from wall time (tens of ppm): anchor the
                # sample being fed now to the time it arrived, now and then.
                writer.sender_report(self.participant, "audio", encoder.audio_position, received)
                self._anchored["audio"] = received
            for data, ts in encoder.audio(frame, pts):
                writer.write_audio(self.participant, data, ts)
                self.frames_written += 1
        except RecordingError as exc:
            self._failed_threadsafe(str(exc))

    # -- plumbing ------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        assert self._writer is not None
        try:
            return await self._writer.run(fn, *args, **kwargs)
        except RecordingError as exc:
            self._failed(str(exc))
            return None

    async def _tick(self) -> None:
        # Checkpoints and segment rotation happen on time even while nothing is recorded.
        while True:
            await asyncio.sleep(1.0)
            if self._writer is None or self.state in (BackupState.SEALED, BackupState.FAILED):
                return
            with contextlib.suppress(RecordingError):
                await self._writer.run(self._writer.writer.tick)

    async def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    def _failed_threadsafe(self, message: str) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._failed, message)

    def _failed(self, message: str) -> None:
        if self.state is BackupState.FAILED:
            return
        self._set(BackupState.FAILED)
        self.error = message
        log.error("backup recording %s failed: %s", self.recording_id, message)
        if self._on_failure is not None:
            self._on_failure(message)
