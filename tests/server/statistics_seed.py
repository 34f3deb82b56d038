"""A court's December with known answers, for the statistics tests (REST and page).

Built with tests/factories.py and event log entries as the live room and the services write
them. The expected figures are written out by hand in EXPECTED (see each hearing's comment).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import admin
from server.enums import EventKind, HearingMode, HearingRole, HearingState
from server.storage.eventlog import EventLogRepository
from server.storage.models import Court, Hearing, Participant, StationStatus
from tests.conftest import FakeClock
from tests.factories import add_case, add_hearing, add_participant

STATION_B = "东村共享法庭"


def t(day: int, hour: int = 2, month: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=UTC)


@dataclass
class Seeded:
    station_a: str
    station_b: str
    judge: str
    mediator: str


async def _log(
    db: AsyncSession, hearing: Hearing, at: datetime, kind: EventKind, **data: Any
) -> None:
    await EventLogRepository(db).append(hearing.id, at=at, actor="test", kind=kind, data=data)


async def _state(db: AsyncSession, hearing: Hearing, at: datetime, to: HearingState) -> None:
    await _log(db, hearing, at, EventKind.HEARING_STATE, action="x", to=to.value, reason="")


async def _person(
    db: AsyncSession, hearing: Hearing, role: HearingRole, *, arrived: bool, station: str = ""
) -> Participant:
    p = await add_participant(
        db,
        FakeClock(hearing.scheduled_start),
        hearing.id,
        role,
        role.value,
        station_id=station or None,
    )
    if arrived:
        await _log(
            db,
            hearing,
            hearing.scheduled_start,
            EventKind.PARTICIPANT_JOINED,
            participant_id=p.id,
            state="in_hearing",
        )
    return p


async def _departed(
    db: AsyncSession, hearing: Hearing, p: Participant, cause: str, excused: bool
) -> None:
    await _log(
        db,
        hearing,
        hearing.scheduled_start,
        EventKind.PARTICIPANT_DEPARTED,
        participant_id=p.id,
        cause=cause,
        excused=excused,
        detail="",
        was="in_hearing",
    )


async def _recording(db: AsyncSession, hearing: Hearing, status: str, *confirmations: bool) -> None:
    at = hearing.scheduled_start
    await _log(
        db, hearing, at, EventKind.RECORDING_SEALED, recording_id="r", root_hash="ab", status=status
    )
    for ok in confirmations:
        kind = EventKind.RECORDING_CONFIRMED if ok else EventKind.RECORDING_DISPUTED
        await _log(db, hearing, at, kind, recording_id="r", root_hash="ab", matches=ok)


async def seed_december(
    sessions: async_sessionmaker[AsyncSession],
    court_id: str,
    station_a: str,
    user_ids: dict[str, str],
) -> Seeded:
    judge, mediator = user_ids["judge"], user_ids["mediator"]
    async with sessions.begin() as db:
        court = await db.get(Court, court_id)
        assert court is not None
        b = await admin.add_station(db, FakeClock(t(1)), court=court, name=STATION_B)
        station_b = b.station.id
        db.add(
            StationStatus(
                station_id=station_a,
                last_seen_at=t(20),
                self_test={
                    "at": t(20).isoformat(),
                    "items": [
                        {"check": "camera", "score": "good", "measured": {"fps": 25}},
                        {
                            "check": "network",
                            "score": "okay",
                            "measured": {"rtt_ms": 80.0, "loss": 0.01},
                        },
                    ],
                    "overall": "okay",
                },
                self_test_at=t(20),
                pending_backups=0,
            )
        )

        async def case(n: str, opened: datetime, cause: str, mode: HearingMode) -> Any:
            return await add_case(
                db,
                FakeClock(opened),
                court_id=court_id,
                created_by=judge,
                number=f"stat-{n}",
                cause=cause,
                mode=mode,
            )

        async def hearing(c: Any, at: datetime, presiding: str, station: str | None) -> Hearing:
            return await add_hearing(
                db, FakeClock(at), c, presiding_user_id=presiding, station_id=station
            )

        # H1: a held hearing at station A, closed: resolves C1 in 10.75 days; recording
        # complete and confirmed; the defendant never came (no-show); the station's line
        # dropped once (excused), the plaintiff left once (not excused), the close is not a
        # departure.
        c1 = await case("1", datetime(2026, 11, 21, 9, tzinfo=UTC), "private_lending", HM.HEARING)
        h1 = await hearing(c1, t(2), judge, station_a)
        await _state(db, h1, t(2), HearingState.IN_SESSION)
        plaintiff = await _person(db, h1, HearingRole.PLAINTIFF, arrived=True)
        await _person(db, h1, HearingRole.DEFENDANT, arrived=False)
        st = await _person(db, h1, HearingRole.STATION, arrived=True, station=station_a)
        await _departed(db, h1, st, "NETWORK_LOST", True)
        await _departed(db, h1, plaintiff, "CLIENT_LEFT", False)
        await _departed(db, h1, plaintiff, "JUDGE_ENDED", True)
        await _recording(db, h1, "complete", True)
        await _state(db, h1, t(2, 3), HearingState.CLOSED)
        # H2: a mediation at station A; the agreement takes effect (C2 resolved in 5.17
        # days); the recording was recovered after a crash (not complete).
        c2 = await case("2", t(30, 0, month=11), "marriage_family", HM.MEDIATION)
        h2 = await hearing(c2, t(5), mediator, station_a)
        await _state(db, h2, t(5), HearingState.IN_SESSION)
        await _person(db, h2, HearingRole.PLAINTIFF, arrived=True)
        await _person(db, h2, HearingRole.DEFENDANT, arrived=True)
        await _recording(db, h2, "recovered", True)
        await _log(db, h2, t(5, 4), EventKind.AGREEMENT_EFFECTIVE, document_id="d2")
        await _state(db, h2, t(5, 5), HearingState.CLOSED)
        # H3: a mediation at the court desk that failed (C3 unresolved); a party disputed
        # the recording's hash; the witness never came (no-show).
        c3 = await case("3", t(1, 0), "private_lending", HM.MEDIATION)
        h3 = await hearing(c3, t(10), mediator, None)
        await _state(db, h3, t(10), HearingState.IN_SESSION)
        await _person(db, h3, HearingRole.PLAINTIFF, arrived=True)
        await _person(db, h3, HearingRole.WITNESS, arrived=False)
        await _recording(db, h3, "complete", True, False)
        await _log(db, h3, t(10, 3), EventKind.MEDIATION_FAILED, document_id="d3", reason="r")
        await _state(db, h3, t(10, 4), HearingState.CLOSED)
        # H4: cancelled at station B (scheduled, not held).
        c4 = await case("4", t(1, 0), "labour", HM.HEARING)
        h4 = await hearing(c4, t(15), judge, station_b)
        h4.state, h4.cancel_reason = HearingState.CLOSED, "撤诉"
        # H5: in session at station B (held, unresolved); the station lost power once and
        # reported it; no recording yet.
        c5 = await case("5", t(1, 0), "private_lending", HM.HEARING)
        h5 = await hearing(c5, t(20), judge, station_b)
        await _state(db, h5, t(20), HearingState.IN_SESSION)
        await _person(db, h5, HearingRole.PLAINTIFF, arrived=True)
        st5 = await _person(db, h5, HearingRole.STATION, arrived=True, station=station_b)
        await _departed(db, h5, st5, "STATION_POWER", True)
        await _log(db, h5, t(20), EventKind.STATION_REPORT, participant_id=st5.id, cause="POWER")
        # H6: C1's next hearing in January, outside the period.
        h6 = await hearing(c1, t(5, month=1, year=2027), judge, station_a)
        await _state(db, h6, t(5, month=1, year=2027), HearingState.IN_SESSION)
    return Seeded(station_a, station_b, judge, mediator)


HM = HearingMode
