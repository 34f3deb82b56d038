"""The bridge from the hearing rules and the signaling connections to the SFU workers.

Media runs in SFU worker processes (``server.worker``), one asyncio loop per core; the
main process keeps HTTP, signaling and the database (ARCHITECTURE §4.3). ``MediaService``
places each hearing on a worker the first time someone joins it, relays each participant's
negotiation to the worker hosting the hearing, and routes the workers' events (server offers,
new forwarded tracks, transport failures, peers closed) back to that participant's signaling
connection, the ``PeerListener``.

``HearingMedia`` is what a ``LiveHearing`` sees as its ``MediaRouting``: ``place(participant,
room)`` becomes the SFU room of that participant's peer, where ``None`` (waiting, outside the
session, disconnected) is a room of one, so the SFU's single routing rule "same room" is all
that media obeys. Rooms are remembered for peers that do not exist yet.

A worker that dies ends only its hearings: every peer it hosted is closed with WORKER_DIED,
their clients are told and rejoin, and the next join places the hearing on a live worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from recordings import PauseReason
from server.enums import HearingState
from server.ids import HearingId, ParticipantId, RecordingId, new_id
from server.recording.recorder import SealedRecording
from server.worker import RouterHandle, WorkerDiedError, WorkerError, WorkerPool
from signaling.enums import RecordingPause
from signaling.reasons import CloseReason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordingSettings:
    """Where evidence recordings go and the keys they are sealed with (None: not recorded)."""

    root: Path
    signing_key: Path
    archive_keys: tuple[Path, ...]
    # The playback key's public half (PEM): one more recipient, so staff can play back.
    playback_recipient: str | None = None
    # The archive keys' public PEM, read once at start-up (the worker reads `archive_keys`).
    archive_pems: tuple[str, ...] = ()
    # RFC 3161 time-stamping (recordings.timestamps.TsaConfig fields), None: not anchored.
    tsa: Mapping[str, Any] | None = None

    @property
    def recipient_pems(self) -> tuple[str, ...]:
        """Every X25519 public key (PEM) a new recording is encrypted for: the archive keys,
        then the playback key. A station's backup recording is sealed for the same ones."""
        playback = (self.playback_recipient,) if self.playback_recipient else ()
        return self.archive_pems + playback


def alone(participant_id: ParticipantId) -> str:
    """The room of one: media goes nowhere and comes from nowhere."""
    return f"alone:{participant_id}"


class PeerListener(Protocol):
    """A participant's signaling connection, told what its SFU peer does."""

    def on_server_offer(self, sdp: str) -> None: ...

    def on_track(self, mid: str, participant_id: str, kind: str, source: str = "") -> None: ...

    def on_connection_state(self, state: str) -> None: ...

    def on_peer_closed(self, reason: CloseReason) -> None: ...

    def on_video(self, publisher_id: str, paused: bool, reason: str | None) -> None:
        """Line adaptation paused (with its reason) or resumed a publisher's video to us."""


class MediaService:
    """Hearings placed on SFU workers; see the module docstring."""

    def __init__(self, pool: WorkerPool, recording: RecordingSettings | None = None) -> None:
        self.pool = pool
        self.recording = recording
        self._listeners: dict[tuple[HearingId, ParticipantId], PeerListener] = {}
        self._placed: set[HearingId] = set()
        self._placing = asyncio.Lock()
        self._started = False
        self._hearings: dict[HearingId, HearingMedia] = {}
        pool.on("offer", self._on_offer)
        pool.on("consumer", self._on_consumer)
        pool.on("connectionstatechange", self._on_state)
        pool.on("peerclose", self._on_peer_close)
        pool.on("workerdied", self._on_worker_died)
        pool.on("recordingerror", self._on_recording_error)
        pool.on("video", self._on_video)

    def hearing(self, hearing_id: HearingId) -> HearingMedia:
        media = self._hearings.get(hearing_id)
        if media is None:
            media = self._hearings[hearing_id] = HearingMedia(self, hearing_id)
        return media

    async def ensure_router(self, hearing_id: HearingId) -> None:
        """Place the hearing on a worker if it is not; the workers start on first use."""
        async with self._placing:
            if not self._started:
                await self.pool.start()
                self._started = True
            if hearing_id not in self._placed:
                await self.pool.create_router(hearing_id)
                self._placed.add(hearing_id)

    def listen(
        self, hearing_id: HearingId, participant_id: ParticipantId, listener: PeerListener
    ) -> None:
        self._listeners[hearing_id, participant_id] = listener

    def unlisten(self, hearing_id: HearingId, participant_id: ParticipantId) -> None:
        self._listeners.pop((hearing_id, participant_id), None)

    def _listener(self, hearing: HearingId, peer: ParticipantId) -> PeerListener | None:
        return self._listeners.get((hearing, peer))

    def _on_offer(self, hearing: HearingId, peer: ParticipantId, sdp: str) -> None:
        if (listener := self._listener(hearing, peer)) is not None:
            listener.on_server_offer(sdp)

    def _on_consumer(self, hearing: HearingId, peer: ParticipantId, info: dict[str, Any]) -> None:
        listener = self._listener(hearing, peer)
        if listener is not None and info.get("mid"):
            listener.on_track(
                str(info["mid"]),
                str(info["producer_peer"]),
                str(info["kind"]),
                str(info.get("source") or ""),
            )

    def _on_state(self, hearing: HearingId, peer: ParticipantId, state: str) -> None:
        if (listener := self._listener(hearing, peer)) is not None:
            listener.on_connection_state(state)

    def _on_peer_close(self, hearing: HearingId, peer: ParticipantId, reason: CloseReason) -> None:
        listener = self._listeners.pop((hearing, peer), None)
        if listener is not None:
            listener.on_peer_closed(reason)

    def _on_video(
        self,
        hearing: HearingId,
        peer: ParticipantId,
        publisher: ParticipantId,
        paused: bool,
        reason: str | None,
    ) -> None:
        if (listener := self._listener(hearing, peer)) is not None:
            listener.on_video(str(publisher), paused, reason)

    def _on_recording_error(self, hearing: HearingId, code: str, message: str) -> None:
        media = self._hearings.get(hearing)
        if media is not None:
            media.recording_failed = True
            if media.on_recording_error is not None:
                media.on_recording_error(code, message)

    def _on_worker_died(self, index: int, hearing_ids: list[HearingId]) -> None:
        log.error("SFU worker %d died; hearings %s will be placed again", index, hearing_ids)
        self._placed.difference_update(hearing_ids)
        for hearing_id in hearing_ids:
            media = self._hearings.get(hearing_id)
            if media is not None:
                media.worker_died()

    async def close(self) -> None:
        self._listeners.clear()
        if self._started:
            await self.pool.close()


class HearingMedia:
    """One hearing's media as the rules and the connections drive it (`live.MediaRouting`)."""

    def __init__(self, service: MediaService, hearing_id: HearingId) -> None:
        self._service = service
        self._pool = service.pool
        self.hearing_id = hearing_id
        self._rooms: dict[ParticipantId, str] = {}
        self._muted: dict[ParticipantId, bool] = {}
        self._peers: set[ParticipantId] = set()
        self._not_recorded: set[ParticipantId] = set()
        self._audio_only: set[ParticipantId] = set()  # asked for no video (line adaptation)
        self.recording_id: RecordingId | None = None
        # Why the started recording is paused; None while it runs. A recess pauses it with
        # RECESS, which clients are not told again (the hearing state says it).
        self._pause: PauseReason | None = None
        self.recording_failed = False
        # Set by the hearing: told at once when the recording fails (the disk is full, ...).
        self.on_recording_error: Any = None
        # After its worker died while recording: record again (in a new package, paused as it
        # was) when the hearing is placed on a worker again, i.e. when the next peer comes.
        self._record_again: tuple[PauseReason | None] | None = None

    def _router(self) -> RouterHandle:
        """The hearing's router in its worker; KeyError if it is not placed (worker died)."""
        return self._pool.router(self.hearing_id)

    def room_for(self, participant_id: ParticipantId) -> str:
        return self._rooms.get(participant_id, alone(participant_id))

    async def add_peer(self, participant_id: ParticipantId, listener: PeerListener) -> None:
        """Create the participant's SFU peer (replacing a stale one) in the room the rules chose.

        Raises WorkerDiedError if the worker died meanwhile.
        """
        await self._service.ensure_router(self.hearing_id)
        if self._record_again is not None:
            await self._resume_after_worker_death(self._record_again[0])
        await self.remove_peer(participant_id, CloseReason.DUPLICATE_SESSION)
        self._service.listen(self.hearing_id, participant_id, listener)
        await self._router().add_peer(participant_id, self.room_for(participant_id))
        self._peers.add(participant_id)
        if self._muted.get(participant_id):
            await self._router().set_paused(participant_id, "audio", True)
        if participant_id in self._audio_only:
            await self._router().set_audio_only(participant_id, True)

    def worker_died(self) -> None:
        """The hearing's worker died: its peers are gone, and the recording it was writing is
        unfinished (start-up recovery seals it with an incident). A hearing that was recording
        records again in a new package once it is placed again (issue 16.3)."""
        self._peers.clear()
        if self.recording_id is not None:
            self._record_again = (self._pause,)
        self.recording_id, self._pause = None, None

    async def _resume_after_worker_death(self, pause: PauseReason | None) -> None:
        self._record_again = None
        if self._service.recording is None:
            return
        await self.hearing_state(HearingState.IN_SESSION)
        if pause is not None:
            await self._router().pause_recording(pause)
            self._pause = pause

    async def remove_peer(self, participant_id: ParticipantId, reason: CloseReason) -> None:
        """Close the participant's peer if there is one; never raises."""
        self._service.unlisten(self.hearing_id, participant_id)
        if participant_id not in self._peers:
            return
        self._peers.discard(participant_id)
        with contextlib.suppress(KeyError, WorkerError):
            await self._router().remove_peer(participant_id, reason)

    async def handle_offer(self, participant_id: ParticipantId, sdp: str) -> str:
        return await self._router().handle_offer(participant_id, sdp)

    async def handle_answer(self, participant_id: ParticipantId, sdp: str) -> None:
        await self._router().handle_answer(participant_id, sdp)

    async def place(self, participant_id: ParticipantId, room: str | None) -> None:
        target = room if room is not None else alone(participant_id)
        self._rooms[participant_id] = target
        if participant_id in self._peers:
            await self._quietly(self._router().set_room(participant_id, target))

    async def set_muted(self, participant_id: ParticipantId, muted: bool) -> None:
        self._muted[participant_id] = muted
        if participant_id in self._peers:
            await self._quietly(self._router().set_paused(participant_id, "audio", muted))

    async def set_audio_only(self, participant_id: ParticipantId, enabled: bool) -> None:
        """Send this participant no video (or video again); kept for its next peer too."""
        if enabled:
            self._audio_only.add(participant_id)
        else:
            self._audio_only.discard(participant_id)
        if participant_id in self._peers:
            await self._quietly(self._router().set_audio_only(participant_id, enabled))

    async def set_screen(self, participant_id: ParticipantId, mid: str | None) -> None:
        """Forward (and record) the participant's m-line `mid` as their shared screen, or
        (None) stop: the SFU holds any stream it was not told about (issue 13.4)."""
        if mid is not None or participant_id in self._peers:
            await self._quietly(self._router().set_screen(participant_id, mid))

    async def peer_stats(self) -> dict[ParticipantId, dict[str, Any]]:
        """Each connected participant's connection figures as the SFU sees them (round trip,
        loss, bit rates: `server.sfu.quality.PeerStats`); empty when the media server is gone
        (the figures are a help to the court, never a reason to fail a request)."""
        try:
            figures = await self._router().peer_stats()
        except (KeyError, WorkerError):
            return {}
        return {ParticipantId(f["peer"]): f for f in figures}

    async def _quietly(self, call: Any) -> None:
        # A peer that has just gone (its worker died, it closed) takes its routing with it; the
        # rule is applied again when it comes back.
        try:
            await call
        except (KeyError, WorkerDiedError):
            log.info("hearing %s: routing change for a peer that is gone", self.hearing_id)
        except WorkerError as exc:
            if exc.code not in ("KeyError", "PeerClosedError"):
                raise

    # -- the evidence recording ------------------------------------------------------------

    async def set_recorded(self, participant_id: ParticipantId, recorded: bool) -> None:
        """Record this participant's media or not (not while in a private caucus room)."""
        if recorded:
            self._not_recorded.discard(participant_id)
        else:
            self._not_recorded.add(participant_id)
        if self.recording_id is not None:
            await self._quietly(self._router().set_recorded(participant_id, recorded))

    @property
    def recording(self) -> bool:
        """Whether the evidence recording runs now (started, not paused, not failed)."""
        return self.recording_id is not None and self._pause is None and not self.recording_failed

    @property
    def recording_pause(self) -> RecordingPause | None:
        """The reason given to `pause_recording` while the recording is interrupted by it;
        None while it runs, for the recess pause, when it failed or has not started."""
        if self.recording_id is None or self.recording_failed or self._pause is None:
            return None
        if self._pause is PauseReason.RECESS:
            return None
        return RecordingPause(self._pause.value)

    async def pause_recording(self, reason: RecordingPause, note: str) -> None:
        """Interrupt the running recording for a lawful reason. Raises WorkerError.

        The rules' reason becomes the recording's here, once: the recording's vocabulary
        (PauseReason) is the rules' (RecordingPause) plus the recess."""
        if self.recording_id is None or self._pause is not None:
            return
        pause = PauseReason(reason.value)
        await self._router().pause_recording(pause, note)
        self._pause = pause

    async def resume_recording(self) -> None:
        """Resume after `pause_recording`. Raises WorkerError."""
        if self.recording_id is None or self._pause is None:
            return
        await self._router().resume_recording()
        self._pause = None

    async def hearing_state(self, state: HearingState) -> SealedRecording | None:
        """Follow the hearing: record in session, pause for a recess, seal when it closes.

        A recess during an interruption (`pause_recording`) keeps the interruption and its
        reason; going back in session resumes the recording either way. Returns the sealed
        recording when the hearing closes. Raises WorkerError if the recording cannot start or
        be sealed (the caller tells the court).
        """
        settings = self._service.recording
        if settings is None:
            return None
        if state is HearingState.IN_SESSION:
            if self.recording_id is None:
                await self._service.ensure_router(self.hearing_id)
                recording_id = RecordingId(new_id())
                await self._router().start_recording(
                    settings.root,
                    signing_key=settings.signing_key,
                    archive_keys=settings.archive_keys,
                    recipient_pems=[settings.playback_recipient]
                    if settings.playback_recipient
                    else [],
                    recording_id=recording_id,
                    not_recorded=sorted(self._not_recorded),
                    tsa=settings.tsa,
                )
                self.recording_id, self._pause = recording_id, None
                self.recording_failed = False
            elif self._pause is not None:
                await self._router().resume_recording()
                self._pause = None
        elif state is HearingState.RECESS and self.recording_id is not None and self._pause is None:
            await self._router().pause_recording(PauseReason.RECESS)
            self._pause = PauseReason.RECESS
        elif state is HearingState.CLOSED and self.recording_id is not None:
            self.recording_id, self._pause = None, None
            return await self._router().stop_recording()
        return None
