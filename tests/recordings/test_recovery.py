"""Crash safety: kill -9 a recording subprocess at random points, recover, verify."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from recordings import container as cv
from recordings.cli import main
from recordings.errors import KeyFileError
from recordings.export import export_package
from recordings.ids import ParticipantId
from recordings.keys import SigningKey
from recordings.recovery import find_unfinished, recover, recover_recording
from recordings.selftest import MediaClock
from recordings.synthetic import EncodedFrame
from recordings.verify import verify_package
from recordings.writer import RecordingWriter
from tests.recordings.conftest import Keys, feed, ffprobe_json, write_frames_file

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("crash_writer.py")
RPO_SECONDS = 1.5  # measured worst case ~1.25 s: one 1 s Matroska cluster + 0.25 s coalescing


def _key_files(tmp: Path, keys: Keys) -> tuple[Path, Path]:
    sk = tmp / "signing.key"
    sk.write_bytes(keys.signer.private_pem())
    apk = tmp / "archive.pub"
    apk.write_bytes(
        keys.archive.public_key.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return sk, apk


def _wait_line(proc: subprocess.Popen[str], prefix: str, deadline: float) -> str:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"subprocess did not print {prefix!r} in time (rc={proc.poll()})")


def test_kill_9_at_random_points_then_recover(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame]
) -> None:
    frames_file = tmp_path / "frames.bin"
    write_frames_file(frames_file, media)
    sk, apk = _key_files(tmp_path, keys)
    rng = random.Random(20261123)
    root = tmp_path / "recordings"
    root.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = []
    for i in range(10):
        pkg = root / f"run{i}"
        proc = subprocess.Popen(
            [sys.executable, str(HELPER), str(pkg), str(frames_file), str(sk), str(apk), "4"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            _wait_line(proc, "ready", time.monotonic() + 30)
            time.sleep(rng.uniform(0.1, 2.5))  # the random kill point (not a wait for a result)
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        fed = [float(line[2:]) for line in out.splitlines() if line.startswith("t ")]
        runs.append((pkg, max(fed) if fed else 0.0))
    assert sorted(find_unfinished(root)) == sorted(p for p, _ in runs)
    results = recover(root, keys.signer)
    assert len(results) == len(runs)
    assert find_unfinished(root) == []
    for pkg, fed_until in runs:
        report = verify_package(pkg, trust_embedded_key=True)
        assert report.exit_code == 2, report.text()
        assert any(g.get("cause") == "crash" for g in report.gaps)
        exported = export_package(
            pkg, keys.archive, pkg.parent / f"{pkg.name}-out", trust_embedded_key=True
        )
        kept = 0.0
        if exported.files:
            fmt = ffprobe_json(exported.files[0])["format"]
            assert isinstance(fmt, dict)
            kept = float(fmt.get("duration", 0.0))
        assert fed_until - kept <= RPO_SECONDS, (pkg, fed_until, kept)
        print(f"crash run {pkg.name}: fed {fed_until:.2f} s, kept {kept:.2f} s")


def test_torn_tail_is_cut_and_declared(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame], media_clock: MediaClock
) -> None:
    w = RecordingWriter(tmp_path / "rec", keys.provider, clock=media_clock)
    w.add_participant(ParticipantId("p1"), video=True, audio=True, audio_channels=1)
    feed(w, media_clock, media[:150])
    w.checkpoint()
    w.abort()  # like a crash: no END, no manifest
    seg = tmp_path / "rec" / "segments" / "000000.cevr"
    n = len(cv.scan_segment(seg.read_bytes(), "s", bytes(32)).records)
    with seg.open("ab") as f:  # a record header announcing 1000 bytes, and only 4 of them
        f.write(cv.RecordHeader(cv.RecordType.MEDIA, 0, 1, n, 0, 1000).pack() + b"\x00" * 4)
    report = verify_package(tmp_path / "rec", trust_embedded_key=True)
    assert report.exit_code == 1
    assert "torn" in report.problems[0].message
    with pytest.raises(KeyFileError):
        recover_recording(tmp_path / "rec", SigningKey.generate())
    res = recover_recording(tmp_path / "rec", keys.signer)
    assert res.torn_tail_bytes == 24
    report = verify_package(tmp_path / "rec", trust_embedded_key=True)
    assert report.exit_code == 2, report.text()
    incident = next(e for e in report.timeline if e["type"] == "incident")
    assert incident["torn_tail_bytes"] == 24
    assert incident["segment"] == 0
    assert recover(tmp_path, keys.signer) == []  # idempotent: nothing left to do


def test_recover_cli(tmp_path: Path, keys: Keys, media_clock: MediaClock) -> None:
    w = RecordingWriter(tmp_path / "rec", keys.provider, clock=media_clock)
    w.abort()
    sk, _ = _key_files(tmp_path, keys)
    assert main(["recover", str(tmp_path), "--signing-key", str(sk)]) == 0
    assert main(["verify", "--trust-embedded-key", str(tmp_path / "rec")]) == 2
