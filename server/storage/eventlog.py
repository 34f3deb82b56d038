"""The hearing event log: append-only and hash-chained.

Each entry's hash is ``SHA-256(prev_hash || canonical_json(entry))`` where the canonical JSON
holds hearing id, sequence number, time (ISO 8601, UTC, microseconds), actor, kind and data,
with sorted keys and no whitespace. The first entry chains from 32 zero bytes. A verifier needs
only the exported JSON to recompute the chain; any edit, deletion or reordering breaks it.

Appends take a row lock on the hearing (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
serialises writers anyway) so that two concurrent appends cannot fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.enums import EventKind
from server.storage.models import Hearing, HearingEvent

GENESIS = bytes(32)


def canonical_entry(
    hearing_id: str, seq: int, at: datetime, actor: str, kind: str, data: dict[str, Any]
) -> bytes:
    body = {
        "hearing_id": hearing_id,
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "kind": kind,
        "data": data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: bytes, entry: bytes) -> bytes:
    return hashlib.sha256(prev_hash + entry).digest()


class EventLogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(
        self, hearing_id: str, *, at: datetime, actor: str, kind: EventKind, data: dict[str, Any]
    ) -> HearingEvent:
        await self._session.execute(
            select(Hearing.id).where(Hearing.id == hearing_id).with_for_update()
        )
        last = (
            await self._session.execute(
                select(HearingEvent.seq, HearingEvent.hash)
                .where(HearingEvent.hearing_id == hearing_id)
                .order_by(HearingEvent.seq.desc())
                .limit(1)
            )
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        entry = canonical_entry(hearing_id, seq, at, actor, kind, data)
        event = HearingEvent(
            hearing_id=hearing_id,
            seq=seq,
            at=at,
            actor=actor,
            kind=kind,
            data=data,
            prev_hash=prev,
            hash=chain_hash(prev, entry),
        )
        self._session.add(event)
        await self._session.flush()
        return event

    async def list(
        self, hearing_id: str, *, kind: EventKind | None = None
    ) -> Sequence[HearingEvent]:
        """The hearing's entries in chain order; with `kind`, only the entries of that kind."""
        query = select(HearingEvent).where(HearingEvent.hearing_id == hearing_id)
        if kind is not None:
            query = query.where(HearingEvent.kind == kind)
        result = await self._session.scalars(query.order_by(HearingEvent.seq))
        return result.all()

    async def list_kinds(
        self, hearing_ids: Sequence[str], kinds: Sequence[EventKind]
    ) -> Sequence[HearingEvent]:
        """Entries of the given kinds over several hearings, in one query (each hearing's in
        chain order): what a view over many hearings reads instead of every whole log."""
        if not hearing_ids or not kinds:
            return []
        query = select(HearingEvent).where(
            HearingEvent.hearing_id.in_(hearing_ids), HearingEvent.kind.in_(kinds)
        )
        result = await self._session.scalars(
            query.order_by(HearingEvent.hearing_id, HearingEvent.seq)
        )
        return result.all()


def verify_chain(events: Sequence[HearingEvent]) -> int | None:
    """Return the seq of the first entry that does not verify, or None if the chain is intact."""
    prev = GENESIS
    for expected_seq, event in enumerate(events, start=1):
        entry = canonical_entry(
            event.hearing_id, event.seq, event.at, event.actor, event.kind, event.data
        )
        if event.seq != expected_seq or event.prev_hash != prev:
            return event.seq
        if event.hash != chain_hash(prev, entry):
            return event.seq
        prev = event.hash
    return None
