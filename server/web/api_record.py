"""REST endpoints of the hearing record (issue 15): the transcript and the mediation
agreement, their versions, signing (one-time codes, signatures, refusals), finalising, and the
court-sealed file for download.

Handlers translate HTTP to ``server.hearings.hearing_record`` calls (authorization is the
service's) and, after a change, tell the live hearing (if one is loaded): presiding staff and
the main room see the record change at once (``record_changed``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from aiohttp import web

from recordings.document_pdf import render_pdf
from server.auth.principals import Principal
from server.errors import CourtError, ErrorCode, not_found
from server.hearings import live as rules
from server.hearings.document_anchor import document_tsa
from server.hearings.hearing_record import DocumentView, HearingRecordService, RecordKind
from server.ids import HearingId
from server.web import schemas_record as r
from server.web.appkeys import CLOCK, CONFIG, ROOMS, SESSIONS
from server.web.endpoint import Endpoint
from server.web.http import hearing_path_id, parse_body, principal, reply
from server.web.schemas_booking import ScheduleRequest


def _service(request: web.Request) -> HearingRecordService:
    # Stateless over the shared session factory, clock and the recorder's signing key file.
    config = request.app[CONFIG]
    return HearingRecordService(
        request.app[SESSIONS],
        request.app[CLOCK],
        config.recording.signing_key_file,
        document_tsa(config.recording.timestamping),
    )


def _kind(request: web.Request) -> RecordKind:
    try:
        return RecordKind(request.match_info["kind"])
    except ValueError:
        raise not_found("document") from None


def document_out(view: DocumentView) -> r.DocumentOut:
    d = view.document
    return r.DocumentOut(
        id=d.id or None,
        hearing_id=d.hearing_id,
        kind=d.kind,
        state=d.state,
        version=d.version,
        text=view.text,
        text_sha256=view.text_sha256,
        content=dict(view.latest.content) if view.latest else {},
        saved_at=view.latest.saved_at if view.latest else None,
        saved_by_name=view.latest.saved_by_name if view.latest else None,
        signers=[r.SignerOut.model_validate(s) for s in view.signers],
        finalised_at=d.finalised_at,
        sealed=d.sealed is not None,
        source_document_ids=list(d.source_document_ids or []),
    )


async def announce(request: web.Request, hearing_id: HearingId, view: DocumentView) -> None:
    """Tell the live hearing, if loaded, that its record changed (the rules pick who hears)."""
    live = request.app[ROOMS].get(hearing_id)
    if live is None or not view.document.id:
        return
    await live.record_changed(
        rules.RecordChanged(
            kind=view.document.kind,
            document_id=view.document.id,
            version=view.document.version,
            state=view.document.state,
            text=view.text,
            text_sha256=view.text_sha256,
            signers=tuple((s.participant_id, s.name, s.role, s.status) for s in view.signers),
        )
    )


async def _changed(request: web.Request, hearing_id: HearingId, view: DocumentView) -> web.Response:
    await announce(request, hearing_id, view)
    return reply(document_out(view))


async def list_documents(request: web.Request) -> web.StreamResponse:
    views = await _service(request).documents(principal(request), hearing_path_id(request))
    return reply([document_out(v) for v in views])


async def get_document(request: web.Request) -> web.StreamResponse:
    view = await _service(request).document(
        principal(request), hearing_path_id(request), _kind(request)
    )
    return reply(document_out(view))


async def save(request: web.Request) -> web.StreamResponse:
    who, hearing_id, kind = principal(request), hearing_path_id(request), _kind(request)
    body = await parse_body(request, r.SaveRequest)
    content = body.model_dump(mode="json", exclude={"base_version"})
    if kind is RecordKind.TRANSCRIPT:
        content = {"entries": content["entries"]}
    else:
        content.pop("entries")
    view = await _service(request).save(who, hearing_id, kind, content, body.base_version)
    return await _changed(request, hearing_id, view)


async def versions(request: web.Request) -> web.StreamResponse:
    found = await _service(request).versions(
        principal(request), hearing_path_id(request), _kind(request)
    )
    return reply([r.VersionOut.model_validate(v) for v in found])


async def request_signatures(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    view = await _service(request).request_signatures(
        principal(request), hearing_id, _kind(request)
    )
    return await _changed(request, hearing_id, view)


async def issue_code(request: web.Request) -> web.StreamResponse:
    who, hearing_id, kind = principal(request), hearing_path_id(request), _kind(request)
    body = await parse_body(request, r.CodeRequest)
    code, view = await _service(request).issue_code(who, hearing_id, kind, body.participant_id)
    return reply(
        r.CodeOut(participant_id=body.participant_id, code=code, document=document_out(view))
    )


def _png(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CourtError(
            ErrorCode.BAD_FIELD, "image_png_b64: base64 of a PNG", field="image_png_b64"
        ) from None


async def sign(request: web.Request) -> web.StreamResponse:
    who: Principal = principal(request)
    hearing_id, kind = hearing_path_id(request), _kind(request)
    body = await parse_body(request, r.SignRequest)
    view = await _service(request).sign(
        who,
        hearing_id,
        kind,
        body.participant_id,
        name=body.name,
        code=body.code,
        shown_sha256=body.text_sha256,
        where=body.where,
        image_png=_png(body.image_png_b64),
    )
    return await _changed(request, hearing_id, view)


async def refuse(request: web.Request) -> web.StreamResponse:
    who, hearing_id, kind = principal(request), hearing_path_id(request), _kind(request)
    body = await parse_body(request, r.RefuseRequest)
    view = await _service(request).refuse(
        who,
        hearing_id,
        kind,
        body.participant_id,
        code=body.code,
        shown_sha256=body.text_sha256,
        reason=body.reason,
        where=body.where,
    )
    return await _changed(request, hearing_id, view)


async def finalise(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    view = await _service(request).finalise(principal(request), hearing_id, _kind(request))
    return await _changed(request, hearing_id, view)


async def sealed_pdf(request: web.Request) -> web.StreamResponse:
    """The same sealed file, printed (text, signers and their handwriting, every hash, the
    court's signature); the JSON file stays the evidence, the PDF is for reading."""
    hearing_id, kind = hearing_path_id(request), _kind(request)
    data = await _service(request).sealed(principal(request), hearing_id, kind)
    pdf = await asyncio.to_thread(render_pdf, data)
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{kind.value}-{hearing_id}.pdf"'},
    )


async def sealed(request: web.Request) -> web.StreamResponse:
    hearing_id, kind = hearing_path_id(request), _kind(request)
    data = await _service(request).sealed(principal(request), hearing_id, kind)
    return web.Response(
        body=data,
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{kind.value}-{hearing_id}.json"'},
    )


async def send_on(request: web.Request) -> web.StreamResponse:
    who, hearing_id = principal(request), hearing_path_id(request)
    body = await parse_body(request, ScheduleRequest)
    hearing, sources = await _service(request).send_on(
        who,
        hearing_id,
        title=body.title,
        start=body.scheduled_start,
        minutes=body.duration_minutes,
        presiding_user_id=body.presiding_user_id,
        clerk_user_id=body.clerk_user_id,
        station_id=body.station_id,
    )
    return reply(r.SentOnOut(hearing_id=hearing.id, source_document_ids=sources), status=201)


R = "/api/hearings/{hearing_id}/record"
D = R + "/{kind}"
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        R,
        list_documents,
        "The hearing's transcript and agreement",
        response=r.DocumentOut,
        many=True,
    ),
    Endpoint(
        "GET",
        D,
        get_document,
        "A record document (kind: transcript or agreement)",
        response=r.DocumentOut,
    ),
    Endpoint(
        "PUT",
        D,
        save,
        "Save a new version (presiding staff; the agreement: judge or mediator)",
        request=r.SaveRequest,
        response=r.DocumentOut,
    ),
    Endpoint(
        "GET",
        D + "/versions",
        versions,
        "Every saved version, with who saved it and when",
        response=r.VersionOut,
        many=True,
    ),
    Endpoint(
        "POST",
        D + "/signing-request",
        request_signatures,
        "Ask the parties to sign",
        response=r.DocumentOut,
    ),
    Endpoint(
        "POST",
        D + "/code",
        issue_code,
        "A one-time signing code, shown only to the signer",
        request=r.CodeRequest,
        response=r.CodeOut,
    ),
    Endpoint(
        "POST",
        D + "/signatures",
        sign,
        "Sign the exact text shown (name, code, handwriting)",
        request=r.SignRequest,
        response=r.DocumentOut,
    ),
    Endpoint(
        "POST",
        D + "/refusals",
        refuse,
        "Refuse to sign, with a reason",
        request=r.RefuseRequest,
        response=r.DocumentOut,
    ),
    Endpoint(
        "POST",
        D + "/finalise",
        finalise,
        "Finalise and seal the transcript",
        response=r.DocumentOut,
    ),
    Endpoint(
        "POST",
        R + "/send-on",
        send_on,
        "Send a failed mediation on to a hearing of the case (judge or mediator)",
        request=ScheduleRequest,
        response=r.SentOnOut,
        status=201,
    ),
    Endpoint(
        "GET",
        D + "/sealed",
        sealed,
        "The court-sealed document (presiding staff, signers)",
        media_type="application/json",
    ),
    Endpoint(
        "GET",
        D + "/sealed.pdf",
        sealed_pdf,
        "The court-sealed document printed as a PDF in Chinese (presiding staff, signers)",
        media_type="application/pdf",
    ),
)
