"""Typed identifiers used by the recordings package (kept here: the package imports nothing of
ours, so it cannot share the server's NewTypes; they are the same underlying `str`)."""

from __future__ import annotations

from typing import NewType

RecordingId = NewType("RecordingId", str)
ParticipantId = NewType("ParticipantId", str)
