"""Make the server's renegotiation offers speak the client's payload types and extension ids.

aiortc's ``createOffer`` resets every transceiver to its own defaults: its payload types (opus
96, VP8 97, ...) and its header-extension ids (mid=1, ssrc-audio-level=2, abs-send-time=3).
A browser that made the first offer chose other numbers (Chromium: opus 111, VP8 96, rtx 97,
ssrc-audio-level=1, ...). Within one BUNDLE transport the numbers must stay the same across
all m-lines and renegotiations: Chromium refuses a re-offer that moves an extension id ("RTP
extension ID reassignment not supported") or reuses a payload type for another codec.

``align_offer`` rewrites aiortc's offer before it is applied and sent: each payload type and
extension id becomes the one the client's offer used for the same codec or URI; codecs the
client did not offer, and codecs the SFU does not forward (everything but Opus, VP8 and VP8's
RTX), are dropped, as are extensions the client did not offer. The answer then echoes the
client's numbers, and aiortc takes its send parameters from that answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FORWARDED = frozenset({"opus/48000/2", "vp8/90000", "rtx/90000"})

_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/(\d+)(?:/(\d+))?")
_FMTP = re.compile(r"^a=fmtp:(\d+) (.*)$")
_RTCPFB = re.compile(r"^a=rtcp-fb:(\d+|\*) (.*)$")
_EXTMAP = re.compile(r"^a=extmap:(\d+)(/\w+)? (\S+)(.*)$")
_APT = re.compile(r"apt=(\d+)")


@dataclass
class _Numbers:
    """A session's payload types (by codec key, and RTX by the PT it repairs) and extension ids."""

    codecs: dict[str, int] = field(default_factory=dict)  # "vp8/90000" -> 96
    rtx_for: dict[int, int] = field(default_factory=dict)  # repaired PT -> RTX PT
    extensions: dict[str, int] = field(default_factory=dict)  # uri -> id


def _codec_key(match: re.Match[str]) -> str:
    name, clock, channels = match.group(2).lower(), match.group(3), match.group(4)
    return f"{name}/{clock}/{channels}" if channels else f"{name}/{clock}"


def _read_numbers(sdp: str) -> _Numbers:
    numbers = _Numbers()
    keys: dict[int, str] = {}
    for line in sdp.splitlines():
        if (rtpmap := _RTPMAP.match(line)) is not None:
            key = _codec_key(rtpmap)
            pt = int(rtpmap.group(1))
            keys[pt] = key
            if key != "rtx/90000":
                numbers.codecs.setdefault(key, pt)
        elif (extmap := _EXTMAP.match(line)) is not None:
            numbers.extensions.setdefault(extmap.group(3), int(extmap.group(1)))
    for line in sdp.splitlines():
        fmtp = _FMTP.match(line)
        if fmtp is not None and keys.get(int(fmtp.group(1))) == "rtx/90000":
            apt = _APT.search(fmtp.group(2))
            if apt is not None:
                numbers.rtx_for.setdefault(int(apt.group(1)), int(fmtp.group(1)))
    return numbers


def _payload_types(sdp: str) -> set[int]:
    taken: set[int] = set()
    for line in sdp.splitlines():
        if line.startswith(("m=audio ", "m=video ")):
            taken.update(int(p) for p in line.split(" ")[3:] if p.isdigit())
    return taken


def align_offer(offer: str, client: str) -> str:
    """`offer` (aiortc's) rewritten to the numbers used in `client` (the client's offer SDP)."""
    theirs = _read_numbers(client)
    ours = _read_numbers(offer)
    taken_pts = _payload_types(client)
    ours_rtx_apt = {rtx: apt for apt, rtx in ours.rtx_for.items()}
    pt_map: dict[int, int] = {}
    for key, pt in ours.codecs.items():
        if key not in FORWARDED:
            continue
        if key in theirs.codecs:
            pt_map[pt] = theirs.codecs[key]
        elif pt not in taken_pts:  # the client never offered it: ours, if the number is free
            pt_map[pt] = pt
    for rtx_pt, apt in ours_rtx_apt.items():
        new_apt = pt_map.get(apt)
        if new_apt is None:
            continue
        if new_apt in theirs.rtx_for:
            pt_map[rtx_pt] = theirs.rtx_for[new_apt]
        elif rtx_pt not in taken_pts:
            pt_map[rtx_pt] = rtx_pt
    taken_ids = set(theirs.extensions.values())
    ext_map: dict[int, int] = {}
    for uri, ours_id in ours.extensions.items():
        if uri in theirs.extensions:
            ext_map[ours_id] = theirs.extensions[uri]
        elif ours_id not in taken_ids:
            ext_map[ours_id] = ours_id
    newline = "\r\n" if "\r\n" in offer else "\n"
    out: list[str] = []
    for line in offer.splitlines():
        if line.startswith("m=audio ") or line.startswith("m=video "):
            parts = line.split(" ")
            kept = [str(pt_map[int(p)]) for p in parts[3:] if p.isdigit() and int(p) in pt_map]
            out.append(" ".join(parts[:3] + kept))
            continue
        if (rtpmap := _RTPMAP.match(line)) is not None:
            pt = int(rtpmap.group(1))
            if pt in pt_map:
                out.append(line.replace(f"a=rtpmap:{pt} ", f"a=rtpmap:{pt_map[pt]} ", 1))
            continue
        if (fmtp := _FMTP.match(line)) is not None:
            pt = int(fmtp.group(1))
            if pt in pt_map:
                params = _APT.sub(
                    lambda a: f"apt={pt_map.get(int(a.group(1)), a.group(1))}", fmtp.group(2)
                )
                out.append(f"a=fmtp:{pt_map[pt]} {params}")
            continue
        if (fb := _RTCPFB.match(line)) is not None:
            if fb.group(1) == "*":
                out.append(line)
            elif int(fb.group(1)) in pt_map:
                out.append(f"a=rtcp-fb:{pt_map[int(fb.group(1))]} {fb.group(2)}")
            continue
        if (extmap := _EXTMAP.match(line)) is not None:
            ours_id = int(extmap.group(1))
            if ours_id in ext_map:
                out.append(
                    f"a=extmap:{ext_map[ours_id]}{extmap.group(2) or ''} "
                    f"{extmap.group(3)}{extmap.group(4)}"
                )
            continue
        out.append(line)
    return newline.join(out) + newline
