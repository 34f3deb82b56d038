"""The court's vocabulary: staff roles, hearing roles and the states of hearings and people.

Values are stable strings: they are stored in the database, written to the event log and sent
on the wire.
"""

from __future__ import annotations

from enum import StrEnum


class StaffRole(StrEnum):
    JUDGE = "judge"
    CLERK = "clerk"
    MEDIATOR = "mediator"
    STATION_DIRECTOR = "station_director"
    ADMIN = "admin"


class HearingRole(StrEnum):
    PLAINTIFF = "plaintiff"
    DEFENDANT = "defendant"
    AGENT = "agent"  # agent ad litem / lawyer
    WITNESS = "witness"
    EXPERT = "expert"
    INTERPRETER = "interpreter"
    OBSERVER = "observer"
    MEDIATOR = "mediator"
    JUDGE = "judge"
    CLERK = "clerk"
    STATION = "station"


# Roles that join on a staff login or station credentials rather than an invitation link.
STAFF_HEARING_ROLES = frozenset({HearingRole.JUDGE, HearingRole.CLERK, HearingRole.MEDIATOR})


class HearingState(StrEnum):
    SCHEDULED = "scheduled"
    OPENED = "opened"  # waiting room live
    IN_SESSION = "in_session"
    RECESS = "recess"
    SUSPENDED = "suspended"  # technical trouble
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


class CaseKind(StrEnum):
    CIVIL = "civil"
    MEDIATION = "mediation"
    CRIMINAL = "criminal"
    ADMINISTRATIVE = "administrative"
