"""What the segment rule (issue 9: no NACK answered outside what was sent) costs per packet.

Runs `forward()` and `retransmit()` of the current server/sfu/forwarding.py against the same
functions of a git revision from before the rule (default f29ec0d), in one process, on the same
packets: 1200-byte VP8-sized payloads, 8 subscriber streams, a real pylibsrtp session per
stream (AES-128-CM/HMAC-SHA1-80, as DTLS-SRTP negotiates), `sendto` into a no-op. Reports the
per-forwarded-packet CPU of each and the ratio. Instructions, not seconds, would be steadier on
a shared machine; the ratio of two interleaved runs is what to read.

    .venv/bin/python bench/forwarding_segments.py [--rev f29ec0d] [--packets 20000] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from pylibsrtp import Policy, Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_revision(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:server/sfu/forwarding.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "forwarding_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("forwarding_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class NullTransport:
    def sendto(self, data: bytes, addr: Any) -> None:
        return None


def outputs(module: ModuleType, count: int) -> tuple[Any, ...]:
    made = []
    for i in range(count):
        policy = Policy(key=os.urandom(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=1)
        path = module.SendPath()
        path.bind(Session(policy), NullTransport(), ("127.0.0.1", 9))
        out = module.OutputStream(0x1000 + i, 0x2000 + i, path)
        out.configure(96, 97, 90000, mid_ext_id=4, mid=str(i))
        made.append(out)
    return tuple(made)


def packets(count: int) -> list[bytes]:
    payload = os.urandom(1200)
    return [
        struct.pack("!BBHII", 0x80, 96, i & 0xFFFF, 3000 * (i // 4), 0xABCDEF) + payload
        for i in range(count)
    ]


def run(module: ModuleType, data: list[bytes], streams: int) -> float:
    outs = outputs(module, streams)
    history = module.PacketHistory()
    start = time.process_time()
    for i, packet in enumerate(data):
        history.put(packet, i & 0xFFFF)
        module.forward(packet, outs, 1.0 + i / 100)
        if i % 50 == 49:  # a NACK of 2 packets every 50, as a lossy subscriber sends
            module.retransmit(outs[0], history, [(outs[0].last_seq - 3) & 0xFFFF])
    return (time.process_time() - start) / (len(data) * streams)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="f29ec0d")
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--only",
        choices=("before", "now"),
        help="run one side once and exit (for instruction counts under valgrind's callgrind)",
    )
    args = parser.parse_args()
    from server.sfu import forwarding as now

    before = load_revision(args.rev)
    data = packets(args.packets)
    if args.only:
        run(before if args.only == "before" else now, data, args.streams)
        return
    costs: dict[str, list[float]] = {"before": [], "now": []}
    for _ in range(args.rounds):  # interleaved, so both see the same machine
        costs["before"].append(run(before, data, args.streams))
        costs["now"].append(run(now, data, args.streams))
    best = {k: min(v) for k, v in costs.items()}
    result = {
        "rev_before": args.rev,
        "us_per_forwarded_packet_before": round(best["before"] * 1e6, 3),
        "us_per_forwarded_packet_now": round(best["now"] * 1e6, 3),
        "ratio_now_over_before": round(best["now"] / best["before"], 3),
        "packets": args.packets,
        "streams": args.streams,
        "rounds": args.rounds,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:34} {value}")


if __name__ == "__main__":
    main()
