"""Recording a hearing hosted in an SFU worker process, driven over the WorkerPool: sealed on
stop; a SIGKILLed worker leaves a package `recover_unfinished` seals with a declared gap; a
full disk reaches the main process as a "recordingerror" DISK_FULL event."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from recordings import PauseReason
from recordings.timestamps import TsaTrust, load_certificates
from recordings.verify import verify_package
from server.ids import HearingId, RecordingId, new_id
from server.recording import recover_unfinished
from server.worker import WorkerError, WorkerPool
from tests.recordings.local_tsa import LocalTsa, local_tsa
from tests.server.sfu.conftest import Client, wait_for
from tests.server.sfu.test_worker import join, video_frames

from .conftest import KeyFiles, codecs, export_and_probe, verify


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    p = WorkerPool(1)
    await p.start()
    yield p
    await p.close()


def package_bytes(path: Path) -> int:
    segments = path / "segments"
    if not segments.exists():
        return 0
    return sum(f.stat().st_size for f in segments.iterdir())


async def wait_for_bytes(path: Path, at_least: int, timeout: float = 20) -> None:
    """Poll the package's size (off the loop) until it holds `at_least` bytes of segments."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await asyncio.to_thread(package_bytes, path) < at_least:
        if loop.time() > deadline:
            pytest.fail(f"package {path} did not reach {at_least} bytes in {timeout} s")
        await asyncio.sleep(0.1)


async def hearing_with_two(pool: WorkerPool) -> tuple[HearingId, list[Client]]:
    hearing = HearingId(new_id())
    await pool.create_router(hearing)
    clients = [await join(pool, hearing, "a", 60), await join(pool, hearing, "b", 180)]
    await wait_for(lambda: all(video_frames(c) >= 5 for c in clients), timeout=20)
    return hearing, clients


async def test_recording_through_the_worker_pool(
    pool: WorkerPool, key_files: KeyFiles, tmp_path: Path
) -> None:
    hearing, clients = await hearing_with_two(pool)
    try:
        rid = RecordingId(new_id())
        root = tmp_path / "recordings"
        started = await pool.router(hearing).start_recording(
            root,
            signing_key=key_files.signing_key,
            archive_keys=[key_files.archive_public],
            recording_id=rid,
        )
        assert started == rid
        with pytest.raises(WorkerError) as info:
            await pool.router(hearing).start_recording(
                root,
                signing_key=key_files.signing_key,
                archive_keys=[key_files.archive_public],
                recording_id=RecordingId(new_id()),
            )
        assert info.value.code == "ValueError"
        with pytest.raises(WorkerError) as info:
            # a hostile or mistaken main process: the worker still refuses it
            await pool.router(hearing).pause_recording("LUNCH")  # type: ignore[arg-type]
        assert info.value.code == "InvalidReasonError"
        await wait_for_bytes(root / rid, 20_000)
        await pool.router(hearing).pause_recording(PauseReason.MEDIATION_OFF_RECORD)
        await pool.router(hearing).resume_recording()
        await pool.router(hearing).set_recorded(clients[1].id, False)
        recording = (await pool.router(hearing).dump())["recording"]
        assert recording["recording_id"] == rid
        assert not recording["participants"][clients[1].id]["recorded"]
        frames = video_frames(clients[0])
        await wait_for(lambda: video_frames(clients[0]) >= frames + 30)
        sealed = await pool.router(hearing).stop_recording()
        assert (sealed.recording_id, sealed.path, sealed.status) == (rid, root / rid, "complete")
        with pytest.raises(WorkerError) as info:
            await pool.router(hearing).stop_recording()
        assert info.value.code == "RecordingStateError"
    finally:
        for client in clients:
            await client.close()

    report = await verify(sealed.path)
    assert report.exit_code == 0, report.text()
    assert report.root_hash == sealed.root_hash
    types = [(e["type"], e.get("reason")) for e in report.timeline]
    assert ("paused", "MEDIATION_OFF_RECORD") in types
    assert ("participant_left", "off_record") in types
    probes = await export_and_probe(sealed.path, key_files, tmp_path / "out")
    assert {codecs(p) == {"vp8", "opus"} for p in probes.values()} == {True}
    assert {clients[0].id, clients[1].id} <= set(probes)


# Where in a live recorded hearing the worker is killed (bytes of package written so far):
# early (first records), around the first checkpoints, and well into the recording.
KILL_POINTS = [3_000, 20_000, 60_000, 120_000]


@pytest.mark.parametrize("kill_after_bytes", KILL_POINTS)
async def test_killed_worker_leaves_a_recording_recovery_seals(
    pool: WorkerPool, key_files: KeyFiles, tmp_path: Path, kill_after_bytes: int
) -> None:
    hearing, clients = await hearing_with_two(pool)
    errors: list[tuple[HearingId, str, str]] = []
    pool.on("recordingerror", lambda h, code, message: errors.append((h, code, message)))
    root = tmp_path / "recordings"
    try:
        rid = await pool.router(hearing).start_recording(
            root,
            signing_key=key_files.signing_key,
            archive_keys=[key_files.archive_public],
            recording_id=RecordingId(new_id()),
        )
        await wait_for_bytes(root / rid, kill_after_bytes)
        stats = await pool.stats(pool.worker_of(hearing).index)
        os.kill(stats["pid"], signal.SIGKILL)
        await wait_for(lambda: bool(errors), what="recordingerror WORKER_DIED")
        assert errors[0][:2] == (hearing, "WORKER_DIED")
    finally:
        for client in clients:
            await client.close()

    assert (await verify(root / rid)).exit_code == 1  # unfinished: not sealed yet
    results = await recover_unfinished(root, key_files.signing_key)
    assert [r.recording_id for r in results] == [rid]
    report = await verify(root / rid)
    assert report.exit_code == 2, report.text()
    assert report.status == "recovered"
    assert report.gaps[0]["cause"] == "crash"
    assert await recover_unfinished(root, key_files.signing_key) == []


async def test_disk_full_in_the_worker_reaches_the_main_process(
    pool: WorkerPool, key_files: KeyFiles, tiny_filesystem: Path
) -> None:
    hearing, clients = await hearing_with_two(pool)
    errors: list[tuple[HearingId, str, str]] = []
    pool.on("recordingerror", lambda h, code, message: errors.append((h, code, message)))
    try:
        rid = await pool.router(hearing).start_recording(
            tiny_filesystem,
            signing_key=key_files.signing_key,
            archive_keys=[key_files.archive_public],
            recording_id=RecordingId(new_id()),
        )
        await wait_for(lambda: bool(errors), timeout=40, what="recordingerror DISK_FULL")
        assert errors[0][:2] == (hearing, "DISK_FULL")
        with pytest.raises(WorkerError) as info:
            await pool.router(hearing).stop_recording()
        assert info.value.code == "DiskFullError"
    finally:
        for client in clients:
            await client.close()
    # The operator frees space; a package the writer could not seal is sealed by recovery.
    await asyncio.to_thread(
        subprocess.run,
        ["mount", "-o", "remount,size=8m", str(tiny_filesystem)],
        check=True,
    )
    await recover_unfinished(tiny_filesystem, key_files.signing_key)
    report = await verify(tiny_filesystem / rid)
    assert report.exit_code in (0, 2), report.text()
    assert report.gaps, report.text()


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[LocalTsa]:
    # A sync fixture: making certificates and starting the server block, never on the loop.
    with local_tsa(tmp_path / "tsa") as t:
        yield t


async def test_worker_recording_is_anchored_by_the_configured_tsa(
    pool: WorkerPool, key_files: KeyFiles, tmp_path: Path, tsa: LocalTsa
) -> None:
    """The TSA settings travel from the main process to the worker's writer: the sealed
    package gets RFC 3161 tokens from a real (openssl) TSA, which verify offline."""
    hearing, clients = await hearing_with_two(pool)
    try:
        rid = RecordingId(new_id())
        root = tmp_path / "recordings"
        await pool.router(hearing).start_recording(
            root,
            signing_key=key_files.signing_key,
            archive_keys=[key_files.archive_public],
            recording_id=rid,
            tsa={"url": tsa.url, "every": 1, "timeout": 5.0},
        )
        await wait_for_bytes(root / rid, 20_000)
        sealed = await pool.router(hearing).stop_recording()
    finally:
        for client in clients:
            await client.close()
    # The manifest's token arrives after the seal, from the worker's anchoring thread.
    token = sealed.path / "timestamps" / "manifest.tsr"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not await asyncio.to_thread(token.exists):
        if loop.time() > deadline:
            pytest.fail("no manifest time-stamp token within 30 s")
        await asyncio.sleep(0.05)
    trust = await asyncio.to_thread(lambda: TsaTrust(load_certificates([tsa.files.ca_cert])))
    report = await asyncio.to_thread(
        verify_package, sealed.path, tsa=trust, trust_embedded_key=True
    )
    assert report.exit_code == 0, report.text()
    assert report.anchors is not None
    assert {a.part for a in report.anchors.anchors} == {"checkpoint", "manifest"}


async def test_a_worker_shutting_down_waits_for_the_manifest_token(
    pool: WorkerPool, key_files: KeyFiles, tmp_path: Path, tsa: LocalTsa
) -> None:
    """The server stops while recording: the worker seals the package and, before it exits,
    gives a slow TSA the moment it needs, so the manifest's token is not lost with it."""
    hearing, clients = await hearing_with_two(pool)
    rid = RecordingId(new_id())
    root = tmp_path / "recordings"
    try:
        await pool.router(hearing).start_recording(
            root,
            signing_key=key_files.signing_key,
            archive_keys=[key_files.archive_public],
            recording_id=rid,
            tsa={"url": tsa.url, "every": 1000, "timeout": 5.0},
        )
        await wait_for_bytes(root / rid, 20_000)
        tsa.delay_s = 1.0
        await pool.close()  # the worker process has exited when this returns
    finally:
        for client in clients:
            await client.close()
    token = root / rid / "timestamps" / "manifest.tsr"
    assert await asyncio.to_thread(token.exists), "the manifest token was lost at shutdown"
