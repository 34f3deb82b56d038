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
import functools
import logging
import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

import av

from signaling import messages as m
from signaling.enums import HearingState, ParticipantState

log = logging.getLogger(__name__)

# The tile of the station's own camera (what the app's PreviewTrack shows).
SELF_ID = "self"
# A participant's shared screen is its own tile, keyed "<participant id>.screen" (issue 13.4;
# station_client.session names the track's owner so).
SCREEN_SUFFIX = ".screen"

PUMP_INTERVAL_S = 0.02
TILE_SIZE = (320, 240)
# Read from two metres (UI.md 5): sizes in pixels (negative Tk sizes), a CJK font if present.
FONT_FAMILY = "WenQuanYi Micro Hei"
FONT_TITLE = (FONT_FAMILY, -44, "bold")
FONT_TEXT = (FONT_FAMILY, -30)
FONT_SMALL = (FONT_FAMILY, -24)
FONT_HASH = ("DejaVu Sans Mono", -30, "bold")
BG, BANNER, SIDE = "#1d2733", "#0b3d66", "#26384a"
STATE_COLOURS = {"in_session": "#a4161a", "recess": "#b26a00", "suspended": "#b26a00"}
NETWORK_COLOURS = {"good": "#2d6a4f", "okay": "#b26a00", "bad": "#a4161a"}

STRINGS = {
    "zh-CN": {
        "title": "共享法庭 · 站点",
        "connecting": "正在连接…",
        "no_hearing": "本站点暂无开放的庭审，稍后自动加入",
        "reconnecting": "网络中断，正在重新连接…",
        "leave": "离开庭审",
        "you": "本站点",
        "screen_of": "{name} 的共享屏幕",
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
        "on_record": "● 在案录像中",
        "off_record": "未录像",
        "case": "案号",
        "expected": "应到人员",
        "today": "今日庭审",
        "no_people": "（无）",
        "identity_self": "已自行核验身份",
        "identity_station": "已当面核验身份",
        "identity_staff": "法官已核验身份",
        "identity_login": "工作人员",
        "identity_none": "未核验身份",
        "connected": "在线",
        "network": "网络",
        "net_good": "良好",
        "net_okay": "一般",
        "net_bad": "差",
        "net_unknown": "检测中",
        "picture_lowered": "网络较差：已降低画面以保证声音",
        "choose": "本站点有多个庭审同时开放，请选择要加入的庭审：",
        "join": "加入",
        "hash_title": "庭审已结束。请到场人员核对本次庭审录像的哈希值：",
        "hash_confirm": "哈希值已核对，确认无误",
        "hash_dispute": "有异议",
        "hash_confirmed": "已确认，法院已记录",
        "hash_disputed": "已记录异议，法院将核查",
        "hash_mismatch": "法院记录的哈希值与此不同，请告知法官",
        "hash_failed": "未能发送，请重试",
        "close_window": "关闭窗口",
        "attest_title": "当面核验身份",
        "attest_person": "人员",
        "attest_name": "证件上的姓名",
        "attest_digits": "证件号码末几位",
        "attest_button": "已当面核验身份",
        "attest_done": "已记录：当面核验身份",
        "attest_failed": "未能核验",
        "attest_BAD_FIELD": "姓名或证件号码与法院记录不符",
        "attest_WRONG_STATE": "该人员身份已核验，或庭审已结束",
        "attest_NOT_FOUND": "找不到该人员",
        "self_test": "设备自检",
        "self_test_running": "正在自检…",
        "score_good": "良好",
        "score_okay": "一般",
        "score_bad": "差",
        "check_camera": "摄像头",
        "check_microphone": "麦克风",
        "check_speaker": "扬声器",
        "check_network": "网络",
        "disabled": "本站点已被法院停用，无法参加庭审。请联系法院。",
        "stopped": "站点已停用",
        "fail_NO_CAMERA": "未接摄像头",
        "fail_NO_FRAMES": "摄像头没有画面",
        "fail_BLANK_PICTURE": "画面全黑或无内容",
        "fail_LOW_FRAME_RATE": "画面卡顿",
        "fail_NO_MICROPHONE": "未接麦克风",
        "fail_NO_SOUND_INPUT": "麦克风没有声音输入",
        "fail_QUIET": "声音偏小",
        "fail_SILENT": "听不到声音",
        "fail_NO_SPEAKER": "未接扬声器",
        "fail_PLAYBACK_FAILED": "扬声器无法播放",
        "fail_UNREACHABLE": "连不上法院",
        "fail_HIGH_LOSS": "丢包严重",
        "fail_SOME_LOSS": "有丢包",
        "fail_HIGH_DELAY": "延迟很高",
        "fail_DELAY": "延迟偏高",
        "fail_LOW_UPLOAD": "上传速度慢",
    },
    "en": {
        "title": "Shared Court · Station",
        "connecting": "Connecting…",
        "no_hearing": "No hearing is open at this station yet; joining when one opens",
        "reconnecting": "Network lost, reconnecting…",
        "leave": "Leave the hearing",
        "you": "This station",
        "screen_of": "{name}'s shared screen",
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
        "on_record": "● ON THE RECORD",
        "off_record": "not recording",
        "case": "Case",
        "expected": "Expected",
        "today": "Today's hearings",
        "no_people": "(none)",
        "identity_self": "identity confirmed",
        "identity_station": "identity checked in person",
        "identity_staff": "identity checked by the judge",
        "identity_login": "court staff",
        "identity_none": "identity not checked",
        "connected": "online",
        "network": "Network",
        "net_good": "good",
        "net_okay": "okay",
        "net_bad": "poor",
        "net_unknown": "checking",
        "picture_lowered": "Weak line: picture lowered to keep the sound",
        "choose": "Several hearings are open at this station. Choose the one to join:",
        "join": "Join",
        "hash_title": "The hearing has ended. People present: check the recording's hash:",
        "hash_confirm": "The hash is checked: confirm",
        "hash_dispute": "Dispute",
        "hash_confirmed": "Confirmed; the court recorded it",
        "hash_disputed": "Dispute recorded; the court will look into it",
        "hash_mismatch": "The court holds a different hash: tell the judge",
        "hash_failed": "Not sent; try again",
        "close_window": "Close the window",
        "attest_title": "Identity checked in person",
        "attest_person": "Person",
        "attest_name": "Name on the ID document",
        "attest_digits": "Last digits of the ID number",
        "attest_button": "Identity checked in person",
        "attest_done": "Recorded: identity checked in person",
        "attest_failed": "Not checked",
        "attest_BAD_FIELD": "The name or ID digits do not match the court's record",
        "attest_WRONG_STATE": "Identity already checked, or the hearing has ended",
        "attest_NOT_FOUND": "No such person in this hearing",
        "self_test": "Self-test",
        "self_test_running": "Self-test running…",
        "score_good": "good",
        "score_okay": "okay",
        "score_bad": "bad",
        "check_camera": "Camera",
        "check_microphone": "Microphone",
        "check_speaker": "Speaker",
        "check_network": "Network",
        "disabled": "The court has disabled this station; it cannot take part. Call the court.",
        "stopped": "Station disabled",
        "fail_NO_CAMERA": "no camera",
        "fail_NO_FRAMES": "the camera sends no picture",
        "fail_BLANK_PICTURE": "the picture is blank",
        "fail_LOW_FRAME_RATE": "the picture stutters",
        "fail_NO_MICROPHONE": "no microphone",
        "fail_NO_SOUND_INPUT": "the microphone sends nothing",
        "fail_QUIET": "quiet",
        "fail_SILENT": "nothing heard",
        "fail_NO_SPEAKER": "no speaker",
        "fail_PLAYBACK_FAILED": "the speaker cannot play",
        "fail_UNREACHABLE": "the court cannot be reached",
        "fail_HIGH_LOSS": "heavy packet loss",
        "fail_SOME_LOSS": "some packet loss",
        "fail_HIGH_DELAY": "very high delay",
        "fail_DELAY": "high delay",
        "fail_LOW_UPLOAD": "slow upload",
    },
}


STAFF_ROLES = frozenset({"judge", "clerk", "mediator"})
IDENTITY_KEYS = {
    "self_declared": "identity_self",
    "station_attested": "identity_station",
    "staff_attested": "identity_staff",
    "staff_login": "identity_login",
}


def _clock(iso: str) -> str:
    """HH:MM of an ISO time in the station's local zone (the PC's clock is set to it)."""
    return datetime.fromisoformat(iso).astimezone().strftime("%H:%M")


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
        fullscreen: bool = True,
    ) -> None:
        """`master`: an existing Tk to open the window in (one Tk interpreter per process: Tcl
        aborts if an interpreter is freed on another thread); by default the window owns one.
        `fullscreen`: fill the screen (the station PC's normal way; readable from two metres)."""
        self.strings = STRINGS.get(lang, STRINGS["zh-CN"])
        self.root: tk.Tk | tk.Toplevel = tk.Tk() if master is None else tk.Toplevel(master)
        self.root.title(self.strings["title"])
        self.root.configure(background=BG)
        if fullscreen:
            width, height = self.root.winfo_screenwidth(), self.root.winfo_screenheight()
            self.root.geometry(f"{width}x{height}+0+0")
            with contextlib.suppress(tk.TclError):
                self.root.attributes("-fullscreen", True)
        big, text, small = FONT_TITLE, FONT_TEXT, FONT_SMALL
        # The banner (UI.md 5, 7): court, case, hearing; state, on-the-record mark, network.
        banner = tk.Frame(self.root, bg=BANNER)
        banner.pack(fill="x")
        self.court_label = tk.Label(banner, text="", fg="#cfd8e3", bg=BANNER, font=text, anchor="w")
        self.court_label.pack(fill="x", padx=12, pady=(8, 0))
        self.case_label = tk.Label(
            banner, text="", fg="#ffffff", bg=BANNER, font=big, anchor="w", justify="left"
        )
        self.case_label.pack(fill="x", padx=12)
        line = tk.Frame(banner, bg=BANNER)
        line.pack(fill="x", padx=12, pady=(0, 8))
        self.status = tk.Label(
            line, text=self.strings["connecting"], fg="#ffffff", bg="#5b6675", font=text, padx=10
        )
        self.status.pack(side="left")
        self.record_mark = tk.Label(line, text="", fg="#ffffff", bg=BANNER, font=text, padx=10)
        self.record_mark.pack(side="left", padx=12)
        self.network_label = tk.Label(
            line, text=self._network_text(None), fg="#ffffff", bg=BANNER, font=text, padx=10
        )
        self.network_label.pack(side="right")
        self.notice = tk.Label(
            self.root, text="", fg="#ffd166", bg=BG, anchor="w", font=text, justify="left"
        )
        self.notice.pack(fill="x", padx=12)
        # Actions at the bottom: large, few (UI.md 5).
        self.actions = tk.Frame(self.root, bg=BG)
        self.actions.pack(side="bottom", fill="x", pady=8)
        self.leave_button = tk.Button(
            self.actions, text=self.strings["leave"], command=self._leave_clicked, font=text
        )
        self.leave_button.pack(side="right", padx=12, ipadx=16, ipady=8)
        self.self_test_button = tk.Button(
            self.actions, text=self.strings["self_test"], command=self._self_test_clicked, font=text
        )
        self.self_test_button.pack(side="left", padx=12, ipadx=16, ipady=8)
        # One panel replaces the body when the window asks something (a choice, the hash).
        self.ask = tk.Frame(self.root, bg=BG)
        self.body = tk.Frame(self.root, bg=BG)
        self.body.pack(fill="both", expand=True)
        self.side = tk.Frame(self.body, bg=SIDE, width=420)
        self.side.pack(side="right", fill="y", padx=4, pady=4)
        left = tk.Frame(self.body, bg=BG)
        left.pack(side="left", fill="both", expand=True)
        self.grid = tk.Frame(left, bg=BG)
        self.grid.pack(side="top", fill="both", expand=True, padx=4, pady=4)
        self.lower = tk.Frame(left, bg=SIDE)
        self.lower.pack(side="bottom", fill="x", padx=4, pady=4)
        tk.Label(self.side, text=self.strings["expected"], font=text, fg="#ffffff", bg=SIDE).pack(
            anchor="w", padx=8, pady=(6, 0)
        )
        self.people_label = tk.Label(
            self.side, text="", font=small, fg="#ffffff", bg=SIDE, justify="left", anchor="w"
        )
        self.people_label.pack(fill="x", padx=8)
        tk.Label(self.side, text=self.strings["today"], font=text, fg="#ffffff", bg=SIDE).pack(
            anchor="w", padx=8, pady=(12, 0)
        )
        self.today_label = tk.Label(
            self.side, text="", font=small, fg="#cfd8e3", bg=SIDE, justify="left", anchor="w"
        )
        self.today_label.pack(fill="x", padx=8)
        self._build_attest(self.side)
        self.self_test_label = tk.Label(
            self.lower, text="", font=small, fg="#ffffff", bg=SIDE, justify="left", anchor="nw"
        )
        self.self_test_label.pack(side="left", fill="both", expand=True, padx=8, pady=4)
        self.root.protocol("WM_DELETE_WINDOW", self._leave_clicked)
        self.tiles: dict[str, Tile] = {}
        self.names: dict[str, str] = {}
        self.on_leave = on_leave
        # Set by the app: what the window's buttons do.
        self.on_confirm_hash: Callable[[str, str, bool], None] | None = None
        self.on_attest: Callable[[str, str, str], None] | None = None
        self.on_self_test: Callable[[], None] | None = None
        self._hearing: HearingState | None = None
        self._recording = False
        self._me: str | None = None
        self._my_state: ParticipantState | None = None
        self._muted = False
        self._backup_error: str | None = None
        self._backup_state: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._choice: asyncio.Future[str | None] | None = None
        self.choice_buttons: dict[str, tk.Button] = {}
        self.hash_buttons: dict[str, tk.Button] = {}
        self.hash_label: tk.Label | None = None
        self.hash_result: tk.Label | None = None
        self.day: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None
        self._attest_ids: list[str] = []
        self._attest_labels: dict[str, str] = {}
        self.closed = False

    def _build_attest(self, parent: tk.Misc) -> None:
        """The director's in-person identity check: person, name and digits read, a button."""
        s, small = self.strings, FONT_SMALL
        box = tk.LabelFrame(
            parent, text=s["attest_title"], font=FONT_TEXT, fg="#ffffff", bg=SIDE, padx=6, pady=4
        )
        box.pack(fill="x", padx=8, pady=(8, 0))
        self.attest_frame = box
        self._ask_variables: list[tk.StringVar] = []  # the question panel's (ask_variable)
        self.attest_person = tk.StringVar(value="")
        self.attest_menu = tk.OptionMenu(box, self.attest_person, "")
        self.attest_menu.configure(font=small)
        self.attest_menu.grid(row=0, column=0, columnspan=2, sticky="ew")
        for row, key in ((1, "attest_name"), (2, "attest_digits")):
            tk.Label(box, text=s[key], font=small, fg="#ffffff", bg=SIDE).grid(
                row=row, column=0, sticky="w", padx=(0, 6)
            )
        self.attest_name = tk.Entry(box, font=small, width=10)
        self.attest_name.grid(row=1, column=1, sticky="ew", pady=2)
        self.attest_digits = tk.Entry(box, font=small, width=10)
        self.attest_digits.grid(row=2, column=1, sticky="ew", pady=2)
        self.attest_button = tk.Button(
            box, text=s["attest_button"], font=small, command=self._attest_clicked
        )
        self.attest_button.grid(row=3, column=0, columnspan=2, sticky="ew", pady=(4, 0), ipady=4)
        self.attest_result = tk.Label(
            box, text="", font=small, fg="#ffd166", bg=SIDE, wraplength=420, justify="left"
        )
        self.attest_result.grid(row=4, column=0, columnspan=2, sticky="w")

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
        if self._choice is not None and not self._choice.done():
            self._choice.set_result(None)
        for task in self._tasks:
            task.cancel()
        for tile in list(self.tiles.values()):
            self._drop_image(tile)
        self._drop_variable(self.attest_person)
        for variable in self._ask_variables:
            self._drop_variable(variable)
        self._ask_variables.clear()
        with contextlib.suppress(tk.TclError):
            self.root.destroy()

    @staticmethod
    def _drop_variable(variable: tk.Variable) -> None:
        # As for images: unset the Tcl variable now, on this thread; left to the garbage
        # collector, Variable.__del__ may run on another thread, which Tk refuses ("main
        # thread is not in main loop").
        with contextlib.suppress(tk.TclError, RuntimeError):
            variable._tk.globalunsetvar(variable._name)  # type: ignore[attr-defined]
        variable._tk = None  # type: ignore[attr-defined]  # nothing left for __del__ to do

    @staticmethod
    def _drop_image(tile: Tile) -> None:
        # Delete the Tk image now, on this thread: left to the garbage collector, its __del__
        # may run on another thread, which Tk refuses.
        with contextlib.suppress(tk.TclError):
            tile.image.tk.call("image", "delete", tile.image.name)
        tile.image.name = ""  # nothing left for __del__ to do

    def _leave_clicked(self) -> None:
        if self._choice is not None and not self._choice.done():
            self._choice.set_result(None)
        if self.on_leave is not None:
            self.on_leave()

    def _self_test_clicked(self) -> None:
        if self.on_self_test is not None:
            self.self_test_label.configure(text=self.strings["self_test_running"])
            self.on_self_test()

    def _attest_clicked(self) -> None:
        label = self.attest_person.get()
        names = self._attest_names()
        participant_id = names.get(label)
        name, digits = self.attest_name.get().strip(), self.attest_digits.get().strip()
        if participant_id is None or not name or not digits or self.on_attest is None:
            self.attest_result.configure(text=self.strings["attest_failed"])
            return
        self.attest_result.configure(text="…")
        self.on_attest(participant_id, name, digits)

    # -- video ------------------------------------------------------------------------------

    def show_own_frame(self, frame: av.VideoFrame) -> None:
        """A frame of the station's own camera, for its small tile."""
        self.show_frame(SELF_ID, frame)

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
        caption = tk.Label(frame, text="", fg="#ffffff", bg="#111111", anchor="w", font=FONT_SMALL)
        caption.pack(fill="x")
        tile = Tile(participant_id, frame, image, label, caption)
        self.tiles[participant_id] = tile
        self._caption(tile)
        self._layout()
        return tile

    def _caption(self, tile: Tile) -> None:
        pid = tile.participant_id
        if pid == SELF_ID:
            tile.caption.configure(text=self.strings["you"])
        elif pid.endswith(SCREEN_SUFFIX):
            name = self.names.get(pid.removesuffix(SCREEN_SUFFIX), "")
            tile.caption.configure(text=self.strings["screen_of"].format(name=name))
        else:
            tile.caption.configure(text=self.names.get(pid, ""))

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
                    self.remove_tile(p.participant_id + SCREEN_SUFFIX)
            for tile in self.tiles.values():
                self._caption(tile)
        elif isinstance(message, m.HearingStateChanged):
            self._hearing, self._recording = message.state, message.recording
        elif isinstance(message, m.Moved):
            self._my_state = message.state
        elif isinstance(message, m.Muted):
            self._muted = message.muted
        elif isinstance(message, m.ScreenShare) and message.state == "stopped":
            self.remove_tile(message.participant_id + SCREEN_SUFFIX)
        self._render()

    def _render(self) -> None:
        if self.closed:
            return
        s = self.strings
        state = self._hearing.value if self._hearing else None
        self.status.configure(
            text=s[f"state_{state}"] if state else s["connecting"],
            bg=STATE_COLOURS.get(state or "", "#5b6675"),
        )
        self.record_mark.configure(
            text=s["on_record"] if self._recording else s["off_record"],
            bg="#a4161a" if self._recording else BANNER,
        )
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

    # -- where the station is: the court, the case, the people, the day ------------------------

    def show_day(self, hearings: list[dict[str, Any]], current_id: str | None = None) -> None:
        """The station's hearings of the day (`GET /api/station/hearings`), and which one the
        station is in (or about to join): the banner names its court, case and title, the side
        lists the people expected and today's hearings."""
        if self.closed:
            return
        self.day = hearings
        current = next((h for h in hearings if h["id"] == current_id), None)
        if current is None and len(hearings) == 1:
            current = hearings[0]
        self.current = current
        s = self.strings
        if current is None and hearings:
            self.court_label.configure(text=f"{hearings[0]['station_name']}")
            self.case_label.configure(text=s["title"])
        if current is not None:
            self.court_label.configure(text=f"{current['court_name']} · {current['station_name']}")
            self.case_label.configure(
                text=f"{s['case']} {current['case_number']}  {current['title']}"
            )
            self._show_people(current["people"])
        lines = []
        for h in hearings:
            start = _clock(h["scheduled_start"])
            mark = "▶ " if current is not None and h["id"] == current["id"] else "   "
            lines.append(
                f"{mark}{start}  {h['case_number']}  {h['title']}  ({s['state_' + h['state']]})"
            )
        self.today_label.configure(text="\n".join(lines) or s["no_people"])

    def _show_people(self, people: list[dict[str, Any]]) -> None:
        s = self.strings
        lines = []
        for p in people:
            lines.append(f"{p['display_name']}  ·  {self._identity_text(p)}")
        self.people_label.configure(text="\n".join(lines) or s["no_people"])
        choices = [
            p for p in people if p["identity_method"] is None and p["role"] not in STAFF_ROLES
        ]
        self._attest_ids = [p["participant_id"] for p in choices]
        self._attest_labels = {p["display_name"]: p["participant_id"] for p in choices}
        menu = self.attest_menu["menu"]
        menu.delete(0, "end")
        for label in self._attest_labels:
            menu.add_command(label=label, command=functools.partial(self.attest_person.set, label))
        if self.attest_person.get() not in self._attest_labels:
            self.attest_person.set(next(iter(self._attest_labels), ""))

    def _attest_names(self) -> dict[str, str]:
        return dict(self._attest_labels)

    def _identity_text(self, person: dict[str, Any]) -> str:
        s = self.strings
        method = person.get("identity_method")
        return s[IDENTITY_KEYS.get(method or "", "identity_none")]

    def attest_done(self, ok: bool, message: str = "") -> None:
        """The court's answer to the director's in-person check."""
        if self.closed:
            return
        s = self.strings
        text = s["attest_done"] if ok else s.get(f"attest_{message}", s["attest_failed"])
        self.attest_result.configure(text=text)
        if ok:
            self.attest_name.delete(0, "end")
            self.attest_digits.delete(0, "end")

    async def choose(self, hearings: list[dict[str, Any]]) -> str | None:
        """Several hearings are open at once: ask which to join (never a silent pick). Returns
        the chosen hearing's id, or None if the director leaves or closes the window."""
        s = self.strings
        self._clear_ask()
        tk.Label(self.ask, text=s["choose"], font=FONT_TEXT, fg="#ffffff", bg=BG, anchor="w").pack(
            fill="x", padx=12, pady=12
        )
        loop = asyncio.get_running_loop()
        self._choice = loop.create_future()
        for h in hearings:
            text = (
                f"{s['join']}：{h['case_number']}  {h['title']}\n"
                f"{h['court_name']} · {_clock(h['scheduled_start'])} · {s['state_' + h['state']]}"
            )
            button = tk.Button(
                self.ask,
                text=text,
                font=FONT_TEXT,
                justify="left",
                command=functools.partial(self._chosen, str(h["id"])),
            )
            button.pack(fill="x", padx=24, pady=8, ipady=10)
            self.choice_buttons[h["id"]] = button
        self._show_ask()
        try:
            return await self._choice
        finally:
            self._choice = None
            self._hide_ask()

    def _chosen(self, hearing_id: str) -> None:
        if self._choice is not None and not self._choice.done():
            self._choice.set_result(hearing_id)

    def ask_variable(self, value: str = "") -> tk.StringVar:
        """A Tk variable for a widget of the question panel, dropped with the panel (on this
        thread: see `_drop_variable`) when it is cleared or the window closes."""
        variable = tk.StringVar(self.root, value=value)
        self._ask_variables.append(variable)
        return variable

    def _clear_ask(self) -> None:
        for child in self.ask.winfo_children():
            child.destroy()
        for variable in self._ask_variables:
            self._drop_variable(variable)
        self._ask_variables.clear()
        self.choice_buttons.clear()
        self.hash_buttons.clear()

    def _show_ask(self) -> None:
        self.body.pack_forget()
        self.ask.pack(fill="both", expand=True)

    def _hide_ask(self) -> None:
        if self.closed:
            return
        self.ask.pack_forget()
        self.body.pack(fill="both", expand=True)

    def recording_hash(self, recording_id: str, root_hash: str) -> None:
        """The hearing closed and its recording is sealed: show the root hash, large, in
        groups of eight, with buttons for the people present to confirm or dispute it."""
        if self.closed:
            return
        s = self.strings
        self._clear_ask()
        tk.Label(
            self.ask, text=s["hash_title"], font=FONT_TEXT, fg="#ffffff", bg=BG, anchor="w"
        ).pack(fill="x", padx=12, pady=12)
        groups = [root_hash[i : i + 8] for i in range(0, len(root_hash), 8)]
        lines = [" ".join(groups[i : i + 4]) for i in range(0, len(groups), 4)]
        self.hash_label = tk.Label(
            self.ask, text="\n".join(lines), font=FONT_HASH, fg="#ffffff", bg="#000000", pady=12
        )
        self.hash_label.pack(padx=24, pady=8)
        row = tk.Frame(self.ask, bg=BG)
        row.pack(pady=8)
        for key, confirmed in (("hash_confirm", True), ("hash_dispute", False)):
            button = tk.Button(
                row,
                text=s[key],
                font=FONT_TEXT,
                command=functools.partial(self._hash_clicked, recording_id, root_hash, confirmed),
            )
            button.pack(side="left", padx=16, ipadx=16, ipady=10)
            self.hash_buttons["confirm" if confirmed else "dispute"] = button
        self.hash_result = tk.Label(self.ask, text="", font=FONT_TEXT, fg="#ffd166", bg=BG)
        self.hash_result.pack(pady=8)
        self.leave_button.configure(text=s["close_window"])
        self.network_label.configure(text="", bg=BANNER)  # no line to measure any more
        self._show_ask()

    def _hash_clicked(self, recording_id: str, root_hash: str, confirmed: bool) -> None:
        if self.on_confirm_hash is not None:
            for button in self.hash_buttons.values():
                button.configure(state="disabled")
            self.on_confirm_hash(recording_id, root_hash, confirmed)

    def hash_done(self, confirmed: bool, matches: bool | None) -> None:
        """The court's answer (None: it could not be reached; the buttons work again)."""
        if self.closed or self.hash_result is None:
            return
        s = self.strings
        if matches is None:
            text = s["hash_failed"]
            for button in self.hash_buttons.values():
                button.configure(state="normal")
        elif not matches:
            text = s["hash_mismatch"]
        else:
            text = s["hash_confirmed"] if confirmed else s["hash_disputed"]
        self.hash_result.configure(text=text)

    def network(
        self,
        score: str | None,
        rtt_ms: float | None = None,
        loss: float | None = None,
        *,
        lowered: bool = False,
    ) -> None:
        """The line's quality (good / okay / bad) with what was measured; `lowered`: the
        station sends a smaller picture so that its sound gets through (issue 14.6)."""
        if not self.closed:
            text = self._network_text(score, rtt_ms, loss)
            if lowered:
                text += "  " + self.strings["picture_lowered"]
            self.network_label.configure(
                text=text, bg=NETWORK_COLOURS.get("bad" if lowered else score or "", BANNER)
            )

    def _network_text(
        self, score: str | None, rtt_ms: float | None = None, loss: float | None = None
    ) -> str:
        s = self.strings
        text = f"{s['network']}：{s['net_' + score] if score else s['net_unknown']}"
        if rtt_ms is not None:
            text += f"  {rtt_ms:.0f} ms"
        if loss is not None:
            text += f"  {loss:.0%}"
        return text

    def self_test_result(self, result: dict[str, Any]) -> None:
        """A scored self-test (station_client.selftest): each check, its score and failure."""
        if self.closed:
            return
        s = self.strings
        lines = [f"{s['self_test']}"]
        for item in result.get("items", []):
            line = f"{s['check_' + item['check']]}  {s['score_' + item['score']]}"
            if item.get("failure"):
                line += f"：{s.get('fail_' + item['failure'], item['failure'])}"
            lines.append(line)
        self.self_test_label.configure(text="\n".join(lines))

    def disabled(self) -> None:
        """The court disabled this station: say so, plainly, in the window."""
        if self.closed:
            return
        s = self.strings
        self.status.configure(text=s["stopped"], bg="#a4161a")
        self.record_mark.configure(text="", bg=BANNER)
        self.network_label.configure(text="", bg=BANNER)
        self.notice.configure(text="")
        self._clear_ask()
        self.disabled_label = tk.Label(
            self.ask,
            text=s["disabled"],
            font=FONT_TITLE,
            fg="#ffffff",
            bg="#a4161a",
            wraplength=900,
            justify="left",
            padx=24,
            pady=24,
        )
        self.disabled_label.pack(fill="x", padx=24, pady=48)
        self.leave_button.configure(text=s["close_window"])
        self._show_ask()

    @property
    def disabled_text(self) -> str:
        label = getattr(self, "disabled_label", None)
        return str(label.cget("text")) if label is not None else ""

    @property
    def status_text(self) -> str:
        return f"{self.status.cget('text')} {self.record_mark.cget('text')}"

    @property
    def notice_text(self) -> str:
        return str(self.notice.cget("text"))
