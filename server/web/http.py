"""Small helpers shared by the HTTP handlers: parsing bodies and ids, answering JSON, cookies."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.auth.principals import Principal, StaffPrincipal, StationPrincipal
from server.auth.service import IssuedSession
from server.errors import CourtError, ErrorCode, not_found
from server.ids import HearingId, parse_id
from server.web import schemas as s
from server.web.appkeys import CONFIG, PRINCIPAL

SESSION_COOKIE = "sc_session"
CSRF_COOKIE = "sc_csrf"
CSRF_HEADER = "X-CSRF-Token"

M = TypeVar("M", bound=BaseModel)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Validate a JSON body against `model`.

    Raises CourtError UNSUPPORTED_MEDIA_TYPE (not JSON), TOO_LARGE, BAD_JSON, UNKNOWN_FIELD or
    BAD_FIELD (naming the field), so that a client always learns what was wrong.
    """
    if request.content_type != "application/json":
        raise CourtError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send the body as application/json")
    raw = await request.read()  # aiohttp enforces client_max_size and raises 413 itself
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise _validation_error(exc) from None


def _validation_error(exc: ValidationError) -> CourtError:
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"]) or "body"
    if first["type"] == "json_invalid":
        return CourtError(ErrorCode.BAD_JSON, "the body is not valid JSON")
    if first["type"] == "model_type":
        return CourtError(ErrorCode.BAD_JSON, "the body must be a JSON object")
    unknown = [".".join(str(p) for p in e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        return CourtError(
            ErrorCode.UNKNOWN_FIELD, f"unknown field(s): {', '.join(unknown)}", fields=unknown
        )
    return CourtError(ErrorCode.BAD_FIELD, f"{field}: {first['msg']}", field=field)


def path_id(request: web.Request, name: str, what: str) -> str:
    """A path parameter that must be a UUID; anything else is simply not found."""
    value = parse_id(request.match_info[name])
    if value is None:
        raise not_found(what)
    return value


def hearing_path_id(request: web.Request) -> HearingId:
    """The `{hearing_id}` path parameter: a hearing id, or not found."""
    return HearingId(path_id(request, "hearing_id", "hearing"))


def principal(request: web.Request) -> Principal:
    """The authenticated principal. Raises CourtError UNAUTHORIZED if there is none."""
    found: Principal | None = request.get(PRINCIPAL)
    if found is None:
        raise CourtError(ErrorCode.UNAUTHORIZED, "log in first")
    return found


def client_address(request: web.Request) -> str:
    """The address a request comes from, for per-address limits and the log: the peer's, or,
    when the peer is a trusted proxy (`server.trusted_proxies`: the reverse proxy, the other
    nodes of a cluster), the nearest address in X-Forwarded-For that is not one."""
    remote = request.remote or "unknown"
    trusted = request.app[CONFIG].server.trusted_proxies
    if not trusted or not _is_trusted(remote, trusted):
        return remote
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else remote


def _is_trusted(
    address: str, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def reply(data: BaseModel | Sequence[BaseModel], status: int = 200) -> web.Response:
    body: Any
    if isinstance(data, BaseModel):
        body = data.model_dump(mode="json")
    else:
        body = [item.model_dump(mode="json") for item in data]
    return web.json_response(body, status=status, dumps=dumps)


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def set_session_cookies(
    request: web.Request, response: web.StreamResponse, issued: IssuedSession
) -> None:
    config = request.app[CONFIG]
    secure = config.server.secure_cookies or request.secure
    max_age = config.security.session_absolute_timeout_s
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        httponly=True,
        samesite="Strict",
        secure=secure,
        path="/",
        max_age=max_age,
    )
    # Readable by the page's script, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(
        CSRF_COOKIE,
        issued.csrf_token,
        httponly=False,
        samesite="Strict",
        secure=secure,
        path="/",
        max_age=max_age,
    )


def clear_session_cookies(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")


def principal_out(p: Principal) -> s.StaffOut | s.StationPrincipalOut | s.PartyOut:
    """Who a session belongs to, as the API shows it."""
    if isinstance(p, StaffPrincipal):
        return s.StaffOut(
            user_id=p.user_id, court_id=p.court_id, role=p.role, display_name=p.display_name
        )
    if isinstance(p, StationPrincipal):
        return s.StationPrincipalOut(station_id=p.station_id, court_id=p.court_id)
    return s.PartyOut(participant_id=p.participant_id, hearing_id=p.hearing_id, court_id=p.court_id)


def session_reply(request: web.Request, issued: IssuedSession) -> web.StreamResponse:
    """The answer to a request that opened a session: who, the CSRF token, and the cookies."""
    response = reply(
        s.SessionOut(principal=principal_out(issued.principal), csrf_token=issued.csrf_token)
    )
    set_session_cookies(request, response, issued)
    return response
