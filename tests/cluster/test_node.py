"""`ClusterNode` against a real Redis: placement by load, stickiness, draining, a dead node's
hearings placed again, a placement taken over while its node was cut off (compare-and-renew),
and the bus (issue 17.1, 17.3)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster.node import ClusterNode, NoNodeError, prepare_client
from server.ids import HearingId
from tests.conftest import RedisServer


class Nodes:
    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"u{uuid.uuid4().hex[:8]}"
        self.lost: dict[str, list[str]] = {}
        self.heard: dict[str, list[dict[str, Any]]] = {}
        self.made: list[ClusterNode] = []

    def node(self, name: str, interval_s: float = 0.2) -> ClusterNode:
        lost = self.lost.setdefault(name, [])
        heard = self.heard.setdefault(name, [])

        async def on_lost(hearing_id: HearingId) -> None:
            lost.append(hearing_id)

        async def on_message(data: dict[str, Any]) -> None:
            heard.append(data)

        node = ClusterNode(
            Redis.from_url(self.url, decode_responses=True),
            node_id=name,
            url=f"http://{name}.internal:8080",
            interval_s=interval_s,
            misses=3,
            prefix=self.prefix,
            participants=lambda: 0,
            pids=lambda: [os.getpid()],
            on_lost=on_lost,
            on_message=on_message,
        )
        self.made.append(node)
        return node


@pytest.fixture
async def nodes(redis_server: RedisServer) -> AsyncIterator[Nodes]:
    await prepare_client()
    made = Nodes(redis_server.url)
    yield made
    for node in made.made:
        await node.close()


def hid() -> HearingId:
    return HearingId(str(uuid.uuid4()))


async def test_placement_spreads_sticks_and_skips_draining_nodes(nodes: Nodes) -> None:
    a, b, c = nodes.node("a"), nodes.node("b"), nodes.node("c")
    for node in (a, b, c):
        await node.heartbeat()
    hearings = [hid() for _ in range(6)]
    owners = [(await a.owner(h)).node_id for h in hearings]
    assert sorted(owners) == ["a", "a", "b", "b", "c", "c"], owners
    # Asked again, from any node: the same node.
    assert [(await c.owner(h)).node_id for h in hearings] == owners
    await a.redis.set(a.drain_key("b"), "1")
    await b.heartbeat()
    assert b.draining
    fresh = [(await a.owner(hid())).node_id for _ in range(4)]
    assert "b" not in fresh, fresh
    for node in (a, c):
        await a.redis.set(a.drain_key(node.node_id), "1")
        await node.heartbeat()
    with pytest.raises(NoNodeError):
        await a.owner(hid())
    assert (await a.owner(hearings[owners.index("b")])).node_id == "b"  # kept while draining


async def test_a_dead_nodes_hearings_are_placed_again(nodes: Nodes) -> None:
    a, b = nodes.node("a"), nodes.node("b")
    await a.heartbeat()
    await b.heartbeat()
    hearing = hid()
    await a.redis.set(a.drain_key("a"), "1")
    await a.heartbeat()
    assert (await a.owner(hearing)).node_id == "b"
    await a.redis.delete(a.drain_key("a"))
    # b stops reporting (dies): its report and placement expire after 3 intervals.
    async with asyncio.timeout(5):
        while await a.redis.exists(a.node_key("b")):
            await a.heartbeat()
            await asyncio.sleep(0.1)  # a's reports go on; b's key expires on Redis's clock
    assert (await a.owner(hearing)).node_id == "a"
    assert hearing in a.hearings


async def test_a_placement_taken_over_is_given_up_by_its_old_node(nodes: Nodes) -> None:
    a, b = nodes.node("a"), nodes.node("b")
    await a.heartbeat()
    await b.heartbeat()
    hearing = hid()
    await b.redis.set(b.drain_key("b"), "1")
    await b.heartbeat()
    assert (await b.owner(hearing)).node_id == "a"
    # The relayed join arrives at a, which looks too: the hearing is its own now.
    assert (await a.owner(hearing)).node_id == "a"
    assert hearing in a.hearings
    # a was cut off long enough for b to take the hearing over ...
    await b.redis.set(b.hearing_key(hearing), "b")
    # ... a's next heartbeat notices and ends the hearing on its side.
    await a.heartbeat()
    assert nodes.lost["a"] == [hearing]
    assert hearing not in a.hearings


async def test_the_bus_reaches_the_other_nodes(nodes: Nodes) -> None:
    a, b = nodes.node("a"), nodes.node("b")
    await a.start()
    await b.start()
    async with asyncio.timeout(5):
        while True:
            await a.publish("end_sessions", sessions=["s1"], message="logged out")
            if nodes.heard["b"]:
                break
            await asyncio.sleep(0.05)  # until b's subscription is up
    assert nodes.heard["b"][0]["op"] == "end_sessions"
    assert nodes.heard["b"][0]["sessions"] == ["s1"]
    assert nodes.heard["a"] == []  # never its own messages


async def test_a_node_cut_off_from_redis_ends_its_hearings_before_they_can_expire(
    nodes: Nodes,
) -> None:
    """Fencing: Redis stops answering the node's writes (CLIENT PAUSE ... WRITE: its commands
    hang, as on a cut link): once its placements are within one heartbeat of expiring, the
    node ends its hearings here (`on_lost`) rather than two nodes holding one hearing."""
    a = nodes.node("a")
    await a.start()
    hearing = hid()
    assert (await a.owner(hearing)).node_id == "a"
    admin = Redis.from_url(nodes.url, decode_responses=True)
    try:
        async with asyncio.timeout(5):
            while a.renewed_at == 0 or hearing not in a.hearings:
                await asyncio.sleep(0.02)  # polling for a first renewal with the hearing
        await admin.client_pause(3000, all=False)  # CLIENT PAUSE 3000 WRITE
        paused_at = asyncio.get_running_loop().time()
        renewed_before = a.renewed_at
        async with asyncio.timeout(3):
            while not nodes.lost["a"]:
                await asyncio.sleep(0.02)  # polling the node's fencing, with a deadline
        fenced_at = asyncio.get_running_loop().time()
        assert nodes.lost["a"] == [hearing]
        assert a.fenced == 1
        assert not a.hearings
        # Ended before its placement could expire (TTL from the last renewal), and not at once.
        assert fenced_at - renewed_before < a.ttl_ms / 1000, (fenced_at, renewed_before)
        assert fenced_at > paused_at
        await admin.client_unpause()
        # Redis back: the node reports again (it is alive; it only gave up its hearings).
        async with asyncio.timeout(5):
            while a.renewed_at <= renewed_before:
                await asyncio.sleep(0.05)  # polling for its next successful report
        assert await admin.get(a.node_key("a")) is not None
    finally:
        await admin.client_unpause()
        await admin.aclose()
