"""Record -> seal -> verify -> export -> ffprobe, with real files, crypto and ffmpeg."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from recordings.cli import main
from recordings.clock import iso
from recordings.export import export_package
from recordings.ids import ParticipantId
from recordings.keys import ArchivePrivateKey, StaticKeyProvider
from recordings.remux import ParticipantRemuxer, RtpUnwrapper, vp8_keyframe_size
from recordings.selftest import MediaClock
from recordings.synthetic import EncodedFrame
from recordings.verify import verify_package
from recordings.writer import RecordingWriter, WriterConfig
from tests.recordings.conftest import Keys, feed, ffprobe_json


def _stream(info: dict[str, object], codec: str) -> dict[str, object]:
    streams = info["streams"]
    assert isinstance(streams, list)
    matches = [s for s in streams if s["codec_name"] == codec]
    assert len(matches) == 1, streams
    stream: dict[str, object] = matches[0]
    return stream


def test_round_trip_cli(
    sealed: Path, keys: Keys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "signing.pub").write_bytes(_pub_pem(keys))
    (tmp_path / "archive.key").write_bytes(keys.archive.private_pem())
    assert (
        main(["verify", str(sealed), "--json", "--public-key", str(tmp_path / "signing.pub")]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "INTACT"
    assert report["segments"] >= 4  # 6 s in 1.5 s segments
    out = tmp_path / "export"
    assert (
        main(
            [
                "export",
                *(str(sealed), "--key-file", str(tmp_path / "archive.key"), "-o", str(out)),
                *("--public-key", str(tmp_path / "signing.pub")),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "100%" in captured.err
    info = ffprobe_json(out / "p1.webm")
    video, audio = _stream(info, "vp8"), _stream(info, "opus")
    assert (video["width"], video["height"]) == (320, 240)
    assert int(str(video["nb_read_packets"])) == 180  # every frame of 6 s at 30 fps
    assert int(str(audio["nb_read_packets"])) >= 299
    fmt = info["format"]
    assert isinstance(fmt, dict)
    assert abs(float(fmt["duration"]) - 6.0) < 0.15
    timeline = json.loads((out / "timeline.json").read_text())
    types = [e["type"] for e in timeline["events"]]
    assert types[0] == "recording_started"
    assert types[-1] == "recording_stopped"
    assert "participant_joined" in types


def _pub_pem(keys: Keys) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(keys.signer.verify_key.raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_wrong_pinned_key_is_rejected(sealed: Path, tmp_path: Path) -> None:
    from recordings.keys import keygen

    files = keygen(tmp_path / "other")
    assert main(["verify", str(sealed), "--public-key", str(files.signing_public)]) == 1


def test_audio_only_video_only_and_late_keyframe(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame], media_clock: MediaClock
) -> None:
    writer = RecordingWriter(tmp_path / "rec", keys.provider, clock=media_clock)
    writer.add_participant(ParticipantId("audio"), video=False, audio=True, audio_channels=1)
    writer.add_participant(ParticipantId("video"), video=True, audio=False)
    # The video participant's stream starts with 10 non-keyframes: they must be dropped.
    video = [f for f in media if f.kind == "video"]
    key_at = next(i for i, f in enumerate(video) if f.keyframe and i > 0)
    for i, f in enumerate(media):
        media_clock.offset = f.time
        if f.kind == "audio":
            writer.write_audio(ParticipantId("audio"), f.data, f.rtp_timestamp)
        elif video.index(f) >= 10 or i < 0:
            writer.write_video(ParticipantId("video"), f.data, f.rtp_timestamp, f.keyframe)
    media_clock.offset = 6.0
    writer.seal()
    assert verify_package(tmp_path / "rec", trust_embedded_key=True).exit_code == 0
    res = export_package(tmp_path / "rec", keys.archive, tmp_path / "out", trust_embedded_key=True)
    assert sorted(p.name for p in res.files) == ["audio.webm", "video.webm"]
    a = ffprobe_json(tmp_path / "out" / "audio.webm")
    assert _stream(a, "opus")["codec_name"] == "opus"
    assert len(a["streams"]) == 1
    v = ffprobe_json(tmp_path / "out" / "video.webm")
    vs = _stream(v, "vp8")
    first_kept = key_at if key_at >= 10 else 60
    expected = len(video) - first_kept
    assert int(str(vs["nb_read_packets"])) == expected
    # each stream's media time 0 is on the signed timeline: the first frame it kept
    origins = {s.participant: s.origin for s in res.streams}
    audio_first = next(f for f in media if f.kind == "audio")
    assert origins == {
        "audio": iso(media_clock.start + timedelta(seconds=audio_first.time)),
        "video": iso(media_clock.start + timedelta(seconds=video[first_kept].time)),
    }


def test_two_recipients_each_can_export(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame], media_clock: MediaClock
) -> None:
    escrow = ArchivePrivateKey.generate()
    provider = StaticKeyProvider(keys.signer, (keys.archive.public_key, escrow.public_key))
    writer = RecordingWriter(tmp_path / "rec", provider, clock=media_clock)
    writer.add_participant(ParticipantId("p1"), video=True, audio=True, audio_channels=1)
    feed(writer, media_clock, media[:60])
    writer.seal()
    for i, key in enumerate((keys.archive, escrow)):
        res = export_package(tmp_path / "rec", key, tmp_path / f"out{i}", trust_embedded_key=True)
        assert res.files
        assert res.files[0].stat().st_size > 1000
    other = ArchivePrivateKey.generate()
    from recordings.errors import KeyFileError

    with pytest.raises(KeyFileError):
        export_package(tmp_path / "rec", other, tmp_path / "out3", trust_embedded_key=True)


def test_sender_reports_align_audio_and_video() -> None:
    chunks: list[bytes] = []
    r = ParticipantRemuxer(chunks.append, video=False, audio=True, audio_channels=1)
    # SR says RTP 48000 is wall 1000.0; a frame with RTP 96000 is then at wall 1001.0,
    # whatever its arrival time.
    r.sender_report("audio", 48_000, 1000.0)
    assert r.audio_clock.wall(96_000, arrival_wall=5000.0) == pytest.approx(1001.0)
    unwrap = RtpUnwrapper()
    assert [unwrap.extend(t) for t in (0xFFFFFF00, 0x10, 0x20, 0xFFFFFFF0)] == [
        0xFFFFFF00,
        0x1_0000_0010,
        0x1_0000_0020,
        0xFFFFFFF0,
    ]


def test_vp8_size_parsing(media: list[EncodedFrame]) -> None:
    key = next(f for f in media if f.kind == "video" and f.keyframe)
    inter = next(f for f in media if f.kind == "video" and not f.keyframe)
    assert vp8_keyframe_size(key.data) == (320, 240)
    assert vp8_keyframe_size(inter.data) is None


def test_writer_config_segments_rotate(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame], media_clock: MediaClock
) -> None:
    writer = RecordingWriter(
        tmp_path / "rec",
        keys.provider,
        clock=media_clock,
        config=WriterConfig(segment_seconds=2.0, checkpoint_interval=1.0),
    )
    writer.add_participant(ParticipantId("p1"), video=True, audio=True, audio_channels=1)
    feed(writer, media_clock, media)
    manifest = writer.seal()
    assert len(manifest["segments"]) == 3
    assert manifest["counts"]["checkpoints"] >= 6
    assert verify_package(tmp_path / "rec", trust_embedded_key=True).exit_code == 0
