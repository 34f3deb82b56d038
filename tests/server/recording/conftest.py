"""Fixtures for the recording-bridge tests: real aiortc peers (tests/server/sfu's `Client`)
through a real Router under uvloop, real archive/signing key files, and package checks (verify,
export, ffprobe) run off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvloop

from recordings import KeyProvider, export_package, keygen, load_archive_private_key
from recordings.verify import Report, verify_package
from server.recording import load_keys
from server.sfu import aiortc_hooks

# The SFU suite's real aiortc clients and router, shared (pytest takes fixtures imported here).
from tests.media_probe import probe
from tests.server.sfu.conftest import Client, make_client, router  # noqa: F401

_HERE = Path(__file__).parent


@pytest.fixture(scope="session", autouse=True)
def _loopback_only() -> None:
    aiortc_hooks.install_host_addresses(["127.0.0.1"])


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    """Run these tests under uvloop, the SFU's production loop (only items in this folder)."""
    if _HERE in Path(str(item.path)).parents:
        return {"uvloop": uvloop.new_event_loop}
    return None


@dataclass(frozen=True)
class KeyFiles:
    signing_key: Path
    archive_public: Path
    archive_private: Path
    keys: KeyProvider  # loaded from the files, outside the event loop


@pytest.fixture
def key_files(tmp_path: Path) -> KeyFiles:
    files = keygen(tmp_path / "keys")
    return KeyFiles(
        files.signing_private,
        files.archive_public,
        files.archive_private,
        load_keys(files.signing_private, [files.archive_public]),
    )


async def verify(path: Path) -> Report:
    return await asyncio.to_thread(verify_package, path, trust_embedded_key=True)


def _export_and_probe(package: Path, key_files: KeyFiles, out: Path) -> dict[str, Any]:
    key = load_archive_private_key(key_files.archive_private)
    result = export_package(package, key, out, trust_embedded_key=True)
    probes: dict[str, Any] = {}
    for file in result.files:
        probes[file.stem] = ffprobe(file)
    return probes


async def export_and_probe(package: Path, key_files: KeyFiles, out: Path) -> dict[str, Any]:
    """Export with the archive private key; ffprobe JSON (streams, format, packets) per file
    stem (the participant id)."""
    return await asyncio.to_thread(_export_and_probe, package, key_files, out)


def ffprobe(path: Path) -> dict[str, Any]:
    """Streams, format and each packet's stream and pts (tests.media_probe)."""
    return probe(path, "-show_entries", "packet=stream_index,pts_time")


def codecs(probe: dict[str, Any]) -> set[str]:
    return {str(s["codec_name"]) for s in probe["streams"]}


def packet_times(probe: dict[str, Any], codec: str) -> list[float]:
    index = next(int(s["index"]) for s in probe["streams"] if s["codec_name"] == codec)
    return sorted(float(p["pts_time"]) for p in probe["packets"] if int(p["stream_index"]) == index)
