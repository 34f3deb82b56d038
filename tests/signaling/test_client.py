"""SignalingClient against a tiny in-test aiohttp WebSocket server on 127.0.0.1.

The server here is a script, not the real hearing service: it speaks the protocol through the
real codec and does what each test needs (reply, refuse, stay silent, push, close), so the
client's matching, errors, events, close reasons and timeouts are tested over real sockets.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from signaling import messages as m
from signaling.client import SignalingClient
from signaling.codec import decode, encode, error_for
from signaling.enums import ClientKind, HearingRole, HearingState, ParticipantState, Sender
from signaling.errors import (
    ConnectionClosed,
    ErrorCode,
    RequestError,
    RequestTimeout,
    SignalingError,
)
from signaling.reasons import CloseReason
from tests.signaling.samples import HID, PID, SAMPLES

COOKIE = {"sc_session": "s3cret"}
DEADLINE = 5.0

Handler = Callable[[web.WebSocketResponse, m.Message], Awaitable[None]]


@dataclass
class Script:
    """What the fake server does with each request type; records what it received."""

    heartbeat_interval_s: int = 10
    handlers: dict[str, Handler] = field(default_factory=dict)
    received: list[m.Message] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    raw_errors: list[str] = field(default_factory=list)
    got: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, type_: str) -> m.Message:
        async with asyncio.timeout(DEADLINE):
            while True:
                for message in self.received:
                    if m.type_name(type(message)) == type_:
                        return message
                self.got.clear()
                await self.got.wait()


async def send(ws: web.WebSocketResponse, message: m.Message) -> None:
    await ws.send_str(encode(message))


def welcome_for(join: m.Join, interval: int) -> m.Welcome:
    return m.Welcome(
        transaction=join.transaction,
        hearing_id=join.hearing_id,
        participant_id=PID,
        display_name="Station 1",
        role=HearingRole.STATION,
        state=ParticipantState.WAITING,
        hearing_state=HearingState.OPENED,
        heartbeat_interval_s=interval,
    )


@pytest.fixture
async def script() -> Script:
    return Script()


@pytest.fixture
async def url(aiohttp_server: AiohttpServer, script: Script) -> str:
    async def endpoint(request: web.Request) -> web.WebSocketResponse:
        if request.cookies.get("sc_session") != COOKIE["sc_session"]:
            raise web.HTTPUnauthorized()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        script.sockets.append(ws)
        async for frame in ws:
            try:
                message = decode(frame.data, sender=Sender.CLIENT)
            except SignalingError as exc:
                script.raw_errors.append(exc.code)
                await ws.send_str(error_for(exc))
                continue
            script.received.append(message)
            script.got.set()
            handler = script.handlers.get(m.type_name(type(message)))
            if handler is not None:
                await handler(ws, message)
            elif isinstance(message, m.Join):
                await send(ws, welcome_for(message, script.heartbeat_interval_s))
            elif isinstance(message, m.Request):
                await send(ws, m.Result(transaction=message.transaction))
        return ws

    app = web.Application()
    app.router.add_get("/ws", endpoint)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("/ws")).replace("http://", "ws://")


async def test_join_and_request_reply_matching(url: str, script: Script) -> None:
    background: set[asyncio.Task[None]] = set()

    async def answer_both(ws: web.WebSocketResponse, mute: m.Message) -> None:
        # Answer the *later* request first: replies are matched by transaction, not order.
        consult_msg = await script.wait_for("open_consultation")
        assert isinstance(consult_msg, m.OpenConsultation)
        await send(ws, m.Result(transaction=consult_msg.transaction, data={"room_id": "c-9"}))
        assert isinstance(mute, m.Mute)
        await send(ws, m.Result(transaction=mute.transaction, data={"muted": PID}))

    async def slow_mute(ws: web.WebSocketResponse, msg: m.Message) -> None:
        background.add(asyncio.create_task(answer_both(ws, msg)))

    async def no_reply(ws: web.WebSocketResponse, msg: m.Message) -> None:
        return None

    script.handlers["mute"] = slow_mute
    script.handlers["open_consultation"] = no_reply
    async with SignalingClient(url, cookies=COOKIE, heartbeat=False) as client:
        welcome = await client.join(HID, client_kind=ClientKind.STATION, user_agent="test")
        assert welcome.participant_id == PID
        assert welcome.hearing_id == HID
        assert client.welcome == welcome
        join = await script.wait_for("join")
        assert isinstance(join, m.Join)
        assert join.client_kind == ClientKind.STATION
        assert join.transaction == welcome.transaction

        mute_task = asyncio.create_task(client.request(m.Mute(participant_id=PID)))
        await script.wait_for("mute")
        consult = await client.request(m.OpenConsultation(participant_ids=[PID]))
        mute = await mute_task
        assert isinstance(consult, m.Result)
        assert consult.data == {"room_id": "c-9"}
        assert isinstance(mute, m.Result)
        assert mute.data == {"muted": PID}
        assert script.raw_errors == []
    await asyncio.gather(*background)


async def test_error_reply_raises_typed_exception(url: str, script: Script) -> None:
    async def refuse(ws: web.WebSocketResponse, msg: m.Message) -> None:
        assert isinstance(msg, m.Request)
        await send(
            ws,
            m.Error(code=ErrorCode.FORBIDDEN, message="judges only", transaction=msg.transaction),
        )

    script.handlers["mute_all"] = refuse
    async with SignalingClient(url, cookies=COOKIE, heartbeat=False) as client:
        await client.join(HID)
        request = m.MuteAll()
        with pytest.raises(RequestError) as info:
            await client.request(request)
        assert info.value.code == ErrorCode.FORBIDDEN
        assert info.value.message == "judges only"
        assert info.value.transaction == request.transaction
        # The connection stays usable after a refused request.
        assert isinstance(await client.request(m.Heartbeat()), m.Result)


async def test_codec_rejection_by_the_server_fails_the_request(url: str, script: Script) -> None:
    # A request the server's codec refuses comes back as an error echoing the transaction.
    async with SignalingClient(url, cookies=COOKIE, heartbeat=False) as client:
        ws = client._ws
        assert ws is not None
        await ws.send_str(json.dumps({"v": 1, "type": "mute", "transaction": "raw-1"}))
        event = await asyncio.wait_for(client.next_event(), DEADLINE)
        # Not our pending request (sent raw), so it surfaces as an event.
        assert isinstance(event, m.Error)
        assert event.code == ErrorCode.MISSING_FIELD
        assert event.transaction == "raw-1"


async def test_events_are_delivered_in_order(url: str, script: Script) -> None:
    pushes = [s for s in SAMPLES if isinstance(s, m.Event) and not isinstance(s, m.Closed)]

    async def push_all(ws: web.WebSocketResponse, msg: m.Message) -> None:
        assert isinstance(msg, m.Request)
        for event in pushes:
            await send(ws, event)
        await send(ws, m.Result(transaction=msg.transaction))

    script.handlers["lock_room"] = push_all
    async with SignalingClient(url, cookies=COOKIE, heartbeat=False) as client:
        await client.join(HID)
        await client.request(m.LockRoom(locked=True))
        received = [await asyncio.wait_for(client.next_event(), DEADLINE) for _ in pushes]
        assert received == pushes
        assert client.dropped_events == 0


async def test_server_offer_is_an_event_the_client_answers(url: str, script: Script) -> None:
    answered = asyncio.Event()

    async def on_answer(ws: web.WebSocketResponse, msg: m.Message) -> None:
        assert isinstance(msg, m.Answer)
        assert msg.transaction == "srv-1"
        answered.set()

    async def renegotiate(ws: web.WebSocketResponse, msg: m.Message) -> None:
        assert isinstance(msg, m.Request)
        await send(ws, m.Result(transaction=msg.transaction))
        await send(ws, m.Offer(transaction="srv-1", sdp="v=0\r\n"))

    script.handlers["answer"] = on_answer
    script.handlers["consent"] = renegotiate
    async with SignalingClient(url, cookies=COOKIE, heartbeat=False) as client:
        await client.join(HID)
        await client.request(m.Consent(accepted_rules=["r1"]))
        offer = await asyncio.wait_for(client.next_event(), DEADLINE)
        assert isinstance(offer, m.Offer)
        await client.send(m.Answer(transaction=offer.transaction, sdp="v=0\r\n"))
        await asyncio.wait_for(answered.wait(), DEADLINE)


async def test_duplicate_session_close_surfaces_with_reason(url: str, script: Script) -> None:
    async def replaced(ws: web.WebSocketResponse, msg: m.Message) -> None:
        # The server does not answer this request: the connection is replaced meanwhile.
        await send(ws, m.Closed(reason=CloseReason.DUPLICATE_SESSION, message="elsewhere"))
        await ws.close(message=CloseReason.DUPLICATE_SESSION.value.encode())

    script.handlers["spotlight"] = replaced
    client = SignalingClient(url, cookies=COOKIE, heartbeat=False)
    await client.connect()
    try:
        await client.join(HID)
        with pytest.raises(ConnectionClosed) as info:
            await client.request(m.Spotlight(participant_id=None))
        assert info.value.reason == CloseReason.DUPLICATE_SESSION
        assert info.value.code == ErrorCode.CLOSED
        assert await asyncio.wait_for(client.wait_closed(), DEADLINE) == (
            CloseReason.DUPLICATE_SESSION
        )
        events = [e async for e in client.events()]
        assert events == [m.Closed(reason=CloseReason.DUPLICATE_SESSION, message="elsewhere")]
        with pytest.raises(ConnectionClosed):
            await client.send(m.Heartbeat())
    finally:
        await client.close()
    assert client.close_reason == CloseReason.DUPLICATE_SESSION


async def test_close_frame_reason_without_closed_message(url: str, script: Script) -> None:
    async def shutdown(ws: web.WebSocketResponse, msg: m.Message) -> None:
        await ws.close(message=CloseReason.SERVER_SHUTDOWN.value.encode())

    script.handlers["heartbeat"] = shutdown
    async with SignalingClient(url, cookies=COOKIE, heartbeat=False) as client:
        with pytest.raises(ConnectionClosed) as info:
            await client.request(m.Heartbeat())
        assert info.value.reason == CloseReason.SERVER_SHUTDOWN


async def test_dropped_socket_is_network_lost(url: str, script: Script) -> None:
    async def drop(ws: web.WebSocketResponse, msg: m.Message) -> None:
        # No close frame: the TCP connection just goes away, as when a line is cut.
        transport = ws._req.transport if ws._req is not None else None
        assert transport is not None
        transport.abort()

    script.handlers["heartbeat"] = drop
    async with SignalingClient(url, cookies=COOKIE, heartbeat=False) as client:
        with pytest.raises(ConnectionClosed) as info:
            await client.request(m.Heartbeat())
        assert info.value.reason == CloseReason.NETWORK_LOST
        assert client.close_reason == CloseReason.NETWORK_LOST


async def test_request_timeout(url: str, script: Script) -> None:
    async def silent(ws: web.WebSocketResponse, msg: m.Message) -> None:
        return None

    script.handlers["remove"] = silent
    async with SignalingClient(url, cookies=COOKIE, heartbeat=False) as client:
        request = m.Remove(participant_id=PID)
        with pytest.raises(RequestTimeout) as info:
            await client.request(request, reply_timeout=0.2)
        assert info.value.code == ErrorCode.TIMEOUT
        assert info.value.transaction == request.transaction
        # A late reply after the timeout is dropped, not mistaken for another request's reply
        # and not delivered as an event.
        ws = script.sockets[-1]
        await send(ws, m.Result(transaction=request.transaction))
        assert isinstance(await client.request(m.Heartbeat()), m.Result)
        assert client.late_replies == 1
        assert not client._events


async def test_heartbeat_is_sent_and_its_loss_closes(url: str, script: Script) -> None:
    script.heartbeat_interval_s = 1
    beats = 0

    async def ignore_second(ws: web.WebSocketResponse, msg: m.Message) -> None:
        nonlocal beats
        beats += 1
        if beats == 1:
            assert isinstance(msg, m.Heartbeat)
            await send(ws, m.Result(transaction=msg.transaction))

    script.handlers["heartbeat"] = ignore_second
    async with SignalingClient(url, cookies=COOKIE, heartbeat_misses=1) as client:
        # A join sent as a plain request starts the heartbeat too.
        await client.request(m.Join(hearing_id=HID))
        assert await asyncio.wait_for(client.wait_closed(), DEADLINE) == (
            CloseReason.HEARTBEAT_LOST
        )
    assert beats == 2


async def test_unauthorized_connect(url: str) -> None:
    client = SignalingClient(url, cookies={"sc_session": "wrong"})
    with pytest.raises(SignalingError) as info:
        await client.connect()
    assert info.value.code == ErrorCode.UNAUTHORIZED


async def test_unreachable_server() -> None:
    client = SignalingClient("ws://127.0.0.1:9/ws", connect_timeout=2)
    with pytest.raises(ConnectionClosed) as info:
        await client.connect()
    assert info.value.reason == CloseReason.NETWORK_LOST


async def test_event_queue_is_bounded(url: str, script: Script) -> None:
    async def flood(ws: web.WebSocketResponse, msg: m.Message) -> None:
        assert isinstance(msg, m.Request)
        for i in range(10):
            await send(ws, m.UnmuteRequested(participant_id=f"p{i}"))
        await send(ws, m.Result(transaction=msg.transaction))

    script.handlers["mute_all"] = flood
    async with SignalingClient(url, cookies=COOKIE, heartbeat=False, max_events=3) as client:
        await client.request(m.MuteAll())
        assert client.dropped_events == 7
        got = [await asyncio.wait_for(client.next_event(), DEADLINE) for _ in range(3)]
        assert [e.participant_id for e in got if isinstance(e, m.UnmuteRequested)] == [
            "p7",
            "p8",
            "p9",
        ]


async def test_leave_closes_cleanly(url: str, script: Script) -> None:
    async with SignalingClient(url, cookies=COOKIE, heartbeat=False) as client:
        await client.join(HID)
        await client.leave()
        assert client.closed
        assert client.close_reason == CloseReason.CLIENT_LEFT
        await script.wait_for("leave")
