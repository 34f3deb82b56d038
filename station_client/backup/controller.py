"""Keeping the station's backup in step with the hearing as the court tells it.

Design decisions:

* **Only what is on the record.** The backup follows the hearing as the server last told the
  station (``BackupController``): it records while the hearing is in session (or suspended for
  technical trouble: then most of all) and the station is in the main room; it pauses with the
  court's reason for a recess or an interruption (non-public evidence, mediation off the
  record), takes the station off its timeline outside the main room (waiting room, caucus) and
  seals when the hearing closes. While the line is down it carries on in the last state told,
  with the loss and the return noted on its signed timeline.
* **The court knows it.** Before the first frame the station registers the recording id and
  its verify key with the court (``POST /api/hearings/{id}/station-backups``, through
  ``station_client.court_api``); the court logs it in the hearing's hash-chained event log and
  answers with the archive recipients to encrypt for. An appeal court can then check that a
  backup package is the one the station announced, signed by the key it announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from recordings import ArchivePublicKey, PauseReason, RecordingId
from signaling import messages as m
from signaling.enums import HearingState

from .package import BackupState, StationBackup, verify_key_pem

log = logging.getLogger(__name__)

MAIN_ROOM = "main"

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
