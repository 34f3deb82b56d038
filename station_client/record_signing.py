"""Signing the hearing record at the station (issue 15): a person present at the station, whose
identity the station checked in person, reviews the transcript or the mediation agreement in the
station's window and signs it there: their name, a one-time code the court shows in this window
only, and a handwritten signature drawn on the window's canvas (with the mouse or a touch
screen), bound to the SHA-256 of the exact text shown. Refusing is recorded with a reason.

- `strokes_png` turns the drawn strokes into the PNG the court stores (no imaging library: a
  greyscale bitmap, deflated with zlib), so the handwriting travels as the browser's does.
- `SigningPanel` is the window's question panel for it (large type, one action at a time).
- `RecordSigning` connects the two: on `record_changed` it fetches the document; when a person
  checked at this station is asked to sign (or their signature went stale), the panel shows.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import struct
import tkinter as tk
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from signaling import messages as m

from .court_api import RecordError

if TYPE_CHECKING:
    from .court_api import CourtApi
    from .window import HearingWindow

log = logging.getLogger(__name__)

CANVAS_SIZE = (560, 150)
FONT = ("WenQuanYi Micro Hei", -28)
FONT_SMALL = ("WenQuanYi Micro Hei", -24)
BG = "#1d2733"
ERRORS = {
    "TEXT_CHANGED": "内容在您阅读后已被修改，请重新阅读后再签名。",
    "CODE_INVALID": "验证码不正确，请核对窗口上显示的验证码。",
    "CODE_USED": "该验证码已使用过，请重新获取验证码。",
    "NOT_YOUR_SIGNATURE": "只能为在本站点当面核验过身份的人签名。",
    "RECORD_FINALISED": "该文书已定稿，不能再签名。",
}
STRINGS = {
    "title_transcript": "请核对并签署笔录",
    "title_agreement": "请核对并签署调解协议",
    "person": "签名人",
    "name": "姓名",
    "get_code": "获取签名验证码",
    "code_is": "验证码（仅显示在本窗口）：",
    "code": "验证码",
    "draw": "请在下框内手写签名",
    "clear": "重写",
    "sign": "确认签名",
    "refuse": "拒绝签名（请填写理由）",
    "refuse_short": "拒绝签名",
    "reason": "拒绝理由",
    "signed": "已签名，谢谢。",
    "refused": "已记录拒绝签名及理由。",
    "stale": "内容已修改，之前的签名已失效，请重新签名。",
    "err_draw": "请在框内手写签名。",
    "err_fields": "请填写姓名和 6 位验证码。",
    "err_reason": "请填写拒绝签名的理由。",
    "failed": "签名没有送达法院，请再试一次。",
}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def strokes_png(
    strokes: list[list[tuple[int, int]]], size: tuple[int, int] = CANVAS_SIZE, pen: int = 2
) -> bytes:
    """A greyscale PNG (white, black ink) of the strokes: each a list of points in pixels."""
    width, height = size
    pixels = bytearray(b"\xff" * (width * height))

    def dot(x: int, y: int) -> None:
        for dy in range(-pen, pen + 1):
            for dx in range(-pen, pen + 1):
                px, py = x + dx, y + dy
                if 0 <= px < width and 0 <= py < height:
                    pixels[py * width + px] = 0

    for stroke in strokes:
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:] or stroke, strict=False):
            steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for i in range(steps + 1):
                dot(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps))
    raw = b"".join(b"\x00" + bytes(pixels[y * width : (y + 1) * width]) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw, 9))
        + _png_chunk(b"IEND", b"")
    )


class SigningPanel:
    """The window's panel for signing one document (built in `window.ask`).

    Widgets tests read: `title_label`, `text_box`, `person_var`, `name_entry`, `code_label`,
    `code_entry`, `canvas`, `buttons` ("code", "clear", "sign", "refuse"), `reason_entry`,
    `result_label`. Callbacks set by `RecordSigning`: `on_code(pid)`, `on_sign(pid, name,
    code, png)`, `on_refuse(pid, code, reason)`.
    """

    def __init__(self, window: HearingWindow) -> None:
        self.window = window
        self.strokes: list[list[tuple[int, int]]] = []
        self.people: dict[str, str] = {}  # label -> participant id
        self.on_code: Callable[[str], None] | None = None
        self.on_sign: Callable[[str, str, str, bytes], None] | None = None
        self.on_refuse: Callable[[str, str, str], None] | None = None
        self.shown_sha: str | None = None
        self.kind: str | None = None
        self.visible = False
        self.buttons: dict[str, tk.Button] = {}

    def show(self, doc: dict[str, Any], people: dict[str, str]) -> None:
        """Ask the people present (label -> participant id) to sign `doc` (REST DocumentOut)."""
        window = self.window
        if window.closed:
            return
        s = STRINGS
        window._clear_ask()
        self.kind, self.shown_sha, self.people, self.strokes = (
            doc["kind"],
            doc["text_sha256"],
            people,
            [],
        )
        ask = window.ask
        self.title_label = tk.Label(
            ask, text=s[f"title_{doc['kind']}"], font=FONT, fg="#ffffff", bg=BG, anchor="w"
        )
        self.title_label.pack(fill="x", padx=12, pady=(8, 4))
        self.result_label = tk.Label(ask, text="", font=FONT_SMALL, fg="#ffd166", bg=BG, anchor="w")
        self.result_label.pack(fill="x", padx=12)
        self.text_box = tk.Text(ask, height=4, font=FONT_SMALL, wrap="char")
        self.text_box.insert("1.0", doc["text"])
        self.text_box.configure(state="disabled")
        self.text_box.pack(fill="x", padx=12)
        # Who signs, their name and the code on two rows, in the window's reading size: the
        # director reads it out to people who may stand back from the screen.
        form = tk.Frame(ask, bg=BG)
        form.pack(fill="x", padx=12, pady=4)
        tk.Label(form, text=s["person"], font=FONT, fg="#ffffff", bg=BG).grid(
            row=0, column=0, sticky="w"
        )
        self.person_var = window.ask_variable(next(iter(people), ""))
        menu = tk.OptionMenu(form, self.person_var, *(people or {"": ""}))
        menu.configure(font=FONT)
        menu["menu"].configure(font=FONT)
        menu.grid(row=0, column=1, sticky="w")
        tk.Label(form, text=s["name"], font=FONT, fg="#ffffff", bg=BG).grid(
            row=0, column=2, sticky="w", padx=(12, 4)
        )
        self.name_entry = tk.Entry(form, font=FONT, width=8)
        self.name_entry.grid(row=0, column=3, sticky="w")
        self.buttons["code"] = tk.Button(
            form, text=s["get_code"], font=FONT, command=self._code_clicked
        )
        self.buttons["code"].grid(row=0, column=4, sticky="w", padx=(12, 0))
        tk.Label(form, text=s["code"], font=FONT, fg="#ffffff", bg=BG).grid(
            row=1, column=0, sticky="w", pady=(4, 0)
        )
        self.code_entry = tk.Entry(form, font=FONT, width=8)
        self.code_entry.grid(row=1, column=1, sticky="w", pady=(4, 0))
        self.code_label = tk.Label(form, text="", font=FONT, fg="#ffd166", bg=BG)
        self.code_label.grid(row=1, column=2, columnspan=3, sticky="w", padx=(12, 0))
        tk.Label(ask, text=s["draw"], font=FONT_SMALL, fg="#ffffff", bg=BG).pack(
            anchor="w", padx=12
        )
        # The canvas on the left, the actions beside it: all on a 1024x768 screen.
        row = tk.Frame(ask, bg=BG)
        row.pack(fill="x", padx=12, pady=4)
        width, height = CANVAS_SIZE
        self.canvas = tk.Canvas(row, width=width, height=height, bg="#ffffff", highlightthickness=2)
        self.canvas.pack(side="left", anchor="n")
        self.canvas.bind("<ButtonPress-1>", lambda e: self.press(e.x, e.y))
        self.canvas.bind("<B1-Motion>", lambda e: self.drag(e.x, e.y))
        actions = tk.Frame(row, bg=BG)
        actions.pack(side="left", fill="y", padx=(12, 0))
        line = tk.Frame(actions, bg=BG)
        line.pack(anchor="w")
        for key, command in (("sign", self._sign_clicked), ("clear", self.clear)):
            self.buttons[key] = tk.Button(line, text=s[key], font=FONT, command=command)
            self.buttons[key].pack(side="left", padx=(0, 8), ipadx=8, ipady=4)
        tk.Label(actions, text=s["reason"], font=FONT_SMALL, fg="#ffffff", bg=BG).pack(
            anchor="w", pady=(8, 0)
        )
        refusing = tk.Frame(actions, bg=BG)
        refusing.pack(anchor="w")
        self.reason_entry = tk.Entry(refusing, font=FONT, width=8)
        self.reason_entry.pack(side="left")
        self.buttons["refuse"] = tk.Button(
            refusing, text=s["refuse_short"], font=FONT, command=self._refuse_clicked
        )
        self.buttons["refuse"].pack(side="left", padx=(4, 0))
        window._show_ask()
        self.visible = True

    # -- the canvas ------------------------------------------------------------------------

    def press(self, x: int, y: int) -> None:
        self.strokes.append([(x, y)])

    def drag(self, x: int, y: int) -> None:
        if not self.strokes:
            self.strokes.append([(x, y)])
        last = self.strokes[-1][-1]
        self.strokes[-1].append((x, y))
        self.canvas.create_line(*last, x, y, width=4, fill="#111111", capstyle="round")

    def clear(self) -> None:
        self.strokes = []
        self.canvas.delete("all")

    # -- the buttons ---------------------------------------------------------------------------

    def _person(self) -> str:
        return self.people.get(self.person_var.get(), "")

    def _code_clicked(self) -> None:
        if self.on_code is not None and self._person():
            self.on_code(self._person())

    def _sign_clicked(self) -> None:
        name, code = self.name_entry.get().strip(), self.code_entry.get().strip()
        if not name or not (len(code) == 6 and code.isdigit()):
            self.say(STRINGS["err_fields"])
        elif not any(len(stroke) > 1 for stroke in self.strokes):
            self.say(STRINGS["err_draw"])
        elif self.on_sign is not None:
            self.on_sign(self._person(), name, code, strokes_png(self.strokes))

    def _refuse_clicked(self) -> None:
        reason, code = self.reason_entry.get().strip(), self.code_entry.get().strip()
        if not reason:
            self.say(STRINGS["err_reason"])
        elif not (len(code) == 6 and code.isdigit()):
            self.say(STRINGS["err_fields"])
        elif self.on_refuse is not None:
            self.on_refuse(self._person(), code, reason)

    def show_code(self, code: str) -> None:
        if not self.window.closed:
            self.code_label.configure(text=f"{STRINGS['code_is']}{code}")

    def say(self, text: str) -> None:
        if not self.window.closed and self.visible:
            self.result_label.configure(text=text)

    def hide(self, notice: str = "") -> None:
        """Back to the hearing; `notice` says what happened (in the window's notice line)."""
        self.visible = False
        self.window._hide_ask()
        if notice and not self.window.closed:
            self.window.notice.configure(text=notice)


class RecordSigning:
    """Offers the station's people the hearing record to sign (see the module docstring)."""

    def __init__(
        self, api: CourtApi, window: HearingWindow, hearing_id: Callable[[], str | None]
    ) -> None:
        self.api = api
        self.window = window
        self.hearing_id = hearing_id
        self.panel = SigningPanel(window)
        self.panel.on_code = functools.partial(self._spawn_with, self._code)
        self.panel.on_sign = functools.partial(self._spawn_with, self._sign)
        self.panel.on_refuse = functools.partial(self._spawn_with, self._refuse)
        self.answers: list[dict[str, Any]] = []  # documents as the court answered our signatures
        self._tasks: set[asyncio.Future[Any]] = set()

    def _spawn_with(self, coro: Callable[..., Any], *args: Any) -> None:
        task = asyncio.ensure_future(coro(*args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def changed(self, message: m.RecordChanged) -> None:
        """A `record_changed` event: look at the document (over REST)."""
        self._spawn_with(self._changed, message.kind)

    def _here(self) -> dict[str, str]:
        """The people whose identity the station checked in person: label -> participant id."""
        current = self.window.current or {}
        return {
            p["display_name"]: p["participant_id"]
            for p in current.get("people", [])
            if p.get("identity_method") == "station_attested"
        }

    async def _changed(self, kind: str) -> None:
        hearing_id = self.hearing_id()
        if hearing_id is None:
            return
        try:
            doc = await self.api.record(hearing_id, "GET", kind)
        except (aiohttp.ClientError, OSError, RecordError) as exc:
            log.info("the hearing record could not be read now: %s", exc)
            return
        here = self._here()
        waiting = {
            label: pid
            for label, pid in here.items()
            if any(
                s["participant_id"] == pid and s["status"] in ("pending", "stale")
                for s in doc["signers"]
            )
        }
        if doc["state"] == "signing" and waiting:
            if not (self.panel.visible and self.panel.shown_sha == doc["text_sha256"]):
                self.panel.show(doc, waiting)
                if any(
                    s["status"] == "stale"
                    for s in doc["signers"]
                    if s["participant_id"] in waiting.values()
                ):
                    self.panel.say(STRINGS["stale"])
        elif self.panel.visible and self.panel.kind == kind:
            self.panel.hide()

    async def _code(self, participant_id: str) -> None:
        hearing_id = self.hearing_id()
        if hearing_id is None or self.panel.kind is None:
            return
        try:
            got = await self.api.record(
                hearing_id, "POST", self.panel.kind, "code", {"participant_id": participant_id}
            )
        except RecordError as exc:
            self.panel.say(ERRORS.get(exc.code, STRINGS["failed"]))
            return
        except (aiohttp.ClientError, OSError):
            self.panel.say(STRINGS["failed"])
            return
        if got["document"]["text_sha256"] != self.panel.shown_sha:
            self.panel.show(got["document"], self.panel.people)  # the text changed meanwhile
        self.panel.show_code(got["code"])

    async def _answer(self, tail: str, body: dict[str, Any], done: str) -> None:
        hearing_id = self.hearing_id()
        if hearing_id is None or self.panel.kind is None:
            return
        kind = self.panel.kind
        try:
            doc = await self.api.record(hearing_id, "POST", kind, tail, body)
        except RecordError as exc:
            self.panel.say(ERRORS.get(exc.code, STRINGS["failed"]))
            if exc.code in ("TEXT_CHANGED", "RECORD_FINALISED"):
                await self._changed(kind)
            return
        except (aiohttp.ClientError, OSError):
            self.panel.say(STRINGS["failed"])
            return
        self.answers.append(doc)
        still = [
            s
            for s in doc["signers"]
            if s["participant_id"] in self._here().values() and s["status"] in ("pending", "stale")
        ]
        if still and doc["state"] == "signing":
            waiting = {s["participant_id"] for s in still}
            self.panel.show(doc, {k: v for k, v in self._here().items() if v in waiting})
            self.panel.say(STRINGS[done])
        else:
            self.panel.hide(STRINGS[done])

    async def _sign(self, participant_id: str, name: str, code: str, png: bytes) -> None:
        body = {
            "participant_id": participant_id,
            "name": name,
            "code": code,
            "text_sha256": self.panel.shown_sha,
            "where": "station",
            "image_png_b64": base64.b64encode(png).decode(),
        }
        await self._answer("signatures", body, "signed")

    async def _refuse(self, participant_id: str, code: str, reason: str) -> None:
        body = {
            "participant_id": participant_id,
            "code": code,
            "text_sha256": self.panel.shown_sha,
            "reason": reason,
            "where": "station",
        }
        await self._answer("refusals", body, "refused")
