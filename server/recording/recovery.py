"""Start-up recovery of recordings a crash (or a killed SFU worker) left unfinished.

A recording is unfinished when its package has no manifest (recordings/recovery.py). The
server calls `recover_unfinished()` once at start-up, before it serves, so every unfinished
package is sealed with a signed crash incident (verify then exits 2, "intact with declared
gaps") and the hearing's event log says so (`recording.recovered`, written by the app). The
work is file I/O and signing: it runs off the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recordings import RecordingError, RecoveryResult, load_signing_key, recover
from recordings.timestamps import TsaConfig
from recordings.verify import read_info

log = logging.getLogger(__name__)


def _recover(root: Path, signing_key_path: Path, tsa: TsaConfig | None) -> list[RecoveryResult]:
    if not root.exists():
        return []
    key = load_signing_key(signing_key_path)
    results = recover(root, key, tsa=tsa)
    for result in results:
        if result.status != "recovered":  # it had only lost its manifest: nothing lost
            log.warning(
                "recording %s had lost its manifest: re-sealed as %s",
                result.recording_id,
                result.status,
            )
            continue
        log.warning(
            "recording %s sealed after a crash: gap %s .. %s, %d torn bytes cut, "
            "%d records after the last checkpoint kept as unauthenticated",
            result.recording_id,
            result.gap_from,
            result.gap_to,
            result.torn_tail_bytes,
            result.unauthenticated_records,
        )
    return results


def hearing_of(result: RecoveryResult) -> str | None:
    """The hearing a recovered package belongs to (from its header), if it says."""
    try:
        return read_info(result.path).metadata.get("hearing_id") or None
    except (RecordingError, OSError):
        return None


async def recover_unfinished(
    root: Path, signing_key_path: Path, tsa: Mapping[str, Any] | None = None
) -> list[RecoveryResult]:
    """Seal every unfinished recording under `root` (a recordings root or one package).

    `tsa` (the fields of a `recordings.timestamps.TsaConfig`): a package that was being
    anchored gets the RFC 3161 anchors of what recovery signs, as its writer would have.

    Returns one result per package sealed (an empty list if `root` does not exist). A package
    that cannot be recovered (tampered, signed by another key) is logged and skipped. Raises
    recordings.KeyFileError if the signing key cannot be read, OSError if `root` cannot be
    listed.
    """
    config = TsaConfig(**tsa) if tsa else None
    return await asyncio.to_thread(_recover, root, signing_key_path, config)
