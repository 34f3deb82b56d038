"""Writer behaviour: timeline, pauses, gaps, ENOSPC, async facade, keys."""

from __future__ import annotations

import asyncio
import errno
import os
from datetime import timedelta
from pathlib import Path

import pytest

from recordings.async_writer import AsyncRecordingWriter
from recordings.clock import iso
from recordings.errors import DiskFullError, InvalidReasonError, RecordingStateError
from recordings.fsio import AppendFile, OsAppendFile
from recordings.ids import ParticipantId
from recordings.keys import ArchivePrivateKey, DataKey, SigningKey
from recordings.recovery import recover_recording
from recordings.selftest import MediaClock
from recordings.synthetic import EncodedFrame
from recordings.timeline import PauseReason
from recordings.verify import verify_package
from recordings.writer import RecordingWriter, WriterConfig
from tests.recordings.conftest import Keys, feed

P1 = ParticipantId("p1")


def _writer(path: Path, keys: Keys, clock: MediaClock, **kw: object) -> RecordingWriter:
    w = RecordingWriter(path, keys.provider, clock=clock, **kw)  # type: ignore[arg-type]
    w.add_participant(P1, video=True, audio=True, audio_channels=1)
    return w


@pytest.mark.parametrize("reason", [None, "", "LUNCH", "recess "])
def test_pause_without_valid_reason_is_rejected(
    tmp_path: Path, keys: Keys, media_clock: MediaClock, reason: str | None
) -> None:
    w = _writer(tmp_path / "rec", keys, media_clock)
    with pytest.raises(InvalidReasonError):
        w.pause(reason)  # type: ignore[arg-type]
    assert w.paused is None
    with pytest.raises(RecordingStateError):
        w.resume()


def test_pause_resume_and_network_gap_are_in_the_signed_timeline(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame], media_clock: MediaClock
) -> None:
    w = _writer(tmp_path / "rec", keys, media_clock, config=WriterConfig(gap_threshold=3.0))
    first = [f for f in media if f.time < 2.0]
    feed(w, media_clock, first)
    media_clock.offset = 2.5
    w.pause(PauseReason.RECESS, note="10 minutes")
    feed(w, media_clock, first, time_offset=3.0)  # dropped while paused
    assert w.dropped_while_paused > 0
    media_clock.offset = 6.0
    w.resume()
    feed(w, media_clock, first, time_offset=6.0)
    # the participant's media stops for 5 s, then resumes: a declared network gap
    feed(w, media_clock, first, time_offset=13.0)
    w.remove_participant(P1)
    media_clock.offset = 16.0
    manifest = w.seal()
    types = [e["type"] for e in manifest["timeline"]]
    assert types == [
        "recording_started",
        "participant_joined",
        "media_started",
        "paused",
        "resumed",
        "network_gap",
        "network_gap",
        "participant_left",
        "recording_stopped",
    ]
    # media time 0 of the stream is the wall time of its earliest frame
    started = manifest["timeline"][2]
    assert started["stream_id"] == manifest["streams"][0]["stream_id"]
    assert started["origin"] == iso(media_clock.start + timedelta(seconds=first[0].time))
    paused = manifest["timeline"][3]
    assert paused["reason"] == "RECESS"
    assert paused["note"] == "10 minutes"
    gaps = manifest["gaps"]
    assert {g["track"] for g in gaps} == {"video", "audio"}
    assert all(4.5 < g["seconds"] < 6.0 for g in gaps)
    report = verify_package(tmp_path / "rec", trust_embedded_key=True)
    assert report.exit_code == 2, report.text()
    assert "declared gap: network_gap p1/video" in report.text()


def test_checkpoints_follow_the_injected_clock(
    tmp_path: Path, keys: Keys, media_clock: MediaClock
) -> None:
    w = _writer(tmp_path / "rec", keys, media_clock, config=WriterConfig(checkpoint_interval=2.0))
    for step in range(1, 21):  # 10 s with no media at all
        media_clock.offset = step * 0.5
        w.tick()
    manifest = w.seal()
    # one at start, one every 2 s of clock, one at seal
    assert manifest["counts"]["checkpoints"] == 1 + 5 + 1


class FailingFile:
    """A file-writer seam that raises ENOSPC on the n-th write."""

    budget = 0

    def __init__(self, path: Path) -> None:
        self._inner = OsAppendFile(path)

    def write(self, data: bytes) -> None:
        FailingFile.budget -= 1
        if FailingFile.budget == 0:
            self._inner.write(data[: len(data) // 2])  # a torn partial write, then ENOSPC
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._inner.write(data)

    def fsync(self) -> None:
        self._inner.fsync()

    def truncate(self, size: int) -> None:
        self._inner.truncate(size)

    def close(self) -> None:
        self._inner.close()


def test_disk_full_raises_and_package_stays_verifiable(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame], media_clock: MediaClock
) -> None:
    FailingFile.budget = 12

    def opener(path: Path) -> AppendFile:
        return FailingFile(path)

    w = _writer(
        tmp_path / "rec", keys, media_clock, opener=opener, config=WriterConfig(record_interval=0.1)
    )
    with pytest.raises(DiskFullError) as info:
        feed(w, media_clock, media)
    assert info.value.sealed
    with pytest.raises(DiskFullError):  # the writer stays failed
        w.write_audio(P1, b"x", 0)
    report = verify_package(tmp_path / "rec", trust_embedded_key=True)
    assert report.exit_code == 2, report.text()
    assert report.gaps[0]["cause"] == "disk_full"
    # Issue 11 point 6: a failed package that later lost its manifest is re-sealed as failed,
    # not as a crash.
    (tmp_path / "rec" / "manifest.json").unlink()
    assert recover_recording(tmp_path / "rec", keys.signer).status == "failed"
    report = verify_package(tmp_path / "rec", [keys.signer.verify_key])
    assert (report.exit_code, report.status) == (2, "failed"), report.text()
    assert [g["cause"] for g in report.gaps] == ["disk_full"]


async def test_async_writer_runs_off_the_loop(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame], media_clock: MediaClock
) -> None:
    aw = await AsyncRecordingWriter.create(
        lambda: RecordingWriter(tmp_path / "rec", keys.provider, clock=media_clock)
    )
    await aw.add_participant(P1, video=True, audio=True, audio_channels=1)
    for f in media[:100]:
        media_clock.offset = f.time
        if f.kind == "video":
            await aw.write_video(P1, f.data, f.rtp_timestamp, f.keyframe)
        else:
            assert aw.offer_audio(P1, f.data, f.rtp_timestamp)
    await aw.pause("MEDIATION_OFF_RECORD")
    await aw.resume()
    manifest = await aw.seal()
    assert manifest["status"] == "complete"
    assert (
        await asyncio.to_thread(
            lambda: verify_package(tmp_path / "rec", trust_embedded_key=True).exit_code
        )
        == 0
    )


def test_key_objects_redact_themselves() -> None:
    sk = SigningKey.generate()
    ak = ArchivePrivateKey.generate()
    dek = DataKey.generate()
    for obj in (sk, ak, dek):
        assert "redacted" in repr(obj)
    assert dek.material().hex() not in repr(dek)
    dek.wipe()
    with pytest.raises(ValueError, match="wiped"):
        dek.material()


def test_writer_refuses_a_non_empty_directory(tmp_path: Path, keys: Keys) -> None:
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "something").write_text("x")
    with pytest.raises(FileExistsError):
        RecordingWriter(tmp_path / "rec", keys.provider)


def test_rejoin_starts_a_new_part(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame], media_clock: MediaClock
) -> None:
    from recordings.export import export_package

    w = _writer(tmp_path / "rec", keys, media_clock)
    feed(w, media_clock, media[:90])
    w.remove_participant(P1, reason="network")
    media_clock.offset = 2.0
    w.add_participant(P1, video=True, audio=True, audio_channels=1)
    feed(w, media_clock, media[:90], time_offset=2.5)
    media_clock.offset = 5.0
    w.seal()
    assert verify_package(tmp_path / "rec", trust_embedded_key=True).exit_code == 0
    res = export_package(tmp_path / "rec", keys.archive, tmp_path / "out", trust_embedded_key=True)
    assert sorted(p.name for p in res.files) == ["p1-part1.webm", "p1.webm"]
