"""Engine, sessions and migrations.

One ``AsyncEngine`` per process; ``async_sessionmaker(expire_on_commit=False)`` so objects stay
usable after the request's commit. Migrations are Alembic's, shipped inside the package and run
by ``shared-court db upgrade`` (and by ``serve``/``demo`` at start-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the engine; on SQLite: foreign keys on, WAL, and serialised write transactions."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        # The directory is made by `upgrade()`, which always runs before the app starts.
        kwargs["async_creator"] = partial(_connect_sqlite, parsed.database)
    elif parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below issue BEGIN itself.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # IMMEDIATE takes the write lock up front. A deferred transaction that reads and
            # then writes lets two writers read the same state (two event-log appends would
            # both take the same sequence number), or fails to upgrade its lock under WAL.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _rollback_quietly(connection: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        connection.rollback()


class _RollbackOnClose(aiosqlite.Connection):
    """An aiosqlite connection that rolls back before it closes.

    Python's sqlite3 closes with sqlite3_close_v2: a connection that still has statements
    open becomes a "zombie" that keeps its transaction, and SQLite's write lock with it, until
    the garbage collector finalizes those statements. SQLAlchemy closes a connection in just
    that state when the task using it is cancelled mid-transaction (aiohttp cancels a handler
    whose client went away): every later BEGIN IMMEDIATE then waited its 30 s and failed with
    "database is locked". Both ways aiosqlite closes (close() and the forced stop()) queue a
    rollback on the connection's thread first; the thread runs its queue in order, so the
    rollback also comes after a BEGIN still in flight.
    """

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(ValueError):
                await self._execute(_rollback_quietly, self._connection)  # type: ignore[no-untyped-call]
        await super().close()

    def stop(self) -> asyncio.Future[Any] | None:
        if self._connection is not None and self._running:
            self._tx.put_nowait((None, partial(_rollback_quietly, self._connection)))
        return super().stop()


async def _connect_sqlite(database: str) -> aiosqlite.Connection:
    connection = _RollbackOnClose(
        partial(sqlite3.connect, database, timeout=30, check_same_thread=False),
        iter_chunk_size=64,
    )
    connection._thread.daemon = True  # as SQLAlchemy's own aiosqlite connect does
    return await connection


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's ini interpolation treats % specially.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database schema to `revision`. Blocking: call it off the event loop."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """`upgrade` from inside a running event loop (Alembic's env runs its own loop)."""
    await asyncio.to_thread(upgrade, url, revision)
