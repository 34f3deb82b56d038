"""`shared-court station enrol-code` and `station disable` on the server (issue 14), in real
subprocesses against a real database: a code is printed once and stored only hashed; a
disabled station is refused at login with the reason, and enabled again it logs in."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from server.clock import SystemClock
from server.config import load_config
from server.hearings.station_enrolment import normalise_code
from server.storage.db import create_engine, create_sessionmaker
from server.storage.models import StationEnrolmentCode
from tests.server.test_cli import run


def _add_station(tmp_path: Path) -> dict[str, Any]:
    result = run("station", "add", "青山村", "--court", "某某法院", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    added: dict[str, Any] = json.loads(result.stdout)
    return added


async def _stored_codes(tmp_path: Path) -> list[StationEnrolmentCode]:
    config = load_config(environ={}, overrides={"data_dir": str(tmp_path)})
    engine = create_engine(config.database_url)
    try:
        async with create_sessionmaker(engine)() as db:
            return list((await db.scalars(select(StationEnrolmentCode))).all())
    finally:
        await engine.dispose()


def test_enrol_code_is_printed_once_and_stored_hashed(tmp_path: Path) -> None:
    station = _add_station(tmp_path)
    by_name = run(
        "station", "enrol-code", "青山村", "--court", "某某法院", "--data-dir", str(tmp_path)
    )
    assert by_name.returncode == 0, by_name.stderr
    issued = json.loads(by_name.stdout)
    assert issued["station_id"] == station["station_id"]
    assert len(normalise_code(issued["code"])) == 12
    (stored,) = asyncio.run(_stored_codes(tmp_path))
    assert stored.code_hash == hashlib.sha256(normalise_code(issued["code"]).encode()).digest()
    assert issued["code"] not in json.dumps(
        {"hash": stored.code_hash.hex(), "by": stored.created_by}
    )
    assert stored.expires_at > SystemClock().now()
    unknown = run(
        "station", "enrol-code", "无此站", "--court", "某某法院", "--data-dir", str(tmp_path)
    )
    assert unknown.returncode == 1
    assert "no station" in unknown.stderr


def test_disable_then_enable(tmp_path: Path) -> None:
    station = _add_station(tmp_path)
    common = ["--court", "某某法院", "--data-dir", str(tmp_path)]
    off = run("station", "disable", station["station_id"], *common)
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["disabled"] is True
    on = run("station", "disable", "青山村", "--enable", *common)
    assert on.returncode == 0, on.stderr
    assert json.loads(on.stdout)["disabled"] is False
