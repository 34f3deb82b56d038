"""Whose address a request counts against: the peer's, or the client a trusted proxy names."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from server.web.appkeys import CONFIG
from server.web.http import client_address
from tests.server.conftest import make_config


def _request(tmp_path: Path, remote: str, forwarded: str | None, trusted: list[str]) -> web.Request:
    app = web.Application()
    app[CONFIG] = make_config(tmp_path, server={"trusted_proxies": trusted})
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (remote, 40000) if name == "peername" else default
    )
    return make_mocked_request("GET", "/ws", headers=headers, app=app, transport=transport)


def test_a_client_cannot_name_its_own_address(tmp_path: Path) -> None:
    assert client_address(_request(tmp_path, "203.0.113.9", "198.51.100.1", [])) == "203.0.113.9"
    untrusted = _request(tmp_path, "203.0.113.9", "198.51.100.1", ["10.0.0.0/24"])
    assert client_address(untrusted) == "203.0.113.9"


def test_behind_the_proxy_and_a_relaying_node_the_client_counts(tmp_path: Path) -> None:
    trusted = ["10.0.0.0/24"]
    # nginx (10.0.0.2) added the client; node 10.0.0.11 relayed the socket to this node.
    relayed = _request(tmp_path, "10.0.0.11", "198.51.100.7, 10.0.0.2", trusted)
    assert client_address(relayed) == "198.51.100.7"
    # A client's own forged entry stays to the left of what the proxy saw and is not believed.
    forged = _request(tmp_path, "10.0.0.2", "1.2.3.4, 198.51.100.7", trusted)
    assert client_address(forged) == "198.51.100.7"
    assert client_address(_request(tmp_path, "10.0.0.2", None, trusted)) == "10.0.0.2"
