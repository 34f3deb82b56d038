"""Every endpoint x every role x own court / other court, from one table.

Each row names an endpoint and the status every kind of caller must get when the target
belongs to their own court and when it belongs to another court. A test that walks the app's
route table fails if an endpoint is added without a row here.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from server.storage.db import upgrade_async
from server.web.routes import ENDPOINTS
from tests.conftest import FakeClock
from tests.server.conftest import Api, CourtWorld, World, make_config, recording_keys

ROLES = ["anon", "admin", "judge", "clerk", "mediator", "station_director", "station", "party"]
PRESIDING = {"judge", "clerk", "mediator"}
READERS = PRESIDING | {"admin"}
_counter = itertools.count()


def expect(own: dict[str, int] | int, other: dict[str, int] | int | None = None):
    """Expected statuses: `own` and `other` map role -> status (or one status for all)."""

    def table(spec: dict[str, int] | int) -> dict[str, int]:
        if isinstance(spec, int):
            return dict.fromkeys(ROLES, spec)
        full = dict(spec)
        assert set(full) == set(ROLES), sorted(set(ROLES) ^ set(full))
        return full

    return table(own), table(other if other is not None else own)


def roles(default: int, **by_role: int) -> dict[str, int]:
    out = dict.fromkeys(ROLES, default)
    out["anon"] = 401
    for group, status in by_role.items():
        members = {"presiding": PRESIDING, "readers": READERS}.get(group, {group})
        for role in members:
            out[role] = status
    return out


NOT_OURS = roles(404)  # every authenticated caller: 404 on another court's things
STATION_KEY_PEM = (
    Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    .decode("ascii")
)


@pytest.fixture
async def app_client(
    tmp_path: Path, aiohttp_client: AiohttpClient, clock: FakeClock
) -> TestClient[Any, Any]:
    """The app with evidence recording configured, so that every endpoint can succeed."""
    config = make_config(tmp_path, recording=await recording_keys(tmp_path / "keys"))
    await upgrade_async(config.database_url)
    return await aiohttp_client(create_app(config, clock=clock))


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # with {placeholders} filled from a CourtWorld
    body: Callable[[CourtWorld], Any] | None
    own: dict[str, int]
    other: dict[str, int]


def _case_body(_: CourtWorld) -> dict[str, str]:
    return {"number": f"n-{next(_counter)}", "title": "t"}


def _hearing_body(_: CourtWorld) -> dict[str, str]:
    return {
        "title": "h",
        "scheduled_start": "2026-12-01T09:00:00+08:00",
        "scheduled_end": "2026-12-01T11:00:00+08:00",
    }


def _participant_body(_: CourtWorld) -> dict[str, str]:
    return {"display_name": "witness", "role": "witness"}


def _booking_body(w: CourtWorld) -> dict[str, Any]:
    return {
        "title": "h",
        "scheduled_start": "2026-12-01T09:00:00+08:00",
        "duration_minutes": 60,
        "station_id": w.station_id,
        "presiding_user_id": w.user_ids["judge"],
        "clerk_user_id": w.user_ids["clerk"],
    }


H = "/api/hearings/{hearing_id}"
ROWS = [
    Row("GET", "/api/health", None, *expect(200)),
    Row("GET", "/api/openapi.json", None, *expect(200)),
    # Login endpoints answer every caller alike; with a wrong secret: 401 (anyone may try).
    Row(
        "POST",
        "/api/auth/login",
        lambda w: {"username": "nobody", "password": "wrong pass"},
        *expect(401),
    ),
    Row(
        "POST",
        "/api/auth/station",
        lambda w: {"station_id": w.station_id, "key": "A" * 43},
        *expect(401),
    ),
    Row("POST", "/api/invitations/redeem", lambda w: {"token": "B" * 43}, *expect(404)),
    Row("GET", "/api/auth/me", None, *expect(roles(200))),
    Row("GET", "/api/courts/{court_id}", None, roles(200, party=404), NOT_OURS),
    Row("GET", "/api/stations", None, *expect(roles(200, party=403))),
    Row("GET", "/api/cases", None, *expect(roles(403, readers=200))),
    Row("POST", "/api/cases", _case_body, *expect(roles(403, presiding=201))),
    Row("GET", "/api/cases/{case_id}", None, roles(403, readers=200, party=404), NOT_OURS),
    Row(
        "POST",
        "/api/cases/{case_id}/hearings",
        _hearing_body,
        roles(403, presiding=201, party=404),
        NOT_OURS,
    ),
    Row("GET", "/api/hearings", None, *expect(roles(200))),
    Row("GET", H, None, roles(200), NOT_OURS),
    # scheduled -> scheduled is no transition: presiding staff reach the state check (409).
    Row(
        "POST",
        H + "/state",
        lambda w: {"state": "scheduled", "reason": "r"},
        roles(403, presiding=409),
        NOT_OURS,
    ),
    Row("GET", H + "/participants", None, roles(200, party=403), NOT_OURS),
    Row("POST", H + "/participants", _participant_body, roles(403, presiding=201), NOT_OURS),
    # Both rows act on the defendant, so the plaintiff's link stays valid for the party caller.
    Row(
        "POST",
        H + "/participants/{defendant_id}/invitations",
        lambda w: {},
        roles(403, presiding=201),
        NOT_OURS,
    ),
    Row("GET", H + "/invitations", None, roles(403, presiding=200), NOT_OURS),
    Row(
        "POST",
        "/api/invitations/{defendant_invitation_id}/revoke",
        None,
        roles(403, presiding=200),
        NOT_OURS,
    ),
    Row("GET", H + "/events", None, roles(403, presiding=200), NOT_OURS),
    # No recording is sealed in the seeded hearing: participants reach "not found"; staff who
    # are not participants of the hearing are refused first.
    Row(
        "POST",
        H + "/recordings/{case_id}/confirm",
        lambda w: {"root_hash": "a" * 64, "confirmed": True},
        roles(403, judge=404, clerk=404, station=404, party=404),
        NOT_OURS,
    ),
    # Only the hearing's own station registers its backup recording.
    Row(
        "POST",
        H + "/station-backups",
        lambda w: {"recording_id": str(uuid.uuid4()), "verify_key": STATION_KEY_PEM},
        roles(403, station=201),
        NOT_OURS,
    ),
    # ... and only it sends one; none is registered in the seeded world, so it reaches "not
    # found" where everyone else of the court is refused.
    Row(
        "PUT",
        H + "/station-backups/{case_id}/files/keys.json",
        lambda w: {},
        roles(403, station=404),
        NOT_OURS,
    ),
    Row(
        "GET",
        H + "/station-backups/{case_id}/files",
        None,
        roles(403, station=404),
        NOT_OURS,
    ),
    Row(
        "POST",
        H + "/station-backups/{case_id}/receipt",
        None,
        roles(403, station=404),
        NOT_OURS,
    ),
    # Recordings are reviewed by presiding staff only; no recording exists in the seeded world.
    Row("GET", H + "/recordings", None, roles(403, presiding=200), NOT_OURS),
    Row("POST", H + "/recordings/{case_id}/playback", None, roles(403, presiding=404), NOT_OURS),
    Row("GET", H + "/recordings/{case_id}/playback", None, roles(403, presiding=404), NOT_OURS),
    Row(
        "GET",
        H + "/recordings/{case_id}/playback/streams/1",
        None,
        roles(403, presiding=404),
        NOT_OURS,
    ),
    # -- staff console: booking, links, dashboard, summary (issue 12) --
    Row("GET", "/api/causes", None, *expect(roles(200))),
    Row("GET", "/api/staff", None, *expect(roles(403, readers=200))),
    Row(
        "GET",
        "/api/cases/{case_id}/hearings",
        None,
        roles(403, readers=200, party=404),
        NOT_OURS,
    ),
    Row(
        "POST",
        "/api/cases/{case_id}/bookings",
        _booking_body,
        roles(403, presiding=201, party=404),
        NOT_OURS,
    ),
    Row("GET", H + "/booking", None, roles(403, presiding=200), NOT_OURS),
    Row("PUT", H + "/booking", _booking_body, roles(403, presiding=200), NOT_OURS),
    # Cancels the court's other hearing (not at the station, so the director, the station and
    # the party do not see it): the judge, first in ROLES, cancels it; the clerk may not; the
    # mediator, after the judge, finds it closed already.
    Row(
        "POST",
        "/api/hearings/{other_hearing_id}/cancel",
        lambda w: {"reason": "withdrawn"},
        roles(403, judge=200, mediator=409, station_director=404, station=404, party=404),
        NOT_OURS,
    ),
    Row("GET", H + "/links", None, roles(403, presiding=200), NOT_OURS),
    Row("GET", "/api/dashboard", None, *expect(roles(403, readers=200, station_director=200))),
    Row("GET", H + "/summary", None, roles(403, presiding=200), NOT_OURS),
    # -- the station's day (issue 14) --
    # The station sees its own hearings, a director those at the stations they direct.
    Row(
        "GET", "/api/station/hearings", None, *expect(roles(403, station=200, station_director=200))
    ),
    Row(
        "POST",
        "/api/station/status",
        lambda w: {"pending_backups": 1},
        *expect(roles(403, station=200)),
    ),
    # The station's status: itself, its director and the court's readers (the readiness column).
    Row(
        "GET",
        "/api/stations/{station_id}/status",
        None,
        roles(403, readers=200, station=200, station_director=200, party=404),
        NOT_OURS,
    ),
    # In person, at the station: its director (and the station itself); presiding staff check
    # over signaling. The seeded name and digits match the defendant's record; the director
    # (who comes first in ROLES) checks, so the station then finds it done (409, not 403).
    Row(
        "POST",
        "/api/station/hearings/{hearing_id}/participants/{defendant_id}/identity-check",
        lambda w: {"name": "DEFENDANT", "id_digits": "1234"},
        roles(403, station=409, station_director=200),
        NOT_OURS,
    ),
    Row("GET", "/api/station/ping", None, *expect(roles(403, station=200))),
    # Enrolment without pasting secrets: administrators issue codes and disable stations
    # (enabling here, so the station's own rows keep working); enrolling and the signed login
    # are public and refuse a wrong code or signature alike.
    Row(
        "POST",
        "/api/stations/{station_id}/enrolment-codes",
        None,
        roles(403, admin=201),
        NOT_OURS,
    ),
    Row(
        "POST",
        "/api/stations/{station_id}/disable",
        lambda w: {"disabled": False},
        roles(403, admin=200),
        NOT_OURS,
    ),
    Row(
        "POST",
        "/api/station/enrol",
        lambda w: {
            "station_id": w.station_id,
            "code": "AAAA-BBBB-CCCC",
            "public_key": STATION_KEY_PEM,
        },
        *expect(401),
    ),
    Row(
        "POST",
        "/api/auth/station/signed",
        lambda w: {
            "station_id": w.station_id,
            "at": "2026-12-01T09:00:00+08:00",
            "signature": "AAAA",
        },
        *expect(401),
    ),
    Row("POST", "/api/station/upload-test", None, *expect(roles(403, station=200))),
    # -- the hearing record (issue 15) --
    # Presiding staff write and ask for signatures (the judge first in ROLES, then the others
    # again); whoever reads the hearing reads the record; the plaintiff (the party caller)
    # signs only for itself, and is refused the stale text (409); finalising the other hearing,
    # never asked to sign, is 409 for presiding staff.
    Row(
        "PUT",
        H + "/record/transcript",
        lambda w: {"entries": [{"role": "judge", "name": "j", "text": "开庭"}]},
        roles(403, presiding=200, station_director=403),
        NOT_OURS,
    ),
    Row("GET", H + "/record", None, roles(200, party=200), NOT_OURS),
    Row("GET", H + "/record/transcript", None, roles(200), NOT_OURS),
    Row("GET", H + "/record/transcript/versions", None, roles(403, readers=200), NOT_OURS),
    Row(
        "POST", H + "/record/transcript/signing-request", None, roles(403, presiding=200), NOT_OURS
    ),
    Row(
        "POST",
        H + "/record/transcript/code",
        lambda w: {"participant_id": w.plaintiff_id},
        roles(403, party=200),
        NOT_OURS,
    ),
    Row(
        "POST",
        H + "/record/transcript/signatures",
        lambda w: {
            "participant_id": w.plaintiff_id,
            "name": "p",
            "code": "123456",
            "text_sha256": "0" * 64,
            "where": "phone",
            "image_png_b64": "iVBORw0KGgo=",
        },
        roles(403, party=409),
        NOT_OURS,
    ),
    Row(
        "POST",
        H + "/record/transcript/refusals",
        lambda w: {
            "participant_id": w.plaintiff_id,
            "code": "123456",
            "text_sha256": "0" * 64,
            "reason": "r",
        },
        roles(403, party=409),
        NOT_OURS,
    ),
    Row(
        "POST",
        "/api/hearings/{other_hearing_id}/record/transcript/finalise",
        None,
        roles(403, presiding=409, station_director=404, station=404, party=404),
        NOT_OURS,
    ),
    # Only a failed mediation is sent on: this one did not fail (409 for judge and mediator).
    Row(
        "POST",
        H + "/record/send-on",
        _booking_body,
        roles(403, judge=409, mediator=409),
        NOT_OURS,
    ),
    Row(
        "GET",
        H + "/record/transcript/sealed",
        None,
        roles(403, presiding=409, party=409),
        NOT_OURS,
    ),
    Row(
        "GET",
        H + "/record/transcript/sealed.pdf",
        None,
        roles(403, presiding=409, party=409),
        NOT_OURS,
    ),
    # -- the court's quality-and-efficiency view (issue 15.4): court readers of their own court --
    Row("GET", "/api/courts/{court_id}/statistics", None, roles(403, readers=200), NOT_OURS),
    Row("GET", "/api/courts/{court_id}/statistics.csv", None, roles(403, readers=200), NOT_OURS),
    # -- metrics (issue 16.7) --
    # Served to administrators or to any request from loopback, which this test client is: so
    # every caller gets 200 here; off loopback (anon 401, others 403, admin 200) is
    # tests/fault/test_metrics.py.
    Row("GET", "/metrics", None, *expect(200)),
    Row("POST", "/api/auth/logout", None, *expect(roles(204))),
]


def test_every_endpoint_has_a_row() -> None:
    routes = {(e.method, e.path) for e in ENDPOINTS}
    rows = {
        (
            r.method,
            r.path.replace("{defendant_id}", "{participant_id}")
            .replace("{defendant_invitation_id}", "{invitation_id}")
            .replace("{other_hearing_id}", "{hearing_id}")
            .replace("recordings/{case_id}", "recordings/{recording_id}")
            .replace("station-backups/{case_id}", "station-backups/{recording_id}")
            .replace("files/keys.json", "files/{file_name}")
            .replace("streams/1", "streams/{stream_id}")
            .replace("record/transcript", "record/{kind}"),
        )
        for r in ROWS
    }
    assert routes == rows


async def _caller(api: Api, role: str, court: CourtWorld, clock: FakeClock) -> None:
    clock.advance(61)  # stay under the per-address login rate limit
    api.client.session.cookie_jar.clear()
    api.csrf = None
    if role == "anon":
        return
    if role == "station":
        status, _ = await api.station_login(court.station_id, court.station_key)
    elif role == "party":
        status, _ = await api.redeem(court.plaintiff_token)
    else:
        status, _ = await api.login(court.users[role])
    assert status == 200, role


async def test_authorization_matrix(api: Api, world: World, clock: FakeClock) -> None:
    mismatches = []
    for role in ROLES:
        await _caller(api, role, world.own, clock)
        for row in ROWS:
            for relation, target, expected in (
                ("own", world.own, row.own),
                ("other", world.other, row.other),
            ):
                path = row.path.format(**vars(target))
                body = row.body(target) if row.body else None
                status, _ = await api.call(row.method, path, body)
                if status != expected[role]:
                    mismatches.append(
                        f"{role:17} {relation:5} {row.method} {row.path}: "
                        f"got {status}, want {expected[role]}"
                    )
                if row.path == "/api/auth/logout":
                    await _caller(api, role, world.own, clock)
    assert not mismatches, "\n" + "\n".join(mismatches)


async def test_lists_never_leak_another_court(api: Api, world: World, clock: FakeClock) -> None:
    other_ids = {
        world.other.station_id,
        world.other.case_id,
        world.other.hearing_id,
        world.other.other_hearing_id,
    }
    for role in ROLES[1:]:
        await _caller(api, role, world.own, clock)
        for path in ("/api/stations", "/api/cases", "/api/hearings"):
            status, body = await api.call("GET", path)
            if status == 200:
                assert not other_ids & {item["id"] for item in body}, (role, path)


async def test_director_and_station_see_only_their_station(
    api: Api, world: World, clock: FakeClock
) -> None:
    for role in ("station_director", "station"):
        await _caller(api, role, world.own, clock)
        status, hearings = await api.call("GET", "/api/hearings")
        assert [h["id"] for h in hearings] == [world.own.hearing_id], role
        status, _ = await api.call("GET", f"/api/hearings/{world.own.other_hearing_id}")
        assert status == 404, role
