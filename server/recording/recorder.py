"""HearingRecorder: records one hearing from its Router's producers into an evidence package.

Design (ARCHITECTURE 4.4, research notes 6.1): the recorder sits in the process that hosts the
hearing's Router (an SFU worker), because that is where the packets are. It observes the
router ("producer" / "producerclose" events, plus the producers present when it starts) and
puts a tap (`Producer.add_tap`) on each producer it records. A tap sees the decrypted,
RTX-unwrapped RTP packets; the depacketizers (depacketize.py) turn them into VP8 frames and
Opus packets, which go to the `AsyncRecordingWriter` with its non-blocking `offer_video` /
`offer_audio`: the media path never waits for the disk, and the writer's queue is bounded
(frames are dropped and counted when it is full, video first). Nothing is decoded or
re-encoded: the writer remuxes the frames into one WebM per participant.

One participant = one writer stream (their first video and first audio producer). A shared
screen (a producer the Router admitted with source "screen", issue 13.4) is a stream of its
own, recorded under the participant id `<participant id>.screen` (SCREEN_SUFFIX), so the
package and its timeline tell the screen from the camera; it follows the participant's
`set_recorded()`. The stream
is declared (`add_participant`) before any of its frames is offered, and the taps are removed
before it is closed, so the writer never sees media of an undeclared participant. When the
set of recorded producers of a participant changes (a track added or removed, a rejoin, a
publisher that restarted with a new SSRC) the stream is closed and a new part started: RTP
timestamps of different sources cannot share a timeline. Every (re)start of a video track
asks the publisher for a keyframe (throttled by the producer), and so does a lost frame
(depacketize.py), so the recording resumes within a round trip instead of a keyframe
interval.

Writer calls that change structure (declare/close a stream, pause, resume, seal) are
serialized by one lock and run in order on the writer's thread. `tick()` runs every
`tick_interval` seconds (segment rotation and signed checkpoints even in silence); it is also
where a failure that happened on the writer's thread (ENOSPC while writing a frame) surfaces,
so "error" is emitted within about one tick; sooner when a tap sees the writer stopped (it
then stops feeding it and fetches the failure at once).

Server-side mute (`Router.set_paused`) is a forwarding control and does not stop recording:
the evidence keeps what the publisher sent, and a muted track does not turn into a declared
network gap. What must not be recorded is controlled with `set_recorded()` (caucus rooms,
OMR 18) and `pause()` (the lawful interruptions of PauseReason).

Events:
    "error" (code: str, message: str) - once, when the recording failed: code "DISK_FULL"
        (the package was sealed with a disk-full incident, or is left for recovery),
        "IO_ERROR" or "RECORDING_FAILED". The recorder stops recording; call `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import recordings
from recordings import (
    ArchivePublicKey,
    AsyncRecordingWriter,
    DiskFullError,
    InvalidReasonError,
    KeyProvider,
    PauseReason,
    RecordingError,
    RecordingIOError,
    RecordingStateError,
    RecordingWriter,
    StaticKeyProvider,
    WriterConfig,
    load_archive_public_key,
    load_signing_key,
)
from recordings.fsio import FileOpener, open_append
from recordings.timestamps import TsaConfig
from server.ids import ParticipantId, RecordingId, new_id
from server.sfu.events import EventEmitter
from server.sfu.producer import Producer, ProducerId
from server.sfu.router import Router
from signaling.reasons import CloseReason

from .depacketize import OpusDepacketizer, Vp8Depacketizer, parse_rtp

log = logging.getLogger(__name__)

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
MAX_SR_TASKS = 32
OFF_RECORD = "off_record"
SCREEN_SUFFIX = ".screen"
SCREEN_ENDED = "screen_share_ended"
TRACKS_CHANGED = "tracks_changed"

ERROR_DISK_FULL = "DISK_FULL"
ERROR_IO = "IO_ERROR"
ERROR_FAILED = "RECORDING_FAILED"


def error_code(exc: BaseException) -> str:
    """The machine code of a recording failure ("DISK_FULL", "IO_ERROR", "RECORDING_FAILED")."""
    if isinstance(exc, DiskFullError):
        return ERROR_DISK_FULL
    if isinstance(exc, RecordingIOError):
        return ERROR_IO
    return ERROR_FAILED


def ntp_to_unix(ntp: int) -> float:
    """A 64-bit NTP timestamp (RTCP SR) as Unix seconds."""
    return (ntp >> 32) - NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / 2**32


def load_keys(
    signing_key: Path, archive_keys: Collection[Path], recipient_pems: Collection[str] = ()
) -> StaticKeyProvider:
    """Read the recorder's Ed25519 key and the archive X25519 public keys (PEM files), plus
    further recipients given as PEM text (the server's playback key).

    Blocks (file reads): call through `asyncio.to_thread`. Raises recordings.KeyFileError.
    """
    return StaticKeyProvider(
        load_signing_key(signing_key),
        tuple(load_archive_public_key(p) for p in archive_keys)
        + tuple(ArchivePublicKey.from_pem(pem, "recipient") for pem in recipient_pems),
    )


def stream_owner(producer: Producer) -> ParticipantId:
    """Whose writer stream a producer feeds: its participant's, or their screen's."""
    if producer.source == "screen":
        return ParticipantId(f"{producer.peer_id}{SCREEN_SUFFIX}")
    return producer.peer_id


@dataclass(frozen=True)
class SealedRecording:
    """What `stop()` returns: where the sealed package is and its root hash (hex)."""

    recording_id: RecordingId
    root_hash: str
    path: Path
    status: str


class _Track:
    """The tap on one recorded producer: packets -> frames -> writer (non-blocking)."""

    def __init__(self, recorder: HearingRecorder, producer: Producer) -> None:
        self.recorder = recorder
        self.producer = producer
        self.kind = producer.kind
        self.key = stream_owner(producer)
        self.participant = recordings.ParticipantId(self.key)
        self.video = Vp8Depacketizer() if producer.kind == "video" else None
        self.audio = OpusDepacketizer() if producer.kind != "video" else None
        self.live = False
        self.ssrc: bytes | None = None
        self.offered = 0
        self.refused = 0

    def set_live(self, live: bool) -> None:
        if live == self.live:
            return
        self.live = live
        if not live:
            self.producer.remove_tap(self)
            return
        if self.video is not None:
            self.video.reset()
        if self.audio is not None:
            self.audio.reset()
        self.ssrc = None
        self.producer.add_tap(self)
        self.producer.request_keyframe()

    def on_rtp(self, data: bytes) -> None:
        if self.recorder.writer.sealed:
            # The writer stopped on its own thread (ENOSPC, I/O error): feed it no more.
            self.recorder.on_writer_stopped()
            return
        ssrc = data[8:12]
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                # A new source (restarted encoder): its timestamps start elsewhere.
                self.set_live(False)
                self.recorder.on_source_changed(self)
                return
            self.ssrc = ssrc
        fields = parse_rtp(data)
        if fields is None:
            return
        writer = self.recorder.writer
        if self.video is not None:
            frames = self.video.push(
                fields.sequence, fields.timestamp, fields.marker, fields.payload, time.monotonic()
            )
            for frame in frames:
                ok = writer.offer_video(
                    self.participant, frame.data, frame.timestamp, frame.keyframe
                )
                self._count(ok)
            if self.video.keyframe_wanted:
                self.video.keyframe_wanted = False
                self.producer.request_keyframe()
        elif self.audio is not None:
            packet = self.audio.push(fields.sequence, fields.timestamp, fields.payload)
            if packet is not None:
                self._count(writer.offer_audio(self.participant, packet.data, packet.timestamp))

    def _count(self, ok: bool) -> None:
        if ok:
            self.offered += 1
        else:
            self.refused += 1

    def on_sender_report(self, rtp_timestamp: int, ntp_timestamp: int) -> None:
        self.recorder.on_sender_report(self, rtp_timestamp, ntp_to_unix(ntp_timestamp))

    def dump(self) -> dict[str, Any]:
        dep: Any = self.video if self.video is not None else self.audio
        info: dict[str, Any] = {
            "producer": self.producer.id,
            "kind": self.kind,
            "live": self.live,
            "offered": self.offered,
            "refused": self.refused,
            "frames": dep.frames,
            "late_packets": dep.late_packets,
        }
        if self.video is not None:
            info["lost_frames"] = self.video.lost_frames
            info["dropped_frames"] = self.video.dropped_frames
        return info


@dataclass
class _Participant:
    id: ParticipantId
    recorded: bool
    tracks: dict[ProducerId, _Track] = field(default_factory=dict)
    stream: tuple[frozenset[ProducerId], int] | None = None  # declared: (producers, generation)
    generation: int = 0
    leave_reason: str = str(CloseReason.CLIENT_LEFT)

    def wanted(self) -> frozenset[ProducerId]:
        """The producers to record: the first video and the first audio one."""
        if not self.recorded:
            return frozenset()
        chosen: dict[str, ProducerId] = {}
        for producer_id, track in self.tracks.items():
            chosen.setdefault(track.kind, producer_id)
        return frozenset(chosen.values())


class HearingRecorder(EventEmitter):
    """Records one hearing; see the module docstring (design) and the package one (lifecycle).

    Make it with `await HearingRecorder.start(...)`; end it with `await stop()`.
    """

    def __init__(
        self,
        router: Router,
        writer: AsyncRecordingWriter,
        recording_id: RecordingId,
        path: Path,
        *,
        tick_interval: float = 1.0,
        record_by_default: bool = True,
    ) -> None:
        super().__init__()
        self.router = router
        self.writer = writer
        # Periodic writer flushes (records, checkpoints): how many, how long in all, the longest.
        self.tick_count = 0
        self.tick_seconds = 0.0
        self.tick_max_s = 0.0
        self.recording_id = recording_id
        self.path = path
        self.tick_interval = tick_interval
        self.record_by_default = record_by_default
        self.paused: PauseReason | None = None
        self.stopped = False
        self.failure: RecordingError | None = None
        self._participants: dict[ParticipantId, _Participant] = {}
        self._dirty: set[ParticipantId] = set()
        self._lock = asyncio.Lock()
        self._reconcile_task: asyncio.Task[None] | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._sr_tasks: set[asyncio.Task[None]] = set()
        self.sender_reports_dropped = 0

    @classmethod
    async def start(
        cls,
        router: Router,
        root: Path,
        keys: KeyProvider,
        *,
        recording_id: RecordingId | None = None,
        metadata: Mapping[str, str] | None = None,
        config: WriterConfig | None = None,
        opener: FileOpener = open_append,
        tick_interval: float = 1.0,
        max_pending: int = 256,
        record_by_default: bool = True,
        not_recorded: Collection[ParticipantId] = (),
        tsa: TsaConfig | None = None,
    ) -> HearingRecorder:
        """Create the package `root/<recording_id>/` (off the loop) and start recording every
        producer of `router`, present and future, except those of `not_recorded` participants
        (e.g. in a caucus room when the recording starts; see `set_recorded`). `tsa`: where
        checkpoints and the manifest get RFC 3161 time-stamp tokens (None: not anchored).

        Raises FileExistsError if that directory exists and is not empty, RecordingIOError if it
        cannot be created, RecordingStateError if `keys` has no archive key.
        """
        rid = recording_id or RecordingId(new_id())
        path = root / rid
        meta = {"hearing_id": str(router.id), **(metadata or {})}

        def factory() -> RecordingWriter:
            return RecordingWriter(
                path,
                keys,
                recording_id=recordings.RecordingId(rid),
                config=config,
                metadata=meta,
                opener=opener,
                tsa=tsa,
            )

        writer = await AsyncRecordingWriter.create(factory, max_pending=max_pending)
        recorder = cls(
            router,
            writer,
            rid,
            path,
            tick_interval=tick_interval,
            record_by_default=record_by_default,
        )
        for participant_id in not_recorded:
            recorder._participant(participant_id).recorded = False
        recorder._attach()
        return recorder

    # --- public control -------------------------------------------------------------------

    def set_recorded(
        self, participant_id: ParticipantId, recorded: bool, *, reason: str = OFF_RECORD
    ) -> None:
        """Record a participant's media or not (e.g. not while in a private caucus room).

        Takes effect at once for new frames; the writer logs the participant's leave (with
        `reason`) and, when recorded again, a new join. Applies to a participant who has not
        published yet, too.
        """
        if not participant_id.endswith(SCREEN_SUFFIX):
            self.set_recorded(
                ParticipantId(participant_id + SCREEN_SUFFIX), recorded, reason=reason
            )
        p = self._participant(participant_id)
        if p.recorded == recorded:
            return
        p.recorded = recorded
        if not recorded:
            p.leave_reason = reason
            for track in p.tracks.values():
                track.set_live(False)
        self._schedule(participant_id)

    def is_recorded(self, participant_id: ParticipantId) -> bool:
        p = self._participants.get(participant_id)
        return self.record_by_default if p is None else p.recorded

    async def pause(self, reason: PauseReason | str, note: str = "") -> None:
        """Interrupt the recording for a lawful reason (RECESS, NON_PUBLIC_EVIDENCE,
        MEDIATION_OFF_RECORD); media stops being recorded at once.

        Raises InvalidReasonError for any other reason, RecordingStateError if paused already
        or stopped, the recording's failure (DiskFullError, ...) if it failed.
        """
        try:
            code = PauseReason(reason)
        except ValueError:
            raise InvalidReasonError(
                f"a pause needs a reason from {[r.value for r in PauseReason]}, got {reason!r}"
            ) from None
        async with self._lock:
            self._check_running()
            if self.paused is not None:
                raise RecordingStateError("recording is already paused")
            self.paused = code
            self._refresh_all()
            await self._writer_call(self.writer.pause(code, note))

    async def resume(self) -> None:
        """Resume after `pause()`: each video track restarts at a keyframe (requested now).

        Raises RecordingStateError if not paused or stopped, the failure if it failed.
        """
        async with self._lock:
            self._check_running()
            if self.paused is None:
                raise RecordingStateError("recording is not paused")
            await self._writer_call(self.writer.resume())
            self.paused = None
            self._refresh_all()

    async def note(self, text: str) -> None:
        """A free-text note in the signed timeline (e.g. the clerk's remark)."""
        async with self._lock:
            self._check_running()
            await self._writer_call(self.writer.note(text))

    async def stop(self) -> SealedRecording:
        """Stop recording and seal the package (signed manifest). Idempotent only in that a
        second call raises RecordingStateError.

        Raises the recording's failure (DiskFullError: the package was sealed with a disk-full
        incident or is left for `recover_unfinished`; RecordingIOError) if it failed.
        """
        async with self._lock:
            if self.stopped:
                raise RecordingStateError("recording already stopped")
            self.stopped = True
            self._detach()
            if self._tick_task is not None:
                self._tick_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._tick_task
            if self._reconcile_task is not None:
                self._reconcile_task.cancel()
            for task in list(self._sr_tasks):
                task.cancel()
            if self.failure is None:
                try:
                    manifest = await self.writer.seal()
                except RecordingError as exc:
                    self._fail(exc)
                else:
                    log.info("hearing %s: recording %s sealed", self.router.id, self.recording_id)
                    return SealedRecording(
                        self.recording_id,
                        str(manifest["root_hash"]),
                        self.path,
                        str(manifest["status"]),
                    )
            if self._close_task is not None:
                await self._close_task
            assert self.failure is not None
            raise self.failure

    def dump(self) -> dict[str, Any]:
        return {
            "recording_id": self.recording_id,
            "path": str(self.path),
            "paused": self.paused,
            "stopped": self.stopped,
            "failure": None if self.failure is None else error_code(self.failure),
            "writer_dropped_frames": self.writer.dropped_frames,
            "sender_reports_dropped": self.sender_reports_dropped,
            "participants": {
                pid: {
                    "recorded": p.recorded,
                    "stream": p.stream is not None,
                    "tracks": [t.dump() for t in p.tracks.values()],
                }
                for pid, p in self._participants.items()
            },
        }

    # --- router observation ---------------------------------------------------------------

    def _attach(self) -> None:
        self.router.on("producer", self._on_producer)
        self.router.on("producerclose", self._on_producer_close)
        for producer in self.router.producers():
            self._on_producer(producer)
        self._tick_task = asyncio.ensure_future(self._tick_loop())

    def _detach(self) -> None:
        self.router.off("producer", self._on_producer)
        self.router.off("producerclose", self._on_producer_close)
        for p in self._participants.values():
            for track in p.tracks.values():
                track.set_live(False)

    def _participant(self, participant_id: ParticipantId) -> _Participant:
        p = self._participants.get(participant_id)
        if p is None:
            p = self._participants[participant_id] = _Participant(
                participant_id, self.record_by_default
            )
        return p

    def _on_producer(self, producer: Producer) -> None:
        if self.stopped or producer.closed:
            return
        p = self._participant(stream_owner(producer))
        p.tracks.setdefault(producer.id, _Track(self, producer))
        self._schedule(p.id)

    def _on_producer_close(self, producer: Producer, reason: CloseReason) -> None:
        p = self._participants.get(stream_owner(producer))
        if p is None or producer.id not in p.tracks:
            # withdrawn screens are reported with their source already cleared
            p = self._participants.get(ParticipantId(producer.peer_id + SCREEN_SUFFIX))
        if p is None:
            return
        track = p.tracks.pop(producer.id, None)
        if track is not None:
            track.set_live(False)
            # A screen stream ends with the share (why is in the hearing's event log).
            p.leave_reason = SCREEN_ENDED if track.key != producer.peer_id else str(reason)
            self._schedule(p.id)

    async def wait_anchors(self, within_s: float) -> bool:
        """Wait until the time anchors of the (sealed) recording are stored or declared
        missing: an orderly shutdown does so, lest the manifest's token be lost with the
        process. False on timeout."""
        return await self.writer.wait_anchors(within_s)

    def on_source_changed(self, track: _Track) -> None:
        """Called by a track whose source changed (a restarted encoder): the participant's
        streams are rebuilt."""
        p = self._participants.get(track.key)
        if p is not None and not self.stopped:
            p.generation += 1
            p.leave_reason = TRACKS_CHANGED
            self._schedule(p.id)

    # --- reconciliation (writer streams follow the wanted producers) -----------------------

    def _schedule(self, participant_id: ParticipantId) -> None:
        if self.stopped:
            return
        self._dirty.add(participant_id)
        if self._reconcile_task is None or self._reconcile_task.done():
            self._reconcile_task = asyncio.ensure_future(self._reconcile_loop())

    async def _reconcile_loop(self) -> None:
        async with self._lock:
            while self._dirty and not self.stopped and self.failure is None:
                participant_id = self._dirty.pop()
                p = self._participants.get(participant_id)
                if p is None:
                    continue
                try:
                    await self._reconcile(p)
                except RecordingError:
                    return  # _writer_call recorded the failure and emitted "error"
                if not p.tracks and p.stream is None and p.recorded == self.record_by_default:
                    self._participants.pop(participant_id, None)

    async def _reconcile(self, p: _Participant) -> None:
        wanted = p.wanted()
        key = (wanted, p.generation) if wanted else None
        if key == p.stream:
            self._refresh(p)
            return
        for track in p.tracks.values():
            track.set_live(False)
        pid = recordings.ParticipantId(p.id)
        if p.stream is not None:
            reason = TRACKS_CHANGED if p.tracks and p.recorded else p.leave_reason
            p.stream = None
            await self._writer_call(self.writer.remove_participant(pid, reason))
        if key is not None:
            kinds = {p.tracks[producer_id].kind for producer_id in wanted}
            await self._writer_call(
                self.writer.add_participant(pid, video="video" in kinds, audio="audio" in kinds)
            )
            p.stream = key
        self._refresh(p)

    def _refresh(self, p: _Participant) -> None:
        running = self.paused is None and not self.stopped and self.failure is None
        declared = p.stream[0] if p.stream is not None else frozenset()
        for producer_id, track in p.tracks.items():
            track.set_live(running and producer_id in declared)

    def _refresh_all(self) -> None:
        for p in self._participants.values():
            self._refresh(p)

    # --- writer plumbing --------------------------------------------------------------------

    def _check_running(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.stopped:
            raise RecordingStateError("recording is stopped")

    async def _writer_call(self, call: Any) -> Any:
        try:
            return await call
        except RecordingError as exc:
            if not isinstance(exc, InvalidReasonError | RecordingStateError):
                self._fail(exc)
            raise

    def on_sender_report(self, track: _Track, rtp_timestamp: int, ntp_unix: float) -> None:
        """Called by a track with its publisher's RTCP SR: A/V alignment (bounded tasks)."""
        if len(self._sr_tasks) >= MAX_SR_TASKS:
            self.sender_reports_dropped += 1
            return
        task = asyncio.ensure_future(
            self._apply_sender_report(track.participant, track.kind, rtp_timestamp, ntp_unix)
        )
        self._sr_tasks.add(task)
        task.add_done_callback(self._sr_tasks.discard)

    async def _apply_sender_report(
        self, participant: recordings.ParticipantId, kind: str, rtp_timestamp: int, ntp: float
    ) -> None:
        try:
            await self.writer.sender_report(participant, kind, rtp_timestamp, ntp)
        except KeyError:
            pass  # the participant's stream closed meanwhile
        except RecordingStateError:
            pass  # stopped meanwhile
        except RecordingError as exc:
            self._fail(exc)

    def on_writer_stopped(self) -> None:
        """Called by a track that saw the writer stop by itself: stop every tap, then fetch its
        failure now rather than at the next tick (the judge is alerted within a frame or two)."""
        if self._probe_task is not None or self.failure is not None or self.stopped:
            return
        for p in self._participants.values():
            for track in p.tracks.values():
                track.set_live(False)
        self._probe_task = asyncio.ensure_future(self._probe())

    async def _probe(self) -> None:
        try:
            await self.writer.tick()
        except RecordingError as exc:
            if not self.stopped:
                self._fail(exc)

    async def _tick_loop(self) -> None:
        while not self.stopped and self.failure is None:
            await asyncio.sleep(self.tick_interval)
            try:
                started = time.monotonic()
                await self.writer.tick()
                # The write latency the metrics report (server/worker/counters.py).
                took = time.monotonic() - started
                self.tick_count += 1
                self.tick_seconds += took
                self.tick_max_s = max(self.tick_max_s, took)
            except RecordingError as exc:
                if not self.stopped:
                    self._fail(exc)
                return

    def _fail(self, exc: RecordingError) -> None:
        if self.failure is not None:
            return
        self.failure = exc
        code = error_code(exc)
        log.error(
            "hearing %s: recording %s failed (%s): %s", self.router.id, self.recording_id, code, exc
        )
        self._refresh_all()
        # The writer stopped itself (sealed with an incident, or left for recovery): release
        # its thread. stop() waits for this before reporting the failure.
        self._close_task = asyncio.ensure_future(self.writer.aclose())
        self._emit("error", code, str(exc))
