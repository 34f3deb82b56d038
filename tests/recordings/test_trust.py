"""Trust (issue 11, point 5): verify never says INTACT for a signer nobody trusted.

An attacker who can write packages makes their own with the real writer and a signing key of
their own; before, `verify` without `--public-key` said INTACT with only a warning.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recordings.cli import main
from recordings.keys import SigningKey, fingerprint
from recordings.synthetic import EncodedFrame
from recordings.verify import verify_package
from tests.recordings.conftest import Keys, record_package


@pytest.fixture
def forged(tmp_path: Path, keys: Keys, media: list[EncodedFrame]) -> Path:
    """A package made by the real writer, signed by a stranger's key (wrapped for the court's
    real archive key, which is public)."""
    stranger = Keys(SigningKey.generate(), keys.archive)
    return record_package(tmp_path / "forged", stranger, media[:60], seconds=1.0)


def _pem(tmp_path: Path, keys: Keys, name: str = "court.pub") -> Path:
    path = tmp_path / name
    path.write_text(keys.signer.verify_key.pem())
    return path


def test_a_stranger_signed_package_is_not_intact_without_trusted_keys(
    forged: Path, tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    report = verify_package(forged)
    assert report.exit_code == 1
    assert report.verdict == "UNTRUSTED SIGNER"
    signer = json.loads((forged / "recording.json").read_text())["signing_key"]["key_id"]
    assert signer in report.problems[0].message
    assert "--public-key" in report.problems[0].message
    assert main(["verify", str(forged)]) == 1
    out = capsys.readouterr().out
    assert "UNTRUSTED SIGNER" in out
    assert "--trust-embedded-key" in out
    # Against the court's key: refused outright.
    assert main(["verify", "--public-key", str(_pem(tmp_path, keys)), str(forged)]) == 1
    assert "not among the trusted public keys" in capsys.readouterr().out


def test_trusted_keys_come_from_the_command_line_or_a_trust_directory(
    sealed: Path, tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert verify_package(sealed).verdict == "UNTRUSTED SIGNER"
    assert verify_package(sealed, [keys.signer.verify_key]).exit_code == 0
    pem = _pem(tmp_path, keys)
    assert main(["verify", str(sealed), "--public-key", str(pem)]) == 0
    other = tmp_path / "other.pub"
    other.write_text(SigningKey.generate().verify_key.pem())
    # Repeatable: any one of the keys given may have signed.
    assert main(["verify", "--public-key", str(other), "--public-key", str(pem), str(sealed)]) == 0
    trust = tmp_path / "trust"
    trust.mkdir()
    _pem(trust, keys, "court-2026.pub")
    (trust / "README").write_text("not a key, ignored")
    assert main(["verify", "--trust-dir", str(trust), str(sealed)]) == 0
    monkeypatch.setenv("SHARED_COURT_TRUST_DIR", str(trust))
    assert main(["verify", str(sealed)]) == 0
    monkeypatch.delenv("SHARED_COURT_TRUST_DIR")
    assert main(["verify", "--trust-dir", str(tmp_path / "nowhere"), str(sealed)]) == 3


def test_the_embedded_key_is_trusted_only_on_request(
    sealed: Path, capsys: pytest.CaptureFixture[str], keys: Keys
) -> None:
    assert main(["verify", "--trust-embedded-key", "--json", str(sealed)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "INTACT"
    assert report["trust"].startswith("embedded key")
    assert any("not who signed it" in w for w in report["warnings"])
    assert fingerprint(keys.signer.verify_key.raw).startswith(report["signing_key_id"])


def test_export_refuses_an_untrusted_signer(forged: Path, tmp_path: Path, keys: Keys) -> None:
    (tmp_path / "a.key").write_bytes(keys.archive.private_pem())
    out = tmp_path / "out"
    rc = main(["export", str(forged), "--key-file", str(tmp_path / "a.key"), "-o", str(out)])
    assert rc == 1
    assert not list(out.glob("*.webm")) if out.exists() else True
