"""`WorkerPool`: the SFU worker processes, seen from the main process; `RouterHandle`: one
hearing's router in its worker.

One asyncio loop is one core (ARCHITECTURE section 4.3): each worker is a child process
(`python -m server.worker.process`, uvloop) hosting the routers (and recorders) of the hearings
placed on it. The main process keeps HTTP, WebSocket signaling and the database. mediasoup's
shape: the pool places a hearing on the live worker with the fewest hearings and returns a
`RouterHandle`; each handle sends its own requests over its worker's `Channel`
(channel.py), so no call carries a hearing id beside its arguments.

Failure model: a worker that dies (crash, OOM kill, SIGKILL) ends only its hearings. Its
channel fails the pending requests with WorkerDiedError; the pool emits "peerclose" with reason
WORKER_DIED for every peer it hosted, "recordingerror" WORKER_DIED for a recording it was
making, and "workerdied"; the web layer tells those clients to rejoin, and `create_router()`
places the hearing on a live worker (a dead worker is replaced by a fresh process first).
Logging of the worker goes to its stderr (inherited).

Events:
    "offer" (hearing_id, peer_id, sdp)            - server offer to send to that client
    "consumer" (hearing_id, peer_id, info: dict)  - {"consumer", "producer_peer", "kind", "mid",
        "source"}
    "consumerclose" (hearing_id, peer_id, info: dict)
    "connectionstatechange" (hearing_id, peer_id, state)
    "peerclose" (hearing_id, peer_id, reason: CloseReason)
    "workerdied" (worker_index, hearing_ids: list)
    "video" (hearing_id, peer_id, publisher_id, paused: bool, reason: str | None) - line
        adaptation paused or resumed a publisher's video to that peer (sfu/adaptation.py)
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
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from recordings import PauseReason
from server.ids import HearingId, ParticipantId, RecordingId
from server.recording.recorder import SealedRecording
from server.sfu.events import EventEmitter
from server.sfu.router import DEFAULT_ROOM
from signaling.reasons import CloseReason

from .channel import MAX_LINE, Channel, WorkerDiedError

log = logging.getLogger(__name__)


class Worker:
    """One worker process: its channel and the hearings placed on it."""

    def __init__(
        self, index: int, process: asyncio.subprocess.Process, on_event: Callable[..., None]
    ) -> None:
        self.index = index
        self.process = process
        assert process.stdout is not None
        assert process.stdin is not None
        self.channel = Channel(process.stdout, process.stdin, lambda *a: on_event(self, *a))
        self.hearings: dict[HearingId, RouterHandle] = {}
        self.watch_task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.channel.alive


class RouterHandle:
    """One hearing's Router (and recorder) in its worker process. Every method raises
    WorkerDiedError if the worker died, WorkerError for an error inside the worker (code =
    GlareError, NegotiationError, PeerClosedError, KeyError for an unknown peer, ...)."""

    def __init__(self, hearing_id: HearingId, worker: Worker) -> None:
        self.id = hearing_id
        self.worker = worker
        self.peers: set[ParticipantId] = set()  # told WORKER_DIED if the worker dies
        self.recording: tuple[RecordingId, Path] | None = None
        self.closed = False

    @property
    def worker_index(self) -> int:
        return self.worker.index

    async def _request(self, method: str, **data: Any) -> Any:
        return await self.worker.channel.request(method, self.id, **data)

    async def add_peer(self, peer_id: ParticipantId, room: str = DEFAULT_ROOM) -> None:
        await self._request("router.add_peer", peer=peer_id, room=room)
        self.peers.add(peer_id)

    async def remove_peer(self, peer_id: ParticipantId, reason: CloseReason) -> None:
        await self._request("router.remove_peer", peer=peer_id, reason=str(reason))

    async def handle_offer(self, peer_id: ParticipantId, sdp: str) -> str:
        result = await self._request("router.offer", peer=peer_id, sdp=sdp)
        return str(result["answer"])

    async def handle_answer(self, peer_id: ParticipantId, sdp: str) -> None:
        await self._request("router.answer", peer=peer_id, sdp=sdp)

    async def set_room(self, peer_id: ParticipantId, room: str) -> None:
        await self._request("router.set_room", peer=peer_id, room=room)

    async def set_audience(self, peer_id: ParticipantId, audience: Sequence[str] | None) -> None:
        members = None if audience is None else list(audience)
        await self._request("router.set_audience", peer=peer_id, audience=members)

    async def set_paused(self, peer_id: ParticipantId, kind: str | None, paused: bool) -> None:
        await self._request("router.set_paused", peer=peer_id, kind=kind, paused=paused)

    async def set_audio_only(self, peer_id: ParticipantId, enabled: bool) -> None:
        await self._request("router.set_audio_only", peer=peer_id, enabled=enabled)

    async def set_screen(self, peer_id: ParticipantId, mid: str | None) -> None:
        """Permit the peer's m-line `mid` as its shared screen, or (None) withdraw it."""
        await self._request("router.set_screen", peer=peer_id, mid=mid)

    async def dump(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("router.dump")
        return result

    async def peer_stats(self) -> list[dict[str, Any]]:
        """Each peer's connection figures (`server.sfu.quality.PeerStats`, as JSON)."""
        result: list[dict[str, Any]] = await self._request("router.peer_stats")
        return result

    # --- the recording (server/recording; runs in the worker, where the packets are) -------

    async def start_recording(
        self,
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
        WorkerError codes: ValueError (already recording), KeyFileError, FileExistsError,
        RecordingIOError.
        """
        result = await self._request(
            "recording.start",
            root=str(root),
            signing_key=str(signing_key),
            archive_keys=[str(p) for p in archive_keys],
            recipient_pems=list(recipient_pems),
            recording_id=recording_id,
            not_recorded=list(not_recorded),
            tsa=dict(tsa) if tsa is not None else None,
        )
        self.recording = (recording_id, Path(result["path"]))
        return RecordingId(result["recording_id"])

    async def pause_recording(self, reason: PauseReason, note: str = "") -> None:
        """Interrupt the recording: reason RECESS, NON_PUBLIC_EVIDENCE or MEDIATION_OFF_RECORD
        (WorkerError code InvalidReasonError otherwise; RecordingStateError if paused)."""
        await self._request("recording.pause", reason=str(reason), note=note)

    async def resume_recording(self) -> None:
        """Resume after a pause (WorkerError code RecordingStateError if not paused)."""
        await self._request("recording.resume")

    async def set_recorded(self, peer_id: ParticipantId, recorded: bool) -> None:
        """Record a participant's media or not (False while in a private caucus room)."""
        await self._request("recording.set_recorded", peer=peer_id, recorded=recorded)

    async def stop_recording(self) -> SealedRecording:
        """Stop and seal the recording; returns its id, root hash (hex) and package path.

        WorkerError codes: RecordingStateError (no recording), DiskFullError /
        RecordingIOError (it failed earlier: see "recordingerror"). WorkerDiedError: the
        package is left unfinished for `recover_unfinished`.
        """
        try:
            result = await self._request("recording.stop")
        finally:
            self.recording = None
        return SealedRecording(
            RecordingId(result["recording_id"]),
            str(result["root_hash"]),
            Path(result["path"]),
            str(result["status"]),
        )


class WorkerPool(EventEmitter):
    """Places hearings on SFU worker processes; see the module docstring for its events.

    Usage: `pool = WorkerPool(size)`, `await pool.start()`, `router = await
    pool.create_router(h)` (later `pool.router(h)`), the router's methods, `await
    pool.close_router(h, reason)`, `await pool.close()` on shutdown.
    """

    def __init__(
        self,
        size: int | None = None,
        *,
        host_addresses: Sequence[str] = ("127.0.0.1",),
        ice_servers: Sequence[dict[str, Any]] = (),
        launch_prefix: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.size = size or os.cpu_count() or 1
        # Prepended to the worker command line, e.g. ("ip", "netns", "exec", "ns") so that a
        # benchmark runs the worker in a network namespace (bench/janus_peer.py); exec-style
        # prefixes keep the worker's pid and pipes.
        self._launch_prefix = list(launch_prefix)
        self._host_addresses = list(host_addresses)
        self._ice_servers = list(ice_servers)
        self.workers: list[Worker] = []
        self._routers: dict[HearingId, RouterHandle] = {}
        self._closed = False
        # One handler per notification a worker sends (channel.py).
        self._events: dict[str, Callable[[Worker, HearingId, dict[str, Any]], None]] = {
            "offer": self._relay_offer,
            "consumer": self._relay_consumer,
            "consumerclose": self._relay_consumer_close,
            "connectionstatechange": self._relay_state,
            "peerclose": self._relay_peer_close,
            "recordingerror": self._relay_recording_error,
            "video": self._relay_video,
        }

    async def start(self) -> None:
        """Spawn the worker processes and wait until each answers."""
        for index in range(self.size):
            self.workers.append(await self._spawn(index))

    async def _spawn(self, index: int) -> Worker:
        config = json.dumps(
            {"host_addresses": self._host_addresses, "ice_servers": self._ice_servers}
        )
        process = await asyncio.create_subprocess_exec(
            *self._launch_prefix,
            sys.executable,
            "-m",
            "server.worker.process",
            config,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=MAX_LINE,
        )
        worker = Worker(index, process, self._on_event)
        worker.watch_task = asyncio.ensure_future(self._watch(worker))
        await worker.channel.request("worker.stats")
        return worker

    def router(self, hearing_id: HearingId) -> RouterHandle:
        """The hearing's router; raises KeyError if it is not placed (or its worker died)."""
        return self._routers[hearing_id]

    def worker_of(self, hearing_id: HearingId) -> Worker:
        return self._routers[hearing_id].worker

    async def create_router(self, hearing_id: HearingId) -> RouterHandle:
        """Place a hearing on the live worker with the fewest hearings.

        A dead worker is replaced by a fresh process first. Raises ValueError if placed already.
        """
        if hearing_id in self._routers:
            raise ValueError(f"hearing {hearing_id} already placed")
        for i, worker in enumerate(self.workers):
            if not worker.alive and not self._closed:
                self.workers[i] = await self._spawn(worker.index)
        worker = min((w for w in self.workers if w.alive), key=lambda w: len(w.hearings))
        router = RouterHandle(hearing_id, worker)
        worker.hearings[hearing_id] = router
        self._routers[hearing_id] = router
        try:
            await worker.channel.request("worker.create_router", hearing_id)
        except Exception:
            worker.hearings.pop(hearing_id, None)
            self._routers.pop(hearing_id, None)
            raise
        return router

    async def close_router(self, hearing_id: HearingId, reason: CloseReason) -> None:
        """Close the hearing's router (a recording still running is sealed first)."""
        router = self._routers.pop(hearing_id)
        router.closed = True
        router.worker.hearings.pop(hearing_id, None)
        if router.worker.alive:
            await router.worker.channel.request(
                "worker.close_router", hearing_id, reason=str(reason)
            )

    async def stats(self, index: int) -> dict[str, Any]:
        """CPU seconds used, pid, and hearings/peers hosted by worker `index`."""
        result: dict[str, Any] = await self.workers[index].channel.request("worker.stats")
        return result

    # --- notifications from the workers ---------------------------------------------------

    def _on_event(self, worker: Worker, event: str, target: str, data: dict[str, Any]) -> None:
        hearing = HearingId(target)
        handler = self._events.get(event)
        if handler is None:
            log.warning("worker %d: unknown event %r", worker.index, event)
            return
        handler(worker, hearing, data)

    def _relay_offer(self, worker: Worker, hearing: HearingId, data: dict[str, Any]) -> None:
        self._emit("offer", hearing, ParticipantId(data["peer"]), data["sdp"])

    def _relay_consumer(self, worker: Worker, hearing: HearingId, data: dict[str, Any]) -> None:
        self._emit("consumer", hearing, ParticipantId(data["peer"]), data["info"])

    def _relay_consumer_close(
        self, worker: Worker, hearing: HearingId, data: dict[str, Any]
    ) -> None:
        self._emit("consumerclose", hearing, ParticipantId(data["peer"]), data["info"])

    def _relay_state(self, worker: Worker, hearing: HearingId, data: dict[str, Any]) -> None:
        self._emit("connectionstatechange", hearing, ParticipantId(data["peer"]), data["state"])

    def _relay_peer_close(self, worker: Worker, hearing: HearingId, data: dict[str, Any]) -> None:
        peer = ParticipantId(data["peer"])
        router = worker.hearings.get(hearing)
        if router is not None:
            router.peers.discard(peer)
        self._emit("peerclose", hearing, peer, CloseReason(data["reason"]))

    def _relay_video(self, worker: Worker, hearing: HearingId, data: dict[str, Any]) -> None:
        self._emit(
            "video",
            hearing,
            ParticipantId(data["peer"]),
            ParticipantId(data["publisher"]),
            bool(data["paused"]),
            data.get("reason"),
        )

    def _relay_recording_error(
        self, worker: Worker, hearing: HearingId, data: dict[str, Any]
    ) -> None:
        self._emit("recordingerror", hearing, str(data["code"]), str(data["message"]))

    # --- a worker's end -------------------------------------------------------------------

    async def _watch(self, worker: Worker) -> None:
        await worker.channel.run()
        with contextlib.suppress(ProcessLookupError):
            await worker.process.wait()
        routers = list(worker.hearings.values())
        worker.hearings.clear()
        if self._closed:
            return
        log.error(
            "SFU worker %d exited (%s); ending hearings %s",
            worker.index,
            worker.process.returncode,
            [r.id for r in routers],
        )
        for router in routers:
            self._routers.pop(router.id, None)
            router.closed = True
            if router.recording is not None:
                recording_id, path = router.recording
                self._emit(
                    "recordingerror",
                    router.id,
                    "WORKER_DIED",
                    f"SFU worker died; recording {recording_id} at {path} is unfinished "
                    "(recover_unfinished seals it)",
                )
            for peer_id in sorted(router.peers):
                self._emit("peerclose", router.id, peer_id, CloseReason.WORKER_DIED)
        self._emit("workerdied", worker.index, [r.id for r in routers])

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
            if worker.watch_task is not None:
                await worker.watch_task


__all__ = ["RouterHandle", "Worker", "WorkerDiedError", "WorkerPool"]
