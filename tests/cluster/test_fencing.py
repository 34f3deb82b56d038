"""A node cut off from Redis gives its hearings up before another node can take them (fencing,
issue 17.3; docs/deployment.md, "A cluster").

Node 2 reaches Redis through a TCP relay of this test's; the hearing is placed on it (the
others drain), a clerk is connected and the hearing records. The relay then stops forwarding
(Redis neither answers nor fails, as on a cut link): within the placement's TTL node 2 closes
the clerk's connection with SERVER_SHUTDOWN and seals its recording (verify 0), and the
hearing is placed again on another node when the clerk rejoins.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from recordings import verify_package
from signaling.client import SignalingClient
from signaling.enums import ClientKind
from signaling.reasons import CloseReason
from tests.cluster.conftest import HEARTBEAT_S, MISSES, Cluster
from tests.conftest import RedisServer


class CuttableRelay:
    """TCP from a free loopback port to Redis; `cut()` stops forwarding (bytes are held, the
    connections stay open), `mend()` resumes."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.open = asyncio.Event()
        self.open.set()
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                await self.open.wait()
                dst.write(data)
                await dst.drain()
        dst.close()

    def cut(self) -> None:
        self.open.clear()

    def mend(self) -> None:
        self.open.set()

    async def close(self) -> None:
        self.mend()
        if self.server is not None:
            self.server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        if self.server is not None:
            await self.server.wait_closed()


@pytest.fixture
async def relay(redis_server: RedisServer) -> AsyncIterator[CuttableRelay]:
    made = CuttableRelay(redis_server.port)
    await made.start()
    yield made
    await made.close()


async def _packages(root: Path) -> set[Path]:
    def find() -> set[Path]:
        return {p for p in root.iterdir() if p.is_dir()} if root.exists() else set()

    return await asyncio.to_thread(find)


async def test_a_node_cut_off_from_redis_gives_its_hearing_up(
    cluster: Cluster, relay: CuttableRelay, redis_server: RedisServer
) -> None:
    world = cluster.worlds[0]
    n0, n2 = cluster.nodes[0], cluster.nodes[2]
    # Node 2 reaches Redis through the relay from now on.
    await n2.stop()
    text = await asyncio.to_thread(n2.config_file.read_text)
    moved = text.replace(redis_server.url, f"redis://127.0.0.1:{relay.port}/0")
    assert moved != text
    await asyncio.to_thread(n2.config_file.write_text, moved)
    await n2.start()
    await cluster.drain(0, True)
    await cluster.drain(1, True)
    clerk_cookies = await n2.staff(world, "clerk")
    judge_cookies = await n2.staff(world, "judge")
    clerk = SignalingClient(n2.ws_url, cookies=clerk_cookies)
    try:
        await clerk.connect()
        await clerk.join(world.hearing_id, client_kind=ClientKind.BROWSER)
        assert await cluster.owner(world.hearing_id) == 2
        await cluster.drain(0, False)
        await cluster.drain(1, False)
        for state, reason in (("opened", "候庭"), ("in_session", "开庭")):
            status, body = await n2.call(
                judge_cookies,
                "POST",
                f"/api/hearings/{world.hearing_id}/state",
                {"state": state, "reason": reason},
            )
            assert status == 200, body
        async with asyncio.timeout(10):
            while not (packages := await _packages(cluster.data_dirs[2] / "recordings")):
                await asyncio.sleep(0.1)  # polling for the recording to start
        relay.cut()
        cut_at = time.monotonic()
        ttl = HEARTBEAT_S * MISSES
        async with asyncio.timeout(ttl + 2):
            closed = await clerk.wait_closed()
        given_up_in = time.monotonic() - cut_at
        print(f"node 2 gave its hearing up {given_up_in:.1f} s after it was cut off")
        assert closed is CloseReason.SERVER_SHUTDOWN, closed
        # Before its placement could expire: nobody else could have held the hearing yet.
        assert given_up_in < ttl, given_up_in
        async with asyncio.timeout(10):
            while True:
                (package,) = packages
                report = await asyncio.to_thread(verify_package, package, [cluster.verify_key])
                if report.exit_code == 0:
                    break
                await asyncio.sleep(0.2)  # polling until node 2 has sealed the package
        # The clerk rejoins through another node: the hearing is placed again, not on node 2.
        async with asyncio.timeout(15):
            while True:
                again = SignalingClient(n0.ws_url, cookies=await n0.staff(world, "clerk"))
                try:
                    await again.connect()
                    await again.join(world.hearing_id, client_kind=ClientKind.BROWSER)
                    break
                except Exception:
                    await again.close()
                    await asyncio.sleep(0.3)  # the client's back-off between attempts
        assert await cluster.owner(world.hearing_id) in (0, 1)
        # The hearing's log has the departure at the fencing and the sealed package.
        status, body = await n0.call(
            await n0.staff(world, "judge"), "GET", f"/api/hearings/{world.hearing_id}/events"
        )
        assert status == 200, body
        events = [(e["kind"], e["data"]) for e in body["events"]]
        causes = [d.get("cause") for k, d in events if k == "participant.departed"]
        assert causes == ["SERVER_SHUTDOWN"], events
        sealed = [d["recording_id"] for k, d in events if k == "recording.sealed"]
        assert sealed == [package.name], events
        await again.close()
        relay.mend()
    finally:
        await clerk.close()
