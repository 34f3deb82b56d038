"""The REST API's core endpoints: auth, hearings, participants, invitations, recordings.

`server.web.routes` joins this table with the other features' tables; routes and the OpenAPI
document are built from the joined table.

Handlers only translate HTTP to service calls: parse and validate, call the service with the
principal, shape the answer. Authorization is the services' job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from aiohttp import web
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from recordings import VerifyKey
from server import __version__
from server.auth.principals import PartyPrincipal
from server.errors import CourtError, ErrorCode, not_found
from server.hearings.service import event_json
from server.ids import HearingId, ParticipantId, RecordingId
from server.recording.playback import Playback, RecordingSource, playback_json
from server.storage.eventlog import verify_chain
from server.web import schemas as s
from server.web.appkeys import (
    AUTH,
    CONFIG,
    CONNECTIONS,
    COURT,
    INVITATIONS,
    MEDIA,
    PLAYBACK,
    ROOMS,
    STATION_BACKUPS,
)
from server.web.endpoint import Endpoint
from server.web.http import (
    clear_session_cookies,
    client_address,
    hearing_path_id,
    parse_body,
    path_id,
    principal,
    principal_out,
    reply,
    session_reply,
)
from server.web.qr import qr_svg

# -- public -------------------------------------------------------------------------------


async def health(request: web.Request) -> web.StreamResponse:
    return reply(s.Health(status="ok", version=__version__))


async def login(request: web.Request) -> web.StreamResponse:
    body = await parse_body(request, s.LoginRequest)
    issued = await request.app[AUTH].login(body.username, body.password, client_address(request))
    return session_reply(request, issued)


async def station_login(request: web.Request) -> web.StreamResponse:
    body = await parse_body(request, s.StationLoginRequest)
    issued = await request.app[AUTH].station_login(
        body.station_id, body.key, client_address(request)
    )
    return session_reply(request, issued)


async def _end_sessions(
    request: web.Request,
    session_ids: Sequence[str],
    message: str,
    hearing_id: HearingId,
    participant_id: str,
) -> None:
    """Revoked sessions end now: their open sockets are closed (SESSION_REVOKED) and a place
    the participant kept in the live hearing is forgotten (the next device waits)."""
    await request.app[CONNECTIONS].end_sessions(session_ids, message)
    live = request.app[ROOMS].get(hearing_id)
    if live is not None:
        await live.access_revoked(ParticipantId(participant_id))


async def redeem_invitation(request: web.Request) -> web.StreamResponse:
    body = await parse_body(request, s.RedeemRequest)
    issued = await request.app[AUTH].redeem_invitation(body.token, client_address(request))
    if issued.ended_sessions:
        assert isinstance(issued.principal, PartyPrincipal)
        await _end_sessions(
            request,
            issued.ended_sessions,
            "the invitation link was opened on another device",
            issued.principal.hearing_id,
            issued.principal.participant_id,
        )
    return session_reply(request, issued)


# -- session ------------------------------------------------------------------------------


async def me(request: web.Request) -> web.StreamResponse:
    return reply(s.SessionOut(principal=principal_out(principal(request))))


async def logout(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    await request.app[AUTH].logout(who)
    await request.app[CONNECTIONS].end_sessions([who.session_id], "logged out")
    response = web.Response(status=204)
    clear_session_cookies(response)
    return response


# -- court, stations, cases ---------------------------------------------------------------


async def get_court(request: web.Request) -> web.StreamResponse:
    court_id = path_id(request, "court_id", "court")
    court = await request.app[COURT].get_court(principal(request), court_id)
    return reply(s.CourtOut.model_validate(court))


async def list_stations(request: web.Request) -> web.StreamResponse:
    stations = await request.app[COURT].list_stations(principal(request))
    return reply([s.StationOut.model_validate(x) for x in stations])


async def list_cases(request: web.Request) -> web.StreamResponse:
    cases = await request.app[COURT].list_cases(principal(request))
    return reply([s.CaseOut.model_validate(x) for x in cases])


async def create_case(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    body = await parse_body(request, s.CreateCaseRequest)
    case = await request.app[COURT].create_case(
        who,
        number=body.number,
        title=body.title,
        kind=body.kind,
        cause=body.cause,
        mode=body.mode,
    )
    return reply(s.CaseOut.model_validate(case), status=201)


async def get_case(request: web.Request) -> web.StreamResponse:
    case_id = path_id(request, "case_id", "case")
    case = await request.app[COURT].get_case(principal(request), case_id)
    return reply(s.CaseOut.model_validate(case))


# -- hearings -----------------------------------------------------------------------------


async def list_hearings(request: web.Request) -> web.StreamResponse:
    hearings = await request.app[COURT].list_hearings(principal(request))
    return reply([s.HearingOut.model_validate(x) for x in hearings])


async def create_hearing(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    case_id = path_id(request, "case_id", "case")
    body = await parse_body(request, s.CreateHearingRequest)
    hearing = await request.app[COURT].create_hearing(
        who,
        case_id=case_id,
        title=body.title,
        scheduled_start=body.scheduled_start,
        scheduled_end=body.scheduled_end,
        station_id=body.station_id,
    )
    return reply(s.HearingOut.model_validate(hearing), status=201)


async def get_hearing(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    hearing = await request.app[COURT].get_hearing(principal(request), hearing_id)
    return reply(s.HearingOut.model_validate(hearing))


async def set_hearing_state(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    hearing_id = hearing_path_id(request)
    body = await parse_body(request, s.SetHearingStateRequest)
    hearing = await request.app[ROOMS].set_hearing_state(who, hearing_id, body.state, body.reason)
    return reply(s.HearingOut.model_validate(hearing))


async def confirm_recording(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    hearing_id = hearing_path_id(request)
    recording_id = path_id(request, "recording_id", "recording")
    body = await parse_body(request, s.ConfirmRecordingRequest)
    matches = await request.app[COURT].confirm_recording(
        who, hearing_id, recording_id, body.root_hash, body.confirmed
    )
    return reply(s.ConfirmationOut(matches=matches))


def _verify_key(pem: str) -> VerifyKey:
    """An Ed25519 public key from its PEM (SubjectPublicKeyInfo). Raises BAD_FIELD."""
    try:
        key = load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm):  # not ASCII, not PEM, not a key we know
        raise CourtError(
            ErrorCode.BAD_FIELD,
            "verify_key: not a PEM public key (SubjectPublicKeyInfo)",
            field="verify_key",
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise CourtError(
            ErrorCode.BAD_FIELD, "verify_key: not an Ed25519 public key", field="verify_key"
        )
    return VerifyKey(key)


async def register_station_backup(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    hearing_id = hearing_path_id(request)
    body = await parse_body(request, s.StationBackupRequest)
    verify_key = _verify_key(body.verify_key)
    settings = request.app[MEDIA].recording  # its keys were read at start-up
    backup = await request.app[STATION_BACKUPS].register(
        who,
        hearing_id,
        RecordingId(body.recording_id),
        verify_key,
        settings.recipient_pems if settings is not None else (),
    )
    out = s.StationBackupOut(
        recording_id=backup.recording_id, key_id=backup.key_id, recipients=list(backup.recipients)
    )
    return reply(out, status=201 if backup.created else 200)


def _backup_of(request: web.Request) -> tuple[HearingId, RecordingId]:
    hearing_id = hearing_path_id(request)
    return hearing_id, RecordingId(path_id(request, "recording_id", "backup recording"))


async def put_station_backup_file(request: web.Request) -> web.StreamResponse:
    """One file of the station's sealed backup package, streamed to disk (sent again: replaced,
    until the court has received the package)."""
    hearing_id, recording_id = _backup_of(request)
    await request.app[STATION_BACKUPS].store_file(
        principal(request),
        hearing_id,
        recording_id,
        request.match_info["file_name"],
        request.content.iter_chunked(1 << 16),
    )
    return web.Response(status=204)


async def list_station_backup_files(request: web.Request) -> web.StreamResponse:
    """What has arrived of an upload in progress (to resume it)."""
    hearing_id, recording_id = _backup_of(request)
    files = await request.app[STATION_BACKUPS].stored_files(
        principal(request), hearing_id, recording_id
    )
    return reply(s.StationBackupFilesOut(recording_id=recording_id, files=files))


async def receive_station_backup(request: web.Request) -> web.StreamResponse:
    """Verify the uploaded package against the key the station registered; keep it if intact."""
    hearing_id, recording_id = _backup_of(request)
    receipt = await request.app[STATION_BACKUPS].receive(
        principal(request), hearing_id, recording_id
    )
    report = receipt.report
    out = s.StationBackupReceiptOut(
        recording_id=recording_id,
        received=receipt.received,
        exit_code=report.exit_code,
        root_hash=report.root_hash,
        gaps=len(report.gaps),
        problems=[f"{p.location}: {p.message}" for p in report.problems]
        + ([report.io_error] if report.io_error else []),
    )
    return reply(out, status=201 if receipt.received else 422)


# -- recordings: playback for presiding staff ---------------------------------------------


async def list_recordings(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    await request.app[COURT].authorize_recording_review(principal(request), hearing_id)
    found = await request.app[PLAYBACK].list_recordings(hearing_id)
    return reply(
        [
            s.RecordingOut(
                id=r.recording_id,
                created_at=r.created_at,
                state=r.state,
                playable=r.playable,
                source=r.source,
            )
            for r in found
        ]
    )


async def _playback_reply(
    request: web.Request, hearing_id: HearingId, playback: Playback, status: int = 200
) -> web.StreamResponse:
    people = await request.app[COURT].list_participants(principal(request), hearing_id)
    names = {p.id: {"display_name": p.display_name, "role": p.role.value} for p in people}
    base = f"/api/hearings/{hearing_id}/recordings/{playback.recording_id}/playback/streams/"
    body = playback_json(playback, names, lambda sid: f"{base}{sid}")
    return reply(s.PlaybackOut.model_validate(body), status=status)


async def prepare_playback(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    hearing_id = hearing_path_id(request)
    recording_id = path_id(request, "recording_id", "recording")
    await request.app[COURT].authorize_recording_review(who, hearing_id)
    found = await request.app[PLAYBACK].find(hearing_id, recording_id)
    trusted = None  # the court's own recordings: the server's signing key
    if found.source is RecordingSource.STATION_BACKUP:
        # A station's backup: the key that station registered, never one inside the package.
        trusted = [await request.app[STATION_BACKUPS].reviewed_key(who, hearing_id, recording_id)]
    playback = await request.app[PLAYBACK].prepare(hearing_id, recording_id, trusted)
    await request.app[COURT].log_recording_review(who, hearing_id, recording_id)
    return await _playback_reply(request, hearing_id, playback, status=202)


async def get_playback(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    recording_id = path_id(request, "recording_id", "recording")
    await request.app[COURT].authorize_recording_review(principal(request), hearing_id)
    playback = request.app[PLAYBACK].get(hearing_id, recording_id)
    return await _playback_reply(request, hearing_id, playback)


async def playback_stream(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    recording_id = path_id(request, "recording_id", "recording")
    await request.app[COURT].authorize_recording_review(principal(request), hearing_id)
    playback = request.app[PLAYBACK].get(hearing_id, recording_id)
    raw = request.match_info["stream_id"]
    file = playback.stream_file(int(raw)) if raw.isdigit() and len(raw) < 10 else None
    if file is None:
        raise not_found("stream")
    # Range requests (seeking) are served by FileResponse; evidence is never cached.
    response = web.FileResponse(file, headers={"Cache-Control": "no-store"})
    response.content_type = "video/webm"
    return response


async def list_participants(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    rows = await request.app[COURT].list_participants(principal(request), hearing_id)
    return reply([s.ParticipantOut.model_validate(x) for x in rows])


async def add_participant(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    hearing_id = hearing_path_id(request)
    body = await parse_body(request, s.AddParticipantRequest)
    participant = await request.app[COURT].add_participant(
        who,
        hearing_id,
        display_name=body.display_name,
        role=body.role,
        legal_name=body.legal_name,
        id_number_tail=body.id_number_tail,
        user_id=body.user_id,
        station_id=body.station_id,
        represents_id=body.represents_id,
        phone=body.phone,
    )
    return reply(s.ParticipantOut.model_validate(participant), status=201)


def invitation_url(request: web.Request, token: str) -> str:
    # The token rides in the fragment: browsers never send it to servers or in Referer.
    return f"{request.app[CONFIG].server.base_url}/join#{token}"


async def create_invitation(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    hearing_id = hearing_path_id(request)
    participant_id = path_id(request, "participant_id", "participant")
    body = await parse_body(request, s.CreateInvitationRequest)
    config = request.app[CONFIG]
    hours = body.valid_for_hours
    valid_for = (
        timedelta(hours=hours)
        if hours is not None
        else timedelta(seconds=config.security.invitation_validity_s)
    )
    issued = await request.app[INVITATIONS].create_invitation(
        who, hearing_id, participant_id, valid_for=valid_for, not_before=body.not_before
    )
    await _end_sessions(
        request,
        issued.ended_sessions,
        "a new invitation link was issued; the old one no longer works",
        hearing_id,
        participant_id,
    )
    out = s.IssuedInvitationOut(
        invitation=s.InvitationOut.model_validate(issued.invitation),
        url=(url := invitation_url(request, issued.token)),
        qr_svg=qr_svg(url),
    )
    return reply(out, status=201)


async def list_invitations(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    rows = await request.app[INVITATIONS].list_invitations(principal(request), hearing_id)
    return reply([s.InvitationOut.model_validate(x) for x in rows])


async def revoke_invitation(request: web.Request) -> web.StreamResponse:
    invitation_id = path_id(request, "invitation_id", "invitation")
    revoked = await request.app[INVITATIONS].revoke_invitation(principal(request), invitation_id)
    await _end_sessions(
        request,
        revoked.ended_sessions,
        "the invitation link was withdrawn by the court",
        HearingId(revoked.invitation.hearing_id),
        revoked.invitation.participant_id,
    )
    return reply(s.InvitationOut.model_validate(revoked.invitation))


async def timeline(request: web.Request) -> web.StreamResponse:
    hearing_id = hearing_path_id(request)
    events = await request.app[COURT].timeline(principal(request), hearing_id)
    out = s.TimelineOut(
        hearing_id=hearing_id,
        chain_intact=verify_chain(events) is None,
        events=[s.EventOut.model_validate(event_json(e)) for e in events],
    )
    return reply(out)


H = "/api/hearings/{hearing_id}"

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/health", health, "Readiness", response=s.Health, public=True),
    Endpoint(
        "POST", "/api/auth/login", login, "Staff login", s.LoginRequest, s.SessionOut, public=True
    ),
    Endpoint(
        "POST",
        "/api/auth/station",
        station_login,
        "Station login with its key",
        s.StationLoginRequest,
        s.SessionOut,
        public=True,
    ),
    Endpoint(
        "POST",
        "/api/invitations/redeem",
        redeem_invitation,
        "Exchange an invitation token for a session",
        s.RedeemRequest,
        s.SessionOut,
        public=True,
    ),
    Endpoint("GET", "/api/auth/me", me, "Who am I", response=s.SessionOut),
    Endpoint("POST", "/api/auth/logout", logout, "End this session", status=204),
    Endpoint("GET", "/api/courts/{court_id}", get_court, "A court", response=s.CourtOut),
    Endpoint("GET", "/api/stations", list_stations, "Stations", response=s.StationOut, many=True),
    Endpoint("GET", "/api/cases", list_cases, "Cases", response=s.CaseOut, many=True),
    Endpoint(
        "POST", "/api/cases", create_case, "Open a case", s.CreateCaseRequest, s.CaseOut, status=201
    ),
    Endpoint("GET", "/api/cases/{case_id}", get_case, "A case", response=s.CaseOut),
    Endpoint(
        "POST",
        "/api/cases/{case_id}/hearings",
        create_hearing,
        "Schedule a hearing",
        s.CreateHearingRequest,
        s.HearingOut,
        status=201,
    ),
    Endpoint("GET", "/api/hearings", list_hearings, "Hearings", response=s.HearingOut, many=True),
    Endpoint("GET", H, get_hearing, "A hearing", response=s.HearingOut),
    Endpoint(
        "POST",
        H + "/state",
        set_hearing_state,
        "Open, start, recess, resume, suspend or close the hearing",
        s.SetHearingStateRequest,
        s.HearingOut,
    ),
    Endpoint(
        "GET",
        H + "/participants",
        list_participants,
        "Participants",
        response=s.ParticipantOut,
        many=True,
    ),
    Endpoint(
        "POST",
        H + "/participants",
        add_participant,
        "Add a participant",
        s.AddParticipantRequest,
        s.ParticipantOut,
        status=201,
    ),
    Endpoint(
        "POST",
        H + "/participants/{participant_id}/invitations",
        create_invitation,
        "Issue an invitation link",
        s.CreateInvitationRequest,
        s.IssuedInvitationOut,
        status=201,
    ),
    Endpoint(
        "GET",
        H + "/invitations",
        list_invitations,
        "Invitations",
        response=s.InvitationOut,
        many=True,
    ),
    Endpoint(
        "POST",
        "/api/invitations/{invitation_id}/revoke",
        revoke_invitation,
        "Revoke an invitation",
        response=s.InvitationOut,
    ),
    Endpoint("GET", H + "/events", timeline, "Hearing timeline", response=s.TimelineOut),
    Endpoint(
        "POST",
        H + "/recordings/{recording_id}/confirm",
        confirm_recording,
        "Confirm (or dispute) a sealed recording's root hash",
        s.ConfirmRecordingRequest,
        s.ConfirmationOut,
    ),
    Endpoint(
        "POST",
        H + "/station-backups",
        register_station_backup,
        "The hearing's station registers its local backup recording (201; 200 if it already "
        "did, with the same key) and learns the keys to seal it for",
        s.StationBackupRequest,
        s.StationBackupOut,
        status=201,
    ),
    Endpoint(
        "PUT",
        H + "/station-backups/{recording_id}/files/{file_name}",
        put_station_backup_file,
        "The hearing's station sends one file of its sealed backup package (raw bytes: "
        "recording.json, keys.json, manifest.json or NNNNNN.cevr for segments/NNNNNN.cevr)",
        status=204,
    ),
    Endpoint(
        "GET",
        H + "/station-backups/{recording_id}/files",
        list_station_backup_files,
        "What has arrived of the station's upload, with each file's SHA-256 (to resume it; "
        "409 once the package was received)",
        response=s.StationBackupFilesOut,
    ),
    Endpoint(
        "POST",
        H + "/station-backups/{recording_id}/receipt",
        receive_station_backup,
        "The court verifies the sent package against the registered key and keeps it if "
        "intact (201; 422 with the problems if not)",
        response=s.StationBackupReceiptOut,
        status=201,
    ),
    Endpoint(
        "GET",
        H + "/recordings",
        list_recordings,
        "The hearing's evidence recordings",
        response=s.RecordingOut,
        many=True,
    ),
    Endpoint(
        "POST",
        H + "/recordings/{recording_id}/playback",
        prepare_playback,
        "Verify a sealed recording and prepare it for playback (progress via GET)",
        response=s.PlaybackOut,
        status=202,
    ),
    Endpoint(
        "GET",
        H + "/recordings/{recording_id}/playback",
        get_playback,
        "Playback preparation: progress, verification, signed timeline, streams",
        response=s.PlaybackOut,
    ),
    Endpoint(
        "GET",
        H + "/recordings/{recording_id}/playback/streams/{stream_id}",
        playback_stream,
        "One participant's decrypted stream (video/webm, range requests)",
        media_type="video/webm",
    ),
)


__all__ = ["ENDPOINTS", "Endpoint", "PartyPrincipal"]
