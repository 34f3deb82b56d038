"""This node in the cluster: its load report (registry), the placement of hearings, the bus.

Redis keys (prefix `cluster.key_prefix`, default `sc`):

- `sc:node:<id>`: this node's report as JSON (url, cpu, hearings, participants, draining),
  written every heartbeat with a TTL of `heartbeat_misses` intervals: a node that stops
  reporting disappears by itself; `sc:nodes` is the set of node ids ever seen (pruned of those
  whose report expired).
- `sc:hearing:<id>`: the node a hearing is placed on, set with SET NX (the first placement
  wins) and the same TTL, renewed by its node's heartbeat only while the value is still that
  node (compare-and-renew, one Lua script): when the node dies its placements expire with its
  report and the next join places the hearing again.
- `sc:placed`: hearings per node, counted at placement (so that a burst of placements spreads
  before the next reports) and corrected by each node's heartbeat.
- `sc:drain:<id>`: present while an operator drains the node: it keeps its hearings and is
  never chosen for a new one.
- channel `sc:bus`: JSON messages every node acts on (see `server.web.cluster`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.cluster.cpu import CpuMeter
from server.ids import HearingId

log = logging.getLogger(__name__)

# Renew the placements still held by ARGV[1]; return the keys that are not (lost).
_RENEW = """
local lost = {}
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  else
    table.insert(lost, key)
  end
end
return lost
"""
# Place KEYS[1] on ARGV[1] unless it is placed; count it; return the node it is placed on.
_PLACE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
"""
# Delete KEYS[1] if it still holds ARGV[1] (a dead owner's placement, or our own on leaving).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


async def prepare_client() -> None:
    """redis-py reads its own version from the package metadata (file reads) when it makes its
    first connection, then caches it: do that once off the event loop."""
    from redis.utils import get_lib_version

    await asyncio.to_thread(get_lib_version)


@dataclass(frozen=True)
class NodeInfo:
    """One node's last report."""

    node_id: str
    url: str
    cpu: float
    hearings: int
    participants: int
    draining: bool
    at: float


class NoNodeError(Exception):
    """No live node accepts a new hearing (all are draining, or none reports)."""


class ClusterNode:
    """This node: reports its load, places hearings, renews its placements, listens to the bus.

        `participants()` and `pids()` are read at each heartbeat (live participants on this node;
    this node's main and SFU worker process ids, for its CPU use); `on_lost(h)` is awaited when
    a placement of this node was taken over (this node stopped renewing in time: the loop
    stalled), and before that can happen when this node could not renew its placements for two
    heartbeats less than their TTL (fencing: a node cut off from Redis stops serving its hearings
    before another node may take them); `on_message(m)` for each bus message of another node.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        node_id: str,
        url: str,
        interval_s: float,
        misses: int,
        prefix: str,
        participants: Callable[[], int],
        pids: Callable[[], list[int]],
        on_lost: Callable[[HearingId], Awaitable[None]],
        on_message: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        self.redis = redis
        self.node_id = node_id
        self.url = url.rstrip("/")
        self.interval_s = interval_s
        self.ttl_ms = int(interval_s * misses * 1000)
        self.prefix = prefix
        self.hearings: set[HearingId] = set()
        self.draining = False
        self._participants = participants
        self._pids = pids
        self._on_lost = on_lost
        self._on_message = on_message
        self._cpu = CpuMeter()
        self._last_cpu = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self.renewed_at = time.monotonic()
        self.fenced = 0  # times this node ended its hearings for want of Redis
        self._renew = redis.register_script(_RENEW)
        self._place = redis.register_script(_PLACE)
        self._release = redis.register_script(_RELEASE)

    # -- keys ---------------------------------------------------------------------------------

    def node_key(self, node_id: str) -> str:
        return f"{self.prefix}:node:{node_id}"

    def hearing_key(self, hearing_id: str) -> str:
        return f"{self.prefix}:hearing:{hearing_id}"

    def drain_key(self, node_id: str) -> str:
        return f"{self.prefix}:drain:{node_id}"

    @property
    def nodes_key(self) -> str:
        return f"{self.prefix}:nodes"

    @property
    def placed_key(self) -> str:
        return f"{self.prefix}:placed"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:bus"

    # -- life -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Report once (so this node is placeable at once), then heartbeat and listen."""
        await self.heartbeat()
        self._tasks = [
            asyncio.create_task(self._heartbeat_forever()),
            asyncio.create_task(self._listen_forever()),
        ]

    async def close(self) -> None:
        """Leave: stop reporting, release this node's placements (its connections are closed by
        the caller, and clients rejoin elsewhere at once), remove the report."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(RedisError, OSError):
            for hearing_id in list(self.hearings):
                await self._release(keys=[self.hearing_key(hearing_id)], args=[self.node_id])
            await self.redis.delete(self.node_key(self.node_id))
            await self.redis.hdel(self.placed_key, self.node_id)
        await self.redis.aclose()

    def info(self) -> NodeInfo:
        return NodeInfo(
            node_id=self.node_id,
            url=self.url,
            cpu=self._last_cpu,
            hearings=len(self.hearings),
            participants=self._participants(),
            draining=self.draining,
            at=time.time(),
        )

    async def heartbeat(self) -> None:
        """Report this node's load and renew its placements; tell `on_lost` of lost ones."""
        lost = await self._report()
        await self._lose(lost)

    async def _report(self) -> list[HearingId]:
        """Write the report and renew the placements (Redis only); return the lost hearings.
        On success, `renewed_at` is when the renewal was sent (never later than Redis set the
        TTLs), the start of the time this node's placements are sure to stay its own."""
        sent_at = time.monotonic()
        self._last_cpu = await asyncio.to_thread(self._cpu.read, self._pids())
        self.draining = bool(await self.redis.exists(self.drain_key(self.node_id)))
        info = self.info()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.node_key(self.node_id), json.dumps(asdict(info)), px=self.ttl_ms)
            pipe.sadd(self.nodes_key, self.node_id)
            pipe.hset(self.placed_key, self.node_id, str(len(self.hearings)))
            await pipe.execute()
        if not self.hearings:
            self.renewed_at = sent_at
            return []
        ids = sorted(self.hearings)
        lost_keys = await self._renew(
            keys=[self.hearing_key(h) for h in ids], args=[self.node_id, self.ttl_ms]
        )
        self.renewed_at = sent_at
        lost = {str(k).rsplit(":", 1)[-1] for k in lost_keys}
        return [h for h in ids if h in lost]

    async def _lose(self, hearing_ids: list[HearingId]) -> None:
        for hearing_id in hearing_ids:
            if hearing_id in self.hearings:
                self.hearings.discard(hearing_id)
                await self._on_lost(hearing_id)

    def fence_due(self) -> bool:
        """This node's placements may expire within two heartbeats: another node may take its
        hearings soon, so it must stop serving them first (fencing). Two, because a hanging
        report takes a heartbeat and a half to be given up (sleep, then its time bound)."""
        return time.monotonic() >= self.renewed_at + self.ttl_ms / 1000 - 2 * self.interval_s

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)  # the report's period, not a wait for an outcome
            try:
                # A paused or unreachable Redis may hang rather than fail: bound each report.
                async with asyncio.timeout(self.interval_s / 2):
                    lost = await self._report()
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("cluster heartbeat failed (%s); retrying", exc)
                if self.hearings and self.fence_due():
                    log.error(
                        "cut off from Redis for %.1f s: ending this node's %d hearings here "
                        "before another node takes them",
                        time.monotonic() - self.renewed_at,
                        len(self.hearings),
                    )
                    self.fenced += 1
                    await self._lose(sorted(self.hearings))
                continue
            for hearing_id in lost:
                log.error("hearing %s was placed on another node; ending it here", hearing_id)
            await self._lose(lost)

    async def _listen_forever(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("cluster bus lost (%s); subscribing again", exc)
                await asyncio.sleep(self.interval_s)

    async def _deliver(self, raw: str) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            log.warning("malformed cluster bus message ignored")
            return
        if not isinstance(data, dict) or data.get("from") == self.node_id:
            return
        try:
            await self._on_message(data)
        except Exception:
            log.exception("cluster bus message %s failed", data.get("op"))

    async def publish(self, op: str, **fields: Any) -> None:
        """Tell every other node (never raises: a bus outage is logged)."""
        try:
            await self.redis.publish(
                self.channel, json.dumps({"op": op, "from": self.node_id, **fields})
            )
        except (RedisError, OSError) as exc:
            log.warning("cluster bus publish of %s failed: %s", op, exc)

    # -- nodes and placement -------------------------------------------------------------------

    async def nodes(self) -> list[NodeInfo]:
        """The live nodes' reports (ids whose report expired are pruned)."""
        ids = sorted(await self.redis.smembers(self.nodes_key))
        if not ids:
            return []
        values = await self.redis.mget([self.node_key(str(i)) for i in ids])
        found: list[NodeInfo] = []
        for node_id, raw in zip(map(str, ids), values, strict=True):
            if raw is None:
                await self.redis.srem(self.nodes_key, node_id)
                await self.redis.hdel(self.placed_key, node_id)
                continue
            found.append(NodeInfo(**json.loads(raw)))
        return found

    async def node(self, node_id: str) -> NodeInfo | None:
        raw = await self.redis.get(self.node_key(node_id))
        return NodeInfo(**json.loads(raw)) if raw is not None else None

    async def owner(self, hearing_id: HearingId) -> NodeInfo:
        """The live node holding the hearing, placing it on the least-loaded live, non-draining
        node if it has none (or its node died). Raises NoNodeError, RedisError."""
        key = self.hearing_key(hearing_id)
        current = await self.redis.get(key)
        if current is not None:
            if current == self.node_id:
                self.hearings.add(hearing_id)
                return self.info()
            info = await self.node(str(current))
            if info is not None:
                return info
            # Its node stopped reporting: the placement is stale; take it away from that node
            # only (another node may have replaced it meanwhile).
            await self._release(keys=[key], args=[str(current)])
        nodes = [n for n in await self.nodes() if not n.draining]
        if not nodes:
            raise NoNodeError("no live node accepts new hearings")
        placed = await self.redis.hgetall(self.placed_key)
        best = min(
            nodes,
            key=lambda n: (
                int(placed.get(n.node_id, n.hearings)),
                n.participants,
                n.cpu,
                n.node_id != self.node_id,
                n.node_id,
            ),
        )
        chosen = str(
            await self._place(keys=[key, self.placed_key], args=[best.node_id, self.ttl_ms])
        )
        if chosen == self.node_id:
            self.hearings.add(hearing_id)
            return self.info()
        info = best if chosen == best.node_id else await self.node(chosen)
        if info is None:
            raise NoNodeError(f"hearing {hearing_id} is placed on {chosen}, which is gone")
        return info
