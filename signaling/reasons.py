"""Why a participant, a peer or a hearing's media ended.

A court must tell a walk-out from a network failure (OLR 25), so every close in the SFU, the
hearing service and the signaling carries one of these codes; it is written to the hearing's
event log and sent to the affected client.
"""

from __future__ import annotations

from enum import StrEnum


class CloseReason(StrEnum):
    CLIENT_LEFT = "CLIENT_LEFT"  # the participant clicked leave
    REMOVED = "REMOVED"  # removed by the judge or clerk
    DISMISSED = "DISMISSED"  # a witness or expert dismissed after testifying (OLR 26)
    JUDGE_ENDED = "JUDGE_ENDED"  # the hearing was closed
    DUPLICATE_SESSION = "DUPLICATE_SESSION"  # the same participant connected again elsewhere
    ICE_FAILED = "ICE_FAILED"  # the media transport failed
    NETWORK_LOST = "NETWORK_LOST"  # the signaling socket dropped without a goodbye
    HEARTBEAT_LOST = "HEARTBEAT_LOST"  # no heartbeat within the deadline
    STATION_POWER = "STATION_POWER"  # a station reported a power problem
    STATION_NETWORK = "STATION_NETWORK"  # a station reported a network problem
    WORKER_DIED = "WORKER_DIED"  # the SFU worker hosting the hearing exited
    SERVER_SHUTDOWN = "SERVER_SHUTDOWN"  # the server is stopping
    PRODUCER_CLOSED = "PRODUCER_CLOSED"  # a consumer's producer went away
    ROOM_CHANGED = "ROOM_CHANGED"  # media re-routed because someone changed rooms
    # The server ended the connection because of what the client sent: a flood (RATE_STRIKES
    # refusals in a row) or a frame over WS_MAX_FRAME_BYTES (close 1009). Never a network loss.
    PROTOCOL_VIOLATION = "PROTOCOL_VIOLATION"
    # The session the connection was opened with ended: its invitation link was revoked or
    # re-issued, or redeemed again on another device.
    SESSION_REVOKED = "SESSION_REVOKED"
    # The connection's `join` was refused (NOT_FOUND, FORBIDDEN, WRONG_STATE); it was never in
    # the hearing, so nothing is logged there.
    JOIN_REFUSED = "JOIN_REFUSED"
