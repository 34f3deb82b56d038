"""The hearing record (issue 15): the transcript (笔录) and the mediation agreement, written
by the court, signed by the parties on one exact text, and sealed by the court.

Not to be confused with ``server.hearings.record``, the live hearing's durable event log.

Rules (docs/hearing-rules.md, "The hearing record"):

- **Writing.** Presiding staff (clerk, judge, mediator) write the transcript; the judge or
  mediator drafts the agreement (terms, amounts, deadlines: structured items rendered into the
  text that is signed). Every save is a new version, kept with who saved it and when; saving
  unchanged content makes no version; a save based on an older version than the latest is a
  CONFLICT (two writers).
- **Signing.** Presiding staff ask for signatures; then each signer (the parties and their
  agents) reviews the exact text and signs it with their name, a one-time code shown only to
  them (issued over their own session, kept as a digest, spent by one signature or refusal)
  and a handwritten image, bound to the text's SHA-256 (OLR 33-34). A saved change after
  someone signed leaves their signature stale: it no longer counts and they are asked again.
  A refusal is recorded with its reason. Refused with a code, and logged: a text that changed
  since it was shown (TEXT_CHANGED), a code already used (CODE_USED) or wrong (CODE_INVALID),
  signing in another's name (NOT_YOUR_SIGNATURE), anything after the document is final
  (RECORD_FINALISED).
- **Ending.** Presiding staff finalise a transcript. An agreement takes effect when the last
  signer signs (OMR 19; ``agreement.effective``); a refusal ends the mediation
  (``mediation.failed``, OMR 25(7)) with that reason. A final document is sealed by the court
  (``recordings.document``, Ed25519 with the recorder's signing key) and never changes again.
- **Who acts for whom.** A party signs only for itself; a station signs for the people whose
  identity it checked in person; staff never sign in a party's name.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recordings.document import (
    DocumentContent,
    Refusal,
    Signature,
    seal_document,
    text_sha256,
)
from recordings.keys import load_signing_key
from server.auth.principals import PartyPrincipal, Principal, StaffPrincipal, StationPrincipal
from server.clock import Clock
from server.enums import (
    COURT_READERS,
    PRESIDING_STAFF,
    RUNNING_STAFF,
    EventKind,
    HearingMode,
    HearingRole,
    StaffRole,
)
from server.errors import CourtError, ErrorCode, not_found
from server.hearings.access import forbidden, readable_hearing
from server.hearings.booking import BookingService
from server.hearings.document_anchor import anchor_sealed
from server.ids import HearingId
from server.storage.eventlog import EventLogRepository
from server.storage.models import (
    Hearing,
    Participant,
    RecordDocument,
    RecordSignature,
    RecordSigningCode,
    RecordVersion,
)
from server.storage.record_repositories import RecordRepository
from server.storage.repositories import (
    CaseRepository,
    CourtRepository,
    ParticipantRepository,
    UserRepository,
)


class RecordKind(StrEnum):
    TRANSCRIPT = "transcript"
    AGREEMENT = "agreement"


class DocState(StrEnum):
    DRAFT = "draft"
    SIGNING = "signing"  # signatures asked for; edits still possible (they stale signatures)
    FINALISED = "finalised"  # a transcript, sealed
    EFFECTIVE = "effective"  # an agreement every signer signed, sealed
    FAILED = "failed"  # an agreement a signer refused: the mediation failed, sealed


FINAL_STATES = frozenset({DocState.FINALISED, DocState.EFFECTIVE, DocState.FAILED})
SIGNER_ROLES = frozenset({HearingRole.PLAINTIFF, HearingRole.DEFENDANT, HearingRole.AGENT})
WHERE = frozenset({"phone", "desk", "station"})
MAX_TEXT_CHARS = 100_000
MAX_IMAGE_BYTES = 300_000
CODE_DIGITS = 6
MAX_CODE_FAILURES = 5
# Errors a signing attempt is refused with that the event log keeps (issue 15, "Bad input").
LOGGED_REFUSALS = frozenset(
    {
        ErrorCode.TEXT_CHANGED,
        ErrorCode.CODE_INVALID,
        ErrorCode.CODE_USED,
        ErrorCode.NOT_YOUR_SIGNATURE,
        ErrorCode.RECORD_FINALISED,
    }
)

ROLE_ZH = {
    HearingRole.PLAINTIFF: "原告",
    HearingRole.DEFENDANT: "被告",
    HearingRole.AGENT: "代理人",
    HearingRole.WITNESS: "证人",
    HearingRole.EXPERT: "鉴定人",
    HearingRole.INTERPRETER: "翻译",
    HearingRole.OBSERVER: "旁听",
    HearingRole.MEDIATOR: "调解员",
    HearingRole.JUDGE: "审判员",
    HearingRole.CLERK: "书记员",
    HearingRole.STATION: "共享法庭",
}
ZH_NUMERALS = "一二三四五六七八九十"
_AMOUNT = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,2})?$")


# -- rendering: the exact text that is signed ------------------------------------------------


def _zh_date(value: str) -> str:
    day = date.fromisoformat(value)
    return f"{day.year}年{day.month}月{day.day}日"


def _clean(value: Any, name: str, limit: int = 2000) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise CourtError(ErrorCode.BAD_FIELD, f"{name}: text of 1 to {limit} characters")
    return value.strip()


def render_transcript(content: dict[str, Any]) -> str:
    """One paragraph per entry: the speaker's role and name, then what was said."""
    lines = ["笔录", ""]
    for entry in content.get("entries", []):
        role = ROLE_ZH.get(HearingRole(entry["role"]), entry["role"])
        name = entry.get("name") or ""
        lines.append(f"{role}{(' ' + name) if name else ''}：{entry['text']}")
    return "\n".join(lines) + "\n"


def render_agreement(content: dict[str, Any]) -> str:
    """Terms, amounts and deadlines as numbered sections of one text."""
    lines = ["调解协议", ""]
    section = 0

    def heading(title: str) -> None:
        nonlocal section
        lines.append(f"{ZH_NUMERALS[section]}、{title}")
        section += 1

    if content.get("terms"):
        heading("协议条款")
        lines += [f"{n}. {t}" for n, t in enumerate(content["terms"], 1)]
    if content.get("amounts"):
        heading("给付金额")
        for n, a in enumerate(content["amounts"], 1):
            amount = Decimal(a["amount"]).quantize(Decimal("0.01"))
            lines.append(
                f"{n}. {a['payer']} 向 {a['payee']} 支付人民币 {amount} 元，"
                f"于 {_zh_date(a['due'])} 前付清。"
            )
    if content.get("deadlines"):
        heading("履行期限")
        lines += [
            f"{n}. {d['what']}，于 {_zh_date(d['by'])} 前完成。"
            for n, d in enumerate(content["deadlines"], 1)
        ]
    return "\n".join(lines) + "\n"


def _date(value: Any, name: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise CourtError(ErrorCode.BAD_FIELD, f"{name}: a date YYYY-MM-DD") from None


def normalise_content(kind: RecordKind, content: dict[str, Any]) -> dict[str, Any]:
    """The content as stored: checked field by field. Raises BAD_FIELD."""
    if kind is RecordKind.TRANSCRIPT:
        entries = []
        for entry in content.get("entries", []):
            try:
                role = HearingRole(entry.get("role"))
            except ValueError:
                raise CourtError(ErrorCode.BAD_FIELD, "entries.role: a hearing role") from None
            name = entry.get("name") or ""
            if not isinstance(name, str) or len(name) > 200:
                raise CourtError(ErrorCode.BAD_FIELD, "entries.name: up to 200 characters")
            entries.append(
                {
                    "role": role.value,
                    "name": name.strip(),
                    "text": _clean(entry.get("text"), "text"),
                }
            )
        return {"entries": entries}
    terms = [_clean(t, "terms") for t in content.get("terms", [])]
    amounts = []
    for a in content.get("amounts", []):
        amount = str(a.get("amount", ""))
        try:
            valid = bool(_AMOUNT.match(amount)) and Decimal(amount) > 0
        except InvalidOperation:
            valid = False
        if not valid:
            raise CourtError(ErrorCode.BAD_FIELD, "amounts.amount: yuan, e.g. 1200.50")
        amounts.append(
            {
                "payer": _clean(a.get("payer"), "amounts.payer", 200),
                "payee": _clean(a.get("payee"), "amounts.payee", 200),
                "amount": amount,
                "due": _date(a.get("due"), "amounts.due"),
            }
        )
    deadlines = [
        {"what": _clean(d.get("what"), "deadlines.what"), "by": _date(d.get("by"), "deadlines.by")}
        for d in content.get("deadlines", [])
    ]
    return {"terms": terms, "amounts": amounts, "deadlines": deadlines}


def render(kind: RecordKind, content: dict[str, Any]) -> str:
    return (
        render_transcript(content) if kind is RecordKind.TRANSCRIPT else render_agreement(content)
    )


# -- views ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignerStatus:
    participant_id: str
    name: str
    role: HearingRole
    status: str  # pending, signed, stale (signed an earlier text), refused
    at: datetime | None = None
    reason: str | None = None
    where: str | None = None


@dataclass(frozen=True, slots=True)
class DocumentView:
    document: RecordDocument
    latest: RecordVersion | None
    signers: list[SignerStatus] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.latest.text if self.latest else ""

    @property
    def text_sha256(self) -> str:
        return self.latest.text_sha256 if self.latest else text_sha256("")


def _signer_statuses(
    signers: Sequence[Participant], rows: Sequence[RecordSignature], current: str
) -> list[SignerStatus]:
    latest: dict[str, RecordSignature] = {}
    for row in rows:  # oldest first: the last one is the signer's answer
        latest[row.participant_id] = row
    result = []
    for p in signers:
        answer = latest.get(p.id)
        if answer is None:
            status = "pending"
        elif answer.refused:
            status = "refused"
        else:
            status = "signed" if answer.text_sha256 == current else "stale"
        result.append(
            SignerStatus(
                participant_id=p.id,
                name=p.display_name,
                role=p.role,
                status=status,
                at=answer.at if answer else None,
                reason=answer.reason if answer else None,
                where=answer.where if answer else None,
            )
        )
    return result


def _code_hash(document_id: str, participant_id: str, code: str) -> bytes:
    return hashlib.sha256(f"{document_id}:{participant_id}:{code}".encode()).digest()


def _seal(key_file: Path, content: DocumentContent) -> bytes:
    return seal_document(content, load_signing_key(key_file))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class HearingRecordService:
    """See the module docstring. Every method raises CourtError; on a raise nothing changed,
    except that a refused signing attempt is logged (LOGGED_REFUSALS)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        signing_key_file: Path | None,
        tsa: Mapping[str, Any] | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._key_file = signing_key_file
        self._tsa = tsa  # document_anchor.document_tsa(...): the court's TSA, if any

    # -- reading ---------------------------------------------------------------------------

    async def _view(self, db: AsyncSession, document: RecordDocument) -> DocumentView:
        repo = RecordRepository(db)
        latest = await repo.version(document.id, document.version) if document.version else None
        signers = await self._signers(db, document.hearing_id)
        rows = await repo.signatures(document.id)
        current = latest.text_sha256 if latest else text_sha256("")
        return DocumentView(document, latest, _signer_statuses(signers, rows, current))

    @staticmethod
    async def _signers(db: AsyncSession, hearing_id: str) -> list[Participant]:
        rows = await ParticipantRepository(db).list_for_hearing(hearing_id)
        return [p for p in rows if p.role in SIGNER_ROLES]

    @staticmethod
    async def _may_read(db: AsyncSession, principal: Principal) -> None:
        """A party reads the record only if it signs it: a witness waiting to be called must
        not follow the hearing through it (OLR 26). Raises FORBIDDEN."""
        if isinstance(principal, PartyPrincipal):
            me = await ParticipantRepository(db).get(principal.participant_id)
            if me is None or me.role not in SIGNER_ROLES:
                raise forbidden("read the hearing record")

    async def documents(self, principal: Principal, hearing_id: HearingId) -> list[DocumentView]:
        """The hearing's documents (anyone who may read the hearing). Raises NOT_FOUND."""
        async with self._sessions() as db:
            hearing = await readable_hearing(db, principal, hearing_id)
            await self._may_read(db, principal)
            return [
                await self._view(db, d) for d in await RecordRepository(db).documents(hearing.id)
            ]

    async def document(
        self, principal: Principal, hearing_id: HearingId, kind: RecordKind
    ) -> DocumentView:
        async with self._sessions() as db:
            hearing = await readable_hearing(db, principal, hearing_id)
            await self._may_read(db, principal)
            document = await RecordRepository(db).document(hearing.id, kind)
            if document is None:  # nothing written yet: an empty draft (not stored)
                document = RecordDocument(
                    id="",
                    hearing_id=hearing.id,
                    kind=kind.value,
                    state=DocState.DRAFT.value,
                    version=0,
                    source_document_ids=[],
                    created_at=self._clock.now(),
                )
            return await self._view(db, document)

    async def versions(
        self, principal: Principal, hearing_id: HearingId, kind: RecordKind
    ) -> Sequence[RecordVersion]:
        """Every saved version, for presiding staff. Raises NOT_FOUND, FORBIDDEN."""
        async with self._sessions() as db:
            hearing = await readable_hearing(db, principal, hearing_id)
            if not (isinstance(principal, StaffPrincipal) and principal.role in COURT_READERS):
                raise forbidden("read earlier versions")
            document = await RecordRepository(db).document(hearing.id, kind)
            if document is None:
                return []
            return await RecordRepository(db).versions(document.id)

    async def sealed(self, principal: Principal, hearing_id: HearingId, kind: RecordKind) -> bytes:
        """The sealed file of a final document, for presiding staff and the signing parties.
        Raises NOT_FOUND, FORBIDDEN, WRONG_STATE (not final yet)."""
        async with self._sessions() as db:
            hearing = await readable_hearing(db, principal, hearing_id)
            if isinstance(principal, PartyPrincipal):
                me = await ParticipantRepository(db).get(principal.participant_id)
                if me is None or me.role not in SIGNER_ROLES:
                    raise forbidden("download the hearing record")
            elif not (isinstance(principal, StaffPrincipal) and principal.role in PRESIDING_STAFF):
                raise forbidden("download the hearing record")
            document = await RecordRepository(db).document(hearing.id, kind)
            if document is None:
                raise not_found(kind.value)
            if document.sealed is None:
                raise CourtError(ErrorCode.WRONG_STATE, "the document is not final yet")
            return document.sealed

    # -- writing ---------------------------------------------------------------------------

    @staticmethod
    def _writer(principal: Principal, kind: RecordKind) -> StaffPrincipal:
        allowed = PRESIDING_STAFF if kind is RecordKind.TRANSCRIPT else RUNNING_STAFF
        if isinstance(principal, StaffPrincipal) and principal.role in allowed:
            return principal
        raise forbidden(
            "write the transcript" if kind is RecordKind.TRANSCRIPT else "draft the agreement"
        )

    async def _writable(
        self, db: AsyncSession, principal: Principal, hearing_id: HearingId, kind: RecordKind
    ) -> tuple[StaffPrincipal, Hearing, RecordDocument | None]:
        hearing = await readable_hearing(db, principal, hearing_id, lock=True)
        staff = self._writer(principal, kind)
        document = await RecordRepository(db).document(hearing.id, kind, lock=True)
        if document is not None and document.state in FINAL_STATES:
            raise CourtError(ErrorCode.RECORD_FINALISED, f"the {kind.value} is final")
        return staff, hearing, document

    async def save(
        self,
        principal: Principal,
        hearing_id: HearingId,
        kind: RecordKind,
        content: dict[str, Any],
        base_version: int | None = None,
    ) -> DocumentView:
        """Save a new version (none if nothing changed). Raises NOT_FOUND, FORBIDDEN,
        BAD_FIELD, TOO_LARGE, CONFLICT (`base_version` is not the latest), RECORD_FINALISED."""
        clean = normalise_content(kind, content)
        text = render(kind, clean)
        if len(text) > MAX_TEXT_CHARS:
            raise CourtError(ErrorCode.TOO_LARGE, f"at most {MAX_TEXT_CHARS} characters")
        now = self._clock.now()
        async with self._sessions.begin() as db:
            staff, hearing, document = await self._writable(db, principal, hearing_id, kind)
            repo = RecordRepository(db)
            if document is None:
                document = await repo.add_document(
                    RecordDocument(
                        hearing_id=hearing.id,
                        kind=kind.value,
                        state=DocState.DRAFT.value,
                        version=0,
                        source_document_ids=[],
                        created_at=now,
                    )
                )
            if base_version is not None and base_version != document.version:
                raise CourtError(
                    ErrorCode.CONFLICT,
                    "someone else saved a newer version",
                    version=document.version,
                )
            latest = await repo.version(document.id, document.version)
            if latest is not None and latest.text == text and latest.content == clean:
                return await self._view(db, document)
            document.version += 1
            sha = text_sha256(text)
            await repo.add_version(
                RecordVersion(
                    document_id=document.id,
                    version=document.version,
                    content=clean,
                    text=text,
                    text_sha256=sha,
                    saved_by=staff.actor,
                    saved_by_name=staff.display_name,
                    saved_at=now,
                )
            )
            await self._log(
                db,
                hearing.id,
                staff.actor,
                EventKind.RECORD_SAVED,
                {
                    "document_id": document.id,
                    "kind": kind.value,
                    "version": document.version,
                    "text_sha256": sha,
                },
            )
            return await self._view(db, document)

    async def request_signatures(
        self, principal: Principal, hearing_id: HearingId, kind: RecordKind
    ) -> DocumentView:
        """Ask the signers to sign the latest version. Raises NOT_FOUND, FORBIDDEN,
        WRONG_STATE (nothing written, or nobody to sign), RECORD_FINALISED."""
        async with self._sessions.begin() as db:
            staff, hearing, document = await self._writable(db, principal, hearing_id, kind)
            if document is None or document.version == 0:
                raise CourtError(ErrorCode.WRONG_STATE, "write and save the text first")
            if not await self._signers(db, hearing.id):
                raise CourtError(ErrorCode.WRONG_STATE, "nobody in this hearing signs")
            if document.state != DocState.SIGNING:
                document.state = DocState.SIGNING.value
                document.signing_requested_at = self._clock.now()
                await self._log(
                    db,
                    hearing.id,
                    staff.actor,
                    EventKind.RECORD_SIGNING_REQUESTED,
                    {"document_id": document.id, "kind": kind.value, "version": document.version},
                )
            return await self._view(db, document)

    # -- signing -----------------------------------------------------------------------------

    async def _acts_for(
        self, db: AsyncSession, principal: Principal, hearing: Hearing, participant_id: str
    ) -> Participant:
        """The signer `principal` may sign for. Raises NOT_YOUR_SIGNATURE, FORBIDDEN."""
        signer = await ParticipantRepository(db).get(participant_id)
        if signer is None or signer.hearing_id != hearing.id:
            raise CourtError(ErrorCode.NOT_YOUR_SIGNATURE, "you can only sign for yourself")
        if isinstance(principal, PartyPrincipal):
            allowed = principal.participant_id == signer.id
        elif isinstance(principal, StationPrincipal):
            allowed = await self._checked_at_station(db, hearing, signer.id)
        else:
            allowed = False  # staff never sign in a party's name
        if not allowed:
            raise CourtError(ErrorCode.NOT_YOUR_SIGNATURE, "you can only sign for yourself")
        if signer.role not in SIGNER_ROLES:
            raise forbidden("sign the hearing record")
        return signer

    @staticmethod
    async def _checked_at_station(db: AsyncSession, hearing: Hearing, participant_id: str) -> bool:
        """Whether the station checked this person's identity in person (they are there)."""
        events = await EventLogRepository(db).list(hearing.id)
        return any(
            e.kind == EventKind.IDENTITY_CONFIRMED
            and e.data.get("participant_id") == participant_id
            and e.data.get("method") == "station_attested"
            for e in events
        )

    async def _signable(
        self,
        db: AsyncSession,
        principal: Principal,
        hearing_id: HearingId,
        kind: RecordKind,
        participant_id: str,
    ) -> tuple[Hearing, RecordDocument, Participant]:
        hearing = await readable_hearing(db, principal, hearing_id, lock=True)
        signer = await self._acts_for(db, principal, hearing, participant_id)
        document = await RecordRepository(db).document(hearing.id, kind, lock=True)
        if document is None:
            raise not_found(kind.value)
        if document.state in FINAL_STATES:
            raise CourtError(ErrorCode.RECORD_FINALISED, f"the {kind.value} is final")
        if document.state != DocState.SIGNING:
            raise CourtError(ErrorCode.WRONG_STATE, "signatures have not been asked for yet")
        return hearing, document, signer

    async def issue_code(
        self, principal: Principal, hearing_id: HearingId, kind: RecordKind, participant_id: str
    ) -> tuple[str, DocumentView]:
        """A fresh one-time code for the signer, returned only to the caller (the signer's own
        session, or the station they stand at); earlier open codes are spent. Raises as
        `sign` does before the text and code checks."""
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        try:
            async with self._sessions.begin() as db:
                _, document, signer = await self._signable(
                    db, principal, hearing_id, kind, participant_id
                )
                repo = RecordRepository(db)
                await repo.retire_codes(document.id, signer.id)
                await repo.add_code(
                    RecordSigningCode(
                        document_id=document.id,
                        participant_id=signer.id,
                        code_hash=_code_hash(document.id, signer.id, code),
                        failures=0,
                        created_at=self._clock.now(),
                    )
                )
                return code, await self._view(db, document)
        except CourtError as exc:
            await self._log_refused(principal, hearing_id, kind, participant_id, exc)
            raise

    async def _spend_code(
        self, db: AsyncSession, document_id: str, signer_id: str, code: str
    ) -> None:
        digest = _code_hash(document_id, signer_id, code)
        for row in await RecordRepository(db).codes(document_id, signer_id):
            if hmac.compare_digest(row.code_hash, digest):
                if row.used_at is not None:
                    raise CourtError(
                        ErrorCode.CODE_USED, "this code was already used; ask for a new one"
                    )
                row.used_at = self._clock.now()
                return
        raise CourtError(ErrorCode.CODE_INVALID, "the code is not the one shown to you")

    async def sign(
        self,
        principal: Principal,
        hearing_id: HearingId,
        kind: RecordKind,
        participant_id: str,
        *,
        name: str,
        code: str,
        shown_sha256: str,
        where: str,
        image_png: bytes,
    ) -> DocumentView:
        """Sign the latest text. Raises NOT_FOUND, FORBIDDEN, WRONG_STATE, BAD_FIELD,
        RECORD_FINALISED, NOT_YOUR_SIGNATURE, TEXT_CHANGED, CODE_USED, CODE_INVALID (each of
        the last five logged)."""
        if where not in WHERE:
            raise CourtError(ErrorCode.BAD_FIELD, "where: phone, desk or station")
        if not image_png.startswith(b"\x89PNG\r\n\x1a\n") or len(image_png) > MAX_IMAGE_BYTES:
            raise CourtError(ErrorCode.BAD_FIELD, "image_png: the handwritten signature, PNG")
        return await self._answer(
            principal,
            hearing_id,
            kind,
            participant_id,
            code,
            shown_sha256,
            name=_clean(name, "name", 200),
            where=where,
            image_png=image_png,
            reason=None,
        )

    async def refuse(
        self,
        principal: Principal,
        hearing_id: HearingId,
        kind: RecordKind,
        participant_id: str,
        *,
        code: str,
        shown_sha256: str,
        reason: str,
        where: str = "phone",
    ) -> DocumentView:
        """Refuse to sign, with a reason. For an agreement this ends the mediation. Raises as
        `sign`."""
        if where not in WHERE:
            raise CourtError(ErrorCode.BAD_FIELD, "where: phone, desk or station")
        return await self._answer(
            principal,
            hearing_id,
            kind,
            participant_id,
            code,
            shown_sha256,
            name=None,
            where=where,
            image_png=None,
            reason=_clean(reason, "reason", 500),
        )

    async def _answer(
        self,
        principal: Principal,
        hearing_id: HearingId,
        kind: RecordKind,
        participant_id: str,
        code: str,
        shown_sha256: str,
        *,
        name: str | None,
        where: str,
        image_png: bytes | None,
        reason: str | None,
    ) -> DocumentView:
        try:
            async with self._sessions.begin() as db:
                hearing, document, signer = await self._signable(
                    db, principal, hearing_id, kind, participant_id
                )
                repo = RecordRepository(db)
                latest = await repo.version(document.id, document.version)
                assert latest is not None  # signing is asked for only after a save
                if shown_sha256 != latest.text_sha256:
                    raise CourtError(
                        ErrorCode.TEXT_CHANGED,
                        "the text changed since it was shown; read it again",
                        text_sha256=latest.text_sha256,
                    )
                await self._spend_code(db, document.id, signer.id, code)
                now = self._clock.now()
                await repo.add_signature(
                    RecordSignature(
                        document_id=document.id,
                        participant_id=signer.id,
                        version=document.version,
                        text_sha256=latest.text_sha256,
                        refused=reason is not None,
                        reason=reason,
                        name=name or signer.display_name,
                        where=where,
                        image_png=image_png,
                        signed_by=principal.actor,
                        at=now,
                    )
                )
                data = {
                    "document_id": document.id,
                    "kind": kind.value,
                    "participant_id": signer.id,
                    "version": document.version,
                    "text_sha256": latest.text_sha256,
                    "where": where,
                }
                if reason is not None:
                    await self._log(
                        db,
                        hearing.id,
                        principal.actor,
                        EventKind.RECORD_SIGNING_REFUSED,
                        {**data, "reason": reason},
                    )
                else:
                    await self._log(db, hearing.id, principal.actor, EventKind.RECORD_SIGNED, data)
                view = await self._view(db, document)
                if kind is RecordKind.AGREEMENT:
                    if reason is not None:
                        view = await self._finish(
                            db, hearing, document, DocState.FAILED, principal.actor, reason
                        )
                    elif all(s.status == "signed" for s in view.signers):
                        view = await self._finish(
                            db, hearing, document, DocState.EFFECTIVE, principal.actor
                        )
                return view
        except CourtError as exc:
            await self._log_refused(principal, hearing_id, kind, participant_id, exc)
            raise

    async def _log_refused(
        self,
        principal: Principal,
        hearing_id: HearingId,
        kind: RecordKind,
        participant_id: str,
        exc: CourtError,
    ) -> None:
        """Keep a refused signing attempt in the hearing's log (its own transaction: the
        attempt's was rolled back); a wrong code counts against the signer's open code."""
        if exc.code not in LOGGED_REFUSALS:
            return
        async with self._sessions.begin() as db:
            hearing = await readable_hearing(db, principal, hearing_id)
            document = await RecordRepository(db).document(hearing.id, kind)
            if exc.code is ErrorCode.CODE_INVALID and document is not None:
                for row in await RecordRepository(db).codes(document.id, participant_id):
                    if row.used_at is None:
                        row.failures += 1
                        if row.failures >= MAX_CODE_FAILURES:
                            row.used_at = self._clock.now()
            await self._log(
                db,
                hearing.id,
                principal.actor,
                EventKind.RECORD_SIGNATURE_REJECTED,
                {
                    "document_id": document.id if document else None,
                    "kind": kind.value,
                    "participant_id": participant_id,
                    "code": exc.code.value,
                },
            )

    # -- ending ----------------------------------------------------------------------------

    async def finalise(
        self, principal: Principal, hearing_id: HearingId, kind: RecordKind
    ) -> DocumentView:
        """Make the transcript final and seal it. Raises NOT_FOUND, FORBIDDEN, WRONG_STATE
        (signatures not asked for; an agreement ends by its signatures), RECORD_FINALISED."""
        async with self._sessions.begin() as db:
            staff, hearing, document = await self._writable(db, principal, hearing_id, kind)
            if kind is not RecordKind.TRANSCRIPT:
                raise CourtError(
                    ErrorCode.WRONG_STATE, "an agreement takes effect by the parties' signatures"
                )
            if document is None or document.state != DocState.SIGNING:
                raise CourtError(ErrorCode.WRONG_STATE, "ask the parties to sign first")
            return await self._finish(db, hearing, document, DocState.FINALISED, staff.actor)

    async def _finish(
        self,
        db: AsyncSession,
        hearing: Hearing,
        document: RecordDocument,
        state: DocState,
        actor: str,
        reason: str | None = None,
    ) -> DocumentView:
        """Seal the document as it stands and log how it ended."""
        if self._key_file is None:
            raise CourtError(ErrorCode.WRONG_STATE, "the court has no signing key configured")
        now = self._clock.now()
        view = await self._view(db, document)
        rows = await RecordRepository(db).signatures(document.id)
        latest_rows: dict[str, RecordSignature] = {}
        for row in rows:
            latest_rows[row.participant_id] = row
        roles = {s.participant_id: s.role for s in view.signers}
        signatures = tuple(
            Signature(
                participant_id=r.participant_id,
                role=roles[r.participant_id].value,
                name=r.name,
                signed_at=_iso(r.at),
                text_sha256=r.text_sha256,
                where=r.where,
                image_png_b64=base64.b64encode(r.image_png or b"").decode(),
            )
            for r in latest_rows.values()
            if not r.refused and r.text_sha256 == view.text_sha256 and r.participant_id in roles
        )
        refusals = tuple(
            Refusal(
                participant_id=r.participant_id,
                role=roles[r.participant_id].value,
                name=r.name,
                refused_at=_iso(r.at),
                reason=r.reason or "",
            )
            for r in latest_rows.values()
            if r.refused and r.participant_id in roles
        )
        court = await CourtRepository(db).get(hearing.court_id)
        case = await CaseRepository(db).get(hearing.case_id, hearing.court_id)
        content = DocumentContent(
            kind="transcript" if document.kind == RecordKind.TRANSCRIPT else "agreement",
            document_id=document.id,
            version=document.version,
            court=court.name if court else "",
            case_number=case.number if case else "",
            hearing_id=hearing.id,
            hearing_title=hearing.title,
            text=view.text,
            finalised_at=_iso(now),
            signatures=signatures,
            refusals=refusals,
            outcome={
                DocState.FINALISED: "final",
                DocState.EFFECTIVE: "effective",
                DocState.FAILED: "refused",
            }[state],
            extra={
                "items": view.latest.content if view.latest else {},
                "not_signed": [
                    s.participant_id for s in view.signers if s.status in ("pending", "stale")
                ],
                "source_document_ids": list(document.source_document_ids or []),
            },
        )
        sealed = await asyncio.to_thread(_seal, self._key_file, content)
        document.sealed, no_anchor = await anchor_sealed(sealed, self._tsa)
        document.state = state.value
        document.finalised_at = now
        document.finalised_by = actor
        data: dict[str, Any] = {
            "document_id": document.id,
            "kind": document.kind,
            "version": document.version,
            "text_sha256": view.text_sha256,
            # RFC 3161 time anchor of the sealed file: "anchored", or why there is none.
            "time_anchor": "anchored" if no_anchor is None else no_anchor,
        }
        if state is DocState.FINALISED:
            await self._log(db, hearing.id, actor, EventKind.RECORD_FINALISED, data)
        elif state is DocState.EFFECTIVE:
            await self._log(db, hearing.id, actor, EventKind.AGREEMENT_EFFECTIVE, data)
        elif state is DocState.FAILED:
            await self._log(
                db, hearing.id, actor, EventKind.MEDIATION_FAILED, {**data, "reason": reason}
            )
        return await self._view(db, document)

    async def _log(
        self, db: AsyncSession, hearing_id: str, actor: str, kind: EventKind, data: dict[str, Any]
    ) -> None:
        await EventLogRepository(db).append(
            hearing_id, at=self._clock.now(), actor=actor, kind=kind, data=data
        )

    # -- a failed mediation sent on to a hearing --------------------------------------------

    async def send_on(
        self,
        principal: Principal,
        hearing_id: HearingId,
        *,
        title: str,
        start: datetime,
        minutes: int,
        presiding_user_id: str,
        clerk_user_id: str | None,
        station_id: str | None,
    ) -> tuple[Hearing, list[str]]:
        """Send a failed mediation on to a hearing of the same case, heard by a judge: the case
        is heard from now on (hearing mode), the new hearing has the same people, and its
        transcript is linked to the mediation's sealed documents. Returns the new hearing and
        those documents' ids. Raises NOT_FOUND, FORBIDDEN (not the judge or mediator),
        WRONG_STATE (the mediation did not fail), CONFLICT (already sent on), BAD_FIELD."""
        async with self._sessions() as db:
            hearing = await readable_hearing(db, principal, hearing_id)
            if not (isinstance(principal, StaffPrincipal) and principal.role in RUNNING_STAFF):
                raise forbidden("send a mediation on to a hearing")
            agreement = await RecordRepository(db).document(hearing.id, RecordKind.AGREEMENT)
            if agreement is None or agreement.state != DocState.FAILED:
                raise CourtError(ErrorCode.WRONG_STATE, "only a failed mediation is sent on")
            events = await EventLogRepository(db).list(hearing.id)
            if any(e.kind == EventKind.RECORD_SENT_ON for e in events):
                raise CourtError(ErrorCode.CONFLICT, "this mediation was already sent on")
            judge = await UserRepository(db).get(presiding_user_id)
            if judge is None or judge.role is not StaffRole.JUDGE:
                raise CourtError(
                    ErrorCode.BAD_FIELD,
                    "presiding_user_id: a judge hears the case",
                    field="presiding_user_id",
                )
            sources = [d.id for d in await RecordRepository(db).documents(hearing.id)]
            case_id = hearing.case_id
        new = await BookingService(self._sessions, self._clock).schedule(
            principal,
            case_id=case_id,
            title=title,
            start=start,
            minutes=minutes,
            station_id=station_id,
            presiding_user_id=presiding_user_id,
            clerk_user_id=clerk_user_id,
        )
        async with self._sessions.begin() as db:
            case = await CaseRepository(db).get(case_id, new.court_id)
            if case is not None:
                case.mode = HearingMode.HEARING
            await RecordRepository(db).add_document(
                RecordDocument(
                    hearing_id=new.id,
                    kind=RecordKind.TRANSCRIPT.value,
                    state=DocState.DRAFT.value,
                    version=0,
                    source_document_ids=sources,
                    created_at=self._clock.now(),
                )
            )
            data = {"from_hearing_id": hearing.id, "to_hearing_id": new.id, "documents": sources}
            for target in (hearing.id, new.id):
                await self._log(db, target, principal.actor, EventKind.RECORD_SENT_ON, data)
        return new, sources
