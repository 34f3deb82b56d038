"""Station backup recordings: registered by the hearing's station, uploaded, received.

The station records its own camera and microphone into a sealed evidence package (station
client, ARCHITECTURE 3) and registers it with the court first: the hearing's event log then
holds the key the backup is signed with (`station.backup_started`). After the hearing the
station uploads the package file by file and asks the court to take it; the court verifies it
against that registered key - never a key inside the upload - and takes it only if it is
intact (verify exit 0, or 2: declared gaps), logging `station.backup_received` with its root
hash. The files themselves are the `StationBackupStore`'s (server/recording); the decisions
are here. Who may do what: only the hearing's own station registers and sends; presiding
staff play received backups back (``access``).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recordings import Report, VerifyKey
from server.auth.principals import Principal, StationPrincipal
from server.clock import Clock
from server.enums import EventKind, HearingState
from server.errors import CourtError, ErrorCode
from server.hearings.access import forbidden, managed_hearing, readable_hearing
from server.ids import HearingId, RecordingId, StationId
from server.recording.station_backups import StationBackupStore
from server.storage.eventlog import EventLogRepository
from server.storage.models import HearingEvent

# Station backup recordings a hearing accepts: a station reconnecting re-registers the same
# one, so a handful is plenty; the bound keeps a hostile station from flooding the event log.
MAX_STATION_BACKUPS = 50


@dataclass(frozen=True, slots=True)
class StationBackup:
    """A station's local backup recording of a hearing, as the event log holds it."""

    recording_id: RecordingId
    key_id: str  # of the Ed25519 key the station signs the backup with
    station_id: StationId
    recipients: tuple[str, ...]  # X25519 public keys (PEM) to seal the backup for
    created: bool  # False: the same registration was already logged


@dataclass(frozen=True, slots=True)
class BackupReceipt:
    """The court's answer to a station asking it to take an uploaded backup."""

    report: Report  # the verification against the key the station registered
    received: bool  # intact (verify 0 or 2): taken, logged, never written again


@dataclass(frozen=True, slots=True)
class BackupState:
    """Where one registered backup stands, as the event log tells it."""

    recording_id: str
    station_id: str | None
    registered_at: datetime
    received: bool  # the court took it intact (``station.backup_received``)
    root_hash: str | None  # of the received package


BACKUP_EVENT_KINDS = (EventKind.STATION_BACKUP_STARTED, EventKind.STATION_BACKUP_RECEIVED)


def backup_states(events: Iterable[HearingEvent]) -> list[BackupState]:
    """Each backup registered in `events` (one hearing's log or several), in order, and whether
    the court received it: the one reading of the two event kinds, for the hearing's summary
    and the station's status alike."""
    states: dict[str, BackupState] = {}
    for e in events:
        rid = str(e.data.get("recording_id", ""))
        if e.kind == EventKind.STATION_BACKUP_STARTED and rid not in states:
            station = e.data.get("station_id")
            states[rid] = BackupState(
                rid, None if station is None else str(station), e.at, False, None
            )
        elif e.kind == EventKind.STATION_BACKUP_RECEIVED and rid in states:
            root = e.data.get("root_hash")
            states[rid] = dataclasses.replace(
                states[rid], received=True, root_hash=None if root is None else str(root)
            )
    return list(states.values())


async def _registered_backup_key(
    db: AsyncSession, hearing_id: HearingId, recording_id: str
) -> VerifyKey:
    """The key a station registered backup `recording_id` of the hearing with (NOT_FOUND if
    none): what the backup is verified against, never a key inside the package."""
    for entry in await EventLogRepository(db).list(
        hearing_id, kind=EventKind.STATION_BACKUP_STARTED
    ):
        if entry.data.get("recording_id") == recording_id:
            return VerifyKey.from_raw(base64.b64decode(str(entry.data["verify_key"])))
    raise CourtError(
        ErrorCode.NOT_FOUND, "no backup recording of this hearing is registered under that id"
    )


class StationBackupService:
    """Station backups of a court's hearings; see the module docstring."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, store: StationBackupStore
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.store = store

    async def register(
        self,
        principal: Principal,
        hearing_id: HearingId,
        recording_id: RecordingId,
        verify_key: VerifyKey,
        recipients: Sequence[str],
    ) -> StationBackup:
        """The hearing's own station registers the backup recording it makes locally, signed
        with `verify_key`'s private half and sealed for `recipients` (the archive keys and the
        playback key the court's own recordings are sealed for; none when recording is off).

        Logged as ``station.backup_started`` with the recording id, the key (id and raw key,
        base64) and the station. Registering the same recording with the same key again logs
        nothing (the station does so after reconnecting); the result then has ``created``
        False.

        Raises NOT_FOUND (a hearing the principal may not read), FORBIDDEN (anyone but the
        hearing's station), WRONG_STATE (the hearing is closed, or the court has no archive
        key), CONFLICT (the recording is registered with another key, or the hearing already
        has MAX_STATION_BACKUPS).
        """
        async with self._sessions.begin() as db:
            hearing = await readable_hearing(db, principal, hearing_id, lock=True)
            # A station reads only the hearings held at it, so this is the hearing's station.
            if not isinstance(principal, StationPrincipal):
                raise forbidden("register a station backup recording")
            if hearing.state is HearingState.CLOSED:
                raise CourtError(
                    ErrorCode.WRONG_STATE, "the hearing is closed", state=hearing.state.value
                )
            if not recipients:
                raise CourtError(
                    ErrorCode.WRONG_STATE,
                    "the court has no archive key configured: recordings cannot be sealed",
                )
            backup = StationBackup(
                recording_id=recording_id,
                key_id=verify_key.key_id,
                station_id=principal.station_id,
                recipients=tuple(recipients),
                created=True,
            )
            events = EventLogRepository(db)
            registered = await events.list(hearing.id, kind=EventKind.STATION_BACKUP_STARTED)
            for entry in registered:
                if entry.data.get("recording_id") != recording_id:
                    continue
                if entry.data.get("key_id") != backup.key_id:
                    raise CourtError(
                        ErrorCode.CONFLICT,
                        f"recording {recording_id} is registered with another key",
                        key_id=entry.data.get("key_id"),
                    )
                return dataclasses.replace(backup, created=False)
            if len(registered) >= MAX_STATION_BACKUPS:
                raise CourtError(
                    ErrorCode.CONFLICT,
                    f"this hearing has {MAX_STATION_BACKUPS} station backup recordings "
                    "registered; no more are accepted",
                    limit=MAX_STATION_BACKUPS,
                )
            await events.append(
                hearing.id,
                at=self._clock.now(),
                actor=principal.actor,
                kind=EventKind.STATION_BACKUP_STARTED,
                data={
                    "recording_id": recording_id,
                    "key_id": backup.key_id,
                    # The whole key, encoded as in the package's recording.json: what an
                    # appeal court checks the backup's signatures against.
                    "verify_key": base64.b64encode(verify_key.raw).decode(),
                    "station_id": principal.station_id,
                },
            )
            return backup

    async def _station_key(
        self, principal: Principal, hearing_id: HearingId, recording_id: RecordingId
    ) -> VerifyKey:
        """The key the hearing's station registered backup `recording_id` with: what its
        upload is verified against (never a key inside the upload).

        Raises NOT_FOUND (a hearing the principal may not read, or no such backup registered),
        FORBIDDEN (anyone but the hearing's station).
        """
        async with self._sessions.begin() as db:
            hearing = await readable_hearing(db, principal, hearing_id)
            if not isinstance(principal, StationPrincipal):
                raise forbidden("send a station backup recording")
            return await _registered_backup_key(db, HearingId(hearing.id), recording_id)

    async def reviewed_key(
        self, principal: Principal, hearing_id: HearingId, recording_id: str
    ) -> VerifyKey:
        """For presiding staff playing a received station backup: the key its station
        registered, which it must verify against. Raises NOT_FOUND, FORBIDDEN."""
        async with self._sessions() as db:
            _, hearing = await managed_hearing(db, principal, hearing_id, "review recordings")
            return await _registered_backup_key(db, HearingId(hearing.id), recording_id)

    async def _log_received(
        self,
        principal: Principal,
        hearing_id: HearingId,
        recording_id: RecordingId,
        *,
        root_hash: str | None,
        status: str | None,
        size: int,
    ) -> None:
        """The court took the station's backup (verified against the registered key)."""
        async with self._sessions.begin() as db:
            hearing = await readable_hearing(db, principal, hearing_id, lock=True)
            await EventLogRepository(db).append(
                hearing.id,
                at=self._clock.now(),
                actor=principal.actor,
                kind=EventKind.STATION_BACKUP_RECEIVED,
                data={
                    "recording_id": recording_id,
                    "root_hash": root_hash,
                    "status": status,
                    "bytes": size,
                },
            )

    async def _upload_in_progress(
        self, principal: Principal, hearing_id: HearingId, recording_id: RecordingId
    ) -> None:
        """The hearing's station may send this backup now: it is registered and not received
        yet (CONFLICT once it is). Raises as `_station_key`."""
        await self._station_key(principal, hearing_id, recording_id)
        if await self.store.received(recording_id):
            raise CourtError(ErrorCode.CONFLICT, "this backup recording was already received")

    async def store_file(
        self,
        principal: Principal,
        hearing_id: HearingId,
        recording_id: RecordingId,
        name: str,
        chunks: AsyncIterator[bytes],
    ) -> None:
        """One file of the package, streamed to disk (sent again: replaced, until received).
        Raises NOT_FOUND, FORBIDDEN, CONFLICT, and the store's BAD_FIELD / TOO_LARGE."""
        await self._upload_in_progress(principal, hearing_id, recording_id)
        await self.store.store_file(recording_id, name, chunks)

    async def stored_files(
        self, principal: Principal, hearing_id: HearingId, recording_id: RecordingId
    ) -> dict[str, str]:
        """What has arrived of an upload in progress, by file name with its SHA-256 (to resume
        it). Raises NOT_FOUND, FORBIDDEN, CONFLICT."""
        await self._upload_in_progress(principal, hearing_id, recording_id)
        return await self.store.stored_files(recording_id)

    async def receive(
        self, principal: Principal, hearing_id: HearingId, recording_id: RecordingId
    ) -> BackupReceipt:
        """Verify the uploaded package against the registered key and take it if intact
        (logged); otherwise it stays where it is for the station to send again.
        Raises NOT_FOUND, FORBIDDEN."""
        key = await self._station_key(principal, hearing_id, recording_id)
        report = await self.store.accept(recording_id, key)
        received = report.exit_code in (0, 2)
        if received:
            await self._log_received(
                principal,
                hearing_id,
                recording_id,
                root_hash=report.root_hash,
                status=report.status,
                size=report.bytes,
            )
        return BackupReceipt(report, received)
