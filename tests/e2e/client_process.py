"""A participant's signaling client as its own process (for tests that kill it or cut its
network): joins, prints "joined", then keeps the connection (and its heartbeat) alive.

usage: python -m tests.e2e.client_process WS_URL COOKIES_JSON HEARING_ID
"""

from __future__ import annotations

import asyncio
import json
import sys

from signaling.client import SignalingClient


async def main(url: str, cookies: dict[str, str], hearing_id: str) -> None:
    async with SignalingClient(url, cookies=cookies) as client:
        await client.join(hearing_id)
        print("joined", flush=True)
        await client.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]))
