"""Request and response bodies of the staff console's booking, links, dashboard and summary
endpoints (``api_booking``). Requests are strict as in ``schemas``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from server.enums import HearingRole, HearingState, ParticipantState, StaffRole
from server.web.schemas import CaseOut, InvitationOut, Request, Response, Text300, Uuid

LinkStateName = Literal["never_issued", "valid", "not_yet_valid", "used", "expired", "revoked"]


class ScheduleRequest(Request):
    title: Text300
    scheduled_start: AwareDatetime
    duration_minutes: Annotated[int, Field(ge=5, le=12 * 60)] = Field(
        description="Expected length in minutes (5 to 720)."
    )
    station_id: Uuid | None = Field(default=None, description="The station it is held at.")
    presiding_user_id: Uuid = Field(description="The presiding judge or the mediator.")
    clerk_user_id: Uuid | None = None


class CancelRequest(Request):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class CauseOut(Response):
    code: str = Field(description="Stable code: what a case stores and statistics count.")
    zh: str
    en: str


class StaffMemberOut(Response):
    id: str
    display_name: str
    role: StaffRole


class BookingOut(Response):
    id: str
    case_id: str
    title: str
    scheduled_start: datetime
    scheduled_end: datetime
    state: HearingState
    station_id: str | None
    presiding_user_id: str
    clerk_user_id: str | None
    cancel_reason: str | None


class PersonOut(Response):
    id: str
    display_name: str
    role: HearingRole
    state: ParticipantState
    legal_name: str | None
    id_number_tail: str | None
    phone: str | None
    represents_id: str | None
    user_id: str | None
    station_id: str | None


class LinkStateOut(Response):
    participant: PersonOut
    state: LinkStateName = Field(
        description="Of the participant's latest link: never issued, valid (until "
        "invitation.not_after), not yet valid, used (opened; still lets them back in), "
        "expired or revoked."
    )
    invitation: InvitationOut | None
    superseded: int = Field(description="Earlier links replaced by re-issuing.")


class ReadinessOut(Response):
    participant_id: str
    display_name: str
    role: HearingRole
    state: ParticipantState
    connected: bool


class DashboardHearingOut(Response):
    id: str
    title: str
    scheduled_start: datetime
    scheduled_end: datetime
    state: HearingState
    cancel_reason: str | None
    case_id: str
    case_number: str | None
    cause: str | None
    court_name: str
    station_id: str | None
    station_name: str | None
    presiding_user_id: str
    presiding_name: str | None
    clerk_name: str | None
    station_online: bool = Field(description="The station is connected to this hearing now.")
    station_self_test: Literal["good", "okay", "bad"] | None = Field(
        default=None,
        description="The overall score of the station's latest self-test (null: none reported).",
    )
    people: list[ReadinessOut]


class DashboardOut(Response):
    today: datetime = Field(description="Start of the court's day (Asia/Shanghai).")
    hearings: list[DashboardHearingOut]


class SummaryEventOut(Response):
    seq: int
    at: datetime
    actor: str
    kind: str
    data: dict[str, Any]


class RecordingConfirmationOut(Response):
    participant_id: str | None
    confirmed: bool
    matches: bool
    at: datetime


class SummaryRecordingOut(Response):
    recording_id: str
    at: datetime
    root_hash: str | None
    status: str | None
    confirmations: list[RecordingConfirmationOut]


class SummaryBackupOut(Response):
    recording_id: str
    at: datetime
    station_id: str | None
    received: bool
    root_hash: str | None


class SummaryDepartureOut(Response):
    at: datetime
    participant_id: str
    cause: str
    excused: bool = False
    was: str | None = None


class SummaryOut(Response):
    hearing: BookingOut
    case: CaseOut | None
    participants: list[PersonOut]
    events: list[SummaryEventOut]
    departures: list[SummaryDepartureOut]
    recordings: list[SummaryRecordingOut]
    station_backups: list[SummaryBackupOut]
