"""The SFU: packet-level media routing on aiortc (ARCHITECTURE section 4.1).

mediasoup's shape: `Router` (one per hearing) -> `Peer` (one RTCPeerConnection per
participant) -> `Producer` (an incoming stream) and `Consumer` (that stream rewritten onto one
subscriber). `server.worker` places routers in SFU worker processes.
"""

from .consumer import Consumer, ConsumerId
from .peer import GlareError, NegotiationError, Peer, PeerClosedError, PeerError
from .producer import Producer, ProducerId
from .router import DEFAULT_ROOM, Router, RouterClosedError

__all__ = [
    "DEFAULT_ROOM",
    "Consumer",
    "ConsumerId",
    "GlareError",
    "NegotiationError",
    "Peer",
    "PeerClosedError",
    "PeerError",
    "Producer",
    "ProducerId",
    "Router",
    "RouterClosedError",
]
