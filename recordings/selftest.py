"""`selftest`: record synthetic media through the real remuxer, writer and sealing, then verify.

It proves on the target machine that the whole path works (encoders only make the test input;
the recording path remuxes). Fresh keys are written into the output directory (private keys
0600) so the result can be exported afterwards: `python -m recordings export DIR/recording
--key-file DIR/keys/archive.key -o DIR/export`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .ids import ParticipantId
from .keys import StaticKeyProvider, keygen, load_archive_public_key, load_signing_key
from .synthetic import encode_synthetic
from .verify import Report, verify_package
from .writer import RecordingWriter, WriterConfig


@dataclass
class MediaClock:
    """A `Clock` that follows the media being fed (selftest runs faster than real time)."""

    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    offset: float = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return 1000.0 + self.offset


@dataclass
class SelftestResult:
    recording: Path
    keys_dir: Path
    report: Report


def run_selftest(out: Path, seconds: float = 5.0) -> SelftestResult:
    """Encode, record, seal and verify `seconds` of synthetic media in `out/`.

    Raises FileExistsError if `out/recording` or keys already exist, RecordingError on failure.
    """
    out.mkdir(parents=True, exist_ok=True)
    files = keygen(out / "keys")
    keys = StaticKeyProvider(
        load_signing_key(files.signing_private), (load_archive_public_key(files.archive_public),)
    )
    clock = MediaClock()
    frames = encode_synthetic(seconds, rtp_offset=0xFFFFFFFF - 90_000)  # wraps after ~1 s
    writer = RecordingWriter(
        out / "recording",
        keys,
        clock=clock,
        config=WriterConfig(),
        metadata={"purpose": "selftest"},
    )
    pid = ParticipantId("selftest-participant")
    writer.add_participant(pid, video=True, audio=True, audio_channels=1)
    for f in frames:
        clock.offset = f.time
        if f.kind == "video":
            writer.write_video(pid, f.data, f.rtp_timestamp, f.keyframe)
        else:
            writer.write_audio(pid, f.data, f.rtp_timestamp)
    clock.offset = seconds
    writer.seal()
    return SelftestResult(
        out / "recording", out / "keys", verify_package(out / "recording", [keys.signer.verify_key])
    )
