"""Logins, lockout, sessions, CSRF, cookies, station keys and invitation links."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.auth import passwords, tokens
from server.storage.models import HearingEvent, Invitation, User, WebSession
from server.web.appkeys import SESSIONS
from tests.conftest import FakeClock
from tests.server.conftest import PASSWORD, Api, World, app_of


async def test_login_sets_hardened_cookies_and_me_answers(api: Api, world: World) -> None:
    async with api.client.post(
        "/api/auth/login", json={"username": world.own.users["judge"], "password": PASSWORD}
    ) as resp:
        assert resp.status == 200
        cookies = {c.key: c for c in resp.cookies.values()}
        body = await resp.json()
    session = cookies["sc_session"]
    assert session["httponly"] is True
    assert session["samesite"] == "Strict"
    assert session["path"] == "/"
    assert cookies["sc_csrf"]["httponly"] == ""  # the page's script must read it
    assert body["principal"]["role"] == "judge"
    assert body["csrf_token"] == cookies["sc_csrf"].value
    status, me = await api.call("GET", "/api/auth/me")
    assert status == 200
    assert me["principal"]["user_id"] == world.own.user_ids["judge"]


async def test_tokens_and_passwords_are_never_stored_in_clear(
    api: Api, world: World, app_client: TestClient[Any, Any]
) -> None:
    await api.login(world.own.users["clerk"])
    token = api.client.session.cookie_jar.filter_cookies(api.client.make_url("/"))["sc_session"]
    async with app_of(app_client)[SESSIONS]() as db:
        rows = (await db.scalars(select(WebSession))).all()
        users = (await db.scalars(select(User))).all()
        invitations = (await db.scalars(select(Invitation))).all()
    assert [r for r in rows if r.token_hash == tokens.digest(token.value)]
    assert all(token.value.encode() not in r.token_hash for r in rows)
    assert all(u.password_hash.startswith("$argon2id$") for u in users)
    assert all(PASSWORD not in u.password_hash for u in users)
    assert {i.token_hash for i in invitations} >= {tokens.digest(world.own.plaintiff_token)}


async def test_bad_login_is_generic_and_unknown_users_cost_the_same(api: Api, world: World) -> None:
    status, body = await api.login(world.own.users["judge"], "wrong password!")
    assert (status, body["code"]) == (401, "BAD_CREDENTIALS")
    status, body2 = await api.login("no-such-user", "wrong password!")
    assert (status, body2["code"]) == (401, "BAD_CREDENTIALS")
    assert body["message"] == body2["message"]


def test_password_hashing_and_rehash_policy() -> None:
    phc = passwords.hash_password("a long passphrase")
    assert passwords.verify_password("a long passphrase", phc)
    assert not passwords.verify_password("a long passphrasE", phc)
    assert not passwords.verify_password("anything", None)
    assert not passwords.needs_rehash(phc)
    assert passwords.needs_rehash(phc.replace("m=19456", "m=4096"))


async def test_lockout_after_repeated_failures_then_expires(
    api: Api, world: World, clock: FakeClock
) -> None:
    user = world.own.users["mediator"]
    for _ in range(5):
        status, _body = await api.login(user, "wrong password!")
        assert status == 401
    status, body = await api.login(user)  # right password, but locked now
    assert (status, body["code"]) == (429, "LOCKED_OUT")
    assert body["details"]["retry_after_s"] > 0
    clock.advance(15 * 60 + 1)
    status, _body = await api.login(user)
    assert status == 200


async def test_per_address_rate_limit_before_hashing(
    api: Api, world: World, clock: FakeClock
) -> None:
    codes = []
    for i in range(21):
        status, body = await api.login(f"ghost-{i}", "x" * 10)
        codes.append(body["code"])
    assert codes[:20] == ["BAD_CREDENTIALS"] * 20
    assert codes[20] == "RATE_LIMITED"
    clock.advance(61)
    status, _ = await api.login(world.own.users["judge"])
    assert status == 200


async def test_session_idle_and_absolute_expiry(api: Api, world: World, clock: FakeClock) -> None:
    await api.login(world.own.users["judge"])
    clock.advance(2 * 3600 + 1)  # idle timeout
    status, body = await api.call("GET", "/api/auth/me")
    assert (status, body["code"]) == (401, "UNAUTHORIZED")
    await api.login(world.own.users["judge"])
    for _ in range(13):  # active every hour, but past the 12 h absolute limit
        clock.advance(3600)
        status, _ = await api.call("GET", "/api/auth/me")
    assert status == 401


async def test_logout_kills_the_session_server_side(api: Api, world: World) -> None:
    await api.login(world.own.users["judge"])
    stolen = dict(api.client.session.cookie_jar.filter_cookies(api.client.make_url("/")))
    status, _ = await api.call("POST", "/api/auth/logout")
    assert status == 204
    # Replaying the old cookie after logout does not work.
    api.client.session.cookie_jar.update_cookies({"sc_session": stolen["sc_session"].value})
    status, _ = await api.call("GET", "/api/auth/me")
    assert status == 401


async def test_writes_need_the_csrf_header_and_no_foreign_origin(api: Api, world: World) -> None:
    await api.login(world.own.users["judge"])
    good = api.csrf
    body = {"number": "c-1", "title": "t"}
    api.csrf = None
    status, resp = await api.call("POST", "/api/cases", body)
    assert (status, resp["code"]) == (403, "CSRF_FAILED")
    status, resp = await api.call("POST", "/api/cases", body, headers={"X-CSRF-Token": "x" * 43})
    assert (status, resp["code"]) == (403, "CSRF_FAILED")
    api.csrf = good
    status, resp = await api.call(
        "POST", "/api/cases", body, headers={"Origin": "https://evil.example"}
    )
    assert (status, resp["code"]) == (403, "CSRF_FAILED")
    # Origin: null (a sandboxed frame, a privacy redirect) is not ours either.
    status, resp = await api.call("POST", "/api/cases", body, headers={"Origin": "null"})
    assert (status, resp["code"]) == (403, "CSRF_FAILED")
    # Our own origin passes; so does no Origin at all (not a browser: the token guards it).
    own = str(api.client.make_url("/").origin())
    status, resp = await api.call("POST", "/api/cases", body, headers={"Origin": own})
    assert status == 201
    status, resp = await api.call("POST", "/api/cases", {**body, "number": "c-2"})
    assert status == 201
    # A login form posted from another site is refused too.
    anon = Api(api.client)
    api.client.session.cookie_jar.clear()
    status, resp = await anon.call(
        "POST",
        "/api/auth/login",
        {"username": "a-judge", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert (status, resp["code"]) == (403, "CSRF_FAILED")


async def test_security_headers_on_pages_and_api(app_client: TestClient[Any, Any]) -> None:
    for path in ("/", "/join", "/api/health"):
        async with app_client.get(path) as resp:
            assert resp.status == 200
            assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
            assert resp.headers["Referrer-Policy"] == "no-referrer"
            assert resp.headers["X-Frame-Options"] == "DENY"


async def test_station_login(api: Api, world: World) -> None:
    status, body = await api.station_login(world.own.station_id, tokens.new_token())
    assert (status, body["code"]) == (401, "BAD_CREDENTIALS")
    status, body = await api.station_login(world.own.station_id, world.other.station_key)
    assert status == 401
    status, body = await api.station_login(world.own.station_id, world.own.station_key)
    assert status == 200
    assert body["principal"] == {
        "kind": "station",
        "station_id": world.own.station_id,
        "court_id": world.own.court_id,
    }
    status, hearings = await api.call("GET", "/api/hearings")
    assert [h["id"] for h in hearings] == [world.own.hearing_id]


async def test_invitation_redeem_binds_session_to_the_participant(
    api: Api, world: World, app_client: TestClient[Any, Any]
) -> None:
    status, body = await api.redeem(world.own.plaintiff_token)
    assert status == 200
    assert body["principal"] == {
        "kind": "party",
        "participant_id": world.own.plaintiff_id,
        "hearing_id": world.own.hearing_id,
        "court_id": world.own.court_id,
    }
    status, hearing = await api.call("GET", f"/api/hearings/{world.own.hearing_id}")
    assert (status, hearing["id"]) == (200, world.own.hearing_id)
    # A party sees nothing else: not the other hearing of the same court, not another court.
    for hearing_id in (world.own.other_hearing_id, world.other.hearing_id):
        status, body = await api.call("GET", f"/api/hearings/{hearing_id}")
        assert (status, body["code"]) == (404, "NOT_FOUND")
    async with app_of(app_client)[SESSIONS]() as db:
        kinds = (
            await db.scalars(
                select(HearingEvent.kind).where(HearingEvent.hearing_id == world.own.hearing_id)
            )
        ).all()
    assert "invitation.redeemed" in kinds


async def test_redeeming_again_on_a_new_device_revokes_the_first(
    api: Api, world: World, app_client: TestClient[Any, Any]
) -> None:
    first = Api(await_client := api.client)
    assert (await first.redeem(world.own.plaintiff_token))[0] == 200
    old_cookie = await_client.session.cookie_jar.filter_cookies(await_client.make_url("/"))[
        "sc_session"
    ].value
    await_client.session.cookie_jar.clear()
    second = Api(await_client)
    assert (await second.redeem(world.own.plaintiff_token))[0] == 200
    await_client.session.cookie_jar.clear()
    await_client.session.cookie_jar.update_cookies({"sc_session": old_cookie})
    status, _ = await first.call("GET", "/api/auth/me")
    assert status == 401
    async with app_of(app_client)[SESSIONS]() as db:
        kinds = (await db.scalars(select(HearingEvent.kind))).all()
    assert "invitation.rebound" in kinds


async def test_invalid_tokens_get_clear_errors_that_reveal_no_hearing(
    api: Api, world: World, clock: FakeClock
) -> None:
    cases = {
        "malformed": "not-a-token",
        "unknown": tokens.new_token(),
    }
    for name, token in cases.items():
        status, body = await api.redeem(token)
        assert (status, body["code"]) == (404, "INVALID_INVITATION"), name
        assert body["details"]["reason"] == "invalid"
        assert world.own.hearing_id not in str(body)

    # Revoked by the judge.
    judge = Api(api.client)
    await judge.login(world.own.users["judge"])
    status, _ = await judge.call("POST", f"/api/invitations/{world.own.invitation_id}/revoke")
    assert status == 200
    api.client.session.cookie_jar.clear()
    status, body = await api.redeem(world.own.plaintiff_token)
    assert (status, body["details"]["reason"]) == (404, "revoked")
    assert "withdrawn" in body["message"]
    assert world.own.hearing_id not in str(body)

    # Expired.
    clock.advance(2 * 24 * 3600)
    status, body = await api.redeem(world.own.defendant_token)
    assert (status, body["details"]["reason"]) == (404, "expired")
    assert world.own.hearing_id not in str(body)


async def test_invitation_not_yet_valid(api: Api, world: World, clock: FakeClock) -> None:
    judge = Api(api.client)
    await judge.login(world.own.users["clerk"])
    start = clock.now().replace(hour=23).isoformat()
    status, issued = await judge.call(
        "POST",
        f"/api/hearings/{world.own.hearing_id}/participants/{world.own.defendant_id}/invitations",
        {"not_before": start, "valid_for_hours": 4},
    )
    assert status == 201
    token = issued["url"].split("#", 1)[1]
    assert issued["url"].startswith("http")
    assert "/join#" in issued["url"]
    api.client.session.cookie_jar.clear()
    status, body = await api.redeem(token)
    assert (status, body["details"]["reason"]) == (404, "not_yet_valid")
    clock.advance(15 * 3600)
    status, _ = await api.redeem(token)
    assert status == 200
    # Issuing a new link withdrew the old one.
    api.client.session.cookie_jar.clear()
    status, body = await api.redeem(world.own.defendant_token)
    assert body["details"]["reason"] == "revoked"


async def test_disabled_account_loses_its_sessions(
    api: Api, world: World, app_client: TestClient[Any, Any]
) -> None:
    await api.login(world.own.users["judge"])
    async with app_of(app_client)[SESSIONS].begin() as db:
        user = await db.get(User, world.own.user_ids["judge"])
        assert user is not None
        user.disabled = True
    status, _ = await api.call("GET", "/api/auth/me")
    assert status == 401
