"""TURN REST credentials, checked against the scheme coturn implements."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.auth.turn import IceServers, turn_credentials
from server.config import ConfigError, load_config


def test_credentials_follow_the_turn_rest_scheme() -> None:
    expires = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    username, password = turn_credentials("north-wind", "participant-1", expires)
    assert username == f"{int(expires.timestamp())}:participant-1"
    expected = hmac.new(b"north-wind", username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(password) == expected


def test_ice_list_mints_credentials_only_for_turn_rest_entries(tmp_path: Path) -> None:
    secret = tmp_path / "turn-secret"
    secret.write_text("north-wind\n")
    config = load_config(
        environ={},
        overrides={
            "ice": {
                "servers": [
                    {"urls": ["stun:turn.example.cn:3478"]},
                    {"urls": ["turn:turn.example.cn:3478?transport=udp"], "turn_rest": True},
                ],
                "turn_secret_file": str(secret),
                "turn_credential_ttl_s": 3600,
            }
        },
    )
    ice = IceServers(config.ice)
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    stun, turn = ice.for_participant("p-1", now)
    assert stun == {"urls": ["stun:turn.example.cn:3478"]}
    assert turn["username"] == f"{int(now.timestamp()) + 3600}:p-1"
    assert turn["credential"] == turn_credentials("north-wind", "p-1", now.replace(hour=10))[1]
    assert "north-wind" not in repr(ice)


def test_turn_rest_without_secret_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigError, match="turn_secret_file is unset"):
        load_config(
            environ={}, overrides={"ice": {"servers": [{"urls": ["turn:x"], "turn_rest": True}]}}
        )


def test_unknown_ice_server_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(
            environ={},
            overrides={"ice": {"servers": [{"urls": ["turn:x"], "password": "static"}]}},
        )
