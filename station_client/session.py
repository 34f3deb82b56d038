"""A station's session in a hearing: signaling, one peer connection to the SFU, and its media.

The station PC publishes its camera and microphone and receives everyone it may see and hear,
by the same protocol as the browser page (docs/signaling.md). aiortc as a client of the SFU
must keep three rules (server/sfu/peer.py), or media silently goes missing:

1. ``bundlePolicy=MAX_BUNDLE``: one transport, as the SFU answers;
2. apply a server offer only once the connection is "connected" (aiortc starts new senders
   and receivers only on a connected transport);
3. never send an own offer while a server offer waits for its answer: the station offers once,
   at the start, and then only answers.

Every received track is drained (an undrained aiortc track grows without bound): audio goes to
the speaker sink when one is given, video to ``on_video`` (the window), else both are consumed
and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy

from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import ClientKind
from signaling.errors import ErrorCode

log = logging.getLogger(__name__)

FrameSink = Callable[[str, Any], None]


def _ice_servers(welcome: m.Welcome) -> list[RTCIceServer]:
    return [
        RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
        for s in welcome.ice_servers
    ]


class StationSession:
    """Join a hearing and take part with the given tracks (see the module docstring).

    ``on_video(participant_id, frame)`` receives decoded remote video frames (for the window);
    ``speaker`` receives remote audio tracks (``start(track)``), e.g. a ``SpeakerSink``;
    ``on_event(message)`` sees every signaling event (roster, states, ...), for the window.
    """

    def __init__(
        self,
        signaling: SignalingClient,
        *,
        video: MediaStreamTrack | None = None,
        audio: MediaStreamTrack | None = None,
        on_video: FrameSink | None = None,
        speaker: Any = None,
        on_event: Callable[[m.Message], None] | None = None,
    ) -> None:
        self.signaling = signaling
        self._on_event = on_event
        self._video, self._audio = video, audio
        self._on_video = on_video
        self._speaker = speaker
        self.pc: RTCPeerConnection | None = None
        self.welcome: m.Welcome | None = None
        self.owners: dict[str, str] = {}  # mid -> participant id
        self.frames: dict[str, int] = {}  # participant id -> video frames received
        self._connected = asyncio.Event()
        self.recording_hash: m.RecordingHash | None = None
        self.recording_sealed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._negotiation = asyncio.Lock()

    async def join(self, hearing_id: str) -> m.Welcome:
        """Join and publish. Raises SignalingError subclasses from the server."""
        self.welcome = await self.signaling.join(hearing_id, client_kind=ClientKind.STATION)
        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=_ice_servers(self.welcome), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
            )
        )
        self.pc = pc
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)
        for track in (self._audio, self._video):
            if track is not None:
                pc.addTransceiver(track, direction="sendonly")
        if self._audio is None and self._video is None:
            pc.addTransceiver("audio", direction="recvonly")
        async with self._negotiation:
            await pc.setLocalDescription(await pc.createOffer())
            answer = await self.signaling.request(m.Offer(sdp=pc.localDescription.sdp))
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        self._spawn(self._events())
        return self.welcome

    async def _events(self) -> None:
        async for message in self.signaling.events():
            if isinstance(message, m.Offer):
                self._spawn(self._answer(message))
            elif isinstance(message, m.Track):
                # A shared screen is its own picture, never in place of the camera (13.4).
                screen = message.source == "screen"
                owner = f"{message.participant_id}.screen" if screen else message.participant_id
                self.owners[message.mid] = owner
            elif isinstance(message, m.RecordingHash):
                # Shown to the people at the station, who may confirm it (AVR 9).
                self.recording_hash = message
                self.recording_sealed.set()
            if self._on_event is not None:
                self._on_event(message)

    async def _answer(self, offer: m.Offer) -> None:
        pc = self.pc
        assert pc is not None
        await self._connected.wait()  # rule 2
        async with self._negotiation:
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
                await pc.setLocalDescription(await pc.createAnswer())
            except Exception as exc:
                log.exception("could not apply the server's offer")
                await self.signaling.send(
                    m.Error(
                        code=ErrorCode.BAD_FIELD,
                        message=str(exc)[:900],
                        transaction=offer.transaction,
                    )
                )
                return
            await self.signaling.send(
                m.Answer(transaction=offer.transaction, sdp=pc.localDescription.sdp)
            )

    def _on_state(self) -> None:
        assert self.pc is not None
        if self.pc.connectionState == "connected":
            self._connected.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._speaker is not None:
            self._spawn(self._speaker.start(track))
            return
        self._spawn(self._drain(track))

    async def _drain(self, track: MediaStreamTrack) -> None:
        transceiver = (
            next((t for t in self.pc.getTransceivers() if t.receiver.track is track), None)
            if self.pc
            else None
        )
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                mid = transceiver.mid if transceiver is not None else None
                owner = self.owners.get(mid or "", "")
                if track.kind == "video":
                    self.frames[owner] = self.frames.get(owner, 0) + 1
                    if self._on_video is not None:
                        self._on_video(owner, frame)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, *, leave: bool = True) -> None:
        """Leave the hearing (CLIENT_LEFT) and stop media; idempotent."""
        if leave and not self.signaling.closed:
            await self.signaling.leave()
        else:
            await self.signaling.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.pc is not None:
            await self.pc.close()
