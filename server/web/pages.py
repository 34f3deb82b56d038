"""HTML pages: plain files, no build step, no inline script (the CSP forbids it).

Each page is a static document whose module script talks to the REST API; what a visitor may
see is decided by the API, not by the page.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

STATIC_DIR = Path(__file__).with_name("static")
TEMPLATES_DIR = Path(__file__).with_name("templates")

PAGES = {
    "/": "login.html",
    "/dashboard": "dashboard.html",
    "/join": "join.html",
    "/hearings/{hearing_id}/room": "room.html",
    # Staff console (issue 12): open a case, a case and its hearings, a hearing's booking
    # and links, a closed hearing's summary.
    "/cases/new": "case_new.html",
    "/cases/{case_id}": "case.html",
    "/hearings/{hearing_id}/booking": "hearing.html",
    "/hearings/{hearing_id}/summary": "summary.html",
    "/hearings/{hearing_id}/attend": "party.html",
    "/hearings/{hearing_id}/recordings": "playback.html",
    "/hearings/{hearing_id}/recordings/{recording_id}": "playback.html",
}


def _page(name: str) -> Handler:
    path = TEMPLATES_DIR / name

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(path)
        response.headers["Cache-Control"] = "no-store"
        response.content_type = "text/html"
        return response

    return handler


def add_pages(app: web.Application) -> None:
    for route, name in PAGES.items():
        app.router.add_get(route, _page(name))
    app.router.add_static("/static", STATIC_DIR, append_version=True)
