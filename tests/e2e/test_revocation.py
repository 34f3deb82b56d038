"""Revoked means revoked, on the wire: revoking or re-issuing an invitation link, or redeeming
it again on another device, ends every session and connection opened with the old one at once
(GET /api/auth/me 401, the open socket closed with SESSION_REVOKED, a new socket refused), and
the hearing's log says so."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import HearingState, ParticipantState
from signaling.errors import ErrorCode, SignalingError
from signaling.reasons import CloseReason
from tests.e2e.conftest import Court
from tests.e2e.test_signaling import CONSENTS, _timeline, enter_party, next_of

# "Within a second" (issue 9): the REST call that revokes returns once the sockets are closed;
# this is the deadline for the client to have seen it.
WITHIN_S = 1.0


async def _me(court: Court, cookies: dict[str, str]) -> int:
    status, _ = await court.call(cookies, "GET", "/api/auth/me")
    return status


async def _refused_socket(court: Court, cookies: dict[str, str]) -> None:
    with pytest.raises(SignalingError) as refused:
        await court.client(cookies).connect()
    assert refused.value.code is ErrorCode.UNAUTHORIZED


async def _admitted_party(court: Court, judge: SignalingClient) -> tuple[SignalingClient, Any]:
    """The plaintiff, through the entry steps and admitted; with the cookies of the device."""
    w = court.world.own
    cookies = await court.party(w.plaintiff_token)
    party = court.client(cookies)
    await party.connect()
    await party.join(w.hearing_id)
    await party.request(m.ConfirmIdentity(name="PLAINTIFF", id_digits="1234"))
    await party.request(m.Consent(accepted_rules=CONSENTS))
    await next_of(party, m.Moved, lambda e: e.state is ParticipantState.WAITING)
    await judge.request(m.Admit(participant_id=w.plaintiff_id))
    await next_of(party, m.Moved, lambda e: e.state is ParticipantState.IN_HEARING)
    return party, cookies


async def _judge(court: Court) -> SignalingClient:
    judge = court.client(await court.staff("judge"))
    await judge.connect()
    await judge.join(court.world.own.hearing_id)
    await judge.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
    return judge


async def _unjoined_socket(
    court: Court, cookies: dict[str, str]
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    """A socket opened with the session that has not joined anything (yet)."""
    http = aiohttp.ClientSession(cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True))
    return http, await http.ws_connect(court.ws_url, autoclose=False)


async def _closed_raw(
    socket: tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse],
) -> tuple[str | None, object, object]:
    """The `closed` reason, the close frame's code and text a raw socket got, within WITHIN_S."""
    http, ws = socket
    reason = None
    try:
        async with asyncio.timeout(WITHIN_S):
            while True:
                frame = await ws.receive()
                if frame.type is aiohttp.WSMsgType.TEXT:
                    reason = m.Closed.model_validate_json(frame.data).reason.value
                elif frame.type is aiohttp.WSMsgType.CLOSE:
                    return reason, frame.data, frame.extra
                else:
                    raise AssertionError(f"unexpected {frame!r}")
    finally:
        await ws.close()
        await http.close()


async def test_revoking_a_link_ends_its_sessions_and_connections_at_once(court: Court) -> None:
    w = court.world.own
    judge = await _judge(court)
    try:
        party, cookies = await _admitted_party(court, judge)
        idle = await _unjoined_socket(court, cookies)
        assert await _me(court, cookies) == 200

        status, body = await court.call(
            await court.staff("judge"), "POST", f"/api/invitations/{w.invitation_id}/revoke"
        )
        assert status == 200, body
        assert body["revoked_at"] is not None

        reason = await asyncio.wait_for(party.wait_closed(), WITHIN_S)
        assert reason is CloseReason.SESSION_REVOKED
        assert await _closed_raw(idle) == ("SESSION_REVOKED", 1000, "SESSION_REVOKED")
        assert await _me(court, cookies) == 401
        await _refused_socket(court, cookies)
        evidence = await next_of(
            judge, m.DisconnectEvidence, lambda e: e.participant_id == w.plaintiff_id
        )
        assert evidence.reason is CloseReason.SESSION_REVOKED
        await party.close()
    finally:
        await judge.close()
    events = await _timeline(court)
    revoked = [e for e in events if e["kind"] == "invitation.revoked"]
    assert revoked[-1]["data"]["sessions_ended"] == 1
    departed = [
        e["data"]
        for e in events
        if e["kind"] == "participant.departed" and e["data"]["participant_id"] == w.plaintiff_id
    ]
    assert [d["cause"] for d in departed] == ["SESSION_REVOKED"]
    assert departed[0]["excused"] is True  # the court withdrew the link; no walk-out


async def test_reissuing_a_link_ends_the_old_device_and_the_new_one_waits(court: Court) -> None:
    w = court.world.own
    judge = await _judge(court)
    try:
        party, old_cookies = await _admitted_party(court, judge)
        status, body = await court.call(
            await court.staff("judge"),
            "POST",
            f"/api/hearings/{w.hearing_id}/participants/{w.plaintiff_id}/invitations",
            {},
        )
        assert status == 201, body
        # Re-issuing revokes the old link, and what was opened with it.
        assert await asyncio.wait_for(party.wait_closed(), WITHIN_S) is CloseReason.SESSION_REVOKED
        assert await _me(court, old_cookies) == 401
        await _refused_socket(court, old_cookies)
        with pytest.raises(AssertionError):
            await court.party(w.plaintiff_token)  # the old link no longer opens anything

        # The new link, on another device: in the hearing again only once admitted.
        new_cookies = await court.party(body["url"].split("#", 1)[1])
        async with court.client(new_cookies) as device:
            welcome = await device.join(w.hearing_id)
            assert welcome.state is ParticipantState.WAITING
        await party.close()
    finally:
        await judge.close()


async def test_redeeming_a_link_on_another_device_ends_the_first_devices_connection(
    court: Court,
) -> None:
    w = court.world.own
    judge = await _judge(court)
    try:
        first, first_cookies = await _admitted_party(court, judge)
        second_cookies = await court.party(w.plaintiff_token)  # the same link, a new device
        assert await asyncio.wait_for(first.wait_closed(), WITHIN_S) is CloseReason.SESSION_REVOKED
        assert await _me(court, first_cookies) == 401
        await _refused_socket(court, first_cookies)
        assert await _me(court, second_cookies) == 200
        async with court.client(second_cookies) as second:
            welcome = await second.join(w.hearing_id)
            assert welcome.state is ParticipantState.WAITING  # the court admits the new device
        await first.close()
    finally:
        await judge.close()
    rebound = [e for e in await _timeline(court) if e["kind"] == "invitation.rebound"]
    assert rebound[-1]["data"]["sessions_ended"] == 1


async def test_enter_party_helper_still_works_after_a_revocation_of_another_party(
    court: Court,
) -> None:
    """Revoking one party's link leaves the other party's session alone."""
    w = court.world.own
    judge = await _judge(court)
    try:
        defendant = await enter_party(court, w.defendant_token, "DEFENDANT")
        status, _ = await court.call(
            await court.staff("judge"), "POST", f"/api/invitations/{w.invitation_id}/revoke"
        )
        assert status == 200
        assert isinstance(await defendant.request(m.Heartbeat()), m.Result)
        assert not defendant.closed
        await defendant.close()
    finally:
        await judge.close()


async def test_logging_out_closes_the_sessions_sockets(court: Court) -> None:
    cookies = await court.staff("clerk")
    async with court.client(cookies) as clerk:
        await clerk.join(court.world.own.hearing_id)
        jar = aiohttp.CookieJar(unsafe=True)
        async with (
            aiohttp.ClientSession(cookies=cookies, cookie_jar=jar) as http,
            http.post(
                f"{court.base}/api/auth/logout", headers={"X-CSRF-Token": cookies["sc_csrf"]}
            ) as resp,
        ):
            assert resp.status == 204
        assert await asyncio.wait_for(clerk.wait_closed(), WITHIN_S) is CloseReason.SESSION_REVOKED
    await _refused_socket(court, cookies)
