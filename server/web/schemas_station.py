"""Request and response bodies of the station's day (issue 14): server/web/api_station.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from server.enums import HearingRole, HearingState, ParticipantState
from server.web.schemas import Request, Response

Score = Literal["good", "okay", "bad"]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,39}$")]
Short = Annotated[str, StringConstraints(max_length=300)]


class SelfTestItem(Request):
    check: Literal["camera", "microphone", "speaker", "network"]
    score: Score
    failure: Code | None = Field(
        default=None, description="What went wrong, as a code (NO_CAMERA, SILENT, HIGH_LOSS...)."
    )
    detail: Short | None = None
    measured: dict[str, float] = Field(
        default_factory=dict,
        max_length=12,
        description="What was measured: fps, level_dbfs, rtt_ms, loss, upload_kbps...",
    )


class SelfTest(Request):
    at: AwareDatetime
    items: Annotated[list[SelfTestItem], Field(min_length=1, max_length=8)]


class StationReportRequest(Request):
    pending_backups: Annotated[int, Field(ge=0, le=100_000)] = 0
    self_test: SelfTest | None = None


class IdentityCheckRequest(Request):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    id_digits: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,17}[0-9Xx]$")]
    note: Annotated[str, StringConstraints(max_length=500)] = ""


class ExpectedPersonOut(Response):
    participant_id: str
    display_name: str
    role: HearingRole
    state: ParticipantState
    connected: bool
    identity_method: str | None
    identity_check: str | None
    identity_checked_by: str | None


class StationHearingOut(Response):
    id: str
    title: str
    state: HearingState
    scheduled_start: datetime
    scheduled_end: datetime
    court_name: str
    case_number: str
    case_title: str
    station_id: str
    station_name: str
    people: list[ExpectedPersonOut]


class StationStatusOut(Response):
    station_id: str
    station_name: str
    online: bool
    last_seen_at: datetime | None
    self_test: dict[str, Any] | None = Field(
        description="The latest self-test as reported, with `overall` (the worst score)."
    )
    self_test_at: datetime | None
    pending_backups: int = Field(description="Sealed backups the station reports not yet sent.")
    backups_not_received: int = Field(
        default=0, description="Backups registered at the court and not received yet."
    )


class IdentityCheckOut(BaseModel):
    participant_id: str
    state: ParticipantState


class PingOut(BaseModel):
    at: datetime


class UploadTestOut(BaseModel):
    received: int


# -- enrolment and disabling (issue 14) ----------------------------------------------------

Uuid = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]


class EnrolRequest(Request):
    station_id: Uuid
    code: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="The one-time enrolment code an administrator issued (case, spaces and "
        "dashes do not matter)."
    )
    public_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="PEM (SubjectPublicKeyInfo) of the Ed25519 key the station created."
    )


class SignedLoginRequest(Request):
    station_id: Uuid
    at: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(
        description="The time signed, ISO 8601 with its zone; within 5 minutes of the court's."
    )
    signature: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="Base64 Ed25519 signature of 'shared-court station login v1\\n"
        "<station_id>\\n<at>' (UTF-8)."
    )


class DisableRequest(Request):
    disabled: bool


class EnrolmentCodeOut(BaseModel):
    station_id: str
    code: str
    expires_at: datetime


class EnrolledOut(BaseModel):
    station_id: str
    key_id: str


class StationDisabledOut(BaseModel):
    station_id: str
    disabled: bool
    sessions_ended: int
