"""Protocol constants both sides rely on (documented in docs/signaling.md).

Kept in one module so the server, the Python client, the browser mirror and the docs quote the
same numbers.
"""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = 1
SUPPORTED_VERSIONS: Final = frozenset({1})

# One message, as UTF-8 bytes. The largest legitimate message is an SDP offer for a full room
# (~10-20 KiB); 64 KiB leaves room while keeping a hostile client's cost per message small.
MAX_MESSAGE_BYTES: Final = 64 * 1024
# The server's aiohttp `max_msg_size`: above the codec's limit so that a slightly oversized
# message gets a TOO_LARGE error with an explanation rather than a bare close 1009.
WS_MAX_FRAME_BYTES: Final = 2 * MAX_MESSAGE_BYTES

MAX_ID_CHARS: Final = 64
MAX_SDP_CHARS: Final = 60_000

# Heartbeat: the client sends `heartbeat` every `heartbeat_interval_s` (told in `welcome`);
# the server closes with HEARTBEAT_LOST after HEARTBEAT_MISSES intervals without any message.
DEFAULT_HEARTBEAT_INTERVAL_S: Final = 10
HEARTBEAT_MISSES: Final = 3

# Per connection, token bucket: RATE_PER_S requests per second sustained, RATE_BURST at once.
# Above that the server answers RATE_LIMITED; after RATE_STRIKES such answers in a row it closes.
RATE_PER_S: Final = 20
RATE_BURST: Final = 40
RATE_STRIKES: Final = 50
# `join` attempts per participant per minute (a reconnect loop must back off).
JOINS_PER_MINUTE: Final = 10
