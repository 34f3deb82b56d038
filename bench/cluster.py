"""Several nodes (issue 17.7): placement rate, signaling latency across nodes, capacity 1 vs 2.

Starts its own redis-server and PostgreSQL (as the test suite does), seeds courts, and runs node
processes (`python -m server.cli serve`, one SFU worker each) on loopback:

1. **placements per second**: `ClusterNode.owner()` for fresh hearing ids from this process
   against three node reports in Redis (the decision and its atomic SET NX, as a join triggers
   it; no SFU work), sequentially and with 16 at once.
2. **signaling latency across nodes vs on one node**: a joined participant's `probe` round trip
   (p50/p95 of N), connected to the hearing's node, and connected to the other node (the socket
   relayed to the hearing's node).
3. **capacity with 1 vs 2 node processes**: participants of several hearings (clerk, judge and
   station of each court) each send `probe`s paced at 18/s (under the per-connection limit of
   20/s) for a fixed time; the delivered requests per second with one node, and with two
   nodes with the participants spread over them as a round-robin load balancer would; the ratio
   of the two.

    .venv/bin/python bench/cluster.py [--courts 8] [--seconds 15] [--json]

Limits, stated with the figures: everything (nodes, stores, the load generator) shares this
machine's cores with whatever else runs; the capacity measured is signaling's (requests through
rules and relays), not media forwarding's (docs/benchmarks.md, "SFU forwarding").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from server.clock import SystemClock  # noqa: E402
from server.cluster.node import ClusterNode  # noqa: E402
from server.ids import HearingId  # noqa: E402
from server.storage.db import create_engine, create_sessionmaker, upgrade_async  # noqa: E402
from signaling import messages as m  # noqa: E402
from signaling.client import SignalingClient  # noqa: E402
from signaling.enums import ClientKind  # noqa: E402
from tests.conftest import PostgresServer, RedisServer  # noqa: E402
from tests.e2e.test_server_crash import ServerProcess  # noqa: E402
from tests.server.conftest import CourtWorld, seed_court  # noqa: E402

PACE_PER_S = 18.0


def _config(data_dir: Path, database_url: str, redis_url: str | None, prefix: str) -> str:
    q = json.dumps
    text = f"""
data_dir = {q(str(data_dir))}

[server]
host = "127.0.0.1"

[database]
url = {q(database_url)}

[signaling]
# Every participant here shares one address (loopback): lift the per-address budget.
messages_per_address_per_s = 100000
max_sockets_per_address = 10000

[ice]
host_addresses = ["127.0.0.1"]

[sfu]
workers = 1

[recording]
enabled = false

[security]
login_ip_attempts_per_minute = 100000
"""
    if redis_url is not None:
        text += f"""
[cluster]
redis_url = {q(redis_url)}
heartbeat_interval_s = 1
key_prefix = {q(prefix)}
"""
    return text


async def _start_nodes(
    tmp: Path, count: int, database_url: str, redis_url: str | None, prefix: str
) -> list[ServerProcess]:
    nodes = []
    for index in range(count):
        node_dir = tmp / f"{prefix}-node{index}"
        (node_dir / "data").mkdir(parents=True)
        config = node_dir / "server.toml"
        config.write_text(_config(node_dir / "data", database_url, redis_url, prefix))
        node = ServerProcess(config, node_dir)
        await node.start()
        nodes.append(node)
    return nodes


async def placements(redis_url: str) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    redis = Redis.from_url(redis_url, decode_responses=True)
    nodes = [
        ClusterNode(
            Redis.from_url(redis_url, decode_responses=True),
            node_id=f"n{i}",
            url=f"http://127.0.0.1:{9000 + i}",
            interval_s=30,
            misses=3,
            prefix=prefix,
            participants=lambda: 0,
            pids=lambda: [os.getpid()],
            on_lost=lambda h: asyncio.sleep(0),
            on_message=lambda d: asyncio.sleep(0),
        )
        for i in range(3)
    ]
    for node in nodes:
        await node.heartbeat()
    asker = nodes[0]
    count = 2000
    started = time.perf_counter()
    for _ in range(count):
        await asker.owner(HearingId(str(uuid.uuid4())))
    sequential = count / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(count // 16):
        await asyncio.gather(*(asker.owner(HearingId(str(uuid.uuid4()))) for _ in range(16)))
    concurrent = (count // 16 * 16) / (time.perf_counter() - started)
    spread = await redis.hgetall(f"{prefix}:placed")
    for node in nodes:
        await node.redis.aclose()
    await redis.aclose()
    return {
        "placements_per_s_sequential": round(sequential),
        "placements_per_s_16_at_once": round(concurrent),
        "spread_over_3_nodes": {k: int(v) for k, v in sorted(spread.items())},
    }


async def _probe_rtts(client: SignalingClient, n: int) -> list[float]:
    rtts = []
    for _ in range(n):
        started = time.perf_counter()
        await client.request(m.Probe())
        rtts.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(1 / PACE_PER_S)  # stay under the per-connection rate limit
    return rtts


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 2),
    }


async def latency(
    nodes: list[ServerProcess], world: CourtWorld, redis_url: str, prefix: str, n: int
) -> dict[str, Any]:
    a, b = nodes
    async with SignalingClient(a.ws_url, cookies=await a.staff(world, "clerk")) as clerk:
        await clerk.join(world.hearing_id, client_kind=ClientKind.BROWSER)
        redis = Redis.from_url(redis_url, decode_responses=True)
        owner_id = await redis.get(f"{prefix}:hearing:{world.hearing_id}")
        reports = [
            json.loads(await redis.get(f"{prefix}:node:{i}") or "{}")
            for i in map(str, await redis.smembers(f"{prefix}:nodes"))
        ]
        await redis.aclose()
        owner_url = next(r["url"] for r in reports if r.get("node_id") == owner_id)
        home, away = (a, b) if owner_url == a.base else (b, a)
        async with SignalingClient(home.ws_url, cookies=await home.staff(world, "judge")) as j:
            await j.join(world.hearing_id, client_kind=ClientKind.BROWSER)
            direct = await _probe_rtts(j, n)
        async with SignalingClient(away.ws_url, cookies=await away.staff(world, "judge")) as j:
            await j.join(world.hearing_id, client_kind=ClientKind.BROWSER)
            relayed = await _probe_rtts(j, n)
    return {
        "on_the_hearings_node": _summary(direct),
        "relayed_by_another_node": _summary(relayed),
        "probes": n,
    }


async def _probe_until(client: SignalingClient, until: float, rtts: list[float]) -> int:
    done = 0
    next_at = time.perf_counter()
    while time.perf_counter() < until:
        started = time.perf_counter()
        await client.request(m.Probe())
        rtts.append((time.perf_counter() - started) * 1000)
        done += 1
        # Never catch up after a slow answer: a burst would exceed the per-connection limit
        # (RATE_LIMITED) on a loaded machine; a late request just lowers the offered rate.
        next_at = max(next_at + 1 / PACE_PER_S, time.perf_counter() + 1 / PACE_PER_S / 2)
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))  # pacing
    return done


async def capacity(
    nodes: list[ServerProcess], worlds: list[CourtWorld], seconds: float
) -> dict[str, Any]:
    """Everyone joins first; then all probe at once for `seconds`; requests answered per s."""
    clients: list[SignalingClient] = []
    index = 0
    try:
        for world in worlds:
            for who in ("clerk", "judge", "station"):
                node = nodes[index % len(nodes)]
                index += 1
                cookies = (
                    await node.station(world) if who == "station" else await node.staff(world, who)
                )
                client = SignalingClient(node.ws_url, cookies=cookies)
                clients.append(client)
                await client.connect()
                await client.join(world.hearing_id, client_kind=ClientKind.BROWSER)
        rtts: list[float] = []
        started = time.perf_counter()
        until = started + seconds
        done = await asyncio.gather(*(_probe_until(c, until, rtts) for c in clients))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            await client.close()
    return {
        "participants": len(clients),
        "offered_per_s": round(len(clients) * PACE_PER_S),
        "delivered_per_s": round(sum(done) / elapsed, 1),
        **_summary(rtts),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="sc-bench-cluster-"))
    redis_server, pg = RedisServer(), PostgresServer()
    redis_server.start()
    pg.start()
    result: dict[str, Any] = {"load_average_before": os.getloadavg()}
    nodes: list[ServerProcess] = []
    try:
        database_url = await pg.create_database()
        await upgrade_async(database_url)
        engine = create_engine(database_url)
        sessions = create_sessionmaker(engine)
        worlds = [
            await seed_court(sessions, SystemClock(), f"Court {i}", f"c{i}")
            for i in range(args.courts)
        ]
        await engine.dispose()
        result["placement"] = await placements(redis_server.url)
        prefix = f"b{uuid.uuid4().hex[:6]}"
        nodes = await _start_nodes(tmp, 2, database_url, redis_server.url, prefix)
        result["signaling_latency"] = await latency(
            nodes, worlds[0], redis_server.url, prefix, args.probes
        )
        result["capacity_2_nodes"] = await capacity(nodes, worlds[1:], args.seconds)
        for node in nodes:
            await node.stop()
        nodes = await _start_nodes(tmp, 1, database_url, None, "single")
        result["capacity_1_node"] = await capacity(nodes, worlds[1:], args.seconds)
        one = result["capacity_1_node"]["delivered_per_s"]
        two = result["capacity_2_nodes"]["delivered_per_s"]
        result["capacity_ratio_2_to_1"] = round(two / one, 2) if one else None
        result["load_average_after"] = os.getloadavg()
        result["cpus"] = os.cpu_count()
    finally:
        for node in nodes:
            await node.stop()
        pg.stop()
        redis_server.stop()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courts", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = asyncio.run(main(args))
    print(json.dumps(out, indent=None if args.json else 2))
