"""SFU worker processes and the `WorkerPool` the web layer calls.

One asyncio loop is one core (ARCHITECTURE section 4.3): each worker is a child process
(`python -m server.sfu.worker`, uvloop) hosting the Routers of the hearings placed on it. The
main process keeps HTTP, WebSocket signaling and the database, and forwards the signaling
calls for a hearing to the worker hosting it.

Protocol: JSON, one object per line, over the child's stdin (requests) and stdout (replies and
events). Requests carry an integer "id" echoed by the reply:

    -> {"id": 1, "op": "add_peer", "hearing": H, "peer": P, "room": "main"}
    <- {"id": 1, "ok": true, "result": null}
    <- {"id": 2, "ok": false, "error": "GlareError", "message": "..."}
    <- {"event": "offer", "hearing": H, "peer": P, "sdp": "..."}

ops: create_router, close_router, add_peer, remove_peer, offer (-> {"answer": sdp}), answer,
set_room, set_audience, set_paused, dump, stats (-> {"cpu": seconds, "routers": n, "peers": n}),
and the recording ops (server/recording; the recorder runs here, where the packets are):
start_recording (root, signing_key, archive_keys, recording_id, not_recorded
-> {"recording_id", "path"}),
pause_recording (reason, note), resume_recording, set_recorded (peer, recorded),
stop_recording (-> {"recording_id", "root_hash", "path", "status"}). A hearing's recording still
running when its router closes (or the worker shuts down) is sealed first.
events: offer, consumer, consumerclose, producer, connectionstatechange, peerclose,
recordingerror (code, message, recording_id).

Failure model: a worker that dies (crash, OOM kill, SIGKILL) ends only its hearings. The pool
notices EOF on the pipe, fails the worker's pending requests with WorkerDiedError, emits
"peerclose" with reason WORKER_DIED for every peer it hosted and "workerdied"; the web layer
tells those clients to rejoin, and `create_router()` places the hearing on a live worker.
Logging of the worker goes to its stderr (inherited).

WorkerPool events:
    "offer" (hearing_id, peer_id, sdp)            - server offer to send to that client
    "consumer" (hearing_id, peer_id, info: dict)  - {"consumer", "producer_peer", "kind", "mid"}
    "consumerclose" (hearing_id, peer_id, info: dict)
    "connectionstatechange" (hearing_id, peer_id, state)
    "peerclose" (hearing_id, peer_id, reason: CloseReason)
    "workerdied" (worker_index, hearing_ids: list)
    "recordingerror" (hearing_id, code: str, message: str) - the hearing's recording failed and
        stopped: code DISK_FULL, IO_ERROR, RECORDING_FAILED (from the recorder) or WORKER_DIED
        (its worker died: the package is left unfinished for `recover_unfinished`). Alert the
        judge; `stop_recording` then raises WorkerError with the failure's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc import RTCIceServer

from recordings import PauseReason, RecordingError, RecordingStateError
from recordings.timestamps import TsaConfig
from server.ids import HearingId, ParticipantId, RecordingId
from server.recording.recorder import HearingRecorder, SealedRecording, load_keys
from signaling.reasons import CloseReason

from . import aiortc_hooks
from .events import EventEmitter
from .peer import Peer
from .router import DEFAULT_ROOM, Router

logger = logging.getLogger(__name__)

MAX_LINE = 1 << 20  # SDP of a large hearing stays far below 1 MiB
MAX_BACKLOG = 16 << 20  # unread bytes towards the main process before events are dropped


class WorkerError(Exception):
    """A request failed inside the worker; `code` is the exception class name there."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class WorkerDiedError(WorkerError):
    """The worker hosting the hearing exited before answering."""

    def __init__(self, message: str = "SFU worker died") -> None:
        super().__init__("WorkerDied", message)


@dataclass(frozen=True)
class _Recording:
    recording_id: RecordingId
    path: Path


# --- main-process side -------------------------------------------------------------------


class _WorkerHandle:
    def __init__(self, index: int, process: asyncio.subprocess.Process) -> None:
        self.index = index
        self.process = process
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.hearings: dict[HearingId, set[ParticipantId]] = {}
        self.alive = True
        self.reader_task: asyncio.Task[None] | None = None
        self.next_id = 0
        self.write_lock = asyncio.Lock()


class WorkerPool(EventEmitter):
    """Places hearings on SFU worker processes and relays signaling to them.

    Usage: `pool = WorkerPool(size)`, `await pool.start()`, `await pool.create_router(h)`,
    `await pool.add_peer(h, p, room)`, `answer = await pool.handle_offer(h, p, sdp)`,
    `await pool.handle_answer(h, p, sdp)` for each "offer" event, routing with `set_room`,
    `set_audience`, `set_paused`; recording with `start_recording`, `pause_recording`,
    `resume_recording`, `set_recorded`, `stop_recording`; `await pool.close()` on shutdown.
    Every method raises KeyError for an unknown hearing, WorkerDiedError if its worker died,
    WorkerError for an error inside the worker (code = GlareError, NegotiationError,
    PeerClosedError, ...).
    """

    def __init__(
        self,
        size: int | None = None,
        *,
        host_addresses: Sequence[str] = ("127.0.0.1",),
        ice_servers: Sequence[dict[str, Any]] = (),
    ) -> None:
        super().__init__()
        self.size = size or os.cpu_count() or 1
        self._host_addresses = list(host_addresses)
        self._ice_servers = list(ice_servers)
        self.workers: list[_WorkerHandle] = []
        self._placement: dict[HearingId, _WorkerHandle] = {}
        self._recordings: dict[HearingId, _Recording] = {}
        self._closed = False

    async def start(self) -> None:
        """Spawn the worker processes and wait until each answers."""
        for index in range(self.size):
            self.workers.append(await self._spawn(index))

    async def _spawn(self, index: int) -> _WorkerHandle:
        config = json.dumps(
            {"host_addresses": self._host_addresses, "ice_servers": self._ice_servers}
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.sfu.worker",
            config,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=MAX_LINE,
        )
        worker = _WorkerHandle(index, process)
        worker.reader_task = asyncio.ensure_future(self._read(worker))
        await self._request(worker, {"op": "stats"})
        return worker

    def worker_of(self, hearing_id: HearingId) -> _WorkerHandle:
        return self._placement[hearing_id]

    async def create_router(self, hearing_id: HearingId) -> int:
        """Place a hearing on the live worker with the fewest hearings; returns its index.

        A dead worker is replaced by a fresh process first. Raises ValueError if placed already.
        """
        if hearing_id in self._placement:
            raise ValueError(f"hearing {hearing_id} already placed")
        for i, worker in enumerate(self.workers):
            if not worker.alive and not self._closed:
                self.workers[i] = await self._spawn(worker.index)
        worker = min((w for w in self.workers if w.alive), key=lambda w: len(w.hearings))
        worker.hearings[hearing_id] = set()
        self._placement[hearing_id] = worker
        try:
            await self._request(worker, {"op": "create_router", "hearing": hearing_id})
        except Exception:
            worker.hearings.pop(hearing_id, None)
            self._placement.pop(hearing_id, None)
            raise
        return worker.index

    async def close_router(self, hearing_id: HearingId, reason: CloseReason) -> None:
        worker = self._placement.pop(hearing_id)
        worker.hearings.pop(hearing_id, None)
        self._recordings.pop(hearing_id, None)  # the worker seals a recording still running
        if worker.alive:
            await self._request(
                worker, {"op": "close_router", "hearing": hearing_id, "reason": str(reason)}
            )

    async def add_peer(
        self, hearing_id: HearingId, peer_id: ParticipantId, room: str = DEFAULT_ROOM
    ) -> None:
        worker = self._placement[hearing_id]
        await self._request(
            worker, {"op": "add_peer", "hearing": hearing_id, "peer": peer_id, "room": room}
        )
        worker.hearings[hearing_id].add(peer_id)

    async def remove_peer(
        self, hearing_id: HearingId, peer_id: ParticipantId, reason: CloseReason
    ) -> None:
        await self._call(hearing_id, "remove_peer", peer=peer_id, reason=str(reason))

    async def handle_offer(self, hearing_id: HearingId, peer_id: ParticipantId, sdp: str) -> str:
        result = await self._call(hearing_id, "offer", peer=peer_id, sdp=sdp)
        return str(result["answer"])

    async def handle_answer(self, hearing_id: HearingId, peer_id: ParticipantId, sdp: str) -> None:
        await self._call(hearing_id, "answer", peer=peer_id, sdp=sdp)

    async def set_room(self, hearing_id: HearingId, peer_id: ParticipantId, room: str) -> None:
        await self._call(hearing_id, "set_room", peer=peer_id, room=room)

    async def set_audience(
        self, hearing_id: HearingId, peer_id: ParticipantId, audience: Sequence[str] | None
    ) -> None:
        await self._call(
            hearing_id,
            "set_audience",
            peer=peer_id,
            audience=None if audience is None else list(audience),
        )

    async def set_paused(
        self, hearing_id: HearingId, peer_id: ParticipantId, kind: str | None, paused: bool
    ) -> None:
        await self._call(hearing_id, "set_paused", peer=peer_id, kind=kind, paused=paused)

    # --- recording (server/recording; runs in the hearing's worker) -------------------------

    async def start_recording(
        self,
        hearing_id: HearingId,
        root: Path,
        *,
        signing_key: Path,
        archive_keys: Sequence[Path],
        recording_id: RecordingId,
        not_recorded: Sequence[ParticipantId] = (),
        recipient_pems: Sequence[str] = (),
        tsa: Mapping[str, Any] | None = None,
    ) -> RecordingId:
        """Start recording the hearing into `root/<recording_id>/`; returns the recording id.

        `signing_key` is the recorder's Ed25519 PEM file, `archive_keys` the archive X25519
        public key files the data key is wrapped for (the worker reads them), `recipient_pems`
        further X25519 public keys as PEM text (the playback key); `not_recorded`
        participants (in a caucus room right now) are left out until `set_recorded(.., True)`.
        `tsa`: the fields of a `recordings.timestamps.TsaConfig` (RFC 3161 anchors), or None.
        Raises as the other methods; WorkerError codes: ValueError (already recording),
        KeyFileError, FileExistsError, RecordingIOError.
        """
        result = await self._call(
            hearing_id,
            "start_recording",
            root=str(root),
            signing_key=str(signing_key),
            archive_keys=[str(p) for p in archive_keys],
            recipient_pems=list(recipient_pems),
            recording_id=recording_id,
            not_recorded=list(not_recorded),
            tsa=dict(tsa) if tsa is not None else None,
        )
        self._recordings[hearing_id] = _Recording(recording_id, Path(result["path"]))
        return RecordingId(result["recording_id"])

    async def pause_recording(
        self, hearing_id: HearingId, reason: PauseReason | str, note: str = ""
    ) -> None:
        """Interrupt the recording: reason RECESS, NON_PUBLIC_EVIDENCE or MEDIATION_OFF_RECORD
        (WorkerError code InvalidReasonError otherwise; RecordingStateError if paused)."""
        await self._call(hearing_id, "pause_recording", reason=str(reason), note=note)

    async def resume_recording(self, hearing_id: HearingId) -> None:
        """Resume after a pause (WorkerError code RecordingStateError if not paused)."""
        await self._call(hearing_id, "resume_recording")

    async def set_recorded(
        self, hearing_id: HearingId, peer_id: ParticipantId, recorded: bool
    ) -> None:
        """Record a participant's media or not (False while in a private caucus room)."""
        await self._call(hearing_id, "set_recorded", peer=peer_id, recorded=recorded)

    async def stop_recording(self, hearing_id: HearingId) -> SealedRecording:
        """Stop and seal the recording; returns its id, root hash (hex) and package path.

        WorkerError codes: RecordingStateError (no recording), DiskFullError /
        RecordingIOError (it failed earlier: see "recordingerror"). WorkerDiedError: the
        package is left unfinished for `recover_unfinished`.
        """
        try:
            result = await self._call(hearing_id, "stop_recording")
        finally:
            self._recordings.pop(hearing_id, None)
        return SealedRecording(
            RecordingId(result["recording_id"]),
            str(result["root_hash"]),
            Path(result["path"]),
            str(result["status"]),
        )

    async def dump(self, hearing_id: HearingId) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(hearing_id, "dump")
        return result

    async def stats(self, index: int) -> dict[str, Any]:
        """CPU seconds used and hearings/peers hosted by worker `index`."""
        result: dict[str, Any] = await self._request(self.workers[index], {"op": "stats"})
        return result

    async def _call(self, hearing_id: HearingId, op: str, **fields: Any) -> Any:
        worker = self._placement[hearing_id]
        return await self._request(worker, {"op": op, "hearing": hearing_id, **fields})

    async def _request(self, worker: _WorkerHandle, message: dict[str, Any]) -> Any:
        if not worker.alive:
            raise WorkerDiedError()
        worker.next_id += 1
        message["id"] = worker.next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.pending[worker.next_id] = future
        stdin = worker.process.stdin
        assert stdin is not None
        try:
            async with worker.write_lock:
                stdin.write(json.dumps(message).encode() + b"\n")
                await stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            worker.pending.pop(message["id"], None)
            raise WorkerDiedError() from exc
        return await future

    async def _read(self, worker: _WorkerHandle) -> None:
        stdout = worker.process.stdout
        assert stdout is not None
        try:
            while True:
                line = await stdout.readline()
                if not line:
                    break
                try:
                    message = json.loads(line)
                except ValueError:
                    logger.warning("worker %d: unparsable line", worker.index)
                    continue
                self._dispatch(worker, message)
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            logger.exception("worker %d: pipe failed", worker.index)
        finally:
            await self._worker_gone(worker)

    def _dispatch(self, worker: _WorkerHandle, message: dict[str, Any]) -> None:
        if "id" in message:
            future = worker.pending.pop(message["id"], None)
            if future is None or future.done():
                return
            if message.get("ok"):
                future.set_result(message.get("result"))
            else:
                future.set_exception(WorkerError(message["error"], message.get("message", "")))
            return
        event = message.get("event")
        hearing = HearingId(message.get("hearing", ""))
        peer = ParticipantId(message.get("peer", ""))
        if event == "offer":
            self._emit("offer", hearing, peer, message["sdp"])
        elif event in ("consumer", "consumerclose"):
            self._emit(event, hearing, peer, message["info"])
        elif event == "connectionstatechange":
            self._emit(event, hearing, peer, message["state"])
        elif event == "peerclose":
            peers = worker.hearings.get(hearing)
            if peers is not None:
                peers.discard(peer)
            self._emit("peerclose", hearing, peer, CloseReason(message["reason"]))
        elif event == "recordingerror":
            self._emit("recordingerror", hearing, str(message["code"]), str(message["message"]))

    async def _worker_gone(self, worker: _WorkerHandle) -> None:
        if not worker.alive:
            return
        worker.alive = False
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(WorkerDiedError())
        worker.pending.clear()
        with contextlib.suppress(ProcessLookupError):
            await worker.process.wait()
        hearings = list(worker.hearings)
        if not self._closed:
            logger.error(
                "SFU worker %d exited (%s); ending hearings %s",
                worker.index,
                worker.process.returncode,
                hearings,
            )
            for hearing_id in hearings:
                recording = self._recordings.pop(hearing_id, None)
                if recording is not None:
                    self._emit(
                        "recordingerror",
                        hearing_id,
                        "WORKER_DIED",
                        f"SFU worker died; recording {recording.recording_id} at "
                        f"{recording.path} is unfinished (recover_unfinished seals it)",
                    )
                for peer_id in sorted(worker.hearings[hearing_id]):
                    self._emit("peerclose", hearing_id, peer_id, CloseReason.WORKER_DIED)
                self._placement.pop(hearing_id, None)
            self._emit("workerdied", worker.index, hearings)
        worker.hearings.clear()

    async def close(self) -> None:
        """Stop every worker (their hearings end with SERVER_SHUTDOWN); idempotent."""
        self._closed = True
        for worker in self.workers:
            if worker.alive and worker.process.stdin is not None:
                with contextlib.suppress(Exception):
                    worker.process.stdin.close()
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.process.wait(), timeout=5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
            if worker.reader_task is not None:
                await worker.reader_task


# --- worker-process side -----------------------------------------------------------------


class _WorkerServer:
    def __init__(self, ice_servers: list[RTCIceServer]) -> None:
        self.routers: dict[HearingId, Router] = {}
        self.recorders: dict[HearingId, HearingRecorder] = {}
        self._starting: set[HearingId] = set()
        self.ice_servers = ice_servers
        self.out: asyncio.WriteTransport | None = None
        self.pipe_broken = False

    def send(self, message: dict[str, Any]) -> None:
        # stdout is a pipe to the main process; a line per message, written at once.
        # Non-blocking: the loop's pipe transport buffers; a main process that stops reading
        # (MAX_BACKLOG) or has gone away loses events instead of stalling the media path.
        out = self.out
        if self.pipe_broken or out is None:
            return
        if out.is_closing() or out.get_write_buffer_size() > MAX_BACKLOG:
            logger.warning("pipe to the main process broken or stalled; dropping events")
            self.pipe_broken = True
            return
        out.write(json.dumps(message).encode() + b"\n")

    def _wire_peer(self, hearing: HearingId, peer: Peer) -> None:
        def info(consumer: Any) -> dict[str, Any]:
            return {
                "consumer": consumer.id,
                "producer_peer": consumer.producer_peer_id,
                "kind": consumer.kind,
                "mid": consumer.mid,
            }

        base = {"hearing": hearing, "peer": peer.id}
        peer.on("offer", lambda sdp: self.send({"event": "offer", **base, "sdp": sdp}))
        peer.on("consumer", lambda c: self.send({"event": "consumer", **base, "info": info(c)}))
        peer.on(
            "consumerclose",
            lambda c, reason: self.send(
                {"event": "consumerclose", **base, "info": {**info(c), "reason": str(reason)}}
            ),
        )
        peer.on(
            "connectionstatechange",
            lambda state: self.send({"event": "connectionstatechange", **base, "state": state}),
        )

    async def handle(self, message: dict[str, Any]) -> Any:
        op = message["op"]
        if op == "stats":
            return {
                "cpu": time.process_time(),
                "pid": os.getpid(),
                "routers": len(self.routers),
                "peers": sum(len(r.peers) for r in self.routers.values()),
            }
        hearing = HearingId(message["hearing"])
        if op == "create_router":
            if hearing in self.routers:
                raise ValueError(f"router {hearing} exists")
            router = Router(hearing, ice_servers=self.ice_servers)
            router.on(
                "peerclose",
                lambda pid, reason: self.send(
                    {"event": "peerclose", "hearing": hearing, "peer": pid, "reason": str(reason)}
                ),
            )
            self.routers[hearing] = router
            return None
        router = self.routers[hearing]
        if op in _RECORDING_OPS:
            return await self._recording_op(op, hearing, router, message)
        if op == "close_router":
            self.routers.pop(hearing)
            await self._seal_leftover(hearing, "router closed")
            router.close(CloseReason(message["reason"]))
            await router.wait_closed()
            return None
        if op == "dump":
            dump = router.dump()
            recorder = self.recorders.get(hearing)
            if recorder is not None:
                dump["recording"] = recorder.dump()
            return dump
        peer_id = ParticipantId(message["peer"])
        if op == "add_peer":
            self._wire_peer(
                hearing, router.add_peer(peer_id, room=message.get("room", DEFAULT_ROOM))
            )
            return None
        if op == "remove_peer":
            router.remove_peer(peer_id, CloseReason(message["reason"]))
            return None
        if op == "offer":
            return {"answer": await router.peers[peer_id].handle_offer(message["sdp"])}
        if op == "answer":
            await router.peers[peer_id].handle_answer(message["sdp"])
            return None
        if op == "set_room":
            router.set_room(peer_id, message["room"])
            return None
        if op == "set_audience":
            router.set_audience(peer_id, message["audience"])
            return None
        if op == "set_paused":
            router.set_paused(peer_id, message["kind"], bool(message["paused"]))
            return None
        raise ValueError(f"unknown op {op!r}")

    async def _recording_op(
        self, op: str, hearing: HearingId, router: Router, message: dict[str, Any]
    ) -> Any:
        if op == "start_recording":
            if hearing in self.recorders or hearing in self._starting:
                raise ValueError(f"hearing {hearing} is already being recorded")
            self._starting.add(hearing)
            try:
                keys = await asyncio.to_thread(
                    load_keys,
                    Path(message["signing_key"]),
                    [Path(p) for p in message["archive_keys"]],
                    [str(p) for p in message.get("recipient_pems", ())],
                )
                recorder = await HearingRecorder.start(
                    router,
                    Path(message["root"]),
                    keys,
                    recording_id=RecordingId(message["recording_id"]),
                    not_recorded=[ParticipantId(p) for p in message.get("not_recorded", ())],
                    tsa=TsaConfig(**message["tsa"]) if message.get("tsa") else None,
                )
            finally:
                self._starting.discard(hearing)
            recorder.on(
                "error",
                lambda code, text: self.send(
                    {
                        "event": "recordingerror",
                        "hearing": hearing,
                        "recording_id": recorder.recording_id,
                        "code": code,
                        "message": text,
                    }
                ),
            )
            self.recorders[hearing] = recorder
            return {"recording_id": recorder.recording_id, "path": str(recorder.path)}
        active = self.recorders.get(hearing)
        if active is None:
            raise RecordingStateError(f"hearing {hearing} is not being recorded")
        recorder = active
        if op == "pause_recording":
            await recorder.pause(message["reason"], message.get("note", ""))
        elif op == "resume_recording":
            await recorder.resume()
        elif op == "set_recorded":
            recorder.set_recorded(ParticipantId(message["peer"]), bool(message["recorded"]))
        elif op == "stop_recording":
            del self.recorders[hearing]
            sealed = await recorder.stop()
            return {
                "recording_id": sealed.recording_id,
                "root_hash": sealed.root_hash,
                "path": str(sealed.path),
                "status": sealed.status,
            }
        return None

    async def _seal_leftover(self, hearing: HearingId, why: str) -> None:
        """Seal a recording the main process did not stop (router closed, shutdown)."""
        recorder = self.recorders.pop(hearing, None)
        if recorder is None:
            return
        logger.warning("hearing %s: %s while recording; sealing it", hearing, why)
        with contextlib.suppress(RecordingError):
            await recorder.note(f"recording ended: {why}")
        try:
            await recorder.stop()
        except RecordingError:
            logger.exception("hearing %s: sealing the recording failed", hearing)

    async def run_request(self, message: dict[str, Any]) -> None:
        try:
            result = await self.handle(message)
        except Exception as exc:
            self.send(
                {
                    "id": message.get("id"),
                    "ok": False,
                    "error": type(exc).__name__,
                    "message": str(exc),
                }
            )
        else:
            self.send({"id": message.get("id"), "ok": True, "result": result})

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.out, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)
        reader = asyncio.StreamReader(limit=MAX_LINE)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        tasks: set[asyncio.Task[None]] = set()
        while True:
            line = await reader.readline()
            if not line:
                break
            task = asyncio.ensure_future(self.run_request(json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        for hearing in list(self.recorders):
            await self._seal_leftover(hearing, "server shutdown")
        for router in list(self.routers.values()):
            router.close(CloseReason.SERVER_SHUTDOWN)
        await asyncio.gather(*(r.wait_closed() for r in self.routers.values()))


_RECORDING_OPS = frozenset(
    {"start_recording", "pause_recording", "resume_recording", "set_recorded", "stop_recording"}
)


def main(argv: Sequence[str] | None = None) -> None:
    """Worker entry point: `python -m server.sfu.worker '{"host_addresses": [...]}'`."""
    import uvloop

    args = list(sys.argv[1:] if argv is None else argv)
    config = json.loads(args[0]) if args else {}
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    aiortc_hooks.install_host_addresses(config.get("host_addresses") or ["127.0.0.1"])
    aiortc_hooks.fix_datagram_max_size()
    ice = [RTCIceServer(**s) for s in config.get("ice_servers", [])]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when we stop
    uvloop.run(_WorkerServer(ice).serve())


if __name__ == "__main__":
    main()
