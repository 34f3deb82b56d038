"""The court's quality-and-efficiency view (issue 15.4) over REST: figures computed on a seeded
December with known answers (tests/server/statistics_seed.py), the filters, the CSV equal to
the JSON, and who may read them. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from server.web.appkeys import SESSIONS
from tests.conftest import FakeClock
from tests.server.conftest import Api, World, app_of, make_config
from tests.server.statistics_seed import STATION_B, Seeded, seed_december

DECEMBER = "from=2026-12-01&to=2026-12-31"


@pytest.fixture
async def app_client(
    tmp_path: Path, aiohttp_client: AiohttpClient, clock: FakeClock, database_url: str
) -> TestClient[Any, Any]:
    config = make_config(tmp_path, database={"url": database_url})
    return await aiohttp_client(create_app(config, clock=clock))


@pytest.fixture
async def seeded(app_client: TestClient[Any, Any], world: World) -> Seeded:
    own = world.own
    return await seed_december(
        app_of(app_client)[SESSIONS], own.court_id, own.station_id, own.user_ids
    )


def url(world: World, query: str = DECEMBER, csv_: bool = False) -> str:
    return f"/api/courts/{world.own.court_id}/statistics{'.csv' if csv_ else ''}?{query}"


async def test_figures_on_a_seeded_month(api: Api, world: World, seeded: Seeded) -> None:
    await api.login(world.own.users["clerk"])
    status, s = await api.call("GET", url(world))
    assert status == 200, s
    assert (s["start"], s["end"], s["court_name"]) == ("2026-12-01", "2026-12-31", "Court A")
    assert (s["scheduled"], s["cancelled"], s["held"]) == (5, 1, 4)
    assert (s["hearings"], s["mediations"]) == (2, 2)
    assert s["by_court"] == [
        {"id": world.own.court_id, "name": "Court A", "hearings": 2, "mediations": 2}
    ]
    assert s["by_station"] == [
        {"id": seeded.station_a, "name": "a station", "hearings": 1, "mediations": 1},
        {"id": seeded.station_b, "name": STATION_B, "hearings": 1, "mediations": 0},
        {"id": None, "name": "", "hearings": 0, "mediations": 1},
    ]
    assert s["by_judge"] == [
        {"id": seeded.judge, "name": "a judge", "hearings": 2, "mediations": 0},
        {"id": seeded.mediator, "name": "a mediator", "hearings": 0, "mediations": 2},
    ]
    assert s["by_cause"] == [
        {"id": "marriage_family", "name": "marriage_family", "hearings": 0, "mediations": 1},
        {"id": "private_lending", "name": "private_lending", "hearings": 2, "mediations": 1},
    ]
    assert s["mediation"] == {"effective": 1, "failed": 1, "success_rate": 0.5}
    # C1: 2026-11-21 09:00 -> closed 12-02 03:00 = 10.75 days; C2: 11-30 00:00 -> agreement
    # 12-05 04:00 = 5.1667 days; C3 (failed mediation), C4 (cancelled), C5 (in session): open.
    assert s["resolution"] == {"cases": 5, "resolved": 2, "mean_days": 7.96, "median_days": 7.96}
    # Only H1: H2 recovered, H3 disputed, H5 not sealed.
    assert s["recordings"] == {"held": 4, "complete_and_verified": 1, "share": 0.25}
    assert s["attendance"] == {
        "no_shows": 2,
        "excused_departures": 2,
        "unexcused_departures": 1,
        "by_cause": {"CLIENT_LEFT": 1, "NETWORK_LOST": 1, "STATION_POWER": 1},
    }
    a, b = s["stations"]
    assert (a["station_id"], a["held"], a["line_drops"], a["drops_per_hearing"]) == (
        seeded.station_a,
        2,
        1,
        0.5,
    )
    assert (a["self_test_overall"], a["rtt_ms"], a["loss"], a["station_reports"]) == (
        "okay",
        80.0,
        0.01,
        0,
    )
    assert (b["name"], b["held"], b["line_drops"], b["drops_per_hearing"]) == (STATION_B, 1, 1, 1.0)
    assert (b["self_test_overall"], b["station_reports"]) == (None, 1)


async def test_filters_by_period_station_and_cause(api: Api, world: World, seeded: Seeded) -> None:
    await api.login(world.own.users["admin"])
    _, s = await api.call("GET", url(world, f"{DECEMBER}&station_id={seeded.station_b}"))
    assert (s["scheduled"], s["cancelled"], s["held"], s["hearings"]) == (2, 1, 1, 1)
    assert [q["station_id"] for q in s["stations"]] == [seeded.station_b]
    _, s = await api.call("GET", url(world, f"{DECEMBER}&cause=marriage_family"))
    assert (s["scheduled"], s["held"], s["mediations"], s["hearings"]) == (1, 1, 1, 0)
    assert s["mediation"]["success_rate"] == 1.0
    _, s = await api.call("GET", url(world, "from=2026-12-01&to=2026-12-05"))
    assert (s["scheduled"], s["held"]) == (2, 2)
    _, s = await api.call("GET", url(world, "from=2027-01-01&to=2027-01-31"))
    assert (s["scheduled"], s["held"], s["hearings"]) == (1, 1, 1)
    for bad in ("from=2026-12-31&to=2026-12-01", "from=yesterday", "cause=nonsense", "x=1"):
        status, err = await api.call("GET", url(world, bad))
        assert (status, err["code"]) == (400, "BAD_FIELD"), (bad, err)


def json_rows(s: dict[str, Any]) -> set[tuple[str, str, str, str, str]]:
    """What the CSV must hold, derived from the JSON independently of the server's writer."""

    def v(x: Any) -> str:
        return "" if x is None else str(x)

    rows = {
        ("period", "", "", "start", s["start"]),
        ("period", "", "", "end", s["end"]),
        ("filter", "", "", "station_id", v(s["station_id"])),
        ("filter", "", "", "cause", v(s["cause"])),
    }
    for m in ("scheduled", "cancelled", "held", "hearings", "mediations"):
        rows.add(("totals", s["court_id"], s["court_name"], m, v(s[m])))
    for section in ("by_court", "by_station", "by_judge", "by_cause"):
        for g in s[section]:
            for m in ("hearings", "mediations"):
                rows.add((section, v(g["id"]), g["name"], m, v(g[m])))
    for section in ("mediation", "resolution", "recordings"):
        for m, x in s[section].items():
            rows.add((section, "", "", m, v(x)))
    for m in ("no_shows", "excused_departures", "unexcused_departures"):
        rows.add(("attendance", "", "", m, v(s["attendance"][m])))
    for cause, n in s["attendance"]["by_cause"].items():
        rows.add(("departures_by_cause", cause, cause, "departures", v(n)))
    for q in s["stations"]:
        for m, x in q.items():
            if m not in ("station_id", "name"):
                if m == "self_test_at" and x is not None:
                    x = x.replace("Z", "+00:00")
                rows.add(("station_quality", q["station_id"], q["name"], m, v(x)))
    return rows


async def test_the_csv_equals_the_figures(api: Api, world: World, seeded: Seeded) -> None:
    await api.login(world.own.users["judge"])
    for query in (DECEMBER, f"{DECEMBER}&station_id={seeded.station_a}"):
        _, s = await api.call("GET", url(world, query))
        async with api.client.get(url(world, query, csv_=True)) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/csv"
            assert "attachment" in resp.headers["Content-Disposition"]
            raw = await resp.read()
        assert raw.startswith("\ufeff".encode())
        lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert lines[0] == ["section", "id", "name", "metric", "value"]
        got = [tuple(line) for line in lines[1:]]
        assert len(got) == len(set(got))
        assert set(got) == json_rows(s)
    assert ("by_station", seeded.station_b, STATION_B, "hearings", "1") in json_rows(
        (await api.call("GET", url(world)))[1]
    )


async def test_readers_of_their_own_court_only(api: Api, world: World, seeded: Seeded) -> None:
    await api.login(world.other.users["admin"])
    status, _ = await api.call("GET", url(world))
    assert status == 404
    await api.login(world.own.users["station_director"])
    status, err = await api.call("GET", url(world))
    assert (status, err["code"]) == (403, "FORBIDDEN")
