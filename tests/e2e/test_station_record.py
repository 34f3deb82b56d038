"""The hearing record signed at the station (issue 15), with the real station app and its Tk
window on an Xvfb display: the station checks a villager's identity in person, the clerk asks
for signatures, the window shows the exact text, the code the court shows only there, and a
canvas; the villager signs by hand; a late edit asks again; the sealed transcript carries the
signature made "at the station"."""

from __future__ import annotations

import asyncio
import base64
import tkinter
from collections.abc import Iterator
from pathlib import Path

import pytest

from recordings.document import text_sha256
from signaling import messages as m
from signaling.client import SignalingClient
from station_client.app import StationApp, StationConfig
from station_client.window import HearingWindow
from tests.e2e.conftest import Court
from tests.e2e.test_station_app import _screenshot, _until
from tests.e2e.test_station_app import tk_root as tk_root  # one Xvfb and Tk per session


@pytest.fixture
def window(tk_root: tkinter.Tk) -> Iterator[HearingWindow]:
    win = HearingWindow(master=tk_root)
    yield win
    win.close()


def entries(text: str) -> dict[str, object]:
    return {
        "entries": [
            {"role": "judge", "name": "王法官", "text": "现在开庭。"},
            {"role": "defendant", "name": "被告", "text": text},
        ]
    }


async def sign_in_window(app: StationApp, name: str) -> None:
    signing = app.record_signing
    assert signing is not None
    panel = signing.panel
    panel.name_entry.delete(0, "end")
    panel.name_entry.insert(0, name)
    panel.buttons["code"].invoke()
    await _until("the code is shown", lambda: panel.code_label.cget("text").count("：") == 1)
    code = str(panel.code_label.cget("text")).split("：")[1]
    assert code.isdigit()
    assert len(code) == 6
    panel.code_entry.delete(0, "end")
    panel.code_entry.insert(0, code)
    # Two strokes drawn on the canvas, as the mouse (or a finger) draws them.
    for y in (60, 140):
        panel.canvas.event_generate("<ButtonPress-1>", x=40, y=y)
        for i in range(1, 12):
            panel.canvas.event_generate("<B1-Motion>", x=40 + 45 * i, y=y + (20 if i % 2 else -20))
    panel.canvas.update()
    assert sum(len(s) for s in panel.strokes) > 20
    before = len(signing.answers)
    panel.buttons["sign"].invoke()
    await _until("the court answered", lambda: len(signing.answers) > before)


async def test_a_villager_signs_the_transcript_in_the_station_window(
    court: Court, clerk: SignalingClient, window: HearingWindow, tmp_path: Path
) -> None:
    w = court.world.own
    await court.set_state("in_session", "开庭")
    key_file = tmp_path / "station.key"
    await asyncio.to_thread(key_file.write_text, w.station_key)
    app = StationApp(
        StationConfig(court.base, w.station_id, key_file), video=None, audio=None, window=window
    )
    window.on_leave = app.leave
    pump = asyncio.ensure_future(window.run())
    running = asyncio.ensure_future(app.run())
    clerk_cookies = await court.staff("clerk")
    path = f"/api/hearings/{w.hearing_id}/record/transcript"
    try:
        await _until("the station joined", lambda: app.joins == 1 or running.done())
        await clerk.request(m.Admit(all=True))
        # The director checks the defendant's identity in person, in the window.
        await _until("the people are listed", lambda: bool(window._attest_labels))
        window.attest_person.set("defendant")
        window.attest_name.insert(0, "DEFENDANT")
        window.attest_digits.insert(0, "1234")
        window.attest_button.invoke()
        await _until(
            "checked in person",
            lambda: any(
                p["participant_id"] == w.defendant_id
                and p.get("identity_method") == "station_attested"
                for p in (window.current or {}).get("people", [])
            ),
        )

        status, body = await court.call(clerk_cookies, "PUT", path, entries("我同意还款。"))
        assert status == 200, body
        status, body = await court.call(clerk_cookies, "POST", path + "/signing-request")
        assert status == 200, body
        assert app.record_signing is not None
        panel = app.record_signing.panel
        await _until("the window asks to sign", lambda: panel.visible)
        shown = panel.text_box.get("1.0", "end-1c")
        assert "被告 被告：我同意还款。" in shown
        assert panel.shown_sha == text_sha256(body["text"])
        assert list(panel.people.values()) == [w.defendant_id]  # only who was checked here
        await _screenshot(window, tmp_path, "record-1-station-asked.png")

        await sign_in_window(app, "被告本人")
        mine = {s["participant_id"]: s for s in app.record_signing.answers[-1]["signers"]}
        assert mine[w.defendant_id]["status"] == "signed"
        assert mine[w.defendant_id]["where"] == "station"
        await _screenshot(window, tmp_path, "record-2-station-signed.png")

        # A late edit: the window asks again; the villager signs the new text.
        status, body = await court.call(clerk_cookies, "PUT", path, entries("我同意分期还款。"))
        assert status == 200, body
        await _until(
            "asked again", lambda: panel.visible and panel.shown_sha == body["text_sha256"]
        )
        assert "分期" in panel.text_box.get("1.0", "end-1c")
        assert "失效" in str(panel.result_label.cget("text"))
        await _screenshot(window, tmp_path, "record-3-station-stale.png")
        await sign_in_window(app, "被告本人")

        status, final = await court.call(clerk_cookies, "POST", path + "/finalise")
        assert status == 200, final
        status, sealed = await court.call(clerk_cookies, "GET", path + "/sealed")
        assert status == 200
        [signed] = sealed["document"]["signatures"]
        assert (signed["participant_id"], signed["where"]) == (w.defendant_id, "station")
        assert signed["text_sha256"] == text_sha256(sealed["document"]["text"])
        assert base64.b64decode(signed["image_png_b64"]).startswith(b"\x89PNG")
    finally:
        app.leave()
        await asyncio.wait_for(running, 30)
        window.close()
        await pump
