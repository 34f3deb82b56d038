"""Every object shared through the aiohttp application, under a typed key. No module globals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.auth.principals import Principal
from server.auth.service import AuthService
from server.auth.turn import IceServers
from server.clock import Clock
from server.config import Config
from server.hearings.invitations import InvitationService
from server.hearings.rooms import HearingRooms
from server.hearings.service import CourtService
from server.hearings.station_backups import StationBackupService
from server.media import MediaService
from server.recording.playback import PlaybackService
from server.web.connections import HearingConnections

CONFIG = web.AppKey("config", Config)
CLOCK = web.AppKey("clock", Clock)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
AUTH = web.AppKey("auth", AuthService)
COURT = web.AppKey("court", CourtService)
INVITATIONS = web.AppKey("invitations", InvitationService)
ICE = web.AppKey("ice", IceServers)
MEDIA = web.AppKey("media", MediaService)
ROOMS = web.AppKey("rooms", HearingRooms)
CONNECTIONS = web.AppKey("connections", HearingConnections)
PLAYBACK = web.AppKey("playback", PlaybackService)
STATION_BACKUPS = web.AppKey("station_backups", StationBackupService)
# Set only on a node of a cluster (server.web.cluster): reads a new socket's first frame and
# relays the socket to its hearing's node (None back), or returns the frame to serve it here.
SignalingRoute = Callable[[web.Request, web.WebSocketResponse, Principal], Awaitable[str | None]]
SIGNALING_ROUTE: web.AppKey[SignalingRoute] = web.AppKey("signaling_route")

# Per-request values (request[...]): set by the session middleware.
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
CSRF_HASH = web.RequestKey("csrf_hash", bytes)

__all__ = [
    "AUTH",
    "CLOCK",
    "CONFIG",
    "CONNECTIONS",
    "COURT",
    "CSRF_HASH",
    "ENGINE",
    "ICE",
    "INVITATIONS",
    "MEDIA",
    "PLAYBACK",
    "PRINCIPAL",
    "ROOMS",
    "SESSIONS",
    "SIGNALING_ROUTE",
    "STATION_BACKUPS",
]
