"""The evidence recording of a real hearing: it starts with the session, pauses for a recess,
is sealed at close, everyone is shown its root hash, a participant confirms it, and the
package verifies offline."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc.mediastreams import AudioStreamTrack

from recordings import load_verify_key, verify_package
from server.ids import HearingId
from server.sfu import aiortc_hooks
from server.web.appkeys import MEDIA
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import RecordingPause
from station_client.devices import AvCamera
from station_client.media import CameraTrack
from station_client.session import StationSession
from tests.e2e.conftest import Court


@pytest.fixture(autouse=True)
def _loopback_candidates() -> None:
    aiortc_hooks.install_host_addresses(["127.0.0.1"])


async def _recorded_frames(court: Court) -> int:
    dump: dict[str, Any] = await (
        court.server.app[MEDIA].pool.router(HearingId(court.world.own.hearing_id)).dump()
    )
    recording = dump.get("recording") or {}
    return sum(
        track["frames"]
        for participant in recording.get("participants", {}).values()
        for track in participant["tracks"]
        if track["kind"] == "video"
    )


async def test_a_hearing_is_recorded_sealed_confirmed_and_verifiable(
    court: Court, clerk: SignalingClient
) -> None:
    w = court.world.own
    camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    await camera.start()
    station_cookies = await court.station()
    station = StationSession(court.client(station_cookies), video=camera, audio=AudioStreamTrack())
    try:
        await station.signaling.connect()
        welcome = await station.join(w.hearing_id)
        await court.set_state("in_session", "开庭")
        await clerk.request(m.Admit(participant_id=welcome.participant_id))
        async with asyncio.timeout(30):
            while await _recorded_frames(court) < 30:
                await asyncio.sleep(0.2)  # polling the worker's recording counters
        # Evidence examined out of public view: the clerk interrupts the recording, then resumes.
        await clerk.request(
            m.SetRecording(recording=False, reason=RecordingPause.NON_PUBLIC_EVIDENCE, note="质证")
        )
        await clerk.request(m.SetRecording(recording=True))
        await court.set_state("recess", "休庭十分钟")
        await court.set_state("in_session", "继续开庭")
        await court.set_state("closed", "调解结束")
        await asyncio.wait_for(station.recording_sealed.wait(), 30)
        sealed = station.recording_hash
        assert sealed is not None
    finally:
        await station.close(leave=False)
        camera.stop()

    status, timeline = await court.call(
        await court.staff("judge"), "GET", f"/api/hearings/{w.hearing_id}/events"
    )
    assert status == 200
    kinds = [e["kind"] for e in timeline["events"]]
    entry = next(e for e in timeline["events"] if e["kind"] == "recording.sealed")
    assert entry["data"]["root_hash"] == sealed.root_hash

    # The station (a participant) confirms the hash it was shown; a wrong hash is disputed.
    path = f"/api/hearings/{w.hearing_id}/recordings/{sealed.recording_id}/confirm"
    status, body = await court.call(
        station_cookies, "POST", path, {"root_hash": sealed.root_hash, "confirmed": True}
    )
    assert (status, body["matches"]) == (200, True)
    status, body = await court.call(
        station_cookies, "POST", path, {"root_hash": "0" * 64, "confirmed": True}
    )
    assert (status, body["matches"]) == (200, False)
    status, timeline = await court.call(
        await court.staff("judge"), "GET", f"/api/hearings/{w.hearing_id}/events"
    )
    kinds = [e["kind"] for e in timeline["events"]]
    assert "recording.confirmed" in kinds
    assert "recording.disputed" in kinds

    package = court.data_dir / "recordings" / sealed.recording_id
    public = await asyncio.to_thread(load_verify_key, court.data_dir / "keys" / "signing.pub")
    report = await asyncio.to_thread(verify_package, package, [public])
    assert report.exit_code == 0, report.text()
    assert report.root_hash == sealed.root_hash
    pauses = [e for e in report.timeline if e["type"] == "paused"]
    assert [p.get("reason") for p in pauses] == ["NON_PUBLIC_EVIDENCE", "RECESS"], report.timeline
    assert [e["type"] for e in report.timeline].count("resumed") == 2

    # The judge plays it back: the worker wrapped the data key for the server's playback key
    # too, and the station's stream carries its signed media origin.
    body = await court.playback(sealed.recording_id)
    assert (body["status"], body["media_unavailable"]) == ("ready", None), body
    assert body["verification"]["root_hash"] == sealed.root_hash
    streams = [s for s in body["streams"] if s["participant_id"] == welcome.participant_id]
    assert streams, body["streams"]
    assert "video" in streams[0]["tracks"]
    assert streams[0]["origin"] is not None
