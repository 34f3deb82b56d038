"""The SFU's whole benchmark in one command (issue 18): forwarding, a C peer, hearing mixes.

One process runs, one after the other on the same machine:

1. `sfu_forwarding.run()` - one VP8 publisher to N = 25, 100, 200 counting subscribers through
   the production worker: streams per core, added latency per class (keyframe and delta
   packets, whole frames at the probe) with keyframe pacing on, the re-encode ratio and the
   two-worker scaling;
2. `janus_peer.compare()` - the same clip and clients against Janus VideoRoom (Debian's janus,
   `event_loops` = cores) at the same N, alternating with our worker, both in a network
   namespace across a veth pair: `janus_cpu_over_ours` per N (needs root and janus; when
   either is missing the section says why and the rest still runs);
3. `hearing_mix.run_mix()` - audio-only forwarding (Opus, 50 packets/s) in streams per core, and
   four-person hearings (each sends audio and video, receives the three others) in hearings
   per core at full rate.

The headline gathers each issue 18 target next to its figure; the sections keep everything.
docs/benchmarks.md has the readings. Commands:

    .venv/bin/python bench/sfu_suite.py --json            # everything, ~20 minutes
    .venv/bin/python bench/sfu_suite.py --smoke --json    # tiny sizes, about two minutes
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# the sibling benchmarks, found through the path above
import hearing_mix
import janus_peer
import sfu_forwarding


def _row(forwarding: dict[str, Any], subscribers: int) -> dict[str, Any] | None:
    return next((r for r in forwarding["forwarding"] if r["subscribers"] == subscribers), None)


def headline(
    forwarding: dict[str, Any], peer: dict[str, Any], mix: dict[str, Any]
) -> dict[str, Any]:
    """Each issue 18 target beside the figure measured for it (None: not measured here)."""
    at_25, at_100, at_200 = (_row(forwarding, n) for n in (25, 100, 200))
    ratios = peer.get("janus_cpu_over_ours") or {}
    return {
        "streams_per_core_n200": (
            round(1.0 / at_200["cpu_per_stream"], 1) if at_200 else None
        ),  # target >= 1000
        "janus_cpu_over_ours": ratios,  # target >= 1.5 at N = 100 and 200
        "added_latency_ms_p95_n100": at_100["added_latency_ms_p95"] if at_100 else None,  # <= 10
        "added_latency_ms_p50_n25": at_25["added_latency_ms_p50"] if at_25 else None,  # <= 1
        "audio_streams_per_core": mix.get("audio_streams_per_core"),
        "four_person_hearings_per_core": mix.get("hearings_per_core"),
    }


async def run(smoke: bool, seconds: float, log: Callable[[str], None]) -> dict[str, Any]:
    sizes = [3] if smoke else [25, 100, 200]
    window = 2.0 if smoke else seconds
    forwarding = await sfu_forwarding.run(smoke, log, sizes=sizes, window=window)
    peer: dict[str, Any]
    if os.geteuid() != 0 or shutil.which("janus") is None:
        peer = {"skipped": "needs root and Debian's janus (make test installs it)"}
    else:
        peer = await janus_peer.compare([5] if smoke else sizes, 3.0 if smoke else seconds, log=log)
    mix = await hearing_mix.run_mix(smoke=smoke, seconds=seconds, log=log)
    return {
        "headline": headline(forwarding, peer, mix),
        "forwarding": forwarding,
        "peer": peer,
        "mix": mix,
        "smoke": smoke,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a couple of minutes")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per run")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr if args.json else sys.stdout, flush=True)

    result = uvloop.run(run(args.smoke, args.seconds, log))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
