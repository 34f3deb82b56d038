"""One endpoint of the REST API: its route, its handler, and what the OpenAPI document says of
it. `routes.ENDPOINTS` joins the features' tables; the router and `openapi.build_openapi` both
read it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

from server.web.schemas import Request

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    request: type[Request] | None = None
    response: type[BaseModel] | None = None
    many: bool = False
    status: int = 200
    public: bool = False  # reachable without a session
    media_type: str | None = None  # a non-JSON response body
