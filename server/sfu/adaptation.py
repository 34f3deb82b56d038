"""Line adaptation: video gives way before audio (issue 16.1).

The SFU forwards encoded packets; it cannot re-encode a stream for a weak subscriber. What it
can do, per subscriber, is (1) learn what the subscriber's downlink carries, (2) ask the
publishers for less, and (3) stop sending video this subscriber cannot take, while its audio
keeps flowing. Three parts, each small and testable on its own:

* `DownlinkEstimator` (one per subscriber peer, fed by `Peer` from the subscriber's RTCP):
  the loss-based half of Google Congestion Control (draft-ietf-rmcat-gcc-02, section 6) on
  the receiver reports' *fraction lost* - above 10 % the estimate falls to what arrived (sent
  times (1 - loss): GCC's (1 - loss/2) takes several reports to find a hard cap, and each
  report interval of overload costs audio), below 2 % it grows 8 % a second, in between it
  holds; jitter over 60 ms also holds it - and capped by the subscriber's own REMB when it
  sends one (Chrome does; aiortc subscribers do not, since the SFU's packets carry no
  abs-send-time). No transport-wide CC: aiortc negotiates none (notes/aiortc-sfu-research.md, 1.5).
  So that a capped line still gets still pictures (issue 16.2): while video is held back, a
  clean report lifts an estimate below what audio and stills need to that figure (a probe,
  with a doubling hold-off when it fails), reports about held-back video are ignored, and
  jitter holds growth only while the SFU fills the line.
* `decide()` (a pure function): given one subscriber's estimate, what its audio takes and
  what each of its video streams needs (the publisher's measured rate), which video streams
  it gets in full (`Mode.FULL`), as a still picture now and then (`Mode.STILLS`: one keyframe
  every few seconds, "thinned"), or not at all (`Mode.OFF`). Audio is never decided: it is
  budgeted first. Hysteresis: a full stream stays while it fits; a paused one comes back only
  with 25 % headroom and after a hold-off that doubles each time a return fails (15 s to 120
  s), so that probing a line that cannot take video does not cost its audio again and again.
* `Adaptation` (one per Router, a 0.5 s tick): measures the rates, runs the estimators and
  `decide()` for every subscriber, applies the modes (pausing a consumer takes its stream out
  of the producer's fan-out at once; resuming waits for the publisher's next keyframe - it
  asks for one - so the subscriber's decoder restarts cleanly), and sends each publisher a
  REMB with the least that its *constrained* subscribers can take, but never less than
  `FLOOR_BPS` (Galene's rule: one very weak subscriber must not ruin everyone's picture;
  that subscriber gets stills or no video instead). The publisher's own inbound estimate
  (aiortc's REMB from the SFU's receiver) is capped by the same figure.

A subscriber may also ask for no video at all (`set_audio_only`, the party page's audio-only
mode): its video consumers are OFF with reason "audio_only" until it asks again.

Every change of a subscriber's video from a publisher is emitted as
"video" (subscriber_id, publisher_id, paused: bool, reason: str | None), which the worker turns
into the `video_paused` / `video_resumed` signaling events (docs/signaling.md).

The per-packet cost: a producer with a consumer waiting for a keyframe or getting stills has a
`gate` (one `is not None` test per packet otherwise); the gate reads the VP8 payload
descriptor of each packet while it is set.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiortc.rtp import (
    RTCP_PSFB_APP,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

from server.ids import ParticipantId

from . import aiortc_hooks
from .events import EventEmitter
from .forwarding import forward
from .rtp import is_vp8_keyframe_start, read_timestamp

if TYPE_CHECKING:
    from .consumer import Consumer
    from .producer import Producer

log = logging.getLogger(__name__)

TICK_S = 0.5
LOSS_HIGH = 0.10  # GCC: above this the estimate falls
LOSS_LOW = 0.02  # GCC: below this it grows
GROWTH_PER_S = 1.08
REPORT_TICKS = 3  # a receiver report covers about this many ticks of what was sent
CUT_HOLD_S = 1.5  # after a cut, the next cut waits this long
UNDERUSED = 0.5  # sending less than this share of the estimate: loss is no rate signal
JITTER_HIGH_MS = 60.0  # queues building up on the way: hold, do not grow
MAX_BPS = 2_500_000  # above this the line is taken as unconstrained
FLOOR_BPS = 150_000  # never ask a publisher for less (Galene's lower bound)
HEADROOM = 0.85  # of the estimate, the share the SFU plans to use
RESUME_MARGIN = 1.25  # a paused stream returns only if it fits this many times
HOLD_BASE_S = 15.0  # a paused stream stays paused at least this long ...
HOLD_MAX_S = 120.0  # ... doubling after each failed return, up to this
FAILED_RETURN_S = 10.0  # paused again within this of a return: the return failed
STILL_INTERVAL_S = 6.0  # STILLS: one keyframe this often, at most
STILLS_MIN_BPS = 48_000  # budget left for stills, else OFF
STILL_RATE_BPS = 48_000  # a still is paced out at this rate, never sent as a burst
# a still (and video resumed after a pause for bandwidth) starts this many sequence numbers
# on: packets the line dropped before the pause (a full queue) leave a hole that a receiver's
# jitter buffer waits on until the numbers move past its capacity (aiortc's video buffer: 512)
# - a still alone would never be shown, and resumed video would wait ~5 s
STILL_SEQ_SKIP = 600
STILL_QUEUE_PACKETS = 200  # bounded: a still bigger than this is cut (the decoder then waits)
PACE_S = 0.02
REMB_EVERY_S = 1.0
REMB_FRESH_S = 5.0
RATE_SMOOTHING = 0.7  # weight of the previous rate in the moving average
PACKET_OVERHEAD = 44  # SRTP tag 16 + UDP 8 + IPv4 20 bytes per packet, beyond the payload
KEYFRAME_WAIT_S = 2.0  # a resume still waiting for its keyframe asks again after this
PROBE_MARGIN = 1.02  # a stills probe lifts the estimate this much above what stills need
PROBE_HOLD_BASE_S = 15.0  # a probe that failed (cut within FAILED_RETURN_S) waits this long ...
PROBE_HOLD_MAX_S = 120.0  # ... doubling after each failure, up to this

REASON_BANDWIDTH = "bandwidth"
REASON_AUDIO_ONLY = "audio_only"


class Mode(enum.StrEnum):
    FULL = "full"
    STILLS = "stills"  # thinned: a keyframe every STILL_INTERVAL_S
    OFF = "off"


# --- the estimator -----------------------------------------------------------------------------


class DownlinkEstimator:
    """What one subscriber's downlink carries, from its RTCP (module docstring)."""

    def __init__(self) -> None:
        self.estimate_bps: float | None = None  # None: no sign of a limit
        self.remb_bps: float | None = None
        self.remb_at = -math.inf
        self.loss: float | None = None  # last fraction lost reported (worst stream)
        self.jitter_ms: float | None = None
        self.sent_bps = 0.0
        self.reports = 0
        self._loss_since: float | None = None  # worst loss reported since the last update
        self._updated: float | None = None
        self._recent: deque[float] = deque(maxlen=REPORT_TICKS)
        self._cut_at = -math.inf
        # SSRCs of video held back from this subscriber (stills or off): their reports are no
        # rate signal - the first after a still counts the packets the line dropped before
        # the pause (the still continues the sequence numbers), and a keyframe paced out
        # over seconds under one timestamp reads as jitter. Audio's reports still count.
        self.quiet_ssrcs: frozenset[int] = frozenset()
        self._underused = False  # the last report was judged while sending < UNDERUSED
        self._probed_at = -math.inf  # when the estimate was last lifted to a stills floor
        self._probe_hold_until = -math.inf
        self._probe_hold_s = PROBE_HOLD_BASE_S

    def on_receiver_report(
        self, fraction_lost: float, jitter_ms: float, now: float, upstream: float = 0.0
    ) -> None:
        """A report block; `upstream` is the share the publisher's own line lost before the
        SFU (forwarded sequence numbers keep its gaps, so the subscriber counts them too):
        only what is left is this downlink's loss."""
        self.reports += 1
        if 0 < upstream < 1:
            fraction_lost = max(0.0, (fraction_lost - upstream) / (1 - upstream))
        worst = self._loss_since
        self._loss_since = fraction_lost if worst is None else max(worst, fraction_lost)
        self.jitter_ms = jitter_ms

    def on_remb(self, bitrate: float, now: float) -> None:
        self.remb_bps = bitrate
        self.remb_at = now

    def on_rtcp(
        self,
        packet: AnyRtcpPacket,
        clock_rates: dict[int, int],
        now: float,
        upstream: float = 0.0,
    ) -> None:
        """Feed one RTCP packet the subscriber sent about streams with SSRCs in
        `clock_rates` (SSRC -> RTP clock rate); `upstream`: see `on_receiver_report`."""
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for block in packet.reports:
                rate = clock_rates.get(block.ssrc)
                if rate and block.ssrc not in self.quiet_ssrcs:
                    self.on_receiver_report(
                        block.fraction_lost / 256, 1000 * block.jitter / rate, now, upstream
                    )
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, _ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            self.on_remb(bitrate, now)

    def update(self, sent_bps: float, now: float, floor_bps: float | None = None) -> float | None:
        """Advance to `now` with what was sent since the last update; the new estimate.

        `floor_bps`: what the subscriber's audio plus still pictures need (Adaptation passes
        it while video is held back). The loss-based estimate can only grow from what is
        sent, 8 %/s, so once video stops it under-reads a capped line for a long time; a
        clean report below the floor lifts the estimate to it at once - a probe: the still
        pictures then sent (paced, 48 kbit/s) are what tests the line. A probe answered by a
        cut within FAILED_RETURN_S failed: the next waits 15 s, doubling up to 120 s."""
        self.sent_bps = sent_bps
        self._recent.append(sent_bps)
        # a report covers the last second or so: judge it against what was sent then
        basis = max(self._recent)
        loss, self._loss_since = self._loss_since, None
        if loss is not None:
            # growth runs on the time since the previous report, not since the last tick
            dt = 0.0 if self._updated is None else min(2.0, max(0.0, now - self._updated))
            self._updated = now
            self.loss = loss
            estimate = self.estimate_bps
            self._underused = estimate is not None and basis < estimate * UNDERUSED
            if (
                loss > LOSS_HIGH
                and (estimate is None or basis >= estimate * UNDERUSED)
                and now - self._cut_at >= CUT_HOLD_S
            ):
                # GCC's sent x (1 - loss/2), but never above what arrived: under a hard cap
                # (a full queue on the way) that is the line's rate, found in one report.
                # Loss while sending far less than the estimate (a still picture's burst, a
                # random drop) says nothing about the rate: it holds.
                target = max(basis * (1 - loss), 1.0)
                self.estimate_bps = target if estimate is None else min(estimate, target)
                # the next report may still cover the overload just answered: one cut per
                # report interval (GCC: at most one decrease per round trip)
                self._cut_at = now
                self._probe_failed(now)
            elif loss < LOSS_LOW and estimate is not None and not self._jittery():
                grown = estimate * GROWTH_PER_S**dt
                self.estimate_bps = None if grown > MAX_BPS else grown
                self._probe(floor_bps, now)
        return self.current(now)

    def _probe(self, floor_bps: float | None, now: float) -> None:
        estimate = self.estimate_bps
        if (
            floor_bps is None
            or estimate is None
            or estimate >= floor_bps
            or now < self._probe_hold_until
        ):
            return
        self.estimate_bps = floor_bps
        self._probed_at = now

    def _probe_failed(self, now: float) -> None:
        if now - self._probed_at >= FAILED_RETURN_S:
            self._probe_hold_s = PROBE_HOLD_BASE_S
            return
        self._probe_hold_until = now + self._probe_hold_s
        self._probe_hold_s = min(PROBE_HOLD_MAX_S, self._probe_hold_s * 2)
        self._probed_at = -math.inf

    def _jittery(self) -> bool:
        """Jitter holds growth only while the SFU fills the line: sending under half the
        estimate, the jitter is the publishers' own (their lines, a loaded machine), not a
        queue on this downlink."""
        if self._underused:
            return False
        return self.jitter_ms is not None and self.jitter_ms > JITTER_HIGH_MS

    def current(self, now: float) -> float | None:
        """The estimate, capped by a fresh REMB; None when nothing limits the line."""
        remb = self.remb_bps if now - self.remb_at <= REMB_FRESH_S else None
        if remb is None:
            return self.estimate_bps
        if self.estimate_bps is None:
            return remb
        return min(self.estimate_bps, remb)

    def dump(self, now: float) -> dict[str, Any]:
        current = self.current(now)
        return {
            "estimate_kbps": None if current is None else round(current / 1000, 1),
            "loss": None if self.loss is None else round(self.loss, 4),
            "jitter_ms": None if self.jitter_ms is None else round(self.jitter_ms, 1),
            "remb_kbps": None if self.remb_bps is None else round(self.remb_bps / 1000, 1),
            "sent_kbps": round(self.sent_bps / 1000, 1),
            "probe_hold_s": round(max(0.0, self._probe_hold_until - now), 1),
        }


# --- the decider -------------------------------------------------------------------------------


@dataclass
class VideoState:
    """What the decider remembers of one video stream to one subscriber."""

    need_bps: float = 0.0
    mode: Mode = Mode.FULL
    returned_at: float = -math.inf
    hold_until: float = -math.inf
    hold_s: float = HOLD_BASE_S

    def set_mode(self, mode: Mode, now: float) -> None:
        if mode == self.mode:
            return
        if mode is Mode.FULL:
            self.returned_at = now
        elif self.mode is Mode.FULL:
            failed = now - self.returned_at < FAILED_RETURN_S
            self.hold_s = min(HOLD_MAX_S, self.hold_s * 2) if failed else HOLD_BASE_S
            self.hold_until = now + self.hold_s
        self.mode = mode


def decide(
    estimate_bps: float | None, audio_bps: float, streams: dict[str, VideoState], now: float
) -> dict[str, Mode]:
    """The mode each video stream of one subscriber should have (module docstring)."""
    if estimate_bps is None:
        return {
            key: Mode.FULL if s.mode is Mode.FULL or now >= s.hold_until else s.mode
            for key, s in streams.items()
        }
    budget = estimate_bps * HEADROOM - audio_bps
    order = sorted(streams, key=lambda k: (streams[k].mode is not Mode.FULL, streams[k].need_bps))
    modes: dict[str, Mode] = {}
    for key in order:
        s = streams[key]
        if s.mode is Mode.FULL:
            fits = s.need_bps <= budget
        else:
            fits = s.need_bps * RESUME_MARGIN <= budget and now >= s.hold_until
        if fits:
            modes[key] = Mode.FULL
            budget -= s.need_bps
        elif budget >= STILLS_MIN_BPS:
            modes[key] = Mode.STILLS
            budget -= STILLS_MIN_BPS
        else:
            modes[key] = Mode.OFF
    return modes


def stills_floor(audio_bps: float, videos: Iterable[VideoState], audio_only: bool) -> float | None:
    """The estimate a subscriber needs for its audio (measured, packet overhead included:
    ~50 kbit/s per 32 kbit/s Opus stream) plus one stream of still pictures, when some of
    its video is held back; None when nothing is (or it asked for audio only)."""
    if audio_only or all(v.mode is Mode.FULL for v in videos):
        return None
    return (audio_bps + STILLS_MIN_BPS) / HEADROOM * PROBE_MARGIN


def publisher_target(shares: Iterable[float]) -> float | None:
    """The bitrate to ask a publisher for: the least share a constrained subscriber can give
    its video, but not below FLOOR_BPS; None when no subscriber is constrained."""
    usable = [s for s in shares if s >= FLOOR_BPS]
    if not usable:
        return None
    return min(MAX_BPS, max(FLOOR_BPS, min(usable)))


# --- the router's adaptation -------------------------------------------------------------------


@dataclass
class _Gate:
    """Per producer: consumers waiting for a keyframe to resume, and consumers getting stills."""

    waiting: dict[str, Consumer] = field(default_factory=dict)
    waiting_since: float = 0.0
    stills: dict[str, Consumer] = field(default_factory=dict)
    still_ts: dict[str, int] = field(default_factory=dict)  # consumer id -> keyframe timestamp
    # consumer id -> timestamp of the frame after the keyframe, sent with it: a receiver's
    # jitter buffer (aiortc's) hands a frame to the decoder only when a later one arrives
    still_tail: dict[str, int] = field(default_factory=dict)
    still_at: dict[str, float] = field(default_factory=dict)
    # a still's packets, waiting to be paced out (video only: audio never queues)
    queues: dict[str, deque[bytes]] = field(default_factory=dict)
    credit: dict[str, float] = field(default_factory=dict)


@dataclass
class _Subscriber:
    estimator: DownlinkEstimator
    audio_only: bool = False
    videos: dict[str, VideoState] = field(default_factory=dict)  # by consumer id
    told: dict[str, str | None] = field(default_factory=dict)  # publisher -> reason told
    audio_bps: float = 0.0
    estimate_bps: float | None = None


class SubscriberPeer(Protocol):
    """What the adaptation reads of a subscriber's peer (sfu/peer.py's Peer)."""

    @property
    def id(self) -> ParticipantId: ...
    @property
    def closed(self) -> bool: ...
    @property
    def downlink(self) -> DownlinkEstimator: ...
    @property
    def consumers(self) -> Mapping[Any, Consumer]: ...


class Routing(Protocol):
    """What the adaptation reads of its Router: the peers and the producers. A protocol, so
    the adaptation sits below the router and the peer that use it (no import circle)."""

    @property
    def peers(self) -> Mapping[ParticipantId, SubscriberPeer]: ...
    def producers(self) -> Iterable[Producer]: ...


class Adaptation(EventEmitter):
    """The line adaptation of one Router (module docstring)."""

    def __init__(self, router: Routing) -> None:
        super().__init__()
        self._router = router
        self._subscribers: dict[ParticipantId, _Subscriber] = {}
        self._gates: dict[str, _Gate] = {}  # by producer id
        self._rates: dict[str, tuple[int, float]] = {}  # stream key -> (bytes seen, bps)
        self._targets: dict[str, float] = {}  # producer id -> REMB asked
        self._remb_sent: dict[str, float] = {}
        self._upstream_counts: dict[str, tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._pacer: asyncio.Task[None] | None = None
        self._last_tick: float | None = None
        self.paused_video_streams = 0

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start ticking (idempotent; needs a running loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._pacer is not None:
            self._pacer.cancel()
            self._pacer = None
        for gate_owner in self._router.producers():
            gate_owner.gate = None
        self._gates.clear()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self.tick(time.monotonic())
            except Exception:
                log.exception("line adaptation tick failed")

    # --- inputs ------------------------------------------------------------------------------

    def _subscriber(self, peer_id: ParticipantId) -> _Subscriber:
        sub = self._subscribers.get(peer_id)
        if sub is None:
            sub = self._subscribers[peer_id] = _Subscriber(DownlinkEstimator())
        return sub

    def set_audio_only(self, peer_id: ParticipantId, audio_only: bool) -> None:
        """The subscriber asks for no video (or for video again); applied at once."""
        self._subscriber(peer_id).audio_only = audio_only
        self.tick(time.monotonic(), measure=False)

    def on_consumer(self, consumer: Consumer) -> None:
        """A new consumer: an audio-only subscriber's new video is paused before it starts."""
        sub = self._subscribers.get(consumer.peer_id)
        if consumer.kind == "video" and sub is not None and sub.audio_only:
            state = sub.videos.setdefault(consumer.id, VideoState())
            state.mode = Mode.OFF
            consumer.pause()
            self._tell(sub, consumer, REASON_AUDIO_ONLY)

    # --- the tick ----------------------------------------------------------------------------

    def _rate(self, key: str, total_bytes: int, dt: float) -> float:
        seen, bps = self._rates.get(key, (total_bytes, 0.0))
        if dt > 0:
            now_bps = max(0, total_bytes - seen) * 8 / dt
            bps = now_bps if bps == 0 else RATE_SMOOTHING * bps + (1 - RATE_SMOOTHING) * now_bps
        self._rates[key] = (total_bytes, bps)
        return bps

    def tick(self, now: float, *, measure: bool = True) -> None:
        """Measure, estimate, decide and apply for every subscriber; ask publishers for less."""
        router = self._router
        dt = 0.0 if self._last_tick is None or not measure else now - self._last_tick
        if measure:
            self._last_tick = now
        producer_bps: dict[str, float] = {}
        if measure:
            self._measure_upstream(router)
        for producer in router.producers():
            producer_bps[producer.id] = (
                self._rate(producer.id, producer.bytes_received, dt)
                if measure
                else self._rates.get(producer.id, (0, 0.0))[1]
            )
        shares: dict[str, list[float]] = {}
        live: set[str] = set()
        for peer in list(router.peers.values()):
            if peer.closed:
                continue
            sub = self._subscriber(peer.id)
            sub.estimator = peer.downlink  # the Peer feeds it from the subscriber's RTCP
            consumers = [c for c in peer.consumers.values() if not c.closed]
            sent = 0.0
            audio = 0.0
            for c in consumers:
                live.add(c.id)
                if c.stream is None:
                    continue
                wire = c.stream.octets + PACKET_OVERHEAD * c.stream.packets
                bps = (
                    self._rate("s" + c.id, wire, dt)
                    if measure
                    else self._rates.get("s" + c.id, (0, 0.0))[1]
                )
                sent += bps
                if c.kind == "audio" and not c.producer.paused:
                    audio += bps
            sub.audio_bps = audio
            videos = [c for c in consumers if c.kind == "video"]
            floor = stills_floor(audio, sub.videos.values(), sub.audio_only)
            estimate = (
                sub.estimator.update(sent, now, floor) if measure else sub.estimator.current(now)
            )
            sub.estimate_bps = estimate
            for key in list(sub.videos):
                if key not in {c.id for c in videos}:
                    del sub.videos[key]
            for c in videos:
                state = sub.videos.setdefault(c.id, VideoState())
                state.need_bps = producer_bps.get(c.producer_id, 0.0) * 1.05
            if sub.audio_only:
                modes = dict.fromkeys(sub.videos, Mode.OFF)
            else:
                modes = decide(estimate, audio, sub.videos, now)
            full = [c for c in videos if modes.get(c.id) is Mode.FULL]
            if estimate is not None and full:
                share = (estimate * HEADROOM - audio) / len(full)
                for c in full:
                    shares.setdefault(c.producer_id, []).append(share)
            for c in videos:
                self._apply(sub, c, modes.get(c.id, Mode.FULL), now)
            sub.estimator.quiet_ssrcs = frozenset(
                c.stream.ssrc
                for c in videos
                if c.stream is not None and modes.get(c.id, Mode.FULL) is not Mode.FULL
            )
        self._subscribers = {
            pid: s for pid, s in self._subscribers.items() if pid in router.peers or s.audio_only
        }
        self._rates = {k: v for k, v in self._rates.items() if k in producer_bps or k[1:] in live}
        self._retry_keyframes(now)
        self._ask_publishers(shares, now)
        self.paused_video_streams = sum(
            1 for s in self._subscribers.values() for v in s.videos.values() if v.mode != Mode.FULL
        )

    def _measure_upstream(self, router: Routing) -> None:
        """Each producer's loss on its way in since the last tick (see on_receiver_report)."""
        alive = {"u" + p.id for p in router.producers()}
        self._upstream_counts = {k: v for k, v in self._upstream_counts.items() if k in alive}
        for producer in router.producers():
            if producer.media_ssrc is None:
                continue
            counts = aiortc_hooks.receiver_expected_received(producer.receiver, producer.media_ssrc)
            if counts is None:
                continue
            key = "u" + producer.id
            expected0, received0 = self._upstream_counts.get(key, (0, 0))
            self._upstream_counts[key] = counts
            expected, received = counts[0] - expected0, counts[1] - received0
            if expected > 0:
                loss = max(0.0, min(1.0, (expected - received) / expected))
                producer.upstream_loss = 0.5 * producer.upstream_loss + 0.5 * loss

    def _apply(self, sub: _Subscriber, consumer: Consumer, mode: Mode, now: float) -> None:
        state = sub.videos[consumer.id]
        previous = state.mode
        if sub.audio_only:
            state.mode, state.hold_until = mode, -math.inf  # asked for: no hold-off after it
        else:
            state.set_mode(mode, now)
        gate = self._gate(consumer.producer)
        if mode is Mode.FULL:
            gate.stills.pop(consumer.id, None)
            if consumer.paused and consumer.id not in gate.waiting:
                gate.waiting[consumer.id] = consumer  # resumes on the next keyframe
                gate.waiting_since = now
                consumer.producer.request_keyframe()
            elif not consumer.paused and previous is not Mode.FULL:
                self._tell(sub, consumer, None)
        else:
            gate.waiting.pop(consumer.id, None)
            if not consumer.paused:
                consumer.pause()
            if mode is Mode.STILLS and not sub.audio_only:
                gate.stills.setdefault(consumer.id, consumer)
            else:
                gate.stills.pop(consumer.id, None)
            self._tell(sub, consumer, REASON_AUDIO_ONLY if sub.audio_only else REASON_BANDWIDTH)
        self._arm(consumer.producer, gate)

    def _tell(self, sub: _Subscriber, consumer: Consumer, reason: str | None) -> None:
        publisher = str(consumer.producer_peer_id)
        if reason is None:
            if publisher not in sub.told:
                return  # never told it was paused
            del sub.told[publisher]
        else:
            if sub.told.get(publisher) == reason:
                return
            sub.told[publisher] = reason
        self._emit("video", consumer.peer_id, consumer.producer_peer_id, reason is not None, reason)

    # --- the packet gate (keyframe-aligned resume, stills) -----------------------------------

    def _gate(self, producer: Producer) -> _Gate:
        gate = self._gates.get(producer.id)
        if gate is None:
            gate = self._gates[producer.id] = _Gate()
        return gate

    def _arm(self, producer: Producer, gate: _Gate) -> None:
        if gate.waiting or gate.stills:
            if producer.gate is None:
                producer.gate = lambda data, now: self._on_packet(producer, gate, data, now)
        else:
            producer.gate = None

    def _on_packet(self, producer: Producer, gate: _Gate, data: bytes, now: float) -> None:
        if is_vp8_keyframe_start(data):
            ts = read_timestamp(data)
            waiting, gate.waiting = gate.waiting, {}
            for consumer in waiting.values():
                if not consumer.closed:
                    consumer.resume()  # in the fan-out from this packet on: a clean start
                    sub = self._subscribers.get(consumer.peer_id)
                    told = sub.told.get(str(consumer.producer_peer_id)) if sub else None
                    if told == REASON_BANDWIDTH and consumer.stream is not None:
                        # back after loss: the same jump as a still's (STILL_SEQ_SKIP), so a
                        # receiver's jitter buffer does not wait seconds for the lost packets
                        consumer.stream.restart(skip=STILL_SEQ_SKIP)
                    if sub is not None:
                        self._tell(sub, consumer, None)
            for key, consumer in gate.stills.items():
                if (
                    now - gate.still_at.get(key, -math.inf) >= STILL_INTERVAL_S
                    and consumer.stream
                    and not gate.queues.get(key)  # the previous still is out
                ):
                    gate.still_ts[key] = ts
                    gate.still_tail.pop(key, None)
                    gate.still_at[key] = now
                    gate.queues[key] = deque(maxlen=STILL_QUEUE_PACKETS)
                    gate.credit[key] = 0.0
                    stream = consumer.stream
                    stream.restart(skip=STILL_SEQ_SKIP)
            if not gate.stills:
                self._arm(producer, gate)
        if gate.still_ts:
            ts = read_timestamp(data)
            for key, still in list(gate.still_ts.items()):
                if key in gate.stills and (ts == still or (ts - still) & 0xFFFFFFFF >= 1 << 31):
                    if ts == still:
                        gate.queues[key].append(data)
                    continue  # an older packet (reordered from before the keyframe): not sent
                if key in gate.stills and gate.still_tail.setdefault(key, ts) == ts:
                    gate.queues[key].append(data)  # the frame after the keyframe
                    continue
                # the keyframe and the frame after it are out (or the consumer is gone)
                del gate.still_ts[key]
                gate.still_tail.pop(key, None)
            self._start_pacer()

    # --- pacing stills out ---------------------------------------------------------------------

    def _start_pacer(self) -> None:
        if self._pacer is None or self._pacer.done():
            self._pacer = asyncio.ensure_future(self._pace())

    async def _pace(self) -> None:
        """Send queued still pictures at STILL_RATE_BPS each, until every queue is empty: a
        keyframe is many times a narrow line's queue, and audio must not queue behind it."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(PACE_S)
            now = time.monotonic()
            pending = False
            for producer in self._router.producers():
                gate = self._gates.get(producer.id)
                if gate is not None and gate.queues:
                    pending |= self._drain(producer, gate, (now - last) * STILL_RATE_BPS / 8, now)
            last = now
            if not pending:
                return

    @staticmethod
    def _drain(producer: Producer, gate: _Gate, allowance: float, now: float) -> bool:
        pending = False
        for key, queue in list(gate.queues.items()):
            target = gate.stills.get(key)
            stream = target.stream if target is not None else None
            if target is None or stream is None:
                del gate.queues[key]
                continue
            credit = min(gate.credit.get(key, 0.0) + allowance, 4 * 1200.0)
            ready = (
                stream.path.ready
                and target.negotiated
                and target.transport_ready
                and not producer.paused
            )
            while queue and credit > 0:
                data = queue.popleft()
                credit -= len(data) + PACKET_OVERHEAD
                if ready:
                    forward(data, (stream,), now)
            gate.credit[key] = credit
            pending |= bool(queue)
        return pending

    def _retry_keyframes(self, now: float) -> None:
        for producer in self._router.producers():
            gate = self._gates.get(producer.id)
            if gate is None:
                continue
            for key in [k for k, c in gate.waiting.items() if c.closed]:
                del gate.waiting[key]
            for key in [k for k, c in gate.stills.items() if c.closed]:
                del gate.stills[key]
                gate.still_at.pop(key, None)
            if gate.waiting and now - gate.waiting_since >= KEYFRAME_WAIT_S:
                gate.waiting_since = now
                producer.request_keyframe()
            elif gate.stills and any(
                now - gate.still_at.get(k, -math.inf) >= STILL_INTERVAL_S + KEYFRAME_WAIT_S
                for k in gate.stills
            ):
                producer.request_keyframe()
            self._arm(producer, gate)
        alive = {p.id for p in self._router.producers()}
        self._gates = {k: g for k, g in self._gates.items() if k in alive}

    # --- asking the publishers for less ------------------------------------------------------

    def _ask_publishers(self, shares: dict[str, list[float]], now: float) -> None:
        for producer in self._router.producers():
            if producer.kind != "video":
                continue
            target = publisher_target(shares.get(producer.id, ()))
            before = self._targets.get(producer.id)
            if target is None:
                self._targets.pop(producer.id, None)
                producer.remb_cap = None
                if before is not None:
                    self._send_remb(producer, MAX_BPS, now)  # lift the cap at once
                continue
            self._targets[producer.id] = target
            producer.remb_cap = int(target)
            if before != target or now - self._remb_sent.get(producer.id, -math.inf) >= (
                REMB_EVERY_S
            ):
                self._send_remb(producer, target, now)

    def _send_remb(self, producer: Producer, bitrate: float, now: float) -> None:
        if producer.media_ssrc is None or producer.closed:
            return
        self._remb_sent[producer.id] = now
        aiortc_hooks.schedule_remb(producer.receiver, int(bitrate), [producer.media_ssrc])

    # --- reporting ---------------------------------------------------------------------------

    def dump(self, now: float | None = None) -> dict[str, Any]:
        """The adaptation state for the worker's stats (metrics)."""
        now = time.monotonic() if now is None else now
        downlinks: dict[str, Any] = {}
        for pid, sub in self._subscribers.items():
            downlinks[str(pid)] = {
                **sub.estimator.dump(now),
                "audio_kbps": round(sub.audio_bps / 1000, 1),
                "audio_only": sub.audio_only,
                "video": {
                    key: {"mode": str(v.mode), "need_kbps": round(v.need_bps / 1000, 1)}
                    for key, v in sub.videos.items()
                },
                "paused_from": dict(sub.told),
            }
        return {
            "paused_video_streams": self.paused_video_streams,
            "downlinks": downlinks,
            "publisher_targets_kbps": {k: round(v / 1000, 1) for k, v in self._targets.items()},
        }
