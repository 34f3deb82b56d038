"""The bridge from the hearing rules to the SFU: one Router per hearing, placed by the rules.

``MediaService`` owns the routers of this process (the WorkerPool variant places them in
worker processes). ``RouterRouting`` is what a ``LiveHearing`` sees as its ``MediaRouting``:
``place(participant, room)`` becomes the router's room for that peer, where ``None`` (waiting,
outside the session, disconnected) is a room of one, so the routing rule "same room" is the
only rule media obeys.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiortc import RTCIceServer

from server.ids import HearingId, ParticipantId
from server.sfu import Peer, Router
from signaling.reasons import CloseReason

log = logging.getLogger(__name__)


def alone(participant_id: ParticipantId) -> str:
    """The room of one: media goes nowhere and comes from nowhere."""
    return f"alone:{participant_id}"


class MediaService:
    """The routers of this process, one per hearing, made on first use."""

    def __init__(self, ice_servers: Sequence[RTCIceServer] = ()) -> None:
        self._ice_servers = list(ice_servers)
        self._routers: dict[HearingId, Router] = {}

    def router(self, hearing_id: HearingId) -> Router:
        router = self._routers.get(hearing_id)
        if router is None or router.closed:
            router = Router(hearing_id, ice_servers=self._ice_servers)
            self._routers[hearing_id] = router
        return router

    def existing(self, hearing_id: HearingId) -> Router | None:
        router = self._routers.get(hearing_id)
        return router if router is not None and not router.closed else None

    async def close(self, reason: CloseReason) -> None:
        routers = list(self._routers.values())
        self._routers.clear()
        for router in routers:
            router.close(reason)
        for router in routers:
            await router.wait_closed()


class RouterRouting:
    """`live.MediaRouting` over the hearing's Router. Rooms are remembered for peers that do
    not exist yet (a participant's room is decided before their peer is made)."""

    def __init__(self, media: MediaService, hearing_id: HearingId) -> None:
        self._media = media
        self._hearing_id = hearing_id
        self._rooms: dict[ParticipantId, str] = {}
        self._muted: dict[ParticipantId, bool] = {}

    def room_for(self, participant_id: ParticipantId) -> str:
        return self._rooms.get(participant_id, alone(participant_id))

    def add_peer(self, participant_id: ParticipantId) -> Peer:
        """Create the participant's peer in the room the rules chose (closing a stale one)."""
        router = self._media.router(self._hearing_id)
        router.remove_peer(participant_id, CloseReason.DUPLICATE_SESSION)
        peer = router.add_peer(participant_id, room=self.room_for(participant_id))
        if self._muted.get(participant_id):
            router.set_paused(participant_id, "audio", True)
        return peer

    def remove_peer(self, participant_id: ParticipantId, reason: CloseReason) -> None:
        router = self._media.existing(self._hearing_id)
        if router is not None:
            router.remove_peer(participant_id, reason)

    async def place(self, participant_id: ParticipantId, room: str | None) -> None:
        target = room if room is not None else alone(participant_id)
        self._rooms[participant_id] = target
        router = self._media.existing(self._hearing_id)
        if router is not None and participant_id in router.peers:
            router.set_room(participant_id, target)

    async def set_muted(self, participant_id: ParticipantId, muted: bool) -> None:
        self._muted[participant_id] = muted
        router = self._media.existing(self._hearing_id)
        if router is not None:
            router.set_paused(participant_id, "audio", muted)
