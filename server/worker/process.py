"""The SFU worker process: the hearings placed on it, each a Router with its recorder.

Started by `WorkerPool` as `python -m server.worker.process '{"host_addresses": [...],
"ice_servers": [...]}'`, under uvloop (ARCHITECTURE 4.1: stock asyncio's datagram reads are
too costly for the forwarding path). It sits above both `server.sfu` (the routing) and
`server.recording` (the recorder, which taps the router's producers where the packets are),
and composes them: a `HostedHearing` is one hearing's `Router` and, while it records, its
`HearingRecorder`. Requests arrive over the channel (channel.py) and are dispatched by method
name through one table, `HANDLERS`; each handler reads its typed arguments from the request.

A recording still running when its router closes, or when the main process closes the pipe
(shutdown), is sealed first.
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
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiortc import RTCIceServer

from recordings import RecordingError, RecordingStateError
from recordings.timestamps import TsaConfig
from server.ids import HearingId, ParticipantId, RecordingId
from server.recording.recorder import HearingRecorder, load_keys
from server.sfu import aiortc_hooks
from server.sfu.peer import Peer
from server.sfu.router import DEFAULT_ROOM, Router
from signaling.reasons import CloseReason

from .channel import ChannelServer, RequestHandler
from .counters import WorkerCounters

log = logging.getLogger(__name__)


class HostedHearing:
    """One hearing in this worker: its Router, and its HearingRecorder while it records."""

    def __init__(
        self,
        router: Router,
        server: ChannelServer,
        sealed: Callable[[HearingRecorder], None] = lambda recorder: None,
    ) -> None:
        self.router = router
        self.recorder: HearingRecorder | None = None
        self._sealed = sealed  # told of every recording this hearing seals
        self._starting = False
        self._server = server
        router.on(
            "peerclose",
            lambda pid, reason: server.notify("peerclose", router.id, peer=pid, reason=str(reason)),
        )
        router.adaptation.on(
            "video",
            lambda pid, publisher, paused, reason: server.notify(
                "video", router.id, peer=pid, publisher=publisher, paused=paused, reason=reason
            ),
        )

    @property
    def id(self) -> HearingId:
        return self.router.id

    def _peer(self, data: dict[str, Any]) -> Peer:
        return self.router.peers[ParticipantId(data["peer"])]

    # --- routing ----------------------------------------------------------------------------

    async def add_peer(self, data: dict[str, Any]) -> None:
        peer = self.router.add_peer(
            ParticipantId(data["peer"]), room=data.get("room", DEFAULT_ROOM)
        )
        notify, hearing = self._server.notify, self.id

        def info(consumer: Any) -> dict[str, Any]:
            return {
                "consumer": consumer.id,
                "producer_peer": consumer.producer_peer_id,
                "kind": consumer.kind,
                "mid": consumer.mid,
                "source": consumer.producer.source,
            }

        peer.on("offer", lambda sdp: notify("offer", hearing, peer=peer.id, sdp=sdp))
        peer.on("consumer", lambda c: notify("consumer", hearing, peer=peer.id, info=info(c)))
        peer.on(
            "consumerclose",
            lambda c, reason: notify(
                "consumerclose", hearing, peer=peer.id, info={**info(c), "reason": str(reason)}
            ),
        )
        peer.on(
            "connectionstatechange",
            lambda state: notify("connectionstatechange", hearing, peer=peer.id, state=state),
        )

    async def remove_peer(self, data: dict[str, Any]) -> None:
        self.router.remove_peer(ParticipantId(data["peer"]), CloseReason(data["reason"]))

    async def offer(self, data: dict[str, Any]) -> dict[str, str]:
        return {"answer": await self._peer(data).handle_offer(data["sdp"])}

    async def answer(self, data: dict[str, Any]) -> None:
        await self._peer(data).handle_answer(data["sdp"])

    async def set_room(self, data: dict[str, Any]) -> None:
        self.router.set_room(ParticipantId(data["peer"]), data["room"])

    async def set_audience(self, data: dict[str, Any]) -> None:
        audience = data["audience"]
        members = None if audience is None else [ParticipantId(p) for p in audience]
        self.router.set_audience(ParticipantId(data["peer"]), members)

    async def set_paused(self, data: dict[str, Any]) -> None:
        self.router.set_paused(ParticipantId(data["peer"]), data["kind"], bool(data["paused"]))

    async def set_audio_only(self, data: dict[str, Any]) -> None:
        self.router.adaptation.set_audio_only(ParticipantId(data["peer"]), bool(data["enabled"]))

    async def set_screen(self, data: dict[str, Any]) -> None:
        mid = data.get("mid")
        self.router.set_screen(ParticipantId(data["peer"]), None if mid is None else str(mid))

    async def peer_stats(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Each connected peer's quality figures (round trip, loss, bit rates; see sfu.quality)."""
        return [peer.stats().to_json() for peer in self.router.peers.values() if not peer.closed]

    async def dump(self, data: dict[str, Any]) -> dict[str, Any]:
        dump = self.router.dump()
        if self.recorder is not None:
            dump["recording"] = self.recorder.dump()
        return dump

    # --- the recording ----------------------------------------------------------------------

    async def start_recording(self, data: dict[str, Any]) -> dict[str, str]:
        if self.recorder is not None or self._starting:
            raise ValueError(f"hearing {self.id} is already being recorded")
        self._starting = True
        try:
            keys = await asyncio.to_thread(
                load_keys,
                Path(data["signing_key"]),
                [Path(p) for p in data["archive_keys"]],
                [str(p) for p in data.get("recipient_pems", ())],
            )
            recorder = await HearingRecorder.start(
                self.router,
                Path(data["root"]),
                keys,
                recording_id=RecordingId(data["recording_id"]),
                not_recorded=[ParticipantId(p) for p in data.get("not_recorded", ())],
                tsa=TsaConfig(**data["tsa"]) if data.get("tsa") else None,
            )
        finally:
            self._starting = False
        recorder.on(
            "error",
            lambda code, text: self._server.notify(
                "recordingerror",
                self.id,
                recording_id=recorder.recording_id,
                code=code,
                message=text,
            ),
        )
        self.recorder = recorder
        return {"recording_id": recorder.recording_id, "path": str(recorder.path)}

    def _recording(self) -> HearingRecorder:
        if self.recorder is None:
            raise RecordingStateError(f"hearing {self.id} is not being recorded")
        return self.recorder

    async def pause_recording(self, data: dict[str, Any]) -> None:
        await self._recording().pause(data["reason"], data.get("note", ""))

    async def resume_recording(self, data: dict[str, Any]) -> None:
        await self._recording().resume()

    async def set_recorded(self, data: dict[str, Any]) -> None:
        self._recording().set_recorded(ParticipantId(data["peer"]), bool(data["recorded"]))

    async def stop_recording(self, data: dict[str, Any]) -> dict[str, str]:
        recorder = self._recording()
        self.recorder = None
        sealed = await recorder.stop()
        self._sealed(recorder)
        return {
            "recording_id": sealed.recording_id,
            "root_hash": sealed.root_hash,
            "path": str(sealed.path),
            "status": sealed.status,
        }

    async def seal_leftover(self, why: str) -> None:
        """Seal a recording the main process did not stop (router closed, shutdown)."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        log.warning("hearing %s: %s while recording; sealing it", self.id, why)
        with contextlib.suppress(RecordingError):
            await recorder.note(f"recording ended: {why}")
        try:
            await recorder.stop()
        except RecordingError:
            log.exception("hearing %s: sealing the recording failed", self.id)
        self._sealed(recorder)

    async def close(self, reason: CloseReason, why: str) -> None:
        await self.seal_leftover(why)
        self.router.close(reason)
        await self.router.wait_closed()


# How long a worker shutting down waits for the time anchors of what it sealed.
ANCHOR_GRACE_S = 4.0

HearingMethod = Callable[[HostedHearing, dict[str, Any]], Awaitable[Any]]

# Method name -> the HostedHearing method that answers it (the request's target is the hearing).
HEARING_METHODS: dict[str, HearingMethod] = {
    "router.add_peer": HostedHearing.add_peer,
    "router.remove_peer": HostedHearing.remove_peer,
    "router.offer": HostedHearing.offer,
    "router.answer": HostedHearing.answer,
    "router.set_room": HostedHearing.set_room,
    "router.set_audience": HostedHearing.set_audience,
    "router.set_paused": HostedHearing.set_paused,
    "router.set_screen": HostedHearing.set_screen,
    "router.dump": HostedHearing.dump,
    "router.peer_stats": HostedHearing.peer_stats,
    "router.set_audio_only": HostedHearing.set_audio_only,
    "recording.start": HostedHearing.start_recording,
    "recording.pause": HostedHearing.pause_recording,
    "recording.resume": HostedHearing.resume_recording,
    "recording.set_recorded": HostedHearing.set_recorded,
    "recording.stop": HostedHearing.stop_recording,
}


class WorkerProcess:
    """The hearings of this worker and the channel's dispatch table (`handlers()`)."""

    def __init__(self, ice_servers: Sequence[RTCIceServer]) -> None:
        self.hearings: dict[HearingId, HostedHearing] = {}
        self._ice_servers = list(ice_servers)
        self._sealed: list[HearingRecorder] = []  # whose time anchors may still be on the way
        self.counters = WorkerCounters()
        self.server = ChannelServer(self.handlers())

    def handlers(self) -> dict[str, RequestHandler]:
        table: dict[str, RequestHandler] = {
            "worker.stats": self.stats,
            "worker.create_router": self.create_router,
            "worker.close_router": self.close_router,
        }
        for name, method in HEARING_METHODS.items():
            table[name] = self._on_hearing(method)
        return table

    def _on_hearing(self, method: HearingMethod) -> RequestHandler:
        async def handle(target: str | None, data: dict[str, Any]) -> Any:
            return await method(self.hearings[HearingId(str(target))], data)

        return handle

    async def stats(self, target: str | None, data: dict[str, Any]) -> dict[str, Any]:
        adaptation = {str(h.id): h.router.adaptation.dump() for h in self.hearings.values()}
        return {
            "cpu": time.process_time(),
            "pid": os.getpid(),
            "routers": len(self.hearings),
            "peers": sum(len(h.router.peers) for h in self.hearings.values()),
            **self.counters.collect(self.hearings),  # the metrics' share (issue 16.7)
            # line adaptation (sfu/adaptation.py): video streams held back from a subscriber
            # now, and per hearing each subscriber's downlink estimate and video modes
            "paused_video_streams": sum(a["paused_video_streams"] for a in adaptation.values()),
            "adaptation": adaptation,
        }

    async def create_router(self, target: str | None, data: dict[str, Any]) -> None:
        hearing_id = HearingId(str(target))
        if hearing_id in self.hearings:
            raise ValueError(f"router {hearing_id} exists")
        router = Router(hearing_id, ice_servers=self._ice_servers)
        self.hearings[hearing_id] = HostedHearing(router, self.server, self._sealed.append)

    async def close_router(self, target: str | None, data: dict[str, Any]) -> None:
        hearing = self.hearings.pop(HearingId(str(target)))
        await hearing.close(CloseReason(data["reason"]), "router closed")

    async def run(self) -> None:
        await self.server.serve()
        for hearing in list(self.hearings.values()):
            await hearing.close(CloseReason.SERVER_SHUTDOWN, "server shutdown")
        # The manifest's time-stamp token arrives after the seal, on the recording's anchoring
        # thread: give the TSA a moment (the pool allows a worker 5 s to exit) before the
        # process ends; what does not arrive is reported by verify as not stamped.
        deadline = asyncio.get_running_loop().time() + ANCHOR_GRACE_S
        for recorder in self._sealed:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or not await recorder.wait_anchors(left):
                log.warning("time anchors still pending at shutdown; verify will report them")
                break


def main(argv: Sequence[str] | None = None) -> None:
    """Worker entry point (module docstring)."""
    import uvloop

    args = list(sys.argv[1:] if argv is None else argv)
    config = json.loads(args[0]) if args else {}
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    aiortc_hooks.install_host_addresses(config.get("host_addresses") or ["127.0.0.1"])
    aiortc_hooks.fix_datagram_max_size()
    ice = [RTCIceServer(**s) for s in config.get("ice_servers", [])]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when we stop
    uvloop.run(WorkerProcess(ice).run())


if __name__ == "__main__":
    main()
