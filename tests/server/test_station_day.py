"""The station's day over REST (issue 14): what a station and its director see, the station's
status, and a disabled station told so only once it proved who it is."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from server.enums import EventKind
from server.storage.eventlog import EventLogRepository
from server.web.appkeys import SESSIONS
from tests.conftest import FakeClock
from tests.server.conftest import Api, World, app_of


async def test_the_station_sees_its_day_with_court_case_and_people(
    api: Api, world: World, clock: FakeClock
) -> None:
    w = world.own
    status, _ = await api.station_login(w.station_id, w.station_key)
    assert status == 200
    status, day = await api.call("GET", "/api/station/hearings")
    assert status == 200, day
    assert [h["id"] for h in day] == [w.hearing_id]  # not the court's other hearing
    (hearing,) = day
    assert (hearing["court_name"], hearing["case_number"]) == ("Court A", "a-1")
    people = {p["display_name"]: p for p in hearing["people"]}
    assert set(people) == {"judge", "clerk", "plaintiff", "defendant"}  # not the station
    assert people["plaintiff"]["identity_method"] is None
    assert people["judge"]["identity_method"] == "staff_login"
    # Its status: online once it reports, offline after a silence.
    status, state = await api.call("POST", "/api/station/status", {"pending_backups": 3})
    assert status == 200, state
    assert (state["online"], state["pending_backups"], state["self_test"]) == (True, 3, None)
    clock.advance(200)
    status, state = await api.call("GET", f"/api/stations/{w.station_id}/status")
    assert state["online"] is False


async def test_the_status_counts_backups_the_court_has_not_received(
    api: Api, world: World, app_client: TestClient[Any, Any], clock: FakeClock
) -> None:
    """Registered (and re-registered) backups of the station's hearings, less those received;
    a backup logged in a hearing held elsewhere is not this station's."""
    w = world.own
    started, received = EventKind.STATION_BACKUP_STARTED, EventKind.STATION_BACKUP_RECEIVED
    async with app_of(app_client)[SESSIONS].begin() as db:
        log = EventLogRepository(db)
        for hearing_id, kind, rid in (
            (w.hearing_id, started, "b1"),
            (w.hearing_id, started, "b2"),
            (w.hearing_id, started, "b2"),  # the station reconnected and registered it again
            (w.hearing_id, started, "b3"),
            (w.hearing_id, received, "b1"),
            (w.other_hearing_id, started, "elsewhere"),
        ):
            data = {"recording_id": rid, "station_id": w.station_id, "root_hash": "ab" * 32}
            await log.append(hearing_id, at=clock.now(), actor="server", kind=kind, data=data)
    await api.login(w.users["station_director"])
    status, state = await api.call("GET", f"/api/stations/{w.station_id}/status")
    assert status == 200, state
    assert state["backups_not_received"] == 2  # b2 and b3


async def test_a_self_test_is_scored_by_its_worst_check(
    api: Api, world: World, clock: FakeClock
) -> None:
    w = world.own
    await api.station_login(w.station_id, w.station_key)
    item = {"check": "camera", "score": "good", "measured": {"fps": 15.0}}
    test = {
        "at": "2026-12-04T08:00:00+08:00",
        "items": [item, {"check": "network", "score": "okay", "failure": "DELAY"}],
    }
    status, state = await api.call(
        "POST", "/api/station/status", {"pending_backups": 0, "self_test": test}
    )
    assert status == 200, state
    assert state["self_test"]["overall"] == "okay"
    bad = {**test, "items": [{"check": "camera", "score": "great"}]}
    status, body = await api.call("POST", "/api/station/status", {"self_test": bad})
    assert (status, body["code"]) == (400, "BAD_FIELD")
    clock.advance(61)
    await api.login(w.users["judge"])  # the judge's readiness column reads it
    status, state = await api.call("GET", f"/api/stations/{w.station_id}/status")
    assert status == 200
    assert [i["check"] for i in state["self_test"]["items"]] == ["camera", "network"]
    # ... and the dashboard's row of the hearing held at the station shows its score.
    status, board = await api.call("GET", "/api/dashboard")
    assert status == 200, board
    scores = {h["id"]: h["station_self_test"] for h in board["hearings"]}
    assert scores[w.hearing_id] == "okay"
    assert scores[w.other_hearing_id] is None  # held at no station


async def test_a_disabled_station_is_told_only_with_its_key(
    api: Api, world: World, clock: FakeClock
) -> None:
    w = world.own
    await api.login(w.users["admin"])
    status, body = await api.call(
        "POST", f"/api/stations/{w.station_id}/disable", {"disabled": True}
    )
    assert (status, body["disabled"]) == (200, True)
    clock.advance(61)
    status, body = await api.station_login(w.station_id, "A" * 43)
    assert (status, body["code"]) == (401, "BAD_CREDENTIALS")  # no hint without the key
    clock.advance(61)
    status, body = await api.station_login(w.station_id, w.station_key)
    assert (status, body["code"]) == (403, "FORBIDDEN")
    assert body["details"]["reason"] == "STATION_DISABLED"
