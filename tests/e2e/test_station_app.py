"""The station app on a village PC (here: a lavfi camera and an Xvfb display): it logs in with
its key, joins the hearing open at the station, shows everyone's picture and the court's state
in its window, comes back by itself after its network line drops (and tells the court), and
leaves from the window's button. The CLI refuses a missing key file and a refused key clearly."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import select
import signal
import subprocess
import sys
import tkinter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from recordings import (
    SigningKey,
    VerifyKey,
    export_package,
    load_archive_private_key,
    verify_package,
)
from server.sfu import aiortc_hooks
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import HearingRole, HearingState, ParticipantState, StationCause
from signaling.reasons import CloseReason
from station_client.app import (
    Backoff,
    BackupSettings,
    PreviewTrack,
    StationApp,
    StationConfig,
    station_login,
)
from station_client.backup import BackupState, load_or_create_signing_key
from station_client.court_api import CourtApi, StationDisabled
from station_client.devices import AvCamera
from station_client.media import CameraTrack, LineAdaptiveVideo
from station_client.session import StationSession
from station_client.upload import pending_uploads, receipt_path
from station_client.window import SELF_ID, HearingWindow
from tests.e2e.conftest import Court
from tests.server.recording.conftest import ffprobe

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _loopback_candidates() -> None:
    aiortc_hooks.install_host_addresses(["127.0.0.1"])


@pytest.fixture(scope="session")
def tk_root() -> Iterator[tkinter.Tk]:
    """One private Xvfb display (the station PC's screen) and one Tk interpreter for the whole
    session: Tcl aborts the process if an interpreter is freed on another thread, which the
    garbage collector may do with a per-test one. Each test opens its window in it."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=[write_fd],
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    saved = os.environ.get("DISPLAY")
    try:
        ready, _, _ = select.select([read_fd], [], [], 15)
        assert ready, "Xvfb did not start"
        number = os.read(read_fd, 32).decode().strip()
        assert number.isdigit(), number
        os.environ["DISPLAY"] = f":{number}"
        root = tkinter.Tk()
        root.withdraw()
        yield root
        root.destroy()
    finally:
        os.close(read_fd)
        if saved is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = saved
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def window(tk_root: tkinter.Tk) -> Iterator[HearingWindow]:
    """The app's window (a Toplevel of the session's Tk)."""
    win = HearingWindow(master=tk_root)
    yield win
    win.close()


class LinkToCourt:
    """The station's line to the court: a TCP forwarder the test can cut (every connection
    through it aborted at once, as when a village line drops). Media (UDP) is not affected."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.is_down = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_down:  # the line is dead: nothing gets through
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(ConnectionError, RuntimeError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> int:
        """Abort every open connection; returns how many."""
        writers, self._writers = self._writers, set()
        for writer in writers:
            writer.transport.abort()
        return len(writers)

    def down(self) -> None:
        """The line goes dead until `up()`: every connection cut, new ones refused."""
        self.is_down = True
        self.cut()

    def up(self) -> None:
        self.is_down = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _until(what: str, condition: Callable[[], bool], timeout: float = 30) -> None:
    """Poll `condition()` (a cheap in-process check) until true, with a deadline."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)  # polling the app's own state
    except TimeoutError:
        pytest.fail(f"not within {timeout} s: {what}")


async def test_the_station_app_shows_the_hearing_and_comes_back_after_its_line_drops(
    court: Court, clerk: SignalingClient, window: HearingWindow, tmp_path: Path
) -> None:
    w = court.world.own
    await court.set_state("in_session", "开庭")
    judge_camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    station_camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    await judge_camera.start()
    await station_camera.start()
    judge = StationSession(court.client(await court.staff("judge")), video=judge_camera)
    link = LinkToCourt(court.server.port or 0)
    await link.start()
    key_file = tmp_path / "station.key"
    await asyncio.to_thread(key_file.write_text, w.station_key)
    app = StationApp(
        StationConfig(f"http://127.0.0.1:{link.port}", w.station_id, key_file),
        video=PreviewTrack(station_camera, lambda f: window.show_frame(SELF_ID, f)),
        audio=None,
        window=window,
        backoff=Backoff(random.Random(7)),
    )
    window.on_leave = app.leave
    pump = asyncio.ensure_future(window.run())
    running = asyncio.ensure_future(app.run())
    try:
        await judge.signaling.connect()
        judge_id = (await judge.join(w.hearing_id)).participant_id
        await _until("the station joined", lambda: app.joins == 1 or running.done())
        if running.done():
            running.result()  # raises what stopped the app
        assert app.session is not None
        assert app.session.welcome is not None
        station_id = app.session.welcome.participant_id
        await clerk.request(m.Admit(participant_id=station_id))

        # The window shows the judge's picture, its own camera, and that the court sits.
        def painted(pid: str) -> int:
            tile = window.tiles.get(pid)
            return tile.painted if tile is not None else 0

        await _until("pictures painted", lambda: painted(judge_id) >= 5 and painted(SELF_ID) >= 3)
        assert "庭审中" in window.status_text
        assert "录像中" in window.status_text
        image = window.tiles[judge_id].image
        colours = {str(image.get(x, 100)) for x in range(8, 320, 32)}
        assert len(colours) >= 4, colours  # the test pattern's colour bars, not a blank tile
        assert window.tiles[judge_id].caption.cget("text") == "judge"

        # The line drops: the app joins again by itself and tells the court.
        assert link.cut() >= 1
        await _until("the station joined again", lambda: app.joins == 2)
        before = painted(judge_id)
        await _until("pictures again", lambda: painted(judge_id) >= before + 5)
        status, log = await court.call(
            await court.staff("judge"), "GET", f"/api/hearings/{w.hearing_id}/events"
        )
        assert status == 200
        departed = [
            e
            for e in log["events"]
            if e["kind"] == "participant.departed" and e["data"]["participant_id"] == station_id
        ]
        assert [e["data"]["cause"] for e in departed] == ["NETWORK_LOST"], departed
        reports = [e["data"] for e in log["events"] if e["kind"] == "station.report"]
        assert [r["cause"] for r in reports] == ["network"], reports
        assert reports[0]["since"] <= log["events"][-1]["at"]

        # The director leaves with the window's button.
        window.leave_button.invoke()
        assert await asyncio.wait_for(running, 20) is CloseReason.CLIENT_LEFT
    finally:
        app.leave()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 20)
        window.close()
        await pump
        await judge.close()
        await link.close()
        judge_camera.stop()
        station_camera.stop()


async def _station_in_session(court: Court, tmp_path: Path) -> tuple[CameraTrack, Path, SigningKey]:
    """The hearing in session, and the station's camera (running), key file and backup key."""
    await court.set_state("in_session", "开庭")
    camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    await camera.start()
    key_file = tmp_path / "station.key"
    await asyncio.to_thread(key_file.write_text, court.world.own.station_key)
    signing = await asyncio.to_thread(load_or_create_signing_key, tmp_path / "backup.ed25519")
    return camera, key_file, signing


async def test_the_station_backup_records_through_a_dead_line_and_is_sealed_at_close(
    court: Court, clerk: SignalingClient, window: HearingWindow, tmp_path: Path
) -> None:
    w = court.world.own
    camera, key_file, signing = await _station_in_session(court, tmp_path)
    link = LinkToCourt(court.server.port or 0)
    await link.start()
    app = StationApp(
        StationConfig(f"http://127.0.0.1:{link.port}", w.station_id, key_file),
        video=camera,
        audio=None,
        backoff=Backoff(random.Random(3)),
        backup=BackupSettings(tmp_path / "backups", signing),
        window=window,
    )
    pump = asyncio.ensure_future(window.run())
    running = asyncio.ensure_future(app.run())
    try:
        await _until("the station joined", lambda: app.joins == 1 or running.done())
        if running.done():
            running.result()
        assert app.session is not None
        assert app.session.welcome is not None
        assert app.backup is not None
        backup = app.backup.backup
        assert backup.recording_id is None  # in the waiting room: nothing on the record
        station_pid = app.session.welcome.participant_id
        await clerk.request(m.Admit(participant_id=station_pid))
        await _until("recording", lambda: backup.frames_written >= 15)
        assert "本站点备份录像中" in window.notice_text  # the director sees it runs

        # The line dies for a while: the court cannot see the station, its backup goes on.
        session = app.session
        link.down()
        await _until("the app noticed", lambda: session.signaling.closed)
        frames = backup.frames_written
        await _until("4 s offline", lambda: backup.frames_written >= frames + 60)
        assert app.joins == 1
        link.up()
        await _until("the station joined again", lambda: app.joins == 2)
        await _until("recording again", lambda: backup.frames_written >= frames + 90)

        await court.set_state("closed", "闭庭")
        assert await asyncio.wait_for(running, 30) is CloseReason.JUDGE_ENDED
    finally:
        app.leave()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 20)
        await link.close()
        camera.stop()
        window.close()
        await pump

    assert backup.state is BackupState.SEALED
    assert backup.path is not None
    report = await asyncio.to_thread(verify_package, backup.path, trust_embedded_key=True)
    # exit 0, not 2: no gap in the backup although the court saw none of it for 4 s.
    assert report.exit_code == 0, (report.problems, report.gaps)
    assert report.signing_key_id == signing.key_id
    notes = [e["text"] for e in report.timeline if e["type"] == "note"]
    assert notes == [
        "connection to the court lost; the station records on",
        "connection to the court restored",
    ]
    # The court's own log names the backup and the key that signs it.
    status, log = await court.call(
        await court.staff("judge"), "GET", f"/api/hearings/{w.hearing_id}/events"
    )
    assert status == 200
    (registered,) = [e["data"] for e in log["events"] if e["kind"] == "station.backup_started"]
    assert registered["recording_id"] == backup.recording_id
    assert registered["key_id"] == signing.key_id
    # Encrypted for the court's archive key: its holder exports a playable picture.
    # Sent to the court after the close, checked there against the registered key, and kept.
    assert app.backups_sent == 1
    (received,) = [e["data"] for e in log["events"] if e["kind"] == "station.backup_received"]
    assert received["recording_id"] == backup.recording_id
    assert received["root_hash"] == backup.root_hash
    assert backup.recording_id is not None
    kept = court.data_dir / "station-backups" / backup.recording_id
    assert (
        await asyncio.to_thread(verify_package, kept, trust_embedded_key=True)
    ).root_hash == backup.root_hash
    assert await asyncio.to_thread(receipt_path(backup.path).is_file)
    assert await asyncio.to_thread(pending_uploads, tmp_path / "backups") == []
    # The judge finds it next to the court's own recording and plays it, verified against the
    # station's registered key, the station named.
    judge = await court.staff("judge")
    status, listed = await court.call(judge, "GET", f"/api/hearings/{w.hearing_id}/recordings")
    assert status == 200
    assert {(r["id"], r["source"], r["playable"]) for r in listed} >= {
        (backup.recording_id, "station-backup", True)
    }
    assert {r["source"] for r in listed} == {"court", "station-backup"}
    body = await court.playback(backup.recording_id)
    assert (body["status"], body["media_unavailable"]) == ("ready", None), body
    assert body["verification"]["exit_code"] == 0
    assert body["verification"]["signing_key_id"] == signing.key_id
    (played,) = body["streams"]
    assert played["participant_id"] == station_pid
    assert played["display_name"] == "station"
    archive = await asyncio.to_thread(load_archive_private_key, court.data_dir / "keys/archive.key")
    result = await asyncio.to_thread(
        export_package, backup.path, archive, tmp_path / "out", trust_embedded_key=True
    )
    (stream,) = result.streams
    probe = await asyncio.to_thread(ffprobe, stream.file)
    assert {s["codec_name"] for s in probe["streams"]} == {"vp8"}
    assert float(probe["format"]["duration"]) >= 6.0


async def test_a_full_station_disk_is_reported_to_the_court_at_once(
    court: Court, clerk: SignalingClient, tiny_filesystem: Path, tmp_path: Path
) -> None:
    w = court.world.own
    camera, key_file, signing = await _station_in_session(court, tmp_path)
    app = StationApp(
        StationConfig(court.base, w.station_id, key_file),
        video=camera,
        audio=None,
        backup=BackupSettings(tiny_filesystem, signing),
    )
    running = asyncio.ensure_future(app.run())
    judge = await court.staff("judge")

    async def reported() -> list[dict[str, Any]]:
        return await _logged(court, judge, "station.report")

    try:
        await _until("the station joined", lambda: app.joins == 1 or running.done())
        assert app.session is not None
        assert app.session.welcome is not None
        await clerk.request(m.Admit(participant_id=app.session.welcome.participant_id))
        async with asyncio.timeout(40):
            while not (reports := await reported()):
                await asyncio.sleep(0.2)  # polling the hearing's log
        assert [r["cause"] for r in reports] == ["other"]
        assert "backup recording failed" in reports[0]["detail"]
        # ... and the presiding staff in the room are told at once.
        async with asyncio.timeout(10):
            while not isinstance(told := await clerk.next_event(), m.StationReported):
                pass
        assert told.participant_id == app.session.welcome.participant_id
        assert told.cause is StationCause.OTHER
        assert told.detail == reports[0]["detail"]
        assert app.backup is not None
        assert app.backup.backup.state is BackupState.FAILED
        assert not running.done()  # the station takes part on
    finally:
        app.leave()
        assert await asyncio.wait_for(running, 30) is CloseReason.CLIENT_LEFT
        camera.stop()


async def _station_participant(court: Court, staff: dict[str, str]) -> str:
    """The station's participant id in the hearing."""
    path = f"/api/hearings/{court.world.own.hearing_id}/participants"
    status, people = await court.call(staff, "GET", path)
    assert status == 200
    (station_pid,) = [p["id"] for p in people if p["role"] == "station"]
    return str(station_pid)


async def _logged(
    court: Court, staff: dict[str, str], kind: str, *, actor: str | None = None
) -> list[dict[str, Any]]:
    """The data of the hearing's log entries of `kind` (by `actor`, if given)."""
    path = f"/api/hearings/{court.world.own.hearing_id}/events"
    status, log = await court.call(staff, "GET", path)
    assert status == 200
    return [
        e["data"]
        for e in log["events"]
        if e["kind"] == kind and (actor is None or e["actor"] == actor)
    ]


async def _station_process(*args: str, command: str = "run") -> asyncio.subprocess.Process:
    """`shared-court station COMMAND ARGS` as its own process, output (both streams) piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "station",
        command,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_the_station_cli_joins_and_leaves_on_sigterm(court: Court, tmp_path: Path) -> None:
    w = court.world.own
    await court.set_state("opened", "开放候庭")
    key_file = tmp_path / "station.key"
    await asyncio.to_thread(key_file.write_text, w.station_key)
    proc = await _station_process(
        "--server",
        court.base,
        "--station-id",
        w.station_id,
        "--key-file",
        str(key_file),
        "--test-pattern",
        "--size",
        "320x240",
        "--no-audio",
        "--no-window",
        "--backup-dir",
        str(tmp_path / "backups"),
    )
    judge = await court.staff("judge")
    station_pid = await _station_participant(court, judge)

    async def station_events(kind: str) -> list[dict[str, Any]]:
        return await _logged(court, judge, kind, actor=f"participant:{station_pid}")

    try:
        async with asyncio.timeout(60):
            while not await station_events("participant.joined"):
                assert proc.returncode is None
                await asyncio.sleep(0.2)  # polling the hearing's log
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out.decode()
    assert "the station's part ended: CLIENT_LEFT" in out.decode()
    departed = await station_events("participant.departed")
    assert [d["cause"] for d in departed] == ["CLIENT_LEFT"], departed


async def test_a_killed_station_seals_its_backup_at_the_next_start(
    court: Court, clerk: SignalingClient, tmp_path: Path
) -> None:
    w = court.world.own
    await court.set_state("in_session", "开庭")
    key_file = tmp_path / "station.key"
    await asyncio.to_thread(key_file.write_text, w.station_key)
    backups = tmp_path / "backups"
    common = ["--server", court.base, "--station-id", w.station_id, "--backup-dir", str(backups)]
    proc = await _station_process(
        *common,
        "--key-file",
        str(key_file),
        "--test-pattern",
        "--size",
        "320x240",
        "--no-audio",
        "--no-window",
    )
    judge = await court.staff("judge")
    station_pid = await _station_participant(court, judge)

    async def logged(kind: str) -> list[dict[str, Any]]:
        return await _logged(court, judge, kind)

    def recorded(rid: str) -> int:
        segments = backups / rid / "segments"
        return sum(f.stat().st_size for f in segments.iterdir()) if segments.is_dir() else 0

    try:
        async with asyncio.timeout(60):
            while station_pid not in {
                j["participant_id"] for j in await logged("participant.joined")
            }:
                assert proc.returncode is None
                await asyncio.sleep(0.2)  # polling the hearing's log
            await clerk.request(m.Admit(participant_id=station_pid))
            while not (registered := await logged("station.backup_started")):
                await asyncio.sleep(0.2)
            rid = str(registered[0]["recording_id"])
            while await asyncio.to_thread(recorded, rid) < 150_000:  # seconds of picture
                await asyncio.sleep(0.2)  # polling the package on disk
        proc.kill()  # kill -9: no goodbye, nothing sealed
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    package = backups / rid
    assert (
        await asyncio.to_thread(verify_package, package, trust_embedded_key=True)
    ).exit_code == 1  # unfinished

    # The next start seals it (then, here, stops: its key is refused).
    wrong = tmp_path / "wrong.key"
    await asyncio.to_thread(wrong.write_text, "not-the-key")
    code, out = await _cli(
        *common, "--key-file", str(wrong), "--no-window", "--no-camera", "--no-audio"
    )
    assert code == 1, out
    assert f"sealed backup recording {rid}" in out
    # An appeal court checks it against the key the court logged when the station announced it.
    logged_key = VerifyKey.from_raw(base64.b64decode(registered[0]["verify_key"]))
    report = await asyncio.to_thread(verify_package, package, [logged_key])
    assert report.exit_code == 2, report.problems
    assert [e["cause"] for e in report.timeline if e["type"] == "incident"] == ["crash"]
    assert report.signing_key_id == registered[0]["key_id"]
    stranger = SigningKey.generate().verify_key  # any other key: refused
    assert (await asyncio.to_thread(verify_package, package, [stranger])).exit_code == 1

    # An upload the line cut short: the court already holds two of the files.
    station = await court.station()
    headers = {"X-CSRF-Token": station.get("sc_csrf", "")}
    files = f"{court.base}/api/hearings/{w.hearing_id}/station-backups/{rid}/files"
    async with aiohttp.ClientSession(cookies=station) as http:
        for name in ("recording.json", "keys.json"):
            data = await asyncio.to_thread((package / name).read_bytes)
            async with http.put(f"{files}/{name}", data=data, headers=headers) as resp:
                assert resp.status == 204

    # `station send` delivers the rest now (no hearing needed); then nothing is left.
    code, out = await _cli(*common, "--key-file", str(key_file), command="send")
    assert code == 0, out
    assert "backups received by the court: 1" in out
    assert "files already at the court (not sent again): 2" in out
    (received,) = await logged("station.backup_received")
    assert received["recording_id"] == rid
    assert received["status"] == "recovered"
    assert received["root_hash"] == report.root_hash
    code, out = await _cli(*common, "--key-file", str(key_file), command="send")
    assert (code, "backups received by the court: 0" in out) == (0, True), out


async def _cli(*args: str, command: str = "run") -> tuple[int, str]:
    proc = await _station_process(*args, command=command)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_the_station_cli_says_what_is_wrong(court: Court, tmp_path: Path) -> None:
    w = court.world.own
    common = ["--server", court.base, "--station-id", w.station_id]
    code, out = await _cli(*common, "--key-file", str(tmp_path / "missing.key"))
    assert code == 2, out
    assert "no station key file" in out
    wrong = tmp_path / "wrong.key"
    await asyncio.to_thread(wrong.write_text, "not-the-key")
    flags = ["--no-window", "--no-camera", "--no-audio", "--no-backup"]
    code, out = await _cli(*common, "--key-file", str(wrong), *flags)
    assert code == 1, out
    assert "refused the station login" in out


async def test_started_early_the_station_app_waits_for_the_hearing_to_open(
    court: Court, window: HearingWindow, tmp_path: Path
) -> None:
    w = court.world.own
    key_file = tmp_path / "station.key"
    await asyncio.to_thread(key_file.write_text, w.station_key)
    app = StationApp(
        StationConfig(court.base, w.station_id, key_file),
        video=None,
        audio=None,
        window=window,
        poll_s=0.2,
    )
    pump = asyncio.ensure_future(window.run())
    running = asyncio.ensure_future(app.run())
    try:
        await _until("told to wait", lambda: "暂无开放的庭审" in window.status_text)
        assert app.joins == 0
        assert not running.done()
        await court.set_state("opened", "开放候庭")
        await _until("joined once it opened", lambda: app.joins == 1 or running.done())
        assert app.joins == 1
        assert "候庭中" in window.status_text
    finally:
        app.leave()
        assert await asyncio.wait_for(running, 20) is CloseReason.CLIENT_LEFT
        window.close()
        await pump


# -- the station's day (issue 14) ------------------------------------------------------------

SHOTS = Path(os.environ.get("STATION_SHOTS", "/tmp/station-shots"))


def _grab_screen(path: Path) -> None:
    """A PNG of the whole Xvfb screen (the station PC's), through FFmpeg's x11grab in PyAV
    (no ImageMagick on the CI machine). Blocks: call it in a thread."""
    import av

    grab = av.open(os.environ["DISPLAY"], format="x11grab", options={"video_size": "1024x768"})
    try:
        frame = next(grab.decode(video=0))
    finally:
        grab.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    out = av.open(str(path), "w", format="image2")
    stream = out.add_stream("png")
    stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "rgb24"
    for packet in stream.encode(frame.reformat(format="rgb24")):
        out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()


async def _screenshot(window: HearingWindow, tmp_path: Path, name: str) -> Path:
    """Let Tk draw, then keep a screenshot in the test's data dir (and a copy to look at)."""
    window.root.update()
    await asyncio.sleep(0.3)  # the pump draws at 50 Hz; a few frames for the layout to settle
    window.root.update()
    path = tmp_path / "shots" / name
    await asyncio.to_thread(_grab_screen, path)
    copy = SHOTS / name
    await asyncio.to_thread(copy.parent.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(copy.write_bytes, await asyncio.to_thread(path.read_bytes))
    assert path.stat().st_size > 2000  # not an empty picture
    return path


async def _second_hearing_at_the_station(court: Court) -> tuple[str, str]:
    """A second hearing at the station, an hour after the first, with the judge, the station
    and a villager (王五) expected; returns (hearing id, the villager's participant id)."""
    w = court.world.own
    judge = await court.staff("judge")
    status, first = await court.call(judge, "GET", f"/api/hearings/{w.hearing_id}")
    assert status == 200, first
    start = datetime.fromisoformat(first["scheduled_start"]) + timedelta(hours=1)
    status, hearing = await court.call(
        judge,
        "POST",
        f"/api/cases/{w.case_id}/hearings",
        {
            "title": "宅基地纠纷 第二次开庭",
            "scheduled_start": start.isoformat(),
            "scheduled_end": (start + timedelta(hours=2)).isoformat(),
            "station_id": w.station_id,
        },
    )
    assert status == 201, hearing
    path = f"/api/hearings/{hearing['id']}/participants"
    for body in (
        {"display_name": "法官 judge", "role": "judge", "user_id": w.user_ids["judge"]},
        {"display_name": "本站点", "role": "station", "station_id": w.station_id},
        {
            "display_name": "王五 (原告)",
            "role": "plaintiff",
            "legal_name": "王五",
            "id_number_tail": "5678",
        },
    ):
        status, person = await court.call(judge, "POST", path, body)
        assert status == 201, person
    return str(hearing["id"]), str(person["id"])


async def test_the_window_asks_which_open_hearing_says_where_it_is_and_keeps_the_hash(
    court: Court, window: HearingWindow, tmp_path: Path
) -> None:
    w = court.world.own
    second, villager = await _second_hearing_at_the_station(court)
    judge_cookies = await court.staff("judge")
    await court.set_state("opened", "开放候庭")  # the first (older) hearing
    status, body = await court.call(
        judge_cookies,
        "POST",
        f"/api/hearings/{second}/state",
        {"state": "opened", "reason": "候庭"},
    )
    assert status == 200, body
    camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    await camera.start()
    key_file = tmp_path / "station.key"
    await asyncio.to_thread(key_file.write_text, w.station_key)
    app = StationApp(
        StationConfig(court.base, w.station_id, key_file),
        video=PreviewTrack(camera, lambda f: window.show_frame(SELF_ID, f)),
        audio=None,
        window=window,
        stay_open_after_close=True,
    )
    window.on_leave = app.leave
    pump = asyncio.ensure_future(window.run())
    running = asyncio.ensure_future(app.run())
    judge = court.client(judge_cookies)
    try:
        # Two hearings are open: the window asks, and joins none until the director chooses.
        await _until("asked", lambda: len(window.choice_buttons) == 2 or running.done())
        assert app.joins == 0
        texts = {hid: str(b.cget("text")) for hid, b in window.choice_buttons.items()}
        assert "宅基地纠纷 第二次开庭" in texts[second]
        assert w.hearing_id in texts
        assert "Court A" in texts[second]
        await _screenshot(window, tmp_path, "1-choose.png")
        window.choice_buttons[second].invoke()
        await _until("joined the chosen one", lambda: app.joins == 1 or running.done())
        assert app.chosen == second
        assert app.session is not None
        assert app.session.welcome is not None
        station_pid = app.session.welcome.participant_id

        # The banner says where it is; the side lists who is expected.
        case_text = str(window.case_label.cget("text"))
        assert "a-1" in case_text
        assert "宅基地纠纷 第二次开庭" in case_text
        assert "Court A" in str(window.court_label.cget("text"))
        assert "王五 (原告)" in str(window.people_label.cget("text"))
        assert "未核验身份" in str(window.people_label.cget("text"))
        assert "候庭中" in window.status_text
        assert "未录像" in window.status_text
        await _screenshot(window, tmp_path, "2-joined.png")

        # The director checks 王五's identity in person, from the window.
        window.attest_person.set("王五 (原告)")
        window.attest_name.insert(0, "王五")
        window.attest_digits.insert(0, "0000")  # misread: the court's record says otherwise
        window.attest_button.invoke()
        await _until("refused", lambda: "不符" in str(window.attest_result.cget("text")))
        window.attest_digits.delete(0, "end")
        window.attest_digits.insert(0, "5678")
        window.attest_button.invoke()
        await _until("checked", lambda: "已记录" in str(window.attest_result.cget("text")))
        status, log = await court.call(judge_cookies, "GET", f"/api/hearings/{second}/events")
        assert status == 200
        (checked,) = [e for e in log["events"] if e["kind"] == "identity.confirmed"]
        assert checked["actor"] == f"station:{w.station_id}"
        assert checked["data"]["participant_id"] == villager
        assert (checked["data"]["method"], checked["data"]["check"]) == (
            "station_attested",
            "in_person",
        )
        assert checked["data"]["record_matched"] is True

        # The self-test, from the window's button: scored, shown, and at the court.
        window.self_test_button.invoke()
        await _until("self-tested", lambda: bool(app.self_tests), timeout=60)
        scores = {i["check"]: i for i in app.self_tests[0]["items"]}
        assert scores["camera"]["score"] in ("good", "okay"), scores["camera"]
        assert (scores["microphone"]["score"], scores["microphone"]["failure"]) == (
            "bad",
            "NO_MICROPHONE",
        )
        assert scores["network"]["measured"]["loss"] == 0
        assert "摄像头" in str(window.self_test_label.cget("text"))
        assert "未接麦克风" in str(window.self_test_label.cget("text"))
        status, station = await court.call(
            judge_cookies, "GET", f"/api/stations/{w.station_id}/status"
        )
        assert status == 200, station
        assert station["online"] is True
        assert station["self_test"]["overall"] == "bad"
        assert len(station["self_test"]["items"]) == 4

        # In session, on the record; then the judge closes: the hash stays to be confirmed.
        await judge.connect()
        await judge.join(second)
        await judge.request(m.SetHearingState(state=HearingState.IN_SESSION, reason="开庭"))
        await judge.request(m.Admit(participant_id=station_pid))
        await _until("on the record", lambda: "在案录像中" in window.status_text)
        # The line's quality, from the SFU's receiver reports on the station's stream.
        await _until("network scored", lambda: app.network_score is not None, timeout=30)
        assert app.network_score == "good"  # loopback
        assert "网络：良好" in str(window.network_label.cget("text"))
        await _screenshot(window, tmp_path, "3-in-session.png")
        status, body = await court.call(
            judge_cookies,
            "POST",
            f"/api/hearings/{second}/state",
            {"state": "closed", "reason": "闭庭"},
        )
        assert status == 200, body
        await _until("the hash shown", lambda: window.hash_label is not None, timeout=40)
        assert app.recording_hash is not None
        root_hash = app.recording_hash[1].root_hash
        assert window.hash_label is not None
        shown = str(window.hash_label.cget("text")).replace(" ", "").replace("\n", "")
        assert shown == root_hash
        assert not running.done()  # the window stays open for the people present
        await _screenshot(window, tmp_path, "4-hash.png")
        window.hash_buttons["confirm"].invoke()
        await _until("confirmed", lambda: app.hash_answers == [(True, True)])
        assert window.hash_result is not None
        assert "已确认" in str(window.hash_result.cget("text"))
        status, log = await court.call(judge_cookies, "GET", f"/api/hearings/{second}/events")
        (confirmed,) = [e for e in log["events"] if e["kind"] == "recording.confirmed"]
        assert confirmed["actor"] == f"participant:{station_pid}"
        assert confirmed["data"]["root_hash"] == root_hash
        await _screenshot(window, tmp_path, "5-confirmed.png")
        window.leave_button.invoke()  # "关闭窗口"
        assert await asyncio.wait_for(running, 20) is CloseReason.JUDGE_ENDED
    finally:
        app.leave()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 20)
        window.close()
        await pump
        with contextlib.suppress(Exception):  # it may never have connected
            await asyncio.wait_for(judge.close(), 10)
        camera.stop()


async def test_a_station_enrols_with_a_code_and_a_disabled_station_is_told_so(
    court: Court, clerk: SignalingClient, window: HearingWindow, tmp_path: Path
) -> None:
    w = court.world.own
    admin = await court.staff("admin")
    status, issued = await court.call(
        admin, "POST", f"/api/stations/{w.station_id}/enrolment-codes"
    )
    assert status == 201, issued
    code = issued["code"].lower().replace("-", " ")  # as typed: case and spacing do not matter
    own_key = tmp_path / "station-own.key"
    common = ["--server", court.base, "--station-id", w.station_id]
    rc, out = await _cli(*common, "--code", code, "--key-file", str(own_key), command="enrol")
    assert rc == 0, out
    assert "enrolled" in out
    text = await asyncio.to_thread(own_key.read_text)
    assert text.startswith("-----BEGIN PRIVATE KEY-----")
    assert own_key.stat().st_mode & 0o777 == 0o600
    # The code is used up: a second PC cannot enrol with it.
    rc, out = await _cli(
        *common, "--code", code, "--key-file", str(tmp_path / "other.key"), command="enrol"
    )
    assert rc == 1, out

    # The station runs with its own key (no shared secret was pasted anywhere).
    app = StationApp(
        StationConfig(court.base, w.station_id, own_key),
        video=None,
        audio=None,
        window=window,
        stay_open_after_close=True,
        backoff=Backoff(random.Random(5)),
    )
    window.on_leave = app.leave
    pump = asyncio.ensure_future(window.run())
    running = asyncio.ensure_future(app.run())
    try:
        await _until("joined with its own key", lambda: app.joins == 1 or running.done())
        assert app.joins == 1
        # The court disables the station: its session ends, and its window says why.
        status, body = await court.call(
            admin, "POST", f"/api/stations/{w.station_id}/disable", {"disabled": True}
        )
        assert status == 200, body
        assert body["sessions_ended"] >= 1
        await _until("told", lambda: "本站点已被法院停用" in window.disabled_text)
        assert "候庭中" not in window.notice_text  # nothing stale left on the screen
        assert not running.done()  # the window stays for the director to read
        await _screenshot(window, tmp_path, "6-disabled.png")
        window.leave_button.invoke()
        with pytest.raises(StationDisabled):
            await asyncio.wait_for(running, 20)
    finally:
        app.leave()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(running, 20)
        window.close()
        await pump
    # Enabled again, it logs in with the same key.
    status, body = await court.call(
        admin, "POST", f"/api/stations/{w.station_id}/disable", {"disabled": False}
    )
    assert status == 200, body
    async with CourtApi.open(court.base) as api:
        cookies = await station_login(api, StationConfig(court.base, w.station_id, own_key))
    assert cookies.get("sc_csrf")  # a session: the same key works again


# -- a poor line (issue 14.6) ---------------------------------------------------------------


async def test_the_window_says_the_picture_was_lowered_to_keep_the_sound(
    window: HearingWindow, tmp_path: Path
) -> None:
    """The station's window shows the line's quality and, while the REMB-driven encoder target
    is low, that the picture was lowered so that the sound gets through; the camera's frames
    are then sent at half size (station_client.media.LineAdaptiveVideo)."""
    source = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    await source.start()
    video = LineAdaptiveVideo(source)
    try:
        full = await video.recv()
        assert (full.width, full.height) == (320, 240)
        assert video.follow(500_000) is False
        window.network("good", 40, 0.0, lowered=video.lowered)
        assert "降低画面" not in str(window.network_label.cget("text"))
        await _screenshot(window, tmp_path, "poor-line-1-good.png")

        assert video.follow(250_000) is True  # REMB took aiortc's encoder to its floor
        window.network("bad", 320, 0.06, lowered=video.lowered)
        text = str(window.network_label.cget("text"))
        assert "网络：差" in text
        assert "网络较差：已降低画面以保证声音" in text
        small = await video.recv()
        assert (small.width, small.height) == (160, 120)
        await _screenshot(window, tmp_path, "poor-line-2-lowered.png")

        assert video.follow(400_000) is True  # between the two thresholds: no flapping
        assert video.follow(460_000) is False
    finally:
        source.stop()


# -- a shared screen in the station window (issue 13.4) --------------------------------------


async def test_the_window_names_a_shared_screen_and_drops_it_when_the_share_ends(
    window: HearingWindow, tmp_path: Path
) -> None:
    """A party's shared screen is its own tile, captioned with whose screen it is (not an id),
    and goes when the share stops or its sharer leaves."""
    source = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    await source.start()
    party = "6f1c2f1e-7a0e-4a53-9a8c-4f3a8c6f9b10"
    entry = m.ParticipantInfo(
        participant_id=party,
        display_name="张三",
        role=HearingRole.PLAINTIFF,
        state=ParticipantState.IN_HEARING,
        connected=True,
    )
    try:
        window.on_event(m.Roster(participants=[entry]))
        frame = await source.recv()
        window.show_frame(party, frame)
        window.show_frame(party + ".screen", frame)
        screen = window.tiles[party + ".screen"]
        assert screen.caption.cget("text") == "张三 的共享屏幕"
        assert window.tiles[party].caption.cget("text") == "张三"
        await _screenshot(window, tmp_path, "screen-share-tile.png")

        window.on_event(m.ScreenShare(participant_id=party, state="stopped", reason="sharer"))
        assert party + ".screen" not in window.tiles
        assert party in window.tiles  # the camera stays

        window.show_frame(party + ".screen", frame)  # shared again, then the sharer drops
        gone = entry.model_copy(update={"connected": False, "state": ParticipantState.DISCONNECTED})
        window.on_event(m.Roster(participants=[gone]))
        assert party + ".screen" not in window.tiles
        assert party not in window.tiles
    finally:
        source.stop()
