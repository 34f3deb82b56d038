"""The court vocabulary as it appears on the wire.

These are the same stable strings the server stores and logs (``server/enums.py``);
signaling imports nothing from the server (ARCHITECTURE §3), so the values are repeated here and
a test (tests/signaling/test_vocabulary.py) fails if the two ever drift.
"""

from __future__ import annotations

from enum import StrEnum


class HearingRole(StrEnum):
    PLAINTIFF = "plaintiff"
    DEFENDANT = "defendant"
    AGENT = "agent"
    WITNESS = "witness"
    EXPERT = "expert"
    INTERPRETER = "interpreter"
    OBSERVER = "observer"
    MEDIATOR = "mediator"
    JUDGE = "judge"
    CLERK = "clerk"
    STATION = "station"


class HearingState(StrEnum):
    SCHEDULED = "scheduled"
    OPENED = "opened"  # the waiting room is live; nothing is on the record
    IN_SESSION = "in_session"
    RECESS = "recess"
    SUSPENDED = "suspended"  # technical trouble, distinct from a recess the judge calls
    CLOSED = "closed"


class ParticipantState(StrEnum):
    INVITED = "invited"
    IDENTITY_CONFIRMED = "identity_confirmed"
    WAITING = "waiting"
    IN_HEARING = "in_hearing"
    IN_PRIVATE_ROOM = "in_private_room"
    DISCONNECTED = "disconnected"
    LEFT = "left"
    REMOVED = "removed"


class ClientKind(StrEnum):
    BROWSER = "browser"
    STATION = "station"


class StationCause(StrEnum):
    """What a station reports as the cause of its trouble (OLR 25: power and network failures
    excuse an absence, so the court must be told at the time, not afterwards)."""

    POWER = "power"
    NETWORK = "network"
    CAMERA = "camera"
    MICROPHONE = "microphone"
    SPEAKER = "speaker"
    OTHER = "other"


class IdentityCheck(StrEnum):
    """How someone other than the party checked the party's identity (``attest_identity``)."""

    IN_PERSON = "in_person"  # the ID document seen in person at the station
    DOCUMENT_ON_VIDEO = "document_on_video"  # the ID document held up to the camera
    OTHER = "other"  # another way, described in the note


class RecordingPause(StrEnum):
    """Why presiding staff interrupt the evidence recording while in session. With the recess
    (a hearing state of its own) these are the lawful interruptions (SPC 法释〔2017〕5号 Art. 3)."""

    NON_PUBLIC_EVIDENCE = "NON_PUBLIC_EVIDENCE"  # evidence examined out of public view
    MEDIATION_OFF_RECORD = "MEDIATION_OFF_RECORD"  # mediation talks the parties keep off record


class Sender(StrEnum):
    """Which side of the connection sends a message."""

    CLIENT = "client"
    SERVER = "server"


# The hearing room's id; private rooms (caucus, consultation) have server-chosen ids.
MAIN_ROOM = "main"
