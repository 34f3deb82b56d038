"""The aiohttp application factory.

``create_app(config)`` builds everything from the configuration; each long-lived resource is an
async context manager in ``cleanup_ctx`` so that start-up and shutdown run in one place, in
order. Tests build the same app with a test configuration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from server.appkeys import AUTH, CLOCK, CONFIG, COURT, ENGINE, SESSIONS
from server.auth.service import AuthService
from server.clock import Clock, SystemClock
from server.config import Config
from server.hearings.service import CourtService
from server.storage.db import create_engine, create_sessionmaker
from server.web.api import add_routes
from server.web.middleware import MIDDLEWARES
from server.web.pages import add_pages


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    engine = create_engine(config.database_url, echo=config.database.echo)
    sessions = create_sessionmaker(engine)
    app[ENGINE] = engine
    app[SESSIONS] = sessions
    app[AUTH] = AuthService(sessions, app[CLOCK], config.security)
    app[COURT] = CourtService(sessions, app[CLOCK])
    yield
    await engine.dispose()


def create_app(config: Config, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=config.server.max_body_bytes)
    app[CONFIG] = config
    app[CLOCK] = clock or SystemClock()
    app.cleanup_ctx.append(_database)
    add_routes(app)
    add_pages(app)
    return app
