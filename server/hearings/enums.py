"""The court's vocabulary: staff roles, hearing roles and the states of hearings and people.

Values are stable strings: they are stored in the database, written to the event log and sent
on the wire. Hearing roles and states are defined once, in ``signaling.enums``.
"""

from __future__ import annotations

from enum import StrEnum

# The hearing's vocabulary is the wire's: one definition, in the protocol package.
from signaling.enums import HearingRole, HearingState, ParticipantState

__all__ = [
    "STAFF_HEARING_ROLES",
    "CaseKind",
    "HearingRole",
    "HearingState",
    "ParticipantState",
    "StaffRole",
]


class StaffRole(StrEnum):
    JUDGE = "judge"
    CLERK = "clerk"
    MEDIATOR = "mediator"
    STATION_DIRECTOR = "station_director"
    ADMIN = "admin"


# Roles that join on a staff login or station credentials rather than an invitation link.
STAFF_HEARING_ROLES = frozenset({HearingRole.JUDGE, HearingRole.CLERK, HearingRole.MEDIATOR})


class CaseKind(StrEnum):
    CIVIL = "civil"
    MEDIATION = "mediation"
    CRIMINAL = "criminal"
    ADMINISTRATIVE = "administrative"
