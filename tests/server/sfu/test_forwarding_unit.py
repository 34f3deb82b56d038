"""The lean packet path on its own: header rewrite, continuity, RTX, history (no network)."""

from __future__ import annotations

import itertools
import struct
from typing import Any

from server.sfu.forwarding import (
    HISTORY_SIZE,
    OutputStream,
    PacketHistory,
    SendPath,
    forward,
    retransmit,
    unwrap_rtx,
)
from server.sfu.rtp import header_length


class FakeSrtp:
    """Stands in for a pylibsrtp Session: records what would be protected."""

    def protect(self, packet: bytes) -> bytes:
        assert isinstance(packet, bytes)
        return packet


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append(data)


def rtp(
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    *,
    pt: int = 96,
    marker: bool = False,
    mid: bytes | None = b"0",
) -> bytes:
    b0 = 0x80
    ext = b""
    if mid is not None:
        element = bytes([(9 << 4) | (len(mid) - 1)]) + mid
        element += b"\x00" * (-len(element) % 4)
        ext = b"\xbe\xde" + struct.pack("!H", len(element) // 4) + element
        b0 |= 0x10
    return struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc) + ext + payload


def parse(packet: bytes) -> dict[str, Any]:
    _b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", packet)
    hl = header_length(packet)
    ext = packet[12:hl]
    return {
        "pt": b1 & 0x7F,
        "marker": bool(b1 & 0x80),
        "seq": seq,
        "ts": ts,
        "ssrc": ssrc,
        "payload": packet[hl:],
        "ext": ext,
    }


def make_output(*, rtx: bool = True) -> tuple[OutputStream, FakeTransport]:
    transport = FakeTransport()
    path = SendPath()
    path.bind(FakeSrtp(), transport, ("127.0.0.1", 9))
    out = OutputStream(ssrc=0x11111111, rtx_ssrc=0x22222222, path=path)
    out.configure(100, 101 if rtx else None, 90000, mid_ext_id=1, mid="7")
    return out, transport


def test_header_rewritten_per_subscriber_payload_untouched() -> None:
    out1, t1 = make_output()
    out2, t2 = make_output()
    out2.configure(120, None, 90000, mid_ext_id=3, mid="12")
    packet = rtp(1000, 5000, 0xABCDEF01, b"\x10payload", marker=True)
    forward(packet, (out1, out2), now=1.0)
    p1, p2 = parse(t1.sent[0]), parse(t2.sent[0])
    assert (p1["pt"], p1["ssrc"], p1["marker"]) == (100, 0x11111111, True)
    assert (p2["pt"], p2["ssrc"]) == (120, 0x11111111)
    assert p1["payload"] == p2["payload"] == b"\x10payload"
    # the subscriber's own mid extension replaces the publisher's
    assert p1["ext"] == b"\xbe\xde\x00\x01" + bytes([(1 << 4) | 0]) + b"7\x00\x00"
    assert p2["ext"] == b"\xbe\xde\x00\x01" + bytes([(3 << 4) | 1]) + b"12\x00"


def test_sequence_and_timestamp_continuous_across_source_switch() -> None:
    out, transport = make_output()
    for i in range(5):
        forward(rtp(60000 + i, 1_000_000 + 3000 * i, 0xAAAA, b"x"), (out,), now=1.0 + i / 30)
    # the publisher restarts: new SSRC, new random seq/ts bases, 0.5 s later
    for i in range(5):
        forward(rtp(7 + i, 42 + 3000 * i, 0xBBBB, b"y"), (out,), now=1.6 + i / 30)
    seen = [parse(p) for p in transport.sent]
    seqs = [p["seq"] for p in seen]
    assert all(((b - a) & 0xFFFF) == 1 for a, b in itertools.pairwise(seqs))
    assert {p["ssrc"] for p in seen} == {0x11111111}
    tss = [p["ts"] for p in seen]
    steps = [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(tss)]
    assert steps[:4] == [3000] * 4
    assert steps[5:] == [3000] * 4
    # the gap at the switch follows wall time (about 0.6 s - 4/30 s at 90 kHz), never backwards
    assert 30000 < steps[4] < 60000


def test_sequence_wraps_modulo_16_bits() -> None:
    out, transport = make_output()
    for i in range(70000, 70010):
        forward(rtp(i & 0xFFFF, i * 10, 0xAAAA, b"z"), (out,), now=float(i))
    seqs = [parse(p)["seq"] for p in transport.sent]
    assert all(((b - a) & 0xFFFF) == 1 for a, b in itertools.pairwise(seqs))


def test_nack_answered_with_rtx_from_producer_history() -> None:
    out, transport = make_output(rtx=True)
    history = PacketHistory()
    for i in range(10):
        packet = rtp(500 + i, 9000 * i, 0xAAAA, bytes([i]) * 20)
        history.put(packet, 500 + i)
        forward(packet, (out,), now=1.0)
    lost = parse(transport.sent[3])
    transport.sent.clear()
    assert retransmit(out, history, [lost["seq"], (lost["seq"] + 5000) & 0xFFFF]) == 1
    rtx = parse(transport.sent[0])
    assert rtx["ssrc"] == 0x22222222
    assert rtx["pt"] == 101
    assert struct.unpack("!H", rtx["payload"][:2])[0] == lost["seq"]  # OSN
    assert rtx["payload"][2:] == lost["payload"]
    assert rtx["ts"] == lost["ts"]


def test_nack_answered_plainly_without_rtx() -> None:
    out, transport = make_output(rtx=False)
    history = PacketHistory()
    packet = rtp(1, 90, 0xAAAA, b"abc")
    history.put(packet, 1)
    forward(packet, (out,), now=1.0)
    first = transport.sent[0]
    assert retransmit(out, history, [parse(first)["seq"]]) == 1
    assert transport.sent[1] == first


def test_history_bounded_and_checks_source() -> None:
    history = PacketHistory()
    for seq in range(3 * HISTORY_SIZE):
        history.put(rtp(seq & 0xFFFF, 0, 0xAAAA, b"p"), seq & 0xFFFF)
    assert history.get(0, 0xAAAA) is None  # overwritten: bounded
    assert history.get(3 * HISTORY_SIZE - 1, 0xAAAA) is not None
    assert history.get(3 * HISTORY_SIZE - 1, 0xBBBB) is None  # another source


def test_unwrap_rtx_and_padding_probe() -> None:
    original = rtp(321, 777, 0xAAAA, b"media", pt=96)
    rtx_payload = struct.pack("!H", 321) + b"media"
    rtx_packet = rtp(9, 777, 0xCCCC, rtx_payload, pt=97)
    unwrapped = unwrap_rtx(rtx_packet, 0xAAAA, 96)
    assert unwrapped is not None
    assert parse(unwrapped) == parse(original)
    probe = bytearray(rtp(10, 777, 0xCCCC, b"\x00" * 9 + b"\x0a", pt=97, mid=None))
    probe[0] |= 0x20  # padding only
    assert unwrap_rtx(bytes(probe), 0xAAAA, 96) is None


def test_unready_path_sends_nothing() -> None:
    out, transport = make_output()
    out.path.unbind()
    forward(rtp(1, 1, 0xAAAA, b"q"), (out,), now=1.0)
    assert transport.sent == []


def _feed(out: OutputStream, history: PacketHistory, seqs: range, now: float) -> None:
    for seq in seqs:
        packet = rtp(seq & 0xFFFF, 960 * seq, 0xAAAA, seq.to_bytes(4, "big"))
        history.put(packet, seq & 0xFFFF)
        forward(packet, (out,), now=now)


def test_an_interruption_leaves_no_gap_and_its_packets_are_never_resent() -> None:
    """A room change or mute: the stream leaves the outputs, the source goes on (its packets
    still enter the history), then the stream returns with restart()."""
    out, transport = make_output(rtx=False)
    history = PacketHistory()
    _feed(out, history, range(100, 110), now=1.0)
    for seq in range(110, 400):  # said while the subscriber was elsewhere
        history.put(rtp(seq, 960 * seq, 0xAAAA, seq.to_bytes(4, "big")), seq)
    out.restart()
    _feed(out, history, range(400, 410), now=7.0)
    seen = [parse(p) for p in transport.sent]
    seqs = [p["seq"] for p in seen]
    assert all(((b - a) & 0xFFFF) == 1 for a, b in itertools.pairwise(seqs))
    assert {int.from_bytes(p["payload"], "big") for p in seen}.isdisjoint(range(110, 400))
    transport.sent.clear()
    # a NACK of every sequence number around, as an attacker would send it
    everything = [(seqs[-1] - back) & 0xFFFF for back in range(2000, -1, -1)]
    resent = retransmit(out, history, everything)
    payloads = {int.from_bytes(parse(p)["payload"], "big") for p in transport.sent}
    assert payloads == set(range(400, 410))  # only this stretch: all of it, nothing else
    assert resent == 10
    # a late packet from before the return is not forwarded either
    transport.sent.clear()
    _feed(out, history, range(390, 391), now=7.5)
    assert transport.sent == []


def test_before_the_first_packet_nothing_is_resent() -> None:
    out, transport = make_output(rtx=True)
    history = PacketHistory()
    for seq in range(50):
        history.put(rtp(seq, 0, 0xAAAA, b"before"), seq)
    assert retransmit(out, history, list(range(0x10000))) == 0
    assert transport.sent == []


def test_a_long_stretch_keeps_forwarding_past_the_sequence_wrap() -> None:
    out, transport = make_output(rtx=False)
    history = PacketHistory()
    _feed(out, history, range(0, 0x10000 + 0x9000), now=1.0)
    assert len(transport.sent) == 0x10000 + 0x9000
    last = parse(transport.sent[-1])["seq"]
    transport.sent.clear()
    assert retransmit(out, history, [(last - 5) & 0xFFFF]) == 1


def test_direct_protect_is_pylibsrtp_protect() -> None:
    """The send path's protect (no per-call wrapper) makes what pylibsrtp's own makes."""
    import os

    from pylibsrtp import Policy, Session

    from server.sfu.forwarding import _direct_protect

    key = os.urandom(30)
    ours = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    theirs = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    receiver = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    protect = _direct_protect(ours)
    assert protect is not None
    for seq in range(5):
        packet = rtp(seq, 90 * seq, 0x4242, os.urandom(1100))
        protected = protect(bytearray(packet))
        assert protected == theirs.protect(packet)
        assert receiver.unprotect(protected) == packet
