"""Router: the media routing of one hearing.

Made by the hearing service (or a worker), one per hearing. It owns the hearing's Peers and
decides who receives whom. The routing rule is explicit and is the one place the hearing rules
(waiting room, caucus private rooms, witness isolation, mute) act on media:

    subscriber S receives producer P of peer A  iff
        A != S, S is ready (answered), A.room == S.room,
        and (audience(A) is None or S in audience(A))

Only *admitted* producers are routed or reported (screen sharing, issue 13.4): a peer's
first audio and first video producer are its microphone and camera; any further one is
*held* (drained, never forwarded, never recorded, never in "producer" events) unless
`set_screen(peer, mid)` permits the video m-line `mid` as that peer's shared screen.
Withdrawing the permission (`set_screen(peer, None)`) holds the screen producer again: its
consumers close with ROOM_CHANGED and "producerclose" is emitted for it.

`set_room()` / `set_audience()` change the inputs; the router then reconciles: consumers that
are no longer allowed close with reason ROOM_CHANGED, missing ones are created, and the
affected peers renegotiate by themselves (their "offer" events). Mute is separate and cheap:
`set_paused(peer, kind, True)` pauses that peer's producers (no packets forwarded, no
renegotiation); resuming requests a keyframe. New producers of a muted peer start paused.

Events:
    "producer" (producer: Producer) - a stream of any peer was admitted (recorders observe the
        hearing through this and "producerclose"; existing ones are in `producers()`);
        `producer.source` says "camera", "microphone" or "screen".
    "producerclose" (producer: Producer, reason: CloseReason) - an admitted stream closed or
        its screen permission was withdrawn.
    "peerclose" (peer_id: ParticipantId, reason: CloseReason)
    "close" (reason: CloseReason) - once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer

from server.ids import HearingId, ParticipantId
from signaling.reasons import CloseReason

from .adaptation import Adaptation
from .consumer import Consumer
from .events import EventEmitter
from .peer import Peer, PeerClosedError
from .producer import Producer, ProducerId

log = logging.getLogger(__name__)

DEFAULT_ROOM = "main"


class RouterClosedError(Exception):
    """The router was closed."""


class Router(EventEmitter):
    """One hearing's media routing; see the module docstring for the rule and events."""

    def __init__(
        self,
        hearing_id: HearingId,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        pli_interval: float = 0.5,
    ) -> None:
        super().__init__()
        self.id = hearing_id
        self.closed = False
        self.close_reason: CloseReason | None = None
        self.peers: dict[ParticipantId, Peer] = {}
        self._ice_servers = list(ice_servers)
        self._pli_interval = pli_interval
        self._audience: dict[ParticipantId, frozenset[ParticipantId]] = {}
        self._muted: dict[ParticipantId, set[str]] = {}
        self._consumers: dict[tuple[ProducerId, ParticipantId], Consumer] = {}
        self._closing_peers: list[Peer] = []
        self.adaptation = Adaptation(self)  # line adaptation: video gives way before audio
        self._screens: dict[ParticipantId, str] = {}  # peer -> mid of its permitted screen

    # --- peers ---------------------------------------------------------------------------

    def add_peer(self, peer_id: ParticipantId, *, room: str = DEFAULT_ROOM) -> Peer:
        """Create the peer of a participant; its client then calls `peer.handle_offer()`.

        Raises RouterClosedError, or ValueError if the participant already has a live peer
        (close it first, e.g. with DUPLICATE_SESSION).
        """
        if self.closed:
            raise RouterClosedError(self.id)
        if peer_id in self.peers:
            raise ValueError(f"participant {peer_id} already has a peer")
        peer = Peer(
            peer_id,
            room,
            RTCConfiguration(iceServers=list(self._ice_servers)),
            pli_interval=self._pli_interval,
        )
        self.peers[peer_id] = peer
        self.adaptation.start()
        peer.on("producer", self._on_producer)
        peer.on("ready", self._reconcile)
        peer.on("close", lambda reason: self._on_peer_close(peer, reason))
        return peer

    def get_peer(self, peer_id: ParticipantId) -> Peer | None:
        return self.peers.get(peer_id)

    def remove_peer(self, peer_id: ParticipantId, reason: CloseReason) -> None:
        """Close a participant's peer (no-op if absent)."""
        peer = self.peers.get(peer_id)
        if peer is not None:
            peer.close(reason)

    # --- routing control -----------------------------------------------------------------

    def can_receive(self, publisher: ParticipantId, subscriber: ParticipantId) -> bool:
        """The routing rule (module docstring)."""
        a = self.peers.get(publisher)
        s = self.peers.get(subscriber)
        if a is None or s is None or a is s or a.closed or s.closed or not s.ready:
            return False
        if a.room != s.room:
            return False
        audience = self._audience.get(publisher)
        return audience is None or subscriber in audience

    def set_room(self, peer_id: ParticipantId, room: str) -> None:
        """Move a participant to `room` (waiting room, main room, a caucus...).

        Raises KeyError if the participant has no peer here.
        """
        peer = self.peers[peer_id]
        if peer.room == room:
            return
        peer.room = room
        self._reconcile()

    def set_audience(
        self, peer_id: ParticipantId, audience: Collection[ParticipantId] | None
    ) -> None:
        """Restrict who (within the room) receives this participant; None = everyone."""
        if audience is None:
            self._audience.pop(peer_id, None)
        else:
            self._audience[peer_id] = frozenset(audience)
        self._reconcile()

    def set_paused(self, peer_id: ParticipantId, kind: str | None, paused: bool) -> None:
        """Mute/unmute a participant's audio, video or both (kind None) for everyone."""
        kinds = {"audio", "video"} if kind is None else {kind}
        muted = self._muted.setdefault(peer_id, set())
        muted.difference_update(kinds) if not paused else muted.update(kinds)
        peer = self.peers.get(peer_id)
        if peer is None:
            return
        for producer in peer.producers.values():
            if producer.kind in kinds:
                producer.pause() if paused else producer.resume()

    def consume(self, producer: Producer, subscriber_id: ParticipantId) -> Consumer:
        """Forward `producer` to a subscriber (idempotent per pair).

        Normally called by the routing rule; raises PermissionError if the rule forbids it,
        PeerClosedError / KeyError if either side is gone.
        """
        if producer.closed:
            raise PeerClosedError(producer.peer_id)
        subscriber = self.peers[subscriber_id]
        if producer.source is None:
            raise PermissionError(f"producer {producer.id} is held (not admitted)")
        if not self.can_receive(producer.peer_id, subscriber_id):
            raise PermissionError(f"{subscriber_id} may not receive {producer.peer_id}")
        key = (producer.id, subscriber_id)
        existing = self._consumers.get(key)
        if existing is not None and not existing.closed:
            return existing
        consumer = Consumer(producer, subscriber_id)
        self._consumers[key] = consumer
        consumer.on("close", lambda reason: self._consumers.pop(key, None))
        subscriber._add_consumer(consumer)
        self.adaptation.on_consumer(consumer)
        return consumer

    def _reconcile(self) -> None:
        if self.closed:
            return
        for (_producer_id, subscriber_id), consumer in list(self._consumers.items()):
            if consumer.closed:
                continue
            if not self.can_receive(consumer.producer_peer_id, subscriber_id):
                consumer.close(CloseReason.ROOM_CHANGED)
        for publisher in list(self.peers.values()):
            for producer in list(publisher.producers.values()):
                if producer.source is None:
                    continue  # held: never forwarded
                for subscriber_id in list(self.peers):
                    if (producer.id, subscriber_id) in self._consumers:
                        continue
                    if self.can_receive(publisher.id, subscriber_id):
                        self.consume(producer, subscriber_id)

    def producers(self) -> list[Producer]:
        """Every open producer of the hearing (for observers that start late)."""
        return [
            p
            for peer in self.peers.values()
            for p in peer.producers.values()
            if not p.closed and p.source is not None
        ]

    # --- screen sharing (issue 13.4) -------------------------------------------------------

    def set_screen(self, peer_id: ParticipantId, mid: str | None) -> None:
        """Permit the peer's video m-line `mid` to be forwarded (and recorded) as its shared
        screen, or (None) withdraw the permission. Works in either order with the client's
        offer that adds the m-line. Only one mid per peer; the hearing rules decide who."""
        if mid is None:
            self._screens.pop(peer_id, None)
        else:
            self._screens[peer_id] = mid
        peer = self.peers.get(peer_id)
        if peer is not None:
            for producer in list(peer.producers.values()):
                if producer.source in (None, "screen"):
                    self._admit(producer, self._screen_source(producer))

    def _screen_source(self, producer: Producer) -> str | None:
        screen = self._screens.get(producer.peer_id)
        if producer.kind == "video" and screen is not None and producer.mid == screen:
            return "screen"
        return None

    def _first_source(self, producer: Producer) -> str | None:
        """A new producer's source: the peer's microphone / camera if it has none yet, its
        permitted screen, or None (held)."""
        screen = self._screen_source(producer)
        if screen is not None:
            return screen
        main = "camera" if producer.kind == "video" else "microphone"
        peer = self.peers.get(producer.peer_id)
        others = peer.producers.values() if peer is not None else ()
        if any(o is not producer and not o.closed and o.source == main for o in others):
            log.warning(
                "router %s: peer %s offered another %s stream without permission; held",
                self.id,
                producer.peer_id,
                producer.kind,
            )
            return None
        return main

    def _admit(self, producer: Producer, source: str | None) -> None:
        """Make `producer` routable as `source`, or hold it (None); emits the events."""
        if producer.closed or source == producer.source:
            return
        if producer.source is not None:
            producer.source = None
            for consumer in list(self._consumers.values()):
                if consumer.producer is producer:
                    consumer.close(CloseReason.ROOM_CHANGED)
            self._emit("producerclose", producer, CloseReason.ROOM_CHANGED)
        if source is None:
            return
        producer.source = source
        if producer.kind in self._muted.get(producer.peer_id, ()):
            producer.pause()
        self._reconcile()
        self._emit("producer", producer)

    def _on_producer(self, producer: Producer) -> None:
        def closed(reason: CloseReason) -> None:
            if producer.source is not None:
                self._emit("producerclose", producer, reason)

        producer.on("close", closed)
        self._admit(producer, self._first_source(producer))

    def _on_peer_close(self, peer: Peer, reason: CloseReason) -> None:
        if self.peers.get(peer.id) is peer:
            del self.peers[peer.id]
            self._screens.pop(peer.id, None)  # a permission never outlives the connection
        self._emit("peerclose", peer.id, reason)

    # --- lifecycle -----------------------------------------------------------------------

    def close(self, reason: CloseReason) -> None:
        """Close every peer with `reason`, then the router; idempotent."""
        if self.closed:
            return
        self.adaptation.stop()
        self._closing_peers.extend(self.peers.values())
        for peer in self._closing_peers:
            peer.close(reason)
        self.closed = True
        self.close_reason = reason
        self._emit("close", reason)

    async def wait_closed(self) -> None:
        """Wait for every peer closed by close() (or still open) to finish tearing down."""
        peers = self._closing_peers + list(self.peers.values())
        await asyncio.gather(*(p.wait_closed() for p in peers))

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "closed": self.closed,
            "close_reason": self.close_reason,
            "peers": [p.dump() for p in self.peers.values()],
            "audience": {k: sorted(v) for k, v in self._audience.items()},
            "muted": {k: sorted(v) for k, v in self._muted.items() if v},
            "screens": dict(self._screens),
        }
