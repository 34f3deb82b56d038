"""Timeline events: the fixed vocabulary written into the signed chain.

Design: events are clear JSON records inside the hash chain (not in a side file), so a court
can read start/stop/pause/join/leave/gap times without the decryption key, and editing any of
them breaks the chain. Pauses need a reason from a fixed set because SPC rules (法释〔2017〕5号
Art. 3) allow interrupting a hearing recording only for recess, non-public evidence examination
and mediation off the record.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    RECORDING_STARTED = "recording_started"
    RECORDING_STOPPED = "recording_stopped"
    PAUSED = "paused"
    RESUMED = "resumed"
    PARTICIPANT_JOINED = "participant_joined"
    PARTICIPANT_LEFT = "participant_left"
    MEDIA_STARTED = "media_started"
    NETWORK_GAP = "network_gap"
    INCIDENT = "incident"
    NOTE = "note"


class PauseReason(StrEnum):
    RECESS = "RECESS"
    NON_PUBLIC_EVIDENCE = "NON_PUBLIC_EVIDENCE"
    MEDIATION_OFF_RECORD = "MEDIATION_OFF_RECORD"


class IncidentCause(StrEnum):
    CRASH = "crash"
    DISK_FULL = "disk_full"
    IO_ERROR = "io_error"


# Event types that make a package "intact with declared gaps" (verify exit 2). Pauses are
# lawful, reasoned interruptions and do not.
GAP_EVENTS = frozenset({EventType.NETWORK_GAP, EventType.INCIDENT})
