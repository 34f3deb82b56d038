"""Storage on both databases: migrations, constraints, UTC round trips, the event log chain."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import admin
from server.enums import CaseKind, EventKind, StaffRole
from server.storage.db import create_engine, create_sessionmaker
from server.storage.eventlog import EventLogRepository, verify_chain
from server.storage.models import Base, Case, Hearing, HearingEvent
from tests.conftest import FakeClock
from tests.factories import add_case, add_hearing

EXPECTED_TABLES = {
    "courts",
    "users",
    "stations",
    "cases",
    "hearings",
    "participants",
    "invitations",
    "web_sessions",
    "hearing_events",
    "alembic_version",
    "station_status",  # issue 14
    "station_keys",
    "station_enrolment_codes",
    "record_documents",  # issue 15: the hearing record
    "record_versions",
    "record_signatures",
    "record_signing_codes",
}


async def _hearing(sessions, clock: FakeClock) -> str:
    async with sessions.begin() as db:
        court = await admin.ensure_court(db, clock, "Court")
        judge = await admin.add_user(
            db,
            clock,
            court=court,
            username="j",
            display_name="J",
            role=StaffRole.JUDGE,
            password="long enough password",
        )
        case = await add_case(db, clock, court_id=court.id, created_by=judge.id)
        hearing = await add_hearing(
            db, clock, case, presiding_user_id=judge.id, length=timedelta(hours=1)
        )
        return hearing.id


async def test_migrations_create_every_table_matching_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            columns = await conn.run_sync(
                lambda c: {t: {col["name"] for col in inspect(c).get_columns(t)} for t in tables}
            )
    finally:
        await engine.dispose()
    assert tables == EXPECTED_TABLES
    for table in Base.metadata.sorted_tables:
        assert columns[table.name] == {c.name for c in table.columns}, table.name


async def test_constraints_are_enforced(database_url: str, clock: FakeClock) -> None:
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    try:
        hearing_id = await _hearing(sessions, clock)
        # Unknown foreign key.
        with pytest.raises(IntegrityError):
            async with sessions.begin() as db:
                db.add(
                    Case(
                        court_id="00000000-0000-4000-8000-000000000000",
                        number="x",
                        title="t",
                        kind=CaseKind.CIVIL,
                        created_by="nobody",
                        created_at=clock.now(),
                    )
                )
        # Duplicate case number within a court.
        async with sessions() as db:
            case = await db.scalar(select(Case))
            assert case is not None
        with pytest.raises(IntegrityError):
            async with sessions.begin() as db:
                db.add(
                    Case(
                        court_id=case.court_id,
                        number=case.number,
                        title="dup",
                        kind=CaseKind.CIVIL,
                        created_by=case.created_by,
                        created_at=clock.now(),
                    )
                )
        # A state outside the enum is refused by the CHECK constraint, not only by Python.
        with pytest.raises(IntegrityError):
            async with sessions.begin() as db:
                await db.execute(
                    text("UPDATE hearings SET state = 'adjourned_forever' WHERE id = :id"),
                    {"id": hearing_id},
                )
    finally:
        await engine.dispose()


async def test_datetimes_round_trip_as_utc(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    shanghai = datetime(2026, 11, 23, 17, 30, 0, 123456).astimezone()
    clock = FakeClock(shanghai)
    try:
        hearing_id = await _hearing(sessions, clock)
        async with sessions() as db:
            hearing = await db.get(Hearing, hearing_id)
            assert hearing is not None
            assert hearing.scheduled_start.tzinfo is not None
            assert hearing.scheduled_start == shanghai
            assert hearing.scheduled_start.utcoffset() == timedelta(0)
    finally:
        await engine.dispose()


async def test_event_log_chains_and_detects_tampering(database_url: str, clock: FakeClock) -> None:
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    try:
        hearing_id = await _hearing(sessions, clock)
        for i in range(5):
            async with sessions.begin() as db:
                await EventLogRepository(db).append(
                    hearing_id,
                    at=clock.now(),
                    actor="user:x",
                    kind=EventKind.HEARING_STATE,
                    data={"i": i, "text": "庭审开始"},
                )
            clock.advance(1.5)
        async with sessions() as db:
            events = await EventLogRepository(db).list(hearing_id)
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]
        assert events[0].prev_hash == bytes(32)
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
        assert verify_chain(events) is None

        # Rewriting what was said in entry 3 breaks the chain exactly there.
        async with sessions.begin() as db:
            await db.execute(
                update(HearingEvent)
                .where(HearingEvent.hearing_id == hearing_id, HearingEvent.seq == 3)
                .values(data={"i": 99, "text": "庭审开始"})
            )
        async with sessions() as db:
            events = await EventLogRepository(db).list(hearing_id)
        assert verify_chain(events) == 3
        # Dropping an entry is detected too.
        assert verify_chain([e for e in events if e.seq != 2]) == 3
    finally:
        await engine.dispose()


async def _append(sessions: async_sessionmaker[AsyncSession], hearing_id: str, i: int) -> None:
    """One event-log entry in its own transaction (which reads the chain's head first)."""
    async with sessions.begin() as db:
        await EventLogRepository(db).append(
            hearing_id,
            at=datetime.now(UTC),
            actor="a",
            kind=EventKind.HEARING_STATE,
            data={"i": i},
        )


async def test_concurrent_appends_never_fork_the_chain(database_url: str, clock: FakeClock) -> None:
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    try:
        hearing_id = await _hearing(sessions, clock)

        await asyncio.gather(*(_append(sessions, hearing_id, i) for i in range(10)))
        async with sessions() as db:
            events = await EventLogRepository(db).list(hearing_id)
        assert [e.seq for e in events] == list(range(1, 11))
        assert verify_chain(events) is None
    finally:
        await engine.dispose()


async def test_a_transaction_cancelled_half_way_never_holds_the_database(
    database_url: str, clock: FakeClock
) -> None:
    """aiohttp cancels a handler whose client went away (a browser leaving a page aborts its
    fetches), wherever it is in its transaction. On SQLite that used to leave the write lock
    with a closed-but-not-finished connection: the next request waited 30 s and failed with
    "database is locked". Cancel transactions at many points; each time the next one must
    go through at once."""
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    try:
        hearing_id = await _hearing(sessions, clock)

        for i in range(150):
            task = asyncio.create_task(_append(sessions, hearing_id, i))
            # Cancel after 0..~15 loop iterations: before BEGIN, inside it, between the
            # statements, during COMMIT, or after it finished.
            for _ in range(i % 16):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with asyncio.timeout(10):  # the busy timeout is 30 s
                await _append(sessions, hearing_id, -1)
        async with sessions() as db:
            events = await EventLogRepository(db).list(hearing_id)
        assert verify_chain(events) is None
    finally:
        await engine.dispose()
