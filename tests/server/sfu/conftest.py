"""Fixtures for the SFU tests: real aiortc peers on 127.0.0.1, no STUN, under uvloop.

`Client` is a small aiortc participant: it publishes a synthetic 320x240 VP8 video whose luma
value identifies the publisher (so a test can tell *whose* picture it decoded) and Opus
silence, answers server offers, and counts decoded frames per m-line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import av
import pytest
import uvloop
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy

from server.ids import HearingId, ParticipantId, new_id
from server.sfu import Peer, Router, aiortc_hooks
from signaling.reasons import CloseReason


@pytest.fixture(scope="session", autouse=True)
def _loopback_only() -> None:
    aiortc_hooks.install_host_addresses(["127.0.0.1"])
    return


_HERE = Path(__file__).parent


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    """Run the SFU tests under uvloop, the SFU's production loop (only tests/server/sfu)."""
    if _HERE in Path(str(item.path)).parents:
        return {"uvloop": uvloop.new_event_loop}
    return None


async def wait_for(
    condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> float:
    """Poll `condition` until true; returns the seconds it took; fails the test on timeout."""
    start = time.monotonic()
    deadline = start + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


class LumaVideoTrack(VideoStreamTrack):
    """320x240 frames of one flat luma value (the publisher's signature), 30 fps."""

    def __init__(self, luma: int, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self._size = (width, height)
        self.set_luma(luma)

    def set_luma(self, luma: int) -> None:
        """Change the picture from the next frame on (tells frames before and after apart)."""
        frame = av.VideoFrame(*self._size, "yuv420p")
        frame.planes[0].update(bytes([luma]) * (frame.planes[0].buffer_size))
        frame.planes[1].update(bytes([128]) * frame.planes[1].buffer_size)
        frame.planes[2].update(bytes([128]) * frame.planes[2].buffer_size)
        self._template = frame

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = self._template.reformat()  # a fresh frame object each time
        frame.pts = pts
        frame.time_base = time_base
        return frame


def frame_luma(frame: av.VideoFrame) -> int:
    plane = frame.planes[0]
    data = bytes(plane)
    row = plane.line_size * (frame.height // 2)
    return data[row + frame.width // 2]


class Client:
    """An aiortc participant talking to one SFU Peer directly (no WebSocket in between)."""

    def __init__(self, name: str, *, luma: int | None = 100, audio: bool = True) -> None:
        self.name = name
        self.id = ParticipantId(new_id())
        # max-bundle: with aiortc's default "balanced" policy, a server offer adding two m-lines
        # of a kind the client did not have leaves the second on a dead transport (aiortc bug).
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.peer: Peer | None = None
        self.luma = luma
        self.video_track = LumaVideoTrack(luma) if luma is not None else None
        self.audio_track = AudioStreamTrack() if audio else None
        if self.video_track is not None:
            self.pc.addTrack(self.video_track)
        if self.audio_track is not None:
            self.pc.addTrack(self.audio_track)
        if self.video_track is None and self.audio_track is None:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.frames: dict[str, int] = {}  # mid -> decoded frames
        self.lumas: dict[str, int] = {}  # mid -> last decoded luma (video)
        self.first_frame_at: dict[str, float] = {}
        self.answers = 0
        # Signaling messages are ordered on a real WebSocket: the answer to our offer is applied
        # before any server offer that the SFU emitted right after it. The lock models that.
        self._signaling = asyncio.Lock()
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self._connected.set()

    async def connect(self, peer: Peer) -> None:
        self.peer = peer
        peer.on("offer", self._on_server_offer)
        async with self._signaling:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            answer = await peer.handle_offer(self.pc.localDescription.sdp)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def _on_server_offer(self, sdp: str) -> None:
        assert self.peer is not None
        # aiortc (unlike browsers) starts the receivers of a description only if DTLS is
        # already up when it is applied: an aiortc client applies server offers once connected.
        await self._connected.wait()
        async with self._signaling:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.peer.handle_answer(self.pc.localDescription.sdp)
            self.answers += 1

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
        task = asyncio.ensure_future(self._drain(str(mid), track))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, mid: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.frames[mid] = self.frames.get(mid, 0) + 1
                self.first_frame_at.setdefault(mid, time.monotonic())
                if isinstance(frame, av.VideoFrame):
                    self.lumas[mid] = frame_luma(frame)

    def frames_from(self, publisher: Client, kind: str) -> int:
        """Decoded frames of `publisher`'s `kind` stream (mapped with the SFU's consumer mids)."""
        return sum(self.frames.get(mid, 0) for mid in self.mids_from(publisher, kind))

    def mids_from(self, publisher: Client, kind: str) -> list[str]:
        assert self.peer is not None
        return [
            str(c.mid)
            for c in self.peer.consumers.values()
            if c.producer_peer_id == publisher.id and c.kind == kind and c.mid is not None
        ]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.pc.close()


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    r = Router(HearingId(new_id()))
    yield r
    r.close(CloseReason.SERVER_SHUTDOWN)
    await r.wait_closed()


@pytest.fixture
async def make_client(router: Router) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    clients: list[Client] = []

    async def make(name: str, *, room: str = "main", connect: bool = True, **kw: Any) -> Client:
        client = Client(name, **kw)
        clients.append(client)
        peer = router.add_peer(client.id, room=room)
        if connect:
            await client.connect(peer)
        else:
            client.peer = peer
        return client

    yield make
    for client in clients:
        await client.close()
