"""Issue 11, point 4: a package whose keys.json is corrupted, swapped or missing is reported
(nobody could decrypt it), and export says "tampered" (exit 1), not "I/O error" (3)."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from recordings.cli import main
from recordings.verify import verify_package
from tests.recordings.conftest import Keys


def _garbage(pkg: Path, other: Path) -> None:
    # Cut short and followed by junk: a corrupted file, whatever its (random) content. Flipping
    # one byte was not: inside a base64 field it can give another well-formed stanza, which
    # only export's data-key commitment can tell.
    raw = (pkg / "keys.json").read_bytes()
    (pkg / "keys.json").write_bytes(raw[: len(raw) // 2] + b"\x00\xff garbage")


def _swapped(pkg: Path, other: Path) -> None:
    shutil.copy(other / "keys.json", pkg / "keys.json")


def _missing(pkg: Path, other: Path) -> None:
    (pkg / "keys.json").unlink()


def _stanza_removed(pkg: Path, other: Path) -> None:
    obj = json.loads((pkg / "keys.json").read_text())
    obj["recipients"] = []
    (pkg / "keys.json").write_text(json.dumps(obj))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_garbage, "keys.json"),
        (_swapped, "swapped"),
        (_missing, "missing"),
        (_stanza_removed, "no wrapped data key for recipient"),
    ],
)
def test_a_package_nobody_can_decrypt_is_not_intact(
    sealed: Path,
    sealed_template: Path,
    tmp_path: Path,
    keys: Keys,
    damage: Callable[[Path, Path], None],
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = tmp_path / "other"
    shutil.copytree(sealed_template, other)
    obj = json.loads((other / "keys.json").read_text())
    obj["recording_id"] = "00000000-0000-4000-8000-000000000000"  # another recording's
    (other / "keys.json").write_text(json.dumps(obj))
    damage(sealed, other)
    report = verify_package(sealed, [keys.signer.verify_key])
    assert report.exit_code == 1, report.text()
    assert report.problems[0].location.file == "keys.json"
    assert expected in report.problems[0].message
    (tmp_path / "a.key").write_bytes(keys.archive.private_pem())
    (tmp_path / "s.pub").write_text(keys.signer.verify_key.pem())
    out = tmp_path / "out"
    rc = main(
        [
            *("export", str(sealed), "--key-file", str(tmp_path / "a.key")),
            *("-o", str(out), "--public-key", str(tmp_path / "s.pub")),
        ]
    )
    assert rc == 1
    assert "tampered" in capsys.readouterr().err


def test_a_stanza_that_does_not_open_is_tampering_for_export(
    sealed: Path, tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    obj = json.loads((sealed / "keys.json").read_text())
    wrapped = bytearray(base64.b64decode(obj["recipients"][0]["wrapped_dek"]))
    wrapped[0] ^= 1
    obj["recipients"][0]["wrapped_dek"] = base64.b64encode(bytes(wrapped)).decode()
    (sealed / "keys.json").write_text(json.dumps(obj))
    (tmp_path / "a.key").write_bytes(keys.archive.private_pem())
    (tmp_path / "s.pub").write_text(keys.signer.verify_key.pem())
    rc = main(
        [
            *("export", str(sealed), "--key-file", str(tmp_path / "a.key")),
            *("-o", str(tmp_path / "out"), "--public-key", str(tmp_path / "s.pub")),
        ]
    )
    assert rc == 1
    assert "tampered" in capsys.readouterr().err
