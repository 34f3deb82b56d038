"""Audio-heavy hearings on the SFU worker alone (issue 18.4; docs/benchmarks.md,
"Audio-heavy hearings").

Two measurements, each on one SFU worker process (server.worker.WorkerPool(1)) without the
rest of the server (no signaling, no database, no recording), the clients in this process:

* audio-only forwarding: one publisher replaying pre-encoded Opus (20 ms packets, 50 per
  second, ~32 kbit/s: small packets, so the per-packet cost dominates) -> N subscribers
  (N = 100 and 200). `audio_streams_per_core` = 1 / (worker CPU seconds per subscriber-stream
  second) at the largest N whose subscribers got >= 98 % of the packets;
* the realistic mix: H four-person hearings, each participant one peer connection sending
  Opus and the VP8 clip of bench/sfu_forwarding.py (640x480, 30 fps, ~1 Mbit/s) and receiving
  the three others' audio and video (12 audio + 12 video streams forwarded per hearing). H
  ramps until a subscriber's worst stream falls under 98 % of the frames sent, the latency
  grows (p50 over 3x the first step's and over 20 ms), or the load generator (this process)
  nears a full core. `hearings_per_core` = 1 / (worker CPU per hearing) at the largest H at
  full rate; also the marginal figure between the two largest H at full rate.

Worker CPU is the worker's own `time.process_time()` asked over its pipe (as
sfu_forwarding.py does). Subscribers count frames from the RTP headers at the socket
(bench/frames.py; no decryption), except one probe per run that decrypts to time packets:
latency is from the publisher handing a packet to its DTLS transport to the probe having it
decrypted, through the SFU (no direct baseline is subtracted; see sfu_forwarding.py for that).

    .venv/bin/python bench/hearing_mix.py --json          # a few minutes
    .venv/bin/python bench/hearing_mix.py --smoke --json  # under a minute

`run_mix()` is importable, for one bench command that reports everything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop
from aiortc import RTCPeerConnection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import frames
import sfu_forwarding as sfu

from server.sfu import aiortc_hooks
from server.worker import WorkerPool

FULL = 0.98


def timing_probe(
    pc: RTCPeerConnection, sends: sfu.SendTimes, counter: frames.FrameCounter
) -> dict[str, list[float]]:
    """A decrypting subscriber: counts its frames and times packets of the `sends` publisher
    (payload tails matched, as sfu_forwarding.Probe). Returns the lists samples go into, by
    kind ("audio", "video")."""
    samples: dict[str, list[float]] = {"audio": [], "video": [], "other": []}
    counter.pc = pc
    counter.learn(pc.remoteDescription.sdp, pc.localDescription.sdp)
    dtls = pc.getTransceivers()[0].receiver.transport

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        counter.feed(data)
        sent = sends.times.get(data[-12:])
        if sent is not None:
            kind = counter.kinds.get(data[1] & 0x7F, "other")
            samples[kind].append((time.monotonic() - sent) * 1000)

    dtls._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]
    return samples


# --- audio-only forwarding ------------------------------------------------------------------


class AudioSession(sfu.PoolSession):
    """sfu_forwarding's one-publisher session, with an Opus publisher and frame counters."""

    def __init__(self, pool: WorkerPool, opus: list[bytes]) -> None:
        super().__init__(pool, [], 1.0)
        self.track = frames.OpusTrack(opus)
        self.frame_counters: list[frames.FrameCounter] = []

    async def start_audio(self, subscribers: int) -> None:
        self.worker_index = (await self.pool.create_router(self.hearing)).worker_index
        publisher = sfu.new_pc()
        publisher.addTrack(self.track)
        await self._join(publisher)
        await sfu.wait_until(lambda: publisher.connectionState == "connected", 30, "publisher")
        for _ in range(subscribers):
            pc = sfu.new_pc()
            pc.addTransceiver("audio", direction="recvonly")  # transport anchor
            await self._join(pc)
            await sfu.wait_until(lambda pc=pc: bool(pc.connectionState == "connected"), 30, "sub")  # type: ignore[misc]
            counter = frames.FrameCounter()
            frames.count_frames(pc, counter)
            self.frame_counters.append(counter)
        await sfu.wait_until(
            lambda: all(c.audio for c in self.frame_counters), 60 + subscribers, "audio flows"
        )


async def measure_audio(opus: list[bytes], subscribers: int, seconds: float) -> dict[str, Any]:
    pool = WorkerPool(1)
    await pool.start()
    session = AudioSession(pool, opus)
    try:
        await session.start_audio(subscribers)
        await asyncio.sleep(1.0)  # warm-up
        for c in session.frame_counters:
            c.reset()
        cpu0, sent0, t0 = (await pool.stats(0))["cpu"], session.track.sent, time.monotonic()
        await asyncio.sleep(seconds)  # the measurement window
        cpu1, sent1, t1 = (await pool.stats(0))["cpu"], session.track.sent, time.monotonic()
        wall = t1 - t0
        got = [sum(c.frames()["audio"]) for c in session.frame_counters]
        sent = sent1 - sent0
        return {
            "subscribers": subscribers,
            "seconds": round(wall, 2),
            "publisher_pps": round(sent / wall, 1),
            "worker_cpu_fraction": round((cpu1 - cpu0) / wall, 4),
            "cpu_per_stream": (cpu1 - cpu0) / (subscribers * wall),
            "delivery_ratio": round(sum(got) / (sent * subscribers), 4) if sent else 0.0,
            "min_delivery": round(min(got) / sent, 4) if sent else 0.0,
        }
    finally:
        await session.close()
        await pool.close()


# --- the realistic mix ----------------------------------------------------------------------


class MixHearing(sfu.PoolSession):
    """Four participants on one router, each sending Opus + VP8 and receiving the others."""

    def __init__(self, pool: WorkerPool, media: Media) -> None:
        super().__init__(pool, media.clip, 1.0)
        self.media = media
        self.videos: list[frames.VideoTrack] = []
        self.audios: list[frames.OpusTrack] = []
        self.frame_counters: list[frames.FrameCounter] = []
        self.samples: dict[str, list[float]] | None = None

    async def start_mix(self, probe: bool) -> None:
        self.worker_index = (await self.pool.create_router(self.hearing)).worker_index
        pcs = []
        for i in range(4):
            pc = sfu.new_pc()
            # The timed publisher sends media of its own: payload tails must not match the
            # others' (they replay the same clips, started at other moments).
            timed = probe and i == 0
            audio = frames.OpusTrack(self.media.probe_opus if timed else self.media.opus)
            video = frames.VideoTrack(self.media.probe_clip if timed else self.clip)
            pc.addTransceiver(audio, direction="sendrecv")
            pc.addTransceiver(video, direction="sendrecv")
            self.audios.append(audio)
            self.videos.append(video)
            await self._join(pc)
            pcs.append(pc)
            # Cut the receive path before media arrives (aiortc would decode it).
            await sfu.wait_until(lambda pc=pc: bool(pc.connectionState == "connected"), 30, "up")  # type: ignore[misc]
            counter = frames.FrameCounter()
            if probe and i == 1:
                self.sends.hook(pcs[0])
                self.samples = timing_probe(pc, self.sends, counter)
            else:
                frames.count_frames(pc, counter)
            self.frame_counters.append(counter)

        def flowing() -> bool:
            return all(len(c.video) >= 3 and len(c.audio) >= 3 for c in self.frame_counters)

        await sfu.wait_until(flowing, 60, "every participant receives the three others")

    def reset(self) -> None:
        for c in self.frame_counters:
            c.reset()
        for samples in (self.samples or {}).values():
            samples.clear()
        self.sent0 = [(v.sent, a.sent) for v, a in zip(self.videos, self.audios, strict=True)]

    def worst(self) -> tuple[list[float], list[int]]:
        """Per subscriber the worst of its six streams (received / sent frames); video sent."""
        sent = [
            (v.sent - v0, a.sent - a0)
            for (v, a), (v0, a0) in zip(
                zip(self.videos, self.audios, strict=True), self.sent0, strict=True
            )
        ]
        worst = []
        for j, counter in enumerate(self.frame_counters):
            got = counter.frames()
            ratios = []
            for k, kind in enumerate(("video", "audio")):
                expected = sorted((s[k] for i, s in enumerate(sent) if i != j), reverse=True)
                have = got[kind][:3] + [0] * (3 - len(got[kind][:3]))
                ratios += [g / e if e else 0.0 for g, e in zip(have, expected, strict=True)]
            worst.append(min(ratios))
        return worst, [s[0] for s in sent]


@dataclass
class Media:
    clip: list[tuple[bytes, bool]]
    opus: list[bytes]
    probe_clip: list[tuple[bytes, bool]]  # the timed publisher's, encoded apart
    probe_opus: list[bytes]


async def measure_mix(media: Media, hearings: int, seconds: float) -> dict[str, Any]:
    pool = WorkerPool(1)
    await pool.start()
    sessions = [MixHearing(pool, media) for _ in range(hearings)]
    try:
        for i, session in enumerate(sessions):
            await session.start_mix(probe=i == 0)
        await asyncio.sleep(1.5)  # warm-up: keyframes, first RTCP
        for session in sessions:
            session.reset()
        cpu0, gen0, t0 = (await pool.stats(0))["cpu"], time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)  # the measurement window
        cpu1, gen1, t1 = (await pool.stats(0))["cpu"], time.process_time(), time.monotonic()
        wall = t1 - t0
        worst: list[float] = []
        video_rates: list[float] = []
        for session in sessions:
            w, video_sent = session.worst()
            worst += w
            video_rates += [v / (sfu.FPS * wall) for v in video_sent]
        probe = sessions[0].samples or {}
        samples = sorted(probe.get("audio", []) + probe.get("video", []))
        audio = sorted(probe.get("audio", []))
        cpu = (cpu1 - cpu0) / wall
        return {
            "hearings": hearings,
            "seconds": round(wall, 2),
            "worker_cpu_fraction": round(cpu, 4),
            "cpu_per_hearing": round(cpu / hearings, 5),
            "min_delivery": round(min(worst), 4),
            "min_publisher_rate": round(min(video_rates), 3),
            "latency_ms_p50": round(sfu.percentile(samples, 0.5), 2),
            "latency_ms_p95": round(sfu.percentile(samples, 0.95), 2),
            "latency_samples": len(samples),
            "audio_latency_ms_p50": round(sfu.percentile(audio, 0.5), 2),
            "audio_latency_ms_p95": round(sfu.percentile(audio, 0.95), 2),
            "generator_cpu_fraction": round((gen1 - gen0) / wall, 3),
        }
    finally:
        for session in sessions:
            await session.close()
        await pool.close()


# --- driver ---------------------------------------------------------------------------------


async def run_mix(
    smoke: bool = False,
    audio_subscribers: Sequence[int] = (100, 200),
    hearings: Sequence[int] = (2, 4, 6, 8, 11, 14, 17, 20),
    seconds: float = 10.0,
    log: Callable[[str], None] = lambda text: None,
) -> dict[str, Any]:
    """Both measurements (module docstring); one JSON-ready dict."""
    aiortc_hooks.install_host_addresses(["127.0.0.1"])
    if smoke:
        audio_subscribers, hearings, seconds = (5,), (1, 2), 3.0
    length = 2.0 if smoke else 4.0
    clip = await asyncio.to_thread(sfu.encode_clip, length, 640, 480, 1_000_000)
    opus = await asyncio.to_thread(frames.encode_opus, 4.0)
    media = Media(
        clip,
        opus,
        await asyncio.to_thread(sfu.encode_clip, length, 640, 480, 1_010_000),
        await asyncio.to_thread(frames.encode_opus, 4.0, 330.0),
    )
    audio = []
    for n in audio_subscribers:
        result = await measure_audio(opus, n, seconds)
        log(f"audio N={n}: {result}")
        audio.append(result)
    full_audio = [r for r in audio if r["min_delivery"] >= FULL] or audio[:1]
    audio_basis = full_audio[-1]
    mix: list[dict[str, Any]] = []
    for h in hearings:
        step = await measure_mix(media, h, seconds)
        log(f"mix H={h}: {step}")
        mix.append(step)
        if _limit(mix) != "ramp end":
            break  # full rate ends here (or the generator could not keep up)
    at_full = [s for s in mix if s["min_delivery"] >= FULL and not _slower(s, mix[0])]
    basis = at_full[-1] if at_full else mix[0]
    marginal = None
    if (
        len(at_full) >= 2
        and at_full[-1]["worker_cpu_fraction"] > at_full[-2]["worker_cpu_fraction"]
    ):
        a, b = at_full[-2], at_full[-1]
        marginal = (b["hearings"] - a["hearings"]) / (
            b["worker_cpu_fraction"] - a["worker_cpu_fraction"]
        )
    return {
        "audio_streams_per_core": round(1.0 / audio_basis["cpu_per_stream"], 1),
        "audio_streams_per_core_basis_subscribers": audio_basis["subscribers"],
        "audio_full_rate": bool(full_audio) and audio_basis["min_delivery"] >= FULL,
        "hearings_per_core": round(1.0 / basis["cpu_per_hearing"], 1)
        if basis["cpu_per_hearing"]
        else None,
        "hearings_per_core_basis_hearings": basis["hearings"],
        "marginal_hearings_per_core": round(marginal, 1) if marginal else None,
        "mix_full_rate": bool(at_full),
        "mix_largest_full_rate_hearings": at_full[-1]["hearings"] if at_full else 0,
        "mix_limited_by": _limit(mix),
        "audio": [{k: v for k, v in r.items() if k != "cpu_per_stream"} for r in audio],
        "mix": mix,
        "clip_mbps": round(sum(len(f) for f, _ in clip) * 8 / (len(clip) / sfu.FPS) / 1e6, 3),
        "smoke": smoke,
    }


def _slower(step: dict[str, Any], first: dict[str, Any]) -> bool:
    """Latency grew: the median over 3x the first step's and over 20 ms (queues building up in
    the worker). The p95 is no test: whole keyframes arrive late at every H (the docs say)."""
    return bool(step["latency_ms_p50"] > max(20.0, 3 * first["latency_ms_p50"]))


def _limit(mix: list[dict[str, Any]]) -> str:
    """Why the ramp stopped where it did."""
    last = mix[-1]
    if last["min_delivery"] < FULL:
        return "delivery"
    if _slower(last, mix[0]):
        return "latency"
    if last["generator_cpu_fraction"] > 0.9:
        return "generator"
    return "ramp end"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, well under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--hearings", default="2,4,6,8,11,14,17,20", help="the ramp of H")
    parser.add_argument("--audio", default="100,200", help="audio-only subscriber counts")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr if args.json else sys.stdout, flush=True)

    result = uvloop.run(
        run_mix(
            smoke=args.smoke,
            audio_subscribers=[int(x) for x in args.audio.split(",")],
            hearings=[int(x) for x in args.hearings.split(",")],
            seconds=args.seconds,
            log=log,
        )
    )
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
