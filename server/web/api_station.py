"""REST for the station's day (issue 14): the station's hearings with court, case and people,
the station PC's status and self-test, the network check's two ends, and the director's
in-person identity check. Handlers translate HTTP only; the rules are in
server/hearings/stations.py."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from server.auth.principals import StationPrincipal
from server.errors import CourtError, ErrorCode
from server.hearings.station_enrolment import StationEnrolmentService
from server.hearings.stations import StationDayService, StationState
from server.ids import ParticipantId
from server.web import schemas_station as s
from server.web.appkeys import AUTH, CLOCK, CONNECTIONS, ROOMS, SESSIONS
from server.web.endpoint import Endpoint
from server.web.http import (
    client_address,
    hearing_path_id,
    parse_body,
    path_id,
    principal,
    reply,
    session_reply,
)
from server.web.schemas import SessionOut
from server.web.schemas_station import DisableRequest

# The upload half of the station's network check sends at most this much per request.
UPLOAD_TEST_MAX_BYTES = 512 * 1024


def _service(request: web.Request) -> StationDayService:
    app = request.app
    return StationDayService(app[SESSIONS], app[CLOCK], app[ROOMS])


def _status_out(state: StationState) -> s.StationStatusOut:
    return s.StationStatusOut.model_validate(state)


async def station_hearings(request: web.Request) -> web.StreamResponse:
    hearings = await _service(request).hearings(principal(request))
    return reply([s.StationHearingOut.model_validate(h) for h in hearings])


async def station_report(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    body = await parse_body(request, s.StationReportRequest)
    state = await _service(request).report(
        who,
        pending_backups=body.pending_backups,
        self_test=body.self_test.model_dump(mode="json") if body.self_test else None,
    )
    return reply(_status_out(state))


async def station_status(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    station_id = path_id(request, "station_id", "station")
    return reply(_status_out(await _service(request).status(who, station_id)))


async def identity_check(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    hearing_id = hearing_path_id(request)
    participant_id = ParticipantId(path_id(request, "participant_id", "participant"))
    body = await parse_body(request, s.IdentityCheckRequest)
    state = await _service(request).check_identity(
        who, hearing_id, participant_id, name=body.name, id_digits=body.id_digits, note=body.note
    )
    return reply(s.IdentityCheckOut(participant_id=participant_id, state=state))


def _require_station(request: web.Request) -> None:
    if not isinstance(principal(request), StationPrincipal):
        raise CourtError(ErrorCode.FORBIDDEN, "only a station runs the network check")


async def ping(request: web.Request) -> web.StreamResponse:
    _require_station(request)
    return reply(s.PingOut(at=request.app[CLOCK].now()))


async def upload_test(request: web.Request) -> web.StreamResponse:
    _require_station(request)
    received = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        received += len(chunk)
        if received > UPLOAD_TEST_MAX_BYTES:
            raise CourtError(ErrorCode.TOO_LARGE, "the upload test sends at most 512 KiB")
    return reply(s.UploadTestOut(received=received))


# -- enrolment and disabling ------------------------------------------------------------------


def _enrolment(request: web.Request) -> StationEnrolmentService:
    return StationEnrolmentService(request.app[SESSIONS], request.app[CLOCK])


async def issue_enrolment_code(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    station_id = path_id(request, "station_id", "station")
    issued = await _enrolment(request).issue_code(who, station_id)
    return reply(
        s.EnrolmentCodeOut(
            station_id=issued.station_id, code=issued.code, expires_at=issued.expires_at
        ),
        status=201,
    )


async def enrol(request: web.Request) -> web.StreamResponse:
    body = await parse_body(request, s.EnrolRequest)
    fingerprint = await _enrolment(request).enrol(body.station_id, body.code, body.public_key)
    return reply(s.EnrolledOut(station_id=body.station_id, key_id=fingerprint))


async def signed_login(request: web.Request) -> web.StreamResponse:
    body = await parse_body(request, s.SignedLoginRequest)
    try:
        signature = base64.b64decode(body.signature, validate=True)
    except binascii.Error:
        raise CourtError(ErrorCode.BAD_CREDENTIALS, "wrong station id or signature") from None
    issued = await request.app[AUTH].station_signed_login(
        body.station_id, body.at, signature, client_address(request)
    )
    return session_reply(request, issued)


async def disable_station(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    station_id = path_id(request, "station_id", "station")
    body = await parse_body(request, DisableRequest)
    ended = await _enrolment(request).set_disabled(who, station_id, body.disabled)
    if ended:
        await request.app[CONNECTIONS].end_sessions(ended, "the court disabled this station")
    return reply(
        s.StationDisabledOut(
            station_id=station_id, disabled=body.disabled, sessions_ended=len(ended)
        )
    )


S = "/api/station"
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        S + "/hearings",
        station_hearings,
        "The hearings of the day at the station (a station: its own; a director: the stations "
        "they direct), each with its court, case and the people expected",
        response=s.StationHearingOut,
        many=True,
    ),
    Endpoint(
        "POST",
        S + "/status",
        station_report,
        "The station reports itself: a heartbeat, backups waiting, and its scored self-test",
        s.StationReportRequest,
        s.StationStatusOut,
    ),
    Endpoint(
        "GET",
        "/api/stations/{station_id}/status",
        station_status,
        "A station PC's status: online, last seen, latest self-test, backups waiting",
        response=s.StationStatusOut,
    ),
    Endpoint(
        "POST",
        "/api/station/hearings/{hearing_id}/participants/{participant_id}/identity-check",
        identity_check,
        "The station's director checked in person, at the station, the identity of someone "
        "present there (name and ID digits read from the document, checked against the record)",
        s.IdentityCheckRequest,
        s.IdentityCheckOut,
    ),
    Endpoint(
        "GET", S + "/ping", ping, "The station's network check: round trip", response=s.PingOut
    ),
    Endpoint(
        "POST",
        "/api/stations/{station_id}/enrolment-codes",
        issue_enrolment_code,
        "An administrator issues a one-time code for the station to register its own key with "
        "(shown once, valid 24 h)",
        response=s.EnrolmentCodeOut,
        status=201,
    ),
    Endpoint(
        "POST",
        S + "/enrol",
        enrol,
        "The station registers the public key it created, with a one-time enrolment code",
        s.EnrolRequest,
        s.EnrolledOut,
        public=True,
    ),
    Endpoint(
        "POST",
        "/api/auth/station/signed",
        signed_login,
        "Station login with its own key: an Ed25519 signature of the time (403 "
        "details.reason STATION_DISABLED for a disabled station)",
        s.SignedLoginRequest,
        SessionOut,
        public=True,
    ),
    Endpoint(
        "POST",
        "/api/stations/{station_id}/disable",
        disable_station,
        "An administrator disables (or enables) a station: its sessions end at once and it "
        "is told so at its next login",
        DisableRequest,
        s.StationDisabledOut,
    ),
    Endpoint(
        "POST",
        S + "/upload-test",
        upload_test,
        "The station's network check: upload throughput (raw bytes, at most 512 KiB)",
        response=s.UploadTestOut,
    ),
)
