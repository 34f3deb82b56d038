"""Issue 11, point 2: recovery never signs what it cannot authenticate.

The attacker can write the recordings directory between a crash and the next start, and holds
no key. They edit a crashed package made by the real writer, on disk, the way they could:
append clear EVENT records after the last checkpoint, or cut the package back to an older
checkpoint and append a forged `paused RECESS`. Recovery then runs with the court's key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from recordings import container as cv
from recordings.cli import main
from recordings.clock import iso, unix_us
from recordings.export import export_package
from recordings.ids import ParticipantId
from recordings.recovery import recover_recording
from recordings.selftest import MediaClock
from recordings.synthetic import EncodedFrame
from recordings.verify import PackageScan, expected_incident, verify_package
from recordings.writer import RecordingWriter
from tests.recordings.conftest import Keys, feed


@dataclass
class Crashed:
    path: Path
    clock: MediaClock


def _crash(path: Path, keys: Keys, media: list[EncodedFrame], seconds: float) -> Crashed:
    clock = MediaClock()
    w = RecordingWriter(path, keys.provider, clock=clock)
    w.add_participant(ParticipantId("p1"), video=True, audio=True, audio_channels=1)
    feed(w, clock, [f for f in media if f.time < seconds])
    w.abort()  # like kill -9: no END, no manifest
    return Crashed(path, clock)


def _records(seg: Path) -> list[cv.ScannedRecord]:
    return cv.scan_segment(seg.read_bytes(), seg.name, bytes(32)).records


def _append_event(seg: Path, event: dict[str, object], time_us: int) -> None:
    """What an attacker without keys can write: a well-framed EVENT record with the next
    counter, its JSON clear, followed by 16 bytes standing in for a tag they cannot compute."""
    counter = len(_records(seg))
    body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    if seg.read_bytes()[4:6] != b"\x00\x01":  # format 1 had no tag on clear records
        body += os.urandom(16)
    header = cv.RecordHeader(cv.RecordType.EVENT, 0, 0, counter, time_us, len(body)).pack()
    with seg.open("ab") as f:
        f.write(header + body)


def _recover_later(crashed: Crashed, keys: Keys, minutes: float) -> None:
    later = MediaClock(start=crashed.clock.now() + timedelta(minutes=minutes))
    recover_recording(crashed.path, keys.signer, clock=later)


def test_events_appended_after_the_last_checkpoint_never_become_signed_facts(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame]
) -> None:
    crashed = _crash(tmp_path / "rec", keys, media, 3.0)
    seg = sorted((crashed.path / "segments").glob("*.cevr"))[-1]
    last = _records(seg)[-1].header.time_us
    t = iso(crashed.clock.now())
    _append_event(
        seg,
        {
            "v": 1,
            "type": "participant_joined",
            "time": t,
            "participant": "ghost",
            "stream_id": 9,
            "tracks": ["video"],
        },
        last + 100_000,
    )
    _append_event(seg, {"v": 1, "type": "note", "time": t, "text": "I confess"}, last + 200_000)
    _recover_later(crashed, keys, 10)

    report = verify_package(crashed.path, [keys.signer.verify_key])
    assert report.exit_code == 2, report.text()
    text = json.dumps(report.timeline)
    assert "ghost" not in text
    assert "I confess" not in text
    incident = next(e for e in report.timeline if e["type"] == "incident")
    assert incident["tail_records"] >= 2
    # The declared gap starts where the last writer checkpoint vouches, not at a forged record.
    assert incident["from"] == incident["last_checkpoint"]
    assert any(g["type"] == "incident" and g["from"] == incident["from"] for g in report.gaps)

    # A key holder tells the forgery: the tail's forged event does not authenticate.
    result = export_package(
        crashed.path, keys.archive, tmp_path / "out", public_keys=[keys.signer.verify_key]
    )
    assert result.exit_code == 1
    assert [x.what for x in result.left_out] == ["timeline events"]
    forged = result.left_out[0].location
    assert (forged.file, forged.record) == (f"segments/{seg.name}", len(_records(seg)) - 2)
    assert result.files  # the authenticated media is still exported
    timeline = json.loads((tmp_path / "out" / "timeline.json").read_text())
    assert "ghost" not in json.dumps(timeline)


def _cut_back(crashed: Crashed) -> tuple[Path, int]:
    """Truncate the package right after its second checkpoint (dropping later segments);
    returns the segment and that checkpoint's time_us."""
    segs = sorted((crashed.path / "segments").glob("*.cevr"))
    cps = [
        (seg, rec)
        for seg in segs
        for rec in _records(seg)
        if rec.header.type is cv.RecordType.CHECKPOINT
    ]
    seg, cp = cps[1]
    with seg.open("r+b") as f:
        f.truncate(cp.offset + cv.RECORD_HEADER_LEN + cp.header.body_len)
    for later in segs[segs.index(seg) + 1 :]:
        later.unlink()
    return seg, cp.header.time_us


def test_a_cut_back_package_cannot_pass_lost_minutes_off_as_a_recess(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame]
) -> None:
    crashed = _crash(tmp_path / "rec", keys, media, 6.0)
    seg, cp_us = _cut_back(crashed)
    recess = {"v": 1, "type": "paused", "time": "x", "reason": "RECESS", "note": "lunch"}
    _append_event(seg, recess, cp_us + 500_000)
    _recover_later(crashed, keys, 20)
    report = verify_package(crashed.path, [keys.signer.verify_key])
    assert report.exit_code == 2, report.text()
    assert not [e for e in report.timeline if e["type"] == "paused"]
    incident = next(e for e in report.timeline if e["type"] == "incident")
    # The whole lost span, from the older checkpoint to the restart, is a declared crash gap.
    assert incident["from"] == incident["last_checkpoint"]
    assert (
        unix_us(crashed.clock.start.fromisoformat(incident["from"].replace("Z", "+00:00"))) == cp_us
    )


def test_records_stamped_past_the_checkpoint_cadence_are_reported(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame]
) -> None:
    crashed = _crash(tmp_path / "rec", keys, media, 6.0)
    seg, cp_us = _cut_back(crashed)
    recess = {"v": 1, "type": "paused", "time": "x", "reason": "RECESS", "note": "lunch"}
    _append_event(seg, recess, cp_us + 60_000_000)  # "a minute later": no writer does that
    _recover_later(crashed, keys, 20)
    report = verify_package(crashed.path, [keys.signer.verify_key])
    assert report.exit_code == 1, report.text()
    problem = report.problems[0]
    assert "after the last checkpoint before it" in problem.message
    assert problem.location.file == f"segments/{seg.name}"


def test_one_bad_byte_in_the_tail_does_not_block_the_export(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    """Point 3: before, export stopped with exit 3 and left only a hidden partial file."""
    crashed = _crash(tmp_path / "rec", keys, media, 3.5)  # media after the last checkpoint
    seg = sorted((crashed.path / "segments").glob("*.cevr"))[-1]
    records = _records(seg)
    last_cp = max(i for i, r in enumerate(records) if r.header.type is cv.RecordType.CHECKPOINT)
    bad = next((r for r in records[last_cp:] if r.header.type is cv.RecordType.MEDIA), None)
    assert bad is not None, "the crash left no media after the last checkpoint"
    data = bytearray(seg.read_bytes())
    data[bad.offset + cv.RECORD_HEADER_LEN + 10] ^= 0x40
    seg.write_bytes(bytes(data))
    _recover_later(crashed, keys, 1)
    (tmp_path / "a.key").write_bytes(keys.archive.private_pem())
    (tmp_path / "s.pub").write_text(keys.signer.verify_key.pem())
    out = tmp_path / "out"
    rc = main(
        [
            *("export", str(crashed.path), "--key-file", str(tmp_path / "a.key")),
            *("-o", str(out), "--public-key", str(tmp_path / "s.pub")),
        ]
    )
    assert rc == 1
    stdout = capsys.readouterr().out
    where = f"segments/{seg.name}, segment {int(seg.name[:6])}, record {bad.header.counter}"
    assert f"left out: stream 1 (participant p1, part 0), from {where}" in stdout
    assert (out / "p1.webm").stat().st_size > 0
    assert not list(out.glob(".*"))


def test_verify_recomputes_the_crash_incident(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point 7: `records_kept`, `last_checkpoint` and the tail are checked, not just shown (a
    recovery that miscounts, even with the right key, is caught)."""
    crashed = _crash(tmp_path / "rec", keys, media, 3.0)

    def miscounted(scan: PackageScan) -> dict[str, object]:
        fields = expected_incident(scan)
        return {**fields, "records_kept": int(str(fields["records_kept"])) - 1}

    monkeypatch.setattr("recordings.recovery.expected_incident", miscounted)
    _recover_later(crashed, keys, 1)
    report = verify_package(crashed.path, [keys.signer.verify_key])
    assert report.exit_code == 1
    assert "recovery incident states records_kept" in report.problems[0].message


def test_the_writers_own_tail_events_are_exported_as_authenticated_by_the_data_key(
    tmp_path: Path, keys: Keys, media: list[EncodedFrame]
) -> None:
    clock = MediaClock()
    w = RecordingWriter(tmp_path / "rec", keys.provider, clock=clock)
    w.add_participant(ParticipantId("p1"), video=True, audio=True, audio_channels=1)
    feed(w, clock, [f for f in media if f.time < 1.0])
    w.checkpoint()
    w.note("said just before the crash")
    w.abort()
    recover_recording(tmp_path / "rec", keys.signer)
    report = verify_package(tmp_path / "rec", [keys.signer.verify_key])
    assert report.exit_code == 2, report.text()
    assert "said just before" not in json.dumps(report.timeline)  # not a signed fact
    result = export_package(
        tmp_path / "rec", keys.archive, tmp_path / "out", public_keys=[keys.signer.verify_key]
    )
    assert (result.exit_code, result.left_out) == (2, [])
    timeline = json.loads((tmp_path / "out" / "timeline.json").read_text())
    assert [e.get("text") for e in timeline["tail_events"]] == ["said just before the crash"]
    assert "said just before" not in json.dumps(timeline["events"])
