"""Tampering anywhere must make verify exit 1 and name the place."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from recordings import container as cv
from recordings.cli import main
from recordings.errors import Location, UnsupportedVersionError
from recordings.synthetic import EncodedFrame
from recordings.verify import verify_package
from recordings.writer import WriterConfig
from tests.recordings.conftest import Keys, record_package


def _segments(pkg: Path) -> list[Path]:
    return sorted((pkg / "segments").glob("*.cevr"))


def _records(seg: Path) -> list[cv.ScannedRecord]:
    return cv.scan_segment(seg.read_bytes(), seg.name, bytes(32)).records


def _first(seg: Path, rtype: cv.RecordType) -> cv.ScannedRecord:
    return next(r for r in _records(seg) if r.header.type is rtype)


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _body_offset(rec: cv.ScannedRecord) -> int:
    return rec.offset + cv.RECORD_HEADER_LEN


def flip_segment_header(pkg: Path) -> None:
    _flip(_segments(pkg)[1], 40)  # inside the nonce prefix / salt


def flip_record_header(pkg: Path) -> None:
    seg = _segments(pkg)[1]
    _flip(seg, _first(seg, cv.RecordType.MEDIA).offset + 10)  # time field


def flip_ciphertext(pkg: Path) -> None:
    seg = _segments(pkg)[1]
    _flip(seg, _body_offset(_first(seg, cv.RecordType.MEDIA)) + 100)


def flip_tag(pkg: Path) -> None:
    seg = _segments(pkg)[1]
    rec = _first(seg, cv.RecordType.MEDIA)
    _flip(seg, _body_offset(rec) + rec.header.body_len - 3)


def flip_checkpoint_payload(pkg: Path) -> None:
    seg = _segments(pkg)[1]
    _flip(seg, _body_offset(_first(seg, cv.RecordType.CHECKPOINT)) + 30)


def flip_checkpoint_signature(pkg: Path) -> None:
    seg = _segments(pkg)[1]
    rec = _first(seg, cv.RecordType.CHECKPOINT)
    _flip(seg, _body_offset(rec) + rec.header.body_len - 5)


def edit_event_record(pkg: Path) -> None:
    seg = _segments(pkg)[0]
    rec = _first(seg, cv.RecordType.EVENT)
    data = seg.read_bytes()
    start = _body_offset(rec)
    body = bytes(data[start : start + rec.header.body_len])
    edited = body.replace(b"recording_started", b"recording_stopped")
    assert edited != body
    seg.write_bytes(data[:start] + edited + data[start + len(body) :])


def _swap_records(pkg: Path, i: int, j: int) -> None:
    seg = _segments(pkg)[1]
    data = seg.read_bytes()
    recs = _records(seg)
    a, b = recs[i], recs[j]
    ra = data[a.offset : a.offset + cv.RECORD_HEADER_LEN + a.header.body_len]
    rb = data[b.offset : b.offset + cv.RECORD_HEADER_LEN + b.header.body_len]
    assert b.offset == a.offset + len(ra)
    seg.write_bytes(data[: a.offset] + rb + ra + data[b.offset + len(rb) :])


def reorder_records(pkg: Path) -> None:
    _swap_records(pkg, 0, 1)


def _media_indices(pkg: Path) -> list[int]:
    return [
        i for i, r in enumerate(_records(_segments(pkg)[1])) if r.header.type is cv.RecordType.MEDIA
    ]


def drop_record(pkg: Path) -> None:
    seg = _segments(pkg)[1]
    data = seg.read_bytes()
    rec = _records(seg)[_media_indices(pkg)[0]]
    end = rec.offset + cv.RECORD_HEADER_LEN + rec.header.body_len
    seg.write_bytes(data[: rec.offset] + data[end:])


def duplicate_record(pkg: Path) -> None:
    seg = _segments(pkg)[1]
    data = seg.read_bytes()
    rec = _records(seg)[_media_indices(pkg)[0]]
    end = rec.offset + cv.RECORD_HEADER_LEN + rec.header.body_len
    seg.write_bytes(data[:end] + data[rec.offset : end] + data[end:])


def truncate_at_record_boundary(pkg: Path) -> None:
    seg = _segments(pkg)[-1]
    recs = _records(seg)
    seg.write_bytes(seg.read_bytes()[: recs[-1].offset])  # drop END


def truncate_mid_record(pkg: Path) -> None:
    seg = _segments(pkg)[1]
    rec = _records(seg)[_media_indices(pkg)[0]]
    seg.write_bytes(seg.read_bytes()[: rec.offset + 50])


def drop_last_segment(pkg: Path) -> None:
    _segments(pkg)[-1].unlink()


def drop_middle_segment(pkg: Path) -> None:
    _segments(pkg)[1].unlink()


def swap_segments(pkg: Path) -> None:
    a, b = _segments(pkg)[1], _segments(pkg)[2]
    tmp = a.with_suffix(".x")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def append_after_end(pkg: Path) -> None:
    seg = _segments(pkg)[0]
    seg.write_bytes(seg.read_bytes() + b"\x00" * 30)


def flip_manifest_payload(pkg: Path) -> None:
    env = json.loads((pkg / "manifest.json").read_text())
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["timeline"][0]["time"] = "2020-01-01T00:00:00.000000Z"
    env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    (pkg / "manifest.json").write_text(json.dumps(env))


def flip_manifest_signature(pkg: Path) -> None:
    env = json.loads((pkg / "manifest.json").read_text())
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[5] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    (pkg / "manifest.json").write_text(json.dumps(env))


def delete_manifest(pkg: Path) -> None:
    (pkg / "manifest.json").unlink()


def edit_recording_json(pkg: Path) -> None:
    p = pkg / "recording.json"
    p.write_bytes(p.read_bytes().replace(b'"metadata":{}', b'"metadata":{"x":"y"}'))


TAMPERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "segment header": (flip_segment_header, "segments/000001.cevr"),
    "record header": (flip_record_header, "segments/000001.cevr"),
    "ciphertext": (flip_ciphertext, "segments/000001.cevr"),
    "gcm tag": (flip_tag, "segments/000001.cevr"),
    "checkpoint payload": (flip_checkpoint_payload, "segments/000001.cevr"),
    "checkpoint signature": (flip_checkpoint_signature, "segments/000001.cevr"),
    "timeline event record": (edit_event_record, "segments/000000.cevr"),
    "reorder records": (reorder_records, "segments/000001.cevr"),
    "drop record": (drop_record, "segments/000001.cevr"),
    "duplicate record": (duplicate_record, "segments/000001.cevr"),
    "truncate at boundary": (truncate_at_record_boundary, "segments/"),
    "truncate mid-record": (truncate_mid_record, "segments/000001.cevr"),
    "drop last segment": (drop_last_segment, "manifest.json"),
    "drop middle segment": (drop_middle_segment, "segments/000002.cevr"),
    "swap segments": (swap_segments, "segments/000001.cevr"),
    "data after END": (append_after_end, "segments/000000.cevr"),
    "manifest timeline": (flip_manifest_payload, "manifest.json"),
    "manifest signature": (flip_manifest_signature, "manifest.json"),
    "manifest removed": (delete_manifest, "manifest.json"),
    "recording.json": (edit_recording_json, "segments/000000.cevr"),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampering_is_detected_and_located(sealed: Path, name: str) -> None:
    assert verify_package(sealed, trust_embedded_key=True).exit_code == 0
    tamper, where = TAMPERS[name]
    tamper(sealed)
    report = verify_package(sealed, trust_embedded_key=True)
    assert report.exit_code == 1, report.text()
    loc = report.problems[0].location
    assert loc.file is not None, report.text()
    assert loc.file.startswith(where), report.text()
    if where.startswith("segments/0"):
        assert loc.segment is not None
        assert loc.offset is not None
    assert "PROBLEM at" in report.text()


@pytest.fixture(scope="module")
def other_package(
    tmp_path_factory: pytest.TempPathFactory, media: list[EncodedFrame], session_keys: Keys
) -> Path:
    return record_package(
        tmp_path_factory.mktemp("other") / "rec",
        session_keys,
        media[:120],
        config=WriterConfig(segment_seconds=1.0),
        seconds=2.0,
    )


def test_segment_from_another_recording(sealed: Path, other_package: Path) -> None:
    shutil.copy(other_package / "segments" / "000001.cevr", sealed / "segments" / "000001.cevr")
    report = verify_package(sealed, trust_embedded_key=True)
    assert report.exit_code == 1
    assert report.problems[0].location.file == "segments/000001.cevr"
    assert "another recording" in report.problems[0].message


def test_manifest_from_another_recording(sealed: Path, other_package: Path) -> None:
    shutil.copy(other_package / "manifest.json", sealed / "manifest.json")
    report = verify_package(sealed, trust_embedded_key=True)
    assert report.exit_code == 1
    assert report.problems[0].location.file == "manifest.json"


def test_bit_flip_sweep_over_a_segment(sealed: Path) -> None:
    seg = _segments(sealed)[1]
    original = seg.read_bytes()
    step = max(1, len(original) // 150)
    for offset in range(0, len(original), step):
        data = bytearray(original)
        data[offset] ^= 0x80
        seg.write_bytes(bytes(data))
        report = verify_package(sealed, trust_embedded_key=True)
        assert report.exit_code == 1, f"flip at {offset} not detected"
        assert report.problems[0].location != Location()
    seg.write_bytes(original)
    assert verify_package(sealed, trust_embedded_key=True).exit_code == 0


def test_unknown_segment_version_is_refused(sealed: Path) -> None:
    seg = _segments(sealed)[0]
    data = bytearray(seg.read_bytes())
    data[4:6] = (3).to_bytes(2, "big")
    seg.write_bytes(bytes(data))
    with pytest.raises(UnsupportedVersionError):
        cv.SegmentHeader.parse(bytes(data), Location(file="x"))
    report = verify_package(sealed, trust_embedded_key=True)
    assert report.exit_code == 1
    assert "unknown segment format version 3 (this verifier reads 1, 2)" in (
        report.problems[0].message
    )


def test_unknown_json_version_is_refused(sealed: Path) -> None:
    p = sealed / "recording.json"
    p.write_bytes(p.read_bytes().replace(b'"v":1', b'"v":2'))
    report = verify_package(sealed, trust_embedded_key=True)
    assert report.exit_code == 1
    assert "unknown version 2" in report.problems[0].message


def test_usage_and_io_errors_exit_3(tmp_path: Path) -> None:
    assert main(["verify", str(tmp_path / "missing")]) == 3
    assert main(["verify"]) == 3
    assert main(["nonsense"]) == 3


def test_a_removed_end_record_is_named_without_a_reversed_range(sealed: Path) -> None:
    """Issue 11 point 7: the message said "records 10..9" when nothing followed the last
    checkpoint."""
    seg = _segments(sealed)[-1]
    records = cv.scan_segment(seg.read_bytes(), seg.name, bytes(32)).records
    assert [r.header.type for r in records[-2:]] == [cv.RecordType.CHECKPOINT, cv.RecordType.END]
    with seg.open("r+b") as f:
        f.truncate(records[-1].offset)  # cut the END record off
    report = verify_package(sealed, trust_embedded_key=True)
    assert report.exit_code == 1
    message = report.problems[0].message
    assert f"records after record {len(records) - 2} (the last checkpoint) were removed" in message
    assert ".." not in message


def test_stream_id_zero_is_kept_for_records_of_no_stream(sealed: Path) -> None:
    seg = _segments(sealed)[0]
    data = bytearray(seg.read_bytes())
    first = cv.scan_segment(bytes(data), seg.name, bytes(32)).records[0]
    assert first.header.type is cv.RecordType.EVENT
    data[first.offset + 2 : first.offset + 4] = (3).to_bytes(2, "big")
    seg.write_bytes(bytes(data))
    report = verify_package(sealed, trust_embedded_key=True)
    assert report.exit_code == 1
    assert report.problems[0].message.startswith("EVENT record with stream id 3")
    assert (report.problems[0].location.segment, report.problems[0].location.record) == (0, 0)
