"""The aiohttp application factory.

``create_app(config)`` builds everything from the configuration; each long-lived resource is an
async context manager in ``cleanup_ctx`` so that start-up and shutdown run in one place, in
order. Tests build the same app with a test configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from recordings import (
    ArchivePrivateKey,
    RecoveryResult,
    VerifyKey,
    load_archive_private_key,
    load_archive_public_key,
    load_verify_key,
)
from server.auth.service import AuthService
from server.auth.turn import IceServers
from server.clock import Clock, SystemClock
from server.config import Config
from server.enums import EventKind
from server.hearings.invitations import InvitationService
from server.hearings.rooms import HearingRooms
from server.hearings.service import CourtService
from server.hearings.station_backups import StationBackupService
from server.media import MediaService, RecordingSettings
from server.recording.playback import PlaybackService
from server.recording.recovery import hearing_of, recover_unfinished
from server.recording.station_backups import StationBackupStore
from server.storage.db import create_engine, create_sessionmaker
from server.storage.eventlog import EventLogRepository
from server.storage.repositories import HearingRepository
from server.web.appkeys import (
    AUTH,
    CLOCK,
    CONFIG,
    CONNECTIONS,
    COURT,
    ENGINE,
    ICE,
    INVITATIONS,
    MEDIA,
    PLAYBACK,
    ROOMS,
    SESSIONS,
    STATION_BACKUPS,
)
from server.web.connections import HearingConnections
from server.web.floods import ADDRESS_LIMITS, AddressLimits
from server.web.middleware import MIDDLEWARES
from server.web.pages import add_pages
from server.web.routes import add_routes
from server.web.ws import signaling_socket
from server.worker import WorkerPool
from signaling.reasons import CloseReason

log = logging.getLogger(__name__)


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    engine = create_engine(config.database_url, echo=config.database.echo)
    sessions = create_sessionmaker(engine)
    app[ENGINE] = engine
    app[SESSIONS] = sessions
    app[AUTH] = AuthService(sessions, app[CLOCK], config.security)
    app[COURT] = CourtService(sessions, app[CLOCK])
    app[INVITATIONS] = InvitationService(sessions, app[CLOCK])
    app[STATION_BACKUPS] = StationBackupService(
        sessions, app[CLOCK], StationBackupStore(config.data_dir / "station-backups")
    )
    yield
    await engine.dispose()


def recording_settings(
    config: Config, playback: ArchivePrivateKey | None = None
) -> RecordingSettings | None:
    """Where and with which keys hearings are recorded; None when recording is off.

    Blocks (reads the archive public key files): call through `asyncio.to_thread`. Raises
    recordings.KeyFileError if one is unreadable or not an X25519 public key.
    """
    rec = config.recording
    if not rec.enabled or rec.signing_key_file is None or not rec.archive_public_key_files:
        return None
    return RecordingSettings(
        root=config.data_dir / "recordings",
        signing_key=rec.signing_key_file,
        archive_keys=tuple(rec.archive_public_key_files),
        playback_recipient=playback.public_key.pem() if playback is not None else None,
        archive_pems=tuple(load_archive_public_key(p).pem() for p in rec.archive_public_key_files),
        tsa=_tsa_settings(config),
    )


def _tsa_settings(config: Config) -> dict[str, Any] | None:
    """`recording.timestamping` as the fields of recordings.timestamps.TsaConfig (sent to the
    SFU worker as JSON), or None when no TSA is configured."""
    ts = config.recording.timestamping
    if ts.url is None:
        return None
    return {
        "url": ts.url,
        "every": ts.every_checkpoints,
        "timeout": ts.timeout_s,
        "attempts": ts.attempts,
        "retry_delay": ts.retry_delay_s,
    }


def _playback_keys(config: Config) -> tuple[ArchivePrivateKey | None, list[VerifyKey]]:
    """The playback private key and the signing key recordings must verify against (blocks:
    file reads). Raises recordings.KeyFileError on a bad key file."""
    rec = config.recording
    key = load_archive_private_key(rec.playback_key_file) if rec.playback_key_file else None
    trusted = [load_verify_key(rec.signing_key_file)] if rec.signing_key_file else []
    return key, trusted


async def _playback(app: web.Application) -> AsyncIterator[None]:
    """Playback of sealed recordings for staff; decrypted copies live in data_dir/playback."""
    config = app[CONFIG]
    key, trusted = await asyncio.to_thread(_playback_keys, config)
    service = PlaybackService(
        config.data_dir / "recordings",
        config.data_dir / "playback",
        key,
        trusted,
        app[CLOCK],
        config.recording.playback_cache_ttl_s,
        station_root=app[STATION_BACKUPS].store.root,
    )
    await service.start()
    app[PLAYBACK] = service
    await asyncio.to_thread(app[STATION_BACKUPS].store.sweep_incoming, time.time())
    sweeper = asyncio.create_task(service.sweep_forever(min(60.0, service.ttl_s / 4)))
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await service.close()


def _sfu_host_addresses(config: Config) -> list[str]:
    """The addresses the SFU offers as ICE host candidates (config, else every interface)."""
    if config.ice.host_addresses:
        return list(config.ice.host_addresses)
    import aioice.ice

    return list(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True))


async def _log_recovery(app: web.Application, result: RecoveryResult) -> None:
    """Put a recording sealed after a crash on its hearing's event log, with the gap."""
    hearing_id = await asyncio.to_thread(hearing_of, result)
    if hearing_id is None:
        return
    try:
        async with app[SESSIONS].begin() as db:
            if await HearingRepository(db).get(hearing_id) is None:
                return
            await EventLogRepository(db).append(
                hearing_id,
                at=app[CLOCK].now(),
                actor="system",
                kind=EventKind.RECORDING_RECOVERED,
                data={
                    "recording_id": result.recording_id,
                    "gap_from": result.gap_from,
                    "gap_to": result.gap_to,
                    "torn_tail_bytes": result.torn_tail_bytes,
                },
            )
    except SQLAlchemyError:
        log.exception("cannot log the recovery of recording %s", result.recording_id)


async def _live_hearings(app: web.Application) -> AsyncIterator[None]:
    """Live hearings: their rules, signaling connections, and the SFU worker processes."""
    config = app[CONFIG]
    pool = WorkerPool(config.sfu.workers or None, host_addresses=_sfu_host_addresses(config))
    settings = await asyncio.to_thread(recording_settings, config, app[PLAYBACK].playback_key)
    if settings is not None:
        # Recordings a crash left unfinished are sealed with a signed incident (AVR 4).
        for result in await recover_unfinished(settings.root, settings.signing_key, settings.tsa):
            log.warning("recovered an unfinished recording: %s", result)
            await _log_recovery(app, result)
    else:
        log.warning("evidence recording is off: set recording keys in the configuration")
    # The worker processes start with the first live hearing.
    media = MediaService(pool, settings)
    connections = HearingConnections(app[CLOCK])
    app[ICE] = await asyncio.to_thread(IceServers, config.ice)  # reads the TURN secret file
    app[MEDIA] = media
    app[CONNECTIONS] = connections
    app[ADDRESS_LIMITS] = AddressLimits(
        app[CLOCK],
        config.signaling.max_sockets_per_address,
        config.signaling.messages_per_address_per_s,
    )
    app[ROOMS] = HearingRooms(
        app[SESSIONS], app[CLOCK], media.hearing, connections.clients, app[COURT]
    )
    try:
        yield
    finally:
        for connection in connections.all():
            await connection.close(CloseReason.SERVER_SHUTDOWN)
        await media.close()


def create_app(config: Config, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=config.server.max_body_bytes)
    app[CONFIG] = config
    app[CLOCK] = clock or SystemClock()
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_playback)
    app.cleanup_ctx.append(_live_hearings)
    if config.cluster.redis_url is not None:  # a node of a cluster (issue 17)
        from server.web.cluster import add_cluster

        add_cluster(app)
    app.router.add_get("/ws", signaling_socket)
    add_routes(app)
    add_pages(app)
    return app
