"""The signaling WebSocket: ``GET /ws`` (see docs/signaling.md).

One connection joins exactly one hearing as exactly one participant, resolved from the session
cookie (a party's invitation session, a staff login or a station login), never from what the
client claims. The first request must be ``join``; a second connection of the same participant
replaces the first, which is told ``closed`` with DUPLICATE_SESSION.

Every inbound text goes through ``signaling.codec.decode`` (the one validator), then through
one table, ``HANDLERS``, with one handler per message type: to the hearing rules
(``LiveHearing``), or to the participant's SFU peer (on the worker hosting the hearing,
through ``HearingMedia``); the reply echoes the request's transaction. What the rules' events
look like on the wire is ``server.web.wire``'s business. A malformed or refused message gets
an ``error`` and the connection stays; a flood (token bucket, RATE_STRIKES refusals in a row)
or a client that stops sending (no message for HEARTBEAT_MISSES heartbeat intervals) is closed
with a cause.

How a connection ends is evidence (OLR 25), kept in the hearing's log with its cause:
``leave`` -> CLIENT_LEFT; the socket drops without one -> NETWORK_LOST; silence ->
HEARTBEAT_LOST; the media transport fails -> ICE_FAILED; a station's report (power, network)
is recorded as it arrives so a drop that follows is explained; the court ends it -> REMOVED,
DISMISSED or JUDGE_ENDED; the server stops -> SERVER_SHUTDOWN. A close the server decides
because of what the client sent (a flood, a frame over WS_MAX_FRAME_BYTES) is
PROTOCOL_VIOLATION, never a network failure; a connection whose session ended (its invitation
revoked or re-issued, redeemed on another device, logged out) is closed with SESSION_REVOKED;
a refused ``join`` closes the connection with JOIN_REFUSED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from server.auth.principals import Principal
from server.enums import HearingState
from server.errors import CourtError
from server.hearings import live as rules
from server.ids import HearingId, ParticipantId, parse_id
from server.media import HearingMedia
from server.web.appkeys import (
    CLOCK,
    CONFIG,
    CONNECTIONS,
    COURT,
    ICE,
    MEDIA,
    PRINCIPAL,
    ROOMS,
    SIGNALING_ROUTE,
)
from server.web.floods import ADDRESS_LIMITS
from server.web.http import client_address
from server.web.wire import roster_for, to_wire
from server.worker import WorkerDiedError, WorkerError
from signaling import messages as m
from signaling.codec import decode, encode
from signaling.enums import ClientKind, Sender, StationCause
from signaling.errors import HTTP_ONLY_CODES, ErrorCode, SignalingError
from signaling.limits import (
    HEARTBEAT_MISSES,
    JOINS_PER_MINUTE,
    RATE_BURST,
    RATE_PER_S,
    RATE_STRIKES,
    WS_MAX_FRAME_BYTES,
)
from signaling.reasons import CloseReason

log = logging.getLogger(__name__)

# What `result.data` holds for each request that returns more than `{}` (docs/signaling.md,
# section 7; tests keep the document and these in step, and check them on the wire).
RESULT_DATA: dict[type[m.Request], dict[str, type]] = {
    m.Admit: {"admitted": int},
    m.MuteAll: {"muted": int},
    m.ConfirmRecordingHash: {"matches": bool},
    m.Stats: {"participants": list},
    m.Probe: {"received": int, "payload": str},
}

# Close frame codes other than 1000 (the reason's name is the close frame's text in every case).
CLOSE_CODES = {
    CloseReason.SERVER_SHUTDOWN: WSCloseCode.GOING_AWAY,
    CloseReason.PROTOCOL_VIOLATION: WSCloseCode.POLICY_VIOLATION,
}
# Codes aiohttp closes with on its own when a client sends what it must not.
ABUSE_CLOSE_CODES = frozenset({WSCloseCode.MESSAGE_TOO_BIG, WSCloseCode.PROTOCOL_ERROR})

STATION_CAUSES = {
    StationCause.POWER: CloseReason.STATION_POWER,
    StationCause.NETWORK: CloseReason.STATION_NETWORK,
}


def wire_code(code: ErrorCode) -> ErrorCode:
    """What the wire says for a service error: the code itself, but for the few only HTTP has."""
    if code not in HTTP_ONLY_CODES:
        return code
    return ErrorCode.FORBIDDEN if code is ErrorCode.CSRF_FAILED else ErrorCode.BAD_FIELD


def _media_error(exc: WorkerError, what: str) -> SignalingError:
    """The signaling error for a failure in the SFU worker handling an offer or answer."""
    if isinstance(exc, WorkerDiedError):
        return SignalingError(ErrorCode.INTERNAL, "the media server failed; join again")
    if exc.code == "GlareError":
        return SignalingError(ErrorCode.WRONG_STATE, "answer the server's offer first (glare)")
    return SignalingError(ErrorCode.BAD_FIELD, f"{what} refused: {exc}")


class TokenBucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        self._rate, self._burst = rate, burst
        self._tokens, self._at = burst, now

    def take(self, now: float) -> bool:
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class Connection:
    """One signaling WebSocket; see the module docstring."""

    def __init__(
        self, request: web.Request, ws: web.WebSocketResponse, principal: Principal
    ) -> None:
        self.request = request
        self.app = request.app
        self.ws = ws
        self.principal = principal
        self.clock = self.app[CLOCK]
        self.hearing_id: HearingId | None = None
        self.participant_id: ParticipantId | None = None
        self.live: rules.LiveHearing | None = None
        self.media: HearingMedia | None = None
        self.client_kind = ClientKind.BROWSER
        self._cause: CloseReason | None = None
        self._detail = ""
        self._last_message = self.clock.monotonic()
        self._bucket = TokenBucket(RATE_PER_S, RATE_BURST, self._last_message)
        self._strikes = 0
        self._send_lock = asyncio.Lock()
        self._server_offers: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._finished = asyncio.Event()
        self._held: list[m.Message] | None = None
        self.address = client_address(request)

    # -- sending --------------------------------------------------------------------------------

    async def send(self, message: m.Message) -> None:
        if self.ws.closed:
            return
        if self._held is not None and not isinstance(message, (m.Welcome, m.Error, m.Closed)):
            self._held.append(message)  # the welcome goes first; events wait for it
            return
        async with self._send_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(encode(message))

    async def _error(self, code: ErrorCode, message: str, transaction: str | None) -> None:
        await self.send(m.Error(code=code, message=message[:1000], transaction=transaction))

    @property
    def session_id(self) -> str:
        return self.principal.session_id

    async def wait_finished(self) -> None:
        """Until the end of this connection is recorded (its departure logged)."""
        await self._finished.wait()

    def translate(self, event: rules.LiveEvent) -> m.Message:
        return to_wire(event, self.live, self.participant_id, self.clock.now())

    # -- the connection's life ----------------------------------------------------------------

    async def run(self, first: str | None = None) -> None:
        """Serve the connection; `first` is a text frame already read (by the cluster's router,
        which looks at the `join` to find the hearing's node)."""
        watchdog = asyncio.create_task(self._watch_heartbeat())
        try:
            if first is not None:
                await self._on_text(first)
            async for message in self.ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_text(message.data)
                elif message.type is WSMsgType.BINARY:
                    await self._error(ErrorCode.BAD_REQUEST, "binary frames are not accepted", None)
                elif message.type is WSMsgType.ERROR:
                    code = getattr(message.data, "code", None)
                    if code in ABUSE_CLOSE_CODES and self._cause is None:
                        # aiohttp closed it for us (a frame over WS_MAX_FRAME_BYTES: 1009; a
                        # broken frame: 1002): the server's decision about what the client sent.
                        self._cause = CloseReason.PROTOCOL_VIOLATION
                        self._detail = f"closed by the server with code {code}: {message.data}"
                        log.warning("signaling: %s (%s)", self._detail, self._who())
                    break
                if self._closed.is_set():
                    break
        finally:
            watchdog.cancel()
            if self._cause is None and self.ws.close_code == WSCloseCode.OK:
                # A clean close frame is the client's own decision (the Python client and
                # signaling.js send it on close()); a socket that just vanished is not.
                self._cause = CloseReason.CLIENT_LEFT
            # Evidence of how the connection ended is written even if aiohttp is cancelling
            # this handler (it does when the client's TCP connection goes away).
            await asyncio.shield(asyncio.ensure_future(self._finish()))

    async def _watch_heartbeat(self) -> None:
        interval = self.app[CONFIG].signaling.heartbeat_interval_s
        deadline = interval * HEARTBEAT_MISSES
        while not self.ws.closed:
            await asyncio.sleep(interval / 2)  # a periodic check, not a wait for an outcome
            if self.clock.monotonic() - self._last_message > deadline:
                await self.close(CloseReason.HEARTBEAT_LOST)
                return

    def _who(self) -> str:
        return f"session {self.session_id[:8]}, participant {self.participant_id}"

    async def close(
        self,
        reason: CloseReason,
        *,
        told_by_court: bool = False,
        detail: str = "",
        message: str | None = None,
    ) -> None:
        """Close with `reason`: the client is told `closed` (with `message`, for people) first,
        then the close frame carries the reason's name. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._cause, self._detail = reason, detail
        await self.send(m.Closed(reason=reason, message=message[:500] if message else None))
        if self.media is not None and self.participant_id is not None:
            await self.media.remove_peer(self.participant_id, reason)
        await self.ws.close(code=CLOSE_CODES.get(reason, WSCloseCode.OK), message=reason.encode())

    async def _finish(self) -> None:
        """Record how this connection ended, once, whatever ended it."""
        self._closed.set()
        for task in self._tasks:
            task.cancel()
        cause = self._cause or CloseReason.NETWORK_LOST
        connections = self.app[CONNECTIONS]
        current = (
            connections.get(self.hearing_id, self.participant_id)
            if self.hearing_id is not None and self.participant_id is not None
            else None
        )
        replaced = current is not None and current is not self
        connections.discard(self)
        # The rules already recorded departures the court caused (removed, dismissed, ended).
        court_ended = cause in (CloseReason.REMOVED, CloseReason.DISMISSED, CloseReason.JUDGE_ENDED)
        try:
            if self.participant_id is not None and self.media is not None and not replaced:
                await self.media.remove_peer(self.participant_id, cause)
            if (
                self.live is not None
                and self.participant_id is not None
                and not replaced
                and not court_ended
            ):
                await self.live.disconnect(self.participant_id, cause, self._detail)
            if not self.ws.closed:
                await self.ws.close()
        finally:
            connections.unregister(self)
            self._finished.set()

    # -- inbound --------------------------------------------------------------------------------

    async def _on_text(self, text: str) -> None:
        now = self.clock.monotonic()
        self._last_message = now
        # Every message counts against the limits, malformed ones too (a flood of garbage is a
        # flood): the connection's bucket, then its address's shared budget.
        allowed = self._bucket.take(now) and self.app[ADDRESS_LIMITS].take(self.address)
        try:
            message = decode(text, sender=Sender.CLIENT)
        except SignalingError as exc:
            if not allowed:
                await self._refuse_flood(exc.transaction)
                return
            await self._error(exc.code, str(exc), exc.transaction)
            return
        transaction = getattr(message, "transaction", None)
        if not allowed:
            await self._refuse_flood(transaction)
            return
        self._strikes = 0
        try:
            reply = await self._dispatch(message)
        except SignalingError as exc:
            await self._error(exc.code, str(exc), transaction)
            await self._after_refusal(message)
            return
        except CourtError as exc:
            await self._error(wire_code(exc.code), exc.message, transaction)
            await self._after_refusal(message)
            return
        except Exception:
            log.exception("signaling request %s failed", type(message).__name__)
            await self._error(ErrorCode.INTERNAL, "internal error", transaction)
            await self._after_refusal(message)
            return
        if reply is not None:
            await self.send(reply)
        if isinstance(reply, m.Welcome):
            await self._release_held()

    async def _refuse_flood(self, transaction: str | None) -> None:
        """A message over the connection's or its address's rate: RATE_LIMITED, not executed;
        RATE_STRIKES of them in a row close the connection as a flood."""
        self._strikes += 1
        await self._error(ErrorCode.RATE_LIMITED, "too many requests; slow down", transaction)
        if self._strikes >= RATE_STRIKES:
            detail = f"flooding: {RATE_STRIKES} requests in a row over the rate limit"
            log.warning("signaling: closed for %s (%s)", detail, self._who())
            await self.close(CloseReason.PROTOCOL_VIOLATION, detail=detail, message=detail)

    async def _after_refusal(self, message: m.Message) -> None:
        """A refused `join` ends the connection (one connection = one hearing): the client
        has its `error`, then `closed` with JOIN_REFUSED."""
        if isinstance(message, m.Join) and self.participant_id is None:
            await self.close(CloseReason.JOIN_REFUSED)

    async def _release_held(self) -> None:
        held, self._held = self._held or [], None
        for message in held:
            await self.send(message)

    async def _dispatch(self, message: m.Message) -> m.Message | None:
        handler = HANDLERS.get(type(message))
        if handler is None:
            raise SignalingError(
                ErrorCode.UNKNOWN_TYPE, f"{type(message).__name__} is not handled here"
            )
        return await handler(self, message)

    def joined(self) -> tuple[rules.LiveHearing, ParticipantId]:
        """The hearing and participant of this connection; WRONG_STATE before `join`."""
        if self.live is None or self.participant_id is None:
            raise SignalingError(ErrorCode.WRONG_STATE, "join a hearing first")
        return self.live, self.participant_id

    def pid(self, value: str | None) -> ParticipantId:
        """A participant id the client named; NOT_FOUND if it is not one."""
        parsed = parse_id(value) if value is not None else None
        if parsed is None:
            raise SignalingError(ErrorCode.NOT_FOUND, "no such participant in this hearing")
        return ParticipantId(parsed)

    # -- join -------------------------------------------------------------------------------------

    async def join(self, message: m.Join) -> m.Message:
        if self.participant_id is not None:
            raise SignalingError(ErrorCode.WRONG_STATE, "this connection has already joined")
        parsed = parse_id(message.hearing_id)
        if parsed is None:
            raise SignalingError(ErrorCode.NOT_FOUND, "hearing not found")
        hid = HearingId(parsed)
        participant = await self.app[COURT].participant_for(self.principal, hid)
        pid = ParticipantId(participant.id)
        connections = self.app[CONNECTIONS]
        if not connections.allow_join(pid):
            raise SignalingError(
                ErrorCode.RATE_LIMITED,
                f"more than {JOINS_PER_MINUTE} joins a minute; wait before joining again",
            )
        rooms = self.app[ROOMS]
        live = await rooms.open(hid)
        rooms.admit_row(live, participant)  # added to the hearing after it went live
        old = connections.get(hid, pid)
        self.hearing_id, self.participant_id, self.live = hid, pid, live
        self._held = []
        self.client_kind = message.client_kind
        connections.add(self)
        if old is not None:
            await live.duplicate_session(pid)
            await old.close(CloseReason.DUPLICATE_SESSION)
        media = self.media = self.app[MEDIA].hearing(hid)
        try:
            await media.add_peer(pid, self)
            attendee = await live.connect(pid)
        except (CourtError, WorkerError) as exc:
            connections.discard(self)
            await media.remove_peer(pid, CloseReason.CLIENT_LEFT)
            self.hearing_id = self.participant_id = self.live = self.media = None
            self._held = None
            if isinstance(exc, WorkerError):
                log.warning("join of hearing %s: media server unavailable: %r", hid, exc)
                raise SignalingError(ErrorCode.INTERNAL, "media server unavailable; retry") from exc
            raise
        ice = self.app[ICE].for_participant(pid, self.clock.now())
        return m.Welcome(
            transaction=message.transaction,
            hearing_id=hid,
            participant_id=pid,
            display_name=attendee.display_name[:64],
            role=attendee.role,
            state=attendee.state,
            room_id=attendee.media_room,
            hearing_state=live.state,
            recording=live.routing.recording,
            recording_pause=live.recording_pause,
            ice_servers=[m.IceServer(**server) for server in ice],
            roster=roster_for(live, pid),
            heartbeat_interval_s=self.app[CONFIG].signaling.heartbeat_interval_s,
            court_name=live.heading.court_name[:200] or None,
            case_number=live.heading.case_number[:64] or None,
            station_name=live.heading.station_name[:200] if live.heading.station_name else None,
            device_check_skippable=self.app[CONFIG].signaling.device_check_skippable,
        )

    # -- PeerListener: what the participant's SFU peer does -------------------------------

    def on_server_offer(self, sdp: str) -> None:
        offer = m.Offer(sdp=sdp)
        self._server_offers.add(offer.transaction)
        self._spawn(self.send(offer))

    def on_track(self, mid: str, participant_id: str, kind: str, source: str = "") -> None:
        if kind in ("audio", "video"):
            track = m.Track(
                mid=mid,
                participant_id=participant_id,
                kind=kind,  # type: ignore[arg-type]
                source="screen" if source == "screen" else None,
            )
            self._spawn(self.send(track))

    def on_connection_state(self, state: str) -> None:
        if state == "failed":
            self._spawn(self.close(CloseReason.ICE_FAILED))

    def on_peer_closed(self, reason: CloseReason) -> None:
        # The SFU ended this peer on its own (its worker died, ICE failed): so does the socket,
        # telling the client why, and it may rejoin.
        if reason in (CloseReason.WORKER_DIED, CloseReason.ICE_FAILED):
            self._spawn(self.close(reason))

    def on_video(self, publisher_id: str, paused: bool, reason: str | None) -> None:
        event: m.Message
        if paused:
            if reason == "audio_only":
                event = m.VideoPaused(participant_id=publisher_id, reason="audio_only")
            else:
                event = m.VideoPaused(participant_id=publisher_id, reason="bandwidth")
        else:
            event = m.VideoResumed(participant_id=publisher_id)
        self._spawn(self.send(event))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- media ------------------------------------------------------------------------------------

    async def on_offer(self, message: m.Offer) -> m.Answer:
        """The client's offer: its one reply is the SFU's answer."""
        self.joined()
        assert self.media is not None
        assert self.participant_id is not None
        try:
            answer = await self.media.handle_offer(self.participant_id, message.sdp)
        except WorkerError as exc:
            raise _media_error(exc, "offer") from None
        return m.Answer(transaction=message.transaction, sdp=answer)

    async def on_answer(self, message: m.Answer) -> None:
        """The client's answer to a server offer; no reply when it was applied."""
        self.joined()
        assert self.media is not None
        assert self.participant_id is not None
        if message.transaction not in self._server_offers:
            raise SignalingError(
                ErrorCode.WRONG_STATE, "no server offer is waiting for this answer"
            )
        self._server_offers.discard(message.transaction)
        try:
            await self.media.handle_answer(self.participant_id, message.sdp)
        except WorkerError as exc:
            raise _media_error(exc, "answer") from None

    async def on_client_error(self, message: m.Error) -> None:
        """The client refused a server offer (docs/signaling.md, section 3)."""
        log.info("client refused a server request: %s %s", message.code, message.message)
        if message.transaction:
            self._server_offers.discard(message.transaction)

    async def leave(self) -> None:
        self.joined()
        self._cause = CloseReason.CLIENT_LEFT
        self._spawn(self._close_after_reply(CloseReason.CLIENT_LEFT))

    async def _close_after_reply(self, reason: CloseReason) -> None:
        await asyncio.sleep(0)  # let the reply go out first
        await self.close(reason)

    async def set_hearing_state(self, state: HearingState, reason: str) -> None:
        _live, me = self.joined()
        assert self.hearing_id is not None
        await self.app[ROOMS].set_hearing_state(self.principal, self.hearing_id, state, reason, me)

    async def station_report(self, message: m.StationReport) -> None:
        live, me = self.joined()
        since: datetime = message.since or self.clock.now()
        await live.station_reported(me, message.cause.value, message.detail or "", since)
        # If the connection drops now, the drop is explained by what the station reported.
        cause = STATION_CAUSES.get(message.cause)
        if cause is not None:
            self._cause, self._detail = cause, message.detail or ""

    async def confirm_recording_hash(self, message: m.ConfirmRecordingHash) -> bool:
        self.joined()
        assert self.hearing_id is not None
        return await self.app[COURT].confirm_recording(
            self.principal,
            self.hearing_id,
            message.recording_id,
            message.root_hash,
            message.confirmed,
        )


# --- one handler per message type ------------------------------------------------------------
#
# A handler gets the connection and the decoded message and returns the reply (None: no reply).
# Requests of the hearing rules reply `result`; `_rule` wraps a function that returns its data.

Handler = Callable[[Connection, Any], Awaitable[m.Message | None]]
RuleHandler = Callable[[Connection, Any], Awaitable[dict[str, Any] | None]]


def _rule(handle: RuleHandler) -> Handler:
    async def reply(c: Connection, message: m.Request) -> m.Message:
        data = await handle(c, message)
        return m.Result(transaction=message.transaction, data=data or {})

    return reply


async def _heartbeat(c: Connection, message: m.Heartbeat) -> m.Message:
    return m.Result(transaction=message.transaction)


async def _answer(c: Connection, message: m.Answer) -> None:
    await c.on_answer(message)


async def _client_error(c: Connection, message: m.Error) -> None:
    await c.on_client_error(message)


async def _leave(c: Connection, message: m.Leave) -> None:
    await c.leave()


async def _confirm_identity(c: Connection, message: m.ConfirmIdentity) -> None:
    live, me = c.joined()
    await live.confirm_identity(me, message.name, message.id_digits)


async def _consent(c: Connection, message: m.Consent) -> None:
    live, me = c.joined()
    await live.consent(me, message.accepted_rules)


async def _attest_identity(c: Connection, message: m.AttestIdentity) -> None:
    live, me = c.joined()
    await live.attest_identity(
        me,
        c.pid(message.participant_id),
        check=rules.IdentityCheck(message.check.value),
        name=message.name,
        id_digits=message.id_digits,
        note=message.note or "",
    )


async def _admit(c: Connection, message: m.Admit) -> dict[str, Any]:
    live, me = c.joined()
    target = None if message.all else c.pid(message.participant_id)
    return {"admitted": await live.admit(me, target)}


async def _pre_admit(c: Connection, message: m.PreAdmit) -> None:
    live, me = c.joined()
    await live.pre_admit(me, message.roles)


async def _send_to_waiting(c: Connection, message: m.SendToWaiting) -> None:
    live, me = c.joined()
    await live.send_to_waiting(me, c.pid(message.participant_id))


async def _mute(c: Connection, message: m.Mute) -> None:
    live, me = c.joined()
    await live.mute(me, c.pid(message.participant_id))


async def _mute_all(c: Connection, message: m.MuteAll) -> dict[str, Any]:
    live, me = c.joined()
    return {"muted": await live.mute(me, None)}


async def _unmute(c: Connection, message: m.Unmute) -> None:
    live, me = c.joined()
    await live.unmute(me, c.pid(message.participant_id))


async def _request_unmute(c: Connection, message: m.RequestUnmute) -> None:
    live, me = c.joined()
    await live.request_unmute(me)


async def _remove(c: Connection, message: m.Remove) -> None:
    live, me = c.joined()
    await live.remove(me, c.pid(message.participant_id), message.reason or "removed")


async def _lock_room(c: Connection, message: m.LockRoom) -> None:
    live, me = c.joined()
    await live.lock_room(me, message.locked)


async def _set_recording(c: Connection, message: m.SetRecording) -> None:
    live, me = c.joined()
    await live.set_recording(me, message.recording, message.reason, message.note or "")


async def _spotlight(c: Connection, message: m.Spotlight) -> None:
    live, me = c.joined()
    target = None if message.participant_id is None else c.pid(message.participant_id)
    await live.set_spotlight(me, target)


async def _call_witness(c: Connection, message: m.CallWitness) -> None:
    live, me = c.joined()
    await live.call_witness(me, c.pid(message.participant_id))


async def _dismiss_witness(c: Connection, message: m.DismissWitness) -> None:
    live, me = c.joined()
    await live.dismiss_witness(me, c.pid(message.participant_id))


async def _move_to_room(c: Connection, message: m.MoveToRoom) -> None:
    live, me = c.joined()
    target = c.pid(message.participant_id)
    if target == me:  # presiding staff visit a room by moving themselves
        await live.join_room(me, message.room_id)
    else:
        await live.move_to_room(me, [target], message.room_id)


async def _open_consultation(c: Connection, message: m.OpenConsultation) -> None:
    live, me = c.joined()
    client = [c.pid(p) for p in message.participant_ids if p != me]
    if len(client) != 1:
        raise SignalingError(ErrorCode.BAD_FIELD, "name exactly one client")
    await live.open_consultation(me, client[0])


async def _stats(c: Connection, message: m.Stats) -> dict[str, Any]:
    """Presiding staff see each connected participant's connection quality (the SFU's figures,
    from RTCP it already receives); FORBIDDEN for anyone else."""
    live, me = c.joined()
    live.check_presiding(me, "see connection quality")
    assert c.media is not None
    figures = await c.media.peer_stats()
    return {
        "participants": [
            m.ParticipantStats(
                participant_id=pid,
                connection_state=str(f.get("connection_state") or "")[:16] or None,
                rtt_ms=f.get("rtt_ms"),
                loss=f.get("loss"),
                bitrate_in_kbps=float(f.get("bitrate_in_kbps") or 0),
                bitrate_out_kbps=float(f.get("bitrate_out_kbps") or 0),
            ).model_dump()
            for pid, f in figures.items()
            if pid in live.attendees
        ]
    }


async def _set_hearing_state(c: Connection, message: m.SetHearingState) -> None:
    await c.set_hearing_state(HearingState(message.state), message.reason)


async def _station_report(c: Connection, message: m.StationReport) -> None:
    await c.station_report(message)


async def _confirm_recording_hash(c: Connection, message: m.ConfirmRecordingHash) -> dict[str, Any]:
    return {"matches": await c.confirm_recording_hash(message)}


async def _probe(c: Connection, message: m.Probe) -> dict[str, Any]:
    """The device check's network test: what arrived, and filler to measure the way down."""
    c.joined()
    return {"received": len(message.payload), "payload": "x" * message.reply_bytes}


async def _set_audio_only(c: Connection, message: m.SetAudioOnly) -> None:
    """A participant asks for no video on a weak line (its own media only: no rule to check)."""
    _live, me = c.joined()
    assert c.media is not None
    await c.media.set_audio_only(me, message.enabled)


async def _report_readiness(c: Connection, message: m.ReportReadiness) -> None:
    live, me = c.joined()
    await live.report_readiness(me, message.readiness.model_dump(mode="json"))


# -- screen sharing (issue 13.4) --


async def _screen_share_request(c: Connection, message: m.ScreenShareRequest) -> None:
    live, me = c.joined()
    await live.request_screen_share(me)


async def _screen_share_allow(c: Connection, message: m.ScreenShareAllow) -> None:
    live, me = c.joined()
    await live.allow_screen_share(me, c.pid(message.participant_id))


async def _screen_share_deny(c: Connection, message: m.ScreenShareDeny) -> None:
    live, me = c.joined()
    await live.deny_screen_share(me, c.pid(message.participant_id), message.reason or "")


async def _screen_share_start(c: Connection, message: m.ScreenShareStart) -> None:
    live, me = c.joined()
    await live.start_screen_share(me, message.mid)


async def _screen_share_stop(c: Connection, message: m.ScreenShareStop) -> None:
    live, me = c.joined()
    target = None if message.participant_id is None else c.pid(message.participant_id)
    await live.stop_screen_share(me, target, ended=message.ended)


HANDLERS: dict[type[m.Message], Handler] = {
    m.Heartbeat: _heartbeat,
    m.Join: Connection.join,
    m.Offer: Connection.on_offer,
    m.Answer: _answer,
    m.Error: _client_error,
    m.Leave: _rule(_leave),
    m.ConfirmIdentity: _rule(_confirm_identity),
    m.Consent: _rule(_consent),
    m.AttestIdentity: _rule(_attest_identity),
    m.Admit: _rule(_admit),
    m.PreAdmit: _rule(_pre_admit),
    m.SendToWaiting: _rule(_send_to_waiting),
    m.Mute: _rule(_mute),
    m.MuteAll: _rule(_mute_all),
    m.Unmute: _rule(_unmute),
    m.RequestUnmute: _rule(_request_unmute),
    m.Remove: _rule(_remove),
    m.LockRoom: _rule(_lock_room),
    m.SetRecording: _rule(_set_recording),
    m.Spotlight: _rule(_spotlight),
    m.CallWitness: _rule(_call_witness),
    m.DismissWitness: _rule(_dismiss_witness),
    m.MoveToRoom: _rule(_move_to_room),
    m.OpenConsultation: _rule(_open_consultation),
    m.SetHearingState: _rule(_set_hearing_state),
    m.Stats: _rule(_stats),
    m.StationReport: _rule(_station_report),
    m.ConfirmRecordingHash: _rule(_confirm_recording_hash),
    m.Probe: _rule(_probe),
    m.ReportReadiness: _rule(_report_readiness),
    m.SetAudioOnly: _rule(_set_audio_only),
    m.ScreenShareRequest: _rule(_screen_share_request),
    m.ScreenShareAllow: _rule(_screen_share_allow),
    m.ScreenShareDeny: _rule(_screen_share_deny),
    m.ScreenShareStart: _rule(_screen_share_start),
    m.ScreenShareStop: _rule(_screen_share_stop),
}


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (the station client, tests)
    return origin in {str(request.url.origin()), request.app[CONFIG].server.base_url}


async def signaling_socket(request: web.Request) -> web.StreamResponse:
    """GET /ws: authenticate by cookie, refuse cross-site pages, then speak signaling."""
    principal = request.get(PRINCIPAL)
    if principal is None:
        raise CourtError(ErrorCode.UNAUTHORIZED, "log in first")
    if not _same_origin(request):
        raise CourtError(ErrorCode.FORBIDDEN, "cross-origin WebSocket refused")
    limits = request.app[ADDRESS_LIMITS]
    address = client_address(request)
    if not limits.open(address):
        raise CourtError(ErrorCode.RATE_LIMITED, "too many signaling connections from your address")
    try:
        ws = web.WebSocketResponse(max_msg_size=WS_MAX_FRAME_BYTES, heartbeat=30.0)
        await ws.prepare(request)
        first: str | None = None
        route = request.app.get(SIGNALING_ROUTE)  # set on a node of a cluster (server.web.cluster)
        if route is not None:
            first = await route(request, ws, principal)
            if first is None:  # relayed to the hearing's node, or closed
                return ws
        connection = Connection(request, ws, principal)
        request.app[CONNECTIONS].register(connection)
        await connection.run(first)
    finally:
        limits.close(address)
    return ws
