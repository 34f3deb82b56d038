"""A participant as its own process, for running inside a fault-suite namespace.

It takes part as the station client does (`station_client.session.StationSession`: the
protocol of docs/signaling.md, aiortc media) with synthetic media (tests/synthetic_media.py),
rejoins by itself whenever its connection ends (after 0.5 s, again and again), and prints one
JSON line of figures every 0.5 s on stdout:

    {"t": unix time, "joins": n, "joined": bool, "me": participant id,
     "in": {publisher: {"audio": [received, lost], "video": [received, lost]}},
     "frames": {publisher: decoded video frames}, "paused": {publisher: reason},
     "out_video_bps": what the video encoder aims at (REMB-driven), "out_bytes": {kind: bytes}}

Counters are the current session's (they restart at each join).

usage: python -m tests.fault.participant '{"ws": URL, "cookies": {...}, "hearing": ID,
       "video": true, "identity": {"name": ..., "digits": ..., "rules": [...]} (a party)}'
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from typing import Any

from aiortc.codecs.opus import OpusEncoder
from aiortc.stats import RTCInboundRtpStreamStats, RTCOutboundRtpStreamStats

from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import ParticipantState
from station_client.media import LineAdaptiveVideo, encoder_target
from station_client.session import StationSession
from tests.synthetic_media import NoiseVideoTrack, ToneAudioTrack

log = logging.getLogger("participant")

# Browsers send speech at 32-50 kbit/s of Opus; aiortc at 96. The participants here stand for
# browsers and stations alike, so they speak at 32 (the station client's own setting is its
# own business: tests/station_client). Chrome sends mono speech at about 32.
OPUS_BPS = 32_000


def speak_like_a_browser() -> None:
    original = OpusEncoder.__init__

    def init(self: OpusEncoder) -> None:
        original(self)
        self.codec.bit_rate = OPUS_BPS

    OpusEncoder.__init__ = init  # type: ignore[method-assign]


class State:
    def __init__(self) -> None:
        self.joins = 0
        self.session: StationSession | None = None
        self.me: str | None = None
        self.paused: dict[str, str] = {}
        self.video: LineAdaptiveVideo | None = None

    def on_event(self, message: m.Message) -> None:
        if isinstance(message, m.VideoPaused):
            self.paused[message.participant_id] = message.reason
        elif isinstance(message, m.VideoResumed):
            self.paused.pop(message.participant_id, None)


async def figures(state: State) -> dict[str, Any]:
    session = state.session
    joined = session is not None and session.welcome is not None and not session.signaling.closed
    report: dict[str, Any] = {
        "t": time.time(),
        "joins": state.joins,
        "joined": joined,
        "me": state.me,
        "in": {},
        "frames": {},
        "paused": dict(state.paused),
        "out_video_bps": None,
        "out_bytes": {},
    }
    if session is None or session.pc is None:
        return report
    report["frames"] = dict(session.frames)
    for t in session.pc.getTransceivers():
        owner = session.owners.get(t.mid or "")
        if owner and t.direction in ("recvonly", "sendrecv"):
            for stat in (await t.receiver.getStats()).values():
                if isinstance(stat, RTCInboundRtpStreamStats):
                    entry = report["in"].setdefault(owner, {})
                    entry[t.kind] = [stat.packetsReceived, stat.packetsLost]
        if t.sender.track is not None:
            if t.kind == "video" and state.video is not None:
                report["out_video_bps"] = encoder_target(t.sender)
                report["lowered"] = state.video.follow(report["out_video_bps"])
            for stat in (await t.sender.getStats()).values():
                if isinstance(stat, RTCOutboundRtpStreamStats):
                    report["out_bytes"][t.kind] = stat.bytesSent
    return report


async def report_loop(state: State) -> None:
    while True:
        try:
            line = json.dumps(await figures(state))
        except Exception as exc:  # a session being torn down
            line = json.dumps({"t": time.time(), "error": str(exc)[:200]})
        print(line, flush=True)
        await asyncio.sleep(0.5)


async def main(config: dict[str, Any]) -> None:
    state = State()
    reporter = asyncio.ensure_future(report_loop(state))
    try:
        while True:
            signaling = SignalingClient(config["ws"], cookies=config["cookies"])
            # the station client's own line adaptation (station_client.media, issue 14.6)
            video = LineAdaptiveVideo(NoiseVideoTrack()) if config.get("video", True) else None
            state.video = video
            session = StationSession(
                signaling, video=video, audio=ToneAudioTrack(), on_event=state.on_event
            )
            try:
                await signaling.connect()
                welcome = await session.join(config["hearing"])
                identity = config.get("identity")
                if identity and welcome.state is ParticipantState.INVITED:
                    # a party's entry steps (docs/hearing-rules.md); then the clerk admits
                    await signaling.request(
                        m.ConfirmIdentity(name=identity["name"], id_digits=identity["digits"])
                    )
                    await signaling.request(m.Consent(accepted_rules=sorted(identity["rules"])))
                state.me = welcome.participant_id
                state.session = session
                state.paused.clear()
                state.joins += 1
                if config.get("audio_only"):
                    await signaling.request(m.SetAudioOnly(enabled=True))
                await signaling.wait_closed()
            except Exception as exc:
                log.warning("session ended: %r", exc)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(session.close(leave=False), 5)
            await asyncio.sleep(0.5)
    finally:
        reporter.cancel()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    speak_like_a_browser()
    asyncio.run(main(json.loads(sys.argv[1])))
