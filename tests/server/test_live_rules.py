"""The hearing room's rules, table-driven, on a real database.

The SFU and the sockets are the two edges of `LiveHearing`; here they are recorders of what the
room asked of them (where each person's media is placed, what each client was told). The same
rules are checked on the wire with real peers in tests/e2e.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import admin
from server.enums import (
    CaseKind,
    HearingRole,
    HearingState,
    ParticipantState,
    StaffRole,
)
from server.errors import CourtError
from server.hearings.live import (
    MAIN_ROOM,
    DepartureRecorded,
    HearingStateChanged,
    IdentityCheck,
    LiveEvent,
    LiveHearing,
    MutedChanged,
    UnmuteRequested,
)
from server.hearings.rooms import HearingRooms
from server.hearings.service import CourtService
from server.ids import HearingId, ParticipantId
from server.storage.db import create_engine, create_sessionmaker, upgrade_async
from server.storage.eventlog import EventLogRepository, verify_chain
from server.storage.models import HearingEvent, Participant
from signaling.enums import RecordingPause
from signaling.reasons import CloseReason
from tests.conftest import FakeClock
from tests.factories import add_case, add_hearing, add_participant

P = ParticipantState
R = HearingRole


@dataclass
class Routing:
    rooms: dict[ParticipantId, str | None] = field(default_factory=dict)
    muted: dict[ParticipantId, bool] = field(default_factory=dict)
    recorded: dict[ParticipantId, bool] = field(default_factory=dict)
    states: list[HearingState] = field(default_factory=list)

    async def place(self, participant_id: ParticipantId, room: str | None) -> None:
        self.rooms[participant_id] = room

    async def set_muted(self, participant_id: ParticipantId, muted: bool) -> None:
        self.muted[participant_id] = muted

    async def set_recorded(self, participant_id: ParticipantId, recorded: bool) -> None:
        self.recorded[participant_id] = recorded

    async def hearing_state(self, state: HearingState) -> None:
        self.states.append(state)
        if state in (HearingState.IN_SESSION, HearingState.CLOSED):
            self.paused.clear()  # back in session the recording resumes, as HearingMedia's does

    paused: list[RecordingPause] = field(default_factory=list)

    @property
    def recording(self) -> bool:
        in_session = bool(self.states) and self.states[-1] is HearingState.IN_SESSION
        return in_session and not self.paused

    @property
    def recording_pause(self) -> RecordingPause | None:
        # Only `pause_recording` sets it; the recess pause is the hearing state's own.
        return self.paused[-1] if self.paused else None

    async def pause_recording(self, reason: RecordingPause, note: str) -> None:
        self.paused.append(reason)

    async def resume_recording(self) -> None:
        self.paused.clear()

    screens: dict[ParticipantId, str | None] = field(default_factory=dict)

    async def set_screen(self, participant_id: ParticipantId, mid: str | None) -> None:
        self.screens[participant_id] = mid


@dataclass
class Clients:
    events: dict[ParticipantId, list[LiveEvent]] = field(default_factory=dict)
    closed: dict[ParticipantId, CloseReason] = field(default_factory=dict)

    async def send(self, participant_id: ParticipantId, event: LiveEvent) -> None:
        self.events.setdefault(participant_id, []).append(event)

    async def close(self, participant_id: ParticipantId, reason: CloseReason) -> None:
        self.closed[participant_id] = reason


@dataclass
class Room:
    live: LiveHearing
    ids: dict[str, ParticipantId]
    routing: Routing
    clients: Clients
    sessions: async_sessionmaker[AsyncSession]

    def __getitem__(self, name: str) -> ParticipantId:
        return self.ids[name]

    def state(self, name: str) -> ParticipantState:
        return self.live.attendees[self.ids[name]].state

    async def log_count(self) -> int:
        async with self.sessions() as db:
            count = await db.scalar(select(func.count()).select_from(HearingEvent))
        assert count is not None
        return count

    async def events(self) -> list[HearingEvent]:
        async with self.sessions() as db:
            return list(await EventLogRepository(db).list(self.live.hearing_id))

    async def db_state(self, name: str) -> ParticipantState:
        async with self.sessions() as db:
            state = await db.scalar(select(Participant.state).where(Participant.id == self[name]))
        assert state is not None
        return state

    async def enter(self, *names: str) -> None:
        """Connect and complete the entry steps."""
        for name in names:
            attendee = await self.live.connect(self[name])
            if attendee.identity_method is None:
                await self.live.confirm_identity(self[name], name.upper(), "1234")
                await self.live.consent(
                    self[name], ["online_proceedings", "court_rules", "no_recording"]
                )


PEOPLE = [
    ("judge", R.JUDGE),
    ("clerk", R.CLERK),
    ("mediator", R.MEDIATOR),
    ("station", R.STATION),
    ("plaintiff", R.PLAINTIFF),
    ("defendant", R.DEFENDANT),
    ("agent", R.AGENT),
    ("witness", R.WITNESS),
    ("expert", R.EXPERT),
    ("observer", R.OBSERVER),
]


@pytest.fixture
async def room(tmp_path: Any, clock: FakeClock) -> AsyncIterator[Room]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    ids: dict[str, ParticipantId] = {}
    async with sessions.begin() as db:
        court = await admin.ensure_court(db, clock, "C")
        judge = await admin.add_user(
            db,
            clock,
            court=court,
            username="j",
            display_name="J",
            role=StaffRole.JUDGE,
            password="long enough pw",
        )
        station = await admin.add_station(db, clock, court=court, name="S")
        case = await add_case(
            db, clock, court_id=court.id, created_by=judge.id, kind=CaseKind.MEDIATION
        )
        hearing = await add_hearing(
            db,
            clock,
            case,
            presiding_user_id=judge.id,
            station_id=station.station.id,
            state=HearingState.OPENED,
            length=timedelta(hours=1),
        )
        for name, role in PEOPLE:
            row = await add_participant(
                db,
                clock,
                hearing.id,
                role,
                name,
                user_id=judge.id if role in (R.JUDGE, R.CLERK, R.MEDIATOR) else None,
                station_id=station.station.id if role is R.STATION else None,
                legal_name=name.upper(),
                id_number_tail="1234",
            )
            ids[name] = ParticipantId(row.id)
        agent = await db.get(Participant, ids["agent"])
        assert agent is not None
        agent.represents_id = ids["plaintiff"]
        hearing_id = HearingId(hearing.id)
    routing, clients = Routing(), Clients()
    service = CourtService(sessions, clock)
    rooms = HearingRooms(sessions, clock, lambda _h: routing, lambda _h: clients, service)
    live = await rooms.open(hearing_id)
    yield Room(live, ids, routing, clients, sessions)
    await engine.dispose()


async def test_party_entry_identity_and_consent(room: Room) -> None:
    live = room.live
    attendee = await live.connect(room["plaintiff"])
    assert attendee.state is P.INVITED
    assert room.routing.rooms[room["plaintiff"]] is None
    with pytest.raises(CourtError) as err:
        await live.confirm_identity(room["plaintiff"], "PLAINTIFF", "9999")
    assert (err.value.code, err.value.details["attempts_left"]) == ("BAD_FIELD", 2)
    await live.confirm_identity(room["plaintiff"], " plain tiff ", "1234")  # spacing, case
    assert room.state("plaintiff") is P.IDENTITY_CONFIRMED
    with pytest.raises(CourtError) as err:
        await live.consent(room["plaintiff"], ["online_proceedings", "court_rules"])
    assert err.value.details["missing"] == ["no_recording"]
    await live.consent(room["plaintiff"], ["online_proceedings", "court_rules", "no_recording"])
    assert room.state("plaintiff") is P.WAITING
    assert await room.db_state("plaintiff") is P.WAITING
    async with room.sessions() as db:
        events = await EventLogRepository(db).list(live.hearing_id)
    kinds = [e.kind for e in events]
    assert kinds == [
        "participant.connected",
        "identity.failed",
        "identity.confirmed",
        "consent.given",
        "participant.joined",
    ]
    assert verify_chain(events) is None


async def test_identity_attempts_are_limited_and_the_station_can_attest(room: Room) -> None:
    live = room.live
    await live.connect(room["defendant"])
    for _ in range(3):
        with pytest.raises(CourtError):
            await live.confirm_identity(room["defendant"], "x", "0000")
    with pytest.raises(CourtError, match="too many attempts"):
        await live.confirm_identity(room["defendant"], "DEFENDANT", "1234")
    await live.connect(room["plaintiff"])
    with pytest.raises(CourtError) as err:  # a party checks nobody
        await live.attest_identity(room["plaintiff"], room["defendant"])
    assert err.value.code == "FORBIDDEN"
    await live.connect(room["station"])
    with pytest.raises(CourtError) as err:  # in person: the name and digits read are needed
        await live.attest_identity(room["station"], room["defendant"])
    assert err.value.code == "BAD_FIELD"
    with pytest.raises(CourtError, match="do not match") as err:
        await live.attest_identity(
            room["station"], room["defendant"], name="DEFENDANT", id_digits="9999"
        )
    with pytest.raises(CourtError) as err:  # a station sees people, not video
        await live.attest_identity(
            room["station"], room["defendant"], check=IdentityCheck.DOCUMENT_ON_VIDEO
        )
    assert err.value.code == "BAD_FIELD"
    await live.attest_identity(
        room["station"], room["defendant"], name="defendant", id_digits="1234", note="身份证"
    )
    assert live.attendees[room["defendant"]].identity_method == "station_attested"
    assert room.state("defendant") is P.IDENTITY_CONFIRMED
    events = await room.events()
    confirmed = [e for e in events if e.kind == "identity.confirmed"]
    assert confirmed[-1].actor == f"participant:{room['station']}"
    assert confirmed[-1].data["check"] == "in_person"
    assert confirmed[-1].data["record_matched"] is True


async def test_presiding_staff_check_a_locked_out_party_another_way(room: Room) -> None:
    live = room.live
    await live.connect(room["plaintiff"])
    for _ in range(3):
        with pytest.raises(CourtError):
            await live.confirm_identity(room["plaintiff"], "x", "0000")
    await live.connect(room["judge"])
    with pytest.raises(CourtError) as err:  # "another way" is said in the note
        await live.attest_identity(room["judge"], room["plaintiff"], check=IdentityCheck.OTHER)
    assert err.value.code == "BAD_FIELD"
    await live.attest_identity(
        room["judge"], room["plaintiff"], check=IdentityCheck.DOCUMENT_ON_VIDEO
    )
    await live.consent(room["plaintiff"], ["online_proceedings", "court_rules", "no_recording"])
    assert room.state("plaintiff") is P.WAITING
    assert await live.admit(room["judge"], room["plaintiff"]) == 1
    confirmed = [e for e in await room.events() if e.kind == "identity.confirmed"]
    assert confirmed[-1].actor == f"participant:{room['judge']}"
    assert confirmed[-1].data["method"] == "staff_attested"
    assert confirmed[-1].data["check"] == "document_on_video"
    assert confirmed[-1].data["record_matched"] is None


async def test_admission_follows_state_lock_and_role(room: Room) -> None:
    live = room.live
    await room.enter("judge", "plaintiff", "defendant", "witness", "expert", "observer")
    assert room.routing.rooms[room["judge"]] == MAIN_ROOM
    assert all(room.state(n) is P.WAITING for n in ("plaintiff", "witness", "observer"))
    await live.lock_room(room["judge"], True)
    with pytest.raises(CourtError, match="locked"):
        await live.admit(room["judge"], room["plaintiff"])
    await live.lock_room(room["judge"], False)
    assert await live.admit(room["judge"], room["plaintiff"]) == 1
    assert room.routing.rooms[room["plaintiff"]] == MAIN_ROOM
    with pytest.raises(CourtError) as err:
        await live.admit(room["judge"], room["witness"])
    assert err.value.code == "FORBIDDEN"
    assert await live.admit(room["judge"], None) == 2  # defendant and observer, not witnesses
    assert room.state("witness") is P.WAITING
    assert room.state("expert") is P.WAITING
    await live.send_to_waiting(room["judge"], room["observer"])
    assert room.routing.rooms[room["observer"]] is None


async def test_witness_is_called_then_dismissed_for_good(room: Room) -> None:
    live = room.live
    await room.enter("judge", "witness")
    with pytest.raises(CourtError, match="during the session"):
        await live.call_witness(room["judge"], room["witness"])
    live.state = HearingState.IN_SESSION
    await live.call_witness(room["judge"], room["witness"])
    assert room.routing.rooms[room["witness"]] == MAIN_ROOM
    await live.dismiss_witness(room["judge"], room["witness"])
    assert room.clients.closed[room["witness"]] is CloseReason.DISMISSED
    assert room.state("witness") is P.LEFT
    assert room.routing.rooms[room["witness"]] is None
    with pytest.raises(CourtError, match="dismissed"):
        await live.connect(room["witness"])


async def test_arrivals_during_session_wait_unless_pre_admitted(room: Room) -> None:
    live = room.live
    await room.enter("judge")
    live.state = HearingState.IN_SESSION
    await live.pre_admit(room["judge"], [R.AGENT])
    with pytest.raises(CourtError):
        await live.pre_admit(room["judge"], [R.WITNESS])
    await room.enter("agent", "defendant")
    assert room.state("agent") is P.IN_HEARING
    assert room.state("defendant") is P.WAITING


async def test_private_rooms_route_media_apart(room: Room) -> None:
    live = room.live
    await room.enter("mediator", "judge", "plaintiff", "agent", "defendant", "witness")
    await live.admit(room["mediator"], None)
    await live.move_to_room(room["mediator"], [room["plaintiff"], room["agent"]], "甲方")
    assert room.routing.rooms[room["plaintiff"]] == "caucus:甲方"
    assert room.routing.rooms[room["agent"]] == "caucus:甲方"
    assert room.routing.rooms[room["defendant"]] == MAIN_ROOM
    # Caucus is off the record; the main room is on it.
    assert room.routing.recorded[room["plaintiff"]] is False
    assert room.routing.recorded[room["defendant"]] is True
    await live.join_room(room["mediator"], "甲方")
    assert room.routing.rooms[room["mediator"]] == "caucus:甲方"
    assert room.routing.recorded[room["mediator"]] is False
    for actor in ("plaintiff", "clerk_absent"):
        if actor in room.ids:
            with pytest.raises(CourtError) as err:
                await live.move_to_room(room[actor], [room["defendant"]], "x")
            assert err.value.code == "FORBIDDEN"
    with pytest.raises(CourtError):
        await live.move_to_room(room["mediator"], [room["witness"]], "x")
    # The log says who went where, not what was said.
    async with room.sessions() as db:
        moved = (
            await db.scalars(select(HearingEvent).where(HearingEvent.kind == "room.moved"))
        ).all()
    assert moved[0].data == {
        "participant_ids": [room["plaintiff"], room["agent"]],
        "room": "caucus:甲方",
    }
    # Parties in the caucus see only their room and staff in the roster.
    roster = live.roster_for(live.attendees[room["plaintiff"]])
    assert room["defendant"] not in {a.participant_id for a in roster}


async def test_agent_consultation_only_with_own_client_outside_session(room: Room) -> None:
    live = room.live
    await room.enter("judge", "plaintiff", "agent", "defendant")
    with pytest.raises(CourtError) as err:
        await live.open_consultation(room["agent"], room["defendant"])
    assert err.value.code == "FORBIDDEN"
    live.state = HearingState.IN_SESSION
    with pytest.raises(CourtError, match="outside the session"):
        await live.open_consultation(room["agent"], room["plaintiff"])
    live.state = HearingState.RECESS
    await live.open_consultation(room["agent"], room["plaintiff"])
    consult = f"consult:{room['agent']}"
    assert room.routing.rooms[room["plaintiff"]] == consult == room.routing.rooms[room["agent"]]
    await live.end_consultation(room["agent"])
    assert room.state("plaintiff") is P.WAITING


async def test_mute_and_unmute_rules(room: Room) -> None:
    live = room.live
    await room.enter("judge", "plaintiff", "defendant")
    await live.admit(room["judge"], None)
    assert await live.mute(room["judge"], None) == 2
    assert room.routing.muted == {room["plaintiff"]: True, room["defendant"]: True}
    assert isinstance(room.clients.events[room["plaintiff"]][-2], MutedChanged)
    with pytest.raises(CourtError) as err:
        await live.unmute(room["plaintiff"], room["plaintiff"])
    assert err.value.code == "FORBIDDEN"
    await live.request_unmute(room["plaintiff"])
    asked = room.clients.events[room["judge"]][-1]
    assert isinstance(asked, UnmuteRequested)
    assert asked.participant_id == room["plaintiff"]
    assert not any(isinstance(e, UnmuteRequested) for e in room.clients.events[room["defendant"]])
    await live.unmute(room["judge"], room["plaintiff"])
    assert room.routing.muted[room["plaintiff"]] is False
    with pytest.raises(CourtError, match="not muted"):
        await live.request_unmute(room["plaintiff"])
    with pytest.raises(CourtError) as err:
        await live.mute(room["plaintiff"], room["defendant"])
    assert err.value.code == "FORBIDDEN"


CAUSES = [
    (CloseReason.CLIENT_LEFT, P.LEFT, False),
    (CloseReason.NETWORK_LOST, P.DISCONNECTED, True),
    (CloseReason.ICE_FAILED, P.DISCONNECTED, True),
    (CloseReason.HEARTBEAT_LOST, P.DISCONNECTED, True),
    (CloseReason.STATION_POWER, P.DISCONNECTED, True),
    (CloseReason.STATION_NETWORK, P.DISCONNECTED, True),
    (CloseReason.REMOVED, P.REMOVED, False),
]


@pytest.mark.parametrize(("cause", "state", "excused"), CAUSES, ids=[c[0] for c in CAUSES])
async def test_departure_causes_are_evidence(
    room: Room, cause: CloseReason, state: ParticipantState, excused: bool
) -> None:
    live = room.live
    await room.enter("judge", "plaintiff")
    await live.admit(room["judge"], room["plaintiff"])
    await live.disconnect(room["plaintiff"], cause, "detail")
    assert room.state("plaintiff") is state
    assert await room.db_state("plaintiff") is state
    evidence = [e for e in room.clients.events[room["judge"]] if isinstance(e, DepartureRecorded)]
    assert [(e.participant_id, e.cause, e.excused) for e in evidence] == [
        (room["plaintiff"], cause, excused)
    ]
    assert room["plaintiff"] not in {
        p
        for p, events in room.clients.events.items()
        for e in events
        if isinstance(e, DepartureRecorded) and p != room["judge"]
    }
    if state is P.DISCONNECTED:  # a network drop keeps the place: back in the hearing
        await live.connect(room["plaintiff"])
        assert room.state("plaintiff") is P.IN_HEARING
        assert room.routing.rooms[room["plaintiff"]] == MAIN_ROOM


async def test_a_rejoin_before_the_drop_is_noticed_keeps_the_place(room: Room) -> None:
    """A page that rejoins while the server still holds its dead socket (the new connection
    replaces the old: DUPLICATE_SESSION) is back where it was, not in the waiting room."""
    live = room.live
    await room.enter("judge", "plaintiff", "defendant")
    await live.admit(room["judge"], room["plaintiff"])
    await live.connect(room["plaintiff"])  # the replacing connection
    await live.disconnect(room["plaintiff"], CloseReason.DUPLICATE_SESSION)  # the old one ends
    assert room.state("plaintiff") is P.IN_HEARING
    assert room.routing.rooms[room["plaintiff"]] == MAIN_ROOM
    await live.connect(room["defendant"])  # waiting stays waiting
    assert room.state("defendant") is P.WAITING


# Controls by role: (action, allowed roles). Everything else is refused with FORBIDDEN.
CONTROLS = [
    ("admit", {"judge", "clerk", "mediator"}),
    ("send_to_waiting", {"judge", "clerk", "mediator"}),
    ("mute", {"judge", "clerk", "mediator"}),
    ("lock_room", {"judge", "clerk", "mediator"}),
    ("set_spotlight", {"judge", "clerk", "mediator"}),
    ("move_to_room", {"judge", "mediator"}),
]


async def _control(
    live: LiveHearing, action: str, who: ParticipantId, target: ParticipantId
) -> None:
    if action == "admit":
        await live.admit(who, None)
    elif action == "send_to_waiting":
        await live.send_to_waiting(who, target)
    elif action == "mute":
        await live.mute(who, target)
    elif action == "lock_room":
        await live.lock_room(who, False)
    elif action == "set_spotlight":
        await live.set_spotlight(who, target)
    else:
        await live.move_to_room(who, [target], MAIN_ROOM)


ACTORS = ["judge", "clerk", "mediator", "station", "plaintiff", "agent", "observer"]


@pytest.mark.parametrize(("action", "allowed"), CONTROLS, ids=[c[0] for c in CONTROLS])
async def test_controls_by_role(room: Room, action: str, allowed: set[str]) -> None:
    live = room.live
    await room.enter(*ACTORS, "defendant")
    await live.admit(room["judge"], None)
    for actor in ACTORS:
        before = await room.log_count()
        if actor in allowed:
            # Put the defendant where the action can apply, then count from there.
            if action == "admit" and room.state("defendant") is not P.WAITING:
                await live.send_to_waiting(room["judge"], room["defendant"])
            if action == "send_to_waiting" and room.state("defendant") is not P.IN_HEARING:
                await live.admit(room["judge"], room["defendant"])
            if action == "mute" and live.attendees[room["defendant"]].muted:
                await live.unmute(room["judge"], room["defendant"])
            before = await room.log_count()
            await _control(live, action, room[actor], room["defendant"])
            assert await room.log_count() > before, (action, actor)
        else:
            with pytest.raises(CourtError) as err:
                await _control(live, action, room[actor], room["defendant"])
            assert err.value.code == "FORBIDDEN", (action, actor)
            assert await room.log_count() == before, (action, actor)


async def test_closing_ends_every_connection_with_judge_ended(room: Room) -> None:
    live = room.live
    await room.enter("judge", "plaintiff")
    await live.hearing_state_changed(HearingState.CLOSED, "调解成功 settled")
    assert room.clients.closed == {
        room["judge"]: CloseReason.JUDGE_ENDED,
        room["plaintiff"]: CloseReason.JUDGE_ENDED,
    }
    assert room.state("plaintiff") is P.LEFT
    with pytest.raises(CourtError, match="closed"):
        await live.connect(room["plaintiff"])


async def test_everyone_is_told_whether_they_are_on_the_record(room: Room) -> None:
    live = room.live
    await live.connect(room["judge"])
    for state, recording in (
        (HearingState.IN_SESSION, True),
        (HearingState.RECESS, False),
        (HearingState.IN_SESSION, True),
    ):
        await live.hearing_state_changed(state, "r")
        told = [e for e in room.clients.events[room["judge"]] if isinstance(e, HearingStateChanged)]
        # A recess is said by the state itself: it is no interruption with a reason.
        assert (told[-1].state, told[-1].recording, told[-1].recording_pause) == (
            state,
            recording,
            None,
        )
        assert live.recording_pause is None


async def test_presiding_staff_interrupt_the_recording_only_in_session_with_a_reason(
    room: Room,
) -> None:
    live = room.live
    for name in ("judge", "clerk", "plaintiff"):
        await live.connect(room[name])
    with pytest.raises(CourtError) as err:  # not in session yet
        await live.set_recording(room["clerk"], False, RecordingPause.NON_PUBLIC_EVIDENCE)
    assert err.value.code == "WRONG_STATE"
    await live.hearing_state_changed(HearingState.IN_SESSION, "开庭")
    with pytest.raises(CourtError) as err:
        await live.set_recording(room["plaintiff"], False, RecordingPause.NON_PUBLIC_EVIDENCE)
    assert err.value.code == "FORBIDDEN"
    with pytest.raises(CourtError) as err:
        await live.set_recording(room["clerk"], False)
    assert err.value.code == "BAD_FIELD"
    told = [e for e in room.clients.events[room["plaintiff"]] if isinstance(e, HearingStateChanged)]
    assert (told[-1].recording, told[-1].recording_pause) == (True, None)
    await live.set_recording(room["clerk"], False, RecordingPause.NON_PUBLIC_EVIDENCE, "证据")
    assert room.routing.paused == ["NON_PUBLIC_EVIDENCE"]
    with pytest.raises(CourtError) as err:
        await live.set_recording(room["judge"], False, RecordingPause.MEDIATION_OFF_RECORD)
    assert err.value.code == "WRONG_STATE"  # already interrupted
    for name in ("judge", "clerk", "plaintiff"):  # everyone connected is told, with the reason
        told = [e for e in room.clients.events[room[name]] if isinstance(e, HearingStateChanged)]
        assert (told[-1].state, told[-1].recording, told[-1].recording_pause) == (
            HearingState.IN_SESSION,
            False,
            RecordingPause.NON_PUBLIC_EVIDENCE,
        )
    # Whoever joins now is welcomed with the same (server/web/ws.py reads this property).
    assert live.recording_pause is RecordingPause.NON_PUBLIC_EVIDENCE
    await live.set_recording(room["judge"], True)
    assert room.routing.paused == []
    told = [e for e in room.clients.events[room["plaintiff"]] if isinstance(e, HearingStateChanged)]
    assert (told[-1].recording, told[-1].recording_pause) == (True, None)
    assert live.recording_pause is None
    async with room.sessions() as db:
        events = await EventLogRepository(db).list(live.hearing_id)
    logged = [(e.kind, e.data.get("reason")) for e in events if e.kind.startswith("recording.")]
    assert logged == [("recording.paused", "NON_PUBLIC_EVIDENCE"), ("recording.resumed", None)]
