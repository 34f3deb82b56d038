"""``SignalingClient``: the Python side of the signaling protocol, over an aiohttp WebSocket.

Used by the station client and by tests (the server's tests drive their endpoint with it).

Design:

* **One reader task** owns the socket's receive side. Every text frame goes through
  ``codec.decode(sender=SERVER)``; a reply (``result``/``welcome``/``answer``/``error`` with a
  transaction we are waiting for) resolves that request's future; everything else —
  server pushes and server-initiated ``offer`` requests — goes to the event queue.
* **Requests** get a fresh transaction id (``messages.new_transaction``) unless the caller set
  one; ``request()`` awaits the matching reply with a deadline and raises a typed exception:
  ``RequestError`` (the server said ``error``; ``.code`` is the machine code),
  ``RequestTimeout``, or ``ConnectionClosed`` (``.reason`` is the ``CloseReason``).
* **Events** are read with ``async for event in client.events()`` or ``next_event()``. The
  queue is bounded (a stuck consumer must not grow memory without bound, ARCHITECTURE §4.2):
  when full the oldest event is dropped and counted in ``dropped_events``. The iteration ends
  after the last queued event once the connection has closed.
* **Why it closed** is kept in ``close_reason``: the reason of the server's ``closed`` message
  if one came (e.g. DUPLICATE_SESSION), else the close frame's text if it is a ``CloseReason``,
  else NETWORK_LOST for a socket that dropped without a goodbye; HEARTBEAT_LOST when our own
  heartbeat went unanswered; CLIENT_LEFT when we closed it.
* **Heartbeat**: after ``join`` a task sends ``heartbeat`` every ``heartbeat_interval_s`` from
  ``welcome``; a heartbeat unanswered for ``HEARTBEAT_MISSES`` intervals closes the
  connection with HEARTBEAT_LOST (the server applies the same rule from its side).

Events (what ``events()`` yields): every server-to-client message that is not a reply to one of
our requests: ``roster``, ``hearing_state``, ``muted``, ``unmute_requested``, ``moved``,
``room_locked``, ``track``, ``disconnect_evidence``, ``recording_alert``, ``station_reported``,
``recording_hash``, ``offer`` (answer it with
``send(Answer(transaction=offer.transaction, ...))``), ``error`` without a known transaction,
and ``closed`` (always the last).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Self, overload

import aiohttp

from signaling.codec import decode, encode
from signaling.enums import ClientKind, Sender
from signaling.errors import (
    ConnectionClosed,
    ErrorCode,
    RequestError,
    RequestTimeout,
    SignalingError,
)
from signaling.limits import HEARTBEAT_MISSES, WS_MAX_FRAME_BYTES
from signaling.messages import (
    Answer,
    Closed,
    Error,
    Heartbeat,
    Join,
    Leave,
    Message,
    Offer,
    Reply,
    Request,
    Welcome,
)
from signaling.reasons import CloseReason

log = logging.getLogger(__name__)

_HANDSHAKE_CODES = {401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND}


class SignalingClient:
    """A signaling connection: one hearing, one participant.

    ``url`` is the server's WebSocket endpoint; ``cookies`` carry the session (a staff login,
    an invitation session or a station session). Use as ``async with SignalingClient(...)``
    or call ``connect()`` and ``close()``.
    """

    def __init__(
        self,
        url: str,
        *,
        cookies: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        heartbeat: bool = True,
        heartbeat_misses: int = HEARTBEAT_MISSES,
        max_events: int = 1024,
    ) -> None:
        self._url = url
        self._cookies = dict(cookies or {})
        self._headers = dict(headers or {})
        self._session = session
        self._owns_session = session is None
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout
        self._heartbeat_enabled = heartbeat
        self._heartbeat_misses = heartbeat_misses
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._events: deque[Message] = deque()
        self._max_events = max_events
        self._event_ready = asyncio.Event()
        self._ended = asyncio.Event()
        self._close_reason: CloseReason | None = None
        self._closing_locally = False
        self.dropped_events = 0
        self.bad_messages = 0
        self.late_replies = 0
        self.welcome: Welcome | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the WebSocket. Raises ``SignalingError`` (UNAUTHORIZED, FORBIDDEN, NOT_FOUND,
        CLOSED for anything else) if the server refuses or cannot be reached."""
        if self._ws is not None:
            raise RuntimeError("already connected")
        if self._session is None:
            self._session = aiohttp.ClientSession(cookies=self._cookies)
        elif self._cookies:
            self._session.cookie_jar.update_cookies(self._cookies)
        try:
            async with asyncio.timeout(self._connect_timeout):
                self._ws = await self._session.ws_connect(
                    self._url,
                    headers=self._headers,
                    max_msg_size=WS_MAX_FRAME_BYTES,
                    autoping=True,
                )
        except aiohttp.WSServerHandshakeError as exc:
            await self._close_session()
            code = _HANDSHAKE_CODES.get(exc.status, ErrorCode.CLOSED)
            raise SignalingError(code, f"server refused the connection: HTTP {exc.status}") from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            await self._close_session()
            raise ConnectionClosed(CloseReason.NETWORK_LOST, f"cannot connect: {exc!r}") from exc
        self._reader = asyncio.create_task(self._read_loop(self._ws), name="signaling-reader")

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection (idempotent). Pending requests fail with ``ConnectionClosed``."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._ws is not None and not self._ws.closed:
            self._closing_locally = True
            await self._ws.close(message=CloseReason.CLIENT_LEFT.value.encode())
        if self._reader is not None:
            await self._reader
        await self._close_session()

    async def leave(self, *, reply_timeout: float | None = None) -> None:
        """Leave the hearing on purpose (CLIENT_LEFT), then close."""
        with contextlib.suppress(ConnectionClosed, RequestTimeout):
            await self.request(Leave(), reply_timeout=reply_timeout)
        await self.close()

    async def wait_closed(self) -> CloseReason | None:
        """Wait until the connection has ended; return why."""
        await self._ended.wait()
        return self._close_reason

    @property
    def closed(self) -> bool:
        return self._ended.is_set()

    @property
    def close_reason(self) -> CloseReason | None:
        """Why the connection ended (None while open)."""
        return self._close_reason

    # -- requests ----------------------------------------------------------------------------

    async def join(
        self,
        hearing_id: str,
        *,
        client_kind: ClientKind = ClientKind.STATION,
        user_agent: str | None = None,
    ) -> Welcome:
        """Join a hearing; start the heartbeat at the interval the server asks for."""
        return await self.request(
            Join(hearing_id=hearing_id, client_kind=client_kind, user_agent=user_agent)
        )

    def _on_welcome(self, welcome: Welcome) -> None:
        # However `join` was sent (join() or request(Join(...))), the heartbeat starts here.
        self.welcome = welcome
        if self._heartbeat_enabled and self._heartbeat is None:
            self._heartbeat = asyncio.create_task(
                self._heartbeat_loop(welcome.heartbeat_interval_s), name="signaling-heartbeat"
            )

    @overload
    async def request(self, message: Join, *, reply_timeout: float | None = None) -> Welcome: ...
    @overload
    async def request(self, message: Offer, *, reply_timeout: float | None = None) -> Answer: ...
    @overload
    async def request(self, message: Request, *, reply_timeout: float | None = None) -> Reply: ...

    async def request(self, message: Request, *, reply_timeout: float | None = None) -> Reply:
        """Send a request and return its reply (``Welcome`` for join, ``Answer`` for offer,
        else ``Result``).

        Raises ``RequestError`` (server ``error``; ``.code``), ``RequestTimeout``,
        ``ConnectionClosed``, or ``SignalingError(CONFLICT)`` if the transaction is in use.
        """
        tx = message.transaction
        if tx in self._pending:
            raise SignalingError(ErrorCode.CONFLICT, f"transaction {tx!r} is pending", tx)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[tx] = future
        try:
            await self.send(message)
            deadline = self._request_timeout if reply_timeout is None else reply_timeout
            async with asyncio.timeout(deadline):
                return await future
        except TimeoutError:
            raise RequestTimeout(
                f"no reply to {message.__class__.__name__} within the timeout", tx
            ) from None
        finally:
            self._pending.pop(tx, None)

    async def send(self, message: Message) -> None:
        """Send one message without waiting for anything (e.g. an ``answer`` to a server
        ``offer``). Raises ``ConnectionClosed`` if the connection has ended."""
        ws = self._ws
        if ws is None or ws.closed or self._ended.is_set():
            raise ConnectionClosed(self._close_reason, "the connection is closed")
        try:
            await ws.send_str(encode(message))
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise ConnectionClosed(self._close_reason, f"send failed: {exc!r}") from exc

    # -- events ------------------------------------------------------------------------------

    async def next_event(self) -> Message:
        """The next server-pushed message. Raises ``ConnectionClosed`` once the connection has
        ended and every queued event was read. Bound the wait with ``asyncio.timeout``."""
        while True:
            if self._events:
                event = self._events.popleft()
                if not self._events:
                    self._event_ready.clear()
                return event
            if self._ended.is_set():
                raise ConnectionClosed(self._close_reason, "the connection is closed")
            self._event_ready.clear()
            await self._event_ready.wait()

    async def events(self) -> AsyncIterator[Message]:
        """Iterate server-pushed messages until the connection ends."""
        while True:
            try:
                yield await self.next_event()
            except ConnectionClosed:
                return

    # -- internals ---------------------------------------------------------------------------

    def _push_event(self, message: Message) -> None:
        if len(self._events) >= self._max_events:
            self._events.popleft()
            self.dropped_events += 1
            log.warning("signaling event queue full: dropped the oldest event")
        self._events.append(message)
        self._event_ready.set()

    def _dispatch(self, message: Message) -> None:
        tx = getattr(message, "transaction", None)
        if isinstance(message, Reply | Error) and tx is not None and tx in self._pending:
            future = self._pending[tx]
            if not future.done():
                if isinstance(message, Error):
                    future.set_exception(RequestError(message.code, message.message, tx))
                else:
                    if isinstance(message, Welcome):
                        self._on_welcome(message)
                    future.set_result(message)
            return
        if isinstance(message, Reply):
            # A reply nobody waits for: its request timed out. Not an event; just note it.
            self.late_replies += 1
            log.info("late reply %s to transaction %s dropped", type(message).__name__, tx)
            return
        if isinstance(message, Closed):
            self._close_reason = message.reason
        self._push_event(message)

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        frame_reason: str | None = None
        frame_code: int | None = None
        try:
            while True:
                frame = await ws.receive()
                if frame.type == aiohttp.WSMsgType.TEXT:
                    try:
                        message = decode(frame.data, sender=Sender.SERVER)
                    except SignalingError as exc:
                        self.bad_messages += 1
                        log.warning("ignoring a message the server should not send: %s", exc)
                        continue
                    self._dispatch(message)
                elif frame.type == aiohttp.WSMsgType.BINARY:
                    self.bad_messages += 1
                    log.warning("ignoring a binary frame: the protocol is JSON text")
                elif frame.type == aiohttp.WSMsgType.CLOSE:
                    # The close frame's text may name the CloseReason (docs/signaling.md).
                    frame_reason = frame.extra if isinstance(frame.extra, str) else None
                    frame_code = frame.data if isinstance(frame.data, int) else None
                    break
                elif frame.type == aiohttp.WSMsgType.ERROR:
                    log.warning("signaling socket error: %r", ws.exception())
                    break
                else:  # CLOSING / CLOSED: we are closing it ourselves
                    break
        finally:
            if frame_code is None and ws.close_code is not None:
                frame_code = ws.close_code
            self._finish(frame_reason, frame_code)

    def _finish(self, frame_reason: str | None, frame_code: int | None = None) -> None:
        if self._close_reason is None:
            if self._closing_locally:
                self._close_reason = CloseReason.CLIENT_LEFT
            elif frame_reason is not None and frame_reason in CloseReason.__members__:
                self._close_reason = CloseReason(frame_reason)
            elif frame_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                # The server refused a frame over WS_MAX_FRAME_BYTES (docs/signaling.md, 5).
                self._close_reason = CloseReason.PROTOCOL_VIOLATION
            else:
                self._close_reason = CloseReason.NETWORK_LOST
        for tx, future in self._pending.items():
            if not future.done():
                future.set_exception(
                    ConnectionClosed(self._close_reason, "connection closed before the reply", tx)
                )
        self._ended.set()
        self._event_ready.set()
        if self._heartbeat is not None and not self._heartbeat.done():
            self._heartbeat.cancel()

    async def _heartbeat_loop(self, interval_s: int) -> None:
        while not self._ended.is_set():
            await asyncio.sleep(interval_s)
            try:
                await self.request(Heartbeat(), reply_timeout=interval_s * self._heartbeat_misses)
            except RequestTimeout:
                log.warning("heartbeat unanswered: closing with HEARTBEAT_LOST")
                self._close_reason = CloseReason.HEARTBEAT_LOST
                if self._ws is not None:
                    await self._ws.close(message=CloseReason.HEARTBEAT_LOST.value.encode())
                return
            except ConnectionClosed:
                return
            except RequestError as exc:
                log.warning("heartbeat refused: %s", exc)

    async def _close_session(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
