"""The REST API end to end, and what it does with bad input: clear 4xx codes, nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate
from sqlalchemy import func, select

from server.storage.models import Case, Hearing, HearingEvent, Participant
from server.web.appkeys import SESSIONS
from tests.server.conftest import Api, World, app_of


async def test_health_and_openapi(api: Api) -> None:
    status, body = await api.call("GET", "/api/health")
    assert (status, body["status"]) == (200, "ok")
    status, doc = await api.call("GET", "/api/openapi.json")
    assert status == 200
    validate(doc)
    assert "/api/hearings/{hearing_id}/participants" in doc["paths"]
    create = doc["paths"]["/api/cases"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "CreateCaseRequest"
    )
    # A client written from this document knows the CSRF header and when to send it.
    schemes = doc["components"]["securitySchemes"]
    assert schemes["csrf"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": schemes["csrf"]["description"],
    }
    assert create["security"] == [{"session": [], "csrf": []}]
    assert doc["paths"]["/api/cases"]["get"]["security"] == [{"session": []}]
    assert doc["paths"]["/api/auth/login"]["post"]["security"] == []
    assert "X-CSRF-Token" in doc["info"]["description"]
    assert "Origin" in doc["info"]["description"]


async def test_schedule_invite_and_join_flow(api: Api, world: World) -> None:
    await api.login(world.own.users["clerk"])
    status, case = await api.call(
        "POST",
        "/api/cases",
        {"number": "(2026)民初7号", "title": "李某诉王某", "kind": "mediation"},
    )
    assert status == 201
    status, hearing = await api.call(
        "POST",
        f"/api/cases/{case['id']}/hearings",
        {
            "title": "调解",
            "scheduled_start": "2026-11-23T10:00:00+08:00",
            "scheduled_end": "2026-11-23T12:00:00+08:00",
            "station_id": world.own.station_id,
        },
    )
    assert status == 201
    assert hearing["state"] == "scheduled"
    assert hearing["scheduled_start"] == "2026-11-23T02:00:00Z"
    status, party = await api.call(
        "POST",
        f"/api/hearings/{hearing['id']}/participants",
        {"display_name": "李某", "role": "plaintiff", "id_number_tail": "123X"},
    )
    assert status == 201
    status, agent = await api.call(
        "POST",
        f"/api/hearings/{hearing['id']}/participants",
        {"display_name": "律师", "role": "agent", "represents_id": party["id"]},
    )
    assert (status, agent["represents_id"]) == (201, party["id"])
    status, issued = await api.call(
        "POST", f"/api/hearings/{hearing['id']}/participants/{party['id']}/invitations", {}
    )
    assert status == 201
    token = issued["url"].split("#", 1)[1]
    status, events = await api.call("GET", f"/api/hearings/{hearing['id']}/events")
    assert status == 200
    assert events["chain_intact"] is True
    assert [e["kind"] for e in events["events"]] == [
        "hearing.scheduled",
        "participant.added",
        "participant.added",
        "invitation.issued",
    ]
    assert token not in str(events)

    api.client.session.cookie_jar.clear()
    party_api = Api(api.client)
    status, session = await party_api.redeem(token)
    assert status == 200
    assert session["principal"]["participant_id"] == party["id"]


async def test_staff_and_station_participants_need_their_accounts(api: Api, world: World) -> None:
    await api.login(world.own.users["judge"])
    base = f"/api/hearings/{world.own.hearing_id}/participants"
    status, body = await api.call("POST", base, {"display_name": "J", "role": "judge"})
    assert (status, body["code"]) == (400, "BAD_FIELD")
    status, body = await api.call(
        "POST",
        base,
        {"display_name": "J", "role": "judge", "user_id": world.other.user_ids["judge"]},
    )
    assert status == 404  # another court's judge is not found here
    status, body = await api.call(
        "POST", base, {"display_name": "S", "role": "station", "station_id": world.own.station_id}
    )
    assert status == 201
    status, body = await api.call(
        "POST",
        f"/api/hearings/{world.own.hearing_id}/participants/{body['id']}/invitations",
        {},
    )
    assert (status, body["code"]) == (400, "BAD_FIELD")


BAD_BODIES: list[tuple[str, bytes, str | None, int, str]] = [
    ("malformed json", b'{"number": "1", ', None, 400, "BAD_JSON"),
    ("not an object", b'["number"]', None, 400, "BAD_JSON"),
    ("unknown field", b'{"number": "1", "title": "t", "judge": "me"}', None, 400, "UNKNOWN_FIELD"),
    ("wrong type", b'{"number": 1, "title": "t"}', None, 400, "BAD_FIELD"),
    ("missing field", b'{"number": "1"}', None, 400, "BAD_FIELD"),
    ("bad enum", b'{"number": "1", "title": "t", "kind": "duel"}', None, 400, "BAD_FIELD"),
    ("empty string", b'{"number": "  ", "title": "t"}', None, 400, "BAD_FIELD"),
    ("too long", b'{"number": "1", "title": "' + b"x" * 301 + b'"}', None, 400, "BAD_FIELD"),
    (
        "not json",
        b"number=1&title=t",
        "application/x-www-form-urlencoded",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    ("oversize", b'{"number": "1", "title": "' + b"x" * 70_000 + b'"}', None, 413, "TOO_LARGE"),
]


@pytest.mark.parametrize(
    ("name", "raw", "ctype", "status", "code"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
async def test_bad_bodies_get_clear_errors_and_write_nothing(
    api: Api,
    world: World,
    app_client: TestClient[Any, Any],
    name: str,
    raw: bytes,
    ctype: str | None,
    status: int,
    code: str,
) -> None:
    await api.login(world.own.users["judge"])
    headers = {"Content-Type": ctype} if ctype else None
    got, body = await api.call("POST", "/api/cases", raw=raw, headers=headers)
    assert (got, body["code"]) == (status, code), body
    assert body["type"] == "error"
    assert body["message"]
    async with app_of(app_client)[SESSIONS]() as db:
        assert await db.scalar(select(func.count()).select_from(Case)) == 2  # the seeded ones


async def test_bad_times_and_ids(api: Api, world: World, app_client: TestClient[Any, Any]) -> None:
    await api.login(world.own.users["judge"])
    url = f"/api/cases/{world.own.case_id}/hearings"
    status, body = await api.call(
        "POST",
        url,
        {
            "title": "h",
            "scheduled_start": "2026-11-23T10:00:00",
            "scheduled_end": "2026-11-23T12:00:00+08:00",
        },
    )
    assert (status, body["code"]) == (400, "BAD_FIELD")  # naive datetime
    assert "scheduled_start" in body["message"]
    status, body = await api.call(
        "POST",
        url,
        {
            "title": "h",
            "scheduled_start": "2026-11-23T12:00:00+08:00",
            "scheduled_end": "2026-11-23T10:00:00+08:00",
        },
    )
    assert (status, body["code"]) == (400, "BAD_FIELD")
    status, body = await api.call("GET", "/api/hearings/not-a-uuid")
    assert (status, body["code"]) == (404, "NOT_FOUND")
    status, body = await api.call("DELETE", "/api/cases")
    assert (status, body["code"]) == (405, "METHOD_NOT_ALLOWED")
    # A participant for an unknown station: refused, and neither row nor log entry is written.
    status, body = await api.call(
        "POST",
        f"/api/hearings/{world.own.hearing_id}/participants",
        {"display_name": "S", "role": "station", "station_id": world.other.station_id},
    )
    assert status == 404
    async with app_of(app_client)[SESSIONS]() as db:
        assert await db.scalar(select(func.count()).select_from(Hearing)) == 4
        assert await db.scalar(select(func.count()).select_from(Participant)) == 10  # 5 per court
        assert await db.scalar(select(func.count()).select_from(HearingEvent)) == 0


async def test_duplicate_case_number_conflicts(api: Api, world: World) -> None:
    await api.login(world.own.users["judge"])
    status, body = await api.call("POST", "/api/cases", {"number": "a-1", "title": "again"})
    assert (status, body["code"]) == (409, "CONFLICT")
    # The same number in another court is fine: numbers are per court.
    await api.login(world.other.users["judge"])
    status, body = await api.call("POST", "/api/cases", {"number": "a-1", "title": "fine"})
    assert status == 201


async def test_no_route_is_registered_twice(app_client: TestClient[Any, Any]) -> None:
    """aiohttp answers with the first of two routes for one method and path, silently: a page
    with its own handler (the room, which sends a station director elsewhere) would be
    shadowed by a plain one registered before it."""
    seen: set[tuple[str, str]] = set()
    for route in app_client.app.router.routes():
        info = route.resource.canonical if route.resource is not None else ""
        key = (route.method, info)
        assert key not in seen, key
        seen.add(key)
