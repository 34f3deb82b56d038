"""SQLAlchemy 2.0 typed models: the court's persistent state.

Written as Polar writes them: one ``DeclarativeBase`` with a naming convention (so Alembic
migrations get stable constraint names on SQLite and PostgreSQL alike), ``Mapped[...]``
columns, StrEnum states stored as strings, and relationships ``lazy="raise"`` so every load is
explicit in a repository. Identifiers are UUID strings (see ``server.ids``).

Secrets are never stored: passwords as argon2id PHC strings, station keys, invitation tokens
and session tokens as SHA-256 digests of 256-bit random values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from server.enums import (
    CaseKind,
    HearingMode,
    HearingRole,
    HearingState,
    ParticipantState,
    StaffRole,
)
from server.ids import new_id

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(enum_cls: type[Any]) -> Enum:
    # Stored as plain strings with a CHECK constraint; values (not names) are what we store.
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime}


def _id_column() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True, default=new_id)


class Court(Base):
    __tablename__ = "courts"

    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class User(Base):
    """A staff account: judge, clerk, mediator, station director or administrator."""

    __tablename__ = "users"

    id: Mapped[str] = _id_column()
    court_id: Mapped[str] = mapped_column(ForeignKey("courts.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(_enum(StaffRole))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Station(Base):
    """A shared-court e-station: a PC with camera and microphone in a village office."""

    __tablename__ = "stations"

    id: Mapped[str] = _id_column()
    court_id: Mapped[str] = mapped_column(ForeignKey("courts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(300), default="")
    director_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("court_id", "number"),)

    id: Mapped[str] = _id_column()
    court_id: Mapped[str] = mapped_column(ForeignKey("courts.id"), index=True)
    number: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[CaseKind] = mapped_column(_enum(CaseKind))
    # The cause of action (案由) as a stable code of ``server.hearings.causes``, for the
    # statistics; None on cases opened before causes were recorded.
    cause: Mapped[str | None] = mapped_column(String(32))
    mode: Mapped[HearingMode] = mapped_column(
        _enum(HearingMode), default=HearingMode.HEARING, server_default="hearing"
    )
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class Hearing(Base):
    __tablename__ = "hearings"

    id: Mapped[str] = _id_column()
    # Denormalised from the case so that every authorization check is one indexed column.
    court_id: Mapped[str] = mapped_column(ForeignKey("courts.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    scheduled_start: Mapped[datetime]
    scheduled_end: Mapped[datetime]
    state: Mapped[HearingState] = mapped_column(_enum(HearingState))
    station_id: Mapped[str | None] = mapped_column(ForeignKey("stations.id"), index=True)
    presiding_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # The clerk (书记员) booked for it, if one was named.
    clerk_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    # Why it was cancelled (a cancelled hearing is closed before it opened).
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]


class Participant(Base):
    """A person (or a station) taking part in one hearing, in one hearing role."""

    __tablename__ = "participants"

    id: Mapped[str] = _id_column()
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[HearingRole] = mapped_column(_enum(HearingRole))
    state: Mapped[ParticipantState] = mapped_column(_enum(ParticipantState))
    # Staff taking part through their login, or a station through its key.
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    station_id: Mapped[str | None] = mapped_column(ForeignKey("stations.id"), index=True)
    # What the court holds for the identity check (OLR 4-7): the legal name and the last
    # digits of the identity document. Without both, identity is checked by staff or a station.
    legal_name: Mapped[str | None] = mapped_column(String(200))
    id_number_tail: Mapped[str | None] = mapped_column(String(8))
    # Which side this person is on (an agent or witness belongs to a party).
    represents_id: Mapped[str | None] = mapped_column(ForeignKey("participants.id"))
    # A phone number to reach them (to send the link, or to call when the line drops).
    phone: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]


class Invitation(Base):
    """A single-hearing, single-participant invitation link. Only the token's digest is kept."""

    __tablename__ = "invitations"

    id: Mapped[str] = _id_column()
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id"), index=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    redeemed_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class WebSession(Base):
    """A login session: a staff user, a station, or a party bound by an invitation."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = _id_column()
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    csrf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    station_id: Mapped[str | None] = mapped_column(ForeignKey("stations.id"), index=True)
    participant_id: Mapped[str | None] = mapped_column(ForeignKey("participants.id"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class HearingEvent(Base):
    """One entry of a hearing's append-only, hash-chained event log.

    ``hash = SHA-256(prev_hash || canonical JSON of (hearing_id, seq, at, actor, kind, data))``;
    the first entry chains from 32 zero bytes. Rows are only ever inserted.
    """

    __tablename__ = "hearing_events"
    __table_args__ = (UniqueConstraint("hearing_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class StationStatus(Base):
    """What a station PC last told the court about itself (issue 14): when it was last seen,
    its latest scored self-test and how many backup recordings wait to be sent. One row per
    station, replaced by each report."""

    __tablename__ = "station_status"

    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    last_seen_at: Mapped[datetime]
    self_test: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    self_test_at: Mapped[datetime | None]
    pending_backups: Mapped[int] = mapped_column(Integer, default=0)


class StationKey(Base):
    """A station's own Ed25519 public key, registered with a one-time enrolment code (issue
    14): the station signs its logins with the private key, which never leaves the PC."""

    __tablename__ = "station_keys"

    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(200))  # PEM, SubjectPublicKeyInfo
    key_id: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]  # the signed time of the last login (replays refused)


class StationEnrolmentCode(Base):
    """A one-time code an administrator issues for a station to register its key with."""

    __tablename__ = "station_enrolment_codes"

    id: Mapped[str] = _id_column()
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


# -- the hearing record (issue 15): transcripts and mediation agreements, signed and sealed --


class RecordDocument(Base):
    """A hearing's transcript (笔录) or mediation agreement: one of each per hearing.

    Its text lives in `RecordVersion` rows (every saved version kept); `state` is draft,
    signing (signatures asked for), finalised (a transcript), effective or failed (an
    agreement); `sealed` is the court-sealed file (recordings.document) once it is final.
    """

    __tablename__ = "record_documents"
    __table_args__ = (UniqueConstraint("hearing_id", "kind"),)

    id: Mapped[str] = _id_column()
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # transcript, agreement
    state: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=0)  # the latest saved version
    # For a hearing a failed mediation was sent on to: the mediation's documents.
    source_document_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    signing_requested_at: Mapped[datetime | None]
    finalised_at: Mapped[datetime | None]
    finalised_by: Mapped[str | None] = mapped_column(String(100))
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)


class RecordVersion(Base):
    """One saved version of a document: its structured content and the exact text rendered
    from it (what is signed), with who saved it and when. Rows are only ever inserted."""

    __tablename__ = "record_versions"
    __table_args__ = (UniqueConstraint("document_id", "version"),)

    id: Mapped[str] = _id_column()
    document_id: Mapped[str] = mapped_column(ForeignKey("record_documents.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    text: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    saved_by: Mapped[str] = mapped_column(String(100))  # actor
    saved_by_name: Mapped[str] = mapped_column(String(200))
    saved_at: Mapped[datetime]


class RecordSignature(Base):
    """A signer's signature (or refusal, with its reason) on one exact text. A later version
    makes it stale; the signer's latest row is their answer."""

    __tablename__ = "record_signatures"

    id: Mapped[str] = _id_column()
    document_id: Mapped[str] = mapped_column(ForeignKey("record_documents.id"), index=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text_sha256: Mapped[str] = mapped_column(String(64))
    refused: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    name: Mapped[str] = mapped_column(String(200))
    where: Mapped[str] = mapped_column(String(16))  # phone, desk, station
    image_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    signed_by: Mapped[str] = mapped_column(String(100))  # actor that submitted it
    at: Mapped[datetime]


class RecordSigningCode(Base):
    """A one-time code shown to one signer over their own session; only its digest is kept,
    and it is spent by the signature (or refusal) it was given for."""

    __tablename__ = "record_signing_codes"

    id: Mapped[str] = _id_column()
    document_id: Mapped[str] = mapped_column(ForeignKey("record_documents.id"), index=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
