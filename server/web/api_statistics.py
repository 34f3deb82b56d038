"""REST for the court's quality-and-efficiency view (issue 15.4): the figures as JSON and the
same figures as CSV. Handlers translate HTTP only; the figures and who may read them are
server/hearings/statistics.py's.

Query string (both endpoints): `from`, `to` (court days YYYY-MM-DD, both included; default the
last 30 days), `station_id`, `cause` (a cause-of-action code of /api/causes)."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web
from pydantic import ValidationError

from server.errors import CourtError, ErrorCode
from server.hearings.statistics import Filters, Statistics, StatisticsService, to_csv
from server.web import schemas_statistics as s
from server.web.appkeys import CLOCK, SESSIONS
from server.web.endpoint import Endpoint
from server.web.http import path_id, principal, reply

QUERY = (
    " Query: from, to (court days YYYY-MM-DD, both included; default the last 30 days), "
    "station_id, cause (a code of /api/causes)."
)


def _service(request: web.Request) -> StatisticsService:
    return StatisticsService(request.app[SESSIONS], request.app[CLOCK])


def _filters(request: web.Request, service: StatisticsService) -> Filters:
    try:
        query = s.StatisticsQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "query"
        raise CourtError(ErrorCode.BAD_FIELD, f"{name}: {first['msg']}", field=name) from None
    filters = service.default_filters()
    if query.start is not None:
        filters = replace(filters, start=query.start)
    if query.end is not None:
        filters = replace(filters, end=query.end)
    return replace(
        filters,
        station_id=query.station_id or None,
        cause=query.cause.value if query.cause is not None else None,
    )


async def _compute(request: web.Request) -> Statistics:
    who = principal(request)
    court_id = path_id(request, "court_id", "court")
    service = _service(request)
    return await service.compute(who, court_id, _filters(request, service))


async def statistics_json(request: web.Request) -> web.StreamResponse:
    return reply(s.StatisticsOut.model_validate(await _compute(request)))


async def statistics_csv(request: web.Request) -> web.StreamResponse:
    figures = await _compute(request)
    name = f"statistics-{figures.start.isoformat()}-{figures.end.isoformat()}.csv"
    return web.Response(
        # A BOM, so that spreadsheet programs read the Chinese names as UTF-8.
        body=("\ufeff" + to_csv(figures)).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


C = "/api/courts/{court_id}/statistics"
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        C,
        statistics_json,
        "The court's quality-and-efficiency figures: hearings and mediations per court, "
        "station, judge and cause; mediation success rate; days to resolution; recordings "
        "complete and verified; no-shows and departures; connection quality per station "
        "(court readers of their own court)." + QUERY,
        response=s.StatisticsOut,
    ),
    Endpoint(
        "GET",
        C + ".csv",
        statistics_csv,
        "The same figures as CSV (section, id, name, metric, value), UTF-8 with a BOM." + QUERY,
        media_type="text/csv",
    ),
)
