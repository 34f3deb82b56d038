"""The request channel between the main process and one SFU worker process.

mediasoup's Channel: the main process sends requests, each with an id that its reply echoes,
and keeps the map of pending requests; the worker sends notifications (events) unasked. Both
ends of the wire are here, so the format is defined once.

Wire: JSON, one object per line, over the worker's stdin (requests) and stdout (replies and
notifications). A request names a method and the object it is for (`target`: a hearing id for
the `router.*` methods, none for the `worker.*` ones):

    -> {"id": 1, "method": "router.add_peer", "target": H, "data": {"peer": P, "room": "main"}}
    <- {"id": 1, "ok": true, "result": null}
    <- {"id": 2, "ok": false, "error": "GlareError", "message": "..."}
    <- {"event": "offer", "target": H, "data": {"peer": P, "sdp": "..."}}

Failure model: when the worker's stdout reaches EOF (it exited, was killed), every pending
request fails with WorkerDiedError and the channel is dead; requests on a dead channel fail at
once. The worker never blocks on a main process that stops reading: past MAX_BACKLOG unread
bytes it drops notifications (logged once) rather than stall the media path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

MAX_LINE = 1 << 20  # SDP of a large hearing stays far below 1 MiB
MAX_BACKLOG = 16 << 20  # unread bytes towards the main process before events are dropped

# (event, target, data) -> None, in the main process.
EventHandler = Callable[[str, str, dict[str, Any]], None]
# (target, data) -> result, in the worker process; a raised exception becomes an error reply.
RequestHandler = Callable[[str | None, dict[str, Any]], Awaitable[Any]]


class WorkerError(Exception):
    """A request failed inside the worker; `code` is the exception class name there."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class WorkerDiedError(WorkerError):
    """The worker exited before answering."""

    def __init__(self, message: str = "SFU worker died") -> None:
        super().__init__("WorkerDied", message)


class Channel:
    """The main process's end: requests out, replies and notifications in."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_event: EventHandler
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._on_event = on_event
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._write_lock = asyncio.Lock()
        self.alive = True

    async def request(self, method: str, target: str | None = None, **data: Any) -> Any:
        """Send one request and wait for its reply.

        Raises WorkerError (the worker's exception, by class name) or WorkerDiedError.
        """
        if not self.alive:
            raise WorkerDiedError()
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        line = json.dumps({"id": request_id, "method": method, "target": target, "data": data})
        try:
            async with self._write_lock:
                self._writer.write(line.encode() + b"\n")
                await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._pending.pop(request_id, None)
            raise WorkerDiedError() from exc
        return await future

    async def run(self) -> None:
        """Read replies and notifications until the worker's stdout closes."""
        try:
            while line := await self._reader.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    log.warning("unparsable line from an SFU worker")
                    continue
                if "id" in message:
                    self._reply(message)
                else:
                    self._on_event(
                        str(message.get("event")), str(message.get("target")), message["data"]
                    )
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            log.exception("the pipe from an SFU worker failed")
        finally:
            self.alive = False
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(WorkerDiedError())
            self._pending.clear()

    def _reply(self, message: dict[str, Any]) -> None:
        future = self._pending.pop(message["id"], None)
        if future is None or future.done():
            return
        if message.get("ok"):
            future.set_result(message.get("result"))
        else:
            future.set_exception(WorkerError(message["error"], message.get("message", "")))


class ChannelServer:
    """The worker's end: requests in (each handled in its own task), replies and
    notifications out, on the process's stdin and stdout."""

    def __init__(self, handlers: Mapping[str, RequestHandler]) -> None:
        self._handlers = handlers
        self._out: asyncio.WriteTransport | None = None
        self._broken = False

    def notify(self, event: str, target: str, **data: Any) -> None:
        """Send a notification now; never blocks (see the module docstring)."""
        self._send({"event": event, "target": target, "data": data})

    def _send(self, message: dict[str, Any]) -> None:
        out = self._out
        if self._broken or out is None:
            return
        if out.is_closing() or out.get_write_buffer_size() > MAX_BACKLOG:
            log.warning("pipe to the main process broken or stalled; dropping events")
            self._broken = True
            return
        out.write(json.dumps(message).encode() + b"\n")

    async def _run_request(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        try:
            handler = self._handlers[message["method"]]
            result = await handler(message.get("target"), message.get("data") or {})
        except Exception as exc:
            self._send(
                {"id": request_id, "ok": False, "error": type(exc).__name__, "message": str(exc)}
            )
        else:
            self._send({"id": request_id, "ok": True, "result": result})

    async def serve(self) -> None:
        """Answer requests until stdin closes (the main process is done with this worker)."""
        loop = asyncio.get_running_loop()
        self._out, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)
        reader = asyncio.StreamReader(limit=MAX_LINE)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        tasks: set[asyncio.Task[None]] = set()
        while line := await reader.readline():
            task = asyncio.ensure_future(self._run_request(json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
