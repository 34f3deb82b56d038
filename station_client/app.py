"""The station app: log the village PC in, join the station's hearing with its camera,
microphone and speaker, show it in a window, and come back after a network failure.

Design:
- The station authenticates with its per-station key (`POST /api/auth/station`, the key read
  from a file: never on the command line) or, once enrolled with a one-time code, by signing
  the time with its own key (station_client/enrolment.py), then joins the hearing given, or
  the one held at this station that is open now (opened, in session, recess or suspended).
  When several are open it asks the director in the window and never picks one silently
  (without a window it refuses: `--hearing`). Every REST call to the court goes through
  `court_api.CourtApi` (one aiohttp session per run).
- The station's day (issue 14): the window shows the court, case, title and the people
  expected (`GET /api/station/hearings`, refreshed when the roster changes and with the
  status report every `STATUS_EVERY_S`, which also tells the court the station is here and how
  many backups wait); the network quality from the SFU's receiver reports; the scored
  self-test (station_client/selftest.py) on demand and, from the CLI, before the hearing; the
  director's in-person identity checks. With `stay_open_after_close` the window keeps the
  sealed recording's root hash after the close until the people present confirmed it and the
  director closes the window; a disabled station is told so in the window.
- One `StationSession` per connection. When a connection ends for a reason the station can
  recover from (network lost, heartbeat lost, SFU worker died, server restarting, media
  transport failed) the app logs in again and rejoins with a capped exponential back-off with
  jitter. When the station's own line failed (network or heartbeat lost, media transport
  failed), once back it tells the court with a `station_report` (cause `network`, `since` = when
  the connection was lost), so the absence is on the record as excused (OLR 25).
  Reasons that end the station's part (hearing closed, removed, dismissed, replaced by another
  connection, left on purpose) end the app. Started before the court opened the hearing, the
  app looks again every `NO_HEARING_POLL_S` seconds.
- The camera and microphone keep running across reconnections: a `MediaTee` reads each for as
  long as the app runs, and each new peer connection sends a fresh output of it. The station's
  own picture goes to the window through `PreviewTrack`, which passes frames on unchanged.
- With `backup` settings, the tees also feed the station's local backup recording
  (station_client/backup/), which goes on while the line is down and is sealed when the
  hearing closes or the station leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import av
from aiortc import MediaStreamTrack
from aiortc.stats import RTCRemoteInboundRtpStreamStats

from recordings import ArchivePublicKey, RecordingId, SigningKey
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import StationCause
from signaling.errors import SignalingError
from signaling.reasons import CloseReason

from .backup import BackupController, BackupState, StationBackup
from .court_api import CourtApi, StationDisabled, StationError, UploadError
from .devices import AudioOutput
from .enrolment import is_key_pair, load_private_key
from .media import LineAdaptiveVideo, encoder_target
from .record_signing import RecordSigning
from .selftest import run_self_test
from .session import StationSession
from .tee import MediaTee
from .upload import Pending, pending_uploads, upload_backup

log = logging.getLogger(__name__)

# The connection ended for a reason the station recovers from by joining again.
RECOVERABLE = frozenset(
    {
        CloseReason.NETWORK_LOST,
        CloseReason.HEARTBEAT_LOST,
        CloseReason.WORKER_DIED,
        CloseReason.SERVER_SHUTDOWN,
        CloseReason.ICE_FAILED,
        CloseReason.STATION_NETWORK,
        # The server closed it for what was sent (a flood, an oversized frame): until this
        # counted as NETWORK_LOST and the station joined again; it still does, backing off.
        CloseReason.PROTOCOL_VIOLATION,
        # The station's session was ended (the court disabled the station, or replaced its
        # key): logging in again says which, and the window says so (issue 14).
        CloseReason.SESSION_REVOKED,
    }
)
# ... and of those, the ones that mean the station's own line failed: reported to the court.
NETWORK_TROUBLE = frozenset(
    {CloseReason.NETWORK_LOST, CloseReason.HEARTBEAT_LOST, CloseReason.ICE_FAILED}
)
OPEN_STATES = ("in_session", "recess", "opened", "suspended")
NO_HEARING_POLL_S = 10.0  # how often to look again when no hearing is open yet
STATUS_EVERY_S = 30.0  # how often the station tells the court it is here (and refreshes its day)
NETWORK_EVERY_S = 5.0  # how often the window's network quality is measured
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0


class NoHearingOpen(StationError):
    """No hearing is open at this station yet (the app waits for one)."""


@dataclass(frozen=True)
class StationConfig:
    server: str  # base URL, e.g. https://court.example.cn
    station_id: str
    key_file: Path
    hearing_id: str | None = None

    @property
    def ws_url(self) -> str:
        return self.server.rstrip("/").replace("http", "ws", 1) + "/ws"

    def read_key(self) -> str:
        """The station key from its file. Raises StationError."""
        try:
            key = self.key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise StationError(f"cannot read the station key {self.key_file}: {exc}") from exc
        if not key:
            raise StationError(f"the station key file {self.key_file} is empty")
        return key


class Backoff:
    """Capped exponential back-off with full jitter (first retry within ~1 s)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**self._attempt)
        self._attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0


@dataclass(frozen=True)
class BackupSettings:
    """Where and how the station keeps its local backup recordings."""

    root: Path
    signing_key: SigningKey
    fps: float = 15.0
    bitrate: int = 600_000


class PreviewTrack(MediaStreamTrack):
    """Passes the camera's frames on unchanged and shows every `every`-th in the window."""

    kind = "video"

    def __init__(
        self, source: MediaStreamTrack, on_frame: Callable[[av.VideoFrame], None], every: int = 2
    ) -> None:
        super().__init__()
        self._source = source
        self._on_frame = on_frame
        self._every = every
        self._count = 0

    async def recv(self) -> Any:
        frame = await self._source.recv()
        self._count += 1
        if self._count % self._every == 0 and isinstance(frame, av.VideoFrame):
            self._on_frame(frame)
        return frame


async def station_login(api: CourtApi, config: StationConfig) -> dict[str, str]:
    """Log the station in with the key from its file (the shared key of `station add`, or its
    own enrolled key pair); returns the session cookies. Raises StationDisabled, StationError
    (no key, refused) or aiohttp.ClientError / OSError (server unreachable: retry)."""
    key = await asyncio.to_thread(config.read_key)
    if is_key_pair(key):  # the station's own key, enrolled with a code
        return await api.signed_login(config.station_id, load_private_key(key))
    return await api.login(config.station_id, key)


class SeveralHearingsOpen(StationError):
    """More than one hearing is open at this station and nobody chose (no window): the
    station never picks one silently (the judge may be waiting in the other)."""


async def choose_hearing(
    day: list[dict[str, Any]],
    config: StationConfig,
    chosen: str | None = None,
    ask: Callable[[list[dict[str, Any]]], Awaitable[str | None]] | None = None,
) -> str | None:
    """The hearing to join: the configured one; else the one chosen before if still open;
    else the only one open now; else the director's choice through `ask` (the window).
    `day` is `GET /api/station/hearings`. Returns None if the director left instead of
    choosing. Raises NoHearingOpen, SeveralHearingsOpen (several open and no `ask`)."""
    if config.hearing_id:
        return config.hearing_id
    open_now = [h for h in day if h["state"] in OPEN_STATES]
    if not open_now:
        raise NoHearingOpen("no hearing is open at this station now")
    ids = [str(h["id"]) for h in open_now]
    if chosen in ids:
        return chosen
    if len(ids) == 1:
        return ids[0]
    if ask is None:
        listed = "; ".join(f"{h['id']} ({h['case_number']} {h['title']})" for h in open_now)
        raise SeveralHearingsOpen(
            f"several hearings are open at this station: {listed}; choose one with --hearing"
        )
    return await ask(open_now)


@dataclass
class SendResult:
    """What `send_pending_backups` did."""

    sent: int = 0
    already_there: int = 0  # files the court held from an upload the line had cut short
    refused: list[str] = field(default_factory=list)  # why, per package the court refused
    unreachable: str | None = None  # the court could not be reached (or refused the login)


async def send_pending_backups(
    api: CourtApi,
    config: StationConfig,
    root: Path,
    progress: Callable[[float], None] | None = None,
    on_package: Callable[[Pending], None] | None = None,
) -> SendResult:
    """Send the court every sealed backup under `root` it has not confirmed receiving, oldest
    first. Never raises: what cannot be sent now stays for the next time."""
    result = SendResult()
    try:
        pending = await asyncio.to_thread(pending_uploads, root)
        if not pending:
            return result
        await station_login(api, config)
        for item in pending:
            log.info("sending backup %s (%d bytes) to the court", item.recording_id, item.size)
            if on_package is not None:
                on_package(item)
            try:
                receipt = await upload_backup(api, item, progress)
                result.sent += 1
                result.already_there += int(receipt.get("files_already_there", 0))
            except UploadError as exc:
                log.error("%s", exc)
                result.refused.append(str(exc))
    except (aiohttp.ClientError, OSError, StationError) as exc:
        log.warning("backups not sent now (%s); they are sent next time", exc)
        result.unreachable = str(exc)
    return result


class StationApp:
    """Runs the station's part in a hearing until it ends (see the module docstring).

    `window` (a HearingWindow, or None to run without one) is told what happens; `video` and
    `audio` are the station's capture tracks; `speaker` a SpeakerSink (or None); `backup`
    where to keep the local backup recording (None: no backup).
    """

    def __init__(
        self,
        config: StationConfig,
        *,
        video: MediaStreamTrack | None,
        audio: MediaStreamTrack | None,
        speaker: Any = None,
        window: Any = None,
        backoff: Backoff | None = None,
        poll_s: float = NO_HEARING_POLL_S,
        backup: BackupSettings | None = None,
        stay_open_after_close: bool = False,
        self_test_first: bool = False,
        speaker_output: Callable[[], AudioOutput] | None = None,
        status_every_s: float = STATUS_EVERY_S,
        expected_fps: float = 15.0,
    ) -> None:
        self.config = config
        self._poll_s = poll_s
        self._video, self._audio, self._speaker = video, audio, speaker
        self.window = window
        self._backoff = backoff or Backoff()
        self.session: StationSession | None = None
        self.joins = 0  # successful joins (1 + reconnections)
        self.reports: list[m.StationReport] = []
        self._stop = asyncio.Event()  # set by leave()
        self._backup_settings = backup
        self.backup: BackupController | None = None  # for the hearing being attended
        self._tees: dict[str, MediaTee] = {}
        self.backups_sent = 0
        self._untold: list[m.StationReport] = []  # reports for the court, sent in order
        self._telling: set[asyncio.Future[None]] = set()
        self._telling_lock = asyncio.Lock()
        # The station's day (issue 14).
        self._stay_open = stay_open_after_close
        self._self_test_first = self_test_first
        self._speaker_output = speaker_output
        self._status_every_s = status_every_s
        self._expected_fps = expected_fps
        self.chosen: str | None = None  # the hearing the director chose (or the only one)
        self.recording_hash: tuple[str, m.RecordingHash] | None = None  # hearing, sealed hash
        self.hash_answers: list[tuple[bool, bool]] = []  # (confirmed, matches) sent to the court
        self.self_tests: list[dict[str, Any]] = []
        self.network_score: str | None = None
        # the camera as sent: half size while the line is poor (media.LineAdaptiveVideo)
        self.line_video: LineAdaptiveVideo | None = None
        self.picture_lowered = False
        self._day_changed = asyncio.Event()
        self._background: set[asyncio.Future[Any]] = set()
        self._self_testing = asyncio.Lock()
        self.record_signing: RecordSigning | None = None  # with a window (issue 15)

    def leave(self) -> None:
        """Leave the hearing on purpose (the window's button); `run()` then returns."""
        self._stop.set()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def run(self) -> CloseReason:
        """Take part until the station's part ends; returns why. Raises StationError.

        With `stay_open_after_close`, after the court closes the hearing the window shows the
        recording's root hash for the people present to confirm, and `run()` returns only when
        the director closes the window (the backups are sent meanwhile)."""
        for kind, track in (("video", self._video), ("audio", self._audio)):
            if track is not None:
                self._tees[kind] = MediaTee(track)
                self._tees[kind].start()
        async with CourtApi.open(self.config.server) as api:
            self._wire_window(api)
            self._spawn(self._status_loop(api))
            holding = False
            try:
                try:
                    reason = await self._run(api)
                except StationDisabled:
                    # Said plainly in the window, which stays until the director closes it.
                    if self.window is not None:
                        self.window.disabled()
                        if self._stay_open:
                            await self._stop.wait()
                    raise
                holding = self._show_hash(api, reason)
            finally:
                if self.backup is not None:
                    await self.backup.finish()
                for tee in self._tees.values():
                    await tee.aclose()
                if self._backup_settings is not None and not self._stop.is_set():
                    await self._send_unless_left(api)
                if holding:
                    await self._stop.wait()  # the window stays until the director closes it
                for task in list(self._background):
                    task.cancel()
                for task in list(self._background):
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            return reason

    # -- the station's day: the window's data and buttons (issue 14) -------------------------

    def _wire_window(self, api: CourtApi) -> None:
        window = self.window
        if window is None:
            return
        window.on_attest = lambda pid, name, digits: self._spawn(
            self._attest(api, pid, name, digits)
        )
        window.on_self_test = lambda: self._spawn(self.self_test(api))
        # The hearing record (issue 15): people checked here sign it in the window.
        self.record_signing = RecordSigning(
            api, window, lambda: self.chosen or self.config.hearing_id
        )

    async def _status_loop(self, api: CourtApi) -> None:
        """Every `status_every_s` (or at once when the roster changed): tell the court the
        station is here and how many backups wait; refresh the window's day."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._day_changed.wait(), self._status_every_s)
            self._day_changed.clear()
            if not api.cookies:
                continue
            try:
                await api.report_status(await self._pending_backups())
                await self._refresh_day(api)
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                log.info("status not sent now: %s", exc)

    async def _pending_backups(self) -> int:
        if self._backup_settings is None:
            return 0
        return len(await asyncio.to_thread(pending_uploads, self._backup_settings.root))

    async def _refresh_day(self, api: CourtApi) -> list[dict[str, Any]]:
        day = await api.station_hearings()
        if self.window is not None:
            self.window.show_day(day, self.chosen or self.config.hearing_id)
        return day

    async def _attest(self, api: CourtApi, participant_id: str, name: str, digits: str) -> None:
        """The director checked in person, at the station, the identity of someone present."""
        hearing_id = self.chosen or self.config.hearing_id
        window = self.window
        if hearing_id is None or window is None:
            return
        try:
            await api.check_identity(hearing_id, participant_id, name, digits, "in person")
        except (StationError, aiohttp.ClientError, OSError) as exc:
            window.attest_done(False, str(exc))
            return
        window.attest_done(True)
        self._day_changed.set()

    async def self_test(self, api: CourtApi) -> dict[str, Any]:
        """Run the scored self-test (station_client.selftest), show it, send it to the court."""
        async with self._self_testing:
            camera = self._tees["video"].track() if "video" in self._tees else None
            microphone = self._tees["audio"].track() if "audio" in self._tees else None
            try:
                result = await run_self_test(
                    camera=camera,
                    microphone=microphone,
                    speaker=self._speaker_output() if self._speaker_output else None,
                    ping=api.ping,
                    upload=api.upload_test,
                    expected_fps=self._expected_fps,
                )
            finally:
                for output in (camera, microphone):
                    if output is not None:
                        output.stop()
            if self.window is not None:
                self.window.self_test_result(result)
            try:
                await api.report_status(await self._pending_backups(), result)
            except (aiohttp.ClientError, OSError) as exc:
                log.warning("self-test result not sent now: %s", exc)
            self.self_tests.append(result)  # done: shown, and sent if the court was reachable
            return result

    def _show_hash(self, api: CourtApi, reason: CloseReason) -> bool:
        """At close, show the sealed recording's hash for the people present to confirm;
        returns whether the window now stays open for it."""
        if (
            not self._stay_open
            or self.window is None
            or reason is not CloseReason.JUDGE_ENDED
            or self.recording_hash is None
        ):
            return False
        hearing_id, sealed = self.recording_hash
        self.window.on_confirm_hash = lambda rid, root, confirmed: self._spawn(
            self._confirm_hash(api, hearing_id, rid, root, confirmed)
        )
        self.window.recording_hash(sealed.recording_id, sealed.root_hash)
        return True

    async def _confirm_hash(
        self, api: CourtApi, hearing_id: str, recording_id: str, root_hash: str, confirmed: bool
    ) -> None:
        try:
            matches: bool | None = await api.confirm_recording(
                hearing_id, recording_id, root_hash, confirmed
            )
        except (StationError, aiohttp.ClientError, OSError) as exc:
            log.warning("the confirmation was not sent: %s", exc)
            matches = None
        if matches is not None:
            self.hash_answers.append((confirmed, matches))
        if self.window is not None:
            self.window.hash_done(confirmed, matches)

    async def _watch_network(self, session: StationSession) -> None:
        """Score the line every few seconds from the media transport's own reports (round
        trip and loss the SFU reports back), shown in the window."""
        while True:
            await asyncio.sleep(NETWORK_EVERY_S)  # the measuring period
            pc = session.pc
            if pc is None:
                continue
            rtts, losses = [], []
            for stat in (await pc.getStats()).values():
                if isinstance(stat, RTCRemoteInboundRtpStreamStats):
                    rtts.append(stat.roundTripTime * 1000)
                    losses.append(stat.fractionLost)
            if not rtts:
                continue
            rtt, loss = max(rtts), max(losses)
            self.network_score = (
                "good"
                if rtt < 150 and loss < 0.02
                else "okay"
                if rtt < 400 and loss < 0.08
                else "bad"
            )
            self.picture_lowered = self._follow_line(session)
            if self.window is not None:
                self.window.network(self.network_score, rtt, loss, lowered=self.picture_lowered)

    def _follow_line(self, session: StationSession) -> bool:
        """Size the picture for the encoder's REMB-driven target (issue 14.6): the video gives
        way on a poor line, the sound does not. True while the picture is lowered."""
        video = self.line_video
        if video is None or session.pc is None:
            return False
        sender = next(
            (t.sender for t in session.pc.getTransceivers() if t.sender.track is video), None
        )
        return video.follow(encoder_target(sender)) if sender is not None else video.lowered

    async def _choose(self, api: CourtApi) -> str | None:
        """The hearing to join (see `choose_hearing`); the window shows the day meanwhile."""
        day = await self._refresh_day(api)
        ask = self._ask if self.window is not None else None
        choice = await choose_hearing(day, self.config, self.chosen, ask)
        if choice is not None:
            self.chosen = choice
            if self.window is not None:
                self.window.show_day(day, choice)
        return choice

    async def _ask(self, open_now: list[dict[str, Any]]) -> str | None:
        assert self.window is not None
        asking = asyncio.ensure_future(self.window.choose(open_now))
        left = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({asking, left}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            left.cancel()
        if not asking.done():
            asking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asking
            return None
        choice: str | None = asking.result()
        return choice

    async def _send_unless_left(self, api: CourtApi) -> None:
        """Send the backups now, unless the director leaves (the window's button, Ctrl-C, a
        shutdown): an upload is resumed file by file at the next chance."""
        sending = asyncio.ensure_future(self.send_backups(api))
        left = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({sending, left}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            left.cancel()
            if not sending.done():
                log.warning("leaving: the backups are sent next time")
                sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending

    async def send_backups(self, api: CourtApi) -> int:
        """Send the court every sealed backup it has not confirmed (this hearing's, and any an
        earlier run could not send); returns how many it took. Never raises: what cannot be
        sent now is sent next time."""
        if self._backup_settings is None:
            return 0
        result = await send_pending_backups(
            api, self.config, self._backup_settings.root, self._upload_progress
        )
        self.backups_sent += result.sent
        return result.sent

    def _upload_progress(self, fraction: float) -> None:
        if self.window is not None:
            self.window.backup_upload(fraction)

    async def _run(self, api: CourtApi) -> CloseReason:
        lost_since: datetime | None = None
        while True:
            joins = self.joins
            try:
                reason = await self._one_connection(api, lost_since)
            except NoHearingOpen:
                # Started before the court opened the hearing: look again now and then.
                if self.window is not None:
                    self.window.no_hearing_yet()
                if await self._wait_or_leave(self._poll_s):
                    return CloseReason.CLIENT_LEFT
                continue
            except (aiohttp.ClientError, OSError, SignalingError) as exc:
                log.warning("cannot reach the court: %s", exc)
                reason = CloseReason.NETWORK_LOST
            if self.joins > joins:
                lost_since = None  # it was back in, and reported the last outage
            if self._stop.is_set():
                return CloseReason.CLIENT_LEFT
            if reason not in RECOVERABLE:
                if self.window is not None:
                    self.window.ended()
                return reason
            if reason in NETWORK_TROUBLE:
                lost_since = lost_since or datetime.now(UTC)
            if self.window is not None:
                self.window.reconnecting()
            delay = self._backoff.next_delay()
            log.warning("connection lost (%s); joining again in %.1f s", reason, delay)
            if await self._wait_or_leave(delay):
                return CloseReason.CLIENT_LEFT

    async def _wait_or_leave(self, seconds: float) -> bool:
        """Wait `seconds` (a back-off or a poll period), or less if the station leaves;
        returns whether it left."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    async def _one_connection(self, api: CourtApi, lost_since: datetime | None) -> CloseReason:
        # Rejoining keeps the session it has (a line that drops often must not lock the
        # station out by logging in each time); a new login only when the court ended it.
        cookies = (
            api.cookies if await api.session_alive() else await station_login(api, self.config)
        )
        if self._self_test_first and not self.self_tests:
            await self.self_test(api)  # before the hearing: the court sees the result
        hearing_id = await self._choose(api)
        if hearing_id is None:  # the director left instead of choosing
            self._stop.set()
            return CloseReason.CLIENT_LEFT
        backup = await self._backup_for(api, hearing_id)
        outputs = {kind: tee.track() for kind, tee in self._tees.items()}

        def on_event(message: m.Message) -> None:
            if isinstance(message, m.RecordingHash):
                self.recording_hash = (hearing_id, message)
            elif isinstance(message, m.Roster):
                self._day_changed.set()  # who is here, whose identity is checked
            elif isinstance(message, m.RecordChanged) and self.record_signing is not None:
                self.record_signing.changed(message)
            if self.window is not None:
                self.window.on_event(message)
            if backup is not None:
                backup.on_event(message)

        video = outputs.get("video")
        self.line_video = LineAdaptiveVideo(video) if video is not None else None
        session = StationSession(
            SignalingClient(self.config.ws_url, cookies=cookies),
            video=self.line_video,
            audio=outputs.get("audio"),
            on_video=self.window.show_frame if self.window is not None else None,
            speaker=self._speaker,
            on_event=on_event,
        )
        self.session = session
        try:
            await session.signaling.connect()
            welcome = await session.join(hearing_id)
            self.joins += 1
            self._backoff.reset()
            log.info("joined hearing %s as %s", hearing_id, welcome.participant_id)
            if self.window is not None:
                self.window.joined(welcome)
            if backup is not None:
                backup.joined(welcome)
            if lost_since is not None:
                self._untold.insert(
                    0,
                    m.StationReport(
                        cause=StationCause.NETWORK,
                        detail="connection lost; the station joined again",
                        since=lost_since,
                    ),
                )
            await self._tell_court(session)
            watching = asyncio.ensure_future(self._watch_network(session))
            self._background.add(watching)
            watching.add_done_callback(self._background.discard)
            closed = asyncio.ensure_future(session.signaling.wait_closed())
            stop = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({closed, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                watching.cancel()
            if self._stop.is_set():
                closed.cancel()
                await session.close(leave=True)
                return CloseReason.CLIENT_LEFT
            return (await closed) or CloseReason.NETWORK_LOST
        finally:
            await session.close(leave=False)
            for output in outputs.values():
                output.stop()
            if backup is not None:
                backup.connection_lost()

    async def _backup_for(self, api: CourtApi, hearing_id: str) -> BackupController | None:
        """The backup controller for `hearing_id` (a new one when the hearing changed)."""
        settings = self._backup_settings
        if settings is None:
            return None
        if self.backup is not None and self.backup.hearing_id == hearing_id:
            return self.backup
        if self.backup is not None:
            await self.backup.finish()
            self._detach_backup(self.backup.backup)
        backup = StationBackup(
            settings.root,
            settings.signing_key,
            fps=settings.fps,
            bitrate=settings.bitrate,
            on_failure=self._backup_failed,
            on_state=self._backup_state,
        )

        async def register(
            recording_id: RecordingId, verify_key_pem: str
        ) -> list[ArchivePublicKey]:
            return await api.register_backup(hearing_id, recording_id, verify_key_pem)

        self.backup = BackupController(
            backup,
            register,
            hearing_id=hearing_id,
            video="video" in self._tees,
            audio="audio" in self._tees,
        )
        if "video" in self._tees:
            self._tees["video"].add_sink(backup.offer_video)
        if "audio" in self._tees:
            self._tees["audio"].add_sink(backup.offer_audio)
        return self.backup

    def _detach_backup(self, backup: StationBackup) -> None:
        if "video" in self._tees:
            self._tees["video"].remove_sink(backup.offer_video)
        if "audio" in self._tees:
            self._tees["audio"].remove_sink(backup.offer_audio)

    def _backup_state(self, state: BackupState) -> None:
        if self.window is not None:
            self.window.backup_state(state.value)

    def _backup_failed(self, message: str) -> None:
        if self.window is not None:
            self.window.backup_failed(message)
        # The court must know at the time that the station's own record stopped.
        self._untold.append(
            m.StationReport(
                cause=StationCause.OTHER,
                detail=f"the station's backup recording failed: {message}"[:500],
                since=datetime.now(UTC),
            )
        )
        if self.session is not None and self.session.welcome is not None:
            task = asyncio.ensure_future(self._tell_court(self.session))
            self._telling.add(task)
            task.add_done_callback(self._telling.discard)

    async def _tell_court(self, session: StationSession) -> None:
        """Send the reports not yet told, in order, once each (they wait for the next join if
        the line fails meanwhile)."""
        async with self._telling_lock:
            while self._untold:
                report = self._untold[0]
                try:
                    await session.signaling.request(report)
                except (SignalingError, aiohttp.ClientError, OSError) as exc:
                    log.warning("report not sent now (%s); sent after the next join", exc)
                    return
                self._untold.pop(0)
                self.reports.append(report)
