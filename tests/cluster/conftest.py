"""Three node processes on loopback sharing one PostgreSQL and one Redis (issue 17.6).

Each node is `python -m server.cli serve` with a configuration of its own (its own data
directory, as on its own machine), `cluster.redis_url` set, a heartbeat of 1 s and 3 misses (a
dead node's hearings are placed again after at most ~3 s). The database is migrated and seeded
before the nodes start. `Cluster` reads the nodes' reports and placements straight from Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from recordings import VerifyKey, keygen, load_verify_key
from server.clock import SystemClock
from server.sfu import aiortc_hooks
from server.storage.db import create_engine, create_sessionmaker, upgrade_async
from tests.browser.conftest import browser  # noqa: F401 - the fixture, shared
from tests.conftest import PostgresServer, RedisServer
from tests.e2e.test_server_crash import ServerProcess
from tests.server.conftest import CourtWorld, seed_court

HEARTBEAT_S = 1.0
MISSES = 3


@pytest.fixture(autouse=True)
def _loopback_candidates() -> None:
    # This test process is every participant's machine: offer only loopback candidates.
    aiortc_hooks.install_host_addresses(["127.0.0.1"])


@dataclass
class Cluster:
    nodes: list[ServerProcess]
    redis: Redis
    prefix: str
    data_dirs: list[Path]
    verify_key: VerifyKey
    worlds: list[CourtWorld] = field(default_factory=list)

    async def reports(self) -> dict[str, dict[str, Any]]:
        """The live nodes' reports, by internal URL."""
        ids = await self.redis.smembers(f"{self.prefix}:nodes")
        found: dict[str, dict[str, Any]] = {}
        for node_id in map(str, ids):
            raw = await self.redis.get(f"{self.prefix}:node:{node_id}")
            if raw is not None:
                report = json.loads(raw)
                found[report["url"]] = report
        return found

    async def node_id(self, index: int) -> str:
        """The id node `index` reports under (waits for its first report)."""
        async with asyncio.timeout(15):
            while True:
                report = (await self.reports()).get(self.nodes[index].base)
                if report is not None:
                    return str(report["node_id"])
                await asyncio.sleep(0.1)  # polling Redis for the node's report

    async def owner(self, hearing_id: str) -> int | None:
        """Which node (index) a hearing is placed on, None if it is not placed."""
        node_id = await self.redis.get(f"{self.prefix}:hearing:{hearing_id}")
        if node_id is None:
            return None
        for index in range(len(self.nodes)):
            process = self.nodes[index].process
            alive = process is not None and process.returncode is None
            if alive and await self.node_id(index) == node_id:
                return index
        return -1  # placed on a node that is no longer running

    async def cli(self, *args: str) -> tuple[int, str]:
        """`shared-court --config <node 0's> ARGS` (the operator's command), exit code and
        standard output."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "--config",
            str(self.nodes[0].config_file),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env_without_configuration(),
        )
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode is not None
        return process.returncode, out.decode() + err.decode()

    async def drain(self, index: int, on: bool) -> None:
        """Drain a node (or stop draining it) with `shared-court node drain|undrain ID`, which
        waits until the node's own report says so."""
        node_id = await self.node_id(index)
        code, out = await self.cli("node", "drain" if on else "undrain", node_id)
        assert code == 0, out
        assert (await self.reports())[self.nodes[index].base]["draining"] is on, out


def _env_without_configuration() -> dict[str, str]:
    # The CLI reads SHARED_COURT_* variables as configuration: give it the file only.
    return {k: v for k, v in os.environ.items() if not k.startswith("SHARED_COURT_")}


async def _write_config(
    path: Path, data_dir: Path, database_url: str, redis_url: str, prefix: str, keys: Any
) -> None:
    q = json.dumps  # TOML basic strings take JSON string escapes
    text = f"""
data_dir = {q(str(data_dir))}

[server]
host = "127.0.0.1"

[database]
url = {q(database_url)}

[ice]
host_addresses = ["127.0.0.1"]

[sfu]
workers = 1

[recording]
signing_key_file = {q(str(keys.signing_private))}
archive_public_key_files = [{q(str(keys.archive_public))}]

[cluster]
redis_url = {q(redis_url)}
heartbeat_interval_s = {HEARTBEAT_S}
heartbeat_misses = {MISSES}
key_prefix = {q(prefix)}
"""
    await asyncio.to_thread(data_dir.mkdir, parents=True)
    await asyncio.to_thread(path.write_text, text)


@pytest.fixture
async def cluster(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> AsyncIterator[Cluster]:
    keys = await asyncio.to_thread(keygen, tmp_path / "keys")
    verify_key = await asyncio.to_thread(load_verify_key, keys.signing_public)
    database_url = await postgres_server.create_database()
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        sessions = create_sessionmaker(engine)
        worlds = [
            await seed_court(sessions, SystemClock(), "Court A", "a"),
            await seed_court(sessions, SystemClock(), "Court B", "b"),
            await seed_court(sessions, SystemClock(), "Court C", "c"),
            await seed_court(sessions, SystemClock(), "Court D", "d"),
        ]
    finally:
        await engine.dispose()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    nodes: list[ServerProcess] = []
    data_dirs: list[Path] = []
    for index in range(3):
        node_dir = tmp_path / f"node{index}"
        data_dirs.append(node_dir / "data")
        config = node_dir / "server.toml"
        await _write_config(config, data_dirs[-1], database_url, redis_server.url, prefix, keys)
        nodes.append(ServerProcess(config, node_dir))
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        # One after the other: start-up runs the (already applied) migrations.
        for node in nodes:
            await node.start()
        yield Cluster(nodes, redis, prefix, data_dirs, verify_key, worlds)
    finally:
        for node in nodes:
            await node.stop()
        await redis.aclose()
