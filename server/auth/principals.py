"""Who is making a request. Built by the session middleware, passed to every service call."""

from __future__ import annotations

from dataclasses import dataclass

from server.enums import StaffRole
from server.ids import CourtId, HearingId, ParticipantId, StationId, UserId


@dataclass(frozen=True, slots=True)
class StaffPrincipal:
    session_id: str
    user_id: UserId
    court_id: CourtId
    role: StaffRole
    display_name: str

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True, slots=True)
class StationPrincipal:
    session_id: str
    station_id: StationId
    court_id: CourtId

    @property
    def actor(self) -> str:
        return f"station:{self.station_id}"


@dataclass(frozen=True, slots=True)
class PartyPrincipal:
    """Someone who came through an invitation link: bound to one participant of one hearing."""

    session_id: str
    participant_id: ParticipantId
    hearing_id: HearingId
    court_id: CourtId

    @property
    def actor(self) -> str:
        return f"participant:{self.participant_id}"


Principal = StaffPrincipal | StationPrincipal | PartyPrincipal
