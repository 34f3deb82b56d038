"""Several nodes (issue 17.6): participants of one hearing connected to different nodes see and
hear each other; hearings spread over the nodes by load and a draining node takes none; a login
lockout made on one node holds on another; kill -9 of the hearing's node: the hearing resumes on
another node within 10 s and every recording verifies (0, or 2 with the crash declared).

The node processes and the stores come from tests/cluster/conftest.py; the participants are
this process's aiortc clients (the station client's session), each talking to the node it was
given, as behind a load balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from recordings import verify_package
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import ClientKind, HearingState
from signaling.errors import SignalingError
from signaling.reasons import CloseReason
from station_client.app import RECOVERABLE
from station_client.devices import AvCamera
from station_client.media import CameraTrack
from station_client.session import StationSession
from tests.cluster.conftest import Cluster
from tests.e2e.test_server_crash import ServerProcess
from tests.server.conftest import PASSWORD, CourtWorld

RESUME_DEADLINE_S = 10.0
ROOT = Path(__file__).resolve().parents[2]


class CountingSpeaker:
    """A speaker that counts the audio frames it receives (drains the track, as one must)."""

    def __init__(self) -> None:
        self.frames = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, track: MediaStreamTrack) -> None:
        task = asyncio.create_task(self._drain(track))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames += 1


class Participant:
    """One person with a camera and a microphone, on one node."""

    def __init__(self, node: ServerProcess, cookies: dict[str, str]) -> None:
        self.node, self.cookies = node, cookies
        self.camera: CameraTrack | None = None
        self.speaker = CountingSpeaker()
        self.session: StationSession | None = None

    async def join(self, hearing_id: str) -> m.Welcome:
        self.camera = CameraTrack(AvCamera.test_pattern(size="160x120", fps=10))
        await self.camera.start()
        self.session = StationSession(
            SignalingClient(self.node.ws_url, cookies=self.cookies),
            video=self.camera,
            audio=AudioStreamTrack(),
            speaker=self.speaker,
        )
        await self.session.signaling.connect()
        return await self.session.join(hearing_id)

    def frames_from(self, participant_id: str) -> int:
        return self.session.frames.get(participant_id, 0) if self.session else 0

    async def close(self, *, leave: bool = True) -> None:
        if self.session is not None:
            with contextlib.suppress(SignalingError, OSError):
                await self.session.close(leave=leave)
        if self.camera is not None:
            self.camera.stop()


async def _see_and_hear(a: Participant, a_id: str, b: Participant, b_id: str, ctx: str) -> None:
    """Both receive video frames of the other, and audio."""
    audio_a, audio_b = a.speaker.frames, b.speaker.frames
    async with asyncio.timeout(30):
        while (
            a.frames_from(b_id) < 10
            or b.frames_from(a_id) < 10
            or a.speaker.frames < audio_a + 25
            or b.speaker.frames < audio_b + 25
        ):
            await asyncio.sleep(0.1)  # polling the receivers' frame counters with a deadline
    assert a.frames_from(b_id) >= 10, ctx
    assert b.frames_from(a_id) >= 10, ctx


async def _call(
    node: ServerProcess, cookies: dict[str, str], method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    return await node.call(cookies, method, path, body)


async def _packages(root: Path) -> set[Path]:
    def find() -> set[Path]:
        return {p for p in root.iterdir() if p.is_dir()} if root.exists() else set()

    return await asyncio.to_thread(find)


async def _rejoin(p: Participant, hearing_id: str, deadline: float) -> m.Welcome:
    """What the clients do after a recoverable close: join again (here with a short back-off)
    until the cluster has placed the hearing on a live node."""
    await p.close(leave=False)
    while True:
        try:
            return await p.join(hearing_id)
        except (SignalingError, OSError):
            await p.close(leave=False)
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)  # the client's back-off between attempts


async def test_a_hearing_across_nodes_survives_the_death_of_its_node(cluster: Cluster) -> None:
    world = cluster.worlds[0]
    n0, n1, n2 = cluster.nodes
    # Put the hearing on node 2: the others drain (a draining node takes no new hearing).
    await cluster.drain(0, True)
    await cluster.drain(1, True)
    clerk = SignalingClient(n0.ws_url, cookies=await n0.staff(world, "clerk"))
    judge_cookies = await n1.staff(world, "judge")
    station = Participant(n0, await n0.station(world))
    judge = Participant(n1, judge_cookies)
    try:
        await clerk.connect()
        await clerk.join(world.hearing_id)  # through node 0, relayed to node 2
        assert await cluster.owner(world.hearing_id) == 2
        await cluster.drain(0, False)
        await cluster.drain(1, False)
        await clerk.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        station_welcome = await station.join(world.hearing_id)
        # The judge opens the session over REST on node 1: the bus tells node 2, which records.
        status, body = await _call(
            n1,
            judge_cookies,
            "POST",
            f"/api/hearings/{world.hearing_id}/state",
            {"state": "in_session", "reason": "开庭"},
        )
        assert status == 200, body
        await clerk.request(m.Admit(participant_id=station_welcome.participant_id))
        judge_welcome = await judge.join(world.hearing_id)
        sid, jid = station_welcome.participant_id, judge_welcome.participant_id
        assert judge_welcome.hearing_state == "in_session"
        await _see_and_hear(station, sid, judge, jid, "node 0 <-> node 1 via node 2")
        first = await _packages(cluster.data_dirs[2] / "recordings")
        assert len(first) == 1, first
        status, before = await _call(
            n1, judge_cookies, "GET", f"/api/hearings/{world.hearing_id}/events"
        )
        assert status == 200
        # kill -9 of the hearing's node (its SFU worker with it).
        await n2.kill()
        killed_at = time.monotonic()
        deadline = killed_at + RESUME_DEADLINE_S
        async with asyncio.timeout(RESUME_DEADLINE_S):
            for p in (station, judge):
                assert p.session is not None
                reason = await p.session.signaling.wait_closed()
                assert reason in RECOVERABLE, reason
        station_welcome = await _rejoin(station, world.hearing_id, deadline)
        judge_welcome = await _rejoin(judge, world.hearing_id, deadline)
        rejoined_in = time.monotonic() - killed_at
        assert rejoined_in < RESUME_DEADLINE_S, rejoined_in
        assert judge_welcome.hearing_state == "in_session"
        new_owner = await cluster.owner(world.hearing_id)
        assert new_owner in (0, 1), new_owner
        # A station lands in the waiting room after its hearing's server went away (as after a
        # restart): the judge admits it again.
        admitted = await judge.session.signaling.request(  # type: ignore[union-attr]
            m.Admit(participant_id=station_welcome.participant_id)
        )
        assert isinstance(admitted, m.Result)
        await _see_and_hear(station, sid, judge, jid, f"after the kill, on node {new_owner}")
        resumed_in = time.monotonic() - killed_at
        print(
            f"rejoined on node {new_owner} {rejoined_in:.1f} s after the kill, "
            f"seeing and hearing each other again after {resumed_in:.1f} s"
        )
        # Media flows again soon after (ICE and the first keyframe; the machine is shared).
        assert resumed_in < RESUME_DEADLINE_S + 5, resumed_in
        # The new node records in a new package; closing the hearing seals it.
        second = await _packages(cluster.data_dirs[new_owner] / "recordings")
        assert len(second) == 1, second
        status, body = await _call(
            n1 if new_owner == 1 else n0,
            judge_cookies,
            "POST",
            f"/api/hearings/{world.hearing_id}/state",
            {"state": "closed", "reason": "闭庭"},
        )
        assert status == 200, body
    finally:
        for p in (station, judge):
            await p.close(leave=False)
        await clerk.close()
    # The killed node restarts: its start-up recovery seals the package the kill left.
    await n2.start()
    async with asyncio.timeout(30):
        while True:
            reports = [
                await asyncio.to_thread(verify_package, p, [cluster.verify_key])
                for p in sorted(first | second)
            ]
            if all(r.exit_code in (0, 2) for r in reports) and len(reports) == 2:
                break
            await asyncio.sleep(0.5)  # the new package is sealed as the hearing closes
    codes = sorted(r.exit_code for r in reports)
    assert codes == [0, 2], [r.text() for r in reports]
    old = await asyncio.to_thread(verify_package, first.pop(), [cluster.verify_key])
    assert [g.get("cause") for g in old.gaps if g["type"] == "incident"] == ["crash"]
    # Nothing in the database was lost: every event logged before the kill is still there.
    status, after = await _call(
        n0, await n0.staff(world, "judge"), "GET", f"/api/hearings/{world.hearing_id}/events"
    )
    assert status == 200
    ids_after = [e.get("seq", e.get("id")) for e in after["events"]]
    ids_before = [e.get("seq", e.get("id")) for e in before["events"]]
    assert ids_after[: len(ids_before)] == ids_before
    kinds = [e["kind"] for e in after["events"]]
    assert "recording.recovered" in kinds, kinds


async def _login(node: ServerProcess, username: str, password: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            node.base + "/api/auth/login", json={"username": username, "password": password}
        ) as resp,
    ):
        return resp.status, await resp.json()


async def _departures(node: ServerProcess, cookies: dict[str, str], world: CourtWorld) -> list[str]:
    """The causes of the departures on the world's hearing's event log."""
    status, body = await node.call(cookies, "GET", f"/api/hearings/{world.hearing_id}/events")
    assert status == 200, body
    return [
        str(e["data"].get("cause")) for e in body["events"] if e["kind"] == "participant.departed"
    ]


async def _place(cluster: Cluster, node: ServerProcess, world: CourtWorld, hearing: str) -> int:
    async with SignalingClient(node.ws_url, cookies=await node.staff(world, "clerk")) as clerk:
        await clerk.join(hearing, client_kind=ClientKind.BROWSER)
        owner = await cluster.owner(hearing)
        await clerk.leave()
    assert owner is not None
    assert owner >= 0
    return owner


async def test_hearings_spread_by_load_and_lockouts_hold_across_nodes(cluster: Cluster) -> None:
    a, b, c, d = cluster.worlds
    n0, n1, n2 = cluster.nodes
    # Three hearings, all asked for on node 0: each goes to the least-loaded live node.
    owners = [
        await _place(cluster, n0, a, a.hearing_id),
        await _place(cluster, n0, b, b.hearing_id),
        await _place(cluster, n0, c, c.hearing_id),
    ]
    assert sorted(owners) == [0, 1, 2], owners
    # A placed hearing stays where it is, whichever node a participant comes in by.
    assert await _place(cluster, n2, a, a.hearing_id) == owners[0]
    # A draining node takes no new hearing (it keeps the ones it has).
    await cluster.drain(1, True)
    assert await _place(cluster, n1, d, d.hearing_id) != 1
    assert await cluster.owner(b.hearing_id) == owners[1]
    await cluster.drain(1, False)
    # The operator's view: every node's report, and no drain of a node that does not report.
    code, out = await cluster.cli("node", "list", "--json")
    assert code == 0, out
    listed = {row["url"]: row for row in json.loads(out)}
    assert set(listed) == {n.base for n in cluster.nodes}, listed
    assert sum(row["hearings"] for row in listed.values()) >= 4, listed
    assert all(row["heartbeat_age_s"] < 3 * 1.0 and not row["draining"] for row in listed.values())
    code, out = await cluster.cli("node", "list")
    assert code == 0, out
    assert "heartbeat" in out, out
    assert n0.base in out, out
    code, out = await cluster.cli("node", "drain", "no-such-node")
    assert code == 1, out
    assert "no live node" in out, out
    # A lockout made on node 0 holds on node 1 (it lives in the shared database).
    user = a.users["judge"]
    for _ in range(5):
        status, _body = await _login(n0, user, "wrong password")
        assert status == 401, _body
    status, body = await _login(n1, user, PASSWORD)
    assert body["code"] == "LOCKED_OUT", (status, body)
    status, body = await _login(n2, b.users["judge"], PASSWORD)
    assert status == 200, body
    # How a relayed connection ended is recorded on the hearing's node as if it were direct:
    # a clean leave is CLIENT_LEFT (the placements above), a client killed is NETWORK_LOST.
    relay_node = cluster.nodes[(owners[0] + 1) % 3]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.e2e.client_process",
        relay_node.ws_url,
        json.dumps(await relay_node.station(a)),
        a.hearing_id,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert (await asyncio.wait_for(process.stdout.readline(), 30)).strip() == b"joined"
    process.kill()
    await process.wait()
    reader = await n0.staff(a, "clerk")
    async with asyncio.timeout(15):
        while True:
            causes = await _departures(n0, reader, a)
            if "NETWORK_LOST" in causes:
                break
            await asyncio.sleep(0.2)  # polling the event log until the departure is logged
    assert "CLIENT_LEFT" in causes, causes
    # A logout on one node ends the session's connection relayed through another (the bus).
    clerk_cookies = await n0.staff(a, "clerk")
    async with SignalingClient(n0.ws_url, cookies=clerk_cookies) as clerk:
        await clerk.join(a.hearing_id, client_kind=ClientKind.BROWSER)
        logout_node = n2 if owners[0] != 2 else n1
        async with (
            aiohttp.ClientSession(cookies=clerk_cookies) as http,
            http.post(
                logout_node.base + "/api/auth/logout",
                headers={"X-CSRF-Token": clerk_cookies.get("sc_csrf", "")},
            ) as resp,
        ):
            assert resp.status == 204, await resp.text()
        async with asyncio.timeout(10):
            assert await clerk.wait_closed() is CloseReason.SESSION_REVOKED
    # Login attempts per address are counted over all nodes: round-robin over three nodes,
    # the limit (20 a minute) is reached as on one node (this test made ~12 attempts already;
    # counted per node, 21 more would pass).
    limited_after = None
    for attempt in range(21):
        status, body = await _login(cluster.nodes[attempt % 3], "nobody", "x")
        if body.get("code") == "RATE_LIMITED":
            limited_after = attempt
            break
        assert status == 401, body
    print(f"rate limited after {limited_after} more attempts over three nodes")
    assert limited_after is not None
