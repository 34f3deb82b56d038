"""The hearing lifecycle as an explicit transition table.

::

    scheduled --open--> opened --start--> in_session <--recess/resume--> recess
        |                 |                   |  ^
        |                 |             suspend  resume
        |                 |                   v  |
        |                 |                suspended
        +----cancel-------+-------close-------+--------> closed

``opened`` means the waiting room is live: people can connect, confirm identity and wait, but
nothing is on the record. ``suspended`` is for technical trouble (a station's power or line
failed), distinct from a recess the judge calls: the record must tell them apart.

Who may do what: the presiding judge or mediator runs the session; the clerk (书记员) may open
the waiting room and suspend for technical trouble, as clerks do in a courtroom, but not start,
resume or close it. Every transition needs a reason, which goes to the event log with the actor.
Anything not in the table is refused with WRONG_STATE (or FORBIDDEN for the wrong role), and
nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from server.enums import PRESIDING_STAFF as PRESIDING
from server.enums import RUNNING_STAFF as RUNNERS
from server.enums import HearingState, StaffRole

S = HearingState


class HearingAction(StrEnum):
    OPEN = "open"
    START = "start"
    RECESS = "recess"
    RESUME = "resume"
    SUSPEND = "suspend"
    CLOSE = "close"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Transition:
    action: HearingAction
    source: HearingState
    target: HearingState
    roles: frozenset[StaffRole]


TRANSITIONS: tuple[Transition, ...] = (
    Transition(HearingAction.OPEN, S.SCHEDULED, S.OPENED, PRESIDING),
    Transition(HearingAction.CANCEL, S.SCHEDULED, S.CLOSED, RUNNERS),
    Transition(HearingAction.START, S.OPENED, S.IN_SESSION, RUNNERS),
    Transition(HearingAction.CLOSE, S.OPENED, S.CLOSED, RUNNERS),
    Transition(HearingAction.RECESS, S.IN_SESSION, S.RECESS, RUNNERS),
    Transition(HearingAction.SUSPEND, S.IN_SESSION, S.SUSPENDED, PRESIDING),
    Transition(HearingAction.CLOSE, S.IN_SESSION, S.CLOSED, RUNNERS),
    Transition(HearingAction.RESUME, S.RECESS, S.IN_SESSION, RUNNERS),
    Transition(HearingAction.CLOSE, S.RECESS, S.CLOSED, RUNNERS),
    Transition(HearingAction.RESUME, S.SUSPENDED, S.IN_SESSION, RUNNERS),
    Transition(HearingAction.CLOSE, S.SUSPENDED, S.CLOSED, RUNNERS),
)

_BY_SOURCE_TARGET = {(t.source, t.target): t for t in TRANSITIONS}

# States in which media flows and the recording runs.
LIVE_STATES = frozenset({S.IN_SESSION})
# States in which people may connect (waiting room or hearing).
CONNECTABLE_STATES = frozenset({S.OPENED, S.IN_SESSION, S.RECESS, S.SUSPENDED})


class TransitionRefused(Exception):
    """A transition is not allowed; `forbidden` tells a wrong role from a wrong state."""

    def __init__(self, message: str, *, forbidden: bool) -> None:
        super().__init__(message)
        self.forbidden = forbidden


def transition(source: HearingState, target: HearingState, role: StaffRole) -> Transition:
    """The transition from `source` to `target` if `role` may take it.

    Raises TransitionRefused: forbidden=False when no such transition exists from this state,
    forbidden=True when it exists but not for this role.
    """
    found = _BY_SOURCE_TARGET.get((source, target))
    if found is None:
        raise TransitionRefused(
            f"a hearing that is {source} cannot become {target}", forbidden=False
        )
    if role not in found.roles:
        raise TransitionRefused(f"a {role} may not {found.action} the hearing", forbidden=True)
    return found
