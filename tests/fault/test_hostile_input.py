"""Hostile input (issue 16.4): random JSON, wrong types, huge messages and floods on the live
signaling socket; malformed SDP and ICE candidates; REST calls with wrong types, huge bodies and
path traversal in every path parameter of every endpoint (walking `routes.ENDPOINTS`, so a new
endpoint is covered without editing this file). Each gets the documented error shape, the
server stays up, and another hearing's media keeps flowing: its packet rate at a real aiortc
subscriber is measured before, during and after the barrage.

The codec itself is fuzzed in tests/signaling/test_codec.py; here hypothesis draws what goes on
the wire of a running server (`_drawn` collects a seeded, derandomized batch of examples).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import statistics
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_aiohttp import AiohttpServer

from server.web.routes import ENDPOINTS
from signaling import messages as m
from signaling.enums import Sender
from signaling.errors import ErrorCode
from signaling.limits import MAX_MESSAGE_BYTES, RATE_BURST, RATE_STRIKES, WS_MAX_FRAME_BYTES
from tests.e2e.conftest import Court
from tests.e2e.test_signaling import CONSENTS
from tests.fault.live_court import RateDuring, WatchedHearing, start_court, watched_hearing

GROUP = 5  # random messages between two heartbeats
# Small per-address limits, so that the per-address checks are cheap to reach.
MAX_SOCKETS = 24
ADDRESS_RATE = 100.0
# The other hearing's packet rate during the barrage (on average) and after must stay above
# this share of the rate before.
KEEPS = 0.7

WIRE_CODES = {code.value for code in ErrorCode} - {"TIMEOUT", "CLOSED"}
ERROR_KEYS = {"v", "type", "code", "message", "transaction"}


@pytest.fixture
async def court(tmp_path: Path, aiohttp_server: AiohttpServer) -> Court:
    return await start_court(
        tmp_path,
        aiohttp_server,
        signaling={
            "max_sockets_per_address": MAX_SOCKETS,
            "messages_per_address_per_s": ADDRESS_RATE,
        },
    )


@pytest.fixture
async def watched(court: Court) -> AsyncIterator[WatchedHearing]:
    async for hearing in watched_hearing(court):
        yield hearing


def _drawn(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """`n` examples of `strategy`, the same on every run (derandomized)."""
    found: list[Any] = []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found[:n]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Types a client may send, but `join` (a random id is refused and closes) and `leave`.
_CLIENT_TYPES = sorted(
    name
    for name, cls in m.MESSAGE_TYPES.items()
    if Sender.CLIENT in cls.SENDERS and name not in ("join", "leave")
)


@st.composite
def _wrong_typed(draw: st.DrawFn) -> str:
    """A message of a real type whose fields hold random values (mostly of the wrong type)."""
    name = draw(st.sampled_from(_CLIENT_TYPES))
    fields = [f for f in m.MESSAGE_TYPES[name].model_fields if f not in ("v", "type")]
    obj: dict[str, Any] = {"v": 1, "type": name, "transaction": "fz"}
    for field in draw(st.lists(st.sampled_from(fields), max_size=4)) if fields else []:
        obj[field] = draw(_json)
    if draw(st.booleans()):
        obj[draw(st.text(min_size=1, max_size=8))] = draw(_json)
    return json.dumps(obj)


_garbage = st.one_of(
    st.text(max_size=200),
    _json.map(json.dumps),
    st.builds(lambda v, t: json.dumps({"v": v, "type": t}), _json, _json),
    _wrong_typed(),
)


def _check_error(frame: dict[str, Any]) -> None:
    """The documented `error` shape, with a code a client may receive, never INTERNAL."""
    assert set(frame) == ERROR_KEYS, frame
    assert (frame["type"], frame["v"]) == ("error", 1), frame
    assert frame["code"] in WIRE_CODES - {"INTERNAL"}, frame
    assert isinstance(frame["message"], str), frame
    assert 0 < len(frame["message"]) <= 1000, frame


async def _party_socket(
    court: Court, http: aiohttp.ClientSession
) -> aiohttp.ClientWebSocketResponse:
    """The plaintiff of hearing A, joined and through the entry steps (in the waiting room)."""
    ws = await http.ws_connect(court.ws_url, autoclose=False)
    for request in (
        {"type": "join", "hearing_id": court.world.own.hearing_id, "client_kind": "browser"},
        {"type": "confirm_identity", "name": "PLAINTIFF", "id_digits": "1234"},
        {"type": "consent", "accepted_rules": CONSENTS},
    ):
        await ws.send_str(json.dumps({"v": 1, "transaction": "setup", **request}))
        await _reply(ws, "setup")
    return ws


async def _reply(ws: aiohttp.ClientWebSocketResponse, transaction: str | None) -> dict[str, Any]:
    """The next frame that answers `transaction` (events in between are skipped)."""
    async with asyncio.timeout(20):
        while True:
            frame = await ws.receive()
            assert frame.type is aiohttp.WSMsgType.TEXT, frame
            data: dict[str, Any] = json.loads(frame.data)
            if data["type"] in ("result", "error", "welcome", "answer") and (
                data.get("transaction") == transaction
            ):
                return data
            if data["type"] == "closed":
                raise AssertionError(f"closed while waiting: {data}")


async def _fuzz_socket(court: Court, samples: list[str]) -> dict[str, int]:
    """Random text on a joined party's socket, paced under the per-connection rate: every
    message gets one reply, an error in the documented shape (or a result, when random fields
    happened to make a harmless valid request); the socket stays open throughout."""
    codes: dict[str, int] = {}
    async with aiohttp.ClientSession(
        cookies=await court.party(court.world.own.plaintiff_token),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    ) as http:
        ws = await _party_socket(court, http)
        groups = [samples[i : i + GROUP] for i in range(0, len(samples), GROUP)]
        for g, group in enumerate(groups):
            if g >= 4:
                await asyncio.sleep((GROUP + 1) / 20)  # pacing: under 20 messages/s sustained
            for text in group:
                await ws.send_str(text)
            # A heartbeat after each group: its reply marks "everything before it was
            # answered", whatever the random messages were.
            await ws.send_str(json.dumps({"v": 1, "type": "heartbeat", "transaction": f"hb{g}"}))
            async with asyncio.timeout(20):
                while True:
                    data = json.loads((await ws.receive()).data)
                    assert data["type"] != "closed", (group, data)
                    if data["type"] == "error":
                        _check_error(data)
                        codes[data["code"]] = codes.get(data["code"], 0) + 1
                    if data.get("transaction") == f"hb{g}":
                        assert data["type"] == "result", (group, data)
                        break
        assert not ws.closed
        await ws.close()
    return codes


async def _huge_messages(court: Court) -> None:
    """Over the codec's limit: TOO_LARGE and the socket stays. Over the frame limit: closed
    with PROTOCOL_VIOLATION (1008 or aiohttp's 1009), and the server carries on."""
    async with aiohttp.ClientSession(
        cookies=await court.staff("clerk"), cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:
        ws = await http.ws_connect(court.ws_url, autoclose=False)
        padding = "x" * (MAX_MESSAGE_BYTES + 10)
        await ws.send_str(
            json.dumps({"v": 1, "type": "heartbeat", "transaction": "big", "p": padding})
        )
        data = json.loads((await ws.receive(timeout=20)).data)
        _check_error(data)
        assert data["code"] == "TOO_LARGE"
        await ws.send_str(json.dumps({"v": 1, "type": "heartbeat", "transaction": "ok"}))
        assert (await _reply(ws, "ok"))["type"] == "result"  # the socket is still alive
        await ws.close()
        for size in (WS_MAX_FRAME_BYTES + 1, 8 * 1024 * 1024):
            ws = await http.ws_connect(court.ws_url, autoclose=False)
            try:
                await ws.send_str("y" * size)
            except ConnectionError:
                # The server closed the socket while the 8 MB were still on their way: the
                # sender sees a reset instead of the close frame, which is the point.
                assert size > WS_MAX_FRAME_BYTES + 1
                await ws.close()
                continue
            async with asyncio.timeout(20):
                while (frame := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                    pass
            assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), frame
            assert ws.close_code in (1008, 1009), (size, ws.close_code)
            await ws.close()
        ws = await http.ws_connect(court.ws_url, autoclose=False)  # and new sockets still open
        await ws.send_str(json.dumps({"v": 1, "type": "heartbeat", "transaction": "again"}))
        assert (await _reply(ws, "again"))["type"] == "result"
        await ws.close()


_BAD_SDP = [
    "",
    "v=0",
    "not an sdp at all\r\n" * 50,
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
]
_BAD_CANDIDATES = [
    "a=candidate:garbage",
    "a=candidate:1 1 UDP 99999999999999999999 999.1.1.1 70000 typ host",
    "a=candidate:1 1 UDP 1 ../../etc/passwd 1 typ relay raddr x rport y",
    "a=candidate:" + "9" * 2000,
    "a=end-of-candidates\r\na=candidate:1 1 TCP 1 127.0.0.1 -1 typ srflx",
]


async def _real_offer() -> str:
    pc = RTCPeerConnection()
    try:
        pc.addTrack(AudioStreamTrack())
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


async def _malformed_sdp(court: Court) -> None:
    """Broken offers (and good offers with broken ICE candidates) are refused with BAD_FIELD
    or answered; an answer nobody asked for is WRONG_STATE; the worker survives all of it."""
    good = await _real_offer()
    lines = good.split("\r\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("a=mid:"))
    broken = [*_BAD_SDP, *("\r\n".join([*lines[:at], bad, *lines[at:]]) for bad in _BAD_CANDIDATES)]
    async with aiohttp.ClientSession(
        cookies=await court.staff("clerk"), cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:
        ws = await http.ws_connect(court.ws_url, autoclose=False)
        await ws.send_str(
            json.dumps(
                {
                    "v": 1,
                    "type": "join",
                    "transaction": "j",
                    "hearing_id": court.world.own.hearing_id,
                }
            )
        )
        assert (await _reply(ws, "j"))["type"] == "welcome"
        for i, sdp in enumerate(broken):
            await asyncio.sleep(0.1)  # pacing under the per-connection rate
            await ws.send_str(
                json.dumps({"v": 1, "type": "offer", "transaction": f"o{i}", "sdp": sdp})
            )
            reply = await _reply(ws, f"o{i}")
            if reply["type"] == "error":
                _check_error(reply)
                assert reply["code"] in ("BAD_FIELD", "WRONG_STATE", "MISSING_FIELD"), reply
        await ws.send_str(json.dumps({"v": 1, "type": "answer", "transaction": "a", "sdp": "v=0"}))
        reply = await _reply(ws, "a")
        _check_error(reply)
        assert reply["code"] == "WRONG_STATE"
        await ws.close()


_TRAVERSAL = [
    "..",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "....//....//etc//passwd",
    "%00",
    "a%00b",
    "%2Fetc%2Fpasswd",
    "..%5C..%5Cwindows",
    "' OR 1=1 --",
    "x" * 3000,
    "%E4%B8%AD%E6%96%87",
    "%ff%fe",
]
_PARAM = re.compile(r"\{(\w+)\}")


def _paths_with(path: str, value: str, real: dict[str, str]) -> list[str]:
    """`path` with `value` in one parameter at a time, the others real ids of court A where
    there are (so the hostile value reaches the deepest check) or valid-looking ones."""
    names = _PARAM.findall(path)
    out = []
    for hostile in names:
        filled = path
        for name in names:
            fill = value if name == hostile else real.get(name, "0" * 32)
            filled = filled.replace("{" + name + "}", fill)
        out.append(filled)
    return out


async def _rest(court: Court, cookies: dict[str, str]) -> dict[int, int]:
    """Every endpoint, every path parameter, every hostile value; then wrong-typed and huge
    bodies. Never a 5xx, always the documented error body; nothing written outside the data
    directory."""
    statuses: dict[int, int] = {}
    headers = {"X-CSRF-Token": cookies.get("sc_csrf", "")}
    w = court.world.own
    real = {
        "hearing_id": w.hearing_id,
        "court_id": w.court_id,
        "case_id": w.case_id,
        "station_id": w.station_id,
        "participant_id": w.plaintiff_id,
        "invitation_id": w.invitation_id,
    }
    huge = b'{"a": "' + b"z" * (2 * 1024 * 1024) + b'"}'
    async with aiohttp.ClientSession(
        cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:

        async def call(method: str, path: str, **kwargs: Any) -> None:
            sent = {**headers, **kwargs.pop("headers", {})}
            async with http.request(
                method, court.base + path, headers=sent, allow_redirects=False, **kwargs
            ) as resp:
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                assert resp.status < 500, (method, path, resp.status, await resp.text())
                if resp.status >= 400:
                    body = await resp.json(content_type=None)
                    assert body["type"] == "error", (method, path, body)
                    assert body["code"] in {c.value for c in ErrorCode}, body
                    assert isinstance(body["message"], str), body

        for endpoint in ENDPOINTS:
            if endpoint.path == "/api/auth/logout":
                continue  # it would end the session the other calls ride on
            for value in _TRAVERSAL:
                for path in _paths_with(endpoint.path, value, real):
                    await call(endpoint.method, path, data=b"{}")
            if endpoint.method in ("POST", "PUT"):
                concrete = _paths_with(endpoint.path, "0" * 32, real)
                path = concrete[0] if concrete else endpoint.path
                for body in (
                    b"[]",
                    b'"x"',
                    b"1e999",
                    b'{"a":',
                    json.dumps(_WRONG).encode(),
                    b"\xff",
                ):
                    await call(
                        endpoint.method,
                        path,
                        data=body,
                        headers={"Content-Type": "application/json"},
                    )
                await call(
                    endpoint.method,
                    path,
                    data=io.BytesIO(huge),
                    headers={"Content-Type": "application/json"},
                )
    return statuses


_WRONG = {
    "username": 1,
    "password": [],
    "token": {},
    "state": 7,
    "reason": None,
    "hearing_id": True,
    "station_id": ["x"],
    "key": 3.5,
    "role": {"$ne": 1},
    "case_id": "../../x",
    "at": "yesterday",
}


async def _floods(court: Court) -> None:
    """Per connection: a burst past the bucket is answered RATE_LIMITED, then closed as a flood
    (PROTOCOL_VIOLATION, 1008). Per address: sockets past the cap are refused with HTTP 429 and
    the RATE_LIMITED error body; messages past the address's shared budget, spread over sockets
    each under its own limit, are answered RATE_LIMITED."""
    cookies = await court.staff("clerk")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookies=cookies, cookie_jar=jar) as http:
        ws = await http.ws_connect(court.ws_url, autoclose=False)
        for i in range(RATE_BURST + RATE_STRIKES + 5):
            await ws.send_str(f'{{"v":1,"type":"heartbeat","transaction":"f{i}"}}')
        codes: list[str] = []
        closed = None
        async with asyncio.timeout(20):
            while (frame := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                data = json.loads(frame.data)
                if data["type"] == "error":
                    codes.append(data["code"])
                elif data["type"] == "closed":
                    closed = data
        assert codes.count("RATE_LIMITED") >= RATE_STRIKES
        assert closed is not None
        assert closed["reason"] == "PROTOCOL_VIOLATION", closed
        assert ws.close_code == 1008
        await ws.close()

        # Per address: the other hearing holds a few sockets from this address already.
        sockets = []
        refused = None
        for _ in range(MAX_SOCKETS + 1):
            try:
                sockets.append(await http.ws_connect(court.ws_url, autoclose=False))
            except aiohttp.WSServerHandshakeError as exc:
                refused = exc
                break
        assert refused is not None
        assert refused.status == 429, refused
        async with http.get(
            court.ws_url.replace("ws", "http", 1),
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        ) as resp:
            assert resp.status == 429
            body = await resp.json()
            assert (body["type"], body["code"]) == ("error", "RATE_LIMITED")
        for ws in sockets[10:]:
            await ws.close()
        sockets = sockets[:10]  # 10 x 35 messages: each under its own bucket, past the address's
        for ws in sockets:
            for i in range(35):
                await ws.send_str(f'{{"v":1,"type":"heartbeat","transaction":"p{i}"}}')
        limited = 0
        for ws in sockets:
            for _ in range(35):
                data = json.loads((await ws.receive(timeout=20)).data)
                limited += data.get("code") == "RATE_LIMITED"
            await ws.close()
        assert limited > 0


async def test_hostile_input_is_refused_clearly_and_spares_another_hearing(
    court: Court, watched: WatchedHearing
) -> None:
    before = await watched.packets_per_s(2.0)
    assert before > 20, f"the watched hearing is not flowing ({before:.0f} packets/s)"
    samples = _drawn(_garbage, 120)
    async with RateDuring(watched) as during:
        codes = await _fuzz_socket(court, samples)
        await _huge_messages(court)
        await _malformed_sdp(court)
        statuses = await _rest(court, await court.staff("admin"))
        await _floods(court)
    after = await watched.packets_per_s(2.0)
    print(
        f"watched hearing packets/s: before {before:.0f}, during {during.rates}, after {after:.0f}"
    )
    print(f"fuzz error codes: {codes}; REST statuses: {statuses}")
    # The server is up and answers; the other hearing's media never dropped.
    async with aiohttp.ClientSession() as http, http.get(court.base + "/api/health") as resp:
        assert resp.status == 200
    assert len(codes) >= 4  # the fuzz reached several distinct refusals
    # Over the barrage as a whole the rate holds, and no second went without media. (Single
    # seconds swing on a busy machine: this process hosts the server and the subscriber, so a
    # second it spends on the barrage delays the subscriber's reads to the next one, which
    # then counts them twice; the total is what was delivered.)
    assert statistics.mean(during.rates) >= KEEPS * before, (before, during.rates)
    assert min(during.rates) > 0, (before, during.rates)
    assert after >= KEEPS * before, (before, after)
    assert await watched.recorded_frames() > 0
