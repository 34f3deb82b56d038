"""Fixtures shared by the whole suite: clocks, databases (SQLite and a real PostgreSQL server
started for the run), the application under test and a seeded court world."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from blockbuster import blockbuster_ctx

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class FakeClock:
    """A clock tests move by hand: expiry and lockout without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 96 KiB tmpfs: a real ENOSPC for the code under test (needs CAP_SYS_ADMIN)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tiny tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1, owned by the `postgres` system user."""

    def __init__(self) -> None:
        if not PG_BIN_DIRS:
            pytest.fail(
                "PostgreSQL server binaries not found under /usr/lib/postgresql: the storage "
                "suite must run against a real PostgreSQL. `make test` installs Debian's "
                "postgresql package; install it and run again.",
                pytrace=False,
            )
        self.bin = PG_BIN_DIRS[0]
        self.dir = Path(tempfile.mkdtemp(prefix="sc-pg-"))
        self.port = _free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as the packaged `postgres` user.
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root but no `postgres` system user exists", pytrace=False)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [*self._as_user, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"PostgreSQL command failed: {args[0]}\n{result.stderr}", pytrace=False)

    def start(self) -> None:
        data = self.dir / "data"
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self) -> None:
        subprocess.run(
            [
                *self._as_user,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.dir / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self) -> str:
        import asyncpg

        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres"
        )
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database of each kind."""
    from server.storage.db import upgrade_async

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'court.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = await server.create_database()
    await upgrade_async(url)
    return url


@pytest.fixture(autouse=True)
def no_blocking_in_the_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test when our code makes a blocking call (file, socket, sleep) inside the loop.

    aiohttp's own suite uses blockbuster the same way. Only calls made from our packages are
    reported; synchronous tests are not affected (blockbuster only acts in a running loop).
    Tests marked `allow_blocking` opt out (subprocess-driven CLI tests, for example).
    """
    if request.node.get_closest_marker("allow_blocking"):
        yield
        return
    with blockbuster_ctx(
        scanned_modules=["server", "signaling", "recordings", "station_client"]
    ) as detector:
        # Alembic migrations run in a worker thread with a loop of their own (upgrade_async).
        for function in detector.functions.values():
            function.can_block_in("server/storage/migrations/env.py", {"_run_async", "_run"})
            # Building the app resolves static paths once, before it serves anything.
            function.can_block_in("server/app.py", {"create_app"})
            function.can_block_in("server/storage/db.py", {"create_engine"})
            # asyncpg looks for ~/.pgpass and ~/.postgresql certificates (stat calls) on each
            # new pooled connection; not ours, and only when the pool grows.
            function.can_block_in("asyncpg/connect_utils.py", {"_parse_connect_dsn_and_args"})
            # aiortc's RTCPeerConnection.close() joins the receiver's decoder thread, which has
            # been told to stop; a client (the station) closing its connection waits for it.
            function.can_block_in("aiortc/rtcrtpreceiver.py", {"__stop_decoder"})
        yield


class RedisServer:
    """A throwaway Redis on 127.0.0.1 (Debian's redis-server), no persistence (the cluster's
    tests, issue 17)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server not found: the cluster suite runs against a real Redis. `make "
                "test` installs Debian's redis-server package; install it and run again.",
                pytrace=False,
            )
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="sc-redis-"))
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.dir / "log").open("wb")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = 30.0
        while deadline > 0:
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited: {(self.dir / 'log').read_text()}", pytrace=False)
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)  # the server's start-up, polled with a deadline
            deadline -= 0.05
        pytest.fail("redis-server did not listen within 30 s", pytrace=False)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
