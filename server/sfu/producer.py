"""Producer: one incoming RTP stream (one audio or video m-line) of a peer.

Made only by its Peer, when a remote offer brings a track. It owns the publisher-side state
of the forwarding path: the SSRC map (media and RTX), the retransmission history shared by
all its consumers, the tuple of active output streams the hot path iterates, the publisher's
last RTCP sender report (translated into each consumer's SR for lip sync), and the keyframe
request throttle.

Keyframe requests (PLI) from any subscriber, from a consumer whose transport just came up or
was resumed, go through `request_keyframe()`: at most one PLI per `pli_interval` (default
0.5 s); requests inside the interval are coalesced into one deferred PLI at its end, never
dropped, so a late joiner gets its keyframe within about one interval plus the publisher's
encode time.

Taps (`add_tap()` / `remove_tap()`): read-only observers of the incoming stream, used by the
recorder (server/recording). A tap's `on_rtp(data)` gets every decrypted, RTX-unwrapped media
packet with a payload (never RTX wrappers, never padding-only packets), whether or not the
producer is paused; `on_sender_report(rtp_timestamp, ntp_timestamp)` gets the publisher's RTCP
SR mapping for the media SSRC. The hot path pays one truthiness test when no tap is set. A tap
must not block; a tap that raises is logged and removed, never propagated into the media path.

Events:
    "close" (reason: CloseReason) - once, after the producer and its consumers closed.
    "pause" () / "resume" () - when `paused` changes (mute).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, NewType, Protocol

from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from server.ids import ParticipantId, new_id
from signaling.reasons import CloseReason

from . import aiortc_hooks, pacing
from .events import EventEmitter
from .forwarding import OutputStream, PacketHistory, forward
from .pacing import SYNC_FANOUT, Pacer, loop_pacer
from .rtp import header_length, is_vp8_keyframe_start, payload_end, read_seq

log = logging.getLogger(__name__)

ProducerId = NewType("ProducerId", str)


class ProducerTap(Protocol):
    """A read-only observer of a producer's incoming stream (see the module docstring)."""

    def on_rtp(self, data: bytes) -> None:
        """One decrypted media RTP packet (header included), in arrival order."""

    def on_sender_report(self, rtp_timestamp: int, ntp_timestamp: int) -> None:
        """The publisher's RTCP SR: `rtp_timestamp` was sampled at 64-bit NTP time."""


class ProducerOutput(Protocol):
    """What a producer needs of its consumers (consumer.py); kept here so that the producer
    does not depend on the consumer module, which depends on it."""

    @property
    def id(self) -> str: ...

    @property
    def peer_id(self) -> ParticipantId: ...

    @property
    def active(self) -> bool: ...

    @property
    def stream(self) -> OutputStream | None: ...

    def close(self, reason: CloseReason) -> None: ...


class Producer(EventEmitter):
    """An incoming stream; see the module docstring for its events."""

    def __init__(
        self,
        peer_id: ParticipantId,
        kind: str,
        receiver: RTCRtpReceiver,
        *,
        mid: str | None,
        pli_interval: float = 0.5,
    ) -> None:
        super().__init__()
        self.id = ProducerId(new_id())
        self.peer_id = peer_id
        self.kind = kind
        self.mid = mid
        self.receiver = receiver
        self.closed = False
        self.close_reason: CloseReason | None = None
        self.paused = False
        self.consumers: dict[str, ProducerOutput] = {}  # by consumer id
        self.history = PacketHistory()
        self.outputs: tuple[OutputStream, ...] = ()
        self.payload_type: int | None = None
        self.clock_rate = 90000 if kind == "video" else 48000
        self.media_ssrc: int | None = None
        self.rtx_ssrcs: dict[int, int] = {}  # RTX SSRC -> media SSRC
        self.rtx_payload_types: set[int] = set()
        self.last_sr: tuple[int, int, int, float] | None = None  # ssrc, ntp, rtp ts, monotonic
        self.pli_interval = pli_interval
        self._last_pli = -1e9
        self._pli_timer: asyncio.TimerHandle | None = None
        self._pli_pending = False  # requested before the publisher's SSRC was known
        self._pli_tasks: set[asyncio.Task[None]] = set()
        # counters (diagnostics, tests, benchmark)
        self.packets_received = 0
        self.bytes_received = 0
        self.rtx_received = 0
        self.keyframe_requests = 0
        self.plis_sent = 0
        self.taps: tuple[ProducerTap, ...] = ()
        # Line adaptation (adaptation.py): a per-packet gate while some consumer waits for a
        # keyframe or gets stills, and the most the publisher is asked to send (REMB, bit/s).
        self.gate: Callable[[bytes, float], None] | None = None
        self.remb_cap: int | None = None
        self.upstream_loss = 0.0  # fraction lost on the way in, last adaptation tick
        # What the stream is, decided by the Router (screen sharing, issue 13.4): "camera",
        # "microphone", "screen", or None while it may not be forwarded or recorded (held).
        self.source: str | None = None
        # Keyframe pacing (pacing.py): video to more than SYNC_FANOUT outputs goes out in
        # slices on the worker's pacer (set on first use; tests may set their own).
        self.pacer: Pacer | None = None

    # --- taps (recording) ----------------------------------------------------------------

    def add_tap(self, tap: ProducerTap) -> None:
        """Observe the incoming stream (module docstring); adding a tap twice is a no-op."""
        if tap not in self.taps and not self.closed:
            self.taps = (*self.taps, tap)

    def remove_tap(self, tap: ProducerTap) -> None:
        """Stop observing; does nothing if `tap` is not set."""
        self.taps = tuple(t for t in self.taps if t is not tap)

    def _tap_rtp(self, data: bytes) -> None:
        # Padding-only packets (P bit set, payload made only of padding) carry no media.
        if data[0] & 0x20:
            try:
                if payload_end(data) <= header_length(data):
                    return
            except IndexError:
                return
        for tap in self.taps:
            try:
                tap.on_rtp(data)
            except Exception:
                log.exception("producer %s: tap failed; removed", self.id)
                self.remove_tap(tap)

    # --- set-up from negotiation -------------------------------------------------------

    def _on_parameters(self, parameters: RTCRtpReceiveParameters) -> None:
        for codec in parameters.codecs:
            if codec.payloadType is None:
                continue
            if is_rtx(codec):
                self.rtx_payload_types.add(codec.payloadType)
            elif self.payload_type is None:
                self.payload_type = codec.payloadType
                self.clock_rate = codec.clockRate
        for encoding in parameters.encodings:
            if encoding.ssrc and self.media_ssrc is None:
                self.media_ssrc = encoding.ssrc
                if self._pli_pending:
                    self._pli_pending = False
                    self._send_pli()
            if encoding.rtx is not None:
                self.rtx_ssrcs[encoding.rtx.ssrc] = encoding.ssrc

    def _on_sender_report(self, ssrc: int, ntp: int, rtp_timestamp: int) -> None:
        self.last_sr = (ssrc, ntp, rtp_timestamp, time.monotonic())
        if self.taps and ssrc == self.media_ssrc:
            for tap in self.taps:
                try:
                    tap.on_sender_report(rtp_timestamp, ntp)
                except Exception:
                    log.exception("producer %s: tap failed; removed", self.id)
                    self.remove_tap(tap)

    # --- the per-packet entry point (called by Peer's input hook) ------------------------

    def on_rtp(self, data: bytes, ssrc: int, now: float) -> None:
        """Store and forward one decrypted, RTX-unwrapped media packet."""
        self.packets_received += 1
        self.bytes_received += len(data)
        if ssrc != self.media_ssrc:
            self.media_ssrc = ssrc
            if self._pli_pending:
                self._pli_pending = False
                self._send_pli()
        self.history.put(data, read_seq(data))
        if self.gate is not None:
            self.gate(data, now)
        outputs = self.outputs
        if outputs:
            pacer = self.pacer
            if (
                self.kind != "video"
                or not pacing.ENABLED
                or (len(outputs) <= SYNC_FANOUT and (pacer is None or not pacer.pending(self)))
            ):
                forward(data, outputs, now)  # audio never waits; small fan-outs need no pacing
            else:
                if pacer is None:
                    pacer = self.pacer = loop_pacer()
                pacer.submit(
                    self,
                    data,
                    outputs,
                    now,
                    keyframe=is_vp8_keyframe_start(data),
                    on_overflow=self.request_keyframe,
                )
        if self.taps:
            self._tap_rtp(data)

    # --- control -------------------------------------------------------------------------

    def attach(self, consumer: ProducerOutput) -> None:
        """A new consumer of this producer (called by the Consumer it makes)."""
        self.consumers[consumer.id] = consumer

    def detach(self, consumer: ProducerOutput) -> None:
        """A consumer closed: forget it and stop sending to it."""
        self.consumers.pop(consumer.id, None)
        self.update_outputs()

    def update_outputs(self) -> None:
        """Recompute the streams the hot path sends to; consumers call it when their state
        (negotiated, transport, paused) changes."""
        before = self.outputs
        if self.closed or self.paused:
            self.outputs = ()
        else:
            self.outputs = tuple(
                c.stream for c in self.consumers.values() if c.active and c.stream is not None
            )
        for stream in self.outputs:
            if stream not in before:
                # Back after an interruption (room change, mute, new consumer on the slot): a
                # new segment, so the subscriber sees no gap to NACK (forwarding.py).
                stream.restart()
        if self.pacer is not None:
            # A route cut (closed, paused, private room, transport gone) ends what the queue
            # would still send to that output (pacing.py).
            self.pacer.retarget(self, self.outputs)

    def pause(self) -> None:
        """Stop forwarding to every consumer (mute); idempotent."""
        if self.paused or self.closed:
            return
        self.paused = True
        self.update_outputs()
        self._emit("pause")

    def resume(self) -> None:
        """Forward again, starting with a keyframe request; idempotent."""
        if not self.paused or self.closed:
            return
        self.paused = False
        self.update_outputs()
        self.request_keyframe()
        self._emit("resume")

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, throttled and coalesced (audio: no-op)."""
        if self.kind != "video" or self.closed:
            return
        self.keyframe_requests += 1
        if self._pli_timer is not None:
            return  # a deferred PLI is already scheduled: this request is coalesced into it
        loop = asyncio.get_running_loop()
        wait = self._last_pli + self.pli_interval - loop.time()
        if wait <= 0:
            self._send_pli()
        else:
            self._pli_timer = loop.call_later(wait, self._send_pli)

    def _send_pli(self) -> None:
        self._pli_timer = None
        if self.closed:
            return
        if self.media_ssrc is None:
            self._pli_pending = True
            return
        self._last_pli = asyncio.get_running_loop().time()
        self.plis_sent += 1
        task = asyncio.ensure_future(aiortc_hooks.send_pli(self.receiver, self.media_ssrc))
        self._pli_tasks.add(task)
        task.add_done_callback(self._pli_tasks.discard)

    def close(self, reason: CloseReason) -> None:
        """Close the producer and, with reason PRODUCER_CLOSED, all its consumers; idempotent."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.outputs = ()
        self.taps = ()
        if self.pacer is not None:
            self.pacer.cancel(self)
        if self._pli_timer is not None:
            self._pli_timer.cancel()
            self._pli_timer = None
        for consumer in list(self.consumers.values()):
            consumer.close(CloseReason.PRODUCER_CLOSED)
        self.history.clear()
        self._emit("close", reason)
        self.remove_all_listeners()

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "peer_id": self.peer_id,
            "kind": self.kind,
            "mid": self.mid,
            "source": self.source,
            "closed": self.closed,
            "close_reason": self.close_reason,
            "paused": self.paused,
            "payload_type": self.payload_type,
            "media_ssrc": self.media_ssrc,
            "rtx_ssrcs": dict(self.rtx_ssrcs),
            "consumers": sorted(self.consumers),
            "active_outputs": len(self.outputs),
            "packets_received": self.packets_received,
            "bytes_received": self.bytes_received,
            "rtx_received": self.rtx_received,
            "keyframe_requests": self.keyframe_requests,
            "plis_sent": self.plis_sent,
            "taps": len(self.taps),
            "paced_backlog": self.pacer.backlog(self) if self.pacer is not None else 0,
        }
