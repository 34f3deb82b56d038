"""Benchmark of the station's local backup recording against the live encoder it runs beside.

    .venv/bin/python bench/station_backup.py --json               # 20 s of media, ~40 s
    .venv/bin/python bench/station_backup.py --seconds 5 --json   # quicker

The same pre-generated media (lavfi testsrc2 640x480 at 30 fps with 90 kHz pts as
station_client.media.CameraTrack gives them, and a 48 kHz mono s16 microphone stream in 20 ms
frames as MicrophoneTrack gives it) goes, in one process and one run, through:

- backup_encode_cpu_per_s: station_client.backup.encoder.BackupEncoder (its own VP8 at 15 fps and
  600 kbps, pixels copied with private_copy first, plus Opus), CPU seconds per media second;
- live_encode_cpu_per_s: aiortc's own Vp8Encoder and OpusEncoder, every 30 fps frame, as
  RTCRtpSender calls them (frames with pict_type reset, so libvpx makes keyframes only when
  it wants to); backup_to_live_ratio = backup / live;
- live_encode_cpu_per_s_as_captured: the same with the frames as a libavdevice/lavfi decoder
  hands them over (pict_type I, which FFmpeg's libvpx wrapper turns into a forced keyframe on
  every frame), with the keyframe share it produced;
- full_backup_cpu_per_s: the whole StationBackup path (start, encode, remux, AES-GCM records,
  signed checkpoints with fsync, seal) end to end, frames offered at their capture times in
  real time (checkpoints and record flushes follow the wall clock) unless --fast, in batches
  with a barrier on the writer thread between them so nothing is dropped; the package is
  checked with verify_package;
- copy_us_per_frame: private_copy of one 640x480 frame, best of several timeit repeats.

CPU is process CPU (time.process_time for the encoder passes, resource.getrusage RUSAGE_SELF
user+sys for the full path), which counts every thread of this process and not the other jobs
on a shared machine. Encoder passes alternate backup/live and keep the minimum of --repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import DEFAULT_BITRATE, Vp8Encoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recordings import RecordingId, keygen, load_archive_public_key, verify_package
from station_client.backup import (
    BackupEncoder,
    StationBackup,
    load_or_create_signing_key,
    private_copy,
)

SOURCE_FPS = 30
VIDEO_TICKS = 90_000 // SOURCE_FPS  # 90 kHz pts step, as CameraTrack stamps frames
AUDIO_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms
BACKUP_FPS = 15.0
BACKUP_BITRATE = 600_000
BATCH_S = 0.1  # the full path offers this much media, then waits for the writer thread
PICT_I = av.video.frame.PictureType.I
PICT_NONE = av.video.frame.PictureType.NONE


# --- media ---------------------------------------------------------------------------------


def make_video(seconds: float, size: str) -> list[Any]:
    """`seconds` of decoded lavfi testsrc2 frames at 30 fps, pts 90 kHz from 0."""
    n = round(seconds * SOURCE_FPS)
    frames: list[Any] = []
    with av.open(f"testsrc2=size={size}:rate={SOURCE_FPS}", format="lavfi") as src:
        for i, frame in enumerate(src.decode(video=0)):
            if i >= n:
                break
            frame.pts = i * VIDEO_TICKS
            frame.time_base = Fraction(1, 90_000)
            frames.append(frame)
    return frames


def make_audio(seconds: float) -> list[Any]:
    """`seconds` of a 48 kHz mono s16 microphone stream in 20 ms frames, as MicrophoneTrack
    builds them (pts counts samples)."""
    n = round(seconds * AUDIO_RATE / AUDIO_SAMPLES)
    resampler = av.AudioResampler(
        format="s16", layout="mono", rate=AUDIO_RATE, frame_size=AUDIO_SAMPLES
    )
    pcm = bytearray()
    need = n * AUDIO_SAMPLES * 2
    graph = f"sine=frequency=440:beep_factor=4:sample_rate={AUDIO_RATE}"
    with av.open(graph, format="lavfi") as src:
        for frame in src.decode(audio=0):
            for chunk in resampler.resample(frame):
                pcm += bytes(chunk.planes[0])[: chunk.samples * 2]
            if len(pcm) >= need:
                break
    frames: list[Any] = []
    for i in range(n):
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        frame.planes[0].update(bytes(pcm[i * AUDIO_SAMPLES * 2 : (i + 1) * AUDIO_SAMPLES * 2]))
        frame.sample_rate = AUDIO_RATE
        frame.pts = i * AUDIO_SAMPLES
        frame.time_base = Fraction(1, AUDIO_RATE)
        frames.append(frame)
    return frames


def restamp(video: list[Any], audio: list[Any], pict_type: Any) -> None:
    """Put back the capture timestamps (PyAV's encode, called by aiortc's Vp8Encoder, rebases
    a frame's pts and time base in place) and set the picture type for the next pass."""
    for i, frame in enumerate(video):
        frame.pts = i * VIDEO_TICKS
        frame.time_base = Fraction(1, 90_000)
        frame.pict_type = pict_type
    for i, frame in enumerate(audio):
        frame.pts = i * AUDIO_SAMPLES
        frame.time_base = Fraction(1, AUDIO_RATE)


# --- encoder passes ------------------------------------------------------------------------


class Pass:
    """CPU seconds and output of one encoder pass over the media."""

    def __init__(self) -> None:
        self.video_cpu = 0.0
        self.audio_cpu = 0.0
        self.video_bytes = 0
        self.audio_bytes = 0
        self.video_frames = 0
        self.keyframes = 0

    @property
    def cpu(self) -> float:
        return self.video_cpu + self.audio_cpu


def backup_pass(video: list[Any], audio: list[Any]) -> Pass:
    out = Pass()
    encoder = BackupEncoder(BACKUP_FPS, BACKUP_BITRATE)
    start = time.process_time()
    for frame in video:
        for data, _ts, key in encoder.video(frame, frame.pts):
            out.video_bytes += len(data)
            out.video_frames += 1
            out.keyframes += key
    out.video_cpu = time.process_time() - start
    start = time.process_time()
    for frame in audio:
        for data, _ts in encoder.audio(frame, frame.pts):
            out.audio_bytes += len(data)
    out.audio_cpu = time.process_time() - start
    return out


def live_pass(video: list[Any], audio: list[Any], bitrate: int) -> Pass:
    out = Pass()
    vp8 = Vp8Encoder()
    vp8.target_bitrate = bitrate
    start = time.process_time()
    for frame in video:
        payloads, _ts = vp8.encode(frame)
        if payloads:
            out.video_frames += 1
            out.video_bytes += sum(len(p) for p in payloads)
            # VP8 payload descriptor (aiortc: X, I, M bits -> 4 bytes), then the frame tag
            # whose lowest bit is 0 for a keyframe.
            out.keyframes += not payloads[0][4] & 1
    out.video_cpu = time.process_time() - start
    opus = OpusEncoder()
    start = time.process_time()
    for frame in audio:
        packets, _ts = opus.encode(frame)
        out.audio_bytes += sum(len(p) for p in packets)
    out.audio_cpu = time.process_time() - start
    return out


def best(passes: list[Pass]) -> Pass:
    return min(passes, key=lambda p: p.cpu)


# --- the whole StationBackup path ----------------------------------------------------------


def rusage_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _record(
    backup: StationBackup, archive: Any, video: list[Any], audio: list[Any], fast: bool
) -> None:
    events: list[tuple[float, Callable[[Any], None], Any]] = [
        (f.pts / 90_000, backup.offer_video, f) for f in video
    ]
    events += [(f.pts / AUDIO_RATE, backup.offer_audio, f) for f in audio]
    events.sort(key=lambda e: e[0])
    await backup.start(RecordingId(str(uuid.uuid4())), [archive], video=True, audio=True)
    await backup.enter()
    writer = backup._writer
    assert writer is not None
    t0 = time.monotonic()
    i = 0
    while i < len(events):
        batch_end = events[i][0] + BATCH_S
        if not fast:
            await asyncio.sleep(max(0.0, t0 + events[i][0] - time.monotonic()))
        while i < len(events) and events[i][0] < batch_end:
            _, offer, frame = events[i]
            offer(frame)
            i += 1
        await writer.run(lambda: None)  # barrier: the writer has taken everything offered
    if not fast:
        await asyncio.sleep(max(0.0, t0 + events[-1][0] + BATCH_S - time.monotonic()))
    await backup.seal()


def full_backup(
    video: list[Any], audio: list[Any], tmp: Path, fast: bool
) -> tuple[float, float, StationBackup]:
    """Returns (process CPU seconds, wall seconds, the sealed backup)."""
    files = keygen(tmp / "keys")
    archive = load_archive_public_key(files.archive_public)
    signing = load_or_create_signing_key(tmp / "station" / "backup-signing.key")
    backup = StationBackup(tmp / "backups", signing, fps=BACKUP_FPS, bitrate=BACKUP_BITRATE)
    wall = time.monotonic()
    cpu = rusage_cpu()
    asyncio.run(_record(backup, archive, video, audio, fast))
    return rusage_cpu() - cpu, time.monotonic() - wall, backup


def copy_us(frame: Any) -> float:
    number = 200
    times = timeit.repeat(lambda: private_copy(frame), number=number, repeat=5)
    return min(times) / number * 1e6


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds of media (default 20)")
    ap.add_argument("--repeats", type=int, default=3, help="encoder passes each, best kept")
    ap.add_argument("--size", default="640x480", help="camera size WxH")
    ap.add_argument(
        "--live-bitrate",
        type=int,
        default=DEFAULT_BITRATE,
        help="the live VP8 target (aiortc starts at 500 kbps; REMB moves it 250k-1.5M)",
    )
    ap.add_argument(
        "--fast",
        action="store_true",
        help="full path: offer as fast as the writer takes it (fewer wall-clock checkpoints)",
    )
    args = ap.parse_args(argv)
    seconds: float = args.seconds

    video = make_video(seconds, args.size)
    audio = make_audio(seconds)
    media_s = len(video) / SOURCE_FPS

    backups: list[Pass] = []
    lives: list[Pass] = []
    captured: list[Pass] = []
    for _ in range(args.repeats):
        restamp(video, audio, PICT_NONE)
        backups.append(backup_pass(video, audio))
        restamp(video, audio, PICT_NONE)
        lives.append(live_pass(video, audio, args.live_bitrate))
        restamp(video, audio, PICT_I)  # as the capture decoder hands frames over
        captured.append(live_pass(video, audio, args.live_bitrate))
    restamp(video, audio, PICT_I)
    b, live, cap = best(backups), best(lives), best(captured)

    tmp = Path(tempfile.mkdtemp(prefix="bench-station-backup-"))
    try:
        full_cpu, full_wall, backup = full_backup(video, audio, tmp, args.fast)
        path = backup.path
        assert path is not None
        package_bytes = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        report = verify_package(path, trust_embedded_key=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    copy = copy_us(video[0])

    result: dict[str, Any] = {
        "media_seconds": round(media_s, 3),
        "resolution": args.size,
        "source_fps": SOURCE_FPS,
        "backup_fps": BACKUP_FPS,
        "backup_bitrate": BACKUP_BITRATE,
        "live_fps": SOURCE_FPS,
        "live_bitrate": args.live_bitrate,
        "audio": f"{AUDIO_RATE} Hz mono s16, {AUDIO_SAMPLES * 1000 // AUDIO_RATE} ms frames",
        "repeats": args.repeats,
        "paced": "fast" if args.fast else "realtime",
        "backup_encode_cpu_per_s": round(b.cpu / media_s, 5),
        "live_encode_cpu_per_s": round(live.cpu / media_s, 5),
        "backup_to_live_ratio": round(b.cpu / live.cpu, 3),
        "backup_video_cpu_per_s": round(b.video_cpu / media_s, 5),
        "backup_audio_cpu_per_s": round(b.audio_cpu / media_s, 5),
        "live_video_cpu_per_s": round(live.video_cpu / media_s, 5),
        "live_audio_cpu_per_s": round(live.audio_cpu / media_s, 5),
        "backup_video_kbps": round(b.video_bytes * 8 / media_s / 1000, 1),
        "live_video_kbps": round(live.video_bytes * 8 / media_s / 1000, 1),
        "backup_video_frames": b.video_frames,
        "live_video_frames": live.video_frames,
        "live_keyframes": live.keyframes,
        "live_encode_cpu_per_s_as_captured": round(cap.cpu / media_s, 5),
        "live_as_captured_keyframe_share": round(cap.keyframes / max(1, cap.video_frames), 3),
        "live_as_captured_video_kbps": round(cap.video_bytes * 8 / media_s / 1000, 1),
        "backup_to_live_as_captured_ratio": round(b.cpu / cap.cpu, 3),
        "full_backup_cpu_per_s": round(full_cpu / media_s, 5),
        "full_to_live_ratio": round(full_cpu / media_s / (live.cpu / media_s), 3),
        "full_over_encode_cpu_per_s": round((full_cpu - b.cpu) / media_s, 5),
        "full_wall_s": round(full_wall, 2),
        "frames_written": backup.frames_written,
        "dropped_frames": backup.dropped_frames,
        "backup_state": str(backup.state),
        "package_bytes_per_s": round(package_bytes / media_s),
        "verify_exit_code": report.exit_code,
        "copy_us_per_frame": round(copy, 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:40s} {v}")
    return 0 if report.exit_code == 0 and backup.dropped_frames == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
