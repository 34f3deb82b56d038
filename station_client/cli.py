"""`shared-court station run`, `station send`, `station devices` and `station enrol`: the
village PC's app.

Exit codes: 0 the station's part ended (left, hearing closed, dismissed ...), 1 the station
cannot take part (key refused, no hearing open), 2 usage (missing key file, no display, bad
device).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from aiortc import MediaStreamTrack

from recordings import RecordingError

from .app import (
    BackupSettings,
    PreviewTrack,
    StationApp,
    StationConfig,
    send_pending_backups,
)
from .backup import load_or_create_signing_key, recover_unfinished
from .court_api import CourtApi, StationDisabled, StationError
from .devices import AvCamera, DeviceError, PyAudioInput, PyAudioOutput, list_audio_devices
from .media import CameraTrack, MicrophoneTrack, SpeakerSink
from .upload import Pending

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
DEFAULT_BACKUP_DIR = Path.home() / ".local/share/shared-court/station-backups"


async def _backup_settings(args: argparse.Namespace) -> BackupSettings | None:
    """The backup settings, after sealing what a killed run left unfinished. Raises
    KeyFileError / OSError (reported as usage errors)."""
    if getattr(args, "no_backup", False):
        return None
    root: Path = args.backup_dir
    key_file: Path = args.backup_key_file or root / "station-signing.key"
    key = await asyncio.to_thread(load_or_create_signing_key, key_file)
    for rid in await asyncio.to_thread(recover_unfinished, root, key):
        print(f"sealed backup recording {rid}, left unfinished by an earlier run", file=sys.stderr)
    return BackupSettings(root, key)


def _add_login_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", required=True, help="the court server, e.g. https://court.example")
    p.add_argument("--station-id", required=True)
    p.add_argument(
        "--key-file", required=True, type=Path, help="file holding the station key (0600)"
    )


def _add_backup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backup-dir",
        type=Path,
        default=DEFAULT_BACKUP_DIR,
        help="where the station keeps its local backup recordings (default: %(default)s)",
    )
    p.add_argument(
        "--backup-key-file",
        type=Path,
        help="the station's backup signing key, created 0600 on first use "
        "(default: station-signing.key in the backup directory)",
    )


def add_send_arguments(p: argparse.ArgumentParser) -> None:
    _add_login_arguments(p)
    _add_backup_arguments(p)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    _add_login_arguments(p)
    p.add_argument("--hearing", help="hearing id (default: the station's hearing open now)")
    cam = p.add_mutually_exclusive_group()
    cam.add_argument("--camera", default="/dev/video0", help="V4L2 camera device")
    cam.add_argument("--test-pattern", action="store_true", help="a test picture, no camera")
    cam.add_argument("--no-camera", action="store_true")
    p.add_argument("--size", default="640x480", help="camera picture size")
    p.add_argument("--fps", type=int, default=15, help="camera frame rate")
    p.add_argument("--microphone", help="input device name (default: the system's)")
    p.add_argument("--speaker", help="output device name (default: the system's)")
    p.add_argument("--no-audio", action="store_true", help="no microphone and no speaker")
    p.add_argument("--no-window", action="store_true", help="run without a window")
    p.add_argument("--lang", choices=["zh-CN", "en"], default="zh-CN")
    _add_backup_arguments(p)
    p.add_argument("--no-backup", action="store_true", help="no local backup recording")


class Speakers:
    """Plays every received audio track, each on its own output stream (the system mixer mixes
    them), so several people can be heard at once."""

    def __init__(self, device: str | None) -> None:
        self._device = device
        self.sinks: list[SpeakerSink] = []

    async def start(self, track: MediaStreamTrack) -> None:
        sink = SpeakerSink(PyAudioOutput(self._device))
        self.sinks.append(sink)
        try:
            await sink.start(track)
        except DeviceError as exc:
            log.error("cannot play audio: %s", exc)

    async def stop(self) -> None:
        for sink in self.sinks:
            await sink.stop()


async def _run(args: argparse.Namespace, window: Any) -> int:
    config = StationConfig(args.server, args.station_id, args.key_file, args.hearing)
    try:
        backup = await _backup_settings(args)
    except (RecordingError, OSError) as exc:
        print(f"error: backup recording: {exc}", file=sys.stderr)
        if window is not None:
            window.close()
        return EXIT_USAGE
    camera: CameraTrack | None = None
    video: MediaStreamTrack | None = None
    if not args.no_camera:
        source = (
            AvCamera.test_pattern(size=args.size, fps=args.fps)
            if args.test_pattern
            else AvCamera.v4l2(args.camera, size=args.size, fps=args.fps)
        )
        camera = CameraTrack(source)
        try:
            await camera.start()
        except DeviceError as exc:
            print(f"error: camera: {exc}", file=sys.stderr)
            if window is not None:
                window.close()
            return EXIT_USAGE
        video = camera
        if window is not None:
            video = PreviewTrack(camera, window.show_own_frame)
    microphone: MicrophoneTrack | None = None
    speakers: Speakers | None = None
    if not args.no_audio:
        microphone = MicrophoneTrack(PyAudioInput(args.microphone))
        try:
            await microphone.start()
        except DeviceError as exc:
            print(f"error: microphone: {exc}", file=sys.stderr)
            microphone = None
        speakers = Speakers(args.speaker)
    speaker_device = None if args.no_audio else args.speaker
    app = StationApp(
        config,
        video=video,
        audio=microphone,
        speaker=speakers,
        window=window,
        backup=backup,
        # The window stays after the close for the hash; a self-test runs before the hearing.
        stay_open_after_close=window is not None,
        self_test_first=True,
        speaker_output=None if args.no_audio else (lambda: PyAudioOutput(speaker_device)),
        expected_fps=args.fps,
    )
    # Ctrl-C or a shutdown leaves the hearing properly (CLIENT_LEFT), not as a lost line.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.leave)
    pump = None
    if window is not None:
        window.on_leave = app.leave
        pump = asyncio.ensure_future(window.run())
    try:
        reason = await app.run()
    except StationDisabled:
        print("error: the court has disabled this station (本站点已被法院停用)", file=sys.stderr)
        return EXIT_FAIL
    except StationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        if speakers is not None:
            await speakers.stop()
        for track in (camera, microphone):
            if track is not None:
                track.stop()
        if window is not None:
            window.close()
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
    print(f"the station's part ended: {reason.value}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if not args.key_file.is_file():
        print(f"error: no station key file at {args.key_file}", file=sys.stderr)
        return EXIT_USAGE
    window: Any = None
    if not args.no_window:
        # Tk is created here, on the thread that then runs the event loop (and reads its
        # profile files before the loop starts).
        try:
            from .window import HearingWindow

            window = HearingWindow(lang=args.lang)
        except Exception as exc:  # tkinter.TclError without a display; ImportError without Tk
            print(f"error: cannot open the window ({exc}); use --no-window", file=sys.stderr)
            return EXIT_USAGE
    return asyncio.run(_run(args, window))


def send(args: argparse.Namespace) -> int:
    """`shared-court station send`: seal what a killed run left, then send the court every
    backup it has not confirmed. Exit 0 all sent (or none to send), 1 not all, 2 usage."""
    if not args.key_file.is_file():
        print(f"error: no station key file at {args.key_file}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_send(args))


async def _send(args: argparse.Namespace) -> int:
    config = StationConfig(args.server, args.station_id, args.key_file)
    try:
        settings = await _backup_settings(args)
    except (RecordingError, OSError) as exc:
        print(f"error: backup recording: {exc}", file=sys.stderr)
        return EXIT_USAGE
    assert settings is not None

    def started(item: Pending) -> None:
        print(f"sending {item.recording_id} ({item.size / 1e6:.1f} MB)", file=sys.stderr)

    def progress(fraction: float) -> None:
        print(f"\r  {fraction:6.1%}", end="", file=sys.stderr, flush=True)

    async with CourtApi.open(config.server) as api:
        result = await send_pending_backups(api, config, settings.root, progress, started)
    print(file=sys.stderr)
    for reason in result.refused:
        print(f"error: {reason}", file=sys.stderr)
    if result.unreachable is not None:
        print(f"error: not sent now: {result.unreachable}", file=sys.stderr)
    print(f"backups received by the court: {result.sent}")
    if result.already_there:
        print(f"files already at the court (not sent again): {result.already_there}")
    return EXIT_FAIL if result.refused or result.unreachable else EXIT_OK


def devices(_args: argparse.Namespace) -> int:
    """Print the audio devices PortAudio sees (names for --microphone / --speaker)."""
    for d in list_audio_devices():
        kinds = [k for k, n in (("in", d.max_input_channels), ("out", d.max_output_channels)) if n]
        print(f"{d.index:3d}  {d.name}  ({', '.join(kinds)}; {d.default_sample_rate:.0f} Hz)")
    return EXIT_OK


def add_enrol_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", required=True, help="the court server, e.g. https://court.example")
    p.add_argument("--station-id", required=True)
    p.add_argument("--code", required=True, help="the one-time enrolment code from the court")
    p.add_argument(
        "--key-file",
        required=True,
        type=Path,
        help="where the station keeps its own private key (created 0600 if missing); give the "
        "same file to `station run`",
    )


def enrol(args: argparse.Namespace) -> int:
    """`shared-court station enrol`: create the station's key pair (first run) and register
    its public key with the court using a one-time code. Exit 0 enrolled, 1 refused or
    unreachable, 2 usage (the key file holds something else)."""
    return asyncio.run(_enrol(args))


async def _enrol(args: argparse.Namespace) -> int:
    import aiohttp

    from .court_api import StationDisabled
    from .enrolment import load_or_create_key, public_pem

    try:
        key = await asyncio.to_thread(load_or_create_key, args.key_file)
    except (StationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        async with CourtApi.open(args.server) as api:
            key_id = await api.enrol(args.station_id, args.code, public_pem(key))
    except StationDisabled:
        print("error: the court has disabled this station (本站点已被法院停用)", file=sys.stderr)
        return EXIT_FAIL
    except (StationError, aiohttp.ClientError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"enrolled: key {key_id}; run the station with --key-file {args.key_file}")
    return EXIT_OK
