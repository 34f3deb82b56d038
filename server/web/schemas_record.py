"""Request and response bodies of the hearing record endpoints (``api_record``, issue 15).
Requests are strict as in ``schemas``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from server.enums import HearingRole
from server.web.schemas import Request, Response, Uuid

Kind = Literal["transcript", "agreement"]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class Entry(Request):
    role: HearingRole = Field(description="The speaker's hearing role.")
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    text: Line


class Amount(Request):
    payer: Short
    payee: Short
    amount: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}(\.[0-9]{1,2})?$")] = Field(
        description="Yuan, as a decimal string: 1200.50"
    )
    due: date


class Deadline(Request):
    what: Line
    by: date


class SaveRequest(Request):
    """The document's structured content (a transcript's entries; an agreement's terms,
    amounts and deadlines); the server renders the exact text that is signed."""

    entries: list[Entry] = Field(default_factory=list, max_length=2000)
    terms: list[Line] = Field(default_factory=list, max_length=200)
    amounts: list[Amount] = Field(default_factory=list, max_length=100)
    deadlines: list[Deadline] = Field(default_factory=list, max_length=100)
    base_version: int | None = Field(
        default=None, description="The version this edit started from (CONFLICT if stale)."
    )


class CodeRequest(Request):
    participant_id: Uuid = Field(description="The signer (yourself, or a person at the station).")


class SignRequest(Request):
    participant_id: Uuid
    name: Short = Field(description="The signer's name as they write it.")
    code: Code = Field(description="The one-time code shown to the signer.")
    text_sha256: Sha256 = Field(description="SHA-256 of the exact text shown to the signer.")
    where: Literal["phone", "desk", "station"]
    image_png_b64: Annotated[str, StringConstraints(min_length=1, max_length=400_000)] = Field(
        description="The handwritten signature drawn on a canvas, PNG, base64."
    )


class RefuseRequest(Request):
    participant_id: Uuid
    code: Code
    text_sha256: Sha256
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    where: Literal["phone", "desk", "station"] = "phone"


class SignerOut(Response):
    participant_id: str
    name: str
    role: HearingRole
    status: Literal["pending", "signed", "stale", "refused"] = Field(
        description="stale: signed an earlier text; asked to sign again."
    )
    at: datetime | None
    reason: str | None
    where: str | None


class DocumentOut(Response):
    id: str | None = Field(description="None until the first save.")
    hearing_id: str
    kind: Kind
    state: Literal["draft", "signing", "finalised", "effective", "failed"]
    version: int
    text: str
    text_sha256: str
    content: dict[str, object]
    saved_at: datetime | None
    saved_by_name: str | None
    signers: list[SignerOut]
    finalised_at: datetime | None
    sealed: bool
    source_document_ids: list[str]


class VersionOut(Response):
    version: int
    text: str
    text_sha256: str
    saved_by_name: str
    saved_at: datetime


class CodeOut(Response):
    participant_id: str
    code: str = Field(description="Shown to this signer only; spent by one signature.")
    document: DocumentOut


class SentOnOut(Response):
    hearing_id: str = Field(description="The new hearing (hearing mode) for the same case.")
    source_document_ids: list[str]
