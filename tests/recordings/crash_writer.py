"""Crash-test subprocess: records looping synthetic media until killed (kill -9 by the test).

argv: package_dir frames_file signing_key.pem archive_pub.pem speed
Prints "ready <start_unix>" then, before feeding each frame, "t <media seconds>" (unbuffered),
so the parent knows an upper bound of what was handed to the writer when it killed us.
"""

from __future__ import annotations

import struct
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from recordings.ids import ParticipantId
from recordings.keys import StaticKeyProvider, load_archive_public_key, load_signing_key
from recordings.selftest import MediaClock
from recordings.writer import RecordingWriter


def main() -> None:
    pkg, frames_file, sk, apk, speed = sys.argv[1:6]
    data = Path(frames_file).read_bytes()
    frames = []
    pos = 0
    hdr = struct.Struct(">BBIdI")
    while pos < len(data):
        kind, key, ts, t, n = hdr.unpack_from(data, pos)
        pos += hdr.size
        frames.append((kind, bool(key), ts, t, data[pos : pos + n]))
        pos += n
    period = max(f[3] for f in frames) + 0.04
    clock = MediaClock(start=datetime.now(UTC))
    keys = StaticKeyProvider(load_signing_key(Path(sk)), (load_archive_public_key(Path(apk)),))
    writer = RecordingWriter(Path(pkg), keys, clock=clock)
    pid = ParticipantId("p1")
    writer.add_participant(pid, video=True, audio=True, audio_channels=1)
    out = sys.stdout
    out.write(f"ready {clock.start.timestamp()}\n")
    out.flush()
    t0 = time.monotonic()
    loop = 0
    while True:
        for kind, key, ts, t, payload in frames:
            mt = loop * period + t
            wait = t0 + mt / float(speed) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            out.write(f"t {mt:.3f}\n")
            out.flush()
            clock.offset = mt
            rts = (ts + round(loop * period * (90_000 if kind == 1 else 48_000))) & 0xFFFFFFFF
            if kind == 1:
                writer.write_video(pid, payload, rts, key)
            else:
                writer.write_audio(pid, payload, rts)
        loop += 1


if __name__ == "__main__":
    main()
