"""Fixtures for the recordings tests: real keys, real encoded media, a media-driven clock."""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from recordings.ids import ParticipantId
from recordings.keys import ArchivePrivateKey, SigningKey, StaticKeyProvider
from recordings.selftest import MediaClock
from recordings.synthetic import EncodedFrame, encode_synthetic
from recordings.writer import RecordingWriter, WriterConfig
from tests.media_probe import probe

FFPROBE = shutil.which("ffprobe")


@dataclass
class Keys:
    signer: SigningKey
    archive: ArchivePrivateKey

    @property
    def provider(self) -> StaticKeyProvider:
        return StaticKeyProvider(self.signer, (self.archive.public_key,))


@pytest.fixture(scope="session")
def media() -> list[EncodedFrame]:
    """6 s of VP8 + Opus, RTP timestamps wrapping around 2**32 after ~1 s."""
    return encode_synthetic(6, width=320, height=240, rtp_offset=0xFFFFFFFF - 90_000)


@pytest.fixture(scope="session")
def session_keys() -> Keys:
    return Keys(SigningKey.generate(), ArchivePrivateKey.generate())


@pytest.fixture
def keys(session_keys: Keys) -> Keys:
    return session_keys


@pytest.fixture
def media_clock() -> MediaClock:
    return MediaClock()


def feed(
    writer: RecordingWriter,
    clock: MediaClock,
    frames: list[EncodedFrame],
    participant: str = "p1",
    *,
    time_offset: float = 0.0,
    kinds: tuple[str, ...] = ("video", "audio"),
) -> None:
    pid = ParticipantId(participant)
    for f in frames:
        if f.kind not in kinds:
            continue
        clock.offset = time_offset + f.time
        if f.kind == "video":
            writer.write_video(pid, f.data, f.rtp_timestamp, f.keyframe)
        else:
            writer.write_audio(pid, f.data, f.rtp_timestamp)


def record_package(
    path: Path,
    keys: Keys,
    frames: list[EncodedFrame],
    *,
    config: WriterConfig | None = None,
    seconds: float = 6.0,
) -> Path:
    clock = MediaClock()
    writer = RecordingWriter(path, keys.provider, clock=clock, config=config)
    writer.add_participant(ParticipantId("p1"), video=True, audio=True, audio_channels=1)
    feed(writer, clock, frames)
    clock.offset = seconds
    writer.seal()
    return path


@pytest.fixture(scope="session")
def sealed_template(
    tmp_path_factory: pytest.TempPathFactory, media: list[EncodedFrame], session_keys: Keys
) -> Path:
    """A sealed package with several segments (1 s each), to be copied and tampered with."""
    root = tmp_path_factory.mktemp("template")
    return record_package(
        root / "rec", session_keys, media, config=WriterConfig(segment_seconds=1.5)
    )


@pytest.fixture
def sealed(sealed_template: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "rec"
    shutil.copytree(sealed_template, dst)
    return dst


def ffprobe_json(path: Path) -> dict[str, Any]:
    """Streams and format, with each stream's packet count (tests.media_probe)."""
    return probe(path, "-count_packets")


def write_frames_file(path: Path, frames: list[EncodedFrame]) -> None:
    """A tiny binary format the crash-test subprocess reads back."""
    with path.open("wb") as f:
        for fr in frames:
            f.write(
                struct.pack(
                    ">BBIdI",
                    1 if fr.kind == "video" else 2,
                    int(fr.keyframe),
                    fr.rtp_timestamp,
                    fr.time,
                    len(fr.data),
                )
            )
            f.write(fr.data)
