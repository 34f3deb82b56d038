"""Benchmark of the evidence recording path (remux + seal) against aiortc's MediaRecorder.

    .venv/bin/python bench/recording.py --json            # full size (~1 min)
    .venv/bin/python bench/recording.py --smoke --json    # a few seconds, for tests

Prints one JSON object:
- cpu_per_stream_fraction: process CPU seconds per media second for remuxing and sealing one
  participant stream (VP8 ~1 Mbps + Opus) through RecordingWriter (share of one core);
- mediarecorder_cost_ratio: aiortc MediaRecorder's CPU (decode + re-encode the same input into
  .webm, as a recorder built on it must) divided by ours, same run;
- verify_mb_per_s: offline verify throughput over a package of --verify-mb MB (files in the page
  cache; hashing only, no key), with sha256_single_thread_mb_per_s as the same run's reference.
- With --tsa (RFC 3161 anchors): a real test TSA (`openssl ts -reply`, local_tsa.py in
  tests/recordings) runs in a child process. Recording: checkpoints stamped every --tsa-every
  (default: the server's default, 15) plus the manifest; anchored_cpu_per_stream_fraction (CPU
  includes the anchoring thread until every token is stored) with its ratio to the plain figure
  (medians of --repeat interleaved runs) and the CPU per token. Verify: every checkpoint stamped
  (the worst case), tokens checked against the TSA's CA: verify_anchored_mb_per_s and ratio.
CPU is measured with time.process_time() around each phase (this process only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recordings.ids import ParticipantId
from recordings.keys import ArchivePrivateKey, SigningKey, StaticKeyProvider
from recordings.selftest import MediaClock
from recordings.synthetic import EncodedFrame, encode_synthetic
from recordings.timestamps import TsaConfig, TsaTrust, load_certificates
from recordings.verify import verify_package
from recordings.writer import RecordingWriter

ROOT = Path(__file__).resolve().parents[1]


def _keys() -> StaticKeyProvider:
    return StaticKeyProvider(SigningKey.generate(), (ArchivePrivateKey.generate().public_key,))


@contextlib.contextmanager
def tsa_process(directory: Path) -> Iterator[tuple[str, Path]]:
    """A test TSA in a child process (its CPU is not this process's): (url, CA file)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.recordings.local_tsa", str(directory)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url, ca = proc.stdout.readline().split()
        yield url, Path(ca)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def bench_ours(
    frames: list[EncodedFrame], seconds: float, tmp: Path, tsa: TsaConfig | None = None
) -> float:
    clock = MediaClock()
    pid = ParticipantId("p1")
    shutil.rmtree(tmp / "ours", ignore_errors=True)
    start = time.process_time()
    writer = RecordingWriter(tmp / "ours", _keys(), clock=clock, tsa=tsa)
    writer.add_participant(pid, video=True, audio=True, audio_channels=1)
    for f in frames:
        clock.offset = f.time
        if f.kind == "video":
            writer.write_video(pid, f.data, f.rtp_timestamp, f.keyframe)
        else:
            writer.write_audio(pid, f.data, f.rtp_timestamp)
    clock.offset = seconds
    writer.seal()
    if writer.anchorer is not None:
        # Count the anchoring thread's work too: wait (idle) until every token is stored.
        assert writer.anchorer.wait(120), "TSA did not answer"
        assert writer.anchorer.missing == [], writer.anchorer.missing
    return time.process_time() - start


class _DecodedTrack(MediaStreamTrack):
    """Decodes our encoded frames, as a MediaRecorder fed by the SFU would have to."""

    def __init__(self, kind: str, frames: list[EncodedFrame], done: asyncio.Event) -> None:
        super().__init__()
        self.kind = kind
        self._frames = [f for f in frames if f.kind == kind]
        self._decoder: Any = av.CodecContext.create("vp8" if kind == "video" else "opus", "r")
        self._queue: list[Any] = []
        self._done = done
        self._i = 0

    async def recv(self) -> Any:
        while not self._queue:
            if self._i >= len(self._frames):
                self._done.set()
                raise MediaStreamError
            f = self._frames[self._i]
            self._i += 1
            packet = av.Packet(f.data)
            for frame in self._decoder.decode(packet):
                if self.kind == "video":
                    frame.pts = round(f.time * 90_000)
                    frame.time_base = Fraction(1, 90_000)
                else:
                    frame.pts = round(f.time * 48_000)
                    frame.time_base = Fraction(1, 48_000)
                self._queue.append(frame)
        return self._queue.pop(0)


async def _run_mediarecorder(frames: list[EncodedFrame], out: Path) -> None:
    recorder = MediaRecorder(str(out))
    done_v, done_a = asyncio.Event(), asyncio.Event()
    recorder.addTrack(_DecodedTrack("video", frames, done_v))
    recorder.addTrack(_DecodedTrack("audio", frames, done_a))
    await recorder.start()
    await asyncio.wait_for(asyncio.gather(done_v.wait(), done_a.wait()), timeout=600)
    await recorder.stop()


def bench_mediarecorder(frames: list[EncodedFrame], tmp: Path) -> float:
    start = time.process_time()
    asyncio.run(_run_mediarecorder(frames, tmp / "mediarecorder.webm"))
    return time.process_time() - start


def bench_verify(
    tmp: Path, megabytes: int, tsa: TsaConfig | None = None, trust: TsaTrust | None = None
) -> float:
    """Build a package of about `megabytes` MB (opaque 256 KiB 'frames': verify never decodes)
    and time verify_package over it (with its time-stamp tokens checked when `tsa` is given)."""
    clock = MediaClock()
    pid = ParticipantId("p1")
    keys = _keys()
    trusted = [keys.signer.verify_key]  # verify as an auditor does: against a known key
    shutil.rmtree(tmp / "big", ignore_errors=True)
    writer = RecordingWriter(tmp / "big", keys, clock=clock, tsa=tsa)
    writer.add_participant(pid, video=True, audio=False)
    blob = bytes(range(256)) * 1024
    n = megabytes * 4
    for i in range(n):
        clock.offset = i / 30
        writer.write_video(pid, blob, i * 3000, i % 60 == 0)
    writer.seal()
    if writer.anchorer is not None:
        assert writer.anchorer.wait(120), "TSA did not answer"
    size = sum(p.stat().st_size for p in (tmp / "big" / "segments").iterdir())
    verify_package(tmp / "big", trusted, tsa=trust)  # warm the page cache
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        report = verify_package(tmp / "big", trusted, tsa=trust)
        best = min(best, time.perf_counter() - t)
        assert report.exit_code == 0, report.text()
        if trust is not None:
            assert report.anchors is not None
            assert len(report.anchors.anchors) == report.checkpoints + 1, report.text()
    return size / 1e6 / best


def bench_sha256(megabytes: int) -> float:
    """Single-thread hashlib SHA-256 over an in-memory buffer: the ceiling verify is held to."""
    buf = bytes(megabytes * 1_000_000)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        hashlib.sha256(buf).digest()
        best = min(best, time.perf_counter() - t)
    return megabytes / best


def bench_anchored(
    frames: list[EncodedFrame],
    seconds: float,
    tmp: Path,
    verify_mb: int,
    repeat: int,
    every: int,
) -> dict[str, Any]:
    """Plain and anchored recording CPU interleaved (so machine load hits both alike), medians;
    then verify of the same big package with and without its tokens checked."""
    with tsa_process(tmp / "tsa") as (url, ca):
        cfg = TsaConfig(url=url, every=every, timeout=30.0)
        trust = TsaTrust(load_certificates([ca]))
        plain: list[float] = []
        anchored: list[float] = []
        for _ in range(repeat):
            plain.append(bench_ours(frames, seconds, tmp))
            anchored.append(bench_ours(frames, seconds, tmp, cfg))
        tokens = len(list((tmp / "ours" / "timestamps").glob("*.tsr")))
        verify_plain = bench_verify(tmp, verify_mb)
        all_cps = TsaConfig(url=url, every=1, timeout=30.0)
        verify_anchored = bench_verify(tmp, verify_mb, all_cps, trust)
        verify_tokens = len(list((tmp / "big" / "timestamps").glob("*.tsr")))
    p, a = statistics.median(plain), statistics.median(anchored)
    return {
        "tsa_every": every,
        "tokens_per_recording": tokens,
        "anchor_cpu_ms_per_token": round((a - p) / tokens * 1000, 2),
        "verify_tokens": verify_tokens,
        "plain_cpu_per_stream_fraction_median": round(p / seconds, 5),
        "anchored_cpu_per_stream_fraction_median": round(a / seconds, 5),
        "anchored_cpu_ratio": round(a / p, 3),
        "plain_cpu_s_runs": [round(x, 4) for x in plain],
        "anchored_cpu_s_runs": [round(x, 4) for x in anchored],
        "verify_plain_mb_per_s": round(verify_plain, 1),
        "verify_anchored_mb_per_s": round(verify_anchored, 1),
        "verify_anchored_ratio": round(verify_anchored / verify_plain, 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--verify-mb", type=int, default=256)
    ap.add_argument("--size", default="1280x720", help="video size WxH of the synthetic stream")
    ap.add_argument("--tsa", action="store_true", help="also measure with RFC 3161 anchors")
    ap.add_argument("--repeat", type=int, default=5, help="runs per recording figure with --tsa")
    ap.add_argument("--tsa-every", type=int, default=TsaConfig.every, help="stamp every Nth")
    args = ap.parse_args(argv)
    seconds = 1.0 if args.smoke else args.seconds
    verify_mb = 8 if args.smoke else args.verify_mb
    w, h = (int(x) for x in args.size.split("x"))
    width, height = (320, 240) if args.smoke else (w, h)
    frames = encode_synthetic(seconds, width=width, height=height, bitrate=1_000_000)
    video_bytes = sum(len(f.data) for f in frames if f.kind == "video")
    audio_bytes = sum(len(f.data) for f in frames if f.kind == "audio")
    tmp = Path(tempfile.mkdtemp(prefix="bench-recording-"))
    try:
        ours = bench_ours(frames, seconds, tmp)
        theirs = bench_mediarecorder(frames, tmp)
        verify = bench_verify(tmp, verify_mb)
        sha = bench_sha256(min(verify_mb, 128))
        anchored: dict[str, Any] = {}
        if args.tsa:
            anchored = bench_anchored(frames, seconds, tmp, verify_mb, args.repeat, args.tsa_every)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "media_seconds": seconds,
        "stream_kbps": round((video_bytes + audio_bytes) * 8 / seconds / 1000, 1),
        "ours_cpu_s": round(ours, 4),
        "mediarecorder_cpu_s": round(theirs, 3),
        "cpu_per_stream_fraction": round(ours / seconds, 5),
        "mediarecorder_cpu_per_stream_fraction": round(theirs / seconds, 4),
        "mediarecorder_cost_ratio": round(theirs / ours, 1),
        "verify_mb": verify_mb,
        "verify_mb_per_s": round(verify, 1),
        "sha256_single_thread_mb_per_s": round(sha, 1),
        "resolution": f"{width}x{height}",
        "smoke": args.smoke,
        **anchored,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:40s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
