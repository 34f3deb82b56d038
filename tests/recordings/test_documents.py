"""Sealed hearing documents (issue 15.3): verify offline, tamper cases named by place, the RFC
3161 anchor, `shared-court verify` / `shared-court document pdf` through the installed command,
the PDF read back with pdftotext, and an independent check written from
docs/document-format.md alone."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from PIL import Image, ImageDraw

from recordings.document import (
    DocumentContent,
    Refusal,
    Signature,
    anchor_document,
    seal_document,
    text_sha256,
    verify_document,
)
from recordings.document_pdf import render_pdf
from recordings.keys import SigningKey
from recordings.timestamps import TsaConfig, TsaTrust, load_certificates
from tests.recordings.local_tsa import local_tsa

SHARED_COURT = Path(sys.executable).parent / "shared-court"
TEXT = (
    "审判员：现在开庭。原告张三，请陈述诉讼请求。\n"
    "原告：请求被告李四返还借款人民币 5000 元。\n"
    "被告：同意分两期归还，2027 年 1 月 31 日前还清。"
)


def signature_png(seed: int = 0) -> bytes:
    """A handwriting-like stroke, as the signing canvas would send it."""
    img = Image.new("RGB", (300, 120), "white")
    draw = ImageDraw.Draw(img)
    points = [(20 + i * 26, 60 + ((i * 37 + seed * 11) % 50) - 25) for i in range(11)]
    draw.line(points, fill="black", width=4)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def content(text: str = TEXT, **over: Any) -> DocumentContent:
    h = text_sha256(text)
    sigs: tuple[Signature, ...] = (
        Signature("p-1", "plaintiff", "张三", "2026-12-04T09:30:00Z", h, "phone", ""),
        Signature("p-2", "defendant", "李四", "2026-12-04T09:31:00Z", h, "station", ""),
    )
    sigs = tuple(
        Signature(**{**s.__dict__, "image_png_b64": base64.b64encode(signature_png(i)).decode()})
        for i, s in enumerate(sigs)
    )
    base: dict[str, Any] = {
        "kind": "transcript",
        "document_id": "doc-1",
        "version": 3,
        "court": "浙江省安吉县人民法院",
        "case_number": "（2026）浙0523民初123号",
        "hearing_id": "h-1",
        "hearing_title": "张三诉李四民间借贷纠纷",
        "text": text,
        "finalised_at": "2026-12-04T09:40:00Z",
        "signatures": sigs,
        "refusals": (
            Refusal("p-3", "witness", "王五", "2026-12-04T09:32:00Z", "不认可第二段记录"),
        ),
        "outcome": "final",
        "extra": {"not_signed": ["p-4"]},
    }
    base.update(over)
    return DocumentContent(**base)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def sealed(key: SigningKey) -> bytes:
    return seal_document(content(), key)


def _edit(raw: bytes, change: Any) -> bytes:
    value = json.loads(raw)
    change(value)
    return json.dumps(value, ensure_ascii=False, indent=2).encode()


def test_a_sealed_document_verifies_with_the_courts_key(key: SigningKey, sealed: bytes) -> None:
    report = verify_document(sealed, [key.verify_key])
    assert (report.exit_code, report.verdict, report.problems) == (0, "INTACT", [])
    assert report.text_sha256 == text_sha256(TEXT)
    assert [s["status"] for s in report.signatures] == ["valid", "valid"]
    assert report.refusals[0]["reason"] == "不认可第二段记录"
    assert report.not_signed == ["p-4"]
    assert report.key_id == key.key_id


def test_untrusted_and_embedded_keys(sealed: bytes) -> None:
    other = SigningKey.generate()
    for keys in ([], [other.verify_key]):
        report = verify_document(sealed, keys)
        assert (report.exit_code, report.verdict) == (1, "UNTRUSTED SIGNER")
        assert report.problems[0][0] == "court_signature"
    report = verify_document(sealed, [], trust_embedded_key=True)
    assert report.exit_code == 0
    assert report.warnings


@pytest.mark.parametrize(
    ("change", "place"),
    [
        (lambda v: v["document"].__setitem__("text", TEXT.replace("5000", "500")), "text_sha256"),
        (
            lambda v: v["document"]["signatures"][1].__setitem__("text_sha256", "0" * 64),
            "document.signatures[1].text_sha256",
        ),
        (
            lambda v: v["document"]["signatures"][0].__setitem__("image_png_b64", "bm90IGEgcG5n"),
            "document.signatures[0].image_png_b64",
        ),
        (lambda v: v["document"]["refusals"].clear(), "court_signature.signature"),
        (lambda v: v["document"].__setitem__("outcome", "effective"), "court_signature.signature"),
        (lambda v: v.__setitem__("approved_by", "院长"), "approved_by"),
        (
            lambda v: v["court_signature"].__setitem__("signature", base64.b64encode(bytes(64))),
            "court_signature.signature",
        ),
    ],
)
def test_tampering_is_exit_1_and_names_the_place(
    key: SigningKey, sealed: bytes, change: Any, place: str
) -> None:
    def apply(v: dict[str, Any]) -> None:
        change(v)
        cs = v["court_signature"]
        if isinstance(cs["signature"], bytes):
            cs["signature"] = cs["signature"].decode()

    report = verify_document(_edit(sealed, apply), [key.verify_key])
    assert report.exit_code == 1, report.text()
    assert any(place in p for p, _ in report.problems), report.problems


def test_a_resealed_forgery_still_names_the_signature_whose_text_changed(
    key: SigningKey,
) -> None:
    """Someone holding a key edits the text and re-seals: the parties' signatures were bound to
    the old text, so the check names each of them even though the seal verifies."""
    forged = content(text=TEXT.replace("5000", "50000"))
    forged = DocumentContent(
        **{**forged.__dict__, "signatures": content().signatures}  # signed the old text
    )
    report = verify_document(seal_document(forged, key), [key.verify_key])
    assert report.exit_code == 1
    places = [p for p, _ in report.problems]
    assert places == [
        "document.signatures[0].text_sha256",
        "document.signatures[1].text_sha256",
    ]
    assert "张三 (plaintiff)" in report.problems[0][1]


def test_a_duplicated_member_is_tampering(key: SigningKey, sealed: bytes) -> None:
    raw = sealed.replace(b'"outcome": "final"', b'"outcome": "effective", "outcome": "final"')
    report = verify_document(raw, [key.verify_key])
    assert report.exit_code == 1
    assert ("outcome", "member name occurs twice in one object") in (report.problems)


def test_not_a_document_or_an_unknown_version_is_not_a_verdict(
    key: SigningKey, sealed: bytes
) -> None:
    assert verify_document(b"\x00\x01", [key.verify_key]).exit_code == 3
    assert verify_document(b'{"a": 1}', [key.verify_key]).exit_code == 3
    later = sealed.replace(b"shared-court-document/1", b"shared-court-document/2")
    report = verify_document(later, [key.verify_key])
    assert report.exit_code == 3
    assert report.io_error is not None
    assert "unsupported format" in report.io_error
    garbled = _edit(sealed, lambda v: v["document"].__setitem__("signatures", "张三"))
    report = verify_document(garbled, [key.verify_key])
    assert report.exit_code == 1
    assert ("document.signatures", "missing or of the wrong type") in report.problems


def test_time_anchor_verifies_offline_and_a_foreign_token_is_tampering(
    key: SigningKey, sealed: bytes, tmp_path: Path
) -> None:
    with local_tsa(tmp_path / "tsa") as tsa:
        anchored = anchor_document(sealed, TsaConfig(url=tsa.url, attempts=1))
        other = anchor_document(seal_document(content(version=4), key), TsaConfig(url=tsa.url))
    trust = TsaTrust(load_certificates([tsa.files.ca_cert]))
    report = verify_document(anchored, [key.verify_key], tsa=trust)
    assert report.exit_code == 0, report.text()
    assert report.time_anchor is not None
    assert report.time_anchor["checked"] is True
    assert "existed by" in report.text()
    unchecked = verify_document(anchored, [key.verify_key])
    assert unchecked.exit_code == 0
    assert any("--tsa-ca" in w for w in unchecked.warnings)
    swapped = _edit(
        anchored,
        lambda v: v.__setitem__("time_anchor", json.loads(other)["time_anchor"]),
    )
    report = verify_document(swapped, [key.verify_key], tsa=trust)
    assert report.exit_code == 1
    assert {p for p, _ in report.problems} == {"time_anchor.imprint", "time_anchor.token_b64"}
    with local_tsa(tmp_path / "tsa2", name="Another TSA") as foreign:
        foreign_trust = TsaTrust(load_certificates([foreign.files.ca_cert]))
    report = verify_document(anchored, [key.verify_key], tsa=foreign_trust)
    assert report.exit_code == 1
    assert report.problems[0][0] == "time_anchor.token_b64"
    # The same through the installed command, --tsa-ca before or after the path.
    doc, pub = tmp_path / "anchored.json", tmp_path / "court.pub"
    doc.write_bytes(anchored)
    pub.write_text(key.verify_key.pem())
    ca, foreign_ca = str(tsa.files.ca_cert), str(foreign.files.ca_cert)
    for args in (
        ["verify", "--tsa-ca", ca, "--json", str(doc), "--public-key", str(pub)],
        ["verify", str(doc), "--public-key", str(pub), "--json", "--tsa-ca", ca],
    ):
        result = installed(*args)
        assert result.returncode == 0, result.stdout
        assert json.loads(result.stdout)["time_anchor"]["checked"] is True
    result = installed("verify", str(doc), "--public-key", str(pub), "--tsa-ca", foreign_ca)
    assert result.returncode == 1, result.stdout
    assert "time_anchor.token_b64" in result.stdout


# ---- the installed command -----------------------------------------------------------------


def installed(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARED_COURT_")}
    return subprocess.run(
        [str(SHARED_COURT), *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_shared_court_verify_a_document_in_every_option_order(
    key: SigningKey, sealed: bytes, tmp_path: Path
) -> None:
    doc = tmp_path / "笔录.json"
    doc.write_bytes(sealed)
    pub = tmp_path / "court.pub"
    pub.write_text(key.verify_key.pem())
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "court.pub").write_text(key.verify_key.pem())
    for args in (
        ["verify", "--json", "--public-key", str(pub), str(doc)],
        ["verify", str(doc), "--public-key", str(pub), "--json"],
        ["verify", "--public-key", str(pub), str(doc), "--json"],
        ["-v", "verify", "--json", "--trust-dir", str(trust), str(doc)],
        ["verify", "--json", str(doc), "--trust-embedded-key"],
    ):
        result = installed(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        report = json.loads(result.stdout)
        assert (report["type"], report["verdict"]) == ("document", "INTACT"), args
    result = installed("verify", str(doc), "--public-key", str(pub))
    assert result.returncode == 0
    assert "INTACT" in result.stdout
    assert "张三 (plaintiff)" in result.stdout
    result = installed("verify", str(doc))
    assert result.returncode == 1
    assert "UNTRUSTED SIGNER" in result.stdout
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(sealed.replace(b"5000", b"9000"))
    result = installed("verify", "--json", str(tampered), "--public-key", str(pub))
    assert result.returncode == 1, result.stdout
    places = {p["place"] for p in json.loads(result.stdout)["problems"]}
    assert {"document.text_sha256", "court_signature.signature"} <= places
    assert "document.signatures[0].text_sha256" in places
    result = installed("verify", "--no-such-option", str(doc))
    assert result.returncode == 3
    assert "usage:" in result.stderr
    not_doc = tmp_path / "notes.txt"
    not_doc.write_text("hello")
    assert installed("verify", str(not_doc), "--public-key", str(pub)).returncode == 3


# ---- PDF -----------------------------------------------------------------------------------


def test_pdf_in_chinese_reads_back_text_signers_and_hashes(
    key: SigningKey, sealed: bytes, tmp_path: Path
) -> None:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext is not None, "poppler-utils is installed by make deb-test"
    doc = tmp_path / "doc.json"
    doc.write_bytes(sealed)
    out = tmp_path / "doc.pdf"
    result = installed("document", "pdf", str(doc), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"%PDF-")
    assert render_pdf(sealed).startswith(b"%PDF-")
    text = subprocess.run(
        [pdftotext, "-layout", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = "".join(text.split())
    for line in TEXT.splitlines():
        assert "".join(line.split()) in flat, line
    for wanted in ("庭审笔录", "张三（原告）", "李四（被告）", "王五（证人）", "不认可第二段记录"):
        assert wanted in flat, wanted
    value = json.loads(sealed)
    hashes = [
        text_sha256(TEXT),
        value["court_signature"]["key_id"],
        value["court_signature"]["signature"],
        hashlib.sha256(
            base64.b64decode(value["document"]["signatures"][0]["image_png_b64"])
        ).hexdigest(),
    ]
    for h in hashes:
        assert h in flat, h
    # The two signature images are embedded (pdfimages lists them).
    pdfimages = shutil.which("pdfimages")
    assert pdfimages is not None
    listing = subprocess.run(
        [pdfimages, "-list", str(out)], capture_output=True, text=True, check=True
    ).stdout
    assert len(listing.strip().splitlines()) - 2 >= 2, listing
    png = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(out), str(png)], check=True)
    assert list(tmp_path.glob("page*.png"))
    assert (
        installed("document", "pdf", str(tmp_path / "missing.json"), "-o", str(out)).returncode == 3
    )


# ---- an independent verifier written from docs/document-format.md alone --------------------


def independent_check(raw: bytes, trusted_raw_keys: list[bytes]) -> tuple[int, list[str]]:
    """hashlib, json and cryptography only (no recordings.* code)."""
    value = json.loads(raw.decode("utf-8"))
    problems: list[str] = []
    problems.extend(sorted(set(value) - {"format", "document", "court_signature", "time_anchor"}))
    doc = value["document"]
    text_hash = hashlib.sha256(doc["text"].encode("utf-8")).hexdigest()
    if doc["text_sha256"] != text_hash:
        problems.append("document.text_sha256")
    for i, sig in enumerate(doc["signatures"]):
        if sig["text_sha256"] != text_hash:
            problems.append(f"document.signatures[{i}].text_sha256")
        if not base64.b64decode(sig["image_png_b64"]).startswith(b"\x89PNG\r\n\x1a\n"):
            problems.append(f"document.signatures[{i}].image_png_b64")
    signed = json.dumps(
        {"format": value["format"], "document": doc},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    cs = value["court_signature"]
    raw_pub = base64.b64decode(cs["public_key"])
    if cs["key_id"] != hashlib.sha256(raw_pub).digest()[:8].hex():
        problems.append("court_signature.key_id")
    try:
        Ed25519PublicKey.from_public_bytes(raw_pub).verify(
            base64.b64decode(cs["signature"]), signed
        )
    except Exception:
        problems.append("court_signature.signature")
    if raw_pub not in trusted_raw_keys:
        problems.append("court_signature")
    return (1 if problems else 0), problems


def test_independent_verifier_agrees(key: SigningKey, sealed: bytes) -> None:
    trusted = [key.verify_key.raw]
    assert independent_check(sealed, trusted) == (0, [])
    cases = [
        sealed.replace(b"5000", b"9000"),
        _edit(sealed, lambda v: v["document"]["signatures"][0].__setitem__("name", "赵六")),
        _edit(
            sealed, lambda v: v["document"]["signatures"][1].__setitem__("text_sha256", "0" * 64)
        ),
        _edit(sealed, lambda v: v.__setitem__("note", "x")),
        seal_document(content(), SigningKey.generate()),
    ]
    for raw in cases:
        mine = verify_document(raw, [key.verify_key])
        theirs = independent_check(raw, trusted)
        assert theirs[0] == mine.exit_code == 1
        assert sorted(theirs[1]) == sorted(p for p, _ in mine.problems), (theirs, mine.problems)
