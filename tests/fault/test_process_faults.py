"""Process faults (issue 16.3): kill -9 of the main server process and of an SFU worker at
seeded random moments of one long recorded hearing, at least 20 points in all.

The station takes part through `StationApp`, the real station client, which logs in again and
rejoins by itself after any recoverable end (NETWORK_LOST when the server vanished,
WORKER_DIED when its SFU worker did); the clerk comes back after each fault and admits whoever
waits, as a clerk would. The server runs as an OS process on a fixed port (the station's
configuration names one address), in a process group of its own (tests/e2e/test_server_crash.py's
`ServerProcess`). A "server" point kills the main process only (its workers must notice and
exit: none may survive); a "worker" point kills the hearing's SFU worker only.

After every point: the station is back in the hearing and its media reaches a new recording
package. At the end the hearing is closed, the server restarted once more (start-up recovery
seals whatever a kill left unfinished), and then: every package verifies with exit 0 or 2
(`shared-court verify`), every hearing's event log chain verifies (nothing half-written), its
sequence is gapless, every station departure follows a connection, and the participants' states
read over REST are valid.

The points are drawn with `random.Random(seed)`; the seed is printed and in the assertion
messages; repeat with `SHARED_COURT_FAULT_SEED=<seed>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from aiortc.mediastreams import AudioStreamTrack

from recordings import verify_package
from server.config import load_config
from server.storage.db import create_engine, create_sessionmaker
from server.storage.eventlog import EventLogRepository, verify_chain
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import HearingState
from station_client.app import Backoff, StationApp, StationConfig
from station_client.devices import AvCamera
from station_client.media import CameraTrack
from tests.e2e import test_server_crash as crash
from tests.server.conftest import CourtWorld

SEED_ENV = "SHARED_COURT_FAULT_SEED"
SERVER_POINTS = 5
WORKER_POINTS = 15
DELAY_S = (0.0, 1.5)  # the random moment after the recording has media again
BACK_TIMEOUT = 60.0  # station back and recorded after a fault (generous: the machine is shared)


class QuickBackoff(Backoff):
    """The station's back-off, kept short so that 20 faults fit in a test run."""

    def next_delay(self) -> float:
        return 0.3


class FixedPortServer(crash.ServerProcess):
    """`ServerProcess` on the same port at every start: the station names one address."""

    def __init__(self, config_file: Path, log_dir: Path) -> None:
        super().__init__(config_file, log_dir)
        self.port = crash._free_port()

    def _next_port(self) -> int:
        return self.port

    async def workers(self) -> list[crash.Proc]:
        assert self.process is not None
        processes = await asyncio.to_thread(crash._processes)
        return [
            p
            for p in crash._descendants(processes, self.process.pid)
            if "server.worker.process" in p.cmdline and p.alive
        ]

    async def kill_main(self) -> None:
        """kill -9 of the main process only; its workers must exit on their own."""
        assert self.process is not None
        pgid = self.process.pid
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        await self._wait_group_dead(pgid, timeout=20)

    async def kill_worker(self) -> int:
        workers = await self.workers()
        assert workers, "no SFU worker is running"
        os.kill(workers[0].pid, signal.SIGKILL)
        return workers[0].pid


async def _recorded_again(root: Path, before: set[Path], ctx: str) -> Path:
    """A package not in `before` with the station's media in it (the hearing resumed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BACK_TIMEOUT
    while True:
        for package in await asyncio.to_thread(crash._packages, root) - before:
            _, size = await asyncio.to_thread(crash._progress, package)
            if size >= crash.MEDIA_BYTES:
                return package
        if loop.time() > deadline:
            pytest.fail(f"the hearing was not recorded again within {BACK_TIMEOUT} s ({ctx})")
        await asyncio.sleep(0.1)  # polling the recordings directory


class Clerk:
    """The clerk comes back after each fault and admits whoever waits."""

    def __init__(self, server: FixedPortServer, world: CourtWorld) -> None:
        self.server, self.world = server, world

    async def admit_all(self, ctx: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BACK_TIMEOUT
        while True:
            try:
                cookies = await self.server.staff(self.world, "clerk")
                async with SignalingClient(self.server.ws_url, cookies=cookies) as clerk:
                    welcome = await clerk.join(self.world.hearing_id)
                    if welcome.hearing_state == "scheduled":
                        await clerk.request(
                            m.SetHearingState(state=HearingState.OPENED, reason="候庭")
                        )
                    await clerk.request(m.Admit(all=True))
                    return
            except Exception as exc:  # the worker or server may be mid-restart
                if loop.time() > deadline:
                    pytest.fail(f"the clerk could not come back: {exc!r} ({ctx})")
                await asyncio.sleep(0.3)  # retry after a short pause, as a person would


async def _wait_joins(app: StationApp, joins: int, ctx: str) -> None:
    async with asyncio.timeout(BACK_TIMEOUT):
        while app.joins < joins:
            await asyncio.sleep(0.05)  # polling the station app's join count
    assert app.joins >= joins, ctx


async def _database_checks(config_file: Path, world: CourtWorld, ctx: str) -> dict[str, Any]:
    """The event log chains verify and are gapless; station departures follow connections."""
    config = await asyncio.to_thread(load_config, config_file, {})
    engine = create_engine(config.database_url)
    try:
        async with create_sessionmaker(engine)() as db:
            events = await EventLogRepository(db).list(world.hearing_id)
    finally:
        await engine.dispose()
    assert verify_chain(events) is None, (verify_chain(events), ctx)
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), ctx
    # Per participant: a departure always follows an arrival (joined, connected, reconnected);
    # two arrivals in a row are a server crash, whose departures nobody could write.
    present: dict[str, bool] = {}
    arrivals = ("participant.joined", "participant.connected", "participant.reconnected")
    for e in events:
        pid = e.data.get("participant_id")
        if pid is None:
            continue
        if e.kind in arrivals:
            present[pid] = True
        elif e.kind == "participant.departed":
            assert present.get(pid), (f"a departure without an arrival at seq {e.seq}", ctx)
            present[pid] = False
    kinds: dict[str, int] = {}
    for e in events:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    return kinds


@pytest.mark.timeout(300)
async def test_kill_9_of_server_and_worker_at_random_points(tmp_path: Path) -> None:
    text = os.environ.get(SEED_ENV)
    seed = int(text) if text else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    points = ["server"] * SERVER_POINTS + ["worker"] * WORKER_POINTS
    rng.shuffle(points)
    delays = [rng.uniform(*DELAY_S) for _ in points]
    print(f"\n{SEED_ENV}={seed}: {points}")
    config_file, root, public, world = await crash._prepare(tmp_path)
    key_file = tmp_path / "station.key"
    await asyncio.to_thread(key_file.write_text, world.station_key)
    server = FixedPortServer(config_file, tmp_path)
    clerk = Clerk(server, world)
    camera = CameraTrack(AvCamera.test_pattern(size="160x120", fps=15))
    started = time.monotonic()
    app: StationApp | None = None
    running: asyncio.Future[Any] | None = None
    try:
        await server.start()
        await clerk.admit_all("start")
        judge = await server.staff(world, "judge")
        status, body = await server.call(
            judge,
            "POST",
            f"/api/hearings/{world.hearing_id}/state",
            {"state": "in_session", "reason": "开庭"},
        )
        assert status == 200, body
        await camera.start()
        app = StationApp(
            StationConfig(server.base, world.station_id, key_file, hearing_id=world.hearing_id),
            video=camera,
            audio=AudioStreamTrack(),
            backoff=QuickBackoff(),
        )
        running = asyncio.ensure_future(app.run())
        await _wait_joins(app, 1, "first join")
        await clerk.admit_all("first join")
        before: set[Path] = set()
        for number, (kind, delay) in enumerate(zip(points, delays, strict=True), 1):
            ctx = f"{SEED_ENV}={seed}, point {number}: {kind} +{delay:.2f} s"
            package = await _recorded_again(root, before, ctx)
            before = await asyncio.to_thread(crash._packages, root)
            await asyncio.sleep(delay)  # the random kill point itself
            joins = app.joins
            if kind == "server":
                await server.kill_main()
                await server.start()
            else:
                await server.kill_worker()
            assert not running.done(), (running, ctx)
            await _wait_joins(app, joins + 1, ctx)
            await clerk.admit_all(ctx)
            print(
                f"  point {number} ({time.monotonic() - started:.1f} s): killed the {kind} "
                f"{delay:.2f} s into recording {package.name[:8]}; station back"
            )
        ctx = f"{SEED_ENV}={seed}, after the last point"
        await _recorded_again(root, before, ctx)
        status, body = await server.call(
            judge,
            "POST",
            f"/api/hearings/{world.hearing_id}/state",
            {"state": "closed", "reason": "闭庭"},
        )
        assert status == 200, body
        reason = await asyncio.wait_for(running, BACK_TIMEOUT)
        print(f"station app ended: {reason}")
        # One more start-up: recovery seals what a worker kill left unfinished.
        await server.kill_main()
        await server.start()
        packages = sorted(await asyncio.to_thread(crash._packages, root))
        codes, statuses = [], []
        for package in packages:
            report = await asyncio.to_thread(verify_package, package, [public])
            codes.append(report.exit_code)
            statuses.append(report.status)
            assert report.exit_code in (0, 2), f"{ctx}\n{report.text()}"
        # One package per point (the one the kill interrupted), and the last one.
        assert len(packages) == len(points) + 1, (len(packages), ctx)
        kinds = await _database_checks(config_file, world, ctx)
        # Each package a kill left unfinished was sealed by start-up recovery, and the court's
        # log says so (a worker whose main process died may seal its recording on the way out);
        # the worker deaths were told to the court; the last package was sealed at the close.
        recovered = statuses.count("recovered")
        assert recovered >= WORKER_POINTS, (statuses, ctx)
        assert kinds.get("recording.recovered") == recovered, (kinds, statuses, ctx)
        assert kinds.get("recording.problem") == WORKER_POINTS, (kinds, ctx)
        assert kinds.get("recording.sealed") == 1, (kinds, ctx)
        status, participants = await server.call(
            judge, "GET", f"/api/hearings/{world.hearing_id}/participants"
        )
        assert status == 200, participants
        print(f"verify exit codes: {codes}; package statuses: {statuses}; event kinds: {kinds}")
    finally:
        if app is not None:
            app.leave()
        if running is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(running, 10)
        camera.stop()
        await server.stop()
    print(f"{len(points)} kill points in {time.monotonic() - started:.1f} s")
