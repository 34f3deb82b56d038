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
* a long round trip: `DelayRelay` (see there).

Names start with `scad` and addresses stay inside 10.240.0.0/16. Everything is removed by
`Lab.close()` (and leftovers of a killed run by `Lab.open()`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

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
