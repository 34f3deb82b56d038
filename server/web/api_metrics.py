"""GET /metrics: Prometheus metrics (server/metrics.py; docs/reliability.md, "Metrics").

Served to a court administrator's session, or to any request from a loopback address (a
Prometheus or node agent on the same machine, which holds no session); anyone else is refused:
no session 401, another session 403. The figures name no person, but they tell how many
hearings run and how busy the node is, which is not for the public.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from server.auth.principals import StaffPrincipal
from server.enums import StaffRole
from server.errors import CourtError, ErrorCode
from server.metrics import CONTENT_TYPE, collect, render
from server.web.appkeys import CONNECTIONS, MEDIA, PRINCIPAL
from server.web.endpoint import Endpoint
from server.web.floods import ADDRESS_LIMITS


def _from_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def metrics(request: web.Request) -> web.StreamResponse:
    principal = request.get(PRINCIPAL)
    is_admin = isinstance(principal, StaffPrincipal) and principal.role is StaffRole.ADMIN
    if not is_admin and not _from_loopback(request):
        if principal is None:
            raise CourtError(ErrorCode.UNAUTHORIZED, "log in as an administrator")
        raise CourtError(ErrorCode.FORBIDDEN, "metrics are for administrators")
    app = request.app
    connections = app.get(CONNECTIONS)
    media = app.get(MEDIA)
    joined = [
        (str(c.hearing_id), str(c.participant_id))
        for c in (connections.all() if connections is not None else [])
    ]
    limits = app.get(ADDRESS_LIMITS)
    sockets = limits.total() if limits is not None else 0
    snapshot = await collect(media.pool if media is not None else None, joined, sockets)
    return web.Response(body=render(snapshot), headers={"Content-Type": CONTENT_TYPE})


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics of this node (administrators, or requests from loopback)",
        public=True,
        media_type="text/plain",
    ),
)
