"""What the hearing's events look like on the signaling wire (docs/signaling.md, section 7).

The hearing rules (`server.hearings.live`) speak in their own events (`LiveEvent`); this module
alone turns them into signaling messages for one viewer, so that the rules know nothing of the
protocol and the WebSocket layer nothing of the rules' event types.
"""

from __future__ import annotations

from datetime import datetime

from server.hearings import live as rules
from server.ids import ParticipantId
from signaling import messages as m
from signaling.enums import StationCause


def participant_info(
    view: rules.AttendeeView, spotlight: ParticipantId | None
) -> m.ParticipantInfo:
    return m.ParticipantInfo(
        participant_id=view.participant_id,
        display_name=view.display_name[:64],
        role=view.role,
        state=view.state,
        room_id=view.room,
        connected=view.connected,
        muted=view.muted,
        spotlighted=view.participant_id == spotlight,
        readiness=m.Readiness.model_validate(view.readiness) if view.readiness else None,
    )


def roster_for(live: rules.LiveHearing, viewer: ParticipantId) -> list[m.ParticipantInfo]:
    """The roster as `viewer` may see it (the rules decide who that is)."""
    views = live.roster_for(live.attendees[viewer])
    return [participant_info(v, live.spotlight) for v in views]


def to_wire(
    event: rules.LiveEvent,
    live: rules.LiveHearing | None,
    viewer: ParticipantId | None,
    now: datetime,
) -> m.Message:
    """The signaling message that tells `viewer` (in hearing `live`) about `event`."""
    spotlight = live.spotlight if live else None
    if isinstance(event, rules.RosterChanged):
        return m.Roster(participants=[participant_info(a, spotlight) for a in event.attendees])
    if isinstance(event, rules.HearingStateChanged):
        return m.HearingStateChanged(
            state=event.state,
            reason=event.reason[:500] or "-",
            changed_at=now,
            by=event.by,
            recording=event.recording,
            recording_pause=event.recording_pause,
        )
    if isinstance(event, rules.YouChanged):
        return m.Moved(room_id=event.room, state=event.state, by=event.by)
    if isinstance(event, rules.MutedChanged):
        return m.Muted(muted=event.muted, by=event.by)
    if isinstance(event, rules.UnmuteRequested):
        return m.UnmuteRequested(participant_id=event.participant_id)
    if isinstance(event, rules.SpotlightChanged):
        return m.Roster(participants=roster_for(live, viewer) if live and viewer else [])
    if isinstance(event, rules.RoomLockChanged):
        return m.RoomLocked(room_id=rules.MAIN_ROOM, locked=event.locked, by=event.by)
    if isinstance(event, rules.RecordingSealed):
        return m.RecordingHash(
            recording_id=event.recording_id, root_hash=event.root_hash, sealed_at=event.at
        )
    if isinstance(event, rules.RecordingAlert):
        return m.RecordingAlert(code=event.code[:32], message=event.message[:500])
    if isinstance(event, rules.RecordChanged):
        inline = len(event.text) <= m.RECORD_TEXT_INLINE
        return m.RecordChanged(
            kind="agreement" if event.kind == "agreement" else "transcript",
            document_id=event.document_id,
            version=event.version,
            state=event.state,  # type: ignore[arg-type]
            text=event.text if inline else None,
            text_sha256=event.text_sha256,
            signers=[
                m.RecordSigner(
                    participant_id=pid,
                    name=name[:64] or "-",
                    role=role,
                    status=status,  # type: ignore[arg-type]
                )
                for pid, name, role, status in event.signers[:50]
            ],
        )
    if isinstance(event, rules.StationReported):
        return m.StationReported(
            participant_id=event.participant_id,
            cause=StationCause(event.cause),
            detail=event.detail or None,
            since=event.since,
        )
    if isinstance(event, rules.ScreenShareChanged):
        return m.ScreenShare(
            participant_id=event.participant_id,
            state=event.state,  # type: ignore[arg-type]
            by=event.by,
            reason=event.reason or None,
            mid=event.mid,
        )
    return m.DisconnectEvidence(
        participant_id=event.participant_id,
        reason=event.cause,
        last_seen_at=event.at,
        detected_at=event.at,
        detail=event.detail or None,
    )
