"""Request and response bodies of the REST API.

Requests are strict: unknown fields, wrong JSON types and naive datetimes are rejected, and
every string has a length bound. Responses are built from the ORM rows (``from_attributes``).
The OpenAPI document is generated from these models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from server.enums import (
    CaseKind,
    HearingMode,
    HearingRole,
    HearingState,
    ParticipantState,
    StaffRole,
)
from server.hearings.causes import CauseCode

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text300 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Uuid = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- requests ---------------------------------------------------------------------------


class LoginRequest(Request):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class StationLoginRequest(Request):
    station_id: Uuid
    key: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RedeemRequest(Request):
    token: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CreateCaseRequest(Request):
    number: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True,
            min_length=1,
            max_length=64,
            # Letters, digits, Chinese characters, brackets and hyphens: (2026)示民初1号.
            pattern=r"^[0-9A-Za-z()（）〔〕\[\]\u3400-\u9fff-]+$",
        ),
    ] = Field(description="The case number, e.g. (2026)示民初1号.")
    title: Text300
    kind: CaseKind = CaseKind.CIVIL
    cause: CauseCode | None = Field(
        default=None, description="Cause of action, a code of GET /api/causes."
    )
    mode: HearingMode = HearingMode.HEARING


class CreateHearingRequest(Request):
    title: Text300
    scheduled_start: AwareDatetime
    scheduled_end: AwareDatetime
    station_id: Uuid | None = None


class AddParticipantRequest(Request):
    display_name: Name
    role: HearingRole
    legal_name: Name | None = None
    id_number_tail: Annotated[str, StringConstraints(pattern=r"^[0-9Xx]{4,8}$")] | None = None
    user_id: Uuid | None = None
    station_id: Uuid | None = None
    represents_id: Uuid | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 -]{4,19}$")] | None = None


class CreateInvitationRequest(Request):
    valid_for_hours: Annotated[int, Field(ge=1, le=24 * 90)] | None = None
    not_before: AwareDatetime | None = None


class SetHearingStateRequest(Request):
    state: HearingState
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ConfirmRecordingRequest(Request):
    root_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    confirmed: bool


class StationBackupRequest(Request):
    recording_id: Uuid = Field(description="The backup recording's id (a UUID, lower case).")
    verify_key: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="PEM (SubjectPublicKeyInfo) of the Ed25519 key the station signs it with."
    )


# -- responses --------------------------------------------------------------------------


class Health(Response):
    status: str
    version: str


class StaffOut(Response):
    kind: str = "staff"
    user_id: str
    court_id: str
    role: StaffRole
    display_name: str


class StationPrincipalOut(Response):
    kind: str = "station"
    station_id: str
    court_id: str


class PartyOut(Response):
    kind: str = "party"
    participant_id: str
    hearing_id: str
    court_id: str


class SessionOut(Response):
    principal: StaffOut | StationPrincipalOut | PartyOut
    csrf_token: str | None = None


class CourtOut(Response):
    id: str
    name: str


class StationOut(Response):
    id: str
    court_id: str
    name: str
    location: str
    director_id: str | None


class CaseOut(Response):
    id: str
    court_id: str
    number: str
    title: str
    kind: CaseKind
    cause: str | None = None
    mode: HearingMode = HearingMode.HEARING
    created_at: datetime


class HearingOut(Response):
    id: str
    court_id: str
    case_id: str
    title: str
    scheduled_start: datetime
    scheduled_end: datetime
    state: HearingState
    station_id: str | None


class ParticipantOut(Response):
    id: str
    hearing_id: str
    display_name: str
    role: HearingRole
    state: ParticipantState
    user_id: str | None
    station_id: str | None
    represents_id: str | None


class InvitationOut(Response):
    id: str
    hearing_id: str
    participant_id: str
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    redeemed_at: datetime | None


class IssuedInvitationOut(Response):
    invitation: InvitationOut
    url: str = Field(description="The link to send to the participant; shown only once.")
    qr_svg: str = Field(
        default="",
        description="The link as a QR code (an SVG document), to show on a screen for a "
        "phone to scan; like the link, only in this response.",
    )


class EventOut(Response):
    seq: int
    at: str
    actor: str
    kind: str
    data: dict[str, object]
    prev_hash: str
    hash: str


class TimelineOut(Response):
    hearing_id: str
    chain_intact: bool
    events: list[EventOut]


class ErrorOut(Response):
    type: str = "error"
    code: str
    message: str


class ConfirmationOut(Response):
    matches: bool


class StationBackupFilesOut(Response):
    recording_id: str
    files: dict[str, str] = Field(
        description="File name as sent (recording.json, keys.json, manifest.json, NNNNNN.cevr) "
        "-> SHA-256 (hex) of what the court holds."
    )


class StationBackupReceiptOut(Response):
    recording_id: str
    received: bool = Field(description="Intact (or with declared gaps): the court keeps it.")
    exit_code: int = Field(
        description="Of `shared-court verify`: 0 intact, 2 declared gaps, 1 not."
    )
    root_hash: str | None
    gaps: int = Field(description="Declared gaps (network, crash) in the package.")
    problems: list[str] = Field(description="Why verification failed (empty when received).")


class StationBackupOut(Response):
    recording_id: str
    key_id: str = Field(description="Id of the station's verify key (as recordings/keys.py).")
    recipients: list[str] = Field(
        description="X25519 public keys (PEM) to seal the backup for: the court's archive "
        "keys, then its playback key if it has one."
    )


class RecordingOut(Response):
    id: str
    created_at: str
    state: Literal["recording", "complete", "recovered", "failed"]
    playable: bool  # the server's playback key can decrypt it
    source: Literal["court", "station-backup"] = Field(
        description="Made by the court, or a station's local backup it received."
    )


class ProblemOut(Response):
    message: str
    file: str | None
    segment: int | None
    record: int | None
    offset: int | None


class VerificationOut(Response):
    exit_code: int  # as `shared-court verify`: 0 intact, 2 declared gaps, 1 tampered, 3 error
    verdict: str
    status: str | None  # the manifest's: complete, recovered, failed
    root_hash: str | None
    signing_key_id: str | None
    gaps: list[dict[str, Any]]
    problems: list[ProblemOut]


class PlaybackStreamOut(Response):
    stream_id: int
    participant_id: str
    display_name: str | None
    role: str | None
    part: int
    tracks: list[str]
    origin: str | None  # wall time (ISO) of the stream's media time 0
    url: str


class PlaybackParticipantOut(Response):
    participant_id: str
    display_name: str | None
    role: str | None


class PlaybackOut(Response):
    recording_id: str
    status: Literal["preparing", "ready", "failed"]
    progress: float
    error: str | None
    # Why there is no media to play: NO_PLAYBACK_KEY, NOT_A_RECIPIENT, VERIFICATION_FAILED,
    # NO_MEDIA (the badge and the timeline still show).
    media_unavailable: str | None
    participants: list[PlaybackParticipantOut]
    verification: VerificationOut | None
    timeline: list[dict[str, Any]]  # the signed timeline events, in chain order
    streams: list[PlaybackStreamOut]
