"""A station registers the local backup recording it makes of its hearing
(`POST /api/hearings/{id}/station-backups`): it learns the keys to seal it for, the event log
gets one `station.backup_started`, re-registering is harmless, and everything else is refused
with a clear code and nothing written."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from pytest_aiohttp import AiohttpClient
from sqlalchemy import update

from recordings import (
    RecordingId,
    SigningKey,
    StaticKeyProvider,
    create_writer,
    load_archive_private_key,
    load_archive_public_key,
    verify_package,
)
from recordings.keys import key_id
from server.app import create_app
from server.enums import EventKind, HearingState
from server.hearings.station_backups import MAX_STATION_BACKUPS
from server.recording import station_backups
from server.recording.station_backups import StationBackupStore
from server.storage.db import upgrade_async
from server.storage.eventlog import EventLogRepository
from server.storage.models import Hearing
from server.web.appkeys import SESSIONS
from tests.conftest import FakeClock
from tests.server.conftest import Api, CourtWorld, app_of, make_config, recording_keys, seed_court

KIND = EventKind.STATION_BACKUP_STARTED


def spki_pem(key: Ed25519PrivateKey | X25519PrivateKey) -> str:
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return public.decode("ascii")


def key_id_of(key: Ed25519PrivateKey) -> str:
    return key_id(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


async def court(
    aiohttp_client: AiohttpClient, tmp_path: Path, clock: FakeClock, recording: dict[str, Any]
) -> tuple[Api, CourtWorld]:
    config = make_config(tmp_path, recording=recording)
    await upgrade_async(config.database_url)
    client = await aiohttp_client(create_app(config, clock=clock))
    world = await seed_court(app_of(client)[SESSIONS], clock, "Court A", "a")
    return Api(client), world


@pytest.fixture
async def keys(tmp_path: Path) -> dict[str, Any]:
    return await recording_keys(tmp_path / "keys")


@pytest.fixture
async def station(
    aiohttp_client: AiohttpClient, tmp_path: Path, clock: FakeClock, keys: dict[str, Any]
) -> tuple[Api, CourtWorld]:
    """The API logged in as the seeded hearing's station, on a court that records."""
    api, world = await court(aiohttp_client, tmp_path, clock, keys)
    status, _ = await api.station_login(world.station_id, world.station_key)
    assert status == 200
    return api, world


def url(world: CourtWorld, hearing_id: str | None = None) -> str:
    return f"/api/hearings/{hearing_id or world.hearing_id}/station-backups"


async def logged(client: TestClient[Any, Any], hearing_id: str) -> list[dict[str, Any]]:
    async with app_of(client)[SESSIONS]() as db:
        events = await EventLogRepository(db).list(hearing_id, kind=KIND)
    return [e.data for e in events]


async def test_the_station_registers_its_backup_and_learns_the_keys(
    station: tuple[Api, CourtWorld], keys: dict[str, Any]
) -> None:
    api, world = station
    signer = Ed25519PrivateKey.generate()
    recording_id = str(uuid.uuid4())
    status, body = await api.call(
        "POST", url(world), {"recording_id": recording_id, "verify_key": spki_pem(signer)}
    )
    assert status == 201, body
    archive = await asyncio.to_thread(
        lambda: Path(keys["archive_public_key_files"][0]).read_text("ascii")
    )
    assert body == {
        "recording_id": recording_id,
        "key_id": key_id_of(signer),
        "recipients": [archive],
    }

    await api.login(world.users["judge"])
    status, timeline = await api.call("GET", f"/api/hearings/{world.hearing_id}/events")
    assert status == 200
    assert timeline["chain_intact"] is True
    [entry] = [e for e in timeline["events"] if e["kind"] == KIND]
    assert entry["actor"] == f"station:{world.station_id}"
    raw = signer.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert entry["data"] == {
        "recording_id": recording_id,
        "key_id": key_id_of(signer),
        "verify_key": base64.b64encode(raw).decode(),  # as the package's recording.json has it
        "station_id": world.station_id,
    }


async def test_the_playback_key_is_a_recipient_too(
    aiohttp_client: AiohttpClient, tmp_path: Path, clock: FakeClock
) -> None:
    keys = await recording_keys(tmp_path / "keys", playback=True)
    api, world = await court(aiohttp_client, tmp_path, clock, keys)
    await api.station_login(world.station_id, world.station_key)
    body = {"recording_id": str(uuid.uuid4()), "verify_key": spki_pem(Ed25519PrivateKey.generate())}
    status, out = await api.call("POST", url(world), body)
    assert status == 201, out
    archive, playback = await asyncio.gather(
        asyncio.to_thread(load_archive_public_key, Path(keys["archive_public_key_files"][0])),
        asyncio.to_thread(load_archive_private_key, Path(keys["playback_key_file"])),
    )
    assert out["recipients"] == [archive.pem(), playback.public_key.pem()]


async def test_registering_again_is_harmless_and_logs_nothing(
    station: tuple[Api, CourtWorld],
) -> None:
    api, world = station
    body = {"recording_id": str(uuid.uuid4()), "verify_key": spki_pem(Ed25519PrivateKey.generate())}
    status, first = await api.call("POST", url(world), body)
    assert status == 201
    status, again = await api.call("POST", url(world), body)  # after a reconnect
    assert (status, again) == (200, first)
    assert len(await logged(api.client, world.hearing_id)) == 1


async def test_another_key_for_a_registered_recording_conflicts(
    station: tuple[Api, CourtWorld],
) -> None:
    api, world = station
    recording_id = str(uuid.uuid4())
    first = Ed25519PrivateKey.generate()
    status, _ = await api.call(
        "POST", url(world), {"recording_id": recording_id, "verify_key": spki_pem(first)}
    )
    assert status == 201
    second = Ed25519PrivateKey.generate()
    other = spki_pem(second)
    status, body = await api.call(
        "POST", url(world), {"recording_id": recording_id, "verify_key": other}
    )
    assert (status, body["code"]) == (409, "CONFLICT"), body
    assert "another key" in body["message"]
    # The same key under a new recording id is a new backup.
    status, _ = await api.call(
        "POST", url(world), {"recording_id": str(uuid.uuid4()), "verify_key": other}
    )
    assert status == 201
    entries = await logged(api.client, world.hearing_id)
    assert [e["key_id"] for e in entries] == [key_id_of(first), key_id_of(second)]


ED25519_PEM = spki_pem(Ed25519PrivateKey.generate())
BAD_INPUT: list[tuple[str, dict[str, Any], str]] = [
    ("garbage key", {"verify_key": "not a key"}, "verify_key: not a PEM public key"),
    (
        "X25519 key",
        {"verify_key": spki_pem(X25519PrivateKey.generate())},
        "verify_key: not an Ed25519 public key",
    ),
    (
        "private key PEM",
        {
            "verify_key": Ed25519PrivateKey.generate()
            .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            .decode("ascii")
        },
        "verify_key: not a PEM public key",
    ),
    ("oversize key", {"verify_key": ED25519_PEM + " " * 1000}, "verify_key"),
    ("empty key", {"verify_key": ""}, "verify_key"),
    ("not a UUID", {"recording_id": "backup-1"}, "recording_id"),
    ("upper-case UUID", {"recording_id": str(uuid.uuid4()).upper()}, "recording_id"),
    ("UUID without dashes", {"recording_id": uuid.uuid4().hex}, "recording_id"),
]


@pytest.mark.parametrize(("name", "change", "message"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
async def test_bad_input_is_refused_and_nothing_logged(
    station: tuple[Api, CourtWorld], name: str, change: dict[str, Any], message: str
) -> None:
    api, world = station
    body = {"recording_id": str(uuid.uuid4()), "verify_key": ED25519_PEM, **change}
    status, out = await api.call("POST", url(world), body)
    assert (status, out["code"]) == (400, "BAD_FIELD"), out
    assert out["message"].startswith(message), out
    assert await logged(api.client, world.hearing_id) == []


async def test_a_closed_hearing_takes_no_backup(station: tuple[Api, CourtWorld]) -> None:
    api, world = station
    async with app_of(api.client)[SESSIONS].begin() as db:
        await db.execute(
            update(Hearing).where(Hearing.id == world.hearing_id).values(state=HearingState.CLOSED)
        )
    body = {"recording_id": str(uuid.uuid4()), "verify_key": ED25519_PEM}
    status, out = await api.call("POST", url(world), body)
    assert (status, out["code"]) == (409, "WRONG_STATE"), out
    assert "closed" in out["message"]
    assert await logged(api.client, world.hearing_id) == []


async def test_only_the_hearings_held_at_the_station(station: tuple[Api, CourtWorld]) -> None:
    api, world = station
    body = {"recording_id": str(uuid.uuid4()), "verify_key": ED25519_PEM}
    status, out = await api.call("POST", url(world, world.other_hearing_id), body)
    assert (status, out["code"]) == (404, "NOT_FOUND"), out
    assert await logged(api.client, world.other_hearing_id) == []


async def test_a_court_without_archive_keys_refuses(
    api: Api, app_client: TestClient[Any, Any], clock: FakeClock
) -> None:
    world = await seed_court(app_of(app_client)[SESSIONS], clock, "Court A", "a")
    await api.station_login(world.station_id, world.station_key)
    body = {"recording_id": str(uuid.uuid4()), "verify_key": ED25519_PEM}
    status, out = await api.call("POST", url(world), body)
    assert (status, out["code"]) == (409, "WRONG_STATE"), out
    assert "no archive key" in out["message"]
    assert await logged(app_client, world.hearing_id) == []


async def test_a_hearing_takes_a_bounded_number_of_backups(
    station: tuple[Api, CourtWorld],
) -> None:
    api, world = station
    first = {"recording_id": str(uuid.uuid4()), "verify_key": ED25519_PEM}
    status, _ = await api.call("POST", url(world), first)
    assert status == 201
    for _ in range(MAX_STATION_BACKUPS - 1):
        body = {"recording_id": str(uuid.uuid4()), "verify_key": ED25519_PEM}
        status, out = await api.call("POST", url(world), body)
        assert status == 201, out
    body = {"recording_id": str(uuid.uuid4()), "verify_key": ED25519_PEM}
    status, out = await api.call("POST", url(world), body)
    assert (status, out["code"]) == (409, "CONFLICT"), out
    assert f"{MAX_STATION_BACKUPS} station backup recordings" in out["message"]
    # A station reconnecting still re-registers one it made.
    status, _ = await api.call("POST", url(world), first)
    assert status == 200
    assert len(await logged(api.client, world.hearing_id)) == MAX_STATION_BACKUPS


# -- sending the sealed package ---------------------------------------------------------------


def _sealed_package(
    root: Path, recording_id: str, signer: Ed25519PrivateKey, archive_pub: Path, hearing_id: str
) -> Path:
    """A real sealed package (no media: a station that never got on the record)."""
    provider = StaticKeyProvider(SigningKey(signer), (load_archive_public_key(archive_pub),))
    writer = create_writer(
        root, provider, recording_id=RecordingId(recording_id), metadata={"hearing_id": hearing_id}
    )
    writer.note("nothing on the record")
    writer.seal()
    return root / recording_id


def _package_files(package: Path) -> list[tuple[str, Path]]:
    files = [(n, package / n) for n in ("recording.json", "keys.json")]
    files += [(f.name, f) for f in sorted((package / "segments").iterdir())]
    return [*files, ("manifest.json", package / "manifest.json")]


async def _send(api: Api, base: str, package: Path) -> None:
    files = await asyncio.to_thread(_package_files, package)
    for name, file in files:
        data = await asyncio.to_thread(file.read_bytes)
        status, body = await api.call(
            "PUT",
            f"{base}/files/{name}",
            raw=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert status == 204, (name, body)


async def _registered(api: Api, world: CourtWorld, signer: Ed25519PrivateKey) -> tuple[str, str]:
    recording_id = str(uuid.uuid4())
    body = {"recording_id": recording_id, "verify_key": spki_pem(signer)}
    status, _ = await api.call("POST", url(world), body)
    assert status == 201
    return recording_id, f"{url(world)}/{recording_id}"


async def _station_package(
    api: Api, world: CourtWorld, keys: dict[str, Any], tmp_path: Path
) -> tuple[str, str, Path]:
    """A backup registered by the station and sealed with its key: (id, its URL, package)."""
    signer = Ed25519PrivateKey.generate()
    recording_id, base = await _registered(api, world, signer)
    archive_pub = Path(keys["archive_public_key_files"][0])
    package = await asyncio.to_thread(
        _sealed_package, tmp_path / "station", recording_id, signer, archive_pub, world.hearing_id
    )
    return recording_id, base, package


async def test_the_station_sends_its_sealed_backup_and_the_court_keeps_it(
    station: tuple[Api, CourtWorld], keys: dict[str, Any], tmp_path: Path
) -> None:
    api, world = station
    recording_id, base, package = await _station_package(api, world, keys, tmp_path)
    status, listing = await api.call("GET", f"{base}/files")
    assert (status, listing["files"]) == (200, {})
    await _send(api, base, package)
    # What arrived, with each file's SHA-256: what a station resuming an upload compares.
    status, listing = await api.call("GET", f"{base}/files")
    assert status == 200
    sent = await asyncio.to_thread(_package_files, package)
    assert listing["files"] == {
        name: hashlib.sha256(await asyncio.to_thread(path.read_bytes)).hexdigest()
        for name, path in sent
    }
    status, receipt = await api.call("POST", f"{base}/receipt")
    assert status == 201, receipt
    expected = (await asyncio.to_thread(verify_package, package)).root_hash
    assert receipt == {
        "recording_id": recording_id,
        "received": True,
        "exit_code": 0,
        "root_hash": expected,
        "gaps": 0,
        "problems": [],
    }
    [entry] = await logged_kind(api.client, world.hearing_id, EventKind.STATION_BACKUP_RECEIVED)
    assert entry["recording_id"] == recording_id
    assert entry["root_hash"] == expected
    kept = tmp_path / "station-backups" / recording_id
    assert (await asyncio.to_thread(verify_package, kept)).root_hash == expected
    # Taken once, never written again.
    status, _ = await api.call(
        "PUT", f"{base}/files/keys.json", raw=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert status == 409
    status, _ = await api.call("POST", f"{base}/receipt")
    assert status == 409
    status, _ = await api.call("GET", f"{base}/files")
    assert status == 409


async def test_a_damaged_or_foreign_package_is_not_taken_and_can_be_sent_again(
    station: tuple[Api, CourtWorld], keys: dict[str, Any], tmp_path: Path
) -> None:
    api, world = station
    _, base, package = await _station_package(api, world, keys, tmp_path)
    segment = package / "segments" / "000000.cevr"
    good = await asyncio.to_thread(segment.read_bytes)
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0x40
    await _send(api, base, package)
    status, _ = await api.call(
        "PUT",
        f"{base}/files/000000.cevr",
        raw=bytes(damaged),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 204
    status, receipt = await api.call("POST", f"{base}/receipt")
    assert status == 422
    assert receipt["received"] is False
    assert receipt["exit_code"] == 1
    assert any("000000.cevr" in p for p in receipt["problems"]), receipt["problems"]
    assert await logged_kind(api.client, world.hearing_id, EventKind.STATION_BACKUP_RECEIVED) == []

    # Sent again whole: taken.
    status, _ = await api.call(
        "PUT",
        f"{base}/files/000000.cevr",
        raw=good,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 204
    status, receipt = await api.call("POST", f"{base}/receipt")
    assert status == 201, receipt

    # A package signed by another key than the one registered is not the station's.
    other_id, other_base = await _registered(api, world, Ed25519PrivateKey.generate())
    forged = await asyncio.to_thread(
        _sealed_package,
        tmp_path / "forger",
        other_id,
        Ed25519PrivateKey.generate(),
        Path(keys["archive_public_key_files"][0]),
        world.hearing_id,
    )
    await _send(api, other_base, forged)
    status, receipt = await api.call("POST", f"{other_base}/receipt")
    assert status == 422
    assert receipt["exit_code"] == 1


@pytest.mark.parametrize(
    ("name", "size", "expected"),
    [
        ("../recording.json", 10, 404),  # not a route: never a path outside the package
        ("recording.json.bak", 10, 400),
        ("segments", 10, 400),
        ("1.cevr", 10, 400),
        ("keys.json", 1024 * 1024 + 1, 413),
    ],
)
async def test_only_package_files_within_bounds_are_accepted(
    station: tuple[Api, CourtWorld], name: str, size: int, expected: int, tmp_path: Path
) -> None:
    api, world = station
    _, base = await _registered(api, world, Ed25519PrivateKey.generate())
    headers = {"X-CSRF-Token": api.csrf or "", "Content-Type": "application/octet-stream"}
    body = io.BytesIO(b"x" * size)  # streamed, as the station sends a file
    async with api.client.put(f"{base}/files/{name}", data=body, headers=headers) as resp:
        assert resp.status == expected
    incoming = tmp_path / "station-backups" / ".incoming"
    leftovers = await asyncio.to_thread(
        lambda: [p.name for p in incoming.rglob("*") if p.is_file()] if incoming.exists() else []
    )
    assert leftovers == []


async def test_an_unregistered_backup_is_not_found(station: tuple[Api, CourtWorld]) -> None:
    api, world = station
    base = f"{url(world)}/{uuid.uuid4()}"
    status, _ = await api.call(
        "PUT", f"{base}/files/keys.json", raw=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert status == 404
    status, _ = await api.call("POST", f"{base}/receipt")
    assert status == 404


async def logged_kind(client: TestClient[Any, Any], hearing_id: str, kind: EventKind) -> list[Any]:
    async with app_of(client)[SESSIONS]() as db:
        events = await EventLogRepository(db).list(hearing_id, kind=kind)
    return [e.data for e in events]


async def test_a_package_is_bounded_as_a_whole(
    station: tuple[Api, CourtWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each file within its own bound, but together more than a package may be: the court's
    # disk is not the station's to fill.
    monkeypatch.setattr(station_backups, "MAX_PACKAGE_BYTES", 5000)
    api, world = station
    _, base = await _registered(api, world, Ed25519PrivateKey.generate())
    octets = {"Content-Type": "application/octet-stream"}
    for name in ("000000.cevr", "000001.cevr"):
        status, _ = await api.call("PUT", f"{base}/files/{name}", raw=b"x" * 2000, headers=octets)
        assert status == 204
    status, body = await api.call(
        "PUT", f"{base}/files/000002.cevr", raw=b"x" * 2000, headers=octets
    )
    assert status == 413, body
    # Sending a file again replaces it: it does not count twice.
    status, _ = await api.call("PUT", f"{base}/files/000001.cevr", raw=b"y" * 2500, headers=octets)
    assert status == 204


def test_uploads_left_unfinished_for_long_are_dropped(tmp_path: Path) -> None:
    store = StationBackupStore(tmp_path)
    stale = tmp_path / ".incoming" / str(uuid.uuid4())
    fresh = tmp_path / ".incoming" / str(uuid.uuid4())
    for upload in (stale, fresh):
        (upload / "segments").mkdir(parents=True)
        (upload / "keys.json").write_text("{}")
    now = time.time()
    for path in (stale, stale / "segments", stale / "keys.json"):
        os.utime(path, (now - 31 * 86400, now - 31 * 86400))
    assert store.sweep_incoming(now) == [stale.name]
    assert not stale.exists()
    assert (fresh / "keys.json").is_file()
