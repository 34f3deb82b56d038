"""Authorization across hearings (issue 16.5): a participant of hearing A can never join, see,
hear or read anything of hearing B, whether B is another court's hearing or another hearing of
A's own court; and a removed participant or a revoked invitation stops working within a second,
including a connection already in the room with media flowing.

The per-role x own/other-court matrix of every endpoint is tests/server/test_authorization.py
(a party cannot use staff endpoints is one of its columns); revoking, re-issuing and redeeming
again over signaling are tests/e2e/test_revocation.py. What this file adds: the REST walk with
a party's session over *every* endpoint whose path names something of hearing B (taken from
`routes.ENDPOINTS`, so a new endpoint is covered at once), no id of B in anything a party
reads or receives, no packet of B on A's wire, and the second measured with media running.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc.mediastreams import AudioStreamTrack
from pytest_aiohttp import AiohttpServer

from server.web.routes import ENDPOINTS
from signaling import messages as m
from signaling.errors import ErrorCode, RequestError
from signaling.reasons import CloseReason
from station_client.session import StationSession
from tests.e2e.conftest import Court
from tests.e2e.test_signaling import CONSENTS
from tests.fault.live_court import WatchedHearing, received_packets, start_court
from tests.server.conftest import CourtWorld

WITHIN_S = 1.0  # issue 16.5: a removed participant or a revoked link stops within a second
_PARAM = re.compile(r"\{(\w+)\}")


@pytest.fixture
async def court(tmp_path: Path, aiohttp_server: AiohttpServer) -> Court:
    return await start_court(tmp_path, aiohttp_server)


def _ids_of(world: CourtWorld, *, whole_court: bool) -> dict[str, str]:
    """Path parameter values naming things of hearing B."""
    ids = {
        "hearing_id": world.hearing_id,
        "participant_id": world.plaintiff_id,
        "invitation_id": world.invitation_id,
        "recording_id": world.case_id,  # any id: there is no recording of B to find either
        "stream_id": "1",
        "file_name": "keys.json",
    }
    if whole_court:
        ids |= {
            "court_id": world.court_id,
            "case_id": world.case_id,
            "station_id": world.station_id,
        }
    return ids


def _b_ids(court: Court) -> set[str]:
    o, w = court.world.other, court.world.own
    return {
        o.hearing_id,
        o.other_hearing_id,
        o.case_id,
        o.station_id,
        o.plaintiff_id,
        o.defendant_id,
        o.invitation_id,
        o.court_id,
        w.other_hearing_id,
    }


async def test_a_party_reads_nothing_of_another_hearing(court: Court) -> None:
    """Every endpoint whose path names something of hearing B answers a party of hearing A
    with a refusal (never 2xx); no list a party may read holds an id of B."""
    w = court.world
    cookies = await court.party(w.own.plaintiff_token)
    headers = {"X-CSRF-Token": cookies.get("sc_csrf", "")}
    same_court = {**_ids_of(w.own, whole_court=True), "hearing_id": w.own.other_hearing_id}
    targets = [_ids_of(w.other, whole_court=True), same_court]
    leaks: list[str] = []
    reached = 0
    async with aiohttp.ClientSession(
        cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:
        for endpoint in ENDPOINTS:
            names = _PARAM.findall(endpoint.path)
            if endpoint.path == "/api/auth/logout":
                continue
            if not names:
                if endpoint.method != "GET":
                    continue
                async with http.get(court.base + endpoint.path, headers=headers) as resp:
                    text = await resp.text()
                found = sorted(i for i in _b_ids(court) if i in text)
                if found:
                    leaks.append(f"GET {endpoint.path} shows {found}")
                continue
            for ids in targets:
                if not set(names) <= set(ids):
                    continue
                path = endpoint.path.format(**{n: ids[n] for n in names})
                async with http.request(
                    endpoint.method, court.base + path, headers=headers, json={}
                ) as resp:
                    reached += 1
                    if resp.status < 400:
                        leaks.append(f"{endpoint.method} {path}: {resp.status}")
                    else:
                        body = await resp.json()
                        assert body["type"] == "error", body
    assert reached > 20
    assert not leaks, "\n".join(leaks)


async def _refused_join(court: Court, cookies: dict[str, str], hearing_id: str) -> str:
    """The error code of a join into `hearing_id`; the socket is closed with JOIN_REFUSED."""
    async with aiohttp.ClientSession(
        cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:
        ws = await http.ws_connect(court.ws_url, autoclose=False)
        join = {"v": 1, "type": "join", "transaction": "j", "hearing_id": hearing_id}
        await ws.send_str(json.dumps(join))
        frames = []
        async with asyncio.timeout(10):
            while (frame := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                frames.append(json.loads(frame.data))
        await ws.close()
    assert [f["type"] for f in frames] == ["error", "closed"], frames
    assert frames[1]["reason"] == "JOIN_REFUSED"
    code: str = frames[0]["code"]
    return code


async def test_nobody_of_hearing_a_joins_hearing_b_or_names_its_people(court: Court) -> None:
    """The party, the station and the judge of A cannot join B (another court's, or another of
    A's court they do not take part in); A's judge naming B's people over A's socket finds
    nobody."""
    w = court.world
    party = await court.party(w.own.plaintiff_token)
    station = await court.station()
    judge = await court.staff("judge")
    for cookies in (party, station, judge):
        assert await _refused_join(court, cookies, w.other.hearing_id) == "NOT_FOUND"
    for cookies in (party, station):
        code = await _refused_join(court, cookies, w.own.other_hearing_id)
        assert code in ("NOT_FOUND", "FORBIDDEN")
    async with court.client(judge) as client:
        await client.join(w.own.hearing_id)
        for request in (
            m.Admit(participant_id=w.other.plaintiff_id),
            m.Mute(participant_id=w.other.plaintiff_id),
            m.Remove(participant_id=w.other.plaintiff_id, reason="x"),
            m.MoveToRoom(participant_id=w.other.defendant_id, room_id="甲方"),
            m.CallWitness(participant_id=w.other.defendant_id),
        ):
            with pytest.raises(RequestError) as err:
                await client.request(request)
            assert err.value.code in (ErrorCode.NOT_FOUND, ErrorCode.WRONG_STATE), request


class PartyWithMedia:
    """A party of hearing A through the entry steps, admitted, with an aiortc peer connection
    that publishes a tone and receives whatever the SFU sends it; every message kept."""

    def __init__(self, court: Court) -> None:
        self.court = court
        self.seen: list[m.Message] = []
        self.session: StationSession | None = None
        self.cookies: dict[str, str] = {}

    async def enter(self, judge: StationSession, token: str) -> None:
        cookies = self.cookies = await self.court.party(token)
        session = self.session = StationSession(
            self.court.client(cookies), audio=AudioStreamTrack(), on_event=self.seen.append
        )
        await session.signaling.connect()
        await session.join(self.court.world.own.hearing_id)
        await session.signaling.request(m.ConfirmIdentity(name="PLAINTIFF", id_digits="1234"))
        await session.signaling.request(m.Consent(accepted_rules=CONSENTS))
        await judge.signaling.request(m.Admit(participant_id=self.court.world.own.plaintiff_id))
        async with asyncio.timeout(45):
            while await received_packets(session) < 30:
                await asyncio.sleep(0.2)  # polling the party's receive counters

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close(leave=False)


@pytest.fixture
async def two_hearings(court: Court) -> AsyncIterator[tuple[WatchedHearing, WatchedHearing]]:
    """Both courts' hearings in session, each with its station publishing to its judge."""
    a, b = WatchedHearing(court, "own"), WatchedHearing(court, "other")
    try:
        await a.start()
        await b.start()
        yield a, b
    finally:
        await a.close()
        await b.close()


def _participant_ids(messages: list[m.Message]) -> set[str]:
    """Every participant id named anywhere in these messages."""
    text = " ".join(message.model_dump_json() for message in messages)
    return set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text))


async def test_no_media_or_name_of_hearing_b_reaches_hearing_a(
    court: Court, two_hearings: tuple[WatchedHearing, WatchedHearing]
) -> None:
    """A party of A receives A's station (packets, tracks) and nothing of B: no track, no
    roster entry, no id of B in any message; B's judge gets no track of A's people."""
    a, b = two_hearings
    assert a.judge is not None
    assert b.judge is not None
    party = PartyWithMedia(court)
    try:
        await party.enter(a.judge, court.world.own.plaintiff_token)
        await asyncio.sleep(2.0)  # a window in which B's media would reach A if it could
        assert party.session is not None
        owners = set(party.session.owners.values())
        b_owners = set(b.judge.owners.values())
    finally:
        await party.close()
    assert owners, "the party received no track of its own hearing"
    assert not owners & b_owners, (owners, b_owners)
    assert not _participant_ids(party.seen) & (b_owners | {court.world.other.plaintiff_id})
    assert court.world.own.plaintiff_id not in b_owners
    assert not b_owners & set(a.judge.owners.values())


async def _stops_within(party: PartyWithMedia, act: Any) -> tuple[float, float]:
    """Run `act`; the seconds until the party's socket is closed, and until its peer receives
    no more packets (checked over the following 1.5 s)."""
    session = party.session
    assert session is not None
    t0 = time.monotonic()
    await act()
    await asyncio.wait_for(session.signaling.wait_closed(), 5)
    closed = time.monotonic() - t0
    last, last_change = await received_packets(session), time.monotonic()
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 1.5:
        await asyncio.sleep(0.05)  # sampling the receive counter to find when it stopped
        now = await received_packets(session)
        if now != last:
            last, last_change, quiet_since = now, time.monotonic(), time.monotonic()
    return closed, max(0.0, last_change - t0)


@pytest.mark.parametrize("how", ["removed", "revoked"])
async def test_a_removed_or_revoked_party_stops_within_a_second(
    court: Court, how: str, two_hearings: tuple[WatchedHearing, WatchedHearing]
) -> None:
    """In the room with media flowing: removed by the judge (REMOVED) or its invitation revoked
    (SESSION_REVOKED); the socket closes and the packets stop within a second, and the party
    cannot come back (REST 401 after a revocation, a new join refused)."""
    a, _ = two_hearings
    assert a.judge is not None
    w = court.world.own
    party = PartyWithMedia(court)
    judge_cookies = await court.staff("judge")
    try:
        await party.enter(a.judge, w.plaintiff_token)
        assert party.session is not None

        async def act() -> None:
            if how == "removed":
                await a.judge.signaling.request(  # type: ignore[union-attr]
                    m.Remove(participant_id=w.plaintiff_id, reason="扰乱法庭秩序")
                )
            else:
                status, body = await court.call(
                    judge_cookies, "POST", f"/api/invitations/{w.invitation_id}/revoke"
                )
                assert status == 200, body

        closed_s, media_s = await _stops_within(party, act)
        reason = party.session.signaling.close_reason
    finally:
        await party.close()
    print(
        f"{how}: socket closed after {closed_s * 1000:.0f} ms, "
        f"media stopped after {media_s * 1000:.0f} ms"
    )
    want = CloseReason.REMOVED if how == "removed" else CloseReason.SESSION_REVOKED
    assert reason is want
    assert closed_s <= WITHIN_S, closed_s
    assert media_s <= WITHIN_S, media_s
    # And it does not come back: a new join is refused (the revoked session cannot even open
    # a socket: 401).
    if how == "revoked":
        status, _ = await court.call(party.cookies, "GET", "/api/auth/me")
        assert status == 401
    else:
        assert await _refused_join(court, party.cookies, w.hearing_id) in (
            "FORBIDDEN",
            "WRONG_STATE",
        )
