"""This node in a cluster, as the web layer sees it (docs/deployment.md, "A cluster").

Only installed when `cluster.redis_url` is set (`add_cluster`). A participant may reach any
node: the signaling socket's first frame (`join`) names the hearing; the node asks
`ClusterNode.owner` where the hearing is placed (placing it on the least-loaded live node the
first time) and either serves the socket itself or relays it, frame by frame, to the hearing's
node over a WebSocket to that node's internal URL, carrying the client's cookie (the session
lives in the shared database, so the hearing's node authenticates it itself). Every connection
of a hearing therefore ends on the hearing's node, where its rules run: events reach each of
them whichever node the participant came in by. Media (ICE) goes to the hearing's node directly
(its SFU offers its own addresses). What other nodes must act on travels on the bus: ended
sessions (revocation, logout) and hearing states changed over REST on another node.

When the hearing's node dies, each relaying node closes its client with `closed`
SERVER_SHUTDOWN: the clients rejoin (as after a restart), and the next join places the hearing
on a live node once the dead node's placement has expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from server.auth.principals import Principal
from server.cluster.limits import SharedRateLimiter
from server.cluster.node import ClusterNode, NoNodeError, prepare_client
from server.config import Config
from server.enums import HearingState
from server.errors import CourtError
from server.ids import HearingId, ParticipantId, parse_id
from server.web.appkeys import AUTH, CONFIG, CONNECTIONS, COURT, MEDIA, ROOMS, SIGNALING_ROUTE
from signaling import messages as m
from signaling.codec import decode, encode
from signaling.enums import Sender
from signaling.errors import ErrorCode, SignalingError
from signaling.limits import HEARTBEAT_MISSES, WS_MAX_FRAME_BYTES
from signaling.reasons import CloseReason

log = logging.getLogger(__name__)

CLUSTER = web.AppKey("cluster", ClusterNode)
RELAY_HTTP = web.AppKey("cluster_http", aiohttp.ClientSession)
# Set on a socket a node relays, so that the hearing's node never relays it again.
VIA_HEADER = "X-Shared-Court-Via"
GONE = "the hearing's server went away; join again"


def node_identity(config: Config) -> tuple[str, str]:
    """This node's id and internal URL (configured, else host name:port and http://host:port)."""
    cluster, server = config.cluster, config.server
    node_id = cluster.node_id or f"{socket.gethostname()}:{server.port}"
    url = cluster.internal_url or f"http://{server.host}:{server.port}"
    return node_id, url


def add_cluster(app: web.Application) -> None:
    """Make this app a node of the configured cluster (call only with `cluster.redis_url`)."""
    app.cleanup_ctx.append(_cluster)


async def _cluster(app: web.Application) -> AsyncIterator[None]:
    from redis.asyncio import Redis

    config = app[CONFIG]
    assert config.cluster.redis_url is not None
    node_id, url = node_identity(config)
    connections, rooms, media = app[CONNECTIONS], app[ROOMS], app[MEDIA]

    def pids() -> list[int]:
        return [os.getpid(), *(w.process.pid for w in media.pool.workers if w.alive)]

    async def on_lost(hearing_id: HearingId) -> None:
        # Another node holds the hearing now: its people rejoin there; this node's recording
        # of it is sealed (the other node records in a new package).
        live = rooms.get(hearing_id)
        for connection in connections.all():
            if connection.hearing_id == hearing_id:
                await connection.close(CloseReason.SERVER_SHUTDOWN, message=GONE)
        rooms.forget(hearing_id)
        try:
            sealed = await media.hearing(hearing_id).hearing_state(HearingState.CLOSED)
            if sealed is not None and live is not None:
                # On the hearing's log, as a seal on close is (the database may still be up).
                await live.log_sealed(sealed)
        except Exception:
            log.exception("cluster: cannot seal the recording of lost hearing %s", hearing_id)

    async def on_message(data: dict[str, Any]) -> None:
        await _on_bus(app, data)

    await prepare_client()
    node = ClusterNode(
        Redis.from_url(config.cluster.redis_url, decode_responses=True),
        node_id=node_id,
        url=url,
        interval_s=config.cluster.heartbeat_interval_s,
        misses=config.cluster.heartbeat_misses,
        prefix=config.cluster.key_prefix,
        participants=lambda: len(connections.all()),
        pids=pids,
        on_lost=on_lost,
        on_message=on_message,
    )
    await node.start()
    app[CLUSTER] = node
    app[RELAY_HTTP] = aiohttp.ClientSession()
    app[SIGNALING_ROUTE] = route_signaling

    async def relay_end(session_ids: list[str], message: str) -> None:
        await node.publish("end_sessions", sessions=session_ids, message=message)

    async def relay_state(
        hearing_id: HearingId, state: HearingState, reason: str, by: ParticipantId | None
    ) -> None:
        await node.publish(
            "hearing_state", hearing_id=hearing_id, state=state, reason=reason, by=by
        )

    connections.relay = relay_end
    rooms.elsewhere = relay_state
    # Login and invitation attempts per address are counted over every node.
    limits = SharedRateLimiter(
        node.redis, node.prefix, config.security.login_ip_attempts_per_minute, 60.0
    )
    app[AUTH].shared_limit = limits.allow
    log.info("node %s (%s) joined the cluster", node_id, url)
    try:
        yield
    finally:
        connections.relay = None
        rooms.elsewhere = None
        app[AUTH].shared_limit = None
        await app[RELAY_HTTP].close()
        await node.close()


async def _on_bus(app: web.Application, data: dict[str, Any]) -> None:
    """What another node tells every node."""
    op = data.get("op")
    if op == "end_sessions":
        sessions = [str(s) for s in data.get("sessions", [])]
        await app[CONNECTIONS].end_sessions(sessions, str(data.get("message", "")), relay=False)
    elif op == "hearing_state":
        live = app[ROOMS].get(HearingId(str(data["hearing_id"])))
        if live is not None:
            by = data.get("by")
            await live.hearing_state_changed(
                HearingState(data["state"]),
                str(data.get("reason", "")),
                ParticipantId(str(by)) if by else None,
            )


async def route_signaling(
    request: web.Request, ws: web.WebSocketResponse, principal: Principal
) -> str | None:
    """Read the socket's first frame; serve it here (the frame back) or relay it (None)."""
    app = request.app
    wait = app[CONFIG].signaling.heartbeat_interval_s * HEARTBEAT_MISSES
    while True:
        try:
            frame = await ws.receive(timeout=wait)
        except TimeoutError:
            await ws.close(code=WSCloseCode.OK, message=CloseReason.HEARTBEAT_LOST.encode())
            return None
        if frame.type is WSMsgType.TEXT:
            break
        if frame.type is not WSMsgType.BINARY:
            return None  # closed before saying anything
        error = m.Error(code=ErrorCode.BAD_REQUEST, message="binary frames are not accepted")
        await ws.send_str(encode(error))
    text = str(frame.data)
    hearing_id = await _hearing_to_join(app, principal, text)
    if hearing_id is None:
        return text  # not a join this node can route: served here (and refused) as usual
    node = app[CLUSTER]
    try:
        owner = await node.owner(hearing_id)
    except NoNodeError as exc:
        await _refuse(ws, text, str(exc))
        return None
    except Exception as exc:  # Redis unreachable: never risk two nodes serving one hearing
        log.warning("cluster: cannot place hearing %s: %s", hearing_id, exc)
        await _refuse(ws, text, "the cluster store is unreachable; try again")
        return None
    if owner.node_id == node.node_id:
        return text
    if VIA_HEADER in request.headers:  # placed elsewhere since the relaying node looked
        await _refuse(ws, text, GONE)
        return None
    await _relay(request, ws, owner.url, text)
    return None


async def _hearing_to_join(
    app: web.Application, principal: Principal, text: str
) -> HearingId | None:
    """The hearing a first frame joins, if it is a valid join this principal may make."""
    try:
        message = decode(text, sender=Sender.CLIENT)
    except SignalingError:
        return None
    if not isinstance(message, m.Join) or (parsed := parse_id(message.hearing_id)) is None:
        return None
    hearing_id = HearingId(parsed)
    try:
        await app[COURT].participant_for(principal, hearing_id)
    except CourtError:
        return None
    return hearing_id


async def _refuse(ws: web.WebSocketResponse, text: str, why: str) -> None:
    """The join cannot be served now: the client is told, and rejoins later (retryable)."""
    transaction = None
    with contextlib.suppress(SignalingError):
        transaction = getattr(decode(text, sender=Sender.CLIENT), "transaction", None)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_str(
            encode(m.Error(code=ErrorCode.INTERNAL, message=why, transaction=transaction))
        )
        await ws.send_str(encode(m.Closed(reason=CloseReason.SERVER_SHUTDOWN, message=why)))
    await ws.close(code=WSCloseCode.GOING_AWAY, message=CloseReason.SERVER_SHUTDOWN.encode())


async def _relay(request: web.Request, ws: web.WebSocketResponse, url: str, first: str) -> None:
    """Relay the socket to the hearing's node until either side closes."""
    app = request.app
    headers = {VIA_HEADER: app[CLUSTER].node_id}
    if cookie := request.headers.get("Cookie"):
        headers["Cookie"] = cookie
    forwarded = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = ", ".join(a for a in (forwarded, request.remote) if a)
    try:
        upstream = await app[RELAY_HTTP].ws_connect(
            url + "/ws",
            headers=headers,
            max_msg_size=WS_MAX_FRAME_BYTES,
            heartbeat=30.0,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("cluster: the hearing's node %s is unreachable: %s", url, exc)
        await _refuse(ws, first, GONE)
        return
    async with upstream:
        await upstream.send_str(first)
        down = asyncio.create_task(_pump_down(ws, upstream))
        up = asyncio.create_task(_pump_up(upstream, ws))
        done, _ = await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
        if up in done:  # the hearing's node closed (or vanished)
            down.cancel()
            closing = up.result()
            if closing is None or not closing[1]:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(
                        encode(m.Closed(reason=CloseReason.SERVER_SHUTDOWN, message=GONE))
                    )
                await ws.close(
                    code=WSCloseCode.GOING_AWAY, message=CloseReason.SERVER_SHUTDOWN.encode()
                )
            else:
                await ws.close(code=closing[0], message=closing[1].encode())
        else:  # the client closed
            up.cancel()
            # A clean close is the client's decision (CLIENT_LEFT there); a socket that just
            # vanished is a network loss on the hearing's node too.
            clean = ws.close_code == WSCloseCode.OK
            await upstream.close(code=WSCloseCode.OK if clean else WSCloseCode.GOING_AWAY)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(down, up, return_exceptions=True)


async def _pump_down(ws: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Client -> hearing's node, text frames only (the hearing's node judges them)."""
    async for frame in ws:
        if frame.type is WSMsgType.TEXT:
            await upstream.send_str(frame.data)
        elif frame.type is WSMsgType.BINARY:
            await upstream.send_bytes(frame.data)
        else:
            break


async def _pump_up(
    upstream: aiohttp.ClientWebSocketResponse, ws: web.WebSocketResponse
) -> tuple[int, str] | None:
    """Hearing's node -> client; returns its close frame (code, text), None if it vanished."""
    while True:
        frame = await upstream.receive()
        if frame.type is WSMsgType.TEXT:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(frame.data)
        elif frame.type is WSMsgType.CLOSE:
            return int(frame.data), str(frame.extra or "")
        elif frame.type is not WSMsgType.BINARY:
            return None
