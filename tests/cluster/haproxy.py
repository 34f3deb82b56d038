"""A plain load balancer in front of the cluster's nodes: Debian's haproxy (issue 17.3, 17.6).

HTTP mode (WebSocket upgrades pass through as tunnels), round robin, a health check of
`GET /api/health` every 300 ms: a node failing two checks is taken out, and a connection
refused by a dead node not yet taken out is sent to another (`retries`, `option redispatch`).
No stickiness: any node answers any request (docs/deployment.md, "A cluster").
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.test_server_crash import ServerProcess, _free_port

CONFIG = """global
    maxconn 512
defaults
    mode http
    option redispatch 1
    retries 3
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout check 1s
frontend court
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /api/health
    default-server inter 300ms fall 2 rise 2
{servers}
"""


class Haproxy:
    """haproxy in the foreground (`-db`), on a port chosen free at start."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("haproxy") or (
            "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
        )
        if binary is None:
            pytest.fail(
                "haproxy not found: `make test` installs Debian's haproxy package.", pytrace=False
            )
        self.binary = binary
        self.dir = directory
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self, nodes: list[ServerProcess]) -> None:
        self.port = _free_port()
        servers = "\n".join(
            f"    server node{i} 127.0.0.1:{n.port} check" for i, n in enumerate(nodes)
        )
        config = self.dir / "haproxy.cfg"
        await asyncio.to_thread(self.dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(config.write_text, CONFIG.format(port=self.port, servers=servers))
        log = await asyncio.to_thread((self.dir / "haproxy.log").open, "wb")
        try:
            self.process = await asyncio.create_subprocess_exec(
                self.binary, "-db", "-f", str(config), stdout=log, stderr=log
            )
        finally:
            log.close()
        async with asyncio.timeout(15), aiohttp.ClientSession() as http:
            while True:
                if self.process.returncode is not None:
                    log_text = await asyncio.to_thread((self.dir / "haproxy.log").read_text)
                    pytest.fail(f"haproxy exited: {log_text}", pytrace=False)
                try:
                    async with http.get(self.base + "/api/health") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)  # polling until haproxy forwards to a healthy node

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
