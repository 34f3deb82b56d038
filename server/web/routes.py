"""The whole REST API: every feature's endpoint table joined, the router and OpenAPI built
from it.

A feature keeps its endpoints in its own module (`ENDPOINTS = (...)`) and is listed here once;
the per-role authorization test walks the joined table, so an endpoint without a row there
fails the suite.
"""

from __future__ import annotations

from aiohttp import web

from server.web import (
    api,
    api_booking,
    api_metrics,
    api_record,
    api_station,
    api_statistics,
)
from server.web.endpoint import Endpoint
from server.web.openapi import build_openapi


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(build_openapi(ENDPOINTS))


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/openapi.json", openapi, "This document", public=True),
    *api.ENDPOINTS,
    *api_booking.ENDPOINTS,
    *api_station.ENDPOINTS,
    *api_record.ENDPOINTS,
    *api_statistics.ENDPOINTS,
    *api_metrics.ENDPOINTS,
)


def add_routes(app: web.Application) -> None:
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)
