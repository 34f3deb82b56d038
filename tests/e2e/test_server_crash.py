"""kill -9 of the whole server during a real recorded hearing, at random points, round after
round: after every restart each recording package verifies with exit 0 (intact) or 2 (intact
with declared gaps), and the one the kill left unfinished was sealed by start-up recovery with a
signed `incident` of cause `crash`.

The server runs as a real OS process (`python -m server.cli serve`) in a session and process
group of its own, so `killpg(SIGKILL)` takes the main process and its SFU worker processes at
once; the test checks that the workers were in that group and that none survive. This process
drives the hearing as people do: a station (`StationSession` with a test-pattern camera) logs in
with its key, the clerk opens the waiting room and admits it over signaling, the judge starts the
session over REST.

A hearing the crash left `in_session` is recorded again, in a new package, as soon as the
restarted server loads it (the first person rejoins): later rounds change no state. Start-up
recovery also puts `recording.recovered` (with the gap) on the hearing's event log.

The kill points are drawn with `random.Random(seed)`; the seed is printed (pytest shows it with a
failure) and is in the assertion messages. Repeat a run with `SHARED_COURT_CRASH_SEED=<seed>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc.mediastreams import AudioStreamTrack

from recordings import Report, VerifyKey, keygen, load_verify_key, verify_package
from server.clock import SystemClock
from server.config import ENV_PREFIX, load_config
from server.sfu import aiortc_hooks
from server.storage.db import create_engine, create_sessionmaker, upgrade_async
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import HearingState
from station_client.devices import AvCamera
from station_client.media import CameraTrack
from station_client.session import StationSession
from tests.e2e.conftest import login_cookies
from tests.server.conftest import PASSWORD, CourtWorld, seed_court

ROOT = Path(__file__).resolve().parents[2]
SEED_ENV = "SHARED_COURT_CRASH_SEED"
# Segment bytes that mean "the station's media is being recorded" (a segment header alone is
# far smaller; the first keyframe of the test pattern is larger).
MEDIA_BYTES = 4_000
READY_TIMEOUT = 60.0  # start-up: migrations, recovery, binding (generous: the machine is shared)
RECORDING_TIMEOUT = 45.0
RECOVERY_LOG = "recovered an unfinished recording"


@dataclass(frozen=True)
class KillWindow:
    """Where in the recording to kill: `delay` seconds (drawn at random) after `anchor`:
    "started" (the first segment file exists), "media" (the station's media reached the
    package) or "rotation" (a second segment began)."""

    name: str
    anchor: str
    delay: tuple[float, float]


# Segments rotate every 10 s and checkpoints are signed every 2 s (recordings.WriterConfig).
KILL_WINDOWS = (
    KillWindow("first records", "started", (0.0, 0.8)),
    KillWindow("around the first checkpoints", "media", (1.5, 4.5)),
    KillWindow("mid-segment", "media", (4.5, 9.0)),
    KillWindow("just after a segment rotation", "rotation", (0.0, 0.6)),
    KillWindow("anywhere in the first two segments", "media", (0.0, 12.0)),
)


@pytest.fixture(autouse=True)
def _loopback_candidates() -> None:
    aiortc_hooks.install_host_addresses(["127.0.0.1"])


def _seed() -> int:
    text = os.environ.get(SEED_ENV)
    return int(text) if text else random.SystemRandom().randrange(2**32)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- processes, from /proc ------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    state: str
    ppid: int
    pgrp: int
    cmdline: str

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")  # a zombie is dead, only not reaped yet


def _processes() -> dict[int, Proc]:
    found: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        found[pid] = Proc(
            pid,
            fields[0],
            int(fields[1]),
            int(fields[2]),
            cmdline.replace(b"\0", b" ").decode(errors="replace").strip(),
        )
    return found


def _descendants(processes: Mapping[int, Proc], root: int) -> list[Proc]:
    children: dict[int, list[Proc]] = {}
    for proc in processes.values():
        children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def _alive_in_group(pgid: int) -> list[Proc]:
    return [p for p in _processes().values() if p.pgrp == pgid and p.alive]


# -- the server as an OS process ------------------------------------------------------------------


class ServerProcess:
    """`python -m server.cli serve` in a process group of its own, on a fresh port each start."""

    def __init__(self, config_file: Path, log_dir: Path) -> None:
        self.config_file = config_file
        self.log_dir = log_dir
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.starts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"server-{self.starts}.log"

    async def log_text(self) -> str:
        return await asyncio.to_thread(self.log_file.read_text, errors="replace")

    async def start(self) -> None:
        assert self.process is None or self.process.returncode is not None
        self.starts += 1
        self.port = self._next_port()
        # The server reads SHARED_COURT_* variables as configuration (and refuses unknown ones,
        # such as this test's seed variable): it gets the configuration file only.
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        log = await asyncio.to_thread(self.log_file.open, "wb")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "server.cli",
                "--config",
                str(self.config_file),
                "serve",
                "--port",
                str(self.port),
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        await self._wait_ready()

    def _next_port(self) -> int:
        """The port of the next start: a fresh one each time (a subclass may keep one)."""
        return _free_port()

    async def _wait_ready(self) -> None:
        """Poll /api/health until it answers: recovery has run by then (it runs before serving)."""
        assert self.process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                if self.process.returncode is not None:
                    pytest.fail(
                        f"the server exited with {self.process.returncode} while starting:\n"
                        + (await self.log_text())[-4000:]
                    )
                try:
                    async with http.get(self.base + "/api/health") as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if loop.time() > deadline:
                    pytest.fail(
                        f"the server did not answer in {READY_TIMEOUT} s:\n"
                        + (await self.log_text())[-4000:]
                    )
                await asyncio.sleep(0.1)

    async def kill(self) -> list[Proc]:
        """kill -9 of the process group; returns the processes that were in it (all dead now).

        Fails the test if a descendant of the server was outside the group, if no SFU worker
        was running, or if anything in the group is still alive afterwards.
        """
        assert self.process is not None
        pgid = self.process.pid  # start_new_session: the leader of its own session and group
        processes = await asyncio.to_thread(_processes)
        descendants = _descendants(processes, self.process.pid)
        outside = [p for p in descendants if p.pgrp != pgid]
        assert not outside, f"server processes outside its process group: {outside}"
        assert any("server.worker.process" in p.cmdline for p in descendants), descendants
        os.killpg(pgid, signal.SIGKILL)
        await self.process.wait()
        await self._wait_group_dead(pgid)
        return [processes[self.process.pid], *descendants]

    async def _wait_group_dead(self, pgid: int, timeout: float = 15) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while alive := await asyncio.to_thread(_alive_in_group, pgid):
            if loop.time() > deadline:
                pytest.fail(f"processes of the killed server survive: {alive}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Kill whatever is left of the process group (cleanup; never raises for a dead one)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        await self._wait_group_dead(self.process.pid)

    # -- clients ----------------------------------------------------------------------------

    async def cookies(self, path: str, body: dict[str, Any]) -> dict[str, str]:
        return await login_cookies(self.base + path, body)

    async def staff(self, world: CourtWorld, role: str) -> dict[str, str]:
        return await self.cookies(
            "/api/auth/login", {"username": world.users[role], "password": PASSWORD}
        )

    async def station(self, world: CourtWorld) -> dict[str, str]:
        return await self.cookies(
            "/api/auth/station", {"station_id": world.station_id, "key": world.station_key}
        )

    async def call(
        self, cookies: dict[str, str], method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": cookies.get("sc_csrf", "")}
        async with (
            aiohttp.ClientSession(cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True)) as h,
            h.request(method, self.base + path, json=body, headers=headers) as resp,
        ):
            return resp.status, await resp.json()


# -- recordings on disk ---------------------------------------------------------------------------


def _packages(root: Path) -> set[Path]:
    return {p for p in root.iterdir() if p.is_dir()} if root.exists() else set()


def _segment_files(package: Path) -> list[Path]:
    segments = package / "segments"
    return sorted(segments.glob("*.cevr")) if segments.exists() else []


def _progress(package: Path) -> tuple[int, int]:
    """(segment files, bytes in them) of a package being written."""
    files = _segment_files(package)
    size = 0
    for f in files:
        with contextlib.suppress(FileNotFoundError):  # renamed meanwhile
            size += f.stat().st_size
    return len(files), size


async def _new_package(root: Path, before: set[Path], ctx: str) -> Path:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECORDING_TIMEOUT
    while not (new := await asyncio.to_thread(_packages, root) - before):
        if loop.time() > deadline:
            pytest.fail(f"no recording started in {RECORDING_TIMEOUT} s ({ctx})")
        await asyncio.sleep(0.1)
    assert len(new) == 1, (new, ctx)
    return new.pop()


async def _reach(package: Path, anchor: str, ctx: str) -> tuple[int, int]:
    """Poll the package (off the loop) until the kill window's anchor is reached."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECORDING_TIMEOUT
    while True:
        segments, size = await asyncio.to_thread(_progress, package)
        if (
            (anchor == "started" and segments >= 1)
            or (anchor == "media" and size >= MEDIA_BYTES)
            or (anchor == "rotation" and segments >= 2)
        ):
            return segments, size
        if loop.time() > deadline:
            pytest.fail(
                f"recording {package.name} stuck at {segments} segments, {size} bytes; "
                f"waited for {anchor} ({ctx})"
            )
        await asyncio.sleep(0.05)


async def _verify(package: Path, key: VerifyKey) -> Report:
    return await asyncio.to_thread(verify_package, package, [key])


async def _check_after_restart(
    server: ServerProcess,
    world: CourtWorld,
    root: Path,
    key: VerifyKey,
    killed: list[Path],
    ctx: str,
) -> None:
    """Every package verifies (0 or 2); the last one killed was sealed by this start-up's
    recovery (and only it), with a signed crash incident."""
    packages = await asyncio.to_thread(_packages, root)
    assert packages == set(killed), (sorted(p.name for p in packages), ctx)
    for package in sorted(packages):
        report = await _verify(package, key)
        assert report.exit_code in (0, 2), f"{ctx}\n{report.text()}"
    if not killed:
        return
    last = killed[-1]
    report = await _verify(last, key)
    assert report.exit_code == 2, f"{ctx}\n{report.text()}"
    assert report.status == "recovered", f"{ctx}\n{report.text()}"
    # One declared crash gap (a loaded machine may add network gaps of the station's media).
    causes = [g.get("cause") for g in report.gaps if g["type"] == "incident"]
    assert causes == ["crash"], f"{ctx}\n{report.text()}"
    incidents = [e for e in report.timeline if e["type"] == "incident"]
    assert [e.get("cause") for e in incidents] == ["crash"], (incidents, ctx)
    # Recovery ran at this start-up, for the package just killed and not again for older ones.
    log = await server.log_text()
    lines = [line for line in log.splitlines() if RECOVERY_LOG in line]
    recovered = {p.name for p in killed if any(p.name in line for line in lines)}
    assert recovered == {last.name}, (recovered, ctx, log[-4000:])
    # ... and the hearing's event log tells the court, with the gap.
    status, events = await server.call(
        await server.staff(world, "judge"), "GET", f"/api/hearings/{world.hearing_id}/events"
    )
    assert status == 200, events
    logged = [
        e["data"]["recording_id"] for e in events["events"] if e["kind"] == "recording.recovered"
    ]
    assert logged == [p.name for p in killed], (logged, ctx)


# -- one round: a recorded hearing, killed ----------------------------------------------------


async def _set_state(
    server: ServerProcess, judge: dict[str, str], world: CourtWorld, state: str, reason: str
) -> None:
    status, body = await server.call(
        judge, "POST", f"/api/hearings/{world.hearing_id}/state", {"state": state, "reason": reason}
    )
    assert status == 200, body


async def _hearing_state(server: ServerProcess, judge: dict[str, str], world: CourtWorld) -> str:
    status, body = await server.call(judge, "GET", f"/api/hearings/{world.hearing_id}")
    assert status == 200, body
    return str(body["state"])


async def _record_and_kill(
    server: ServerProcess,
    world: CourtWorld,
    root: Path,
    window: KillWindow,
    delay: float,
    ctx: str,
) -> Path:
    """Hold a recorded session with the station, kill -9 the server in `window`; returns
    the package the kill left unfinished."""
    clerk = SignalingClient(server.ws_url, cookies=await server.staff(world, "clerk"))
    judge = await server.staff(world, "judge")
    camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    station: StationSession | None = None
    # Taken before anyone joins: a server that resumed recording when the hearing is loaded
    # would start the round's package then.
    before = await asyncio.to_thread(_packages, root)
    try:
        await clerk.connect()
        await clerk.join(world.hearing_id)
        state = await _hearing_state(server, judge, world)
        if state == "scheduled":
            await clerk.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        await camera.start()
        station = StationSession(
            SignalingClient(server.ws_url, cookies=await server.station(world)),
            video=camera,
            audio=AudioStreamTrack(),
        )
        await station.signaling.connect()
        welcome = await station.join(world.hearing_id)
        if state != "in_session":
            # The first round; a hearing left in session by a crash records again on its own.
            assert state in ("scheduled", "opened"), (state, ctx)
            await _set_state(server, judge, world, "in_session", "开庭")
        await clerk.request(m.Admit(participant_id=welcome.participant_id))
        package = await _new_package(root, before, ctx)
        anchor_at = await _reach(package, window.anchor, ctx)
        # The random kill point itself (not a wait for a condition: the condition was above).
        await asyncio.sleep(delay)
        at_kill = await asyncio.to_thread(_progress, package)
        dead = await server.kill()
        assert not await asyncio.to_thread((package / "manifest.json").exists), ctx
        print(
            f"  killed {len(dead)} processes ({', '.join(str(p.pid) for p in dead)}) "
            f"{delay:.2f} s after {window.anchor}: {anchor_at} -> {at_kill} (segments, bytes)"
        )
        return package
    finally:
        if station is not None:
            await station.close(leave=False)
        camera.stop()
        await clerk.close()


async def _prepare(tmp_path: Path) -> tuple[Path, Path, VerifyKey, CourtWorld]:
    """Keys, a configuration file and a seeded SQLite database; returns (config file,
    recordings root, signing public key, the court)."""
    keys = await asyncio.to_thread(keygen, tmp_path / "keys")
    public = await asyncio.to_thread(load_verify_key, keys.signing_public)
    data_dir = tmp_path / "data"
    await asyncio.to_thread(data_dir.mkdir)
    q = json.dumps  # TOML basic strings take JSON string escapes
    config_file = tmp_path / "server.toml"
    text = f"""
data_dir = {q(str(data_dir))}

[server]
host = "127.0.0.1"

[database]
url = {q("sqlite+aiosqlite:///" + str(tmp_path / "court.db"))}

[ice]
host_addresses = ["127.0.0.1"]

[sfu]
workers = 1

[recording]
signing_key_file = {q(str(keys.signing_private))}
archive_public_key_files = [{q(str(keys.archive_public))}]
"""
    await asyncio.to_thread(config_file.write_text, text)
    config = await asyncio.to_thread(load_config, config_file, {})
    await upgrade_async(config.database_url)
    engine = create_engine(config.database_url)
    try:
        world = await seed_court(create_sessionmaker(engine), SystemClock(), "Court A", "a")
    finally:
        await engine.dispose()
    return config_file, data_dir / "recordings", public, world


@pytest.mark.timeout(300)
async def test_server_killed_at_random_points_leaves_only_verifiable_recordings(
    tmp_path: Path,
) -> None:
    seed = _seed()
    rng = random.Random(seed)
    windows = rng.sample(KILL_WINDOWS, len(KILL_WINDOWS))
    delays = [rng.uniform(*w.delay) for w in windows]
    print(f"\n{SEED_ENV}={seed}")
    config_file, root, public, world = await _prepare(tmp_path)
    server = ServerProcess(config_file, tmp_path)
    killed: list[Path] = []
    started = time.monotonic()
    try:
        for number, (window, delay) in enumerate(zip(windows, delays, strict=True), 1):
            ctx = f"{SEED_ENV}={seed}, round {number}: kill {window.name}, +{delay:.2f} s"
            await server.start()
            await _check_after_restart(server, world, root, public, killed, ctx)
            print(f"round {number} ({time.monotonic() - started:.1f} s): {window.name}")
            killed.append(await _record_and_kill(server, world, root, window, delay, ctx))
        ctx = f"{SEED_ENV}={seed}, final restart"
        await server.start()
        await _check_after_restart(server, world, root, public, killed, ctx)
        # A crash does not end the hearing: it carries on after the last one as after the others.
        judge = await server.staff(world, "judge")
        state = await _hearing_state(server, judge, world)
        assert state == "in_session", (state, ctx)
    finally:
        await server.stop()
    print(f"{len(killed)} kills, all recovered, in {time.monotonic() - started:.1f} s")
