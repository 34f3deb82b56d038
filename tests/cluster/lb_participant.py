"""tests/fault/participant.py on this machine's loopback: a participant process (the station
client's session, rejoining by itself 0.5 s after each end) that offers only loopback ICE
candidates, as the node processes of tests/cluster do.

usage: python -m tests.cluster.lb_participant '<the JSON of tests/fault/participant.py>'
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from server.sfu import aiortc_hooks
from tests.fault.participant import main, speak_like_a_browser

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    aiortc_hooks.install_host_addresses(["127.0.0.1"])
    speak_like_a_browser()
    asyncio.run(main(json.loads(sys.argv[1])))
