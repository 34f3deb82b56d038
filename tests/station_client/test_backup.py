"""The station's local backup recording, through its real parts: a lavfi camera, a microphone
paced by the private PulseAudio, the tees, the backup's own VP8/Opus encoders and the sealed
evidence writer. What is recorded verifies offline, plays (ffprobe), follows the court's pauses
and room changes, and a station stopped mid-hearing leaves a package the next start seals."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import pytest

from recordings import (
    ArchivePublicKey,
    KeyFileError,
    PauseReason,
    RecordingId,
    SigningKey,
    export_package,
    keygen,
    load_archive_private_key,
    load_archive_public_key,
    verify_package,
)
from recordings.keys import KeyFiles
from signaling import messages as m
from signaling.enums import HearingRole, HearingState, ParticipantState, RecordingPause
from station_client.backup import (
    BackupController,
    BackupState,
    StationBackup,
    load_or_create_signing_key,
    private_copy,
    recover_unfinished,
    verify_key_pem,
)
from station_client.devices import AvCamera, PyAudioInput
from station_client.media import CameraTrack, MicrophoneTrack
from station_client.tee import MediaTee
from tests.server.recording.conftest import ffprobe
from tests.station_client.conftest import PulseServer, stop_process, tone


async def _until(what: str, condition: Callable[[], bool], timeout: float = 20) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)  # polling in-process counters
    except TimeoutError:
        pytest.fail(f"not within {timeout} s: {what}")


async def _keys(tmp_path: Path) -> tuple[KeyFiles, ArchivePublicKey, SigningKey]:
    """The court's archive keys (files, public key) and the station's signing key."""
    keys = await asyncio.to_thread(keygen, tmp_path / "court-keys")
    archive = await asyncio.to_thread(load_archive_public_key, keys.archive_public)
    signing = await asyncio.to_thread(load_or_create_signing_key, tmp_path / "station.ed25519")
    return keys, archive, signing


def state(backup: StationBackup) -> BackupState:
    return backup.state  # (read through a call: each check sees the state anew)


async def test_backup_records_camera_and_microphone_and_follows_the_court(
    pulse_audio: PulseServer, tmp_path: Path
) -> None:
    keys, archive, signing = await _keys(tmp_path)
    source = tmp_path / "tone.raw"
    await asyncio.to_thread(source.write_bytes, tone(30.0))
    feeder = pulse_audio.feeder(source)
    camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    mic = MicrophoneTrack(PyAudioInput("mic"), queue_frames=25)
    tees = {"video": MediaTee(camera), "audio": MediaTee(mic)}
    backup = StationBackup(tmp_path / "backups", signing, fps=15)
    tees["video"].add_sink(backup.offer_video)
    tees["audio"].add_sink(backup.offer_audio)
    for tee in tees.values():
        tee.start()
    try:
        # Frames flow before anything is on the record: none is taken.
        await _until("capture running", lambda: tees["video"].frames >= 5)
        assert backup.recording_id is None
        assert backup.frames_written == 0
        rid = RecordingId("3f1c7e7a-1111-4b7e-9d7e-0123456789ab")
        await backup.start(rid, [archive], video=True, audio=True)
        assert state(backup) is BackupState.ABSENT
        await backup.enter()
        assert state(backup) is BackupState.RECORDING

        def written() -> int:
            return backup.frames_written

        await _until("2 s recorded", lambda: written() >= 2 * (15 + 50))
        await backup.pause(PauseReason.MEDIATION_OFF_RECORD, "off the record")
        paused_at = written()
        seen = tees["video"].frames
        await _until("1 s passes", lambda: tees["video"].frames >= seen + 15)
        assert written() == paused_at  # what was queued before the pause was written first
        await backup.resume()
        await _until("1 s more", lambda: written() >= paused_at + 50)
        await backup.leave("caucus")
        assert state(backup) is BackupState.ABSENT
        left_at = written()
        seen = tees["video"].frames
        await _until("the caucus lasts", lambda: tees["video"].frames >= seen + 10)
        assert written() == left_at
        await backup.enter()
        await _until("back on the record", lambda: written() >= left_at + 50)
        root_hash = await backup.seal()
    finally:
        for tee in tees.values():
            await tee.aclose()
        await camera.aclose()
        await mic.aclose()
        stop_process(feeder)
        await backup.aclose()

    assert state(backup) is BackupState.SEALED
    assert backup.dropped_frames == 0
    assert backup.path is not None
    report = await asyncio.to_thread(verify_package, backup.path, trust_embedded_key=True)
    assert report.exit_code == 0, report.problems
    assert report.root_hash == root_hash
    assert report.signing_key_id == signing.key_id
    kinds = [e["type"] for e in report.timeline]
    assert kinds.count("participant_joined") == 2  # the caucus made two parts
    assert kinds.count("participant_left") == 2
    (paused,) = [e for e in report.timeline if e["type"] == "paused"]
    assert paused["reason"] == "MEDIATION_OFF_RECORD"
    assert "resumed" in kinds

    archive_key = await asyncio.to_thread(load_archive_private_key, keys.archive_private)
    result = await asyncio.to_thread(
        export_package, backup.path, archive_key, tmp_path / "out", trust_embedded_key=True
    )
    assert len(result.streams) == 2  # the caucus made two parts
    for stream in result.streams:
        probe = await asyncio.to_thread(ffprobe, stream.file)
        assert {s["codec_name"] for s in probe["streams"]} == {"vp8", "opus"}
        assert float(probe["format"]["duration"]) >= 0.8


async def test_a_backup_cut_short_is_sealed_with_an_incident_at_the_next_start(
    tmp_path: Path,
) -> None:
    _, archive, signing = await _keys(tmp_path)
    camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    tee = MediaTee(camera)
    backup = StationBackup(tmp_path / "backups", signing)
    tee.add_sink(backup.offer_video)
    tee.start()
    try:
        await backup.start(
            RecordingId("9b2a4c1e-2222-4c3d-8e9f-0123456789ab"), [archive], video=True, audio=False
        )
        await backup.enter()
        await _until("recording", lambda: backup.frames_written >= 30)
    finally:
        await tee.aclose()
        await camera.aclose()
        await backup.aclose()  # the station stops without sealing (as when it is killed)
    assert backup.path is not None
    assert (
        await asyncio.to_thread(verify_package, backup.path, trust_embedded_key=True)
    ).exit_code == 1

    recovered = await asyncio.to_thread(recover_unfinished, tmp_path / "backups", signing)
    assert recovered == [str(backup.recording_id)]
    report = await asyncio.to_thread(verify_package, backup.path, trust_embedded_key=True)
    assert report.exit_code == 2, report.problems
    (incident,) = [e for e in report.timeline if e["type"] == "incident"]
    assert incident["cause"] == "crash"


async def test_the_signing_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "backup.ed25519"
    first = await asyncio.to_thread(load_or_create_signing_key, path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = await asyncio.to_thread(load_or_create_signing_key, path)
    assert again.key_id == first.key_id
    await asyncio.to_thread(path.write_text, "not a key")
    with pytest.raises(KeyFileError):
        await asyncio.to_thread(load_or_create_signing_key, path)


def test_the_encoder_takes_a_private_copy_of_the_shared_frame() -> None:
    # The live encoder rewrites a shared frame's pts and time base on its own thread: the
    # backup copies the pixels (whatever the row padding) and keeps its own timing.
    source = av.VideoFrame(322, 242, "yuv420p")
    for i, plane in enumerate(source.planes):
        view = memoryview(plane)
        view[:] = bytes((i * 7 + n) % 251 for n in range(len(view)))
    source.pts = 12345
    copy = private_copy(source)
    assert copy is not source
    assert copy.pts is None
    for src, dst in zip(source.planes, copy.planes, strict=True):
        width = min(src.line_size, dst.line_size)
        rows = src.buffer_size // src.line_size
        for y in (0, rows // 2, rows - 1):
            a = bytes(src)[y * src.line_size : y * src.line_size + width]
            b = bytes(dst)[y * dst.line_size : y * dst.line_size + width]
            assert a == b


async def test_a_full_disk_stops_the_backup_tells_the_station_and_leaves_it_verifiable(
    tiny_filesystem: Path, tmp_path: Path
) -> None:
    _, archive, signing = await _keys(tmp_path)
    camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    tee = MediaTee(camera)
    alerts: list[str] = []
    backup = StationBackup(tiny_filesystem, signing, bitrate=400_000, on_failure=alerts.append)
    tee.add_sink(backup.offer_video)
    live = tee.track()  # the live connection's view of the camera
    tee.start()
    try:
        rid = RecordingId("5d6e7f80-3333-4a1b-8c2d-0123456789ab")
        await backup.start(rid, [archive], video=True, audio=False)
        await backup.enter()
        await _until("the disk is full", lambda: bool(alerts), timeout=40)
        assert state(backup) is BackupState.FAILED
        assert "disk" in alerts[0].lower() or "space" in alerts[0].lower(), alerts
        # The station goes on: the live view of the camera is not affected.
        for _ in range(5):
            await asyncio.wait_for(live.recv(), 5)
        assert await backup.seal() is None  # nothing more is written
    finally:
        live.stop()
        await tee.aclose()
        await camera.aclose()
        await backup.aclose()
    # Space is freed; whatever the writer could not seal is sealed at the next start.
    await asyncio.to_thread(
        subprocess.run, ["mount", "-o", "remount,size=8m", str(tiny_filesystem)], check=True
    )
    await asyncio.to_thread(recover_unfinished, tiny_filesystem, signing)
    report = await asyncio.to_thread(verify_package, tiny_filesystem / rid, trust_embedded_key=True)
    assert report.exit_code == 2, report.problems  # intact, the loss declared
    assert [g["cause"] for g in report.gaps] in (["disk_full"], ["crash"]), report.gaps


def _welcome(**fields: Any) -> m.Welcome:
    base: dict[str, Any] = {
        "transaction": "t1",
        "hearing_id": str(uuid.uuid4()),
        "participant_id": str(uuid.uuid4()),
        "display_name": "青山村站点",
        "role": HearingRole.STATION,
        "state": ParticipantState.WAITING,
        "hearing_state": HearingState.IN_SESSION,
        "recording": True,
        "heartbeat_interval_s": 10,
    }
    return m.Welcome(**{**base, **fields})


def _state(state: HearingState, pause: RecordingPause | None = None) -> m.HearingStateChanged:
    return m.HearingStateChanged(
        state=state, reason="庭审", changed_at=datetime.now(UTC), recording_pause=pause
    )


async def test_the_backup_follows_what_the_court_tells_the_station(tmp_path: Path) -> None:
    """Only what is on the record is recorded: the waiting room, a recess, an interruption
    and a caucus are not; the court's reasons are on the backup's signed timeline."""
    _, archive, signing = await _keys(tmp_path)
    camera = CameraTrack(AvCamera.test_pattern(size="160x120", fps=15))
    tee = MediaTee(camera)
    backup = StationBackup(tmp_path / "backups", signing)
    tee.add_sink(backup.offer_video)
    registered: list[tuple[str, str]] = []

    async def register(recording_id: RecordingId, pem: str) -> list[ArchivePublicKey]:
        registered.append((recording_id, pem))
        return [archive]

    controller = BackupController(backup, register, hearing_id="h", video=True, audio=False)
    tee.start()

    async def told(message: m.Message | None = None) -> BackupState:
        if message is not None:
            controller.on_event(message)
        await asyncio.wait_for(controller.settled.wait(), 20)
        return backup.state

    async def records_for(frames: int) -> None:
        written = backup.frames_written
        await _until("recording", lambda: backup.frames_written >= written + frames)

    try:
        welcome = _welcome()
        controller.joined(welcome)
        assert await told() is BackupState.IDLE  # in the waiting room: not on the record
        assert registered == []
        assert await told(m.Moved(room_id="main", state=ParticipantState.IN_HEARING)) is (
            BackupState.RECORDING
        )
        assert registered == [(backup.recording_id, verify_key_pem(signing))]
        await records_for(10)
        assert await told(_state(HearingState.RECESS)) is BackupState.PAUSED
        assert await told(_state(HearingState.IN_SESSION)) is BackupState.RECORDING
        await records_for(5)
        interrupted = _state(HearingState.IN_SESSION, RecordingPause.MEDIATION_OFF_RECORD)
        assert await told(interrupted) is BackupState.PAUSED
        assert await told(_state(HearingState.IN_SESSION)) is BackupState.RECORDING
        await records_for(5)
        caucus = m.Moved(room_id="caucus-1", state=ParticipantState.IN_PRIVATE_ROOM)
        assert await told(caucus) is BackupState.ABSENT
        assert await told(_state(HearingState.SUSPENDED)) is BackupState.ABSENT
        back = m.Moved(room_id="main", state=ParticipantState.IN_HEARING)
        assert await told(back) is BackupState.RECORDING  # suspended: technical trouble
        await records_for(5)
        assert await told(_state(HearingState.CLOSED)) is BackupState.SEALED
        assert await controller.finish() == backup.root_hash
    finally:
        await tee.aclose()
        await camera.aclose()
        await backup.aclose()

    assert backup.path is not None
    report = await asyncio.to_thread(verify_package, backup.path, trust_embedded_key=True)
    assert report.exit_code == 0, report.problems
    steps = [
        (e["type"], e.get("reason"))
        for e in report.timeline
        if e["type"] in ("paused", "resumed", "participant_joined", "participant_left")
    ]
    assert steps == [
        ("participant_joined", None),
        ("paused", "RECESS"),
        ("resumed", None),
        ("paused", "MEDIATION_OFF_RECORD"),
        ("resumed", None),
        ("participant_left", "caucus"),
        ("participant_joined", None),
        ("participant_left", "hearing_closed"),
    ]
    joined = [e for e in report.timeline if e["type"] == "participant_joined"]
    assert {e["participant"] for e in joined} == {welcome.participant_id}
