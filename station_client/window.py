"""The station's window: everyone's video, the station's own camera, what the court is doing,
and a button to leave.

Design (notes/station-hardware-research.md §3):
- Tk is driven from the asyncio loop's thread only: `run()` pumps `update()` every
  `PUMP_INTERVAL_S` from a task, so button clicks arrive on the loop as plain callbacks and no
  lock is needed.
- Turning a decoded frame into a Tk image (scale to the tile, RGB, PPM) costs a few ms per frame
  (25-36 % of a core at 30 fps). It runs in a worker thread through PyAV's own `ppm` encoder (no
  numpy), and each tile keeps only the *latest* frame: while one conversion runs, newer frames
  replace the waiting one and older ones are dropped, never queued (ARCHITECTURE §4: bounded
  media queues). `put()` of the PPM into the tile's PhotoImage happens back on the loop.
- Text is Chinese by default (the station director's language), English on request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import av

from signaling import messages as m
from signaling.enums import HearingState, ParticipantState

from .app import SELF_ID

log = logging.getLogger(__name__)

PUMP_INTERVAL_S = 0.02
TILE_SIZE = (320, 240)

STRINGS = {
    "zh-CN": {
        "title": "共享法庭 · 站点",
        "connecting": "正在连接…",
        "no_hearing": "本站点暂无开放的庭审，稍后自动加入",
        "reconnecting": "网络中断，正在重新连接…",
        "leave": "离开庭审",
        "you": "本站点",
        "waiting": "候庭中，请等待法官或书记员准入",
        "private_room": "单独会谈中",
        "muted": "已被法庭静音",
        "ended": "庭审已结束",
        "state_scheduled": "已排期",
        "state_opened": "候庭中",
        "state_in_session": "庭审中",
        "state_recess": "休庭",
        "state_suspended": "中止",
        "state_closed": "已结束",
        "recording": "录像中",
        "backup_failed": "本站点备份录像失败，请告知法官或书记员",
        "backup_upload": "正在向法院发送本站点备份录像",
        "backup_recording": "本站点备份录像中",
        "backup_paused": "本站点备份录像已暂停",
    },
    "en": {
        "title": "Shared Court · Station",
        "connecting": "Connecting…",
        "no_hearing": "No hearing is open at this station yet; joining when one opens",
        "reconnecting": "Network lost, reconnecting…",
        "leave": "Leave the hearing",
        "you": "This station",
        "waiting": "Waiting room: the judge or clerk will admit you",
        "private_room": "In a private room",
        "muted": "Muted by the court",
        "ended": "The hearing has ended",
        "state_scheduled": "Scheduled",
        "state_opened": "Waiting room open",
        "state_in_session": "In session",
        "state_recess": "Recess",
        "state_suspended": "Suspended",
        "state_closed": "Closed",
        "recording": "recording",
        "backup_failed": "the station's backup recording failed: tell the judge or clerk",
        "backup_upload": "sending the station's backup recording to the court",
        "backup_recording": "station backup recording",
        "backup_paused": "station backup paused",
    },
}


def frame_to_ppm(frame: av.VideoFrame, size: tuple[int, int] = TILE_SIZE) -> bytes:
    """The frame scaled to `size` as a binary PPM (P6), for `PhotoImage.put`. Blocks (a few ms):
    call it off the event loop."""
    rgb = frame.reformat(width=size[0], height=size[1], format="rgb24")
    encoder = av.CodecContext.create("ppm", "w")
    encoder.width, encoder.height = size
    encoder.pix_fmt = "rgb24"
    encoder.time_base = Fraction(1, 30)
    rgb.pts = 0
    rgb.time_base = encoder.time_base
    return b"".join(bytes(p) for p in encoder.encode(rgb))


@dataclass
class Tile:
    """One participant's picture in the window."""

    participant_id: str
    frame: tk.Frame
    image: tk.PhotoImage
    label: tk.Label
    caption: tk.Label
    painted: int = 0  # frames shown so far
    latest: av.VideoFrame | None = None
    converting: bool = False
    names: list[str] = field(default_factory=list)


__all__ = ["SELF_ID", "HearingWindow", "Tile", "frame_to_ppm"]


class HearingWindow:
    """The window (see the module docstring). Raises tkinter.TclError without a display."""

    def __init__(
        self,
        *,
        lang: str = "zh-CN",
        on_leave: Callable[[], None] | None = None,
        master: tk.Misc | None = None,
    ) -> None:
        """`master`: an existing Tk to open the window in (one Tk interpreter per process: Tcl
        aborts if an interpreter is freed on another thread); by default the window owns one."""
        self.strings = STRINGS.get(lang, STRINGS["zh-CN"])
        self.root: tk.Tk | tk.Toplevel = tk.Tk() if master is None else tk.Toplevel(master)
        self.root.title(self.strings["title"])
        self.root.configure(background="#1d2733")
        self.status = tk.Label(
            self.root, text=self.strings["connecting"], fg="#ffffff", bg="#a4161a", anchor="w"
        )
        self.status.pack(fill="x", ipady=6, ipadx=8)
        self.notice = tk.Label(self.root, text="", fg="#ffd166", bg="#1d2733", anchor="w")
        self.notice.pack(fill="x", padx=8)
        self.grid = tk.Frame(self.root, bg="#1d2733")
        self.grid.pack(fill="both", expand=True, padx=4, pady=4)
        self.leave_button = tk.Button(
            self.root, text=self.strings["leave"], command=self._leave_clicked
        )
        self.leave_button.pack(pady=6)
        self.root.protocol("WM_DELETE_WINDOW", self._leave_clicked)
        self.tiles: dict[str, Tile] = {}
        self.names: dict[str, str] = {}
        self.on_leave = on_leave
        self._hearing: HearingState | None = None
        self._recording = False
        self._me: str | None = None
        self._my_state: ParticipantState | None = None
        self._muted = False
        self._backup_error: str | None = None
        self._backup_state: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Pump Tk until `close()`; runs as a task on the event loop."""
        while not self.closed:
            try:
                self.root.update()
            except tk.TclError:  # the window was destroyed
                self.closed = True
                break
            await asyncio.sleep(PUMP_INTERVAL_S)  # the pump's period: Tk has no asyncio hook

    def _is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for task in self._tasks:
            task.cancel()
        for tile in list(self.tiles.values()):
            self._drop_image(tile)
        with contextlib.suppress(tk.TclError):
            self.root.destroy()

    @staticmethod
    def _drop_image(tile: Tile) -> None:
        # Delete the Tk image now, on this thread: left to the garbage collector, its __del__
        # may run on another thread, which Tk refuses.
        with contextlib.suppress(tk.TclError):
            tile.image.tk.call("image", "delete", tile.image.name)
        tile.image.name = ""  # nothing left for __del__ to do

    def _leave_clicked(self) -> None:
        if self.on_leave is not None:
            self.on_leave()

    # -- video ------------------------------------------------------------------------------

    def show_frame(self, participant_id: str, frame: av.VideoFrame) -> None:
        """A decoded frame for a participant's tile (SELF_ID: the station's own camera). Only
        the latest waiting frame per tile is kept."""
        if self.closed:
            return
        tile = self._tile(participant_id or "?")
        tile.latest = frame
        if not tile.converting:
            tile.converting = True
            task = asyncio.ensure_future(self._paint(tile))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _paint(self, tile: Tile) -> None:
        try:
            while tile.latest is not None and not self.closed:
                frame, tile.latest = tile.latest, None
                ppm = await asyncio.to_thread(frame_to_ppm, frame)
                if self._is_closed():
                    return
                tile.image.put(ppm)  # Tk takes the PPM bytes as they are
                tile.painted += 1
        except (av.FFmpegError, ValueError, tk.TclError):
            log.exception("cannot show a frame of %s", tile.participant_id)
        finally:
            tile.converting = False

    def _tile(self, participant_id: str) -> Tile:
        tile = self.tiles.get(participant_id)
        if tile is not None:
            return tile
        frame = tk.Frame(self.grid, bg="#111111")
        image = tk.PhotoImage(width=TILE_SIZE[0], height=TILE_SIZE[1])
        label = tk.Label(frame, image=image, bg="#000000", borderwidth=0)
        label.pack()
        caption = tk.Label(frame, text="", fg="#ffffff", bg="#111111", anchor="w")
        caption.pack(fill="x")
        tile = Tile(participant_id, frame, image, label, caption)
        self.tiles[participant_id] = tile
        self._caption(tile)
        self._layout()
        return tile

    def _caption(self, tile: Tile) -> None:
        if tile.participant_id == SELF_ID:
            tile.caption.configure(text=self.strings["you"])
        else:
            tile.caption.configure(text=self.names.get(tile.participant_id, ""))

    def _layout(self) -> None:
        ordered = sorted(self.tiles.values(), key=lambda t: (t.participant_id != SELF_ID,))
        columns = 3 if len(ordered) > 4 else 2
        for n, tile in enumerate(ordered):
            tile.frame.grid(row=n // columns, column=n % columns, padx=3, pady=3)

    def remove_tile(self, participant_id: str) -> None:
        tile = self.tiles.pop(participant_id, None)
        if tile is not None:
            tile.frame.destroy()
            self._drop_image(tile)
            self._layout()

    # -- what the court does ----------------------------------------------------------------

    def joined(self, welcome: m.Welcome) -> None:
        self._me = welcome.participant_id
        self._my_state = welcome.state
        self._hearing = welcome.hearing_state
        self._recording = welcome.recording
        self.names[welcome.participant_id] = welcome.display_name
        self._render()

    def no_hearing_yet(self) -> None:
        self.status.configure(text=self.strings["no_hearing"], bg="#5b6675")

    def reconnecting(self) -> None:
        self.status.configure(text=self.strings["reconnecting"], bg="#b26a00")

    def ended(self) -> None:
        self.status.configure(text=self.strings["ended"], bg="#5b6675")

    def backup_failed(self, message: str) -> None:
        """The station's local backup recording stopped (the disk is full, ...)."""
        self._backup_error = message
        self._render()

    def backup_state(self, state: str) -> None:
        """The local backup recording's state (station_client.backup.BackupState values)."""
        self._backup_state = state
        self._render()

    def backup_upload(self, fraction: float) -> None:
        """Progress of sending the sealed backup to the court (after the hearing)."""
        if not self.closed:
            percent = round(fraction * 100)
            self.notice.configure(text=f"{self.strings['backup_upload']} {percent}%")

    def on_event(self, message: m.Message) -> None:
        """Signaling events from the session: names, states, mutes, departures."""
        if isinstance(message, m.Roster):
            for p in message.participants:
                self.names[p.participant_id] = p.display_name
                if not p.connected and p.participant_id != self._me:
                    self.remove_tile(p.participant_id)  # gone: left, dropped or removed
            for tile in self.tiles.values():
                self._caption(tile)
        elif isinstance(message, m.HearingStateChanged):
            self._hearing, self._recording = message.state, message.recording
        elif isinstance(message, m.Moved):
            self._my_state = message.state
        elif isinstance(message, m.Muted):
            self._muted = message.muted
        self._render()

    def _render(self) -> None:
        if self.closed:
            return
        s = self.strings
        parts = [s[f"state_{self._hearing.value}"]] if self._hearing else []
        if self._recording:
            parts.append("● " + s["recording"])
        self.status.configure(text=" · ".join(parts) or s["connecting"], bg="#a4161a")
        notes = []
        if self._my_state is ParticipantState.WAITING:
            notes.append(s["waiting"])
        elif self._my_state is ParticipantState.IN_PRIVATE_ROOM:
            notes.append(s["private_room"])
        if self._muted:
            notes.append(s["muted"])
        if self._backup_error is not None:
            notes.append(f"{s['backup_failed']} ({self._backup_error})")
        elif self._backup_state in ("recording", "paused"):
            notes.append(s[f"backup_{self._backup_state}"])
        self.notice.configure(text="  ".join(notes))

    @property
    def status_text(self) -> str:
        return str(self.status.cget("text"))

    @property
    def notice_text(self) -> str:
        return str(self.notice.cget("text"))
