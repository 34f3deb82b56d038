"""Consumer: a producer's stream rewritten onto one subscriber's send slot.

Made only by the Router (`router.consume()` / its routing rules), attached by the subscriber
Peer to a send slot (an aiortc transceiver used for SDP only, see aiortc_hooks). The
consumer becomes *active* - its output stream is in the producer's fan-out tuple - once the
subscriber has answered an offer that contains it and its transport is connected; at that
moment a keyframe is requested from the publisher (the late-joiner PLI).

Events:
    "close" (reason: CloseReason) - once.
    "pause" () / "resume" ()
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NewType

from server.ids import ParticipantId, new_id
from signaling.reasons import CloseReason

from .events import EventEmitter
from .forwarding import OutputStream, retransmit

if TYPE_CHECKING:
    from .producer import Producer

log = logging.getLogger(__name__)

ConsumerId = NewType("ConsumerId", str)


class Consumer(EventEmitter):
    """One producer -> one subscriber; see the module docstring for its events."""

    def __init__(self, producer: Producer, subscriber_id: ParticipantId) -> None:
        super().__init__()
        self.id = ConsumerId(new_id())
        self.producer = producer
        self.producer_id = producer.id
        self.producer_peer_id = producer.peer_id
        self.peer_id = subscriber_id
        self.kind = producer.kind
        self.closed = False
        self.close_reason: CloseReason | None = None
        self.paused = False
        self.mid: str | None = None
        self.stream: OutputStream | None = None  # set when attached to a send slot
        self.negotiated = False  # the subscriber answered an offer containing this consumer
        self.transport_ready = False  # the slot's sender started and the send path is bound
        self.nacks_received = 0
        self.keyframe_requests = 0
        producer.attach(self)

    @property
    def active(self) -> bool:
        """True when packets flow: negotiated, connected, neither it nor its producer paused."""
        return (
            self.negotiated
            and self.transport_ready
            and not self.paused
            and not self.closed
            and not self.producer.paused
            and self.stream is not None
            and self.stream.path.ready
        )

    def _refresh(self) -> None:
        was = self.stream is not None and self.stream in self.producer.outputs
        self.producer.update_outputs()
        if self.active and not was:
            self.producer.request_keyframe()

    def _on_nack(self, lost: Iterable[int]) -> None:
        self.nacks_received += 1
        if self.stream is not None and not self.closed:
            retransmit(self.stream, self.producer.history, lost)

    def _on_keyframe_request(self) -> None:
        self.keyframe_requests += 1
        if self.active:
            self.producer.request_keyframe()

    def pause(self) -> None:
        """Stop sending to this subscriber only; idempotent."""
        if self.paused or self.closed:
            return
        self.paused = True
        self._refresh()
        self._emit("pause")

    def resume(self) -> None:
        """Send again (with a keyframe request); idempotent."""
        if not self.paused or self.closed:
            return
        self.paused = False
        self._refresh()
        self._emit("resume")

    def close(self, reason: CloseReason) -> None:
        """Stop forwarding and detach from the producer; idempotent. The subscriber Peer
        frees the send slot and renegotiates (it listens to this event)."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.producer.detach(self)
        self._emit("close", reason)
        self.remove_all_listeners()

    def dump(self) -> dict[str, Any]:
        stream = self.stream
        return {
            "id": self.id,
            "producer_id": self.producer_id,
            "producer_peer_id": self.producer_peer_id,
            "peer_id": self.peer_id,
            "kind": self.kind,
            "mid": self.mid,
            "closed": self.closed,
            "close_reason": self.close_reason,
            "paused": self.paused,
            "active": self.active,
            "negotiated": self.negotiated,
            "ssrc": stream.ssrc if stream else None,
            "packets_sent": stream.packets if stream else 0,
            "retransmitted": stream.retransmitted if stream else 0,
            "nacks_received": self.nacks_received,
            "keyframe_requests": self.keyframe_requests,
        }
