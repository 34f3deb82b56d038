"""The station's local backup recording: its own camera and microphone, sealed on its own disk.

Why: the court's evidence recording is made on the server from what reaches it. When a
village line drops, the station's side of the hearing is missing there, and that is the side
an appeal court may most need (who said what in the village office). So the station records
its own picture and sound too, continuously, into the same sealed evidence package as the
court's (``recordings/``, docs/recording-format.md): encrypted for the court's archive keys
(the station can write, never read back), signed by a key that only this station holds, and
verified by the same ``shared-court verify``.

Design decisions:

* **Its own encoders.** The live encoder's bitrate follows the line (REMB), so it is poorest
  exactly when the line is poor; the backup encodes the captured frames itself at a steady
  quality (VP8 at ``fps`` frames per second and ``bitrate``; Opus 48 kHz stereo). This costs a
  second encode on the station PC; ``bench/station_backup.py`` measures it.
* **One thread.** Encoding, muxing, sealing and fsync run on the writer's single thread
  (``AsyncRecordingWriter.offer``/``run``): in order, never on the loop. Frames are offered
  without waiting, through a bounded queue that drops video before audio when the PC cannot
  keep up (counted in ``dropped_frames``).
* **Only what is on the record.** The backup follows the hearing as the server last told the
  station (``BackupController``): it records while the hearing is in session (or suspended for
  technical trouble: then most of all) and the station is in the main room; it pauses with the
  court's reason for a recess or an interruption (non-public evidence, mediation off the
  record), takes the station off its timeline outside the main room (waiting room, caucus) and
  seals when the hearing closes. While the line is down it carries on in the last state told,
  with the loss and the return noted on its signed timeline.
* **The court knows it.** Before the first frame the station registers the recording id and
  its verify key with the court (``POST /api/hearings/{id}/station-backups``); the court logs
  it in the hearing's hash-chained event log and answers with the archive recipients to
  encrypt for. An appeal court can then check that a backup package is the one the station
  announced, signed by the key it announced.
* **Crash-safe like the court's.** A killed station loses at most the last ~2 s; the next
  ``shared-court station run`` seals unfinished backups with a signed crash incident
  (``recover_unfinished``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
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
from signaling import messages as m
from signaling.enums import HearingState

log = logging.getLogger(__name__)

# The station's stream in its own backup when it has no participant id of the hearing to use.
STATION = ParticipantId("station")
MAIN_ROOM = "main"
VIDEO_TIME_BASE = Fraction(1, 90_000)
OPUS_RATE = 48_000
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


def private_copy(frame: av.VideoFrame) -> av.VideoFrame:
    """A copy of `frame`'s pixels in a new frame (same format and size), nothing else."""
    copy = av.VideoFrame(frame.width, frame.height, frame.format.name)
    for src, dst in zip(frame.planes, copy.planes, strict=True):
        source, target = memoryview(src), memoryview(dst)
        if src.line_size == dst.line_size:
            target[:] = source[: len(target)]
            continue
        row = min(src.line_size, dst.line_size)
        for y in range(len(target) // dst.line_size):
            target[y * dst.line_size : y * dst.line_size + row] = source[
                y * src.line_size : y * src.line_size + row
            ]
    return copy


class BackupEncoder:
    """VP8 and Opus encoders for the backup. Used on the writer's thread only."""

    def __init__(self, fps: float, bitrate: int) -> None:
        self.fps = fps
        self.bitrate = bitrate
        self._step = round(90_000 / fps)
        self._next_due: int | None = None
        self._vp8: Any = None
        self._size: tuple[int, int] | None = None
        self._opus: Any = None
        self._resampler: Any = None
        self._first_opus_pts: int | None = None
        self._audio_offset = 0  # 48 kHz ticks added for microphone frames that never came
        self._next_in_pts: int | None = None
        self.resampled = 0  # 48 kHz samples fed to Opus

    def restart_video(self) -> None:
        """Start again with a keyframe (after a pause: the record must be decodable there)."""
        self._vp8 = None

    def video(self, frame: av.VideoFrame, pts: int | None) -> list[tuple[bytes, int, bool]]:
        """Encode `frame` (captured at `pts`, 90 kHz) if it is due at the backup's rate;
        returns (VP8 frame, 90 kHz timestamp, keyframe) for each packet out.

        The frame is shared with the live connection, whose encoder rewrites its pts and time
        base in place on another thread: so `pts` is read on the loop when the frame is
        offered, and the pixels are copied before anything here touches the frame."""
        if pts is None:
            return []
        if self._next_due is not None and pts < self._next_due:
            return []
        # Due again one step on, with a quarter step of slack for capture jitter.
        self._next_due = pts + self._step - self._step // 4
        image = private_copy(frame)
        if image.format.name != "yuv420p":
            image = image.reformat(format="yuv420p")
        if self._vp8 is None or self._size != (image.width, image.height):
            self._vp8 = self._open_vp8(image.width, image.height)
            self._size = (image.width, image.height)
        image.pts = pts
        image.time_base = VIDEO_TIME_BASE
        return [
            (bytes(p), p.pts & 0xFFFFFFFF, bool(p.is_keyframe)) for p in self._vp8.encode(image)
        ]

    def _open_vp8(self, width: int, height: int) -> Any:
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height = width, height
        codec.pix_fmt = "yuv420p"
        codec.time_base = VIDEO_TIME_BASE
        codec.framerate = Fraction(self.fps).limit_denominator(1000)
        codec.bit_rate = self.bitrate
        codec.gop_size = max(1, round(2 * self.fps))  # a keyframe every 2 s: seekable, bounded loss
        codec.thread_count = 1
        codec.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "static-thresh": "1",
            "undershoot-pct": "95",
        }
        return codec

    def audio(self, frame: av.AudioFrame, pts: int | None) -> list[tuple[bytes, int]]:
        """Encode `frame` (s16, captured at `pts` in samples, read on the loop); returns
        (Opus packet, 48 kHz timestamp)s."""
        if self._opus is None:
            self._opus = av.CodecContext.create("libopus", "w")
            self._opus.bit_rate = 64_000
            self._opus.format = "s16"
            self._opus.layout = "stereo"
            self._opus.sample_rate = OPUS_RATE
            self._opus.time_base = Fraction(1, OPUS_RATE)
            self._opus.options = {"application": "voip"}
            self._resampler = av.AudioResampler(
                format="s16", layout="stereo", rate=OPUS_RATE, frame_size=960
            )
        rate = frame.sample_rate
        if self._next_in_pts is not None and pts is not None:
            missing = pts - self._next_in_pts
            if missing > rate // 50:  # more than 20 ms never came (dropped): keep time true
                self._audio_offset += missing * OPUS_RATE // rate
        if pts is not None:
            self._next_in_pts = pts + frame.samples
        out: list[tuple[bytes, int]] = []
        for chunk in self._resampler.resample(frame):
            self.resampled += chunk.samples
            for packet in self._opus.encode(chunk):
                if self._first_opus_pts is None:
                    self._first_opus_pts = packet.pts
                ts = packet.pts - self._first_opus_pts + self._audio_offset
                out.append((bytes(packet), ts & 0xFFFFFFFF))
        return out

    @property
    def audio_position(self) -> int:
        """The 48 kHz timestamp of the sample being fed now (for wall-clock anchoring)."""
        return (self.resampled + self._audio_offset) & 0xFFFFFFFF


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


Register = Callable[[RecordingId, str], Awaitable[list[ArchivePublicKey]]]


@dataclass
class _Told:
    """What the server last told the station about the hearing and its place in it."""

    state: HearingState | None = None
    pause: str | None = None  # the court's reason for interrupting the record, if any
    room: str | None = None


class BackupController:
    """Keeps a ``StationBackup`` in step with the hearing as the server tells it.

    Feed it ``joined(welcome)``, every signaling event (``on_event``) and ``connection_lost()``;
    it works out what the backup should be doing and gets it there on one task, so changes
    never overlap. ``register(recording_id, verify_key_pem)`` tells the court about a new
    backup and returns the archive recipients (it raises when the court cannot be reached:
    the backup then starts at the next join).
    """

    def __init__(
        self,
        backup: StationBackup,
        register: Register,
        *,
        hearing_id: str,
        video: bool,
        audio: bool,
    ) -> None:
        self.backup = backup
        self._register = register
        self.hearing_id = hearing_id
        self._video, self._audio = video, audio
        self._told = _Told()
        self._online = False
        self._noted_offline = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._recording_id = RecordingId(str(uuid.uuid4()))
        self._participant: str | None = None
        self.settled = asyncio.Event()  # set whenever the backup matches what was told

    # -- input ---------------------------------------------------------------------------------

    def joined(self, welcome: m.Welcome) -> None:
        self._participant = welcome.participant_id
        self._told = _Told(welcome.hearing_state, _pause_of(welcome), welcome.room_id)
        self._online = True
        self._kick()

    def on_event(self, message: m.Message) -> None:
        if isinstance(message, m.HearingStateChanged):
            self._told.state = message.state
            self._told.pause = _pause_of(message)
        elif isinstance(message, m.Moved):
            self._told.room = message.room_id
        else:
            return
        self._kick()

    def connection_lost(self) -> None:
        self._online = False
        self._kick()

    async def finish(self) -> str | None:
        """The station's part is over: seal the backup (noting it when the hearing had not
        closed); returns its root hash, None if nothing was recorded."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._told.state is HearingState.CLOSED:
            return await self.backup.seal()
        if self.backup.state not in (BackupState.IDLE, BackupState.SEALED):
            await self.backup.note("the station left the hearing before it closed")
            return await self.backup.seal()
        return None

    # -- work ----------------------------------------------------------------------------------

    def _kick(self) -> None:
        self.settled.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._apply()
            except Exception:
                log.exception("the backup recording could not follow the hearing")
            if not self._wake.is_set():
                self.settled.set()
                await self._wake.wait()

    async def _apply(self) -> None:
        backup, told = self.backup, self._told
        if backup.state in (BackupState.SEALED, BackupState.FAILED):
            return
        if backup.state is not BackupState.IDLE:
            await self._note_connection()
        if told.state is HearingState.CLOSED:
            await backup.seal()
            return
        on_record_state = told.state in (HearingState.IN_SESSION, HearingState.SUSPENDED)
        pause = (
            PauseReason.RECESS
            if told.state is HearingState.RECESS
            else PauseReason(told.pause)
            if told.pause and told.state is HearingState.IN_SESSION
            else None
        )
        if backup.state is BackupState.IDLE:
            if not on_record_state or pause is not None or told.room != MAIN_ROOM:
                return  # nothing to record yet
            if not self._online or not await self._start():
                return
        if pause is not None:
            await backup.pause(pause)
            return
        await backup.resume()
        if on_record_state and told.room == MAIN_ROOM:
            await backup.enter()
        else:
            await backup.leave("caucus" if told.room else "waiting_room")

    async def _start(self) -> bool:
        try:
            recipients = await self._register(
                self._recording_id, verify_key_pem(self.backup.signing_key)
            )
        except Exception as exc:  # the court cannot be reached or refused: try at next join
            log.warning("cannot register the backup recording with the court: %s", exc)
            return False
        await self.backup.start(
            self._recording_id,
            recipients,
            video=self._video,
            audio=self._audio,
            metadata={"hearing_id": self.hearing_id, "source": "station-backup"},
            participant=self._participant,
        )
        return True

    async def _note_connection(self) -> None:
        if not self._online and not self._noted_offline:
            self._noted_offline = True
            await self.backup.note("connection to the court lost; the station records on")
        elif self._online and self._noted_offline:
            self._noted_offline = False
            await self.backup.note("connection to the court restored")


def _pause_of(message: m.Welcome | m.HearingStateChanged) -> str | None:
    return message.recording_pause.value if message.recording_pause else None
