"""SFU forwarding benchmark: one VP8 publisher -> SFU -> N subscribers, on loopback.

What it measures (docs/benchmarks.md, "SFU forwarding"):

* SFU CPU per forwarded stream: CPU seconds of the SFU worker process only (its own
  `time.process_time()`, asked over the worker pipe) divided by subscriber-stream-seconds,
  for a 640x480, 30 fps, ~1 Mbps VP8 stream. `streams_per_core` = 1 / that cost, measured at
  the largest N of the run whose subscribers got 98-102 % of the packets with a p50 latency
  under 50 ms (else the load generator, not the SFU, was the limit).
* added latency: time from the publisher handing an RTP packet to its DTLS transport to a
  probe subscriber having it decrypted (packets matched by their payload tail, both ends in
  this process), minus the same measured on a direct publisher -> subscriber connection.
* the naive baseline in the same run: an aiortc server that decodes the publisher's track
  and re-encodes it per subscriber through `MediaRelay`; `reencode_cost_ratio` = its CPU per
  stream / the SFU's CPU per stream.
* `two_worker_scaling`: packets delivered per second at saturation (the publisher replays
  the clip faster than real time) with one hearing on one worker, versus two hearings on two
  workers.

The publisher replays a clip encoded once with PyAV (lavfi testsrc2 + noise, libvpx CBR), so
it costs almost nothing; subscribers are real aiortc connections (ICE, DTLS, SRTP keys) whose UDP
receive callback is replaced by a counter once connected (no decryption, no decoding), except
the latency probe, which decrypts.

    .venv/bin/python bench/sfu_forwarding.py            # full run (a few minutes)
    .venv/bin/python bench/sfu_forwarding.py --smoke --json
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import uvloop
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.rtcconfiguration import RTCBundlePolicy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.ids import HearingId, ParticipantId, new_id
from server.sfu import aiortc_hooks
from server.sfu.rtp import is_vp8_keyframe_start
from server.worker import WorkerPool

VIDEO_CLOCK = 90000
FPS = 30


# --- the clip ------------------------------------------------------------------------------


def encode_clip(seconds: float, width: int, height: int, bitrate: int) -> list[tuple[bytes, bool]]:
    """Encode `seconds` of a lavfi test pattern as VP8 once; returns (frame, is_keyframe)."""
    # noise keeps the encoder at its target bitrate (a flat test pattern compresses to ~0.5 Mbps)
    source = av.open(
        f"testsrc2=size={width}x{height}:rate={FPS},noise=alls=12:allf=t", format="lavfi"
    )
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = bitrate
    codec.time_base = fractions.Fraction(1, FPS)
    codec.gop_size = 2 * FPS
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(bitrate),  # minrate = maxrate = bit_rate: libvpx CBR
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
    }
    frames: list[tuple[bytes, bool]] = []
    wanted = int(seconds * FPS)
    for frame in source.decode(video=0):
        frame = frame.reformat(format="yuv420p")
        frame.pts = len(frames)
        frame.pict_type = av.video.frame.PictureType.NONE  # lavfi marks frames I: no forced KF
        for packet in codec.encode(frame):
            frames.append((bytes(packet), bool(packet.is_keyframe)))
        if len(frames) >= wanted:
            break
    source.close()
    return frames


class ClipTrack(MediaStreamTrack):
    """Replays the pre-encoded clip as av.Packets (aiortc only packetizes them), looping."""

    kind = "video"

    def __init__(self, clip: list[tuple[bytes, bool]], speed: float = 1.0) -> None:
        super().__init__()
        self._clip = clip
        self._speed = speed
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> Any:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index / (FPS * self._speed)
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing a live source
        data, _ = self._clip[self._index % len(self._clip)]
        packet = av.Packet(data)
        packet.pts = self._index * (VIDEO_CLOCK // FPS)
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._index += 1
        return packet


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


async def wait_until(condition: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


# --- latency bookkeeping -------------------------------------------------------------------


class SendTimes:
    """Publisher-side send time of each RTP packet, keyed by its payload tail.

    Also, per packet, its frame (RTP timestamp, `frame_of`), which frames are keyframes, and
    per frame its packet count and last send time (`frames`, complete once the marker packet
    went): what the probe needs for latency per class and frame-complete latency.
    """

    def __init__(self) -> None:
        self.times: dict[bytes, float] = {}
        self.sent = 0
        self.frame_of: dict[bytes, int] = {}
        self.keyframes: set[int] = set()
        self.frames: dict[int, list[Any]] = {}  # ts -> [packets, last send time, marker seen]

    def note_frame(self, data: bytes, tail: bytes, now: float) -> None:
        ts = int.from_bytes(data[4:8], "big")
        self.frame_of[tail] = ts
        frame = self.frames.get(ts)
        if frame is None:
            frame = self.frames[ts] = [0, now, False]
            if is_vp8_keyframe_start(data):
                self.keyframes.add(ts)
        frame[0] += 1
        frame[1] = now
        frame[2] = frame[2] or bool(data[1] & 0x80)
        if len(self.frames) > 2000:
            self.frames.clear()
            self.keyframes.clear()
            self.frame_of.clear()

    def hook(self, pc: RTCPeerConnection) -> None:
        dtls = pc.getTransceivers()[0].sender.transport
        original = dtls._send_rtp

        async def send_rtp(data: bytes) -> None:
            if not (len(data) >= 2 and 192 <= data[1] <= 208):  # not RTCP
                now = time.monotonic()
                self.times[data[-12:]] = now
                self.note_frame(data, data[-12:], now)
                self.sent += 1
                if len(self.times) > 20000:
                    self.times.clear()
            await original(data)

        dtls._send_rtp = send_rtp  # type: ignore[method-assign]


class Probe:
    """Decrypting subscriber endpoint that records per-packet latency, no decoding."""

    def __init__(self, sends: SendTimes) -> None:
        self.sends = sends
        self.samples: list[float] = []
        self.recording = False
        # per class (issue 18.3): packets of keyframes / of delta frames, and the time from the
        # publisher sending a frame's last packet to the probe having all of it
        self.key_samples: list[float] = []
        self.delta_samples: list[float] = []
        self.key_complete: list[float] = []
        self.delta_complete: list[float] = []
        self._got: dict[int, int] = {}

    def hook(self, pc: RTCPeerConnection) -> None:
        dtls = pc.getTransceivers()[0].receiver.transport

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            tail = data[-12:]
            sent = self.sends.times.get(tail)
            if sent is not None and self.recording:
                now = time.monotonic()
                self.samples.append((now - sent) * 1000)
                self._classify(tail, sent, now)

        dtls._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]

    def _classify(self, tail: bytes, sent: float, now: float) -> None:
        ts = self.sends.frame_of.get(tail)
        if ts is None:
            return
        key = ts in self.sends.keyframes
        (self.key_samples if key else self.delta_samples).append((now - sent) * 1000)
        got = self._got[ts] = self._got.get(ts, 0) + 1
        frame = self.sends.frames.get(ts)
        if frame is not None and frame[2] and got == frame[0]:
            (self.key_complete if key else self.delta_complete).append((now - frame[1]) * 1000)
            del self._got[ts]
        if len(self._got) > 2000:
            self._got.clear()

    def classes(self) -> dict[str, list[float]]:
        """Sorted samples per class (ms)."""
        return {
            "keyframe_packets": sorted(self.key_samples),
            "delta_packets": sorted(self.delta_samples),
            "keyframe_complete": sorted(self.key_complete),
            "delta_frame_complete": sorted(self.delta_complete),
        }


class Counter:
    __slots__ = ("packets",)

    def __init__(self) -> None:
        self.packets = 0


def count_only(pc: RTCPeerConnection) -> Counter:
    """Replace the subscriber's UDP receive path by a counter (STUN still goes to aioice)."""
    counter = Counter()
    connection = pc.getTransceivers()[0].receiver.transport.transport._connection
    for pair in connection._nominated.values():
        protocol = pair.protocol
        original = protocol.datagram_received

        def datagram_received(
            data: bytes, addr: Any, original: Any = original, counter: Counter = counter
        ) -> None:
            if data and 128 <= data[0] < 192:
                counter.packets += 1
            else:
                original(data, addr)

        protocol.datagram_received = datagram_received  # type: ignore[method-assign,assignment]
    return counter


# --- forwarding (the SFU under test, in worker processes) ----------------------------------


class PoolSession:
    """One hearing on the worker pool: a publisher and N subscribers."""

    def __init__(self, pool: WorkerPool, clip: list[tuple[bytes, bool]], speed: float) -> None:
        self.pool = pool
        self.hearing = HearingId(new_id())
        self.clip = clip
        self.speed = speed
        self.pcs: dict[ParticipantId, RTCPeerConnection] = {}
        self.counters: list[Counter] = []
        self.sends = SendTimes()
        self.probe: Probe | None = None
        self.active_consumers = 0
        self.worker_index = -1
        self._locks: dict[ParticipantId, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        pool.on("offer", self._on_offer)

    def _on_offer(self, hearing: HearingId, peer: ParticipantId, sdp: str) -> None:
        if hearing == self.hearing and peer in self.pcs:
            task = asyncio.ensure_future(self._answer(peer, sdp))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, peer: ParticipantId, sdp: str) -> None:
        pc = self.pcs[peer]
        async with self._locks[peer]:
            await wait_until(lambda: pc.connectionState == "connected", 30, "subscriber up")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await self.pool.router(self.hearing).handle_answer(peer, pc.localDescription.sdp)
            self.active_consumers += 1

    async def _join(self, pc: RTCPeerConnection) -> ParticipantId:
        peer = ParticipantId(new_id())
        self.pcs[peer] = pc
        self._locks[peer] = asyncio.Lock()
        await self.pool.router(self.hearing).add_peer(peer)
        async with self._locks[peer]:
            await pc.setLocalDescription(await pc.createOffer())
            answer = await self.pool.router(self.hearing).handle_offer(
                peer, pc.localDescription.sdp
            )
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        return peer

    async def start(self, subscribers: int, probe: bool) -> None:
        self.worker_index = (await self.pool.create_router(self.hearing)).worker_index
        publisher = new_pc()
        publisher.addTrack(ClipTrack(self.clip, self.speed))
        await self._join(publisher)
        await wait_until(lambda: publisher.connectionState == "connected", 30, "publisher")
        self.sends.hook(publisher)
        for i in range(subscribers):
            pc = new_pc()
            pc.addTransceiver("audio", direction="recvonly")  # transport anchor
            await self._join(pc)
            await wait_until(lambda pc=pc: bool(pc.connectionState == "connected"), 30, "sub up")  # type: ignore[misc]
            # Cut the receive path before any media arrives: an aiortc receiver would decode
            # and queue frames on an undrained track (memory without bound, CPU in the driver).
            if probe and i == 0:
                self.probe = Probe(self.sends)
                self.probe.hook(pc)
            else:
                self.counters.append(count_only(pc))
        await wait_until(
            lambda: self.active_consumers >= subscribers, 60 + subscribers, "consumers negotiated"
        )

    def delivered(self) -> int:
        return sum(c.packets for c in self.counters)

    async def close(self) -> None:
        for pc in self.pcs.values():
            await pc.close()


async def start_profile(pid: int, seconds: float, out: Path) -> asyncio.subprocess.Process:
    """py-spy on the worker for the measurement window (collapsed stacks, non-blocking)."""
    return await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("py-spy")),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds))),
        "--rate",
        "250",
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def summarize_profile(path: Path, top: int = 16) -> dict[str, Any]:
    """Shares of the samples: per leaf line (self time; C calls such as protect or sendto
    count on the Python line that makes them), per leaf function, and inclusive shares of the
    send path's functions."""
    lines: dict[str, int] = {}
    functions: dict[str, int] = {}
    inclusive = dict.fromkeys(
        ("Producer.on_rtp", "forward", "Pacer.run", "send_run", "protect", "retransmit"), 0
    )
    total = 0
    for row in path.read_text().splitlines():
        stack, _, count_text = row.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        name, _, where = frames[-1].partition(" (")
        line = f"{name} ({where.rsplit('/', 1)[-1]}"
        lines[line] = lines.get(line, 0) + count
        function = f"{name} ({where.rsplit('/', 1)[-1].split(':')[0]})"
        functions[function] = functions.get(function, 0) + count
        names = {f.partition(" (")[0] for f in frames}
        for key in inclusive:
            if any(n == key or n.endswith("." + key) for n in names):
                inclusive[key] += count

    def shares(counts: dict[str, int]) -> dict[str, float]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
        return {k: round(v / total, 3) for k, v in ranked}

    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "self_by_line": shares(lines),
        "self_by_function": shares(functions),
        "inclusive": {k: round(v / total, 3) for k, v in inclusive.items()},
    }


async def finish_profile(spy: asyncio.subprocess.Process, out: Path) -> dict[str, Any]:
    await spy.wait()
    if spy.returncode != 0:
        return {"error": f"py-spy exited with {spy.returncode}"}
    return await asyncio.to_thread(summarize_profile, out)


async def measure_forwarding(
    clip: list[tuple[bytes, bool]],
    subscribers: int,
    seconds: float,
    *,
    profile: Path | None = None,
) -> dict[str, Any]:
    pool = WorkerPool(1)
    await pool.start()
    session = PoolSession(pool, clip, speed=1.0)
    try:
        await session.start(subscribers, probe=True)
        await asyncio.sleep(1.5)  # warm-up: keyframe requests, REMB, first RTCP
        assert session.probe is not None
        session.probe.recording = True
        stats0 = await pool.stats(0)
        cpu0 = stats0["cpu"]
        spy = await start_profile(stats0["pid"], seconds, profile) if profile else None
        sent0, got0, t0 = session.sends.sent, session.delivered(), time.monotonic()
        await asyncio.sleep(seconds)  # the measurement window
        cpu1 = (await pool.stats(0))["cpu"]
        sent1, got1, t1 = session.sends.sent, session.delivered(), time.monotonic()
        session.probe.recording = False
        wall = t1 - t0
        streams = subscribers  # the probe is a forwarded stream too
        expected = (sent1 - sent0) * (subscribers - 1)
        delivery = (got1 - got0) / expected if expected else 0.0
        cpu = cpu1 - cpu0
        samples = sorted(session.probe.samples)
        return {
            "subscribers": subscribers,
            "seconds": round(wall, 2),
            "sfu_cpu_fraction": round(cpu / wall, 4),
            "cpu_per_stream": cpu / (streams * wall),
            "publisher_pps": round((sent1 - sent0) / wall, 1),
            "delivery_ratio": round(delivery, 4),
            "latency_ms": samples,
            "classes": session.probe.classes(),
            **({"profile": await finish_profile(spy, profile)} if spy and profile else {}),
        }
    finally:
        await session.close()
        await pool.close()


async def measure_direct_latency(clip: list[tuple[bytes, bool]], seconds: float) -> list[float]:
    """Publisher -> subscriber without the SFU: the baseline for the added latency."""
    return sorted((await measure_direct_probe(clip, seconds)).samples)


async def measure_direct_probe(clip: list[tuple[bytes, bool]], seconds: float) -> Probe:
    """As `measure_direct_latency`, returning the probe (latency per class too)."""
    publisher, subscriber = new_pc(), new_pc()
    publisher.addTrack(ClipTrack(clip))
    subscriber.addTransceiver("video", direction="recvonly")
    try:
        await subscriber.setLocalDescription(await subscriber.createOffer())
        await publisher.setRemoteDescription(subscriber.localDescription)
        await publisher.setLocalDescription(await publisher.createAnswer())
        await subscriber.setRemoteDescription(publisher.localDescription)
        await wait_until(
            lambda: publisher.connectionState == subscriber.connectionState == "connected",
            30,
            "direct connection",
        )
        sends = SendTimes()
        sends.hook(publisher)
        probe = Probe(sends)
        probe.hook(subscriber)
        await asyncio.sleep(0.5)
        probe.recording = True
        await asyncio.sleep(seconds)
        probe.recording = False
        return probe
    finally:
        await publisher.close()
        await subscriber.close()


async def measure_scaling(
    clip: list[tuple[bytes, bool]], workers: int, subscribers: int, speed: float, seconds: float
) -> dict[str, Any]:
    """Forwarding capacity of `workers` workers running at the same time, one hearing each.

    Capacity of a worker = packets it delivered per CPU-second it used (what one fully used
    core sustains); the pool's capacity is the sum. Saturating two workers for real needs
    more than this 2-vCPU machine has once the load generator and subscribers share it.
    """
    pool = WorkerPool(workers)
    await pool.start()
    sessions = [PoolSession(pool, clip, speed) for _ in range(workers)]
    try:
        for session in sessions:
            await session.start(subscribers, probe=False)
        assert sorted(s.worker_index for s in sessions) == list(range(workers))
        await asyncio.sleep(1.5)
        cpu0 = [(await pool.stats(s.worker_index))["cpu"] for s in sessions]
        got0, t0 = [s.delivered() for s in sessions], time.monotonic()
        sent0 = sum(s.sends.sent for s in sessions)
        await asyncio.sleep(seconds)
        got1, t1 = [s.delivered() for s in sessions], time.monotonic()
        sent1 = sum(s.sends.sent for s in sessions)
        cpu1 = [(await pool.stats(s.worker_index))["cpu"] for s in sessions]
        wall = t1 - t0
        cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
        delivered = [b - a for a, b in zip(got0, got1, strict=True)]
        return {
            "workers": workers,
            "subscribers_per_worker": subscribers,
            "speed": speed,
            "delivered_pps": round(sum(delivered) / wall, 1),
            "offered_pps": round((sent1 - sent0) * subscribers / wall, 1),
            "worker_cpu_fraction": [round(c / wall, 3) for c in cpu],
            "capacity_pps": round(sum(d / c for d, c in zip(delivered, cpu, strict=True) if c), 1),
        }
    finally:
        for session in sessions:
            await session.close()
        await pool.close()


# --- the naive baseline: decode + re-encode per subscriber (aiortc MediaRelay) -------------


async def naive_server() -> None:
    """Subprocess mode: a stock aiortc relay answering JSON-line requests on stdin."""
    aiortc_hooks.install_host_addresses(["127.0.0.1"])
    relay = MediaRelay()
    source: list[MediaStreamTrack] = []
    pcs: list[RTCPeerConnection] = []
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    while line := await reader.readline():
        request = json.loads(line)
        if request["op"] == "stats":
            reply({"cpu": time.process_time()})
            continue
        pc = new_pc()
        pcs.append(pc)
        if request["op"] == "publish":

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                source.append(track)

        else:
            pc.addTrack(relay.subscribe(source[0], buffered=False))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=request["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        reply({"answer": pc.localDescription.sdp})
    for pc in pcs:
        await pc.close()


async def measure_reencode(
    clip: list[tuple[bytes, bool]], subscribers: int, seconds: float
) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--naive-server",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 20,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    async def call(message: dict[str, Any]) -> dict[str, Any]:
        stdin.write(json.dumps(message).encode() + b"\n")
        await stdin.drain()
        result: dict[str, Any] = json.loads(await stdout.readline())
        return result

    async def connect(pc: RTCPeerConnection, op: str) -> None:
        await pc.setLocalDescription(await pc.createOffer())
        answer = await call({"op": op, "sdp": pc.localDescription.sdp})
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["answer"], type="answer"))
        await wait_until(lambda: pc.connectionState == "connected", 30, op)

    publisher = new_pc()
    publisher.addTrack(ClipTrack(clip))
    pcs = [publisher]
    counters: list[Counter] = []
    sends = SendTimes()
    try:
        await connect(publisher, "publish")
        sends.hook(publisher)
        for _ in range(subscribers):
            pc = new_pc()
            pc.addTransceiver("video", direction="recvonly")
            pcs.append(pc)
            await connect(pc, "subscribe")
            counters.append(count_only(pc))
        await asyncio.sleep(2.0)  # warm-up: encoders start
        cpu0 = (await call({"op": "stats"}))["cpu"]
        got0, t0 = sum(c.packets for c in counters), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1 = (await call({"op": "stats"}))["cpu"]
        got1, t1 = sum(c.packets for c in counters), time.monotonic()
        wall = t1 - t0
        return {
            "subscribers": subscribers,
            "server_cpu_fraction": round((cpu1 - cpu0) / wall, 4),
            "cpu_per_stream": (cpu1 - cpu0) / (subscribers * wall),
            "delivered_pps_per_stream": round((got1 - got0) / wall / subscribers, 1),
        }
    finally:
        for pc in pcs:
            await pc.close()
        stdin.close()
        await process.wait()


# --- driver --------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    return samples[min(len(samples) - 1, int(q * len(samples)))]


def class_summary(classes: dict[str, list[float]], direct_p50: dict[str, float]) -> dict[str, Any]:
    """p50/p95/max per latency class, and p50/p95 minus the direct connection's p50."""
    summary: dict[str, Any] = {}
    for name, samples in classes.items():
        base = direct_p50.get(name, float("nan"))
        summary[name] = {
            "n": len(samples),
            "p50": round(percentile(samples, 0.5), 3),
            "p95": round(percentile(samples, 0.95), 3),
            "max": round(samples[-1], 3) if samples else None,
            "added_p50": round(percentile(samples, 0.5) - base, 3),
            "added_p95": round(percentile(samples, 0.95) - base, 3),
        }
    return summary


async def run(
    smoke: bool,
    log: Callable[[str], None],
    *,
    sizes: list[int] | None = None,
    window: float | None = None,
    baselines: bool = True,
    profile: Path | None = None,
) -> dict[str, Any]:
    aiortc_hooks.install_host_addresses(["127.0.0.1"])
    clip = encode_clip(2.0 if smoke else 4.0, 640, 480, 1_000_000)
    clip_bits = sum(len(f) for f, _ in clip) * 8 / (len(clip) / FPS)
    log(f"clip: {len(clip)} frames, {clip_bits / 1e6:.2f} Mbps")
    if window is None:
        window = 2.0 if smoke else 10.0
    if sizes is None:
        sizes = [3] if smoke else [25, 100, 200]
    forwarding = []
    for n in sizes:
        spy = profile.with_suffix(f".n{n}.txt") if profile and n == sizes[-1] else None
        result = await measure_forwarding(clip, n, window, profile=spy)
        log(
            f"forward N={n}: SFU cpu {result['sfu_cpu_fraction']:.3f} core, "
            f"{result['cpu_per_stream'] * 1000:.2f} ms/s per stream, "
            f"delivery {result['delivery_ratio']:.3f}"
        )
        for name, samples in result["classes"].items():
            log(
                f"  {name}: n={len(samples)} p50 {percentile(samples, 0.5):.2f} ms "
                f"p95 {percentile(samples, 0.95):.2f} ms"
            )
        forwarding.append(result)
    direct_probe = await measure_direct_probe(clip, window)
    direct = sorted(direct_probe.samples)
    direct_p50 = {k: percentile(v, 0.5) for k, v in direct_probe.classes().items()}
    if baselines:
        reencode = await measure_reencode(clip, 1 if smoke else 3, window)
        log(
            f"re-encode N={reencode['subscribers']}: server cpu "
            f"{reencode['server_cpu_fraction']:.3f} core, "
            f"{reencode['cpu_per_stream'] * 1000:.1f} ms/s per stream"
        )
        sat_subs, sat_speed = (4, 2.0) if smoke else (40, 3.0)
        one = await measure_scaling(clip, 1, sat_subs, sat_speed, window)
        two = await measure_scaling(clip, 2, sat_subs, sat_speed, window)
        log(f"scaling: 1 worker {one}")
        log(f"scaling: 2 workers {two}")
    else:  # --no-baselines: forwarding and latency only
        reencode = {"subscribers": 0, "cpu_per_stream": float("nan")}
        one = two = {"capacity_pps": 0.0}

    largest = forwarding[-1]
    first = forwarding[0]
    marginal = None
    if largest["subscribers"] > first["subscribers"]:
        marginal = (largest["sfu_cpu_fraction"] - first["sfu_cpu_fraction"]) / (
            largest["subscribers"] - first["subscribers"]
        )
    # A run counts only if the subscribers got the stream in full and in time: a saturated
    # subscriber process drops (< 0.98) or counts late (> 1.02, latency in seconds), and
    # packets it drops are cheaper for the SFU to send, which would flatter the figure.
    full_rate = [
        r
        for r in forwarding
        if 0.98 <= r["delivery_ratio"] <= 1.02 and percentile(r["latency_ms"], 0.5) < 50
    ]
    basis = full_rate[-1] if full_rate else largest
    # Latency headline: the smallest fan-out of the run (a hearing has a handful of
    # subscribers per publisher); every N is reported in "forwarding".
    via = first["latency_ms"]
    direct_p50_all = percentile(direct, 0.5)
    added_p50 = percentile(via, 0.5) - percentile(direct, 0.5)
    added_p95 = percentile(via, 0.95) - percentile(direct, 0.5)
    result = {
        "streams_per_core": round(1.0 / basis["cpu_per_stream"], 1),
        "streams_per_core_basis_subscribers": basis["subscribers"],
        "full_frame_rate": bool(full_rate),
        "marginal_streams_per_core": round(1.0 / marginal, 1) if marginal else None,
        "added_latency_ms_p50": round(added_p50, 3),
        "added_latency_ms_p95": round(added_p95, 3),
        "via_sfu_latency_ms_p50": round(percentile(via, 0.5), 3),
        "direct_latency_ms_p50": round(percentile(direct, 0.5), 3),
        "latency_samples": len(via),
        "reencode_cost_ratio": round(reencode["cpu_per_stream"] / basis["cpu_per_stream"], 1),
        "latency_basis_subscribers": first["subscribers"],
        "two_worker_scaling": round(two["capacity_pps"] / one["capacity_pps"], 3)
        if one["capacity_pps"]
        else 0.0,
        "forwarding": [
            {
                **{k: v for k, v in r.items() if k not in ("latency_ms", "classes")},
                "via_sfu_latency_ms_p50": round(percentile(r["latency_ms"], 0.5), 3),
                "via_sfu_latency_ms_p95": round(percentile(r["latency_ms"], 0.95), 3),
                "added_latency_ms_p50": round(percentile(r["latency_ms"], 0.5) - direct_p50_all, 3),
                "added_latency_ms_p95": round(
                    percentile(r["latency_ms"], 0.95) - direct_p50_all, 3
                ),
                # issue 18.3: keyframe packets vs delta packets, and frame-complete latency
                "latency_classes_ms": class_summary(r["classes"], direct_p50),
            }
            for r in forwarding
        ],
        "direct_latency_classes_ms": class_summary(direct_probe.classes(), direct_p50),
        "pacing": os.environ.get("SHARED_COURT_SFU_PACING", "1") != "0",
        "reencode": reencode,
        "scaling": {"one_worker": one, "two_workers": two},
        "clip_mbps": round(clip_bits / 1e6, 3),
        "smoke": smoke,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, well under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sizes", help="comma-separated subscriber counts (default 25,100,200)")
    parser.add_argument("--window", type=float, help="seconds measured per size (default 10)")
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip the re-encode and scaling runs"
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the worker at the largest N; raw stacks to this path"
    )
    parser.add_argument("--naive-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_server:
        uvloop.run(naive_server())
        return

    def log(message: str) -> None:
        print(message, file=sys.stderr if args.json else sys.stdout, flush=True)

    sizes = [int(n) for n in args.sizes.split(",")] if args.sizes else None
    result = uvloop.run(
        run(
            args.smoke,
            log,
            sizes=sizes,
            window=args.window,
            baselines=not args.no_baselines,
            profile=args.profile,
        )
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
