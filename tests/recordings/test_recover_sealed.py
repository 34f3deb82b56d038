"""Issue 11, point 6: a complete package that lost only its manifest is re-sealed as complete
(not as a crash), and files the format does not define are reported by verify."""

from __future__ import annotations

import os
from pathlib import Path

from recordings.ids import ParticipantId
from recordings.recovery import recover_recording
from recordings.selftest import MediaClock
from recordings.synthetic import EncodedFrame
from recordings.verify import verify_package
from recordings.writer import RecordingWriter
from tests.recordings.conftest import Keys, feed


def test_a_complete_package_that_lost_its_manifest_is_resealed_as_complete(
    sealed: Path, keys: Keys
) -> None:
    segments = sorted(p.name for p in (sealed / "segments").iterdir())
    (sealed / "manifest.json").unlink()
    result = recover_recording(sealed, keys.signer)
    assert result.status == "complete"
    assert sorted(p.name for p in (sealed / "segments").iterdir()) == segments  # no new segment
    report = verify_package(sealed, [keys.signer.verify_key])
    assert report.exit_code == 0, report.text()
    assert report.status == "complete"
    assert not [e for e in report.timeline if e["type"] == "incident"]


def test_unknown_files_are_reported_without_changing_the_verdict(sealed: Path, keys: Keys) -> None:
    (sealed / "segments" / "000001.cevr.orig").write_bytes(b"copy")
    (sealed / "notes.txt").write_text("hello")
    (sealed / "segments" / "000009.cevr.torn").write_bytes(b"x")
    report = verify_package(sealed, [keys.signer.verify_key])
    assert report.exit_code == 0, report.text()
    assert report.unknown_files == [
        "notes.txt",
        "segments/000001.cevr.orig",
        "segments/000009.cevr.torn",
    ]
    assert "unknown file notes.txt" in report.text()
    assert report.as_json()["unknown_files"] == report.unknown_files


def test_the_torn_file_recovery_declares_is_not_unknown(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame]
) -> None:
    clock = MediaClock()
    w = RecordingWriter(tmp_path / "rec", keys.provider, clock=clock)
    w.add_participant(ParticipantId("p1"), video=True, audio=True, audio_channels=1)
    feed(w, clock, media[:60])
    w.abort()
    # A crash while the next segment's header was being written: fewer bytes than a header.
    fd = os.open(tmp_path / "rec" / "segments" / "000001.cevr", os.O_WRONLY | os.O_CREAT)
    os.write(fd, b"CEVR\x00")
    os.close(fd)
    recover_recording(tmp_path / "rec", keys.signer)
    report = verify_package(tmp_path / "rec", [keys.signer.verify_key])
    assert report.exit_code == 2, report.text()
    incident = next(e for e in report.timeline if e["type"] == "incident")
    assert incident["torn_file"] == "segments/000001.cevr.torn"
    assert report.unknown_files == []
