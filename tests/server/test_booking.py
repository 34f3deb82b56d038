"""The staff console's REST (issue 12): causes and staff to choose from, opening a case with a
cause, scheduling, changing and cancelling hearings, link states with QR codes, the dashboard
and a closed hearing's summary. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import segno
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from server.enums import EventKind, HearingState, ParticipantState
from server.hearings.causes import CAUSES
from server.ids import HearingId, ParticipantId
from server.storage.eventlog import EventLogRepository
from server.web.appkeys import ROOMS, SESSIONS
from server.web.qr import qr_code, qr_svg
from tests.conftest import FakeClock
from tests.server.conftest import Api, World, app_of, make_config


@pytest.fixture
async def app_client(
    tmp_path: Path, aiohttp_client: AiohttpClient, clock: FakeClock, database_url: str
) -> TestClient[Any, Any]:
    """The app on each kind of database (the `database_url` fixture is already migrated)."""
    config = make_config(tmp_path, database={"url": database_url})
    return await aiohttp_client(create_app(config, clock=clock))


START = "2026-12-01T09:00:00+08:00"


async def _case(api: Api, number: str = "(2026)示民初7号") -> dict[str, Any]:
    status, case = await api.call(
        "POST",
        "/api/cases",
        {"number": number, "title": "甲诉乙", "cause": "private_lending", "mode": "hearing"},
    )
    assert status == 201, case
    return case  # type: ignore[no-any-return]


async def _schedule(api: Api, world: World, case_id: str, **extra: Any) -> tuple[int, Any]:
    body = {
        "title": "开庭",
        "scheduled_start": START,
        "duration_minutes": 90,
        "station_id": world.own.station_id,
        "presiding_user_id": world.own.user_ids["judge"],
        "clerk_user_id": world.own.user_ids["clerk"],
        **extra,
    }
    return await api.call("POST", f"/api/cases/{case_id}/bookings", body)


async def test_causes_and_staff_to_choose_from(api: Api, world: World) -> None:
    await api.login(world.own.users["clerk"])
    status, causes = await api.call("GET", "/api/causes")
    assert status == 200
    assert [c["zh"] for c in causes][:3] == ["民间借贷", "婚姻家庭", "物业服务"]
    assert [c["code"] for c in causes] == [c.code.value for c in CAUSES]
    status, staff = await api.call("GET", "/api/staff")
    assert status == 200
    assert {s["role"] for s in staff} == {"judge", "clerk", "mediator"}
    assert world.other.user_ids["judge"] not in {s["id"] for s in staff}


async def test_a_case_records_its_cause_and_mode_and_names_the_bad_field(
    api: Api, world: World
) -> None:
    await api.login(world.own.users["clerk"])
    case = await _case(api)
    assert (case["cause"], case["mode"]) == ("private_lending", "hearing")
    status, err = await api.call(
        "POST", "/api/cases", {"number": "2026 #7!", "title": "t", "cause": "private_lending"}
    )
    assert (status, err["code"], err["details"]["field"]) == (400, "BAD_FIELD", "number")
    status, err = await api.call(
        "POST", "/api/cases", {"number": "x-1", "title": "t", "cause": "no_such_cause"}
    )
    assert (status, err["details"]["field"]) == (400, "cause")
    status, err = await api.call(
        "POST", "/api/cases", {"number": "(2026)示民初7号", "title": "t", "cause": "other"}
    )
    assert (status, err["code"], err["details"]["field"]) == (409, "CONFLICT", "number")


async def test_schedule_edit_and_cancel_a_hearing(api: Api, world: World) -> None:
    await api.login(world.own.users["clerk"])
    case = await _case(api)
    # A clerk cannot preside; the error names the field.
    status, err = await _schedule(
        api, world, case["id"], presiding_user_id=world.own.user_ids["clerk"]
    )
    assert (status, err["details"]["field"]) == (400, "presiding_user_id")
    status, err = await _schedule(api, world, case["id"], station_id=world.other.station_id)
    assert (status, err["details"]["field"]) == (400, "station_id")
    status, hearing = await _schedule(api, world, case["id"])
    assert status == 201, hearing
    assert hearing["scheduled_end"].startswith("2026-12-01T02:30:00")
    hid = hearing["id"]
    status, people = await api.call("GET", f"/api/hearings/{hid}/participants")
    seats = {(p["role"], p["user_id"] or p["station_id"]) for p in people}
    assert seats == {
        ("judge", world.own.user_ids["judge"]),
        ("clerk", world.own.user_ids["clerk"]),
        ("station", world.own.station_id),
    }
    status, listed = await api.call("GET", f"/api/cases/{case['id']}/hearings")
    assert [h["id"] for h in listed] == [hid]

    # Change: a mediator takes the presiding seat, no station, two hours.
    body = {
        "title": "调解",
        "scheduled_start": START,
        "duration_minutes": 120,
        "station_id": None,
        "presiding_user_id": world.own.user_ids["mediator"],
        "clerk_user_id": world.own.user_ids["clerk"],
    }
    status, changed = await api.call("PUT", f"/api/hearings/{hid}/booking", body)
    assert status == 200, changed
    assert (changed["presiding_user_id"], changed["station_id"]) == (
        world.own.user_ids["mediator"],
        None,
    )
    status, people = await api.call("GET", f"/api/hearings/{hid}/participants")
    assert ("mediator", world.own.user_ids["mediator"]) in {
        (p["role"], p["user_id"]) for p in people
    }
    assert "judge" not in {p["role"] for p in people}

    # The clerk may not cancel (states: only the judge or mediator); the judge may.
    status, err = await api.call("POST", f"/api/hearings/{hid}/cancel", {"reason": "原告撤诉"})
    assert (status, err["code"]) == (403, "FORBIDDEN")
    await api.login(world.own.users["judge"])
    status, err = await api.call("POST", f"/api/hearings/{hid}/cancel", {"reason": " "})
    assert status == 400
    status, cancelled = await api.call(
        "POST", f"/api/hearings/{hid}/cancel", {"reason": "原告撤诉"}
    )
    assert status == 200, cancelled
    assert (cancelled["state"], cancelled["cancel_reason"]) == ("closed", "原告撤诉")
    status, timeline = await api.call("GET", f"/api/hearings/{hid}/events")
    kinds = [(e["kind"], e["data"].get("action")) for e in timeline["events"]]
    assert ("hearing.updated", None) in kinds
    assert kinds[-1] == ("hearing.state", "cancel")
    assert timeline["events"][-1]["data"]["reason"] == "原告撤诉"
    assert timeline["chain_intact"]
    # Nothing more to change or cancel.
    status, err = await api.call("PUT", f"/api/hearings/{hid}/booking", body)
    assert (status, err["code"]) == (409, "WRONG_STATE")
    status, err = await api.call("POST", f"/api/hearings/{hid}/cancel", {"reason": "again"})
    assert (status, err["code"]) == (409, "WRONG_STATE")


async def test_link_states_and_the_qr_code_of_the_link(
    api: Api, world: World, clock: FakeClock
) -> None:
    await api.login(world.own.users["clerk"])
    hid = world.own.hearing_id
    status, witness = await api.call(
        "POST",
        f"/api/hearings/{hid}/participants",
        {
            "display_name": "证人 王五",
            "role": "witness",
            "legal_name": "王五",
            "id_number_tail": "123x",
            "phone": "138 0000 0000",
            "represents_id": world.own.plaintiff_id,
        },
    )
    assert status == 201, witness
    status, links = await api.call("GET", f"/api/hearings/{hid}/links")
    by_id = {x["participant"]["id"]: x for x in links}
    assert by_id[witness["id"]]["state"] == "never_issued"
    assert by_id[witness["id"]]["participant"]["phone"] == "138 0000 0000"
    assert by_id[witness["id"]]["participant"]["id_number_tail"] == "123X"
    assert by_id[world.own.plaintiff_id]["state"] == "valid"
    assert {x["participant"]["role"] for x in links} <= {"plaintiff", "defendant", "witness"}

    status, issued = await api.call(
        "POST", f"/api/hearings/{hid}/participants/{witness['id']}/invitations", {}
    )
    assert status == 201
    url = issued["url"]
    # The QR code is the link's: the same symbol segno makes for it, drawn as an SVG.
    assert issued["qr_svg"] == qr_svg(url)
    assert issued["qr_svg"].startswith("<svg")
    # ... a symbol of the link itself (the browser test scans it off the screen with zbar).
    assert segno.make(url, error="m").designator == qr_code(url).designator
    status, again = await api.call(
        "POST", f"/api/hearings/{hid}/participants/{witness['id']}/invitations", {}
    )
    assert again["url"] != url
    assert again["qr_svg"] != issued["qr_svg"]
    status, links = await api.call("GET", f"/api/hearings/{hid}/links")
    mine = next(x for x in links if x["participant"]["id"] == witness["id"])
    assert (mine["state"], mine["superseded"]) == ("valid", 1)
    assert mine["invitation"]["id"] == again["invitation"]["id"]

    # Used once the party opens it; revoked when withdrawn; expired after its time.
    party = Api(api.client)
    api.client.session.cookie_jar.clear()
    status, _ = await party.redeem(again["url"].split("#", 1)[1])
    assert status == 200
    api.client.session.cookie_jar.clear()
    assert (await api.login(world.own.users["clerk"]))[0] == 200
    status, links = await api.call("GET", f"/api/hearings/{hid}/links")
    assert next(x for x in links if x["participant"]["id"] == witness["id"])["state"] == "used"
    status, _ = await api.call("POST", f"/api/invitations/{again['invitation']['id']}/revoke")
    assert status == 200
    status, links = await api.call("GET", f"/api/hearings/{hid}/links")
    states = {x["participant"]["id"]: x["state"] for x in links}
    assert states[witness["id"]] == "revoked"
    clock.advance(3 * 24 * 3600)
    assert (await api.login(world.own.users["clerk"]))[0] == 200
    status, links = await api.call("GET", f"/api/hearings/{hid}/links")
    assert {x["participant"]["id"]: x["state"] for x in links}[world.own.plaintiff_id] == "expired"


async def test_dashboard_shows_readiness_and_is_scoped(api: Api, world: World) -> None:
    await api.login(world.own.users["judge"])
    status, board = await api.call("GET", "/api/dashboard")
    assert status == 200, board
    rows = {h["id"]: h for h in board["hearings"]}
    assert set(rows) == {world.own.hearing_id, world.own.other_hearing_id}
    row = rows[world.own.hearing_id]
    assert row["court_name"] == "Court A"
    assert row["case_number"] == "a-1"
    assert row["station_name"] == "a station"
    assert row["station_online"] is False
    assert {p["role"] for p in row["people"]} >= {"judge", "plaintiff", "station"}
    assert all(p["connected"] is False for p in row["people"])
    # A director sees their station's hearing only; a party sees no dashboard.
    await api.login(world.own.users["station_director"])
    status, board = await api.call("GET", "/api/dashboard")
    assert [h["id"] for h in board["hearings"]] == [world.own.hearing_id]
    party = Api(api.client)
    api.client.session.cookie_jar.clear()
    await party.redeem(world.own.plaintiff_token)
    status, _ = await party.call("GET", "/api/dashboard")
    assert status == 403


async def test_summary_of_a_closed_hearing(
    api: Api, world: World, app_client: TestClient[Any, Any], clock: FakeClock
) -> None:
    hid = world.own.hearing_id
    async with app_of(app_client)[SESSIONS].begin() as db:
        log = EventLogRepository(db)
        for kind, data in (
            (EventKind.PARTICIPANT_DEPARTED, {"participant_id": world.own.defendant_id,
                                              "cause": "NETWORK_LOST", "excused": False,
                                              "detail": "", "was": "in_hearing"}),
            (EventKind.RECORDING_SEALED, {"recording_id": "r1", "root_hash": "ab" * 32,
                                          "status": "complete"}),
            (EventKind.RECORDING_CONFIRMED, {"participant_id": world.own.plaintiff_id,
                                             "recording_id": "r1", "root_hash": "ab" * 32,
                                             "matches": True, "confirmed": True}),
            (EventKind.RECORDING_DISPUTED, {"participant_id": world.own.defendant_id,
                                            "recording_id": "r1", "root_hash": "cd" * 32,
                                            "matches": False, "confirmed": True}),
            (EventKind.STATION_BACKUP_STARTED, {"recording_id": "b1", "key_id": "k",
                                                "verify_key": "", "station_id":
                                                world.own.station_id}),
            (EventKind.STATION_BACKUP_RECEIVED, {"recording_id": "b1", "root_hash": "ef" * 32,
                                                 "status": "complete", "bytes": 10}),
        ):  # fmt: skip
            await log.append(hid, at=clock.now(), actor="server", kind=kind, data=data)
    await api.login(world.own.users["judge"])
    for state in (HearingState.OPENED, HearingState.CLOSED):
        status, _ = await api.call(
            "POST", f"/api/hearings/{hid}/state", {"state": state, "reason": "r"}
        )
        assert status == 200
    status, summary = await api.call("GET", f"/api/hearings/{hid}/summary")
    assert status == 200, summary
    assert summary["hearing"]["state"] == "closed"
    assert summary["case"]["number"] == "a-1"
    assert [(d["participant_id"], d["cause"]) for d in summary["departures"]] == [
        (world.own.defendant_id, "NETWORK_LOST")
    ]
    (recording,) = summary["recordings"]
    assert recording["root_hash"] == "ab" * 32
    assert [
        (c["participant_id"], c["confirmed"], c["matches"]) for c in recording["confirmations"]
    ] == [
        (world.own.plaintiff_id, True, True),
        (world.own.defendant_id, False, False),
    ]
    (backup,) = summary["station_backups"]
    assert (backup["received"], backup["root_hash"]) == (True, "ef" * 32)
    assert summary["events"][-1]["data"]["to"] == "closed"
    # Parties do not read summaries.
    party = Api(api.client)
    api.client.session.cookie_jar.clear()
    await party.redeem(world.own.plaintiff_token)
    status, _ = await party.call("GET", f"/api/hearings/{hid}/summary")
    assert status == 403


async def test_dashboard_readiness_comes_from_the_live_room(
    api: Api, world: World, app_client: TestClient[Any, Any]
) -> None:
    """Who is connected and where comes from the hearing's live room, not the stored rows."""
    hid = world.own.hearing_id
    live = await app_of(app_client)[ROOMS].open(HearingId(hid))
    plaintiff = live.attendees[ParticipantId(world.own.plaintiff_id)]
    plaintiff.state, plaintiff.connected = ParticipantState.WAITING, True
    station = next(a for a in live.attendees.values() if a.role == "station")
    station.state, station.connected = ParticipantState.IN_HEARING, True
    await api.login(world.own.users["clerk"])
    status, board = await api.call("GET", "/api/dashboard")
    assert status == 200
    row = next(h for h in board["hearings"] if h["id"] == hid)
    people = {p["participant_id"]: p for p in row["people"]}
    assert (
        people[world.own.plaintiff_id]["state"],
        people[world.own.plaintiff_id]["connected"],
    ) == (
        "waiting",
        True,
    )
    assert people[world.own.defendant_id]["connected"] is False
    assert row["station_online"] is True
    station.connected = False
    status, board = await api.call("GET", "/api/dashboard")
    assert next(h for h in board["hearings"] if h["id"] == hid)["station_online"] is False


async def test_a_case_s_next_hearing_has_its_people_but_not_their_links(
    api: Api, world: World
) -> None:
    await api.login(world.own.users["clerk"])
    status, hearing = await _schedule(api, world, world.own.case_id)
    assert status == 201, hearing
    status, links = await api.call("GET", f"/api/hearings/{hearing['id']}/links")
    people = {x["participant"]["role"]: x for x in links}
    assert set(people) == {"plaintiff", "defendant"}
    assert people["plaintiff"]["participant"]["legal_name"] == "PLAINTIFF"
    assert people["plaintiff"]["participant"]["id_number_tail"] == "1234"
    assert {x["state"] for x in links} == {"never_issued"}
    assert world.own.plaintiff_id not in {x["participant"]["id"] for x in links}
