"""Typed identifiers, parsed once at the edge.

Only the web and WebSocket layers turn strings into these; everything below them takes the
typed form. All are UUID4 strings in canonical hyphenated form (36 characters).
"""

from __future__ import annotations

import uuid
from typing import NewType

CourtId = NewType("CourtId", str)
UserId = NewType("UserId", str)
StationId = NewType("StationId", str)
CaseId = NewType("CaseId", str)
HearingId = NewType("HearingId", str)
ParticipantId = NewType("ParticipantId", str)
InvitationId = NewType("InvitationId", str)
RecordingId = NewType("RecordingId", str)


def new_id() -> str:
    """A fresh random identifier (UUID4, canonical text form)."""
    return str(uuid.uuid4())


def parse_id(value: object) -> str | None:
    """Return the canonical form of a UUID string, or None if `value` is not one."""
    if not isinstance(value, str) or len(value) != 36:
        return None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    canonical = str(parsed)
    return canonical if canonical == value.lower() else None
