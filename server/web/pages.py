"""HTML pages: plain files, no build step, no inline script (the CSP forbids it).

Each page is a static document whose module script talks to the REST API; what a visitor may
see is decided by the API, not by the page. The one thing a template may ask of the server is
a shared part: a line ``<!-- include: NAME -->`` is replaced by templates/partials/NAME.html
(the staff pages' header, written once), when the page is first served.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from server.auth.principals import StaffPrincipal
from server.enums import StaffRole
from server.ids import parse_id
from server.web.appkeys import PRINCIPAL

STATIC_DIR = Path(__file__).with_name("static")
TEMPLATES_DIR = Path(__file__).with_name("templates")

PAGES = {
    "/": "login.html",
    "/dashboard": "dashboard.html",
    "/join": "join.html",
    # "/hearings/{hearing_id}/room": room.html, through _room_page below
    # Staff console (issue 12): open a case, a case and its hearings, a hearing's booking
    # and links, a closed hearing's summary.
    "/cases/new": "case_new.html",
    "/cases/{case_id}": "case.html",
    "/hearings/{hearing_id}/booking": "hearing.html",
    "/hearings/{hearing_id}/summary": "summary.html",
    "/hearings/{hearing_id}/attend": "party.html",
    "/station": "director.html",
    "/hearings/{hearing_id}/recordings": "playback.html",
    "/hearings/{hearing_id}/recordings/{recording_id}": "playback.html",
    # The court's quality-and-efficiency view (issue 15.4).
    "/statistics": "statistics.html",
}


_INCLUDE = re.compile(r"<!-- include: ([a-z_]+) -->\n")


@cache
def page_html(name: str) -> str:
    """The template `name` with its shared parts included (read once; the files ship with the
    code). Raises FileNotFoundError for an unknown template or partial."""
    text = (TEMPLATES_DIR / name).read_text(encoding="utf-8")
    return _INCLUDE.sub(
        lambda m: (TEMPLATES_DIR / "partials" / f"{m.group(1)}.html").read_text(encoding="utf-8"),
        text,
    )


def _page(name: str) -> Handler:
    html = page_html(name)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.Response(text=html, content_type="text/html", charset="utf-8")
        response.headers["Cache-Control"] = "no-store"
        return response

    return handler


def _room_page() -> Handler:
    """The hearing room, except for a station director, who takes no part in the room and
    gets the page made for them: the station's day, with that hearing shown (issue 14)."""
    room = _page("room.html")

    async def handler(request: web.Request) -> web.StreamResponse:
        who = request.get(PRINCIPAL)
        if isinstance(who, StaffPrincipal) and who.role is StaffRole.STATION_DIRECTOR:
            hearing_id = parse_id(request.match_info["hearing_id"]) or ""
            raise web.HTTPSeeOther(f"/station?hearing={hearing_id}")
        return await room(request)

    return handler


def add_pages(app: web.Application) -> None:
    for route, name in PAGES.items():
        app.router.add_get(route, _page(name))
    app.router.add_get("/hearings/{hearing_id}/room", _room_page())
    app.router.add_static("/static", STATIC_DIR, append_version=True)
