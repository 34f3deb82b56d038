"""One representative instance of every message type, with non-default fields where possible.

The codec and the client tests are table-driven over this list; a test fails if a message type
has no sample here, so a new message cannot slip in untested.
"""

from __future__ import annotations

from datetime import UTC, datetime

from signaling import messages as m
from signaling.enums import (
    ClientKind,
    HearingRole,
    HearingState,
    ParticipantState,
    RecordingPause,
    StationCause,
)
from signaling.errors import ErrorCode
from signaling.reasons import CloseReason

AT = datetime(2026, 11, 23, 9, 30, 15, 250000, tzinfo=UTC)
PID = "6f1c2f1e-7a0e-4a53-9a8c-4f3a8c6f9b10"
HID = "0b9f8e5c-3a1d-4c2e-8f7a-1e2d3c4b5a69"
RID = "a3d5c7e9-1b2f-4d6a-8c0e-2f4a6b8d0c1e"
HASH = "ab" * 32
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

PARTICIPANT = m.ParticipantInfo(
    participant_id=PID,
    display_name="张三",
    role=HearingRole.PLAINTIFF,
    state=ParticipantState.IN_HEARING,
    room_id="main",
    connected=True,
    muted=True,
    spotlighted=False,
    client_kind=ClientKind.STATION,
)

READINESS = m.Readiness(
    score="okay",
    camera="ok",
    microphone="ok",
    speaker="ok",
    rtt_ms=180,
    loss_percent=0,
    up_kbps=900,
    down_kbps=2400,
    problems=["slow_network"],
)

SAMPLES: list[m.Message] = [
    m.Join(transaction="t-join", hearing_id=HID, client_kind=ClientKind.STATION, user_agent="sc/1"),
    m.Offer(transaction="t-offer", sdp=SDP),
    m.Answer(transaction="t-offer", sdp=SDP),
    m.Leave(transaction="t-leave"),
    m.Heartbeat(transaction="t-hb"),
    m.ConfirmIdentity(transaction="t-id", name="李四", id_digits="123X"),
    m.Consent(transaction="t-consent", accepted_rules=["online_hearing", "no_recording"]),
    m.AttestIdentity(transaction="t-attest", participant_id=PID, note="checked ID card"),
    m.Admit(transaction="t-admit", participant_id=PID),
    m.SendToWaiting(transaction="t-wait", participant_id=PID),
    m.Mute(transaction="t-mute", participant_id=PID),
    m.Unmute(transaction="t-unmute", participant_id=PID),
    m.MuteAll(transaction="t-muteall"),
    m.RequestUnmute(transaction="t-ask"),
    m.Remove(transaction="t-remove", participant_id=PID, reason="disrupting the hearing"),
    m.LockRoom(transaction="t-lock", room_id="main", locked=True),
    m.Spotlight(transaction="t-spot", participant_id=None),
    m.CallWitness(transaction="t-call", participant_id=PID),
    m.DismissWitness(transaction="t-dismiss", participant_id=PID),
    m.MoveToRoom(transaction="t-move", participant_id=PID, room_id="caucus-1"),
    m.OpenConsultation(transaction="t-consult", participant_ids=[PID], label="原告与律师"),
    m.SetHearingState(transaction="t-state", state=HearingState.RECESS, reason="lunch break 午休"),
    m.SetRecording(
        transaction="t-rec",
        recording=False,
        reason=RecordingPause.NON_PUBLIC_EVIDENCE,
        note="商业秘密证据质证",
    ),
    m.Stats(transaction="t-stats"),
    m.StationReport(
        transaction="t-report", cause=StationCause.POWER, detail="on UPS battery", since=AT
    ),
    m.PreAdmit(transaction="t-pre", roles=[HearingRole.AGENT, HearingRole.INTERPRETER]),
    m.ConfirmRecordingHash(transaction="t-hash", recording_id=RID, root_hash=HASH, confirmed=True),
    m.Probe(transaction="t-probe", payload="xxxx", reply_bytes=4),
    m.ReportReadiness(transaction="t-ready", readiness=READINESS),
    m.SetAudioOnly(transaction="t-audio-only", enabled=True),
    m.Result(transaction="t-consult", data={"room_id": "caucus-1", "n": [1, 2.5, None, True]}),
    m.Welcome(
        transaction="t-join",
        hearing_id=HID,
        participant_id=PID,
        display_name="张三",
        role=HearingRole.STATION,
        state=ParticipantState.WAITING,
        room_id=None,
        hearing_state=HearingState.OPENED,
        recording=False,
        ice_servers=[
            m.IceServer(urls=["stun:127.0.0.1:3478"]),
            m.IceServer(
                urls=["turn:127.0.0.1:3478?transport=udp"], username="1700000:p", credential="x"
            ),
        ],
        roster=[PARTICIPANT],
        heartbeat_interval_s=10,
    ),
    m.Error(code=ErrorCode.FORBIDDEN, message="only the judge may mute", transaction="t-mute"),
    m.Roster(participants=[PARTICIPANT]),
    m.HearingStateChanged(
        state=HearingState.IN_SESSION, reason="开庭", changed_at=AT, by=PID, recording=True
    ),
    m.Muted(muted=True, by=PID),
    m.UnmuteRequested(participant_id=PID),
    m.Moved(room_id="caucus-1", state=ParticipantState.IN_PRIVATE_ROOM, by=PID),
    m.RoomLocked(room_id="main", locked=True, by=PID),
    m.VideoPaused(participant_id=PID, reason="bandwidth"),
    m.VideoResumed(participant_id=PID),
    m.Track(mid="3", participant_id=PID, kind="video", source="screen"),
    m.DisconnectEvidence(
        participant_id=PID,
        reason=CloseReason.STATION_POWER,
        last_seen_at=AT,
        detected_at=AT,
        station_cause=StationCause.POWER,
        detail="station reported power loss 12 s before the socket dropped",
    ),
    m.Closed(reason=CloseReason.DUPLICATE_SESSION, message="joined from another device"),
    m.RecordingHash(recording_id=RID, root_hash=HASH, sealed_at=AT),
    m.RecordingAlert(code="DISK_FULL", message="no space left on the recording disk"),
    m.StationReported(
        participant_id=PID,
        cause=StationCause.OTHER,
        detail="the station's backup recording failed: no space left on device",
        since=AT,
    ),
    m.RecordChanged(
        kind="transcript",
        document_id=PID,
        version=3,
        state="signing",
        text="笔录\n\n审判员 王法官：开庭。\n",
        text_sha256="a" * 64,
        signers=[
            m.RecordSigner(
                participant_id=PID, name="张三", role=HearingRole.PLAINTIFF, status="stale"
            )
        ],
    ),
    # -- screen sharing (issue 13.4) --
    m.ScreenShareRequest(transaction="t-ss1"),
    m.ScreenShareAllow(participant_id=PID, transaction="t-ss2"),
    m.ScreenShareDeny(participant_id=PID, reason="请稍后再共享", transaction="t-ss3"),
    m.ScreenShareStart(mid="4", transaction="t-ss4"),
    m.ScreenShareStop(participant_id=None, ended=True, transaction="t-ss5"),
    m.ScreenShare(participant_id=PID, state="live", by=PID, mid="4"),
]
