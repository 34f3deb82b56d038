"""The court's vocabulary: staff roles, hearing roles and the states of hearings and people,
and the one table of what each role may do.

This module is the bottom floor of the server: storage, auth, the hearing rules and the media
bridge all speak it, and it imports nothing of the server. Values are stable strings: they are
stored in the database, written to the event log and sent on the wire. Hearing roles and states
are defined once, in ``signaling.enums``.
"""

from __future__ import annotations

from enum import StrEnum

# The hearing's vocabulary is the wire's: one definition, in the protocol package.
from signaling.enums import HearingRole, HearingState, ParticipantState

__all__ = [
    "COURT_READERS",
    "PRESIDING_ROLES",
    "PRESIDING_STAFF",
    "RUNNING_ROLES",
    "RUNNING_STAFF",
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


# --- the role table -------------------------------------------------------------------------
# Staff who preside over hearings (schedule, invite, control the room, keep the record); a
# staff member takes part in a hearing in the hearing role of the same name.
PRESIDING_STAFF = frozenset({StaffRole.JUDGE, StaffRole.CLERK, StaffRole.MEDIATOR})
# Of those, who runs the hearing: opens and starts it, moves people between rooms.
RUNNING_STAFF = frozenset({StaffRole.JUDGE, StaffRole.MEDIATOR})
# Staff who may read everything of their own court.
COURT_READERS = PRESIDING_STAFF | {StaffRole.ADMIN}
# The same, as hearing roles (presiding roles join on a staff login, not an invitation link).
PRESIDING_ROLES = frozenset(HearingRole(r.value) for r in PRESIDING_STAFF)
RUNNING_ROLES = frozenset(HearingRole(r.value) for r in RUNNING_STAFF)


class CaseKind(StrEnum):
    CIVIL = "civil"
    MEDIATION = "mediation"
    CRIMINAL = "criminal"
    ADMINISTRATIVE = "administrative"
