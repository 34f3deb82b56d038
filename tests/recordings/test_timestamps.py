"""RFC 3161 time anchors against a real TSA (`openssl ts -reply` on 127.0.0.1, local_tsa.py).

Each tamper test fails on a verifier that ignores `timestamps/` (it would say INTACT)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import tsp as asn1_tsp

from recordings.cli import main
from recordings.ids import ParticipantId, RecordingId
from recordings.recovery import recover_recording
from recordings.selftest import MediaClock
from recordings.synthetic import EncodedFrame
from recordings.timestamps import TsaConfig, TsaTrust, decode_token, load_certificates
from recordings.verify import EXIT_OK, EXIT_TAMPERED, verify_package
from recordings.writer import RecordingWriter
from tests.recordings.conftest import Keys, feed
from tests.recordings.local_tsa import (
    OPENSSL,
    LocalTsa,
    hanging_tsa,
    local_tsa,
    refused_url,
)

WAIT = 60.0  # deadline for the anchorer thread; it normally finishes in well under a second


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTsa]:
    with local_tsa(tmp_path_factory.mktemp("tsa")) as t:
        yield t


@pytest.fixture(scope="module")
def other_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTsa]:
    """A TSA under a CA nobody configured."""
    with local_tsa(tmp_path_factory.mktemp("tsa2"), "Rogue TSA") as t:
        yield t


def trust(t: LocalTsa) -> TsaTrust:
    return TsaTrust(load_certificates([t.files.ca_cert]))


def record(
    path: Path,
    keys: Keys,
    frames: list[EncodedFrame],
    tsa: TsaConfig | None,
    *,
    recording_id: RecordingId | None = None,
    note: str = "",
) -> RecordingWriter:
    clock = MediaClock()
    writer = RecordingWriter(path, keys.provider, clock=clock, tsa=tsa, recording_id=recording_id)
    writer.add_participant(ParticipantId("p1"), video=True, audio=True, audio_channels=1)
    if note:
        writer.note(note)
    feed(writer, clock, frames)
    clock.offset = 6.0
    writer.seal()
    return writer


def stamped(path: Path, keys: Keys, frames: list[EncodedFrame], url: str, **kw: object) -> Path:
    writer = record(path, keys, frames, TsaConfig(url=url, every=1), **kw)  # type: ignore[arg-type]
    assert writer.anchorer is not None
    assert writer.anchorer.wait(WAIT), "anchorer did not finish"
    assert writer.anchorer.missing == []
    return path


@pytest.fixture(scope="module")
def stamped_template(
    tmp_path_factory: pytest.TempPathFactory,
    tsa: LocalTsa,
    media: list[EncodedFrame],
    session_keys: Keys,
) -> Path:
    return stamped(tmp_path_factory.mktemp("stamped") / "rec", session_keys, media, tsa.url)


@pytest.fixture
def package(stamped_template: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "rec"
    shutil.copytree(stamped_template, dst)
    return dst


def test_every_checkpoint_and_the_manifest_are_anchored(package: Path, tsa: LocalTsa) -> None:
    report = verify_package(package, tsa=trust(tsa), trust_embedded_key=True)
    assert report.exit_code == EXIT_OK, report.text()
    assert report.unknown_files == []  # the anchor files are the format's own (§2, §12)
    anchors = report.anchors
    assert anchors is not None
    assert anchors.checked
    names = {p.name for p in (package / "timestamps").iterdir()}
    assert {"manifest.tsr", "policy.json", "cp-000000.tsr"} <= names
    assert "missing.json" not in names  # nothing was given up on
    cps = [a for a in anchors.anchors if a.part == "checkpoint"]
    assert len(cps) == report.checkpoints  # every=1: every checkpoint has a token
    assert any(a.part == "manifest" for a in anchors.anchors)
    assert anchors.undeclared_missing == []
    assert anchors.declared_missing == []
    # Each stamped point reports when it is proven to have existed (the TSA's genTime).
    assert anchors.existed_by[-1]["part"] == "manifest"
    assert all(e["existed_by"] for e in anchors.existed_by)
    assert "existed by" in report.text()


def test_cli_checks_tokens_with_tsa_ca(
    package: Path, tsa: LocalTsa, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "verify",
                str(package),
                "--json",
                "--trust-embedded-key",
                "--tsa-ca",
                str(tsa.files.ca_cert),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["time_anchors"]["checked"] is True
    assert len(out["time_anchors"]["tokens"]) == out["checkpoints"] + 1
    # Without TSA certificates the tokens are matched but not trusted: said so, not INTACT-silent.
    assert main(["verify", str(package), "--trust-embedded-key"]) == 0
    assert "not checked: pass the TSA's CA certificate" in capsys.readouterr().out


def test_openssl_verifies_tokens_as_documented(package: Path, tsa: LocalTsa) -> None:
    """The format document's recipe for a third party: openssl ts -verify, no code of ours."""
    assert OPENSSL is not None
    ok = subprocess.run(
        [OPENSSL, "ts", "-verify", "-data", str(package / "manifest.json"), "-in",
         str(package / "timestamps" / "manifest.tsr"), "-CAfile", str(tsa.files.ca_cert)],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert "Verification: OK" in ok.stdout, ok.stdout + ok.stderr
    # A checkpoint token stamps SHA-256 of the CHECKPOINT record body (payload || signature).
    seg = (package / "segments" / "000000.cevr").read_bytes()
    pos = 132
    body = b""
    while pos < len(seg):
        rtype, body_len = seg[pos], int.from_bytes(seg[pos + 16 : pos + 20], "big")
        if rtype == 3:
            body = seg[pos + 20 : pos + 20 + body_len]
            break
        pos += 20 + body_len
    assert json.loads(body[:-64])["seq"] == 0
    ok = subprocess.run(
        [OPENSSL, "ts", "-verify", "-digest", hashlib.sha256(body).hexdigest(), "-in",
         str(package / "timestamps" / "cp-000000.tsr"), "-CAfile", str(tsa.files.ca_cert)],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert "Verification: OK" in ok.stdout, ok.stdout + ok.stderr


def test_token_of_another_package_is_tampering(
    package: Path, tmp_path: Path, tsa: LocalTsa, media: list[EncodedFrame], keys: Keys
) -> None:
    other = stamped(tmp_path / "other", keys, media[:50], tsa.url)
    shutil.copy(other / "timestamps" / "manifest.tsr", package / "timestamps" / "manifest.tsr")
    report = verify_package(package, tsa=trust(tsa), trust_embedded_key=True)
    assert report.exit_code == EXIT_TAMPERED, report.text()
    assert "timestamps/manifest.tsr" in report.text()
    assert "message imprint differs" in report.text()


def test_altered_token_is_tampering(package: Path, tsa: LocalTsa) -> None:
    tsr = package / "timestamps" / "cp-000001.tsr"
    raw = bytearray(tsr.read_bytes())
    raw[-5] ^= 0x01  # inside the CMS signature
    tsr.write_bytes(bytes(raw))
    report = verify_package(package, tsa=trust(tsa), trust_embedded_key=True)
    assert report.exit_code == EXIT_TAMPERED, report.text()
    assert "timestamps/cp-000001.tsr" in report.text()


def test_token_of_an_untrusted_tsa_is_tampering(
    tmp_path: Path, tsa: LocalTsa, other_tsa: LocalTsa, media: list[EncodedFrame], keys: Keys
) -> None:
    pkg = stamped(tmp_path / "rogue", keys, media[:50], other_tsa.url)
    report = verify_package(pkg, tsa=trust(tsa), trust_embedded_key=True)
    assert report.exit_code == EXIT_TAMPERED, report.text()
    assert "does not verify against the trusted TSA certificates" in report.text()
    assert verify_package(pkg, tsa=trust(other_tsa), trust_embedded_key=True).exit_code == EXIT_OK


def test_key_holder_rewriting_history_is_caught(
    package: Path, tmp_path: Path, tsa: LocalTsa, media: list[EncodedFrame], keys: Keys
) -> None:
    """The threat anchors exist for: whoever holds the signing key re-records the hearing
    (same recording id, same key, different content) and keeps the original tokens."""
    original = json.loads((package / "recording.json").read_bytes())
    forged = tmp_path / "forged"
    record(forged, keys, media, None, recording_id=RecordingId(original["recording_id"]), note="x")
    assert (
        verify_package(forged, trust_embedded_key=True).exit_code == EXIT_OK
    )  # signatures alone cannot tell
    shutil.copytree(package / "timestamps", forged / "timestamps")
    report = verify_package(forged, tsa=trust(tsa), trust_embedded_key=True)
    assert report.exit_code == EXIT_TAMPERED, report.text()
    # Every re-signed checkpoint and the manifest differ from what the TSA stamped.
    bad = {p.location.file for p in report.problems if "message imprint differs" in p.message}
    assert {"timestamps/cp-000000.tsr", "timestamps/manifest.tsr"} <= bad


def test_token_for_a_checkpoint_the_package_lacks_is_tampering(
    package: Path, tsa: LocalTsa
) -> None:
    """A token naming a checkpoint the package does not have (cut-back package) is reported."""
    tdir = package / "timestamps"
    shutil.copy(tdir / "cp-000000.tsr", tdir / "cp-000999.tsr")
    report = verify_package(package, tsa=trust(tsa), trust_embedded_key=True)
    assert report.exit_code == EXIT_TAMPERED, report.text()
    assert "does not contain" in report.text()


def test_deleted_token_is_reported_missing(package: Path, tsa: LocalTsa) -> None:
    (package / "timestamps" / "cp-000001.tsr").unlink()
    report = verify_package(package, tsa=trust(tsa), trust_embedded_key=True)
    assert "time anchor timestamps/cp-000001.tsr missing and not declared" in report.text()


def test_tsa_refusing_connections_never_stops_the_recording(
    tmp_path: Path, media: list[EncodedFrame], keys: Keys
) -> None:
    cfg = TsaConfig(url=refused_url(), every=1, timeout=2.0, attempts=2, retry_delay=0.01)
    writer = record(tmp_path / "rec", keys, media, cfg)
    assert writer.sealed
    assert writer.anchorer is not None
    assert writer.anchorer.wait(WAIT)
    missing = json.loads((tmp_path / "rec" / "timestamps" / "missing.json").read_bytes())
    parts = [m["part"] for m in missing["missing"]]
    assert "manifest" in parts
    assert "checkpoint" in parts
    assert all("unreachable" in m["reason"] or "superseded" in m["reason"]
               for m in missing["missing"])  # fmt: skip
    report = verify_package(tmp_path / "rec", trust_embedded_key=True)
    assert report.exit_code == EXIT_OK, report.text()  # integrity stands; time is not proven
    assert "time anchor of the manifest declared missing" in report.text()


def test_hanging_tsa_never_blocks_the_recording(
    tmp_path: Path, media: list[EncodedFrame], keys: Keys
) -> None:
    with hanging_tsa() as url:
        cfg = TsaConfig(url=url, every=1, timeout=0.5, attempts=2, retry_delay=0.01)
        writer = record(tmp_path / "rec", keys, media, cfg)
        # Sealed while the TSA still has not answered a single request.
        assert writer.sealed
        assert (tmp_path / "rec" / "manifest.json").exists()
        assert writer.anchorer is not None
        assert not writer.anchorer.wait(0)
        assert writer.anchorer.wait(WAIT)
    missing = writer.anchorer.missing
    assert any(m["part"] == "manifest" and "timed out" in m["reason"] for m in missing), missing
    assert verify_package(tmp_path / "rec", trust_embedded_key=True).exit_code == EXIT_OK


def test_anchoring_does_not_slow_the_write_path(
    tmp_path: Path, media: list[EncodedFrame], keys: Keys
) -> None:
    """A checkpoint with a hanging TSA returns at once: the request runs on another thread."""
    with hanging_tsa() as url:
        clock = MediaClock()
        cfg = TsaConfig(url=url, every=1, timeout=5.0, attempts=1)
        writer = RecordingWriter(tmp_path / "rec", keys.provider, clock=clock, tsa=cfg)
        t = time.perf_counter()
        for _ in range(5):
            writer.checkpoint()
        assert time.perf_counter() - t < 2.0  # 5 requests would take 25 s if they blocked
        writer.abort()
        assert writer.anchorer is not None
        assert writer.anchorer.wait(WAIT)


def test_tokens_with_an_unsorted_certificate_set_still_verify(package: Path, tsa: LocalTsa) -> None:
    """OpenSSL's TSA writes the SignedData certificates unsorted about half the time; the
    strict parser refuses that unless decode_token re-sorts the (unsigned) set. Both orders of
    the same token must verify."""
    raw = (package / "timestamps" / "manifest.tsr").read_bytes()
    resp = asn1_tsp.TimeStampResp.load(raw)
    signed = resp["time_stamp_token"]["content"]
    certs = [c.dump() for c in signed["certificates"]]
    assert len(certs) == 2  # the TSA's certificate and its CA (openssl.cnf `certs`)
    verifier = trust(tsa).verifier()
    digest = hashlib.sha256((package / "manifest.json").read_bytes()).digest()
    for order in (certs, certs[::-1]):
        signed["certificates"] = asn1_cms.CertificateSet(
            [asn1_cms.CertificateChoices.load(c) for c in order]
        )
        assert verifier.verify(decode_token(resp.dump(force=True)), digest)


def test_installed_command_passes_tsa_ca(package: Path, tsa: LocalTsa, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "shared-court"
    args = [
        str(exe),
        "verify",
        str(package),
        "--trust-embedded-key",
        "--tsa-ca",
        str(tsa.files.ca_cert),
    ]
    ok = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "time-stamp tokens verify" in ok.stdout
    garbage = tmp_path / "not-a-cert.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    bad = subprocess.run(
        [*args[:-1], str(garbage)], capture_output=True, text=True, check=False, timeout=120
    )
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert "not a certificate" in bad.stderr


def test_bench_smoke_with_anchors() -> None:
    """bench/recording.py --tsa (docs/benchmarks.md) still runs: a TSA child process, every
    token stored, the anchored package verifies with its tokens checked."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, str(root / "bench" / "recording.py"), "--smoke", "--json", "--tsa",
         "--repeat", "1"],
        cwd=root, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["tokens_per_recording"] >= 2  # checkpoint 0 and the manifest
    assert result["verify_tokens"] >= 2
    assert result["verify_anchored_mb_per_s"] > 0


def test_every_nth_checkpoint_is_stamped(
    tmp_path: Path, tsa: LocalTsa, media: list[EncodedFrame], keys: Keys
) -> None:
    writer = record(tmp_path / "rec", keys, media, TsaConfig(url=tsa.url, every=2))
    assert writer.anchorer is not None
    assert writer.anchorer.wait(WAIT)
    report = verify_package(tmp_path / "rec", tsa=trust(tsa), trust_embedded_key=True)
    assert report.exit_code == EXIT_OK, report.text()
    assert report.anchors is not None
    seqs = sorted(a.seq for a in report.anchors.anchors if a.seq is not None)
    assert seqs == list(range(0, report.checkpoints, 2))
    assert report.anchors.undeclared_missing == []
    assert not [w for w in report.warnings if "time" in w], report.warnings


def test_recovery_anchors_the_manifest_it_signs(
    package: Path, session_keys: Keys, tsa: LocalTsa
) -> None:
    """A stamped recording that lost its manifest (and the manifest's token): recovery signs a
    new manifest and, given the court's TSA, anchors it as the writer would have."""
    (package / "manifest.json").unlink()
    (package / "timestamps" / "manifest.tsr").unlink()
    recover_recording(package, session_keys.signer, tsa=TsaConfig(url=tsa.url, every=1))
    report = verify_package(package, [session_keys.signer.verify_key], tsa=trust(tsa))
    assert report.exit_code == EXIT_OK, report.text()
    assert report.anchors is not None
    assert "manifest" in {a.part for a in report.anchors.anchors}
    assert report.anchors.undeclared_missing == []


def test_a_crashed_anchored_recording_is_anchored_when_recovered(
    tmp_path: Path, session_keys: Keys, media: list[EncodedFrame], tsa: LocalTsa
) -> None:
    """The writer dies before sealing: recovery's checkpoint and manifest get their tokens,
    so the recovered package has no anchor missing."""
    config = TsaConfig(url=tsa.url, every=1)
    clock = MediaClock()
    writer = RecordingWriter(tmp_path / "rec", session_keys.provider, clock=clock, tsa=config)
    writer.add_participant(ParticipantId("p1"), video=True, audio=True, audio_channels=1)
    feed(writer, clock, media)
    assert writer.anchorer is not None
    writer.anchorer.close()  # the process is gone: nothing more comes from this writer
    assert writer.anchorer.wait(WAIT)
    recover_recording(tmp_path / "rec", session_keys.signer, tsa=config)
    report = verify_package(tmp_path / "rec", [session_keys.signer.verify_key], tsa=trust(tsa))
    assert report.exit_code == 2, report.text()  # intact, with the crash declared
    assert report.anchors is not None
    parts = {a.part for a in report.anchors.anchors}
    assert parts == {"checkpoint", "manifest"}, report.text()
    assert report.anchors.undeclared_missing == [], report.text()
