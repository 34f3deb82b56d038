"""A tiny, contained event emitter for the SFU objects.

mediasoup's `safeEmit` habit: a listener that raises is logged and forgotten; it never
propagates into the caller, which on the media path would be the packet loop or an aiortc
task. Listeners are plain callables; a listener that returns an awaitable has it scheduled as
a task (kept referenced until it finishes), so signaling code may use `async def` listeners.
Each emitting class documents its events in its docstring.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Listener = Callable[..., Any]


class EventEmitter:
    """Register listeners with `on(event, fn)`, remove with `off`, fire with `_emit`."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._listener_tasks: set[asyncio.Task[Any]] = set()

    def on(self, event: str, listener: Listener) -> Listener:
        """Add `listener` for `event`; returns it (usable as a decorator)."""
        self._listeners.setdefault(event, []).append(listener)
        return listener

    def off(self, event: str, listener: Listener) -> None:
        """Remove `listener`; does nothing if it was not registered."""
        listeners = self._listeners.get(event)
        if listeners and listener in listeners:
            listeners.remove(listener)

    def remove_all_listeners(self) -> None:
        self._listeners.clear()

    def _emit(self, event: str, *args: Any) -> None:
        for listener in list(self._listeners.get(event, ())):
            try:
                result = listener(*args)
            except Exception:
                log.exception("listener for %r on %s failed", event, type(self).__name__)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._listener_tasks.add(task)
                task.add_done_callback(self._listener_done)

    def _listener_done(self, task: asyncio.Task[Any]) -> None:
        self._listener_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "async listener on %s failed",
                type(self).__name__,
                exc_info=task.exception(),
            )
