"""Load benchmark (issue 16.6): concurrent four-person hearings with recording on, and many
concurrent signaling sessions, against the real server as an OS process.

    .venv/bin/python bench/load.py --json              # ramp 5,10,15,20,25; 2000 sessions
    .venv/bin/python bench/load.py --hearings 1,2 --sessions 200 --seconds 5 --json  # brief
    .venv/bin/python bench/load.py --smoke --json      # seconds; what the tests run

What it does:

* starts `python -m server.cli serve` (its SFU workers: one per core) with recording keys, on
  a seeded SQLite database holding one court per hearing (judge, clerk, station, plaintiff);
* for each N of the ramp, N hearings: the judge opens and starts each (recording on), the clerk,
  the station and the plaintiff (through identity and consent, admitted) join; each of the four
  is a real aiortc peer connection publishing a pre-encoded VP8 clip (--size, --fps, --kbps)
  and an Opus track, and receiving the three others. Received packets are counted at the UDP
  socket (no decryption, no decoding: the load generator must stay cheap; bench/sfu_forwarding.py
  does the same); sent packets are read from each publisher's RTCP statistics;
* over --seconds, a hearing is "at full rate" when every subscriber received at least
  --full-rate (default 95 %) of the packets its three publishers sent; `hearings_at_full_rate`
  is the largest N of the ramp where all N were;
* server CPU (main process and workers, from /proc) per participant-second at that N (share of
  one core), and its resident memory growth over the idle server per participant;
* then `--sessions` signaling WebSockets (one staff session, not joined) each send a heartbeat
  every --heartbeat-s seconds (as clients do) for --seconds; `ws_latency_ms_p99` is the 99th
  percentile of the heartbeat round trips.

The load generator runs on the same machine and competes with the server for its cores; the
JSON says the load average before the run, so a figure from a busy machine can be told apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sfu_forwarding as sfu

from recordings import keygen
from server.clock import SystemClock
from server.config import ENV_PREFIX, load_config
from server.storage.db import create_engine, create_sessionmaker, upgrade_async
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import ClientKind, HearingState
from tests.server.conftest import PASSWORD, CourtWorld, seed_court

ROOT = Path(__file__).resolve().parent.parent
CONSENTS = ["online_proceedings", "court_rules", "no_recording"]


# --- the server as an OS process ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [root], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cpu_and_rss(root: int) -> tuple[float, float]:
    """CPU seconds and resident MB of a process and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    cpu = rss = 0.0
    for pid in _proc_tree(root):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            rss += int(fields[21]) * page / 1e6
    return cpu, rss


@dataclass
class Server:
    directory: Path
    hearings: int
    port: int = field(default_factory=_free_port)
    process: asyncio.subprocess.Process | None = None
    worlds: list[CourtWorld] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def prepare(self) -> None:
        keys = await asyncio.to_thread(keygen, self.directory / "keys")
        q = json.dumps
        config_file = self.directory / "server.toml"
        text = f"""
data_dir = {q(str(self.directory / "data"))}
[server]
host = "127.0.0.1"
[database]
url = {q("sqlite+aiosqlite:///" + str(self.directory / "court.db"))}
[ice]
host_addresses = ["127.0.0.1"]
[security]
login_ip_attempts_per_minute = 1000000
[signaling]
max_sockets_per_address = 1000000
messages_per_address_per_s = 1000000
[recording]
signing_key_file = {q(str(keys.signing_private))}
archive_public_key_files = [{q(str(keys.archive_public))}]
"""
        await asyncio.to_thread((self.directory / "data").mkdir)
        await asyncio.to_thread(config_file.write_text, text)
        config = await asyncio.to_thread(load_config, config_file, {})
        await upgrade_async(config.database_url)
        engine = create_engine(config.database_url)
        try:
            sessions = create_sessionmaker(engine)
            for i in range(self.hearings):
                self.worlds.append(await seed_court(sessions, SystemClock(), f"Court {i}", f"c{i}"))
        finally:
            await engine.dispose()

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        log = (self.directory / "server.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "--config",
            str(self.directory / "server.toml"),
            "serve",
            "--port",
            str(self.port),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.base + "/api/health") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)  # polling the server's readiness
        raise RuntimeError("the server did not start; see server.log")

    def usage(self) -> tuple[float, float]:
        assert self.process is not None
        return _cpu_and_rss(self.process.pid)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()

    async def login(self, path: str, body: dict[str, str]) -> dict[str, str]:
        jar = aiohttp.CookieJar(unsafe=True)
        async with (
            aiohttp.ClientSession(cookie_jar=jar) as http,
            http.post(self.base + path, json=body) as resp,
        ):
            if resp.status != 200:
                raise RuntimeError(f"{path}: {resp.status} {await resp.text()}")
        return {c.key: c.value for c in jar}


def count_rtp(pc: Any) -> sfu.Counter:
    """Like `sfu.count_only`, but RTP only: RTCP (second byte 192-223, RFC 5761) is passed on
    uncounted, so that received packets compare with the publishers' sent RTP."""
    counter = sfu.Counter()
    connection = pc.getTransceivers()[0].receiver.transport.transport._connection
    for pair in connection._nominated.values():
        protocol = pair.protocol
        original = protocol.datagram_received

        def datagram_received(data: bytes, addr: Any, original: Any = original) -> None:
            if len(data) > 1 and 128 <= data[0] < 192 and not 192 <= data[1] <= 223:
                counter.packets += 1
            else:
                original(data, addr)

        protocol.datagram_received = datagram_received
    return counter


# --- one synthetic participant ---------------------------------------------------------------


class Participant:
    """Signaling plus one aiortc peer connection publishing the clip and a tone; received
    packets counted at the socket once connected (see the module docstring)."""

    def __init__(self, server: Server, cookies: dict[str, str], clip: Any, fps: int) -> None:
        self.signaling = SignalingClient(
            server.base.replace("http", "ws", 1) + "/ws", cookies=cookies
        )
        self.pc = sfu.new_pc()
        self.clip_track = sfu.ClipTrack(clip)
        self.counter: sfu.Counter | None = None
        self.connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self.participant_id = ""

    async def join(self, hearing_id: str, kind: ClientKind = ClientKind.BROWSER) -> m.Welcome:
        await self.signaling.connect()
        welcome = await self.signaling.join(hearing_id, client_kind=kind)
        self.participant_id = welcome.participant_id
        return welcome

    async def publish(self) -> None:
        pc = self.pc

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected":
                self.connected.set()

        pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        pc.addTransceiver(self.clip_track, direction="sendrecv")
        async with self._lock:
            await pc.setLocalDescription(await pc.createOffer())
            answer = await self.signaling.request(m.Offer(sdp=pc.localDescription.sdp))
            assert isinstance(answer, m.Answer)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        task = asyncio.ensure_future(self._events())
        self._tasks.add(task)

    async def _events(self) -> None:
        async for message in self.signaling.events():
            if isinstance(message, m.Offer):
                await self.connected.wait()
                async with self._lock:
                    await self.pc.setRemoteDescription(
                        RTCSessionDescription(sdp=message.sdp, type="offer")
                    )
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
                    await self.signaling.send(
                        m.Answer(transaction=message.transaction, sdp=self.pc.localDescription.sdp)
                    )

    def count(self) -> None:
        self.counter = count_rtp(self.pc)

    @property
    def received(self) -> int:
        return self.counter.packets if self.counter is not None else 0

    async def sent(self) -> int:
        report = await self.pc.getStats()
        return sum(
            int(getattr(s, "packetsSent", 0) or 0)
            for s in report.values()
            if getattr(s, "type", "") == "outbound-rtp"
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.signaling.close()
        with contextlib.suppress(Exception):
            await self.pc.close()


async def _hearing(server: Server, world: CourtWorld, clip: Any, fps: int) -> list[Participant]:
    """The four of one hearing, in session and recorded."""

    def staff(role: str) -> dict[str, str]:
        return {"username": world.users[role], "password": PASSWORD}

    station_body = {"station_id": world.station_id, "key": world.station_key}
    judge = Participant(server, await server.login("/api/auth/login", staff("judge")), clip, fps)
    clerk = Participant(server, await server.login("/api/auth/login", staff("clerk")), clip, fps)
    station = Participant(server, await server.login("/api/auth/station", station_body), clip, fps)
    redeem = {"token": world.plaintiff_token}
    party = Participant(server, await server.login("/api/invitations/redeem", redeem), clip, fps)
    await judge.join(world.hearing_id)
    await judge.signaling.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
    await judge.signaling.request(m.SetHearingState(state=HearingState.IN_SESSION, reason="开庭"))
    await clerk.join(world.hearing_id)
    await station.join(world.hearing_id, ClientKind.STATION)
    await party.join(world.hearing_id)
    await party.signaling.request(m.ConfirmIdentity(name="PLAINTIFF", id_digits="1234"))
    await party.signaling.request(m.Consent(accepted_rules=CONSENTS))
    await judge.signaling.request(m.Admit(all=True))
    people = [judge, clerk, station, party]
    for person in people:
        await person.publish()
    return people


# --- the measurements ----------------------------------------------------------------------------


async def measure_hearings(
    server: Server,
    worlds: list[CourtWorld],
    clip: Any,
    fps: int,
    seconds: float,
    full_rate: float,
) -> dict[str, Any]:
    n = len(worlds)
    hearings: list[list[Participant]] = []
    try:
        for world in worlds:
            hearings.append(await _hearing(server, world, clip, fps))
        everyone = [p for h in hearings for p in h]
        await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in everyone)), 60)
        await asyncio.sleep(3.0)  # renegotiations settle, keyframes flow
        for p in everyone:
            p.count()
        sent0 = [[await p.sent() for p in h] for h in hearings]
        recv0 = [[p.received for p in h] for h in hearings]
        cpu0, _ = server.usage()
        t0 = time.monotonic()
        await asyncio.sleep(seconds)  # the measurement window
        elapsed = time.monotonic() - t0
        cpu1, rss = server.usage()
        sent1 = [[await p.sent() for p in h] for h in hearings]
        recv1 = [[p.received for p in h] for h in hearings]
        ratios = []
        detail = []
        for h in range(len(hearings)):
            sent = [sent1[h][i] - sent0[h][i] for i in range(4)]
            for j in range(4):
                expected = sum(sent) - sent[j]
                got = recv1[h][j] - recv0[h][j]
                ratios.append(got / expected if expected else 0.0)
            detail.append({"sent": sent, "received": [recv1[h][j] - recv0[h][j] for j in range(4)]})
        return {
            "hearings": n,
            "participants": 4 * n,
            "min_delivery": round(min(ratios), 3),
            "median_delivery": round(statistics.median(ratios), 3),
            "full_rate": min(ratios) >= full_rate,
            "server_cpu_cores": round((cpu1 - cpu0) / elapsed, 3),
            "server_rss_mb": round(rss, 1),
            "first_hearing": detail[0],
        }
    finally:
        for people in hearings:
            for p in people:
                await p.close()


async def measure_sessions(
    server: Server, sessions: int, heartbeat_s: float, seconds: float
) -> dict[str, Any]:
    world = server.worlds[0]
    cookies = await server.login(
        "/api/auth/login", {"username": world.users["clerk"], "password": PASSWORD}
    )
    connector = aiohttp.TCPConnector(limit=0)
    rtts: list[float] = []
    async with aiohttp.ClientSession(
        cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True), connector=connector
    ) as http:
        url = server.base.replace("http", "ws", 1) + "/ws"
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        # Each socket beats from the moment it is open (a socket silent for three heartbeat
        # intervals is closed by the server); round trips count once all are open.
        window = {"start": float("inf"), "stop": float("inf")}
        failures = 0

        async def beat(ws: aiohttp.ClientWebSocketResponse) -> None:
            nonlocal failures
            n = 0
            await asyncio.sleep(heartbeat_s * (len(sockets) % 100) / 100)  # spread the beats
            try:
                while time.monotonic() < window["stop"]:
                    n += 1
                    t = time.monotonic()
                    text = json.dumps({"v": 1, "type": "heartbeat", "transaction": f"h{n}"})
                    await ws.send_str(text)
                    while True:
                        reply = json.loads((await ws.receive()).data)
                        if reply.get("transaction") == f"h{n}":
                            break
                    if t >= window["start"]:
                        rtts.append((time.monotonic() - t) * 1000)
                    await asyncio.sleep(max(0.0, heartbeat_s - (time.monotonic() - t)))
            except (aiohttp.ClientError, TypeError, ValueError):
                failures += 1  # closed by the server or broken: not an open session any more

        beats = []
        for _ in range(sessions):
            ws = await http.ws_connect(url, heartbeat=None)
            sockets.append(ws)
            beats.append(asyncio.ensure_future(beat(ws)))
        window["start"] = time.monotonic()
        window["stop"] = window["start"] + seconds
        _, rss_open = server.usage()
        await asyncio.gather(*beats)
        open_at_end = sum(not ws.closed for ws in sockets)
        for ws in sockets:
            await ws.close()
    rtts.sort()
    return {
        "ws_sessions": open_at_end,
        "ws_sessions_lost": failures,
        "ws_heartbeats": len(rtts),
        "ws_latency_ms_p50": round(rtts[len(rtts) // 2], 2) if rtts else None,
        "ws_latency_ms_p99": round(rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))], 2)
        if rtts
        else None,
        "ws_server_rss_mb": round(rss_open, 1),
    }


def _rss_per(best: dict[str, Any], first: dict[str, Any], idle_rss: float) -> float:
    """Resident MB per participant: marginal between the first step and `best` when they
    differ (the SFU workers start with the first hearing, so their own start-up memory is not
    anyone's); else over the idle server (then it includes the workers' start-up)."""
    if best["participants"] > first["participants"]:
        grown = float(best["server_rss_mb"]) - float(first["server_rss_mb"])
        return round(grown / (int(best["participants"]) - int(first["participants"])), 2)
    return _per(best, "server_rss_mb", idle_rss, 2)


def _per(step: dict[str, Any], key: str, base: float, digits: int) -> float:
    return round((float(step[key]) - base) / int(step["participants"]), digits)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = list(os.getloadavg())
    ramp = [int(x) for x in args.hearings.split(",")]
    width, height = (int(x) for x in args.size.split("x"))
    clip = await asyncio.to_thread(sfu.encode_clip, 4.0, width, height, args.kbps * 1000)
    with tempfile.TemporaryDirectory(prefix="sc-load-") as tmp:
        server = Server(Path(tmp), sum(ramp))  # fresh hearings for every step
        await server.prepare()
        await server.start()
        try:
            await asyncio.sleep(1.0)
            _, idle_rss = server.usage()
            steps = []
            for i in range(len(ramp)):
                worlds = server.worlds[sum(ramp[:i]) : sum(ramp[: i + 1])]
                step = await measure_hearings(
                    server, worlds, clip, sfu.FPS, args.seconds, args.full_rate
                )
                print(json.dumps(step), file=sys.stderr)
                steps.append(step)
            at_full = [s for s in steps if s["full_rate"]]
            best = max(at_full, key=lambda s: s["hearings"]) if at_full else None
            sessions = await measure_sessions(server, args.sessions, args.heartbeat_s, args.seconds)
        finally:
            await server.stop()
    return {
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "cores": os.cpu_count(),
        "clip": f"{args.size} {sfu.FPS} fps {args.kbps} kbit/s VP8 + Opus",
        "seconds": args.seconds,
        "hearings_at_full_rate": best["hearings"] if best else 0,
        "cpu_per_participant": _per(best, "server_cpu_cores", 0.0, 4) if best else None,
        "rss_mb_per_participant": round(
            (best["server_rss_mb"] - idle_rss) / best["participants"], 2
        )
        if best
        else None,
        "idle_server_rss_mb": round(idle_rss, 1),
        "steps": steps,
        **sessions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hearings", default="5,10,15,20,25", help="the ramp of N")
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--heartbeat-s", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--kbps", type=int, default=500)
    parser.add_argument("--full-rate", type=float, default=0.95)
    parser.add_argument("--smoke", action="store_true", help="1 hearing, 50 sessions, 3 s")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.smoke:
        args.hearings, args.sessions, args.seconds, args.heartbeat_s = "1", 50, 3.0, 1.0
        args.size, args.kbps = "320x240", 200
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 2000 sockets need the room
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
