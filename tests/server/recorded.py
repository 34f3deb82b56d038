"""A hearing's evidence package made through the real writer and remuxer from synthetic media,
for the playback tests (API and browser): participants start at different times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from recordings import KeyProvider, PauseReason, RecordingWriter
from recordings.ids import ParticipantId, RecordingId
from recordings.selftest import MediaClock
from recordings.synthetic import encode_synthetic


def record_hearing(
    path: Path,
    keys: KeyProvider,
    hearing_id: str,
    participants: Sequence[tuple[str, float]],
    *,
    seconds: float = 3.0,
    start: datetime | None = None,
    seal: bool = True,
    pause: tuple[float, float] | None = None,
) -> RecordingWriter:
    """Record `seconds` of test-pattern video and tone for each (participant id, start offset
    in seconds) into `path` (named by the recording id, as the server does), with `hearing_id`
    in the header metadata; sealed unless told. `pause` = (from, to) in seconds: a recess (the
    media fed meanwhile is dropped, as the writer does while paused)."""
    frames = encode_synthetic(
        seconds, width=320, height=240, fps=15, bitrate=300_000, keyframe_interval=15
    )
    clock = MediaClock(start=start or datetime.now(UTC))
    writer = RecordingWriter(
        path,
        keys,
        recording_id=RecordingId(path.name),
        clock=clock,
        metadata={"hearing_id": hearing_id},
    )
    feed = sorted(
        (
            (offset + f.time, n, pid, f)
            for pid, offset in participants
            for n, f in enumerate(frames)
        ),
        key=lambda item: (item[0], item[1], item[2]),
    )
    declared: set[str] = set()
    for at, _, pid, f in feed:
        clock.offset = at
        if pause is not None and writer.paused is None and pause[0] <= at < pause[1]:
            writer.pause(PauseReason.RECESS, "休庭")
        elif pause is not None and writer.paused is not None and at >= pause[1]:
            writer.resume()
        if pid not in declared:
            writer.add_participant(ParticipantId(pid), video=True, audio=True, audio_channels=1)
            declared.add(pid)
        if f.kind == "video":
            writer.write_video(ParticipantId(pid), f.data, f.rtp_timestamp, f.keyframe)
        else:
            writer.write_audio(ParticipantId(pid), f.data, f.rtp_timestamp)
    clock.offset = seconds + max(offset for _, offset in participants)
    if seal:
        writer.seal()
    return writer
