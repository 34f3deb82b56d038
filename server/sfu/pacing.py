"""Keyframe pacing: a video packet's fan-out to many subscribers goes out in slices (issue 18.3).

Why: `forwarding.forward()` sends one incoming packet to every subscriber synchronously. A
keyframe is 20-35 packets in a burst; to N=100 subscribers that is thousands of protect+sendto
back to back (~35 ms on this machine), during which nothing else - no audio, no other
stream - leaves the worker, and every subscriber has the complete frame only at the very end.

How:

* Audio is never queued: `Producer.on_rtp` forwards it at once. A video packet whose
  producer has at most `SYNC_FANOUT` active outputs and nothing queued goes out at once too
  (a four-person hearing pays nothing for pacing).
* Otherwise the packet is appended to its producer's `Burst`: the packets not yet sent to
  everyone, the producer's outputs in a *rotated* order (the start moves on with every burst,
  so no subscriber is favoured), and one cursor per output.
* The worker's event loop runs `Pacer.run()` (scheduled with `call_soon`) for one slice of
  about `SLICE_SENDS` sends, then returns to the loop: datagrams that arrived meanwhile (audio,
  other streams' packets) are handled before the next slice. Bursts of several producers are
  served round-robin within a slice.
* A frame's packets wait in the burst until its last packet (RTP marker) has arrived (at most
  `HOLD_PACKETS`), so that a subscriber's run holds whole frames.
* Within a burst the order is subscriber-major: one output gets every packet it still lacks
  (`forwarding.send_run`), then the next. Subscriber i of N has the complete keyframe after
  i/N of the work instead of all of them at the end (packet-major); the mean frame-complete
  latency halves. Per output, packets keep their order.

Bounds: a burst holds at most `MAX_BACKLOG` packets. A keyframe's first packet arriving while
outputs still lack part of the previous burst replaces it: those outputs skip the rest
(`OutputStream.restart()`: their sequence continues without a gap, so nothing invites a NACK
for the skipped packets) and go straight to the new keyframe. An overflowing burst does the
same and asks the publisher for a keyframe (the skipping outputs need one).

Routes: the burst's outputs follow the producer's active outputs (`retarget`, called by
`Producer.update_outputs`): an output that left the tuple - consumer closed, paused, moved to a
private room, transport gone - is dropped from the burst at once and gets nothing more from
it; an output that joined gets only packets that arrive after it joined.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable, Hashable

from .forwarding import OutputStream, Parsed, parse, send_run

# SHARED_COURT_SFU_PACING=0 turns pacing off (the benchmark's A/B comparison; read at import)
ENABLED = os.environ.get("SHARED_COURT_SFU_PACING", "1") != "0"
SYNC_FANOUT = 8  # video to at most this many outputs (and nothing queued) goes out at once
SLICE_SENDS = 96  # sends per slice: ~1 ms at ~10 us per protect+sendto
MAX_BACKLOG = 256  # packets per burst (a 1 Mbps keyframe is 20-35)
HOLD_PACKETS = 64  # a frame's packets wait for its last (marker) packet, at most this many


class Burst:
    """A producer's packets not yet sent to all its outputs (module docstring)."""

    __slots__ = ("cursors", "on_overflow", "order", "packets", "pos", "ready")

    def __init__(self, order: list[OutputStream], on_overflow: Callable[[], None] | None) -> None:
        self.order = order
        self.cursors = [0] * len(order)
        self.packets: list[Parsed] = []
        self.pos = 0
        self.ready = 0  # packets[:ready] are whole frames (up to the last marker packet)
        self.on_overflow = on_overflow

    def lagging(self) -> int:
        """Outputs that still lack some packet of the burst."""
        end = len(self.packets)
        return sum(1 for c in self.cursors if c < end)

    def skip(self) -> None:
        """Drop what is unsent: lagging outputs start a new segment with the next packet."""
        end = len(self.packets)
        for out, cursor in zip(self.order, self.cursors, strict=True):
            if cursor < end:
                out.restart()
        self.packets = []
        self.ready = 0
        self.cursors = [0] * len(self.order)

    def serve(self, quota: int) -> int:
        """Send up to about `quota` packets, subscriber-major; returns how many were sent."""
        order, cursors, packets = self.order, self.cursors, self.packets
        n = len(order)
        end = self.ready
        sent = idle = 0
        pos = self.pos
        while sent < quota and idle < n:
            cursor = cursors[pos]
            if cursor < end:
                send_run(order[pos], packets, cursor, end)
                cursors[pos] = end
                sent += end - cursor
                idle = 0
            else:
                idle += 1
            pos = pos + 1 if pos + 1 < n else 0
        self.pos = pos
        return sent

    def done(self) -> bool:
        end = len(self.packets)
        return all(c >= end for c in self.cursors)


class Pacer:
    """The paced send side of one worker (one event loop); see the module docstring.

    `schedule` runs a callback soon (default: the running loop's `call_soon`); tests inject
    their own and call `run()` themselves: no clock, no sleeps.
    """

    def __init__(
        self,
        schedule: Callable[[Callable[[], None]], object] | None = None,
        *,
        slice_sends: int = SLICE_SENDS,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self._schedule = schedule
        self.slice_sends = slice_sends
        self.max_backlog = max_backlog
        self._bursts: dict[Hashable, Burst] = {}
        self._scheduled = False
        self._rotation = 0
        # counters (diagnostics, tests, benchmark)
        self.bursts_started = 0
        self.replaced = 0
        self.overflows = 0
        self.slices = 0

    def pending(self, owner: Hashable) -> bool:
        return owner in self._bursts

    def backlog(self, owner: Hashable) -> int:
        """Packets of `owner`'s burst that some output still lacks (0 if none queued)."""
        burst = self._bursts.get(owner)
        if burst is None or not burst.order:
            return 0
        return len(burst.packets) - min(burst.cursors)

    def submit(
        self,
        owner: Hashable,
        data: bytes,
        outputs: tuple[OutputStream, ...],
        now: float,
        *,
        keyframe: bool = False,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        """Queue one decrypted publisher packet for `outputs` (the owner's active outputs)."""
        burst = self._bursts.get(owner)
        if burst is None:
            n = len(outputs)
            if not n:
                return
            k = self._rotation % n
            self._rotation += 1
            burst = self._bursts[owner] = Burst([*outputs[k:], *outputs[:k]], on_overflow)
            self.bursts_started += 1
        elif len(burst.packets) >= self.max_backlog:
            self.overflows += 1
            burst.skip()
            if burst.on_overflow is not None:
                burst.on_overflow()
        elif keyframe and burst.lagging():
            self.replaced += 1
            burst.skip()
        packet = parse(data, now)
        burst.packets.append(packet)
        end = len(burst.packets)
        if packet[1] or end - burst.ready > HOLD_PACKETS:
            # a frame is complete (marker): it may go out; a subscriber gets a whole frame in
            # one run rather than its first packets now and the rest a whole cycle later
            burst.ready = end
            self._wake()

    def retarget(self, owner: Hashable, outputs: tuple[OutputStream, ...]) -> None:
        """The owner's active outputs changed: drop those cut, add the new ones (they get
        only packets that arrive from now on)."""
        burst = self._bursts.get(owner)
        if burst is None:
            return
        if not outputs:
            del self._bursts[owner]
            return
        keep = set(outputs)
        order: list[OutputStream] = []
        cursors: list[int] = []
        pos = 0
        for i, (out, cursor) in enumerate(zip(burst.order, burst.cursors, strict=True)):
            if out in keep:
                order.append(out)
                cursors.append(cursor)
            elif i < burst.pos:
                pos -= 1
        pos += burst.pos
        known = set(order)
        end = len(burst.packets)
        for out in outputs:
            if out not in known:
                order.append(out)
                cursors.append(end)
        burst.order, burst.cursors = order, cursors
        burst.pos = pos if pos < len(order) else 0

    def cancel(self, owner: Hashable) -> None:
        """Forget the owner's burst (producer closed): nothing more is sent from it."""
        self._bursts.pop(owner, None)

    def run(self) -> None:
        """One slice: about `slice_sends` sends, bursts served round-robin."""
        self._scheduled = False
        self.slices += 1
        budget = self.slice_sends
        while budget > 0 and self._bursts:
            quota = max(1, budget // len(self._bursts))
            sent = 0
            for owner, burst in list(self._bursts.items()):
                sent += burst.serve(quota)
                if burst.done() and self._bursts.get(owner) is burst:
                    del self._bursts[owner]
                if sent >= budget:
                    break
            budget -= sent
            if not sent:
                return  # what is left waits for its frame's last packet (submit wakes us)
        if self._bursts:
            self._wake()

    def _wake(self) -> None:
        if self._scheduled:
            return
        self._scheduled = True
        if self._schedule is not None:
            self._schedule(self.run)
        else:
            asyncio.get_running_loop().call_soon(self.run)


_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pacer] = weakref.WeakKeyDictionary()


def loop_pacer() -> Pacer:
    """The pacer of the running event loop (one per worker process), made on first use."""
    loop = asyncio.get_running_loop()
    pacer = _PACERS.get(loop)
    if pacer is None:
        pacer = _PACERS[loop] = Pacer(loop.call_soon)
    return pacer
