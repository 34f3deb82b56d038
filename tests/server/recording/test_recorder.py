"""HearingRecorder on a real Router with real aiortc peers: the package verifies, exports to
VP8 + Opus per participant (remuxed from the forwarded packets, never re-encoded), pauses
leave the media out with their reason in the signed timeline, caucus participants are not
recorded, and a full disk is reported at once while the package stays verifiable."""

from __future__ import annotations

import errno
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from recordings import DiskFullError, InvalidReasonError, PauseReason, RecordingStateError
from recordings.fsio import AppendFile, OsAppendFile
from server.recording import ERROR_DISK_FULL, HearingRecorder
from server.sfu import Router
from signaling.reasons import CloseReason
from tests.server.sfu.conftest import Client, wait_for

from .conftest import KeyFiles, codecs, export_and_probe, packet_times, verify

MakeClient = Callable[..., Awaitable[Client]]


def recorded_frames(recorder: HearingRecorder, client: Client, kind: str) -> int:
    info = recorder.dump()["participants"].get(client.id)
    if info is None:
        return 0
    return sum(t["offered"] for t in info["tracks"] if t["kind"] == kind)


async def two_publishers(make_client: MakeClient) -> tuple[Client, Client]:
    a = await make_client("a", luma=60)
    b = await make_client("b", luma=180)
    await wait_for(
        lambda: all(c.frames_from(o, "video") >= 5 for c, o in ((a, b), (b, a))),
        timeout=20,
        what="media flowing both ways",
    )
    return a, b


async def test_two_participants_recorded_sealed_verified_exported(
    router: Router, make_client: MakeClient, key_files: KeyFiles, tmp_path: Path
) -> None:
    a, b = await two_publishers(make_client)
    recorder = await HearingRecorder.start(router, tmp_path / "rec", key_files.keys)
    started = time.monotonic()
    await wait_for(
        lambda: all(recorded_frames(recorder, c, "video") >= 120 for c in (a, b)),
        timeout=20,
        what="4 s of video recorded from both",
    )
    elapsed = time.monotonic() - started
    sealed = await recorder.stop()
    assert sealed.status == "complete"
    assert sealed.path == tmp_path / "rec" / sealed.recording_id

    report = await verify(sealed.path)
    assert report.exit_code == 0, report.text()
    assert report.root_hash == sealed.root_hash
    joined = {e["participant"] for e in report.timeline if e["type"] == "participant_joined"}
    assert joined == {a.id, b.id}

    probes = await export_and_probe(sealed.path, key_files, tmp_path / "out")
    assert set(probes) == {a.id, b.id}
    for client in (a, b):
        probe = probes[client.id]
        assert codecs(probe) == {"vp8", "opus"}
        video = next(s for s in probe["streams"] if s["codec_name"] == "vp8")
        assert (video["width"], video["height"]) == (320, 240)
        duration = float(probe["format"]["duration"])
        assert abs(duration - elapsed) <= 0.15 * elapsed, (duration, elapsed)
        # every frame the tap offered is in the file: remuxed, not re-encoded
        assert len(packet_times(probe, "vp8")) == recorded_frames(recorder, client, "video")
    assert recorder.writer.dropped_frames == 0


async def test_pause_leaves_media_out_and_states_its_reason(
    router: Router, make_client: MakeClient, key_files: KeyFiles, tmp_path: Path
) -> None:
    a, _b = await two_publishers(make_client)
    recorder = await HearingRecorder.start(router, tmp_path / "rec", key_files.keys)
    await wait_for(lambda: recorded_frames(recorder, a, "video") >= 30, what="1 s recorded")
    with pytest.raises(InvalidReasonError):
        await recorder.pause("LUNCH")
    await recorder.pause(PauseReason.RECESS, "court in recess")
    paused_at = time.monotonic()
    with pytest.raises(RecordingStateError):
        await recorder.pause(PauseReason.RECESS)
    frames = a.frames_from(_b, "video")
    await wait_for(lambda: a.frames_from(_b, "video") >= frames + 45, what="1.5 s of recess")
    offered = recorded_frames(recorder, a, "video")
    await recorder.resume()
    pause_seconds = time.monotonic() - paused_at
    await wait_for(
        lambda: recorded_frames(recorder, a, "video") >= offered + 30, what="1 s after resume"
    )
    sealed = await recorder.stop()

    report = await verify(sealed.path)
    assert report.exit_code == 0, report.text()  # a lawful pause is not a gap
    events = [e for e in report.timeline if e["type"] in ("paused", "resumed")]
    assert [e["type"] for e in events] == ["paused", "resumed"]
    assert events[0]["reason"] == "RECESS"
    assert events[0]["note"] == "court in recess"

    probes = await export_and_probe(sealed.path, key_files, tmp_path / "out")
    for codec in ("vp8", "opus"):
        times = packet_times(probes[a.id], codec)
        gap = max(later - earlier for earlier, later in itertools.pairwise(times))
        # nothing was recorded during the recess: the file has a hole as long as the pause
        assert gap >= 0.8 * pause_seconds, (codec, gap, pause_seconds)


async def test_caucus_participant_is_not_recorded(
    router: Router, make_client: MakeClient, key_files: KeyFiles, tmp_path: Path
) -> None:
    a, b = await two_publishers(make_client)
    recorder = await HearingRecorder.start(
        router, tmp_path / "rec", key_files.keys, not_recorded=[b.id]
    )
    await wait_for(lambda: recorded_frames(recorder, a, "video") >= 30, what="a recorded")
    assert recorded_frames(recorder, b, "video") == 0
    assert not recorder.is_recorded(b.id)
    recorder.set_recorded(b.id, True)  # back from the caucus
    await wait_for(lambda: recorded_frames(recorder, b, "video") >= 15, what="b recorded")
    recorder.set_recorded(b.id, False)  # into a caucus again: off the record at once
    frames = recorded_frames(recorder, b, "video")
    await wait_for(lambda: recorded_frames(recorder, a, "video") >= 90, what="a recorded on")
    assert recorded_frames(recorder, b, "video") == frames
    router.remove_peer(a.id, CloseReason.NETWORK_LOST)  # a leaves: their stream is closed
    await wait_for(lambda: not recorder.dump()["participants"].get(a.id), what="a's stream closed")
    sealed = await recorder.stop()
    report = await verify(sealed.path)
    assert report.exit_code == 0, report.text()
    moves = [
        (e["type"], e["participant"], e.get("reason"))
        for e in report.timeline
        if e["type"] in ("participant_joined", "participant_left")
    ]
    assert moves == [
        ("participant_joined", a.id, None),
        ("participant_joined", b.id, None),
        ("participant_left", b.id, "off_record"),
        ("participant_left", a.id, "NETWORK_LOST"),
    ]


class FullDisk:
    """The writer's file seam: ENOSPC (after a torn partial write) on the n-th write; later
    writes succeed, as after the torn record is truncated away."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def __call__(self, path: Path) -> AppendFile:
        return _FullDiskFile(self, path)


class _FullDiskFile:
    def __init__(self, disk: FullDisk, path: Path) -> None:
        self._disk = disk
        self._inner = OsAppendFile(path)

    def write(self, data: bytes) -> None:
        self._disk.budget -= 1
        if self._disk.budget == 0:
            self._inner.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._inner.write(data)

    def fsync(self) -> None:
        self._inner.fsync()

    def truncate(self, size: int) -> None:
        self._inner.truncate(size)

    def close(self) -> None:
        self._inner.close()


async def test_disk_full_is_reported_at_once_and_the_package_verifies(
    router: Router, make_client: MakeClient, key_files: KeyFiles, tmp_path: Path
) -> None:
    a, _b = await two_publishers(make_client)
    errors: list[tuple[str, str]] = []
    recorder = await HearingRecorder.start(
        router, tmp_path / "rec", key_files.keys, opener=FullDisk(20)
    )
    recorder.on("error", lambda code, message: errors.append((code, message)))
    seconds = await wait_for(lambda: bool(errors), timeout=20, what="the DISK_FULL error")
    assert errors[0][0] == ERROR_DISK_FULL
    assert seconds < 10
    frames: Any = recorded_frames(recorder, a, "video")
    await wait_for(lambda: a.frames_from(_b, "video") >= 10)  # media goes on, unrecorded
    assert recorded_frames(recorder, a, "video") == frames
    with pytest.raises(DiskFullError):
        await recorder.stop()
    report = await verify(recorder.path)
    assert report.exit_code in (0, 2), report.text()
    assert any(g.get("cause") == "disk_full" for g in report.gaps)
