"""The operator's view of the cluster: `shared-court node list | drain | undrain`.

Reads the nodes' reports and sets or clears the drain mark straight in Redis (the keys of
`server.cluster.node`), so that it works from any machine that reaches Redis, with no node's
HTTP API and no session: whoever holds the server's configuration (and so the Redis URL) is the
operator. A drained node keeps its live hearings and is never chosen for a new one; it notices
the mark at its next heartbeat, which `drain(wait=...)` waits for.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from server.cluster.node import NodeInfo


class UnknownNodeError(Exception):
    """No live node reports under this id."""


@dataclass(frozen=True)
class NodeRow:
    """One live node's report, with how long ago it was written."""

    info: NodeInfo
    age_s: float
    marked: bool  # the drain mark is set (the report follows at the next heartbeat)


class ClusterAdmin:
    """Node reports and drain marks under one key prefix."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix

    async def nodes(self) -> list[NodeRow]:
        """Every live node (whose report has not expired), by id."""
        ids = sorted(map(str, await self.redis.smembers(f"{self.prefix}:nodes")))
        if not ids:
            return []
        values = await self.redis.mget([f"{self.prefix}:node:{i}" for i in ids])
        marks = await self.redis.mget([f"{self.prefix}:drain:{i}" for i in ids])
        now = time.time()
        rows = []
        for raw, mark in zip(values, marks, strict=True):
            if raw is None:
                continue  # its report expired: the node is dead (the nodes prune the set)
            info = NodeInfo(**json.loads(raw))
            rows.append(NodeRow(info, max(0.0, now - info.at), mark is not None))
        return rows

    async def set_draining(self, node_id: str, on: bool, *, wait_s: float = 0.0) -> NodeRow:
        """Mark the node draining (or clear the mark); with `wait_s`, wait until its own report
        says so. Raises UnknownNodeError for an id no live node reports under, TimeoutError."""
        if node_id not in {r.info.node_id for r in await self.nodes()}:
            raise UnknownNodeError(node_id)
        key = f"{self.prefix}:drain:{node_id}"
        if on:
            await self.redis.set(key, "1")
        else:
            await self.redis.delete(key)
        async with asyncio.timeout(wait_s if wait_s > 0 else None):
            while True:
                row = next((r for r in await self.nodes() if r.info.node_id == node_id), None)
                if row is None:
                    raise UnknownNodeError(node_id)
                if wait_s <= 0 or row.info.draining is on:
                    return row
                await asyncio.sleep(0.2)  # polling the node's next report, within wait_s


def table(rows: list[NodeRow]) -> str:
    """The rows as a text table for a terminal."""
    head = ("node", "url", "cpu %", "hearings", "participants", "draining", "heartbeat")
    lines = [head]
    for r in rows:
        draining = "yes" if r.info.draining else ("asked" if r.marked else "no")
        lines.append(
            (
                r.info.node_id,
                r.info.url,
                f"{r.info.cpu * 100:.0f}",
                str(r.info.hearings),
                str(r.info.participants),
                draining,
                f"{r.age_s:.1f} s ago",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
