"""Load benchmark (issue 16.6): concurrent four-person hearings with recording on, and many
concurrent signaling sessions, against the real server as an OS process.

    .venv/bin/python bench/load.py --json              # ramp 2..20 to a miss; 2000 sessions
    .venv/bin/python bench/load.py --hearings 2,4 --sessions 200 --seconds 5 --json  # brief
    .venv/bin/python bench/load.py --smoke --json      # under a minute; what the tests run

What it does (docs/reliability.md, "Load"):

* starts `python -m server.cli serve` (its SFU workers: one per core) with recording keys
  (`--no-recording`: recording disabled, to tell the recording's share), on a seeded SQLite
  database holding one court per hearing (judge, clerk, station, plaintiff);
* for each N of the ramp, N fresh hearings, spread over `--procs` generator processes (this
  script with `--generator`; default one per `--hearings-per-proc` hearings, so that no
  generator process is CPU-bound - each reports its CPU, and a publisher sending under its
  frame rate shows a starved generator). In each hearing the judge opens and starts the
  session (recording starts), the clerk, the station and the plaintiff (identity, consent,
  admitted) join; each of the four is an aiortc peer connection publishing a pre-encoded VP8
  clip (--size, --kbps, 30 fps) and pre-encoded Opus (no encoder runs), and receiving the
  three others. Subscribers count frames from the RTP headers at the socket (bench/frames.py:
  distinct Opus sequence numbers and VP8 frame timestamps per SSRC, RTX and repeats not
  counted, no decryption or decoding);
* over --seconds, a hearing is "at full rate" when each of its four subscribers received at
  least --full-rate (default 95 %) of the frames of each of its six streams (three video,
  three audio); `hearings_at_full_rate` is the largest N of the ramp where all N were (the
  ramp ends at the first step that misses; --whole-ramp goes on). Beside
  it the SFU's adaptation state from /metrics (`paused_video_streams`: video held back from a
  subscriber would fail the delivery test anyway, and says why);
* server CPU (main process and workers, from /proc) per participant at that N (share of one
  core), the generators' own CPU, and memory: `rss_mb_per_participant` is the marginal
  resident memory of server and workers per added participant between the two largest steps
  run (the step before shares the workers' start-up and freed memory is reused);
* then `--sessions` signaling WebSockets (one staff session, not joined) each send a heartbeat
  every --heartbeat-s seconds (as clients do) for --seconds; `ws_latency_ms_p99` is the 99th
  percentile of the heartbeat round trips.

The load generator runs on the same machine and competes with the server for its cores; the
JSON says the load average before and after, and each step the generators' CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import pickle
import resource
import signal
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from aiortc import RTCSessionDescription

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import frames
import sfu_forwarding as sfu

from recordings import keygen
from server.clock import SystemClock
from server.config import ENV_PREFIX, load_config
from server.sfu import aiortc_hooks
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
    return _cpu_and_rss_of(_proc_tree(root))


def _cpu_and_rss_one(pid: int) -> tuple[float, float]:
    return _cpu_and_rss_of([pid])


def _cpu_and_rss_of(pids: list[int]) -> tuple[float, float]:
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    cpu = rss = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            rss += int(fields[21]) * page / 1e6
    return cpu, rss


def _udp_drops(pids: list[int]) -> int:
    """UDP datagrams the kernel dropped on these processes' sockets (receive buffer full),
    from the `drops` column of /proc/net/udp and udp6, matched to the sockets' inodes."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 12 and fields[9] in inodes:
                    drops += int(fields[12])
    return drops


@dataclass
class Server:
    directory: Path
    hearings: int
    recording: bool = True
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
enabled = {"true" if self.recording else "false"}
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

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def usage(self) -> tuple[float, float]:
        return _cpu_and_rss(self.pid)

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


# --- one synthetic participant (in a generator process) --------------------------------------


async def login(base: str, path: str, body: dict[str, str]) -> dict[str, str]:
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as http,
        http.post(base + path, json=body) as resp,
    ):
        if resp.status != 200:
            raise RuntimeError(f"{path}: {resp.status} {await resp.text()}")
    return {c.key: c.value for c in jar}


class Participant:
    """Signaling plus one aiortc peer connection publishing the pre-encoded clip and Opus, and
    counting the frames it receives at the socket (bench/frames.py)."""

    def __init__(self, base: str, cookies: dict[str, str], media: Media) -> None:
        self.signaling = SignalingClient(base.replace("http", "ws", 1) + "/ws", cookies=cookies)
        self.pc = sfu.new_pc()
        self.video = frames.VideoTrack(media.clip)
        self.audio = frames.OpusTrack(media.opus)
        self.counter = frames.FrameCounter()
        self.connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._sent0 = (0, 0)

    async def join(self, hearing_id: str, kind: ClientKind = ClientKind.BROWSER) -> m.Welcome:
        await self.signaling.connect()
        return await self.signaling.join(hearing_id, client_kind=kind)

    async def publish(self) -> None:
        pc = self.pc

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected" and not self.connected.is_set():
                # Cut the receive path before media arrives: aiortc would decode it, and its
                # receiver reports from a busy generator would look like a bad line to the
                # SFU's adaptation (which then pauses video).
                self.count()
                self.connected.set()

        pc.addTransceiver(self.audio, direction="sendrecv")
        pc.addTransceiver(self.video, direction="sendrecv")
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
        """Cut aiortc's RTP receive path (no decryption, no decoding) for the frame counter."""
        frames.count_frames(self.pc, self.counter)

    def reset(self) -> None:
        self.counter.reset()
        self._sent0 = (self.video.sent, self.audio.sent)

    def report(self) -> dict[str, Any]:
        return {
            "sent_video": self.video.sent - self._sent0[0],
            "sent_audio": self.audio.sent - self._sent0[1],
            "frames": self.counter.frames(),
            "packets": self.counter.packets,
        }

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.signaling.close()
        with contextlib.suppress(Exception):
            await self.pc.close()


@dataclass
class Media:
    clip: list[tuple[bytes, bool]]
    opus: list[bytes]


async def _hearing(base: str, world: dict[str, Any], media: Media) -> list[Participant]:
    """The four of one hearing, in session (and recorded, when the server records)."""

    def staff(role: str) -> dict[str, str]:
        return {"username": world["users"][role], "password": PASSWORD}

    station_body = {"station_id": world["station_id"], "key": world["station_key"]}
    redeem = {"token": world["plaintiff_token"]}
    judge = Participant(base, await login(base, "/api/auth/login", staff("judge")), media)
    clerk = Participant(base, await login(base, "/api/auth/login", staff("clerk")), media)
    station = Participant(base, await login(base, "/api/auth/station", station_body), media)
    party = Participant(base, await login(base, "/api/invitations/redeem", redeem), media)
    hearing = world["hearing_id"]
    await judge.join(hearing)
    await judge.signaling.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
    await judge.signaling.request(m.SetHearingState(state=HearingState.IN_SESSION, reason="开庭"))
    await clerk.join(hearing)
    await station.join(hearing, ClientKind.STATION)
    await party.join(hearing)
    await party.signaling.request(m.ConfirmIdentity(name="PLAINTIFF", id_digits="1234"))
    await party.signaling.request(m.Consent(accepted_rules=CONSENTS))
    await judge.signaling.request(m.Admit(all=True))
    people = [judge, clerk, station, party]
    for person in people:
        await person.publish()
    return people


async def generator() -> None:
    """Generator process: runs some hearings' participants. Its configuration is the first
    line on stdin, then commands, one JSON line per answer on stdout ("ready" once connected,
    "reset" -> {}, "report" -> the counts); EOF ends it."""
    aiortc_hooks.install_host_addresses(["127.0.0.1"])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    config = json.loads(await reader.readline())
    media_file = Path(config["media"])
    media = Media(**pickle.loads(await asyncio.to_thread(media_file.read_bytes)))  # noqa: S301

    def say(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    hearings: list[list[Participant]] = []
    try:
        for world in config["worlds"]:
            hearings.append(await _hearing(config["base"], world, media))
        everyone = [p for h in hearings for p in h]
        await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in everyone)), 120)
        say({"ready": True})
        while line := (await reader.readline()).strip():
            if line == b"reset":
                for p in everyone:
                    p.reset()
                say({})
            elif line == b"report":
                say({"hearings": [[p.report() for p in h] for h in hearings]})
    finally:
        for people in hearings:
            # Close the hearing (its recording is sealed) so that the next step of the ramp
            # does not carry this one's recorder.
            with contextlib.suppress(Exception):
                closing = m.SetHearingState(state=HearingState.CLOSED, reason="闭庭")
                await asyncio.wait_for(people[0].signaling.request(closing), 30)
            for p in people:
                await p.close()


class Generator:
    """The driver's end of one generator process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, config: dict[str, Any], log: Path) -> Generator:
        with log.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--generator",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                limit=1 << 24,
            )
        assert process.stdin is not None
        process.stdin.write(json.dumps(config).encode() + b"\n")
        await process.stdin.drain()
        return cls(process)

    async def call(self, command: str | None) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        if command is not None:
            stdin.write(command.encode() + b"\n")
            await stdin.drain()
        line = await stdout.readline()
        if not line:
            raise RuntimeError("a generator process ended; see generators.log")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def cpu(self) -> float:
        return _cpu_and_rss(self.process.pid)[0]

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


# --- the measurements ----------------------------------------------------------------------------


async def server_metrics(server: Server) -> dict[str, float]:
    """Sums over the workers of a few /metrics series (loopback may read them)."""
    wanted = {
        "shared_court_paused_video_streams": "paused_video_streams",
        "shared_court_recordings": "recordings",
        "shared_court_worker_peers": "worker_peers",
        "shared_court_recording_dropped_frames_total": "recording_dropped_frames",
        "shared_court_received_packets_total": "received_packets",
        "shared_court_forwarded_packets_total": "forwarded_packets",
    }
    found = dict.fromkeys(wanted.values(), 0.0)
    async with aiohttp.ClientSession() as http, http.get(server.base + "/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in wanted:
            found[wanted[name]] += float(line.rsplit(" ", 1)[1])
    return found


def _delivery(people: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Per subscriber, the worst of its six streams (3 video, 3 audio) as received / sent frames;
    a stream missing counts 0. Also each publisher's video rate over nominal (filled later)."""
    ratios = []
    for j, me in enumerate(people):
        others = [p for i, p in enumerate(people) if i != j]
        worst = 1e9
        for kind in ("video", "audio"):
            sent = sorted((p[f"sent_{kind}"] for p in others), reverse=True)
            got = me["frames"][kind][:3] + [0] * (3 - len(me["frames"][kind][:3]))
            # streams are matched largest to largest: SSRCs are the SFU's, not the publisher's
            worst = min(worst, *(g / s if s else 0.0 for g, s in zip(got, sent, strict=True)))
        ratios.append(worst)
    return ratios, [p["sent_video"] for p in people]


def _split(worlds: list[dict[str, Any]], procs: int) -> list[list[dict[str, Any]]]:
    parts: list[list[dict[str, Any]]] = [[] for _ in range(min(procs, len(worlds)))]
    for i, world in enumerate(worlds):
        parts[i % len(parts)].append(world)
    return parts


async def measure_hearings(
    server: Server,
    worlds: list[dict[str, Any]],
    media_file: Path,
    procs: int,
    seconds: float,
    full_rate: float,
) -> dict[str, Any]:
    n = len(worlds)
    log = server.directory / "generators.log"
    parts = _split(worlds, procs)
    generators: list[Generator] = []
    try:
        for part in parts:
            config = {"base": server.base, "worlds": part, "media": str(media_file)}
            generators.append(await Generator.start(config, log))
        # Hearings join in every generator at once; "ready" once each process's are connected.
        await asyncio.wait_for(asyncio.gather(*(g.call(None) for g in generators)), 60 + 10 * n)
        await asyncio.sleep(3.0)  # renegotiations settle, keyframes flow
        await asyncio.gather(*(g.call("reset") for g in generators))
        state0 = await server_metrics(server)
        cpu0, _ = server.usage()
        main0 = _cpu_and_rss_one(server.pid)[0]
        gen_pids = [g.process.pid for g in generators]
        drops0 = (_udp_drops(_proc_tree(server.pid)), _udp_drops(gen_pids))
        gen0 = [g.cpu() for g in generators]
        t0 = time.monotonic()
        await asyncio.sleep(seconds)  # the measurement window
        reports = await asyncio.gather(*(g.call("report") for g in generators))
        elapsed = time.monotonic() - t0
        cpu1, rss = server.usage()
        gen_cores = [(g.cpu() - c) / elapsed for g, c in zip(generators, gen0, strict=True)]
        main_cpu, main_rss = _cpu_and_rss_one(server.pid)
        drops1 = (_udp_drops(_proc_tree(server.pid)), _udp_drops(gen_pids))
        state = await server_metrics(server)
        hearings = [h for r in reports for h in r["hearings"]]
        ratios: list[float] = []
        rates: list[float] = []
        at_full = 0
        for people in hearings:
            worst, sent_video = _delivery(people)
            ratios.extend(worst)
            rates.extend(s / (sfu.FPS * elapsed) for s in sent_video)
            at_full += min(worst) >= full_rate
        return {
            "hearings": n,
            "participants": 4 * n,
            "generator_procs": len(generators),
            "hearings_full_rate": at_full,
            "full_rate": at_full == n,
            "min_delivery": round(min(ratios), 3),
            "median_delivery": round(statistics.median(ratios), 3),
            "min_publisher_rate": round(min(rates), 3),
            "paused_video_streams": int(state["paused_video_streams"]),
            "recordings": int(state["recordings"]),
            "recording_dropped_frames": int(
                state["recording_dropped_frames"] - state0["recording_dropped_frames"]
            ),
            # Where packets go missing: into the SFU, out of it, or on the way to subscribers
            # (subscribers' RTP datagrams, retransmissions included).
            "sfu_received_pps": round(
                (state["received_packets"] - state0["received_packets"]) / elapsed, 1
            ),
            "sfu_forwarded_pps": round(
                (state["forwarded_packets"] - state0["forwarded_packets"]) / elapsed, 1
            ),
            "subscribers_received_pps": round(
                sum(p["packets"] for h in hearings for p in h) / elapsed, 1
            ),
            # datagrams dropped by the kernel, receive buffer full (the process was not reading)
            "udp_drops_server": drops1[0] - drops0[0],
            "udp_drops_generators": drops1[1] - drops0[1],
            "server_cpu_cores": round((cpu1 - cpu0) / elapsed, 3),
            "server_main_cpu_cores": round((main_cpu - main0) / elapsed, 3),  # not the workers
            "generator_cpu_cores": round(sum(gen_cores), 3),
            "generator_cpu_cores_max_proc": round(max(gen_cores), 3),
            "server_rss_mb": round(rss, 1),
            "server_main_rss_mb": round(main_rss, 1),
            "first_hearing": hearings[0],
        }
    finally:
        for g in generators:
            await g.stop()


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


def _rss_per(steps: list[dict[str, Any]]) -> float | None:
    """Marginal resident MB per added participant between the two largest steps run."""
    if len(steps) < 2:
        return None
    a, b = steps[-2], steps[-1]
    grown = float(b["server_rss_mb"]) - float(a["server_rss_mb"])
    return round(grown / (int(b["participants"]) - int(a["participants"])), 2)


async def write_media(directory: Path, size: str, kbps: int) -> Path:
    """Encode the VP8 clip and the Opus clip once, for every generator process to replay."""
    width, height = (int(x) for x in size.split("x"))
    clip = await asyncio.to_thread(sfu.encode_clip, 4.0, width, height, kbps * 1000)
    opus = await asyncio.to_thread(frames.encode_opus, 4.0)
    path = directory / "media.pickle"
    await asyncio.to_thread(path.write_bytes, pickle.dumps({"clip": clip, "opus": opus}))
    return path


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = list(os.getloadavg())
    ramp = [int(x) for x in args.hearings.split(",")]
    with tempfile.TemporaryDirectory(prefix="sc-load-") as tmp:
        media_file = await write_media(Path(tmp), args.size, args.kbps)
        server = Server(Path(tmp), sum(ramp), recording=not args.no_recording)
        await server.prepare()
        await server.start()
        try:
            await asyncio.sleep(1.0)
            _, idle_rss = server.usage()
            steps = []
            for i, n in enumerate(ramp):
                worlds = [asdict(w) for w in server.worlds[sum(ramp[:i]) : sum(ramp[: i + 1])]]
                procs = args.procs or math.ceil(n / args.hearings_per_proc)
                step = await measure_hearings(
                    server, worlds, media_file, procs, args.seconds, args.full_rate
                )
                print(
                    json.dumps({k: v for k, v in step.items() if k != "first_hearing"}),
                    file=sys.stderr,
                    flush=True,
                )
                steps.append(step)
                if not step["full_rate"] and not args.whole_ramp:
                    break
            at_full = [s for s in steps if s["full_rate"]]
            best = max(at_full, key=lambda s: s["hearings"]) if at_full else None
            sessions: dict[str, Any] = {"ws_sessions": 0, "ws_latency_ms_p99": None}
            if args.sessions:
                sessions = await measure_sessions(
                    server, args.sessions, args.heartbeat_s, args.seconds
                )
        finally:
            await server.stop()
    return {
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "cores": os.cpu_count(),
        "clip": f"{args.size} {sfu.FPS} fps {args.kbps} kbit/s VP8 + Opus 20 ms",
        "recording": not args.no_recording,
        "seconds": args.seconds,
        "hearings_at_full_rate": best["hearings"] if best else 0,
        "cpu_per_participant": round(best["server_cpu_cores"] / best["participants"], 4)
        if best
        else None,
        "generator_cpu_per_participant": round(
            best["generator_cpu_cores"] / best["participants"], 4
        )
        if best
        else None,
        "rss_mb_per_participant": _rss_per(steps),
        "rss_mb_per_participant_over_idle": round(
            (steps[-1]["server_rss_mb"] - idle_rss) / steps[-1]["participants"], 2
        ),
        "idle_server_rss_mb": round(idle_rss, 1),
        "steps": steps,
        **sessions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hearings", default="2,4,6,8,10,12,14,17,20", help="the ramp of N")
    parser.add_argument("--procs", type=int, default=0, help="generator processes (0: auto)")
    parser.add_argument("--hearings-per-proc", type=int, default=3, help="for --procs 0")
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--heartbeat-s", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--kbps", type=int, default=500)
    parser.add_argument("--full-rate", type=float, default=0.95)
    parser.add_argument("--no-recording", action="store_true", help="recording disabled")
    parser.add_argument("--whole-ramp", action="store_true", help="go on after a step missed")
    parser.add_argument("--smoke", action="store_true", help="1 then 2 hearings, 50 sessions")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--generator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generator:
        uvloop.run(generator())
        return
    if args.smoke:
        args.hearings, args.sessions, args.seconds, args.heartbeat_s = "1,2", 50, 4.0, 1.0
        args.size, args.kbps, args.hearings_per_proc = "320x240", 200, 1  # 2 generators
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 2000 sockets need the room
    result = uvloop.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
