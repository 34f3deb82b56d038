"""The service-side time anchor of sealed documents (issue 15.3): anchored by a real TSA and
verified offline; without a TSA, or with one that refuses, the document stays valid unanchored."""

from __future__ import annotations

import asyncio
from pathlib import Path

from recordings.document import seal_document, verify_document
from recordings.keys import SigningKey
from recordings.timestamps import TsaTrust, load_certificates
from server.hearings.document_anchor import anchor_sealed
from tests.recordings.local_tsa import local_tsa, refused_url
from tests.recordings.test_documents import content


async def test_anchor_sealed_with_a_tsa_and_without(tmp_path: Path) -> None:
    key = SigningKey.generate()
    sealed = seal_document(content(), key)
    with local_tsa(tmp_path / "tsa") as tsa:
        settings = {"url": tsa.url, "every": 15, "timeout": 5.0, "attempts": 1}
        anchored, problem = await anchor_sealed(sealed, settings)
    assert problem is None
    trust = TsaTrust(await asyncio.to_thread(load_certificates, [tsa.files.ca_cert]))
    report = await asyncio.to_thread(lambda: verify_document(anchored, [key.verify_key], tsa=trust))
    assert report.exit_code == 0, report.text()
    assert report.time_anchor is not None
    assert report.time_anchor["checked"] is True
    same, problem = await anchor_sealed(sealed, None)
    assert (same, problem) == (sealed, "no TSA configured")
    refused = {"url": refused_url(), "timeout": 2.0, "attempts": 1}
    same, problem = await anchor_sealed(sealed, refused)
    assert same == sealed
    assert problem is not None
    assert "unreachable" in problem
