"""The RFC 3161 time anchor of a sealed hearing document (issue 15.3), for the hearing record
service to call right after `recordings.document.seal_document`.

Where the court has a TSA configured (`recording.timestamping.url`, the same TSA as the
recordings'), the sealed bytes get a `time_anchor` (docs/document-format.md §5). The TSA is
asked in a thread (HTTP with its own timeout and attempts) so the event loop never waits on
it; when it cannot give a token the document stays valid without one and the reason is
returned for the event log. Usage in the service:

    sealed, problem = await anchor_sealed(seal_document(content, key), tsa_settings)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from recordings.document import NotADocumentError, anchor_document
from recordings.timestamps import TimestampError, TsaConfig
from server.config import TimestampingConfig

log = logging.getLogger(__name__)


# A document is anchored while the person finalising it waits (and its transaction is open):
# one short attempt, never the recordings' patient retries. A document without an anchor is
# still valid; the event log says why it has none.
DOCUMENT_TSA_TIMEOUT_S = 5.0


def document_tsa(ts: TimestampingConfig) -> dict[str, Any] | None:
    """The court's TSA settings (`recording.timestamping`) for documents: one attempt of at
    most DOCUMENT_TSA_TIMEOUT_S; None when no TSA is configured."""
    if ts.url is None:
        return None
    return {
        "url": ts.url,
        "every": 1,
        "timeout": min(ts.timeout_s, DOCUMENT_TSA_TIMEOUT_S),
        "attempts": 1,
        "retry_delay": ts.retry_delay_s,
    }


async def anchor_sealed(sealed: bytes, tsa: Mapping[str, Any] | None) -> tuple[bytes, str | None]:
    """(anchored bytes, None); or (the bytes unchanged, why) when no TSA is configured or it
    gave no usable token. `tsa`: the fields of a TsaConfig (server.app._tsa_settings)."""
    if tsa is None:
        return sealed, "no TSA configured"
    try:
        config = TsaConfig(**tsa)
        return await asyncio.to_thread(anchor_document, sealed, config), None
    except (TimestampError, NotADocumentError, ValueError, TypeError) as exc:
        log.warning("sealed document not time-anchored: %s", exc)
        return sealed, str(exc)
