"""CLI entry points: keygen, selftest, and the benchmark's smoke mode."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from recordings.cli import main
from tests.recordings.conftest import Keys

ROOT = Path(__file__).resolve().parents[2]


def test_keygen_writes_private_keys_0600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    for name in ("archive.key", "signing.key"):
        mode = stat.S_IMODE((tmp_path / "k" / name).stat().st_mode)
        assert mode == 0o600, oct(mode)
    out = capsys.readouterr().out
    assert "BEGIN" not in out  # never print key material
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 3  # refuses to overwrite


def test_selftest_records_seals_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["selftest", "-o", str(tmp_path / "st"), "--seconds", "2"]) == 0
    assert "INTACT" in capsys.readouterr().out
    assert stat.S_IMODE((tmp_path / "st" / "keys" / "archive.key").stat().st_mode) == 0o600
    out = tmp_path / "exp"
    rc = main(
        [
            "export",
            str(tmp_path / "st" / "recording"),
            "--key-file",
            str(tmp_path / "st" / "keys" / "archive.key"),
            "-o",
            str(out),
            "--public-key",
            str(tmp_path / "st" / "keys" / "signing.pub"),
        ]
    )
    assert rc == 0
    assert (out / "selftest-participant.webm").stat().st_size > 0


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "recordings", "verify", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3  # no recording.json: an I/O error, not "tampered"
    assert "ERROR" in proc.stdout


def test_export_of_a_tampered_package_writes_the_authenticated_part(
    sealed: Path, tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11 point 3: one bad byte no longer blocks the export; what is left out is named
    with its place, and the exit code says tampered (1)."""
    (tmp_path / "a.key").write_bytes(keys.archive.private_pem())
    seg = sorted((sealed / "segments").glob("*.cevr"))[1]
    data = bytearray(seg.read_bytes())
    data[500] ^= 1
    seg.write_bytes(bytes(data))
    out = tmp_path / "out"
    rc = main(
        [
            "export",
            *("--trust-embedded-key", str(sealed), "--key-file", str(tmp_path / "a.key")),
            *("-o", str(out)),
        ]
    )
    assert rc == 1
    stdout = capsys.readouterr().out
    assert "left out: stream 1 (participant p1, part 0), from segments/000001.cevr" in stdout
    assert (out / "p1.webm").stat().st_size > 0
    assert not list(out.glob(".*"))  # no hidden half-written file
    left = json.loads((out / "timeline.json").read_text())["left_out"]
    assert [(x["what"], x["file"]) for x in left] == [
        ("stream 1 (participant p1, part 0)", "segments/000001.cevr")
    ]
    assert left[0]["offset"] < 500 < left[0]["offset"] + 64 * 1024  # the flipped record


def test_bench_smoke_json() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "recording.py"), "--smoke", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in ("cpu_per_stream_fraction", "mediarecorder_cost_ratio", "verify_mb_per_s"):
        assert isinstance(result[key], float | int), key
        assert result[key] > 0, key
    assert result["cpu_per_stream_fraction"] < 1.0
    assert result["mediarecorder_cost_ratio"] > 1.0


def test_package_is_standalone() -> None:
    code = (
        "import sys, recordings, recordings.cli; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('server', 'signaling', 'station_client')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
