"""Seed a demo court and describe it: what ``make demo`` and ``shared-court demo`` show.

Running it again is safe: the court, accounts, station and case are reused, the judge's password
and the station key are replaced with fresh random ones (they are printed, never stored in
clear), a new hearing open now is scheduled and new invitation links are issued.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import admin
from server.auth.principals import StaffPrincipal
from server.clock import Clock
from server.enums import CaseKind, HearingRole, StaffRole
from server.hearings.causes import CauseCode
from server.hearings.invitations import InvitationService
from server.hearings.service import CourtService
from server.ids import CourtId, HearingId, UserId
from server.storage.models import Station

COURT_NAME = "示范人民法院 Demo People's Court"
JUDGE = "judge"
DIRECTOR = "director"
STATION_NAME = "青山村共享法庭 Qingshan Village Station"
CASE_NUMBER = "(2026)示民初1号"
DEMO_ID_DIGITS = "1234"  # the last digits of each demo party's ID number, as the court holds it


@dataclass(frozen=True)
class DemoParty:
    participant_id: str
    display_name: str
    role: str
    identity_name: str  # the legal name the court holds: `confirm_identity.name`
    id_digits: str  # the ID-number digits the court holds: `confirm_identity.id_digits`
    invitation_url: str

    def to_json(self) -> dict[str, Any]:
        return {
            "participant_id": self.participant_id,
            "display_name": self.display_name,
            "role": self.role,
            "identity": {"name": self.identity_name, "id_digits": self.id_digits},
            "invitation_url": self.invitation_url,
        }


@dataclass(frozen=True)
class DemoInfo:
    base_url: str
    judge_username: str
    judge_password: str
    director_username: str
    director_password: str
    station_id: str
    station_key: str
    hearing_id: str
    invitations: dict[str, str]  # participant display name -> invitation URL
    # Per party: what its identity check wants, exactly (docs/signaling.md, confirm_identity).
    parties: tuple[DemoParty, ...] = ()

    def __repr__(self) -> str:
        return (
            f"DemoInfo(base_url={self.base_url!r}, hearing={self.hearing_id!r}, secrets=<redacted>)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "judge": {"username": self.judge_username, "password": self.judge_password},
            "station_director": {
                "username": self.director_username,
                "password": self.director_password,
            },
            "station": {"station_id": self.station_id, "key": self.station_key},
            "hearing_id": self.hearing_id,
            "invitations": self.invitations,
            "parties": [party.to_json() for party in self.parties],
        }

    def to_text(self) -> str:
        lines = [
            f"shared-court demo serving on {self.base_url}",
            f"  judge login:            {self.base_url}/"
            f"  user {self.judge_username!r}  password {self.judge_password!r}",
            f"  book a hearing:         {self.base_url}/cases/new"
            "  (as the judge: open a case, schedule, add parties, issue their links)",
            f"  station director login: user {self.director_username!r}"
            f"  password {self.director_password!r}",
            f"  station credentials:    id {self.station_id}  key {self.station_key}",
            f"  hearing:                {self.hearing_id}",
            "  party invitation links (the identity check wants the name and ID digits shown):",
        ]
        lines += [
            f"    {p.display_name}: {p.invitation_url}\n"
            f"      identity check: name {p.identity_name}  ID digits {p.id_digits}"
            for p in self.parties
        ]
        return "\n".join(lines)


async def seed(sessions: async_sessionmaker[AsyncSession], clock: Clock, base_url: str) -> DemoInfo:
    now = clock.now()
    judge_password = secrets.token_urlsafe(12)
    director_password = secrets.token_urlsafe(12)
    async with sessions.begin() as db:
        court = await admin.ensure_court(db, clock, COURT_NAME)
        judge = await admin.add_user(
            db,
            clock,
            court=court,
            username=JUDGE,
            display_name="王法官 Judge Wang",
            role=StaffRole.JUDGE,
            password=judge_password,
            replace_password=True,
        )
        director = await admin.add_user(
            db,
            clock,
            court=court,
            username=DIRECTOR,
            display_name="李主任 Director Li",
            role=StaffRole.STATION_DIRECTOR,
            password=director_password,
            replace_password=True,
        )
        station = await db.scalar(
            select(Station).where(Station.court_id == court.id, Station.name == STATION_NAME)
        )
        if station is None:
            created = await admin.add_station(
                db,
                clock,
                court=court,
                name=STATION_NAME,
                location="青山村村委会",
                director=director,
            )
            station, station_key = created.station, created.key
        else:
            station_key = await admin.rotate_station_key(db, station)
        station_id = station.id
    # The case, hearing, people and links as a judge makes them: through the services, so
    # the demo's event log and rules are a real hearing's.
    operator = StaffPrincipal(
        session_id="demo",
        user_id=UserId(judge.id),
        court_id=CourtId(court.id),
        role=StaffRole.JUDGE,
        display_name=judge.display_name,
    )
    court_service = CourtService(sessions, clock)
    existing = [c for c in await court_service.list_cases(operator) if c.number == CASE_NUMBER]
    case = (
        existing[0]
        if existing
        else await court_service.create_case(
            operator,
            number=CASE_NUMBER,
            title="张某诉赵某民间借贷纠纷 Zhang v. Zhao, private loan dispute",
            kind=CaseKind.CIVIL,
            cause=CauseCode.PRIVATE_LENDING,
        )
    )
    hearing = await court_service.create_hearing(
        operator,
        case_id=case.id,
        title="张某诉赵某 庭前调解 Pre-trial mediation",
        scheduled_start=now - timedelta(minutes=5),
        scheduled_end=now + timedelta(hours=2),
        station_id=station_id,
    )
    hearing_id = HearingId(hearing.id)
    await court_service.add_participant(
        operator,
        hearing_id,
        display_name="王法官 Judge Wang",
        role=HearingRole.JUDGE,
        user_id=judge.id,
    )
    await court_service.add_participant(
        operator,
        hearing_id,
        display_name=STATION_NAME,
        role=HearingRole.STATION,
        station_id=station_id,
    )
    invitation_service = InvitationService(sessions, clock)
    invitations: dict[str, str] = {}
    parties: list[DemoParty] = []
    for name, legal_name, role in (
        ("张三 Zhang San (原告 plaintiff)", "张三", HearingRole.PLAINTIFF),
        ("赵四 Zhao Si (被告 defendant)", "赵四", HearingRole.DEFENDANT),
    ):
        participant = await court_service.add_participant(
            operator,
            hearing_id,
            display_name=name,
            role=role,
            legal_name=legal_name,
            id_number_tail=DEMO_ID_DIGITS,
        )
        issued = await invitation_service.create_invitation(
            operator,
            hearing_id,
            participant.id,
            valid_for=timedelta(days=1),
            not_before=now - timedelta(minutes=5),
        )
        invitations[name] = f"{base_url}/join#{issued.token}"
        parties.append(
            DemoParty(
                participant_id=participant.id,
                display_name=name,
                role=role.value,
                identity_name=legal_name,
                id_digits=DEMO_ID_DIGITS,
                invitation_url=invitations[name],
            )
        )
    return DemoInfo(
        base_url=base_url,
        judge_username=JUDGE,
        judge_password=judge_password,
        director_username=DIRECTOR,
        director_password=director_password,
        station_id=station_id,
        station_key=station_key,
        hearing_id=hearing_id,
        invitations=invitations,
        parties=tuple(parties),
    )
