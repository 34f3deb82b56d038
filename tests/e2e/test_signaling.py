"""The signaling endpoint with real clients over real sockets: joining, the entry steps, the
court's controls, malformed input, duplicate sessions and departure causes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack

from server.sfu import aiortc_hooks
from server.web.ws import RESULT_DATA
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import ClientKind, HearingRole, HearingState, ParticipantState, StationCause
from signaling.errors import ErrorCode, RequestError, SignalingError
from signaling.limits import JOINS_PER_MINUTE
from signaling.reasons import CloseReason
from tests.e2e.conftest import Court

CONSENTS = ["online_proceedings", "court_rules", "no_recording"]


async def next_of(
    client: SignalingClient,
    kind: type[m.Message],
    where: Callable[[Any], bool] = lambda _m: True,
    timeout: float = 10.0,
) -> Any:
    """The next pushed message of `kind` satisfying `where` (others are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await client.next_event()
            if isinstance(message, kind) and where(message):
                return message


async def enter_party(court: Court, token: str, name: str) -> SignalingClient:
    client = court.client(await court.party(token))
    await client.connect()
    welcome = await client.join(court.world.own.hearing_id, client_kind=ClientKind.BROWSER)
    assert welcome.state is ParticipantState.INVITED
    await client.request(m.ConfirmIdentity(name=name, id_digits="1234"))
    await client.request(m.Consent(accepted_rules=CONSENTS))
    await next_of(client, m.Moved, lambda e: e.state is ParticipantState.WAITING)
    return client


async def test_judge_admits_a_party_who_passed_the_entry_steps(court: Court) -> None:
    w = court.world.own
    async with court.client(await court.staff("judge")) as judge:
        welcome = await judge.join(w.hearing_id)
        assert welcome.state is ParticipantState.IN_HEARING
        assert welcome.hearing_state == "scheduled"
        with pytest.raises(RequestError) as err:
            await judge.request(m.Admit(all=True))
        assert err.value.code is ErrorCode.WRONG_STATE  # open the hearing first
        await judge.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        party = await enter_party(court, w.plaintiff_token, "PLAINTIFF")
        try:
            roster = await next_of(
                judge,
                m.Roster,
                lambda r: any(
                    p.participant_id == w.plaintiff_id and p.state is ParticipantState.WAITING
                    for p in r.participants
                ),
            )
            assert roster
            result = await judge.request(m.Admit(participant_id=w.plaintiff_id))
            assert isinstance(result, m.Result)
            assert result.data == {"admitted": 1}
            moved = await next_of(party, m.Moved, lambda e: e.state is ParticipantState.IN_HEARING)
            assert moved.room_id == "main"
        finally:
            await party.close()


async def test_a_party_cannot_use_the_courts_controls(court: Court) -> None:
    w = court.world.own
    party = await enter_party(court, w.plaintiff_token, "PLAINTIFF")
    try:
        for request in (
            m.Admit(all=True),
            m.Mute(participant_id=w.defendant_id),
            m.SetHearingState(state=HearingState.IN_SESSION, reason="x"),
            m.Remove(participant_id=w.defendant_id, reason="x"),
        ):
            with pytest.raises(RequestError) as err:
                await party.request(request)
            assert err.value.code is ErrorCode.FORBIDDEN, request
    finally:
        await party.close()


async def test_wrong_identity_is_refused_and_counted(court: Court) -> None:
    w = court.world.own
    async with court.client(await court.party(w.defendant_token)) as party:
        await party.join(w.hearing_id)
        with pytest.raises(RequestError) as err:
            await party.request(m.ConfirmIdentity(name="SOMEONE ELSE", id_digits="1234"))
        assert err.value.code is ErrorCode.BAD_FIELD
        with pytest.raises(RequestError) as err:
            await party.request(m.Consent(accepted_rules=["court_rules"]))
        assert err.value.code is ErrorCode.BAD_FIELD


async def test_malformed_messages_get_errors_and_the_connection_stays(court: Court) -> None:
    cookies = await court.staff("judge")
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookies=cookies, cookie_jar=jar) as http,
        http.ws_connect(court.ws_url) as ws,
    ):
        cases = [
            ("{not json", "BAD_JSON"),
            ("[1, 2]", "BAD_REQUEST"),
            (json.dumps({"v": 1, "type": "teleport", "transaction": "t1"}), "UNKNOWN_TYPE"),
            (json.dumps({"v": 9, "type": "join", "transaction": "t2"}), "UNSUPPORTED_VERSION"),
            (
                json.dumps({"v": 1, "type": "join", "transaction": "t3", "hearing_id": 5}),
                "BAD_FIELD",
            ),
            (
                json.dumps({"v": 1, "type": "mute", "transaction": "t4", "participant_id": "x"}),
                "WRONG_STATE",
            ),  # not joined yet
            (json.dumps({"v": 1, "type": "welcome", "transaction": "t5"}), "UNKNOWN_TYPE"),
            ("x" * 70_000, "TOO_LARGE"),
        ]
        for text, code in cases:
            await ws.send_str(text)
            reply = json.loads((await ws.receive(timeout=10)).data)
            assert (reply["type"], reply["code"]) == ("error", code), text[:60]
        # Still usable: a valid join works on the same connection.
        await ws.send_str(
            json.dumps(
                {
                    "v": 1,
                    "type": "join",
                    "transaction": "ok",
                    "hearing_id": court.world.own.hearing_id,
                    "client_kind": "browser",
                }
            )
        )
        reply = json.loads((await ws.receive(timeout=10)).data)
        assert (reply["type"], reply["transaction"]) == ("welcome", "ok")


async def test_joining_another_courts_hearing_or_without_login_fails(court: Court) -> None:
    async with court.client(await court.staff("judge")) as judge:
        with pytest.raises(RequestError) as err:
            await judge.join(court.world.other.hearing_id)
        assert err.value.code is ErrorCode.NOT_FOUND
    async with court.client(await court.staff("judge")) as judge:
        with pytest.raises(RequestError) as err:
            await judge.join(court.world.own.other_hearing_id)  # not a participant there
        assert err.value.code is ErrorCode.FORBIDDEN
    with pytest.raises(SignalingError) as refused:
        await court.client({}).connect()
    assert refused.value.code is ErrorCode.UNAUTHORIZED
    for origin in ("https://evil.example", "null"):
        bad_origin = court.client(await court.staff("judge"), headers={"Origin": origin})
        with pytest.raises(SignalingError) as refused:
            await bad_origin.connect()
        assert refused.value.code is ErrorCode.FORBIDDEN
    # A page of our own (Origin: this server) and a non-browser client (no Origin) connect.
    async with court.client(await court.staff("judge"), headers={"Origin": court.base}) as ok:
        await ok.join(court.world.own.hearing_id)


async def test_second_connection_replaces_the_first(court: Court) -> None:
    w = court.world.own
    cookies = await court.staff("clerk")
    first = court.client(cookies)
    await first.connect()
    await first.join(w.hearing_id)
    async with court.client(cookies) as second:
        await second.join(w.hearing_id)
        assert await asyncio.wait_for(first.wait_closed(), 10) is CloseReason.DUPLICATE_SESSION
        assert isinstance(await second.request(m.Heartbeat()), m.Result)
    await first.close()


@pytest.mark.parametrize("how", ["leave", "drop"])
async def test_departures_reach_the_judge_with_their_cause(court: Court, how: str) -> None:
    w = court.world.own
    async with court.client(await court.staff("judge")) as judge:
        await judge.join(w.hearing_id)
        await judge.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        party = await enter_party(court, w.plaintiff_token, "PLAINTIFF")
        if how == "leave":
            await party.leave()
            expected = CloseReason.CLIENT_LEFT
        else:
            # The socket goes away without a goodbye (a crashed tab, a cut cable).
            assert party._ws is not None
            party._ws._response.connection.transport.abort()  # type: ignore[union-attr]
            expected = CloseReason.NETWORK_LOST
        evidence = await next_of(
            judge, m.DisconnectEvidence, lambda e: e.participant_id == w.plaintiff_id
        )
        assert evidence.reason is expected
        await party.close()
    timeline = await _timeline(court)
    departed = [
        e
        for e in timeline
        if e["kind"] == "participant.departed" and e["data"]["participant_id"] == w.plaintiff_id
    ]
    assert len(departed) == 1
    assert departed[-1]["data"]["cause"] == expected.value
    assert departed[-1]["data"]["excused"] is (expected is CloseReason.NETWORK_LOST)


async def test_station_report_explains_the_drop_that_follows(court: Court) -> None:
    w = court.world.own
    async with court.client(await court.staff("judge")) as judge:
        await judge.join(w.hearing_id)
        station = court.client(await court.station())
        await station.connect()
        await station.join(w.hearing_id)
        await station.request(m.StationReport(cause=StationCause.POWER, detail="UPS on battery"))
        assert station._ws is not None
        station._ws._response.connection.transport.abort()  # type: ignore[union-attr]
        evidence = await next_of(judge, m.DisconnectEvidence)
        assert evidence.reason is CloseReason.STATION_POWER
        await station.close()


async def _timeline(court: Court) -> list[dict[str, Any]]:
    cookies = await court.staff("judge")
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookies=cookies, cookie_jar=jar) as http,
        http.get(f"{court.base}/api/hearings/{court.world.own.hearing_id}/events") as resp,
    ):
        body = await resp.json()
    assert body["chain_intact"] is True
    events: list[dict[str, Any]] = body["events"]
    return events


async def test_pre_admitted_roles_skip_the_waiting_room_during_the_session(court: Court) -> None:
    w = court.world.own
    await court.set_state("opened", "候庭")
    await court.set_state("in_session", "开庭")
    async with court.client(await court.staff("judge")) as judge:
        await judge.join(w.hearing_id)
        with pytest.raises(RequestError) as err:
            await judge.request(m.PreAdmit(roles=[HearingRole.WITNESS]))
        assert err.value.code is ErrorCode.FORBIDDEN
        await judge.request(m.PreAdmit(roles=[HearingRole.PLAINTIFF]))
        async with court.client(await court.party(w.plaintiff_token)) as party:
            await party.join(w.hearing_id)
            await party.request(m.ConfirmIdentity(name="PLAINTIFF", id_digits="1234"))
            await party.request(m.Consent(accepted_rules=CONSENTS))
            moved = await next_of(
                party,
                m.Moved,
                lambda e: e.state in (ParticipantState.WAITING, ParticipantState.IN_HEARING),
            )
            assert moved.state is ParticipantState.IN_HEARING


def _join_text(hearing_id: str, transaction: str = "j") -> str:
    return json.dumps(
        {"v": 1, "type": "join", "transaction": transaction, "hearing_id": hearing_id}
    )


async def _frames_until_close(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
    """Every message the server sends until its close frame (which ends the list as
    ("CLOSE", code, text))."""
    got: list[Any] = []
    async with asyncio.timeout(10):
        while True:
            frame = await ws.receive()
            if frame.type is aiohttp.WSMsgType.TEXT:
                got.append(json.loads(frame.data))
            elif frame.type is aiohttp.WSMsgType.CLOSE:
                got.append(("CLOSE", frame.data, frame.extra))
                return got
            else:
                raise AssertionError(f"unexpected {frame!r}")


@pytest.mark.parametrize("hearing", ["missing", "other_court", "not_a_participant"])
async def test_a_refused_join_closes_the_connection(court: Court, hearing: str) -> None:
    hearing_id = {
        "missing": "0b9f8e5c-3a1d-4c2e-8f7a-1e2d3c4b5a69",
        "other_court": court.world.other.hearing_id,
        "not_a_participant": court.world.own.other_hearing_id,
    }[hearing]
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookies=await court.staff("judge"), cookie_jar=jar) as http,
        http.ws_connect(court.ws_url, autoclose=False) as ws,
    ):
        await ws.send_str(_join_text(hearing_id))
        error, closed, close = await _frames_until_close(ws)
    assert (error["type"], error["transaction"]) == ("error", "j")
    assert error["code"] == ("FORBIDDEN" if hearing == "not_a_participant" else "NOT_FOUND")
    assert (closed["type"], closed["reason"]) == ("closed", "JOIN_REFUSED")
    assert close == ("CLOSE", 1000, "JOIN_REFUSED")


async def test_an_offer_gets_exactly_one_reply(court: Court) -> None:
    aiortc_hooks.install_host_addresses(["127.0.0.1"])
    pc = RTCPeerConnection()
    jar = aiohttp.CookieJar(unsafe=True)
    try:
        pc.addTrack(AudioStreamTrack())
        await pc.setLocalDescription(await pc.createOffer())
        async with (
            aiohttp.ClientSession(cookies=await court.staff("clerk"), cookie_jar=jar) as http,
            http.ws_connect(court.ws_url) as ws,
        ):
            await ws.send_str(_join_text(court.world.own.hearing_id))
            offer = {"v": 1, "type": "offer", "transaction": "o1", "sdp": pc.localDescription.sdp}
            await ws.send_str(json.dumps(offer))
            await ws.send_str(json.dumps({"v": 1, "type": "heartbeat", "transaction": "hb"}))
            replies: list[str] = []
            async with asyncio.timeout(20):
                while True:  # one connection, in order: the heartbeat's reply comes last
                    message = json.loads((await ws.receive()).data)
                    if message.get("transaction") == "o1":
                        replies.append(message["type"])
                    if message.get("transaction") == "hb":
                        break
        assert replies == ["answer"]
    finally:
        await pc.close()


async def test_by_names_who_acted(court: Court) -> None:
    """`hearing_state.by` and `moved.by` say who acted, over the socket or over REST."""
    w = court.world.own
    async with court.client(await court.staff("judge")) as judge:
        me = (await judge.join(w.hearing_id)).participant_id
        await judge.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        opened = await next_of(judge, m.HearingStateChanged, lambda e: e.state == "opened")
        assert opened.by == me
        party = await enter_party(court, w.plaintiff_token, "PLAINTIFF")
        try:
            await judge.request(m.Admit(participant_id=w.plaintiff_id))
            moved = await next_of(party, m.Moved, lambda e: e.state is ParticipantState.IN_HEARING)
            assert moved.by == me
            await judge.request(m.MoveToRoom(participant_id=w.plaintiff_id, room_id="甲方"))
            moved = await next_of(
                party, m.Moved, lambda e: e.state is ParticipantState.IN_PRIVATE_ROOM
            )
            assert (moved.by, moved.room_id) == (me, "caucus:甲方")  # named "甲方" by the judge
            await court.set_state("in_session", "开庭")  # the judge, over REST
            started = await next_of(party, m.HearingStateChanged, lambda e: e.state == "in_session")
            assert started.by == me
        finally:
            await party.close()


async def test_joins_are_limited_per_participant_per_minute(court: Court) -> None:
    """A reconnect loop must back off: the join after JOINS_PER_MINUTE in a minute is refused
    RATE_LIMITED (and, refused, its connection closes)."""
    cookies = await court.staff("clerk")
    for _ in range(JOINS_PER_MINUTE):
        async with court.client(cookies) as client:
            await client.join(court.world.own.hearing_id)
    async with court.client(cookies) as client:
        with pytest.raises(RequestError) as err:
            await client.join(court.world.own.hearing_id)
        assert err.value.code is ErrorCode.RATE_LIMITED
        assert await asyncio.wait_for(client.wait_closed(), 10) is CloseReason.JOIN_REFUSED


async def test_result_data_is_as_documented(court: Court) -> None:
    """`admit` and `mute_all` answer the shapes of RESULT_DATA (which the docs test holds to
    docs/signaling.md); other requests answer `{}`."""
    w = court.world.own
    async with court.client(await court.staff("judge")) as judge:
        await judge.join(w.hearing_id)
        await judge.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        party = await enter_party(court, w.plaintiff_token, "PLAINTIFF")
        try:
            replies: dict[type[m.Request], m.Message] = {
                m.Admit: await judge.request(m.Admit(all=True)),
                m.MuteAll: await judge.request(m.MuteAll()),
                m.Heartbeat: await judge.request(m.Heartbeat()),
            }
        finally:
            await party.close()
    data: dict[type[m.Request], Any] = {}
    for request, reply in replies.items():
        assert isinstance(reply, m.Result)
        data[request] = reply.data
        assert {k: type(v) for k, v in reply.data.items()} == RESULT_DATA.get(request, {})
    assert data[m.Admit] == {"admitted": 1}
    assert data[m.MuteAll] == {"muted": 1}
