"""The browser mirror (server/web/static/js/signaling.js) cannot drift from the Python
protocol: its lists are parsed and compared, and the module itself is run under Node against
a Python WebSocket server whose codec validates every message the JS client sends."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from signaling import messages as m
from signaling.codec import decode, encode, error_for
from signaling.enums import HearingRole, HearingState, ParticipantState, Sender
from signaling.errors import ErrorCode, SignalingError
from signaling.limits import HEARTBEAT_MISSES, MAX_MESSAGE_BYTES, PROTOCOL_VERSION
from signaling.reasons import CloseReason

JS = Path(__file__).resolve().parents[2] / "server" / "web" / "static" / "js" / "signaling.js"


def js_list(name: str) -> list[str]:
    source = JS.read_text(encoding="utf-8")
    match = re.search(rf"export const {name} = Object\.freeze\(\[(.*?)\]\);", source, re.S)
    assert match, f"{name} not found in {JS}"
    body = re.sub(r"//[^\n]*", "", match.group(1))
    return re.findall(r'"([^"]+)"', body)


def js_number(name: str) -> int:
    match = re.search(rf"export const {name} = (\d+);", JS.read_text(encoding="utf-8"))
    assert match, f"{name} not found in {JS}"
    return int(match.group(1))


def test_message_types_match() -> None:
    client, server = js_list("CLIENT_TYPES"), js_list("SERVER_TYPES")
    assert len(client) == len(set(client))
    assert len(server) == len(set(server))
    assert set(client) == m.CLIENT_TYPES
    assert set(server) == m.SERVER_TYPES
    assert set(js_list("REPLY_TYPES")) == {
        m.type_name(c) for c in m.ALL_MESSAGES if issubclass(c, m.Reply | m.Error)
    }


def test_vocabularies_and_limits_match() -> None:
    assert js_list("ERROR_CODES") == [c.value for c in ErrorCode]
    assert js_list("CLOSE_REASONS") == [r.value for r in CloseReason]
    assert js_number("PROTOCOL_VERSION") == PROTOCOL_VERSION
    assert js_number("MAX_MESSAGE_BYTES") == MAX_MESSAGE_BYTES
    assert js_number("HEARTBEAT_MISSES") == HEARTBEAT_MISSES


NODE_SCRIPT = """
import { SignalingClient, RequestError, ConnectionClosed } from %(module)s;
const out = {};
const seen = [];
const client = new SignalingClient(process.argv[2], {
  onEvent: (message) => seen.push(message.type),
});
const on = (type) => new Promise((resolve) => client.addEventListener(type, (e) => resolve(e)));
// The server answers the first heartbeat with a `muted` event: proof that a join sent with
// request("join") (as room.js does) starts the heartbeat.
const heartbeatSeen = on("muted");
await client.connect();
const welcome = await client.request("join", { hearing_id: "H1", client_kind: "browser" });
out.participant = welcome.participant_id;
await heartbeatSeen;
try {
  await client.request("mute", { participant_id: "nobody" });
  out.mute = "resolved";
} catch (err) {
  out.mute = err instanceof RequestError ? err.code : String(err);
}
const roster = on("roster").then((e) => e.detail);
const offer = on("offer").then((e) => e.detail);
const result = await client.request("lock_room", { room_id: "main", locked: true });
out.lock = result.type;
out.roster = (await roster).participants.length;
client.reply(await offer, { type: "answer", sdp: "v=0\\r\\n" });
const closedEvent = on("closed").then((e) => e.detail.reason);
try {
  await client.request("spotlight", { participant_id: null });
  out.spotlight = "resolved";
} catch (err) {
  out.spotlight = err instanceof ConnectionClosed ? err.reason : String(err);
}
out.closedEvent = await closedEvent;
out.closeReason = await client.waitClosed();
out.seen = seen;
console.log(JSON.stringify(out));
"""


def node_has_websocket() -> bool:
    """Node >= 20.10 has a WebSocket client behind --experimental-websocket (22+: default)."""
    node = shutil.which("node")
    if node is None:
        return False
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    match = re.match(r"v(\d+)\.(\d+)", version.stdout.strip())
    return match is not None and (int(match[1]), int(match[2])) >= (20, 10)


@pytest.mark.skipif(not node_has_websocket(), reason="needs Node.js >= 20.10 (WebSocket client)")
async def test_js_client_speaks_the_protocol(aiohttp_server: AiohttpServer, tmp_path: Path) -> None:
    received: list[str] = []
    rejected: list[str] = []
    answers: list[str] = []

    async def endpoint(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for frame in ws:
            try:
                msg = decode(frame.data, sender=Sender.CLIENT)
            except SignalingError as exc:
                rejected.append(f"{exc.code}: {exc.message} in {frame.data}")
                await ws.send_str(error_for(exc))
                continue
            received.append(m.type_name(type(msg)))
            if isinstance(msg, m.Heartbeat):
                await ws.send_str(encode(m.Result(transaction=msg.transaction)))
                if received.count("heartbeat") == 1:
                    await ws.send_str(encode(m.Muted(muted=True)))
            elif isinstance(msg, m.Join):
                await ws.send_str(
                    encode(
                        m.Welcome(
                            transaction=msg.transaction,
                            hearing_id=msg.hearing_id,
                            participant_id="P1",
                            display_name="Party",
                            role=HearingRole.DEFENDANT,
                            state=ParticipantState.WAITING,
                            hearing_state=HearingState.OPENED,
                            heartbeat_interval_s=1,
                        )
                    )
                )
            elif isinstance(msg, m.Mute):
                error = m.Error(code=ErrorCode.NOT_FOUND, message="no", transaction=msg.transaction)
                await ws.send_str(encode(error))
            elif isinstance(msg, m.LockRoom):
                await ws.send_str(encode(m.Roster(participants=[])))
                await ws.send_str(encode(m.Result(transaction=msg.transaction)))
                await ws.send_str(encode(m.Offer(transaction="srv-1", sdp="v=0\r\n")))
            elif isinstance(msg, m.Answer):
                answers.append(msg.transaction)
            elif isinstance(msg, m.Spotlight):
                await ws.send_str(encode(m.Closed(reason=CloseReason.DUPLICATE_SESSION)))
                await ws.close(message=b"DUPLICATE_SESSION")
        return ws

    out = await run_node(aiohttp_server, tmp_path, endpoint, NODE_SCRIPT)
    assert rejected == []
    assert received[:2] == ["join", "heartbeat"]
    assert [t for t in received if t != "heartbeat"] == [
        "join",
        "mute",
        "lock_room",
        "answer",
        "spotlight",
    ]
    assert answers == ["srv-1"]
    assert out == {
        "participant": "P1",
        "mute": "NOT_FOUND",
        "lock": "result",
        "roster": 0,
        "spotlight": "DUPLICATE_SESSION",
        "closedEvent": "DUPLICATE_SESSION",
        "closeReason": "DUPLICATE_SESSION",
        "seen": ["muted", "roster", "offer", "closed"],
    }


async def run_node(
    aiohttp_server: AiohttpServer,
    tmp_path: Path,
    endpoint: Callable[[web.Request], Awaitable[web.StreamResponse]],
    script: str,
) -> Any:
    """Serve `endpoint` at /ws on loopback, run `script` (signaling.js as %(module)s) under
    Node against it, and return the JSON of its last line of output."""
    app = web.Application()
    app.router.add_get("/ws", endpoint)
    server = await aiohttp_server(app, host="127.0.0.1")
    url = str(server.make_url("/ws")).replace("http://", "ws://")
    path = tmp_path / "check.mjs"
    path.write_text(script % {"module": json.dumps(JS.as_uri())})
    proc = await asyncio.create_subprocess_exec(
        "node",
        "--experimental-websocket",
        "--no-warnings",
        str(path),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    return json.loads(stdout.decode().strip().splitlines()[-1])


NODE_1009 = """
import { SignalingClient } from %(module)s;
const client = new SignalingClient(process.argv[2]);
await client.connect();
client.request("join", { hearing_id: "H1", client_kind: "browser" }).catch(() => {});
console.log(JSON.stringify({ closeReason: await client.waitClosed() }));
"""


@pytest.mark.skipif(not node_has_websocket(), reason="needs Node.js >= 20.10 (WebSocket client)")
async def test_js_client_reads_a_1009_close_as_protocol_violation(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """The server's close for a frame over WS_MAX_FRAME_BYTES carries no `closed` message."""

    async def endpoint(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _frame in ws:
            await ws.close(code=1009)
        return ws

    out = await run_node(aiohttp_server, tmp_path, endpoint, NODE_1009)
    assert out == {"closeReason": CloseReason.PROTOCOL_VIOLATION.value}


NODE_STAYING = """
import { StayingSession, backoffDelay } from %(module)s;
const out = { statuses: [], welcomes: [], events: [] };
out.ceilings = [0, 1, 2, 3, 4, 8].map((a) => backoffDelay(a, { random: () => 1 }));
out.floors = [0, 1, 2, 3, 4, 8].map((a) => backoffDelay(a, { random: () => 0 }));
const ended = new Promise((resolve) => {
  const session = new StayingSession(process.argv[2], "H1", {
    heartbeatIntervalMs: 1000,
    backoff: { baseMs: 50, capMs: 100 },
    onWelcome: (welcome) => out.welcomes.push(welcome.participant_id),
    onEvent: (message) => out.events.push(message.type),
    onStatus: (status) => out.statuses.push(status),
    onEnd: ({ reason }) => resolve(reason),
  });
  session.start();
});
out.end = await ended;
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(not node_has_websocket(), reason="needs Node.js >= 20.10 (WebSocket client)")
async def test_js_staying_session_rejoins_after_a_drop_and_stops_when_removed(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """signaling.js's StayingSession: the first connection drops without a goodbye (the
    network), so it joins again by itself; the second is closed by the court (REMOVED), so it
    stops and says why. Its back-off grows, is capped, and keeps a random half."""
    joins: list[int] = []

    async def endpoint(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for frame in ws:
            msg = decode(frame.data, sender=Sender.CLIENT)
            if isinstance(msg, m.Join):
                joins.append(len(joins))
                welcome = m.Welcome(
                    transaction=msg.transaction,
                    hearing_id=msg.hearing_id,
                    participant_id=f"P{len(joins)}",
                    display_name="Party",
                    role=HearingRole.DEFENDANT,
                    state=ParticipantState.IN_HEARING,
                    hearing_state=HearingState.IN_SESSION,
                    heartbeat_interval_s=10,
                )
                await ws.send_str(encode(welcome))
                if len(joins) == 1:
                    await ws.close(code=1011)  # no `closed`, no reason: the network
                else:
                    await ws.send_str(encode(m.Closed(reason=CloseReason.REMOVED)))
                    await ws.close(message=b"REMOVED")
        return ws

    out = await run_node(aiohttp_server, tmp_path, endpoint, NODE_STAYING)
    assert joins == [0, 1]
    assert out["welcomes"] == ["P1", "P2"]
    assert out["statuses"] == ["connecting", "connected", "reconnecting", "connected"]
    assert out["end"] == "REMOVED"
    assert out["events"] == ["closed"]  # only the final one; the drop is not an end
    assert out["ceilings"] == [500, 1000, 2000, 4000, 4000, 4000]
    assert out["floors"] == [250, 500, 1000, 2000, 2000, 2000]


NODE_REFUSED = """
import { StayingSession } from %(module)s;
const out = { asked: 0, statuses: [] };
out.end = await new Promise((resolve) => {
  const session = new StayingSession(process.argv[2], "H1", {
    backoff: { baseMs: 10, capMs: 20 },
    checkEvery: 3,
    stillAuthorized: async () => { out.asked += 1; return false; },
    onStatus: (status) => out.statuses.push(status),
    onEnd: ({ reason }) => resolve(reason),
  });
  session.start().catch(() => {});
});
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(not node_has_websocket(), reason="needs Node.js >= 20.10 (WebSocket client)")
async def test_js_staying_session_stops_when_the_session_is_gone(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """Upgrades refused (401: the session ended while the page was offline) look like a dead
    network to a browser; after a few, StayingSession asks whether the session still exists
    and, told no, ends with SESSION_REVOKED instead of trying for ever."""
    attempts: list[int] = []

    async def endpoint(request: web.Request) -> web.StreamResponse:
        attempts.append(1)
        raise web.HTTPUnauthorized()

    out = await run_node(aiohttp_server, tmp_path, endpoint, NODE_REFUSED)
    assert out == {"asked": 1, "statuses": ["connecting"], "end": "SESSION_REVOKED"}
    assert len(attempts) == 3
