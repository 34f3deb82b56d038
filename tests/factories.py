"""Rows the suite needs, made one way: cases, hearings, participants and invitation links.

For fixtures that need a court's data in a given shape (a hearing already open, people not
yet logged), written straight through the session like the repositories do; tests of the
services' own rules go through the services instead. Times come from the test's clock.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import tokens
from server.clock import Clock
from server.enums import CaseKind, HearingMode, HearingRole, HearingState, ParticipantState
from server.storage.models import Case, Hearing, Invitation, Participant


async def add_case(
    db: AsyncSession,
    clock: Clock,
    *,
    court_id: str,
    created_by: str,
    number: str = "1",
    title: str = "a v b",
    kind: CaseKind = CaseKind.CIVIL,
    cause: str | None = None,
    mode: HearingMode = HearingMode.HEARING,
) -> Case:
    case = Case(
        court_id=court_id,
        number=number,
        title=title,
        kind=kind,
        cause=cause,
        mode=mode,
        created_by=created_by,
        created_at=clock.now(),
    )
    db.add(case)
    await db.flush()
    return case


async def add_hearing(
    db: AsyncSession,
    clock: Clock,
    case: Case,
    *,
    presiding_user_id: str,
    station_id: str | None = None,
    state: HearingState = HearingState.SCHEDULED,
    title: str = "hearing",
    length: timedelta = timedelta(hours=2),
) -> Hearing:
    now = clock.now()
    hearing = Hearing(
        court_id=case.court_id,
        case_id=case.id,
        title=title,
        scheduled_start=now,
        scheduled_end=now + length,
        state=state,
        station_id=station_id,
        presiding_user_id=presiding_user_id,
        created_at=now,
    )
    db.add(hearing)
    await db.flush()
    return hearing


async def add_participant(
    db: AsyncSession,
    clock: Clock,
    hearing_id: str,
    role: HearingRole,
    display_name: str,
    *,
    user_id: str | None = None,
    station_id: str | None = None,
    legal_name: str | None = None,
    id_number_tail: str | None = None,
) -> Participant:
    participant = Participant(
        hearing_id=hearing_id,
        display_name=display_name,
        role=role,
        state=ParticipantState.INVITED,
        user_id=user_id,
        station_id=station_id,
        legal_name=legal_name,
        id_number_tail=id_number_tail,
        created_at=clock.now(),
    )
    db.add(participant)
    await db.flush()
    return participant


async def add_invitation(
    db: AsyncSession, clock: Clock, participant: Participant, *, created_by: str
) -> tuple[Invitation, str]:
    """A link valid from a minute ago for a day; returns the row and its token."""
    now = clock.now()
    token = tokens.new_token()
    invitation = Invitation(
        hearing_id=participant.hearing_id,
        participant_id=participant.id,
        token_hash=tokens.digest(token),
        not_before=now - timedelta(minutes=1),
        not_after=now + timedelta(days=1),
        created_by=created_by,
        created_at=now,
    )
    db.add(invitation)
    await db.flush()
    return invitation, token
