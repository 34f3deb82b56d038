"""REST for the station's day (issue 14): the station's hearings with court, case and people,
the station PC's status and self-test, the network check's two ends, and the director's
in-person identity check. Handlers translate HTTP only; the rules are in
server/hearings/stations.py."""

from __future__ import annotations

from aiohttp import web

from server.auth.principals import StationPrincipal
from server.errors import CourtError, ErrorCode
from server.hearings.stations import StationDayService, StationState
from server.ids import ParticipantId
from server.web import schemas_station as s
from server.web.appkeys import CLOCK, ROOMS, SESSIONS
from server.web.endpoint import Endpoint
from server.web.http import hearing_path_id, parse_body, path_id, principal, reply

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
        S + "/upload-test",
        upload_test,
        "The station's network check: upload throughput (raw bytes, at most 512 KiB)",
        response=s.UploadTestOut,
    ),
)
