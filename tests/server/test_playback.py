"""Playback of sealed recordings for presiding staff through the REST API: verification
against the server's signing key, the signed timeline, per-participant streams aligned by their
signed origins, range requests, the audit entry, refusals, and expiry of decrypted copies."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from recordings import (
    ArchivePrivateKey,
    SigningKey,
    StaticKeyProvider,
    keygen,
    load_archive_public_key,
    load_signing_key,
)
from recordings.clock import iso
from server.app import create_app
from server.storage.db import upgrade_async
from server.web.appkeys import PLAYBACK, SESSIONS
from tests.conftest import FakeClock
from tests.recordings.conftest import ffprobe_json
from tests.server.conftest import Api, World, app_of, make_config, seed_court
from tests.server.recorded import record_hearing

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
OFFSET_S = 1.5  # the defendant's media starts this much after the plaintiff's


class Keys:
    def __init__(self, root: Path) -> None:
        files = keygen(root)
        self.signing = files.signing_private
        self.archive_public = files.archive_public
        self.playback_key = ArchivePrivateKey.generate()
        self.playback_file = root / "playback.key"
        self.playback_file.write_bytes(self.playback_key.private_pem())
        self.playback_file.chmod(0o600)
        self._signer = load_signing_key(self.signing)
        self._archive = load_archive_public_key(self.archive_public)

    def provider(self, *, playback: bool = True, signer: SigningKey | None = None) -> Any:
        recipients = [self._archive]
        if playback:
            recipients.append(self.playback_key.public_key)
        return StaticKeyProvider(signer or self._signer, tuple(recipients))


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path / "keys")


@pytest.fixture
async def client(
    tmp_path: Path, aiohttp_client: AiohttpClient, clock: FakeClock, keys: Keys
) -> TestClient[Any, Any]:
    config = make_config(
        tmp_path,
        recording={
            "signing_key_file": str(keys.signing),
            "archive_public_key_files": [str(keys.archive_public)],
            "playback_key_file": str(keys.playback_file),
            "playback_cache_ttl_s": 600,
        },
    )
    await upgrade_async(config.database_url)
    return await aiohttp_client(create_app(config, clock=clock))


@pytest.fixture
async def world(client: TestClient[Any, Any], clock: FakeClock) -> World:
    sessions = app_of(client)[SESSIONS]
    return World(
        own=await seed_court(sessions, clock, "Court A", "a"),
        other=await seed_court(sessions, clock, "Court B", "b"),
    )


@pytest.fixture
def api(client: TestClient[Any, Any]) -> Api:
    return Api(client)


async def record(tmp_path: Path, world: World, provider: Any, *, seal: bool = True) -> str:
    """A two-party recording of the seeded hearing, in the server's recordings directory."""
    rid = "0b0e7c52-3c1d-4d5e-9f00-" + os.urandom(6).hex()
    w = world.own
    await asyncio.to_thread(
        record_hearing,
        tmp_path / "recordings" / rid,
        provider,
        w.hearing_id,
        [(w.plaintiff_id, 0.0), (w.defendant_id, OFFSET_S)],
        start=START,
        seal=seal,
    )
    return rid


def base(world: World, rid: str) -> str:
    return f"/api/hearings/{world.own.hearing_id}/recordings/{rid}/playback"


async def prepared(api: Api, world: World, rid: str) -> dict[str, Any]:
    """Start preparing and poll until it is no longer "preparing"."""
    status, body = await api.call("POST", base(world, rid))
    assert status == 202, body
    async with asyncio.timeout(60):
        while body["status"] == "preparing":
            await asyncio.sleep(0.05)  # polling the server's preparation state
            status, body = await api.call("GET", base(world, rid))
            assert status == 200, body
    result: dict[str, Any] = body
    return result


async def test_presiding_staff_play_a_verified_recording(
    api: Api, world: World, keys: Keys, tmp_path: Path, client: TestClient[Any, Any]
) -> None:
    rid = await record(tmp_path, world, keys.provider())
    await api.login(world.own.users["clerk"])

    status, listed = await api.call("GET", f"/api/hearings/{world.own.hearing_id}/recordings")
    assert status == 200
    assert [(r["id"], r["state"], r["playable"]) for r in listed] == [(rid, "complete", True)]

    body = await prepared(api, world, rid)
    assert body["status"] == "ready", body
    assert body["media_unavailable"] is None
    v = body["verification"]
    assert (v["exit_code"], v["status"], v["problems"]) == (0, "complete", [])
    assert len(v["root_hash"]) == 64

    types = [e["type"] for e in body["timeline"]]
    assert types[0] == "recording_started"
    assert types[-1] == "recording_stopped"
    assert types.count("participant_joined") == 2
    assert types.count("media_started") == 2

    streams = {s["participant_id"]: s for s in body["streams"]}
    plaintiff, defendant = streams[world.own.plaintiff_id], streams[world.own.defendant_id]
    assert (plaintiff["display_name"], plaintiff["role"]) == ("plaintiff", "plaintiff")
    assert plaintiff["tracks"] == ["video", "audio"]
    # the streams line up by their signed origins: the defendant's starts 1.5 s later
    assert plaintiff["origin"] == iso(START)
    assert defendant["origin"] == iso(START + timedelta(seconds=OFFSET_S))

    # the media: a seekable WebM (VP8 + Opus) served with range requests, never cached
    async with client.get(plaintiff["url"]) as resp:
        assert resp.status == 200
        assert resp.content_type == "video/webm"
        assert resp.headers["Cache-Control"] == "no-store"
        data = await resp.read()
    webm = tmp_path / "copy.webm"
    await asyncio.to_thread(webm.write_bytes, data)
    probed: dict[str, Any] = await asyncio.to_thread(ffprobe_json, webm)
    assert sorted(st["codec_name"] for st in probed["streams"]) == ["opus", "vp8"]
    assert 2.5 < float(probed["format"]["duration"]) < 3.5, probed
    async with client.get(plaintiff["url"], headers={"Range": "bytes=100-199"}) as resp:
        assert resp.status == 206
        assert await resp.read() == data[100:200]

    # the decrypted copy is private to the server's user
    cache = tmp_path / "playback" / rid
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700

    # who opened the evidence, and when, is on the hearing's log
    status, log = await api.call("GET", f"/api/hearings/{world.own.hearing_id}/events")
    reviewed = [e for e in log["events"] if e["kind"] == "recording.reviewed"]
    assert [(e["data"]["recording_id"], e["actor"].startswith("user:")) for e in reviewed] == [
        (rid, True)
    ]


async def test_other_roles_hearings_and_courts_cannot_reach_a_recording(
    api: Api, world: World, keys: Keys, tmp_path: Path, client: TestClient[Any, Any]
) -> None:
    rid = await record(tmp_path, world, keys.provider())
    await api.login(world.own.users["judge"])
    body = await prepared(api, world, rid)
    stream_url = body["streams"][0]["url"]

    # the same recording under another hearing of the same court: not found
    other = f"/api/hearings/{world.own.other_hearing_id}/recordings/{rid}/playback"
    assert (await api.call("POST", other))[0] == 404
    assert (await api.call("GET", other))[0] == 404
    # a stream that does not exist, or is not a number
    for bad in ("99", "x", "1" * 12):
        assert (await api.call("GET", stream_url.rsplit("/", 1)[0] + "/" + bad))[0] == 404
    # another court's judge, a party, the station: never the media
    for who in ("other judge", "party", "station"):
        client.session.cookie_jar.clear()
        if who == "other judge":
            await api.login(world.other.users["judge"])
        elif who == "party":
            await api.redeem(world.own.plaintiff_token)
        else:
            await api.station_login(world.own.station_id, world.own.station_key)
        async with client.get(stream_url) as resp:
            assert resp.status in (403, 404), (who, resp.status)
            assert resp.content_type == "application/json"


async def test_a_tampered_recording_shows_its_problem_and_is_not_decrypted(
    api: Api, world: World, keys: Keys, tmp_path: Path
) -> None:
    rid = await record(tmp_path, world, keys.provider())
    segment = tmp_path / "recordings" / rid / "segments" / "000000.cevr"
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x01
    segment.write_bytes(bytes(data))
    await api.login(world.own.users["judge"])
    body = await prepared(api, world, rid)
    assert body["status"] == "ready"
    assert body["verification"]["exit_code"] == 1
    assert body["verification"]["problems"][0]["file"] == "segments/000000.cevr"
    assert body["media_unavailable"] == "VERIFICATION_FAILED"
    assert body["streams"] == []
    assert not any((tmp_path / "playback" / rid).glob("*.webm"))


async def test_a_recording_signed_by_another_key_fails_verification(
    api: Api, world: World, keys: Keys, tmp_path: Path
) -> None:
    rid = await record(tmp_path, world, keys.provider(signer=SigningKey.generate()))
    await api.login(world.own.users["judge"])
    body = await prepared(api, world, rid)
    assert body["verification"]["exit_code"] == 1
    assert body["media_unavailable"] == "VERIFICATION_FAILED"


async def test_without_the_playback_stanza_the_timeline_shows_but_not_the_media(
    api: Api, world: World, keys: Keys, tmp_path: Path
) -> None:
    rid = await record(tmp_path, world, keys.provider(playback=False))
    await api.login(world.own.users["mediator"])
    _status, listed = await api.call("GET", f"/api/hearings/{world.own.hearing_id}/recordings")
    assert [r["playable"] for r in listed] == [False]
    body = await prepared(api, world, rid)
    assert body["verification"]["exit_code"] == 0
    assert body["media_unavailable"] == "NOT_A_RECIPIENT"
    assert "participant_joined" in [e["type"] for e in body["timeline"]]
    assert body["streams"] == []


async def test_a_recording_still_being_written_is_refused(
    api: Api, world: World, keys: Keys, tmp_path: Path
) -> None:
    rid = await record(tmp_path, world, keys.provider(), seal=False)
    await api.login(world.own.users["judge"])
    status, listed = await api.call("GET", f"/api/hearings/{world.own.hearing_id}/recordings")
    assert [r["state"] for r in listed] == ["recording"]
    status, body = await api.call("POST", base(world, rid))
    assert (status, body["code"]) == (409, "CONFLICT")


async def test_unused_decrypted_copies_are_deleted(
    api: Api,
    world: World,
    keys: Keys,
    tmp_path: Path,
    clock: FakeClock,
    client: TestClient[Any, Any],
) -> None:
    rid = await record(tmp_path, world, keys.provider())
    await api.login(world.own.users["judge"])
    await prepared(api, world, rid)
    service = app_of(client)[PLAYBACK]
    clock.advance(599)
    assert await service.sweep() == []
    assert (await api.call("GET", base(world, rid)))[0] == 200  # used: the clock restarts
    clock.advance(599)
    assert await service.sweep() == []
    clock.advance(2)
    assert await service.sweep() == [rid]
    assert not (tmp_path / "playback" / rid).exists()
    assert (await api.call("GET", base(world, rid)))[0] == 404
    # a copy left by an earlier run (a crash) is removed at start-up
    stale = tmp_path / "playback" / "stale"
    stale.mkdir()
    (stale / "x.webm").write_bytes(b"plaintext")
    await service.start()
    assert not stale.exists()
