"""Janus VideoRoom side by side with our SFU worker: CPU per forwarded stream (issue 18.1).

Same load as bench/sfu_forwarding.py (its clip, aiortc publisher and counting subscribers are
imported from there): one 640x480 30 fps ~1 Mbps VP8 publisher -> SFU -> N subscribers,
alternating ours / Janus at each N. Both SFUs run in the network namespace `scjsrv`, reached
from the clients (root namespace) over the veth pair scjh (10.250.1.1) <-> scjn (10.250.1.2):
Janus gathers no loopback candidate, and Linux drops a packet that arrives on an interface
with one of its own addresses as source, so loopback would not do for Janus; our worker is
launched in the same namespace (`ip netns exec scjsrv`) so both cross the same kind of link.

CPU figures:

* ours: the worker process's own `time.process_time()` over the window, as
  sfu_forwarding.py measures it (all threads);
* Janus: utime + stime of the janus process from /proc/<pid>/stat over the window (all
  threads). Our worker's /proc figure is reported too (`proc_cpu_per_stream`), as a check
  that both ways agree, and for both the kernel's share of it (`proc_kernel_share`).

Janus runs with a private config (a temp dir): only the VideoRoom plugin and the HTTP
transport (folders holding just those two libraries), no admin API, no STUN, no event
handlers, `ice_enforce_list = scjn`, debug level 2; `event_loops` = cores (its best setting,
"janus") and optionally its default one-thread-per-handle ("janus_default").

Needs root (network namespace) and Debian's `janus` package.

    .venv/bin/python bench/janus_peer.py --json                 # N = 25, 100, 200
    .venv/bin/python bench/janus_peer.py --smoke --json         # N = 5, a few seconds
    # also Janus's default threading, and our worker on 127.0.0.1 (sfu_forwarding.py's link):
    .venv/bin/python bench/janus_peer.py --janus-default --ours-loopback --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from aiortc import RTCPeerConnection, RTCSessionDescription

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sfu_forwarding import (
    FPS,
    ClipTrack,
    Counter,
    PoolSession,
    SendTimes,
    count_only,
    encode_clip,
    new_pc,
    wait_until,
)

from server.sfu import aiortc_hooks
from server.worker import WorkerPool

NAMESPACE = "scjsrv"
HOST_VETH, NS_VETH = "scjh", "scjn"
CLIENT_ADDR, SERVER_ADDR = "10.250.1.1", "10.250.1.2"
JANUS_PORT = 8088
JANUS_LIBS = Path("/usr/lib/x86_64-linux-gnu/janus")
WARM_UP_S = 1.5  # keyframe requests, first RTCP (as sfu_forwarding.py)
FULL_DELIVERY = (0.98, 1.02)  # sfu_forwarding.py's rule for a row that counts


# --- the network namespace -----------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


def _ns(*args: str) -> None:
    _ip("netns", "exec", NAMESPACE, "ip", *args)


def remove_namespace() -> None:
    """Remove the namespace and the veth pair (deleting one end deletes both); idempotent."""
    _ip("link", "del", HOST_VETH, check=False)
    _ip("netns", "del", NAMESPACE, check=False)


@contextlib.contextmanager
def namespace() -> Iterator[None]:
    """`scjsrv` joined to the root namespace by scjh (10.250.1.1) <-> scjn (10.250.1.2)."""
    remove_namespace()  # a previous run killed hard
    try:
        _ip("netns", "add", NAMESPACE)
        _ip("link", "add", HOST_VETH, "type", "veth", "peer", "name", NS_VETH)
        _ip("link", "set", NS_VETH, "netns", NAMESPACE)
        _ip("addr", "add", f"{CLIENT_ADDR}/24", "dev", HOST_VETH)
        _ip("link", "set", HOST_VETH, "up")
        _ns("addr", "add", f"{SERVER_ADDR}/24", "dev", NS_VETH)
        _ns("link", "set", NS_VETH, "up")
        _ns("link", "set", "lo", "up")
        yield
    finally:
        remove_namespace()


# --- CPU of a process from /proc -----------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def proc_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of the whole process (all threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK  # fields 14 and 15 of proc(5)


def proc_cpu(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    return sum(proc_times(pid))


def drop_counters() -> dict[str, int]:
    """Where packets can be lost between the SFU and the counting subscribers: the clients'
    UDP receive buffers (root namespace; a load generator too slow to read), the veth towards
    the clients, and the kernel's per-CPU input backlog (all namespaces)."""
    udp = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    header, values = [row for row in udp if row[0] == "Udp:"][:2]
    veth = Path(f"/sys/class/net/{HOST_VETH}/statistics/rx_dropped")
    softnet = Path("/proc/net/softnet_stat").read_text().split("\n")
    return {
        "udp_rcvbuf_errors": int(values[header.index("RcvbufErrors")]),
        "veth_rx_dropped": int(veth.read_text()) if veth.exists() else 0,
        "softnet_dropped": sum(int(line.split()[1], 16) for line in softnet if line.strip()),
    }


# --- Janus: a private instance --------------------------------------------------------------


def write_janus_config(folder: Path, event_loops: int | None, port: int) -> None:
    """Config for an instance with only the VideoRoom plugin and the HTTP transport."""
    for kind, library in (("plugins", "videoroom"), ("transports", "http")):
        (folder / kind).mkdir()
        (folder / kind / f"libjanus_{library}.so").symlink_to(
            JANUS_LIBS / kind / f"libjanus_{library}.so"
        )
    (folder / "events").mkdir()
    (folder / "loggers").mkdir()
    loops = f"\tevent_loops = {event_loops}\n" if event_loops else ""
    (folder / "janus.jcfg").write_text(
        "general: {\n"
        f'\tconfigs_folder = "{folder}"\n'
        f'\tplugins_folder = "{folder}/plugins"\n'
        f'\ttransports_folder = "{folder}/transports"\n'
        f'\tevents_folder = "{folder}/events"\n'
        f'\tloggers_folder = "{folder}/loggers"\n'
        "\tdebug_level = 2\n"
        "\tsession_timeout = 120\n"
        f"{loops}"
        "}\n"
        "media: {\n}\n"
        f'nat: {{\n\tice_enforce_list = "{NS_VETH}"\n\tignore_mdns = true\n}}\n'
        "plugins: {\n}\ntransports: {\n}\nevents: {\n\tbroadcast = false\n}\n"
    )
    (folder / "janus.transport.http.jcfg").write_text(
        "general: {\n"
        '\tjson = "plain"\n\tbase_path = "/janus"\n\thttp = true\n'
        f'\tport = {port}\n\tip = "{SERVER_ADDR}"\n\thttps = false\n'
        "}\nadmin: {\n\tadmin_http = false\n\tadmin_https = false\n}\n"
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")


class Janus:
    """One Janus process in the namespace, and its HTTP API session."""

    def __init__(
        self, process: asyncio.subprocess.Process, http: aiohttp.ClientSession, port: int
    ) -> None:
        self.process = process
        self.http = http
        self.base = f"http://{SERVER_ADDR}:{port}/janus"
        self.session = 0
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.info: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self.process.pid

    async def post(self, path: str, message: dict[str, Any]) -> dict[str, Any]:
        message = {**message, "transaction": secrets.token_hex(8)}
        async with self.http.post(f"{self.base}{path}", json=message) as response:
            reply: dict[str, Any] = await response.json(content_type=None)
        if reply.get("janus") == "error":
            raise RuntimeError(f"janus: {reply['error']}")
        return reply

    async def open_session(self) -> None:
        self.session = int((await self.post("", {"janus": "create"}))["data"]["id"])
        self._tasks = [
            asyncio.ensure_future(self._poll(self.session)),
            asyncio.ensure_future(self._keepalive(self.session)),
        ]

    async def close_session(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.post(f"/{self.session}", {"janus": "destroy"})
        self._tasks = []

    async def _poll(self, session: int) -> None:
        """Long-poll the session's events; hand each to the request waiting on its transaction."""
        while True:
            async with self.http.get(f"{self.base}/{session}?maxev=50") as response:
                events = await response.json(content_type=None)
            for event in events if isinstance(events, list) else [events]:
                waiter = self._waiting.pop(event.get("transaction", ""), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event)

    async def _keepalive(self, session: int) -> None:
        while True:
            await asyncio.sleep(20)
            await self.post(f"/{session}", {"janus": "keepalive"})

    async def attach(self) -> int:
        reply = await self.post(
            f"/{self.session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"}
        )
        return int(reply["data"]["id"])

    async def request(self, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous VideoRoom request (create, destroy): the plugin's reply data."""
        reply = await self.post(f"/{self.session}/{handle}", {"janus": "message", "body": body})
        data: dict[str, Any] = reply["plugindata"]["data"]
        if "error" in data:
            raise RuntimeError(f"videoroom: {data['error']}")
        return data

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """An asynchronous VideoRoom request: its event (plugindata + jsep), from the poll."""
        transaction = secrets.token_hex(8)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = waiter
        message: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            message["jsep"] = jsep
        async with self.http.post(f"{self.base}/{self.session}/{handle}", json=message) as r:
            ack = await r.json(content_type=None)
        if ack.get("janus") == "error":
            raise RuntimeError(f"janus: {ack['error']}")
        async with asyncio.timeout(30):
            event = await waiter
        data = event["plugindata"]["data"]
        if "error" in data:
            raise RuntimeError(f"videoroom: {data['error']}")
        return event

    async def trickle_completed(self, handle: int) -> None:
        await self.post(
            f"/{self.session}/{handle}", {"janus": "trickle", "candidate": {"completed": True}}
        )


@contextlib.asynccontextmanager
async def janus_instance(event_loops: int | None, port: int) -> AsyncIterator[Janus]:
    """Start Janus in the namespace with a private config; stop it on exit."""
    folder = Path(tempfile.mkdtemp(prefix="sc-janus-"))
    process = None
    try:
        write_janus_config(folder, event_loops, port)
        process = await asyncio.create_subprocess_exec(
            *("ip", "netns", "exec", NAMESPACE, "janus"),
            *("-C", str(folder / "janus.jcfg"), "-F", str(folder), "-N", "-o"),
            *("-L", str(folder / "janus.log")),
            cwd=folder,  # a core dump, if any, goes with the temp dir
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            janus = Janus(process, http, port)
            await _wait_for_api(janus, folder)
            yield janus
    finally:
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(folder, ignore_errors=True)


async def _wait_for_api(janus: Janus, folder: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        if janus.process.returncode is not None:
            log = (folder / "janus.log").read_text() if (folder / "janus.log").exists() else ""
            raise RuntimeError(f"janus exited {janus.process.returncode}: {log[-2000:]}")
        try:
            async with janus.http.get(f"{janus.base}/info") as response:
                info = await response.json(content_type=None)
                if info.get("log-path") == str(folder / "janus.log"):  # this instance, not another
                    janus.info = info
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("janus HTTP API did not come up")
        await asyncio.sleep(0.1)


# --- one hearing on Janus: a publisher and N subscribers ------------------------------------


def mute_receiver(pc: RTCPeerConnection) -> None:
    """Drop decrypted RTP before aiortc's jitter buffer/decoder until `count_only` takes over
    (Janus starts sending as soon as DTLS is up, before we see "connected")."""

    async def drop(data: bytes, arrival_time_ms: int) -> None:
        return None

    dtls = pc.getTransceivers()[0].receiver.transport
    dtls._handle_rtp_data = drop  # type: ignore[method-assign]


class JanusSession:
    """One VideoRoom room: an aiortc publisher (`joinandconfigure`) and N counting
    subscribers (`join` ptype subscriber, answer Janus's offer, `start`)."""

    def __init__(self, janus: Janus, clip: list[tuple[bytes, bool]]) -> None:
        self.janus = janus
        self.clip = clip
        self.room = secrets.randbelow(1 << 30) + 1
        self.pcs: list[RTCPeerConnection] = []
        self.counters: list[Counter] = []
        self.sends = SendTimes()
        self.feed = 0

    async def start(self, subscribers: int, parallel: int = 8) -> None:
        await self.janus.open_session()
        admin = await self.janus.attach()
        await self.janus.request(
            admin,
            {
                "request": "create",
                "room": self.room,
                "publishers": 16,
                "videocodec": "vp8",
                "bitrate": 0,
                "record": False,
                "permanent": False,
            },
        )
        await self._publish()
        gate = asyncio.Semaphore(parallel)

        async def one() -> None:
            async with gate:
                await self._subscribe()

        await asyncio.gather(*(one() for _ in range(subscribers)))

    async def _publish(self) -> None:
        handle = await self.janus.attach()
        publisher = new_pc()
        self.pcs.append(publisher)
        publisher.addTrack(ClipTrack(self.clip))
        await publisher.setLocalDescription(await publisher.createOffer())
        event = await self.janus.message(
            handle,
            {"request": "joinandconfigure", "room": self.room, "ptype": "publisher"},
            {"type": "offer", "sdp": publisher.localDescription.sdp},
        )
        self.feed = int(event["plugindata"]["data"]["id"])
        await publisher.setRemoteDescription(
            RTCSessionDescription(sdp=event["jsep"]["sdp"], type="answer")
        )
        await self.janus.trickle_completed(handle)
        await wait_until(lambda: publisher.connectionState == "connected", 30, "janus publisher")
        self.sends.hook(publisher)

    async def _subscribe(self) -> None:
        handle = await self.janus.attach()
        pc = new_pc()
        self.pcs.append(pc)
        event = await self.janus.message(
            handle,
            {
                "request": "join",
                "room": self.room,
                "ptype": "subscriber",
                "streams": [{"feed": self.feed}],
            },
        )
        await pc.setRemoteDescription(RTCSessionDescription(sdp=event["jsep"]["sdp"], type="offer"))
        mute_receiver(pc)
        await pc.setLocalDescription(await pc.createAnswer())
        await self.janus.message(
            handle, {"request": "start"}, {"type": "answer", "sdp": pc.localDescription.sdp}
        )
        await self.janus.trickle_completed(handle)
        await wait_until(lambda: pc.connectionState == "connected", 30, "janus subscriber")
        self.counters.append(count_only(pc))

    def delivered(self) -> int:
        return sum(c.packets for c in self.counters)

    async def close(self) -> None:
        await self.janus.close_session()
        for pc in self.pcs:
            await pc.close()


# --- the measurement -----------------------------------------------------------------------


async def _window(
    seconds: float,
    cpu: Callable[[], Awaitable[float]],
    pid: int,
    sends: SendTimes,
    delivered: Callable[[], int],
    subscribers: int,
) -> dict[str, Any]:
    """CPU (`cpu()`, plus /proc of `pid` for the user/kernel split) and delivery over one
    window, after a warm-up."""
    await asyncio.sleep(WARM_UP_S)
    cpu0, (user0, sys0) = await cpu(), proc_times(pid)
    sent0, got0, t0 = sends.sent, delivered(), time.monotonic()
    load0, drops0 = os.getloadavg()[0], drop_counters()
    await asyncio.sleep(seconds)
    cpu1, (user1, sys1) = await cpu(), proc_times(pid)
    sent1, got1, t1 = sends.sent, delivered(), time.monotonic()
    proc = (user1 - user0) + (sys1 - sys0)
    wall = t1 - t0
    expected = (sent1 - sent0) * subscribers
    result = {
        "seconds": round(wall, 2),
        "cpu_fraction": round((cpu1 - cpu0) / wall, 4),
        "cpu_per_stream": (cpu1 - cpu0) / (subscribers * wall),
        "delivery_ratio": round((got1 - got0) / expected, 4) if expected else 0.0,
        "publisher_pps": round((sent1 - sent0) / wall, 1),
        "load_average_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "proc_cpu_per_stream": proc / (subscribers * wall),
        "proc_kernel_share": round((sys1 - sys0) / proc, 3) if proc else 0.0,
        "threads": len(os.listdir(f"/proc/{pid}/task")),
        "drops": {key: value - drops0[key] for key, value in drop_counters().items()},
    }
    return result


async def measure_ours(
    clip: list[tuple[bytes, bool]], subscribers: int, seconds: float, *, loopback: bool = False
) -> dict[str, Any]:
    """Our worker forwarding to N counting subscribers: in the namespace across the veth pair
    (as Janus), or with `loopback` on 127.0.0.1 as bench/sfu_forwarding.py runs it."""
    if loopback:
        aiortc_hooks.install_host_addresses(["127.0.0.1"])
        pool = WorkerPool(1)
    else:
        aiortc_hooks.install_host_addresses([CLIENT_ADDR])
        pool = WorkerPool(
            1, host_addresses=[SERVER_ADDR], launch_prefix=("ip", "netns", "exec", NAMESPACE)
        )
    await pool.start()
    session = PoolSession(pool, clip, speed=1.0)
    try:
        await session.start(subscribers, probe=False)
        pid = pool.workers[0].process.pid

        async def cpu() -> float:
            return float((await pool.stats(0))["cpu"])  # as sfu_forwarding.py measures it

        return await _window(seconds, cpu, pid, session.sends, session.delivered, subscribers)
    finally:
        await session.close()
        await pool.close()


async def measure_janus(
    janus: Janus, clip: list[tuple[bytes, bool]], subscribers: int, seconds: float
) -> dict[str, Any]:
    aiortc_hooks.install_host_addresses([CLIENT_ADDR])
    session = JanusSession(janus, clip)
    try:
        await session.start(subscribers)

        async def cpu() -> float:
            return proc_cpu(janus.pid)

        return await _window(seconds, cpu, janus.pid, session.sends, session.delivered, subscribers)
    finally:
        await session.close()


async def compare(
    ns: list[int],
    seconds: float,
    *,
    janus_default: bool = False,
    ours_loopback: bool = False,
    clip_seconds: float = 4.0,
    clip: list[tuple[bytes, bool]] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Ours vs Janus VideoRoom (event_loops = cores; with `janus_default` also its default
    one-thread-per-handle setting) at each N, alternating; needs root and `janus`.
    `ours_loopback` adds our worker on 127.0.0.1 (sfu_forwarding.py's link) for reference.
    `clip`: an `encode_clip()` result to reuse (else `clip_seconds` of it are encoded). On
    return the process's ICE host addresses are 127.0.0.1 again, as sfu_forwarding.py sets."""
    if os.geteuid() != 0:
        raise PermissionError("janus_peer needs root (network namespace)")
    if shutil.which("janus") is None:
        raise FileNotFoundError("janus is not installed (make venv installs Debian's janus)")
    if clip is None:
        clip = encode_clip(clip_seconds, 640, 480, 1_000_000)
    clip_bits = sum(len(f) for f, _ in clip) * 8 / (len(clip) / FPS)
    cores = os.cpu_count() or 1
    settings: list[tuple[str, int | None]] = [("janus", cores)]
    if janus_default:
        settings.append(("janus_default", None))
    rows: list[dict[str, Any]] = []
    try:
        infos = await _alternate(clip, ns, seconds, settings, ours_loopback, rows, log)
    finally:
        aiortc_hooks.install_host_addresses(["127.0.0.1"])
    return {
        "peer": "janus",
        "janus_version": _janus_version(),
        "janus_event_loops": cores,
        "janus_static_event_loops": {
            name: janus_info.get("static-event-loops") for name, janus_info in infos.items()
        },
        "link": f"veth {HOST_VETH} {CLIENT_ADDR} <-> {NS_VETH} {SERVER_ADDR} (netns {NAMESPACE})",
        "clip_mbps": round(clip_bits / 1e6, 3),
        "window_seconds": seconds,
        "cores": cores,
        **summary(rows),
        "by_n": rows,
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline per N, and issue 18.2's target (Janus >= 1.5x our CPU per stream at
    N = 100 and 200, valid rows only; None when the run has neither N)."""
    ratios = {str(r["subscribers"]): r["janus_cpu_over_ours"] for r in rows}
    judged = [r for r in rows if r["subscribers"] in (100, 200)]
    met = all(r["valid"] and r["janus_cpu_over_ours"] >= 1.5 for r in judged) if judged else None
    result: dict[str, Any] = {"janus_cpu_over_ours": ratios, "target_janus_1_5x_ours_met": met}
    if rows and "janus_default_cpu_over_ours" in rows[0]:
        result["janus_default_cpu_over_ours"] = {
            str(r["subscribers"]): r["janus_default_cpu_over_ours"] for r in rows
        }
    return result


async def _alternate(
    clip: list[tuple[bytes, bool]],
    ns: list[int],
    seconds: float,
    settings: list[tuple[str, int | None]],
    ours_loopback: bool,
    rows: list[dict[str, Any]],
    log: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """The runs, appended to `rows` per N; returns each Janus instance's /info."""
    with namespace():
        async with contextlib.AsyncExitStack() as stack:
            instances = {
                name: await stack.enter_async_context(janus_instance(loops, JANUS_PORT + i))
                for i, (name, loops) in enumerate(settings)
            }
            for n in ns:
                row: dict[str, Any] = {"subscribers": n}
                row["ours"] = await measure_ours(clip, n, seconds)
                log(_line("ours", n, row["ours"]))
                for name, janus in instances.items():
                    row[name] = await measure_janus(janus, clip, n, seconds)
                    log(_line(name, n, row[name]))
                    ratio = row[name]["cpu_per_stream"] / row["ours"]["cpu_per_stream"]
                    key = "janus_cpu_over_ours" if name == "janus" else f"{name}_cpu_over_ours"
                    row[key] = round(ratio, 3)
                # as sfu_forwarding.py: a row counts only if every subscriber got the stream
                # (packets a starved load generator drops are cheaper to send)
                row["valid"] = all(
                    FULL_DELIVERY[0] <= row[name]["delivery_ratio"] <= FULL_DELIVERY[1]
                    for name in ("ours", *instances)
                )
                if ours_loopback:
                    row["ours_loopback"] = await measure_ours(clip, n, seconds, loopback=True)
                    log(_line("ours_loopback", n, row["ours_loopback"]))
                rows.append(row)
            return {name: janus.info for name, janus in instances.items()}


def _line(name: str, n: int, r: dict[str, Any]) -> str:
    return (
        f"{name} N={n}: cpu {r['cpu_fraction']:.3f} core, "
        f"{r['cpu_per_stream'] * 1000:.3f} ms/s per stream, delivery {r['delivery_ratio']:.3f}"
    )


def _janus_version() -> str:
    out = subprocess.run(["janus", "--version"], capture_output=True, text=True).stdout
    return out.split("(")[-1].split(")")[0] if "(" in out else out.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ns", default="25,100,200", help="subscriber counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per run")
    parser.add_argument("--smoke", action="store_true", help="N=5, a few seconds")
    parser.add_argument(
        "--janus-default", action="store_true", help="also Janus's default thread-per-handle"
    )
    parser.add_argument(
        "--ours-loopback", action="store_true", help="also our worker on 127.0.0.1 (reference)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    ns = [5] if args.smoke else [int(n) for n in args.ns.split(",")]
    seconds = 3.0 if args.smoke else args.seconds

    def log(message: str) -> None:
        print(message, file=sys.stderr if args.json else sys.stdout, flush=True)

    async def run() -> dict[str, Any]:
        # SIGTERM ends the run like Ctrl-C does: the finally blocks stop Janus and our worker
        # and remove the namespace.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await compare(
            ns,
            seconds,
            janus_default=args.janus_default,
            ours_loopback=args.ours_loopback,
            clip_seconds=2.0 if args.smoke else 4.0,
            log=log,
        )

    try:
        result = uvloop.run(run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit(130)
    result["smoke"] = args.smoke
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
