"""A small network emulator for the fault suite: participants on lines we can spoil.

This kernel has no `netem` qdisc, so each fault is built from what it has:

* one bridge `scadbr` (10.240.0.1/24) in this namespace, where the court listens;
* per participant a network namespace `scad<N>` joined to the bridge by a veth pair
  (`scadh<N>` here, `scadn<N>` inside, 10.240.0.<10+N>/24);
* random loss: nftables inside the namespace, `numgen random mod 100 < P drop` on UDP in both
  directions (`Line.loss(P)`), i.e. on the media, not on the signaling's TCP;
* a downlink cap: `tc tbf` on the bridge side of the veth (`Line.cap_down(kbit)`), whose
  queue (300 ms of it) overflows as a real capped line does;
* a blackout: nftables dropping everything in and out of the namespace (`Line.blackout()`);
* a long round trip: `DelayRelay`, a seeded relay on a TUN device (see there).

Names start with `scad` and addresses stay inside 10.240.0.0/16. Everything is removed by
`Lab.close()` (and leftovers of a killed run by `Lab.open()`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BRIDGE = "scadbr"
HOST_IP = "10.240.0.1"
PREFIX = 24


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one iproute2 / nft / tc command (blocking: call through asyncio.to_thread)."""
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=30)


def usable() -> str | None:
    """Why this machine cannot run the fault suite, or None."""
    if os.geteuid() != 0:
        return "the fault suite needs root (network namespaces, tc, nftables)"
    for tool in ("ip", "tc", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (the Makefile's Debian list installs it)"
    return None


@dataclass
class Line:
    """One participant's namespace and line."""

    index: int
    faults: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return f"scad{self.index}"

    @property
    def host_link(self) -> str:
        return f"scadh{self.index}"

    @property
    def ns_link(self) -> str:
        return f"scadn{self.index}"

    @property
    def ip(self) -> str:
        return f"10.240.0.{10 + self.index}"

    def exec_prefix(self) -> list[str]:
        """Run a command inside this line's namespace."""
        return ["ip", "netns", "exec", self.name]

    def create(self) -> None:
        run("ip", "netns", "add", self.name)
        run("ip", "link", "add", self.host_link, "type", "veth", "peer", "name", self.ns_link)
        run("ip", "link", "set", self.ns_link, "netns", self.name)
        run("ip", "link", "set", self.host_link, "master", BRIDGE)
        run("ip", "link", "set", self.host_link, "up")
        inside = self.exec_prefix()
        run(*inside, "ip", "addr", "add", f"{self.ip}/{PREFIX}", "dev", self.ns_link)
        run(*inside, "ip", "link", "set", self.ns_link, "up")
        run(*inside, "ip", "link", "set", "lo", "up")

    def destroy(self) -> None:
        run("ip", "link", "del", self.host_link, check=False)
        run("ip", "netns", "del", self.name, check=False)

    def _nft(self, table: str, rule: str) -> None:
        script = (
            f"table inet {table} {{\n"
            "  chain input {\n    type filter hook input priority 0; policy accept;\n"
            f"    {rule}\n  }}\n"
            "  chain output {\n    type filter hook output priority 0; policy accept;\n"
            f"    {rule}\n  }}\n}}\n"
        )
        subprocess.run(
            [*self.exec_prefix(), "nft", "-f", "-"],
            input=script,
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.faults.add(table)

    def _clear(self, table: str) -> None:
        if table in self.faults:
            run(*self.exec_prefix(), "nft", "delete", "table", "inet", table, check=False)
            self.faults.discard(table)

    def loss(self, percent: int) -> None:
        """Lose `percent` % of UDP packets each way at random (0: no loss)."""
        self._clear("scadloss")
        if percent:
            self._nft("scadloss", f"meta l4proto udp numgen random mod 100 < {percent} drop")

    def blackout(self, on: bool = True) -> None:
        """Drop every packet in and out (the line is dead), or restore it."""
        self._clear("scadblack")
        if on:
            self._nft("scadblack", "drop")

    def cap_down(self, kbit: int | None) -> None:
        """Cap what reaches this participant at `kbit` kbit/s (None: no cap)."""
        run("tc", "qdisc", "del", "dev", self.host_link, "root", check=False)
        if kbit:
            run(
                "tc", "qdisc", "add", "dev", self.host_link, "root", "tbf",
                "rate", f"{kbit}kbit", "burst", "6kb", "latency", "300ms",
            )  # fmt: skip

    def cap_up(self, kbit: int | None) -> None:
        """Cap what this participant sends at `kbit` kbit/s (None: no cap)."""
        inside = self.exec_prefix()
        run(*inside, "tc", "qdisc", "del", "dev", self.ns_link, "root", check=False)
        if kbit:
            run(
                *inside, "tc", "qdisc", "add", "dev", self.ns_link, "root", "tbf",
                "rate", f"{kbit}kbit", "burst", "6kb", "latency", "300ms",
            )  # fmt: skip


class Lab:
    """The bridge and the lines (module docstring)."""

    def __init__(self, count: int) -> None:
        self.lines = [Line(i + 1) for i in range(count)]

    def open(self) -> None:
        self.close()
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{HOST_IP}/{PREFIX}", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        for line in self.lines:
            line.create()

    def close(self) -> None:
        for line in self.lines:
            line.destroy()
        run("ip", "link", "del", BRIDGE, check=False)


# --- a long round trip ---------------------------------------------------------------------------

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
RELAY_MARK = 0x5CAD
RELAY_TABLE = "240"


class DelayRelay:
    """Everything a participant sends to the court waits `delay_ms` (plus a seeded jitter of
    up to `jitter_ms`) before it leaves: a round trip `delay_ms` longer, with no netem.

    Inside the namespace, the route to the court (10.240.0.1/32, more specific than the
    line's /24) goes into a TUN device `scadt<N>`; this relay (a process in the namespace:
    `python -m tests.fault.netem relay scadt<N> DELAY_MS JITTER_MS SEED`) reads each IP packet
    from it, holds it, and sends it on through a raw socket whose firewall mark selects a
    routing table that goes out of the veth directly. Packets keep their order (the jitter
    never reorders: each waits at least as long as the one before it).
    """

    def __init__(self, line: Line, delay_ms: int, jitter_ms: int = 10, seed: int = 16) -> None:
        self.line, self.delay_ms, self.jitter_ms, self.seed = line, delay_ms, jitter_ms, seed
        self.device = f"scadt{line.index}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        inside = self.line.exec_prefix()
        run(*inside, "ip", "tuntap", "add", "dev", self.device, "mode", "tun")
        run(*inside, "ip", "link", "set", self.device, "up")
        relay = [sys.executable, "-m", "tests.fault.netem", "relay", self.device]
        relay += [str(self.delay_ms), str(self.jitter_ms), str(self.seed)]
        self.process = subprocess.Popen(
            [*inside, *relay],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == b"ready"
        run(*inside, "ip", "rule", "add", "fwmark", str(RELAY_MARK), "table", RELAY_TABLE)
        run(*inside, "ip", "route", "add", f"{HOST_IP}/32", "dev", self.line.ns_link,
            "table", RELAY_TABLE)  # fmt: skip
        run(*inside, "ip", "route", "add", f"{HOST_IP}/32", "dev", self.device,
            "src", self.line.ip)  # fmt: skip

    def stop(self) -> None:
        inside = self.line.exec_prefix()
        run(*inside, "ip", "route", "del", f"{HOST_IP}/32", "dev", self.device, check=False)
        run(*inside, "ip", "rule", "del", "fwmark", str(RELAY_MARK), check=False)
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            if self.process.stdout is not None:
                self.process.stdout.close()
        run(*inside, "ip", "link", "del", self.device, check=False)


def relay_main(device: str, delay_ms: int, jitter_ms: int, seed: int) -> None:
    """The relay process (see DelayRelay): one thread reads, one sends when each is due."""
    rng = random.Random(seed)
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", device.encode(), IFF_TUN | IFF_NO_PI))
    out = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    out.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, RELAY_MARK)
    due: queue.Queue[tuple[float, bytes]] = queue.Queue(maxsize=10_000)

    def sender() -> None:
        while True:
            at, packet = due.get()
            wait = at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            destination = socket.inet_ntoa(packet[16:20])
            with contextlib.suppress(OSError):
                out.sendto(packet, (destination, 0))

    threading.Thread(target=sender, daemon=True).start()
    print("ready", flush=True)
    last = 0.0
    while True:
        packet = os.read(tun, 65536)
        if len(packet) < 20 or packet[0] >> 4 != 4:
            continue
        at = time.monotonic() + (delay_ms + rng.uniform(0, jitter_ms)) / 1000
        last = max(last, at)  # never reorder
        with contextlib.suppress(queue.Full):
            due.put_nowait((last, packet))


if __name__ == "__main__" and sys.argv[1:2] == ["relay"]:
    relay_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
