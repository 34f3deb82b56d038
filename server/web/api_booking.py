"""REST endpoints of the staff console (issue 12): what a booking chooses from (causes, staff),
scheduling, changing and cancelling hearings, the participants' link states, the dashboard with
readiness, and a closed hearing's summary.

Opening a case and adding people use the core endpoints (``api``: POST /api/cases, POST
/api/hearings/{id}/participants, invitations). Handlers translate HTTP to
``server.hearings.booking`` calls; authorization is the service's.
"""

from __future__ import annotations

from aiohttp import web

from server.hearings.booking import BookingService, LiveView
from server.hearings.causes import CAUSES
from server.ids import HearingId
from server.storage.models import Hearing, Participant
from server.web import schemas as s
from server.web import schemas_booking as b
from server.web.appkeys import CLOCK, ROOMS, SESSIONS
from server.web.endpoint import Endpoint
from server.web.http import hearing_path_id, parse_body, path_id, principal, reply


def _service(request: web.Request) -> BookingService:
    # Stateless over the shared session factory and clock: no app key of its own needed.
    return BookingService(request.app[SESSIONS], request.app[CLOCK])


def _booking(hearing: Hearing) -> b.BookingOut:
    return b.BookingOut.model_validate(hearing)


def _person(p: Participant) -> b.PersonOut:
    return b.PersonOut.model_validate(p)


async def list_causes(request: web.Request) -> web.StreamResponse:
    principal(request)  # any signed-in caller: the list is no secret, but not public either
    return reply([b.CauseOut(code=c.code.value, zh=c.zh, en=c.en) for c in CAUSES])


async def list_staff(request: web.Request) -> web.StreamResponse:
    users = await _service(request).list_staff(principal(request))
    return reply([b.StaffMemberOut.model_validate(u) for u in users])


async def case_hearings(request: web.Request) -> web.StreamResponse:
    case_id = path_id(request, "case_id", "case")
    hearings = await _service(request).case_hearings(principal(request), case_id)
    return reply([_booking(h) for h in hearings])


async def schedule(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    case_id = path_id(request, "case_id", "case")
    body = await parse_body(request, b.ScheduleRequest)
    hearing = await _service(request).schedule(
        who,
        case_id=case_id,
        title=body.title,
        start=body.scheduled_start,
        minutes=body.duration_minutes,
        station_id=body.station_id,
        presiding_user_id=body.presiding_user_id,
        clerk_user_id=body.clerk_user_id,
    )
    return reply(_booking(hearing), status=201)


async def get_booking(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    hearing = await _service(request).get_booking(principal(request), hearing_id)
    return reply(_booking(hearing))


async def update_booking(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    hearing_id = hearing_path_id(request)
    body = await parse_body(request, b.ScheduleRequest)
    hearing = await _service(request).update(
        who,
        hearing_id,
        title=body.title,
        start=body.scheduled_start,
        minutes=body.duration_minutes,
        station_id=body.station_id,
        presiding_user_id=body.presiding_user_id,
        clerk_user_id=body.clerk_user_id,
    )
    return reply(_booking(hearing))


async def cancel(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    hearing_id = hearing_path_id(request)
    body = await parse_body(request, b.CancelRequest)
    hearing = await _service(request).cancel(who, hearing_id, body.reason)
    live = request.app[ROOMS].get(hearing_id)
    if live is not None:  # someone had the room loaded: they learn it is over
        await live.hearing_state_changed(hearing.state, body.reason, None)
    return reply(_booking(hearing))


async def link_states(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    found = await _service(request).link_states(principal(request), hearing_id)
    return reply(
        [
            b.LinkStateOut(
                participant=_person(x.participant),
                state=x.state,
                invitation=s.InvitationOut.model_validate(x.invitation) if x.invitation else None,
                superseded=x.superseded,
            )
            for x in found
        ]
    )


async def dashboard(request: web.Request) -> web.StreamResponse:
    rooms = request.app[ROOMS]

    def live_view(hearing_id: str) -> LiveView | None:
        """What the hearing's live room in this process knows now: each participant's state
        and whether they are connected (None: nobody has joined it since start-up)."""
        live = rooms.get(HearingId(hearing_id))
        if live is None:
            return None
        return {pid: (a.state, a.connected) for pid, a in live.attendees.items()}

    today, court_name, rows = await _service(request).dashboard(principal(request), live_view)
    out = b.DashboardOut(
        today=today,
        hearings=[
            b.DashboardHearingOut(
                id=r.hearing.id,
                title=r.hearing.title,
                scheduled_start=r.hearing.scheduled_start,
                scheduled_end=r.hearing.scheduled_end,
                state=r.hearing.state,
                cancel_reason=r.hearing.cancel_reason,
                case_id=r.hearing.case_id,
                case_number=r.case.number if r.case else None,
                cause=r.case.cause if r.case else None,
                court_name=court_name,
                station_id=r.hearing.station_id,
                station_name=r.station_name,
                presiding_user_id=r.hearing.presiding_user_id,
                presiding_name=r.presiding_name,
                clerk_name=r.clerk_name,
                station_online=r.station_online,
                station_self_test=r.station_self_test,
                people=[
                    b.ReadinessOut(
                        participant_id=p.participant_id,
                        display_name=p.display_name,
                        role=p.role,
                        state=p.state,
                        connected=p.connected,
                    )
                    for p in r.people
                ],
            )
            for r in rows
        ],
    )
    return reply(out)


async def summary(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    found = await _service(request).summary(principal(request), hearing_id)
    out = b.SummaryOut(
        hearing=_booking(found.hearing),
        case=s.CaseOut.model_validate(found.case) if found.case else None,
        participants=[_person(p) for p in found.participants],
        events=[b.SummaryEventOut.model_validate(e) for e in found.events],
        departures=[b.SummaryDepartureOut.model_validate(d) for d in found.departures],
        recordings=[b.SummaryRecordingOut.model_validate(r) for r in found.recordings],
        station_backups=[b.SummaryBackupOut.model_validate(x) for x in found.station_backups],
    )
    return reply(out)


H = "/api/hearings/{hearing_id}"

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/api/causes",
        list_causes,
        "Causes of action a case can be opened under (stable codes, zh-CN and English labels)",
        response=b.CauseOut,
        many=True,
    ),
    Endpoint(
        "GET",
        "/api/staff",
        list_staff,
        "The court's judges, clerks and mediators (to book a hearing with)",
        response=b.StaffMemberOut,
        many=True,
    ),
    Endpoint(
        "GET",
        "/api/cases/{case_id}/hearings",
        case_hearings,
        "A case's hearings as booked",
        response=b.BookingOut,
        many=True,
    ),
    Endpoint(
        "POST",
        "/api/cases/{case_id}/bookings",
        schedule,
        "Schedule a hearing with its presiding judge or mediator, clerk and station (they "
        "become its participants)",
        b.ScheduleRequest,
        b.BookingOut,
        status=201,
    ),
    Endpoint("GET", H + "/booking", get_booking, "A hearing as booked", response=b.BookingOut),
    Endpoint(
        "PUT",
        H + "/booking",
        update_booking,
        "Change a scheduled hearing's time, length, station or staff (logged)",
        b.ScheduleRequest,
        b.BookingOut,
    ),
    Endpoint(
        "POST",
        H + "/cancel",
        cancel,
        "Cancel a scheduled hearing with a reason (logged; the hearing is closed)",
        b.CancelRequest,
        b.BookingOut,
    ),
    Endpoint(
        "GET",
        H + "/links",
        link_states,
        "Each invited participant with the state of their latest invitation link",
        response=b.LinkStateOut,
        many=True,
    ),
    Endpoint(
        "GET",
        "/api/dashboard",
        dashboard,
        "Today's and later hearings (and those closed in the last week) with readiness: "
        "who is connected, waiting or in, and whether the station is online",
        response=b.DashboardOut,
    ),
    Endpoint(
        "GET",
        H + "/summary",
        summary,
        "A hearing's summary: timeline, departures with causes, recordings with root hash "
        "and confirmations, station backups",
        response=b.SummaryOut,
    ),
)
