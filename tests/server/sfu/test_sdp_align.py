"""Server re-offers keep the client's payload types and header-extension ids (Chromium refuses
reassignment within a BUNDLE transport)."""

from __future__ import annotations

import re

from aiortc import RTCConfiguration, RTCPeerConnection

from server.sfu.sdp_align import align_offer

# The numbers Chromium 156 uses in its first offer (browser-interop-research.md).
CHROME_OFFER = """v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendonly
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103
a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendonly
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
"""


async def _aiortc_offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        for kind in ("audio", "video", "audio", "video"):
            pc.addTransceiver(kind, direction="sendonly")
        offer = await pc.createOffer()
        return str(offer.sdp)
    finally:
        await pc.close()


def _numbers(sdp: str) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    codecs: dict[str, set[int]] = {}
    for pt, name in re.findall(r"a=rtpmap:(\d+) ([\w-]+/\d+)", sdp):
        codecs.setdefault(name.lower(), set()).add(int(pt))
    extensions: dict[str, set[int]] = {}
    for ext_id, uri in re.findall(r"a=extmap:(\d+)(?:/\w+)? (\S+)", sdp):
        extensions.setdefault(uri, set()).add(int(ext_id))
    return codecs, extensions


async def test_offer_uses_the_clients_numbers_for_everything_shared() -> None:
    aligned = align_offer(await _aiortc_offer(), CHROME_OFFER)
    codecs, extensions = _numbers(aligned)
    assert codecs["opus/48000"] == {111}
    assert codecs["vp8/90000"] == {96}
    assert codecs["rtx/90000"] == {97}
    assert set(codecs) == {"opus/48000", "vp8/90000", "rtx/90000"}  # nothing else is forwarded
    assert extensions["urn:ietf:params:rtp-hdrext:sdes:mid"] == {4}
    assert extensions["urn:ietf:params:rtp-hdrext:ssrc-audio-level"] == {1}
    assert extensions["http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"] == {2}
    assert "a=fmtp:97 apt=96" in aligned
    for line in aligned.splitlines():
        if line.startswith("m=audio"):
            assert line.endswith(" 111")
        if line.startswith("m=video"):
            assert line.endswith(" 96 97")


async def test_numbers_the_client_never_offered_are_kept_only_if_free() -> None:
    audio_only = CHROME_OFFER.split("m=video")[0].replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0")
    aligned = align_offer(await _aiortc_offer(), audio_only)
    codecs, _ = _numbers(aligned)
    client_pts = {111, 63, 9, 0, 8, 13, 110, 126}
    assert codecs["opus/48000"] == {111}
    video_pts = codecs["vp8/90000"] | codecs["rtx/90000"]
    assert video_pts  # aiortc's own numbers for video, since the client had none
    assert not video_pts & client_pts
