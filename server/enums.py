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
    "EventKind",
    "HearingMode",
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


class HearingMode(StrEnum):
    """How a case is heard: a judge hears it, or a mediator mediates it (staff console)."""

    HEARING = "hearing"
    MEDIATION = "mediation"


class EventKind(StrEnum):
    """What an entry of a hearing's event log records (its `kind`). The log is evidence: a
    value, once written, keeps its meaning for good; add new kinds, never rename one."""

    HEARING_SCHEDULED = "hearing.scheduled"
    HEARING_STATE = "hearing.state"
    HEARING_UPDATED = "hearing.updated"  # booking changed: time, length, station, staff
    PARTICIPANT_ADDED = "participant.added"
    PARTICIPANT_CONNECTED = "participant.connected"
    PARTICIPANT_RECONNECTED = "participant.reconnected"
    PARTICIPANT_JOINED = "participant.joined"
    PARTICIPANT_ADMITTED = "participant.admitted"
    PARTICIPANT_SENT_TO_WAITING = "participant.sent_to_waiting"
    PARTICIPANT_REMOVED = "participant.removed"
    PARTICIPANT_DEPARTED = "participant.departed"
    PARTICIPANT_DUPLICATE_SESSION = "participant.duplicate_session"
    PARTICIPANT_READINESS = "participant.readiness"  # a party's device check (issue 13)
    INVITATION_ISSUED = "invitation.issued"
    INVITATION_REDEEMED = "invitation.redeemed"
    INVITATION_REBOUND = "invitation.rebound"
    INVITATION_REVOKED = "invitation.revoked"
    IDENTITY_CONFIRMED = "identity.confirmed"
    IDENTITY_FAILED = "identity.failed"
    CONSENT_GIVEN = "consent.given"
    ROOM_PRE_ADMITTED = "room.pre_admitted"
    ROOM_MOVED = "room.moved"
    ROOM_VISITED = "room.visited"
    CONTROL_MUTED = "control.muted"
    CONTROL_UNMUTED = "control.unmuted"
    CONTROL_UNMUTE_REQUESTED = "control.unmute_requested"
    CONTROL_SPOTLIGHT = "control.spotlight"
    CONTROL_LOCK = "control.lock"
    WITNESS_CALLED = "witness.called"
    WITNESS_DISMISSED = "witness.dismissed"
    CONSULTATION_OPENED = "consultation.opened"
    CONSULTATION_ENDED = "consultation.ended"
    RECORDING_PAUSED = "recording.paused"
    RECORDING_RESUMED = "recording.resumed"
    RECORDING_SEALED = "recording.sealed"
    RECORDING_PROBLEM = "recording.problem"
    RECORDING_RECOVERED = "recording.recovered"
    RECORDING_REVIEWED = "recording.reviewed"
    RECORDING_CONFIRMED = "recording.confirmed"
    RECORDING_DISPUTED = "recording.disputed"
    STATION_REPORT = "station.report"
    STATION_BACKUP_STARTED = "station.backup_started"
    STATION_BACKUP_RECEIVED = "station.backup_received"
    # The hearing record (issue 15): a mediation ends in effect (the last party signed the
    # agreement) or failed (a party refused, with the reason); the court's statistics count them.
    AGREEMENT_EFFECTIVE = "agreement.effective"
    MEDIATION_FAILED = "mediation.failed"
    # The hearing record's workflow (issue 15): a version saved, signatures asked for, a
    # signature or a refusal (with its reason), a signing attempt refused (with the error
    # code), a transcript finalised and sealed.
    RECORD_SAVED = "record.saved"
    RECORD_SIGNING_REQUESTED = "record.signing_requested"
    RECORD_SIGNED = "record.signed"
    RECORD_SIGNING_REFUSED = "record.signing_refused"
    RECORD_SIGNATURE_REJECTED = "record.signature_rejected"
    RECORD_FINALISED = "record.finalised"
    RECORD_SENT_ON = "record.sent_on"  # a failed mediation sent on to a hearing, with its record
    # Screen sharing (issue 13.4): who asked, who allowed or denied (and why), which m-line
    # went live, who stopped it and why.
    SCREEN_SHARE_REQUESTED = "screen_share.requested"
    SCREEN_SHARE_ALLOWED = "screen_share.allowed"
    SCREEN_SHARE_DENIED = "screen_share.denied"
    SCREEN_SHARE_STARTED = "screen_share.started"
    SCREEN_SHARE_STOPPED = "screen_share.stopped"
