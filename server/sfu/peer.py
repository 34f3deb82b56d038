"""Peer: one participant's RTCPeerConnection on the SFU.

Made only by `Router.add_peer()`. The peer publishes what its client offers (one Producer per
offered audio/video m-line, VP8 or Opus only) and receives what the router routes to it (one
Consumer per forwarded stream, each on a *send slot*: a sendonly aiortc transceiver used only
for SDP and RTCP; media goes through forwarding.py).

Negotiation rule (works with browsers and aiortc clients, neither of which needs rollback):

1. The client always makes the first offer (`handle_offer`), with its tracks as sendonly (or
   sendrecv) m-lines. A receive-only client offers one recvonly audio m-line so that the
   connection has a transport. Candidates are complete in the SDP (no trickle): clients wait
   for ICE gathering to complete before sending the offer; the server's answer/offers are
   complete too.
2. After that, adding or removing consumers makes the *server* offer: the peer emits
   `"offer"` with the SDP to send; the client applies it and returns an answer, which the
   signaling layer passes to `handle_answer()`. An answer that cannot be applied raises
   NegotiationError and the same offer is emitted again (it is still outstanding). Changes
   made while an offer is outstanding are coalesced into the next offer, sent as soon as the
   answer arrives. A server offer left
   unanswered for `answer_timeout_s` (20 s) closes the peer with ICE_FAILED: the client
   rejoins rather than staying cut off from new media.
3. Server offers are only made while the connection is "connected" (aiortc, on either
   side, only starts the senders/receivers of a description applied while DTLS is up).
4. Glare: the server is the impolite side. A client offer that arrives while a server offer
   is outstanding raises `GlareError` (map it to an error reply); the client then applies the
   server's offer (browsers: perfect negotiation, the client is polite and rolls back; aiortc
   clients simply do not re-offer while they have a server offer to answer) and may retry
   its own offer afterwards. Client re-offers are otherwise accepted at any time.

Removed consumers leave their m-line "inactive"; the slot (transceiver, SSRC, sequence space)
is reused for the next consumer of the same kind, so the SDP does not grow without bound.
The server's connection always uses max-bundle: one ICE/DTLS transport per peer.

Events:
    "offer" (sdp: str) - send this server offer to the client; answer via handle_answer().
    "producer" (producer: Producer) - a new incoming stream (after the answer was made).
    "consumer" (consumer: Consumer) - a new outgoing stream, emitted just before the "offer"
        that contains it; `consumer.mid` tells the client which m-line carries whom.
    "consumerclose" (consumer: Consumer, reason: CloseReason)
    "ready" () - once, after the first client offer was answered (the router then routes).
    "connectionstatechange" (state: str) - aiortc's connection state.
    "close" (reason: CloseReason) - once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import struct
import time
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc import clock as aiortc_clock
from aiortc.codecs import is_rtx
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcpeerconnection import and_direction
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
)

from server.ids import ParticipantId
from signaling.reasons import CloseReason

from . import aiortc_hooks
from .adaptation import DownlinkEstimator
from .consumer import Consumer, ConsumerId
from .events import EventEmitter
from .forwarding import OutputStream, SendPath, unwrap_rtx
from .producer import Producer, ProducerId
from .quality import LinkQuality, PeerStats, RateMeter
from .rtp import read_ssrc
from .sdp_align import align_offer

log = logging.getLogger(__name__)

_MAX_LEARNED_SSRCS = 64


class PeerError(Exception):
    """Base class of the SFU peer errors."""


ANSWER_TIMEOUT_S = 20.0


class PeerClosedError(PeerError):
    """The peer (or its router) is closed."""


class GlareError(PeerError):
    """A client offer arrived while a server offer is outstanding; answer that one first."""


class NegotiationError(PeerError):
    """The SDP could not be applied (malformed, no VP8/Opus, wrong signaling state)."""


class _SendSlot:
    """A sendonly transceiver and the output stream it carries (see module docstring)."""

    __slots__ = ("consumer", "kind", "quality", "started", "stream", "transceiver")

    def __init__(self, transceiver: RTCRtpTransceiver, stream: OutputStream) -> None:
        self.transceiver = transceiver
        self.kind = transceiver.kind
        self.stream = stream
        self.consumer: Consumer | None = None
        self.started = False
        self.quality = LinkQuality()  # from the subscriber's receiver reports


class Peer(EventEmitter):
    """One participant's connection; see the module docstring for negotiation and events."""

    def __init__(
        self,
        peer_id: ParticipantId,
        room: str,
        configuration: RTCConfiguration,
        *,
        pli_interval: float = 0.5,
    ) -> None:
        super().__init__()
        self.id = peer_id
        self.room = room
        self.closed = False
        self.close_reason: CloseReason | None = None
        self.ready = False  # the first client offer was answered
        self.producers: dict[ProducerId, Producer] = {}
        self.consumers: dict[ConsumerId, Consumer] = {}
        self.send_path = SendPath()
        self._pli_interval = pli_interval
        config = dataclasses.replace(configuration, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        self._pc = RTCPeerConnection(config)
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._lock = asyncio.Lock()
        self._slots: dict[RTCRtpTransceiver, _SendSlot] = {}
        self._unplaced: list[Consumer] = []
        self._offered: list[Consumer] = []
        self._negotiation_needed = False
        self._negotiation_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._ssrc_table: dict[int, tuple[Producer, int | None]] = {}
        self._by_receiver: dict[RTCRtpReceiver, Producer] = {}
        self._hooked: set[RTCDtlsTransport] = set()
        self.offers_sent = 0
        self._client_offer: str | None = None  # the latest client offer: its numbers are kept
        # A client that never answers a server offer would hold its peer in have-local-offer
        # for good (no new media reaches it, its own offers get GlareError): past this, the
        # peer is closed (ICE_FAILED, "media connection failed") and the client rejoins.
        self.answer_timeout_s = ANSWER_TIMEOUT_S
        self._answer_timer: asyncio.TimerHandle | None = None
        self._rates = RateMeter()
        # What this participant's downlink carries, from its RTCP (line adaptation).
        self.downlink = DownlinkEstimator()

    # --- public API ----------------------------------------------------------------------

    @property
    def connection_state(self) -> str:
        return str(self._pc.connectionState)

    @property
    def signaling_state(self) -> str:
        return str(self._pc.signalingState)

    async def handle_offer(self, sdp: str) -> str:
        """Apply a client offer and return the answer SDP (complete, no trickle).

        Raises PeerClosedError, GlareError (a server offer is outstanding) or
        NegotiationError (malformed SDP, no VP8/Opus in an m-line, wrong state).
        """
        if self.closed:
            raise PeerClosedError(self.id)
        new_producers: list[Producer] = []
        async with self._lock:
            if self.closed:
                raise PeerClosedError(self.id)
            if self._pc.signalingState == "have-local-offer":
                raise GlareError("a server offer is outstanding; answer it first")
            if "\nm=" not in sdp:
                raise NegotiationError("the offer has no media section")
            try:
                await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                self._client_offer = sdp
                for transceiver in self._pc.getTransceivers():
                    if transceiver in self._slots:
                        continue
                    if not aiortc_hooks.restrict_codecs(transceiver):
                        raise NegotiationError(f"m-line {transceiver.mid}: no VP8/Opus offered")
                    new_producers.extend(self._adopt_remote_transceiver(transceiver))
                answer = await self._pc.createAnswer()
                await self._pc.setLocalDescription(answer)
            except PeerError:
                raise
            except Exception as exc:
                raise NegotiationError(str(exc)) from exc
            self._hook_transports()
            self._close_stopped_producers()
            answer_sdp = str(self._pc.localDescription.sdp)
            first = not self.ready
            self.ready = True
        if first:
            self._emit("ready")
        for producer in new_producers:
            self._emit("producer", producer)
        if self._negotiation_needed or self._unplaced:
            self._request_negotiation()
        return answer_sdp

    async def handle_answer(self, sdp: str) -> None:
        """Apply the client's answer to the last "offer" event.

        Raises PeerClosedError or NegotiationError (no offer outstanding, malformed SDP).
        """
        if self.closed:
            raise PeerClosedError(self.id)
        async with self._lock:
            if self._pc.signalingState != "have-local-offer":
                raise NegotiationError("no server offer is outstanding")
            try:
                await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as exc:
                # The offer is still outstanding: say so by sending it again, after the error
                # reply, so that a client whose answer was refused is not left believing it
                # may offer (its offers would be refused as glare until it reconnected).
                asyncio.get_running_loop().call_soon(self._offer_again, self.offers_sent)
                raise NegotiationError(str(exc)) from exc
            if self._answer_timer is not None:
                self._answer_timer.cancel()
                self._answer_timer = None
            offered, self._offered = self._offered, []
            for consumer in offered:
                if not consumer.closed:
                    consumer.negotiated = True
                    consumer._refresh()
        if self._negotiation_needed or self._unplaced:
            self._request_negotiation()

    def close(self, reason: CloseReason) -> None:
        """Close the connection, its producers (their consumers everywhere) and its
        consumers; idempotent. `wait_closed()` awaits the transport teardown."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        for producer in list(self.producers.values()):
            producer.close(reason)
        for consumer in list(self.consumers.values()):
            consumer.close(reason)
        self.send_path.unbind()
        if self._negotiation_task is not None:
            self._negotiation_task.cancel()
        if self._answer_timer is not None:
            self._answer_timer.cancel()
        self._close_task = asyncio.ensure_future(self._pc.close())
        self._emit("close", reason)

    async def wait_closed(self) -> None:
        """Wait until the RTCPeerConnection is torn down (after close())."""
        if self._close_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._close_task)

    def stats(self, now: float | None = None) -> PeerStats:
        """This participant's connection quality, from what the SFU already sees: the RTCP
        receiver reports of the streams it receives (round trip, loss) and the bytes it sends
        and is sent (bit rates since the previous call)."""
        now = time.monotonic() if now is None else now
        self._rates.sample(
            sum(p.bytes_received for p in self.producers.values()),
            sum(slot.stream.octets for slot in self._slots.values()),
            now,
        )
        live = [s.quality for s in self._slots.values() if s.consumer is not None]
        rtts = [q.rtt_s for q in live if q.rtt_s is not None]
        losses = [q.fraction_lost for q in live if q.fraction_lost is not None]
        return PeerStats(
            peer=self.id,
            connection_state=self.connection_state,
            rtt_ms=round(1000 * sum(rtts) / len(rtts), 1) if rtts else None,
            loss=round(max(losses), 4) if losses else None,
            bitrate_in_kbps=round(self._rates.in_kbps, 1),
            bitrate_out_kbps=round(self._rates.out_kbps, 1),
        )

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "room": self.room,
            "closed": self.closed,
            "close_reason": self.close_reason,
            "ready": self.ready,
            "connection_state": self.connection_state,
            "signaling_state": self.signaling_state,
            "send_path_ready": self.send_path.ready,
            "slots": len(self._slots),
            "offers_sent": self.offers_sent,
            "producers": [p.dump() for p in self.producers.values()],
            "consumers": [c.dump() for c in self.consumers.values()],
        }

    # --- used by the Router --------------------------------------------------------------

    def _add_consumer(self, consumer: Consumer) -> None:
        self.consumers[consumer.id] = consumer
        consumer.on("close", lambda reason: self._on_consumer_close(consumer, reason))
        self._unplaced.append(consumer)
        self._request_negotiation()

    # --- producers (receive side) --------------------------------------------------------

    def _adopt_remote_transceiver(self, transceiver: RTCRtpTransceiver) -> list[Producer]:
        receiver = transceiver.receiver
        if receiver in self._by_receiver:
            return []
        direction = and_direction(transceiver.direction, transceiver._offerDirection or "inactive")
        if direction not in ("recvonly", "sendrecv"):
            return []
        producer = Producer(
            self.id,
            transceiver.kind,
            receiver,
            mid=transceiver.mid,
            pli_interval=self._pli_interval,
        )
        self.producers[producer.id] = producer
        self._by_receiver[receiver] = producer

        def on_parameters(parameters: RTCRtpReceiveParameters) -> None:
            producer._on_parameters(parameters)
            if producer.media_ssrc is not None:
                self._ssrc_table[producer.media_ssrc] = (producer, None)
            for rtx_ssrc, media_ssrc in producer.rtx_ssrcs.items():
                self._ssrc_table[rtx_ssrc] = (producer, media_ssrc)

        aiortc_hooks.hook_receiver(receiver, on_parameters)
        aiortc_hooks.hook_receiver_rtcp(receiver, producer._on_sender_report)
        producer.on("close", lambda reason: self._on_producer_close(producer))
        return [producer]

    def _close_stopped_producers(self) -> None:
        for producer in list(self.producers.values()):
            for transceiver in self._pc.getTransceivers():
                if transceiver.receiver is producer.receiver and transceiver.currentDirection in (
                    "inactive",
                    "sendonly",
                ):
                    producer.close(CloseReason.CLIENT_LEFT)

    def _on_producer_close(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        self._by_receiver.pop(producer.receiver, None)
        for ssrc, (p, _) in list(self._ssrc_table.items()):
            if p is producer:
                del self._ssrc_table[ssrc]

    def _hook_transports(self) -> None:
        for transceiver in self._pc.getTransceivers():
            dtls = transceiver.receiver.transport
            if dtls in self._hooked:
                continue
            self._hooked.add(dtls)
            aiortc_hooks.install_rtp_input_hook(dtls, self._make_input_handler(dtls))

    def _make_input_handler(self, dtls: RTCDtlsTransport) -> aiortc_hooks.RtpDataHandler:
        table = self._ssrc_table
        monotonic = time.monotonic

        async def on_rtp(data: bytes, arrival_time_ms: int) -> None:
            try:
                ssrc = read_ssrc(data)
            except struct.error:
                return
            entry = table.get(ssrc)
            if entry is None:
                entry = self._learn_ssrc(dtls, data, ssrc)
                if entry is None:
                    return
            producer, rtx_of = entry
            if producer.closed:
                return
            if rtx_of is None:
                producer.on_rtp(data, ssrc, monotonic())
            else:
                producer.rtx_received += 1
                if producer.payload_type is not None:
                    media = unwrap_rtx(data, rtx_of, producer.payload_type)
                    if media is not None:
                        producer.on_rtp(media, rtx_of, monotonic())
            # RTCP duties towards the publisher (RR, NACK, REMB): once per incoming packet.
            try:
                packet = aiortc_hooks.parse_rtp(dtls, data)
            except ValueError:
                return
            await aiortc_hooks.receiver_feedback(
                producer.receiver, packet, arrival_time_ms, producer.remb_cap
            )

        return on_rtp

    def _learn_ssrc(
        self, dtls: RTCDtlsTransport, data: bytes, ssrc: int
    ) -> tuple[Producer, int | None] | None:
        """Map an unsignalled SSRC with aiortc's demultiplexer (payload type / mid)."""
        if len(self._ssrc_table) >= _MAX_LEARNED_SSRCS:
            return None
        try:
            packet = aiortc_hooks.parse_rtp(dtls, data)
        except ValueError:
            return None
        receiver = aiortc_hooks.route_rtp(dtls, packet)
        producer = self._by_receiver.get(receiver) if receiver is not None else None
        if producer is None:
            return None
        entry: tuple[Producer, int | None]
        if packet.payload_type in producer.rtx_payload_types:
            if producer.media_ssrc is None:
                return None
            entry = (producer, producer.media_ssrc)
        else:
            entry = (producer, None)
        self._ssrc_table[ssrc] = entry
        return entry

    # --- consumers (send side) -------------------------------------------------------------

    def _on_consumer_close(self, consumer: Consumer, reason: CloseReason) -> None:
        self.consumers.pop(consumer.id, None)
        if consumer in self._unplaced:
            self._unplaced.remove(consumer)
        for slot in self._slots.values():
            if slot.consumer is consumer:
                slot.consumer = None
                slot.transceiver.direction = "inactive"
                self._negotiation_needed = True
        if not self.closed:
            self._emit("consumerclose", consumer, reason)
            if self._negotiation_needed:
                self._request_negotiation()

    def _new_slot(self, kind: str) -> _SendSlot:
        transceiver = self._pc.addTransceiver(kind, direction="sendonly")
        wanted = {"video/vp8", "video/rtx"} if kind == "video" else {"audio/opus"}
        capabilities = RTCRtpSender.getCapabilities(kind)
        transceiver.setCodecPreferences(
            [c for c in capabilities.codecs if c.mimeType.lower() in wanted]
        )
        sender = transceiver.sender
        slot = _SendSlot(transceiver, OutputStream(sender._ssrc, sender._rtx_ssrc, self.send_path))
        aiortc_hooks.hook_sender(
            sender,
            on_configure=lambda parameters: self._configure_slot(slot, parameters),
            on_started=lambda: self._slot_started(slot),
            on_rtcp=lambda packet: self._slot_feedback(slot, packet),
            sender_report=lambda: self._sender_report(slot),
        )
        self._slots[transceiver] = slot
        return slot

    def _place(self, consumer: Consumer) -> None:
        slot = next(
            (s for s in self._slots.values() if s.kind == consumer.kind and s.consumer is None),
            None,
        )
        if slot is None:
            slot = self._new_slot(consumer.kind)
        slot.consumer = consumer
        transceiver = slot.transceiver
        transceiver.direction = "sendonly"
        transceiver.sender.replaceTrack(None)  # fresh msid track id for the new source
        # msid stream id: groups a participant's A+V (lip sync); a shared screen is its own
        # stream "<participant id>.screen" (docs/signaling.md, screen sharing).
        stream_id = str(consumer.producer_peer_id)
        if consumer.producer.source == "screen":
            stream_id += ".screen"
        transceiver.sender._stream_id = stream_id
        consumer.stream = slot.stream
        consumer.transport_ready = slot.started

    @staticmethod
    def _configure_slot(slot: _SendSlot, parameters: RTCRtpSendParameters) -> None:
        codec = parameters.codecs[0]
        if codec.payloadType is None:
            raise NegotiationError("negotiated codec has no payload type")
        rtx = next(
            (
                c.payloadType
                for c in parameters.codecs
                if is_rtx(c) and c.parameters.get("apt") == codec.payloadType
            ),
            None,
        )
        slot.stream.configure(
            codec.payloadType,
            rtx,
            codec.clockRate,
            aiortc_hooks.header_extension_id(parameters, aiortc_hooks.MID_URI),
            parameters.muxId,
        )

    def _slot_started(self, slot: _SendSlot) -> None:
        slot.started = True
        if not self.send_path.ready and not self.closed:
            dtls = slot.transceiver.sender.transport
            resolved = aiortc_hooks.resolve_send_path(dtls)
            if resolved is None:
                log.warning("peer %s: sender started without a connected transport", self.id)
            else:
                self.send_path.bind(*resolved)
                dtls.on("statechange", lambda: self._on_dtls_state(dtls))
        consumer = slot.consumer
        if consumer is not None:
            consumer.transport_ready = True
            consumer._refresh()
        # Slots started earlier may have been waiting for the send path.
        for other in self._slots.values():
            if other.consumer is not None and other.started and other is not slot:
                other.consumer._refresh()

    def _slot_feedback(self, slot: _SendSlot, packet: AnyRtcpPacket) -> bool:
        """The subscriber's RTCP about a send slot: to the downlink estimate, then handled."""
        stream = slot.stream
        consumer = slot.consumer
        upstream = consumer.producer.upstream_loss if consumer is not None else 0.0
        self.downlink.on_rtcp(
            packet, {stream.ssrc: stream.clock_rate}, time.monotonic(), upstream=upstream
        )
        return self._slot_rtcp(slot, packet)

    @staticmethod
    def _slot_rtcp(slot: _SendSlot, packet: AnyRtcpPacket) -> bool:
        consumer = slot.consumer
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            now = time.monotonic()
            for block in packet.reports:
                if block.ssrc == slot.stream.ssrc:
                    slot.quality.receiver_report(block.lsr, block.dlsr, block.fraction_lost, now)
            return False  # aiortc keeps its own statistics too
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            if consumer is not None:
                consumer._on_nack(packet.lost)
            return True
        if isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                if consumer is not None:
                    consumer._on_keyframe_request()
                return True
            if packet.fmt == RTCP_PSFB_APP:
                return True  # REMB: read by the downlink estimate (adaptation.py)
        return False

    @staticmethod
    def _sender_report(slot: _SendSlot) -> aiortc_hooks.SenderReport | None:
        stream = slot.stream
        if stream.packets == 0 or stream.last_time < 0:
            return None
        now = time.monotonic()
        consumer = slot.consumer
        last_sr = consumer.producer.last_sr if consumer is not None else None
        if last_sr is not None and last_sr[0] == stream.src_ssrc:
            _, ntp, rtp_ts, at = last_sr
            elapsed = now - at
            ntp_out = ntp + int(elapsed * (1 << 32))
            rtp_out = (rtp_ts + stream.ts_offset + int(elapsed * stream.clock_rate)) & 0xFFFFFFFF
        else:
            ntp_out = aiortc_clock.current_ntp_time()
            elapsed = now - stream.last_time
            rtp_out = (stream.last_ts + int(elapsed * stream.clock_rate)) & 0xFFFFFFFF
        slot.quality.sender_report_sent(ntp_out, now)  # the SR goes out now
        return ntp_out, rtp_out, stream.packets, stream.octets

    # --- server-initiated negotiation ----------------------------------------------------

    def _request_negotiation(self) -> None:
        self._negotiation_needed = True
        if self.closed:
            return
        if self._negotiation_task is None or self._negotiation_task.done():
            self._negotiation_task = asyncio.ensure_future(self._negotiate())

    async def _negotiate(self) -> None:
        async with self._lock:
            if self.closed or not self.ready or not self._negotiation_needed:
                return
            if self._pc.signalingState != "stable":
                return  # handle_answer() triggers the next round
            if self._pc.connectionState != "connected":
                # aiortc starts senders/receivers only when DTLS is connected at the moment
                # the description is applied: an offer crossing the DTLS handshake would leave
                # the new m-lines dead on both sides. The "connected" state re-triggers us.
                return
            self._negotiation_needed = False
            placed, self._unplaced = self._unplaced, []
            placed = [c for c in placed if not c.closed]
            for consumer in placed:
                self._place(consumer)
            try:
                offer = await self._pc.createOffer()
                if self._client_offer is not None:
                    # Keep the payload types and extension ids the client chose (sdp_align).
                    offer = RTCSessionDescription(
                        sdp=align_offer(offer.sdp, self._client_offer), type="offer"
                    )
                await self._pc.setLocalDescription(offer)
            except Exception:
                if not self._is_open():
                    return
                log.exception("peer %s: creating an offer failed", self.id)
                self.close(CloseReason.ICE_FAILED)
                return
            for consumer in placed:
                for transceiver, slot in self._slots.items():
                    if slot.consumer is consumer:
                        consumer.mid = transceiver.mid
            self._offered.extend(placed)
            self._hook_transports()
            sdp = str(self._pc.localDescription.sdp)
            self.offers_sent += 1
            self._answer_timer = asyncio.get_running_loop().call_later(
                self.answer_timeout_s, self._answer_overdue, self.offers_sent
            )
        for consumer in placed:
            if not consumer.closed:
                self._emit("consumer", consumer)
        self._emit("offer", sdp)

    def _on_dtls_state(self, dtls: RTCDtlsTransport) -> None:
        # Once DTLS is closed (remote close_notify, ICE consent lost) the UDP transport is
        # closed too; sending on it would only make asyncio log a warning per packet.
        if dtls.state in ("closed", "failed"):
            self.send_path.unbind()
            for consumer in self.consumers.values():
                consumer._refresh()

    def _offer_again(self, offer_number: int) -> None:
        if self.closed or self.offers_sent != offer_number:
            return
        if self._pc.signalingState == "have-local-offer":
            self._emit("offer", str(self._pc.localDescription.sdp))

    def _answer_overdue(self, offer_number: int) -> None:
        if self.closed or self.offers_sent != offer_number:
            return
        if self._pc.signalingState == "have-local-offer":
            log.warning(
                "peer %s: no answer to server offer %d within %.0f s; closing it",
                self.id,
                offer_number,
                self.answer_timeout_s,
            )
            self.close(CloseReason.ICE_FAILED)

    def _is_open(self) -> bool:
        # A method, not `self.closed`: mypy would keep it narrowed across awaits.
        return not self.closed

    # --- connection state ----------------------------------------------------------------

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        if self.closed:
            return
        self._emit("connectionstatechange", state)
        if state == "connected" and (self._negotiation_needed or self._unplaced):
            self._request_negotiation()
        if state == "failed":
            self.close(CloseReason.ICE_FAILED)
