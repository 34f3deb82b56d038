"""Every private aiortc/aioice hook the SFU relies on, and nothing else.

aiortc (pinned: 1.16.0) has no public API for an SFU: its receiver always runs a jitter buffer
and a decoder thread, its sender always encodes or re-packetizes, and PLI/NACK handling is tied
to its encoder. The SFU keeps aiortc for what it does well (ICE, DTLS, SRTP keying, SDP,
RTCP parsing) and takes over the media path through the hooks below. They are all instance
attributes set on one object (never a class patch) except the two process-wide aioice/asyncio
fixes, which are explicit opt-in calls.

Hooks (see `HOOKED_ATTRIBUTES` and `verify_hooks()`; tests/server/sfu/test_forwarding_e2e.py
fails loudly if the pinned aiortc changes under them):

* receive side: `RTCDtlsTransport._handle_rtp_data(data, arrival_time_ms)` is replaced on the
  peer's (bundled) DTLS transport by the SFU's lean handler, which sees the decrypted RTP bytes
  before aiortc builds an `RtpPacket`. aiortc's receiver `_handle_rtp_packet` (jitter buffer,
  depayloader, decoder queue) is therefore never called: the SFU never decodes.
  `RTCRtpReceiver.receive` is wrapped to learn the negotiated codecs/SSRCs and to stop the idle
  decoder thread right after it starts (its track then ends; nothing is ever queued on it).
* receiver RTCP duties: `receiver_feedback()` re-does, per *incoming* packet, the RTCP half of
  aiortc's `_handle_rtp_packet`: receiver-report statistics (`__remote_streams`), RTX unwrap
  for NACK bookkeeping, NACK generation (`__nack_generator`) and REMB (`__remote_bitrate_
  estimator`) - so publishers still get RR, NACK and REMB from aiortc's own code. It costs one
  `RtpPacket.parse` per incoming packet (~10-20 us), paid once per publisher packet, not per
  subscriber. Decided over re-implementing them: aiortc's behaviour is what browsers were
  tested against (notes/browser-interop-research.md).
* send side: the subscriber's `RTCRtpSender` only negotiates. `send` is wrapped to read the
  negotiated payload types / header extension ids, `_run_rtp` is replaced by a coroutine that
  just marks the sender started (that moment is "the subscriber's transport is up": the SFU
  sends the PLI for late joiners there) and idles, `_run_rtcp` by an SR/SDES loop fed from the
  forwarding state, and `_handle_rtcp_packet` is wrapped so NACK and PLI/FIR go to the SFU.
  Media is sent by `forwarding.SendPath`: the DTLS transport's `_tx_srtp` pylibsrtp Session
  and the nominated aioice pair's UDP transport (`_connection._nominated[1]`).
* PLI to a publisher: `RTCRtpReceiver._send_rtcp_pli(media_ssrc)`; the publisher's RTCP SRs
  are read by wrapping the receiver's `_handle_rtcp_packet` (each consumer's SR is the
  publisher's NTP/RTP mapping translated by the consumer's timestamp offset: lip sync).
* codecs: `RTCRtpTransceiver._codecs` is narrowed to VP8(+RTX) / Opus after the remote offer.
* aioice `get_host_addresses` (host candidates limited to configured addresses; aioice skips
  127.0.0.1 by default) and, optionally, `Connection.request_received` (ignore STUN checks from
  other source addresses, so a browser cannot nominate a non-loopback pair in tests).
* asyncio `_SelectorDatagramTransport.max_size` (256 KiB -> 64 KiB): stock asyncio pays an
  mmap/munmap per datagram otherwise (~20 us). uvloop, the SFU's loop, does not need it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aioice
import aioice.ice
import aiortc
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtcpeerconnection import RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import (
    RTCP_PSFB_APP,
    AnyRtcpPacket,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

log = logging.getLogger(__name__)

PINNED_AIORTC = "1.16.0"
PINNED_AIOICE = "0.13.0"

# (owner, attribute) pairs the hooks read or replace; verify_hooks() checks each one.
HOOKED_ATTRIBUTES: tuple[tuple[type[Any], str], ...] = (
    (RTCDtlsTransport, "_handle_rtp_data"),
    (RTCDtlsTransport, "_recv_next"),
    (RTCRtpReceiver, "receive"),
    (RTCRtpReceiver, "_handle_rtp_packet"),
    (RTCRtpReceiver, "_send_rtcp_pli"),
    (RTCRtpReceiver, "_send_rtcp_nack"),
    (RTCRtpReceiver, "_send_rtcp"),
    (RTCRtpReceiver, "_handle_rtcp_packet"),
    (RTCRtpReceiver, "_RTCRtpReceiver__stop_decoder"),
    (RTCRtpSender, "send"),
    (RTCRtpSender, "_run_rtp"),
    (RTCRtpSender, "_run_rtcp"),
    (RTCRtpSender, "_send_rtcp"),
    (RTCRtpSender, "_handle_rtcp_packet"),
    (RtpRouter, "route_rtp"),
    (RTCRtpTransceiver, "setCodecPreferences"),
)
# Private instance attributes (name-mangled) read on live objects; checked by the hook test.
RECEIVER_PRIVATE = (
    "_RTCRtpReceiver__codecs",
    "_RTCRtpReceiver__remote_streams",
    "_RTCRtpReceiver__rtx_ssrc",
    "_RTCRtpReceiver__nack_generator",
    "_RTCRtpReceiver__remote_bitrate_estimator",
    "_RTCRtpReceiver__rtcp_ssrc",
    "_RTCRtpReceiver__decoder_thread",
    "_RTCRtpReceiver__jitter_buffer",
    "_RTCRtpReceiver__lsr",
    "_RTCRtpReceiver__lsr_time",
)
SENDER_PRIVATE = (
    "_RTCRtpSender__started",
    "_RTCRtpSender__rtp_started",
    "_RTCRtpSender__rtp_exited",
    "_RTCRtpSender__rtcp_started",
    "_RTCRtpSender__rtcp_exited",
    "_RTCRtpSender__cname",
    "_ssrc",
    "_rtx_ssrc",
    "_stream_id",
)
DTLS_PRIVATE = ("_tx_srtp", "_rx_srtp", "_rtp_router", "_rtp_header_extensions_map", "_state")

# Signatures the replacements must match exactly (parameter names as aiortc calls them).
EXPECTED_SIGNATURES: dict[tuple[type[Any], str], tuple[str, ...]] = {
    (RTCDtlsTransport, "_handle_rtp_data"): ("self", "data", "arrival_time_ms"),
    (RTCRtpReceiver, "_handle_rtp_packet"): ("self", "packet", "arrival_time_ms"),
    (RTCRtpReceiver, "receive"): ("self", "parameters"),
    (RTCRtpReceiver, "_send_rtcp_pli"): ("self", "media_ssrc"),
    (RTCRtpReceiver, "_send_rtcp_nack"): ("self", "media_ssrc", "lost"),
    (RTCRtpSender, "send"): ("self", "parameters"),
    (RTCRtpSender, "_run_rtp"): ("self", "codec"),
    (RTCRtpSender, "_run_rtcp"): ("self",),
    (RTCRtpSender, "_send_rtcp"): ("self", "packets"),
    (RTCRtpSender, "_handle_rtcp_packet"): ("self", "packet"),
    (aioice.ice.Connection, "request_received"): ("self", "message", "addr", "protocol"),
}

SenderReport = tuple[int, int, int, int]  # ntp timestamp, rtp timestamp, packets, octets


def verify_hooks() -> list[str]:
    """Return what no longer matches in the pinned aiortc/aioice (empty when all is well)."""
    problems: list[str] = []
    if aiortc.__version__ != PINNED_AIORTC:
        problems.append(f"aiortc {aiortc.__version__} != pinned {PINNED_AIORTC}")
    if aioice.__version__ != PINNED_AIOICE:
        problems.append(f"aioice {aioice.__version__} != pinned {PINNED_AIOICE}")
    for owner, name in HOOKED_ATTRIBUTES:
        if not hasattr(owner, name):
            problems.append(f"{owner.__name__}.{name} is missing")
    for (owner, name), params in EXPECTED_SIGNATURES.items():
        func = getattr(owner, name, None)
        if func is None:
            problems.append(f"{owner.__name__}.{name} is missing")
            continue
        found = tuple(inspect.signature(func).parameters)
        if found != params:
            problems.append(f"{owner.__name__}.{name} signature {found} != {params}")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        problems.append("aioice.ice.get_host_addresses is missing")
    if not hasattr(aioice.ice.Connection, "_nominated") and "_nominated" not in inspect.getsource(
        aioice.ice.Connection.__init__
    ):
        problems.append("aioice Connection._nominated is missing")
    return problems


def verify_live_objects(pc: RTCPeerConnection) -> list[str]:
    """Check the private instance attributes on a live connection's transceivers."""
    problems: list[str] = []
    for transceiver in pc.getTransceivers():
        for name in RECEIVER_PRIVATE:
            if not hasattr(transceiver.receiver, name):
                problems.append(f"receiver.{name} is missing")
        for name in SENDER_PRIVATE:
            if not hasattr(transceiver.sender, name):
                problems.append(f"sender.{name} is missing")
        for name in DTLS_PRIVATE:
            if not hasattr(transceiver.receiver.transport, name):
                problems.append(f"dtls.{name} is missing")
        if not hasattr(transceiver.receiver.transport.transport._connection, "_nominated"):
            problems.append("aioice Connection._nominated is missing")
    return problems


# --- process-wide opt-in fixes -------------------------------------------------------------


def install_host_addresses(addresses: Sequence[str], *, reject_other_sources: bool = False) -> None:
    """Limit ICE host candidates to `addresses` (process-wide; call again to change).

    aioice's own discovery lists every interface except loopback. With `reject_other_sources`
    STUN checks from any other source address are ignored, so the remote side cannot make a
    peer-reflexive pair over another interface (needed with Chromium on a multi-homed host).
    Raises ValueError if `addresses` is empty.
    """
    chosen = list(addresses)
    if not chosen:
        raise ValueError("at least one host address is required")

    def get_host_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses
    connection = aioice.ice.Connection
    original = getattr(connection, "_sfu_original_request_received", None)
    if original is None:
        original = connection.request_received
        connection._sfu_original_request_received = original  # type: ignore[attr-defined]
    if not reject_other_sources:
        connection.request_received = original  # type: ignore[method-assign]
        return
    allowed = frozenset(chosen)

    def request_received(self: Any, message: Any, addr: tuple[str, int], protocol: Any) -> None:
        if addr[0] in allowed:
            original(self, message, addr, protocol)

    connection.request_received = request_received  # type: ignore[method-assign]


def fix_datagram_max_size(size: int = 65536) -> None:
    """Stop stock asyncio reading every datagram into a fresh 256 KiB buffer (process-wide)."""
    from asyncio import selector_events

    selector_events._SelectorDatagramTransport.max_size = size  # type: ignore[attr-defined]


# --- receive side ---------------------------------------------------------------------------

RtpDataHandler = Callable[[bytes, int], Awaitable[None]]


def install_rtp_input_hook(dtls: RTCDtlsTransport, handler: RtpDataHandler) -> RtpDataHandler:
    """Route decrypted RTP of `dtls` to `handler(data, arrival_time_ms)`; returns the original."""
    original: RtpDataHandler = dtls._handle_rtp_data
    dtls._handle_rtp_data = handler  # type: ignore[method-assign,assignment]
    return original


def parse_rtp(dtls: RTCDtlsTransport, data: bytes) -> RtpPacket:
    """Parse with the transport's negotiated header extension map; raises ValueError."""
    return RtpPacket.parse(data, dtls._rtp_header_extensions_map)


def route_rtp(dtls: RTCDtlsTransport, packet: RtpPacket) -> RTCRtpReceiver | None:
    """aiortc's own SSRC/payload-type demultiplexing (learns unsignalled SSRCs)."""
    receiver = dtls._rtp_router.route_rtp(packet)
    return receiver if isinstance(receiver, RTCRtpReceiver) else None


def hook_receiver(
    receiver: RTCRtpReceiver, on_parameters: Callable[[RTCRtpReceiveParameters], None]
) -> None:
    """Learn the receive parameters and stop the decoder thread as soon as it starts."""
    original = receiver.receive

    async def receive(parameters: RTCRtpReceiveParameters) -> None:
        first = not receiver._RTCRtpReceiver__started  # type: ignore[attr-defined]
        await original(parameters)
        if first:
            on_parameters(parameters)
            # Joining the thread blocks: do it off the event loop.
            await asyncio.to_thread(stop_decoder, receiver)

    receiver.receive = receive  # type: ignore[method-assign]


def stop_decoder(receiver: RTCRtpReceiver) -> None:
    """Stop the receiver's (idle) decoder thread; its remote track then ends. Blocks (joins a
    thread): call it through `asyncio.to_thread`."""
    receiver._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]


def decoder_running(receiver: RTCRtpReceiver) -> bool:
    return receiver._RTCRtpReceiver__decoder_thread is not None  # type: ignore[attr-defined]


def jitter_buffer_used(receiver: RTCRtpReceiver) -> bool:
    jb = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    return jb._origin is not None or any(p is not None for p in jb._packets)


def receiver_packet_counts(receiver: RTCRtpReceiver) -> dict[int, int]:
    """Packets received per SSRC as counted for receiver reports."""
    streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    return {ssrc: s.packets_received for ssrc, s in streams.items()}


def receiver_expected_received(receiver: RTCRtpReceiver, ssrc: int) -> tuple[int, int] | None:
    """(packets expected, packets received) of one incoming SSRC, as aiortc counts them for
    its receiver reports; None before the first packet."""
    streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    stats = streams.get(ssrc)
    if stats is None:
        return None
    return int(stats.packets_expected), int(stats.packets_received)


async def receiver_feedback(
    receiver: RTCRtpReceiver, packet: RtpPacket, arrival_ms: int, remb_cap: int | None = None
) -> None:
    """The RTCP half of aiortc's `_handle_rtp_packet`: REMB, RR statistics, NACK.

    No depayloading, no jitter buffer, no decoder. Never raises for a malformed packet. The
    REMB sent is capped at `remb_cap` bit/s if given (line adaptation: what the publisher's
    subscribers can take).
    """
    r: Any = receiver
    estimator = r._RTCRtpReceiver__remote_bitrate_estimator
    rtcp_ssrc = r._RTCRtpReceiver__rtcp_ssrc
    if estimator is not None and packet.extensions.abs_send_time is not None:
        remb = estimator.add(
            abs_send_time=packet.extensions.abs_send_time,
            arrival_time_ms=arrival_ms,
            payload_size=len(packet.payload) + packet.padding_size,
            ssrc=packet.ssrc,
        )
        if rtcp_ssrc is not None and remb is not None:
            bitrate, ssrcs = remb
            if remb_cap is not None:
                bitrate = min(bitrate, remb_cap)
            fci = pack_remb_fci(bitrate, ssrcs)
            await receiver._send_rtcp(
                RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)
            )
    codecs = r._RTCRtpReceiver__codecs
    codec = codecs.get(packet.payload_type)
    if codec is None:
        return
    streams = r._RTCRtpReceiver__remote_streams
    stats = streams.get(packet.ssrc)
    if stats is None:
        stats = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
    stats.add(packet)
    if is_rtx(codec):
        original_ssrc = r._RTCRtpReceiver__rtx_ssrc.get(packet.ssrc)
        apt = codec.parameters.get("apt")
        if original_ssrc is None or len(packet.payload) < 2 or apt not in codecs:
            return
        packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
    nack = r._RTCRtpReceiver__nack_generator
    if nack is not None and nack.add(packet):
        await receiver._send_rtcp_nack(packet.ssrc, sorted(nack.missing))


def hook_receiver_rtcp(
    receiver: RTCRtpReceiver, on_sender_report: Callable[[int, int, int], None]
) -> None:
    """Report each RTCP SR of the publisher as `on_sender_report(ssrc, ntp, rtp_timestamp)`."""
    original = receiver._handle_rtcp_packet

    async def handle(packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpSrPacket):
            try:
                on_sender_report(
                    packet.ssrc, packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp
                )
            except Exception:
                log.exception("sender report handler failed")
        await original(packet)

    receiver._handle_rtcp_packet = handle  # type: ignore[method-assign]


_remb_tasks: set[asyncio.Task[None]] = set()


def schedule_remb(receiver: RTCRtpReceiver, bitrate: int, ssrcs: list[int]) -> None:
    """Send the publisher a REMB of `bitrate` bit/s for `ssrcs` (in the background; a
    receiver without an RTCP SSRC yet, or a closed transport, is skipped)."""
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
    if rtcp_ssrc is None:
        return
    packet = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)
    )
    task = asyncio.ensure_future(receiver._send_rtcp(packet))
    _remb_tasks.add(task)
    task.add_done_callback(_remb_tasks.discard)


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the publisher for a keyframe (RTCP PLI); a closed transport is ignored."""
    await receiver._send_rtcp_pli(media_ssrc)


def restrict_codecs(transceiver: RTCRtpTransceiver) -> bool:
    """Narrow a remotely offered transceiver to VP8 (+ its RTX) or Opus.

    Must run after `setRemoteDescription(offer)` and before `createAnswer()` (aiortc negotiates
    codecs inside setRemoteDescription, so setCodecPreferences would come too late). Returns
    False if the offer had no usable codec for the kind.
    """
    codecs = transceiver._codecs
    wanted = "video/vp8" if transceiver.kind == "video" else "audio/opus"
    main = [c for c in codecs if c.mimeType.lower() == wanted][:1]
    if not main:
        return False
    rtx = [c for c in codecs if is_rtx(c) and c.parameters.get("apt") == main[0].payloadType]
    transceiver._codecs = main + rtx[:1]
    return True


# --- send side ------------------------------------------------------------------------------


def hook_sender(
    sender: RTCRtpSender,
    *,
    on_configure: Callable[[RTCRtpSendParameters], None],
    on_started: Callable[[], None],
    on_rtcp: Callable[[AnyRtcpPacket], bool],
    sender_report: Callable[[], SenderReport | None],
) -> None:
    """Turn an aiortc sender into a negotiation-only shell; the SFU sends its media.

    `on_configure(parameters)` runs once with the negotiated send parameters, `on_started()`
    when the sender starts (the DTLS transport is connected), `on_rtcp(packet)` for each RTCP
    packet addressed to the sender (return True when handled; RR and others then still reach
    aiortc for statistics), `sender_report()` supplies SR figures (None: no SR this round).
    """
    s: Any = sender
    original_send = sender.send
    original_rtcp = sender._handle_rtcp_packet

    async def send(parameters: RTCRtpSendParameters) -> None:
        if not s._RTCRtpSender__started:
            on_configure(parameters)
        await original_send(parameters)

    async def run_rtp(codec: Any) -> None:
        s._RTCRtpSender__rtp_started.set()
        try:
            on_started()
            await asyncio.Event().wait()  # idle until stop() cancels us
        except asyncio.CancelledError:
            pass
        finally:
            s._RTCRtpSender__rtp_exited.set()

    async def run_rtcp() -> None:
        s._RTCRtpSender__rtcp_started.set()
        try:
            while True:
                await asyncio.sleep(0.5 + random.random())
                report = sender_report()
                if report is None:
                    continue
                ntp, rtp_ts, packets, octets = report
                rtcp: list[AnyRtcpPacket] = [
                    RtcpSrPacket(
                        ssrc=sender._ssrc,
                        sender_info=RtcpSenderInfo(
                            ntp_timestamp=ntp,
                            rtp_timestamp=rtp_ts,
                            packet_count=packets & 0xFFFFFFFF,
                            octet_count=octets & 0xFFFFFFFF,
                        ),
                    )
                ]
                cname = s._RTCRtpSender__cname
                if cname is not None:
                    rtcp.append(
                        RtcpSdesPacket(
                            chunks=[RtcpSourceInfo(ssrc=sender._ssrc, items=[(1, cname.encode())])]
                        )
                    )
                await sender._send_rtcp(rtcp)
        except asyncio.CancelledError:
            pass
        finally:
            try:
                await sender._send_rtcp([RtcpByePacket(sources=[sender._ssrc])])
            finally:
                s._RTCRtpSender__rtcp_exited.set()

    async def handle_rtcp(packet: AnyRtcpPacket) -> None:
        try:
            handled = on_rtcp(packet)
        except Exception:
            log.exception("SFU RTCP handler failed")
            handled = True
        if not handled:
            await original_rtcp(packet)

    sender.send = send  # type: ignore[method-assign]
    sender._run_rtp = run_rtp  # type: ignore[method-assign]
    sender._run_rtcp = run_rtcp  # type: ignore[method-assign]
    sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]


def resolve_send_path(dtls: RTCDtlsTransport) -> tuple[Any, asyncio.DatagramTransport, Any] | None:
    """(SRTP tx session, UDP transport, remote address) of a connected transport, else None."""
    if dtls.state != "connected" or dtls._tx_srtp is None:
        return None
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None:
        return None
    return dtls._tx_srtp, pair.protocol.transport, pair.remote_addr


def header_extension_id(
    parameters: RTCRtpSendParameters | RTCRtpReceiveParameters, uri: str
) -> int:
    """The negotiated id of header extension `uri`, or 0 if not negotiated."""
    for ext in parameters.headerExtensions:
        if ext.uri == uri:
            return int(ext.id)
    return 0


MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
