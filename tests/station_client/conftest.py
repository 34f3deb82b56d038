"""Audio and camera without hardware (notes/station-hardware-research.md, recipe A).

``alsa_files`` points ALSA — and so PortAudio and PyAudio — at a private configuration in the
test's temporary directory (``ALSA_CONFIG_PATH`` replaces the system alsa.conf for this
process only; nothing global is touched) with ``file`` PCMs:

* ``mic`` reads a raw s16le mono 48 kHz file: every 20 ms block k (k = 1, 2, ...) holds the
  sample value k, so a test can tell exactly which block a frame came from; after the file the
  plugin returns silence (0) and does not loop. It is not paced: it reads ~1000x real time.
* ``speaker`` writes a WAV file, so the bytes played can be compared with the bytes sent.

``pulse_audio`` (recipe B) starts one private PulseAudio daemon for the session (its own
socket, runtime and state directories under the session's temporary directory) with clocked
null sinks: ``mic`` is fed by ``pacat`` and paced in real time, ``spk.monitor`` is recorded by
``parec``. PortAudio reaches it through the ALSA ``pulse`` plugin. Used where timing matters.

Debian packages: libasound2 and libportaudio2 (PyAudio builds against portaudio19-dev); the
``file`` and ``null`` PCMs are built into libasound2. Recipe B also needs pulseaudio,
pulseaudio-utils (pacat, parec, pactl) and libasound2-plugins (the ALSA ``pulse`` PCM).
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SAMPLES_PER_BLOCK = 960


@dataclass(frozen=True)
class AlsaFiles:
    config: Path
    mic_input: Path
    speaker_output: Path
    blocks: int

    def block(self, k: int) -> bytes:
        return struct.pack("<h", k) * SAMPLES_PER_BLOCK


def _write_pattern(path: Path, blocks: int) -> None:
    with path.open("wb") as out:
        for k in range(1, blocks + 1):
            out.write(struct.pack("<h", k) * SAMPLES_PER_BLOCK)


@pytest.fixture
def alsa_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AlsaFiles:
    blocks = 3000  # 60 s of audio, ~5.8 MB
    mic_input = tmp_path / "mic_in.raw"
    _write_pattern(mic_input, blocks)
    speaker_output = tmp_path / "speaker_out.wav"
    config = tmp_path / "asound.conf"
    config.write_text(
        f"""
pcm.mic_file {{
    type file
    slave.pcm {{ type null }}
    file "/dev/null"
    infile "{mic_input}"
    format "raw"
}}
pcm.mic {{ type plug slave {{ pcm "mic_file" format S16_LE rate 48000 channels 1 }} }}
pcm.speaker_file {{
    type file
    slave.pcm {{ type null }}
    file "{speaker_output}"
    format "wav"
}}
pcm.speaker {{ type plug slave {{ pcm "speaker_file" format S16_LE rate 48000 channels 1 }} }}
pcm.!default {{ type asym playback.pcm "speaker" capture.pcm "mic" }}
"""
    )
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.asoundrc of the machine's user
    return AlsaFiles(config, mic_input, speaker_output, blocks)


# -- recipe B: a private PulseAudio with clocked null sinks, for tests where timing matters -----


@dataclass(frozen=True)
class PulseServer:
    directory: Path
    socket: Path
    speaker_capture: Path  # what reached the speaker (parec of spk.monitor), raw s16le mono

    @property
    def server(self) -> str:
        return f"unix:{self.socket}"

    def alsa_config(self, path: Path) -> Path:
        path.write_text(
            f"""
pcm.!default {{ type pulse server "{self.server}" }}
ctl.!default {{ type pulse server "{self.server}" }}
pcm.mic {{ type pulse server "{self.server}" device "mic" }}
pcm.speaker {{ type pulse server "{self.server}" device "spk" }}
"""
        )
        return path

    def feeder(self, raw_file: Path) -> subprocess.Popen[bytes]:
        """Play a raw s16le mono 48 kHz file into the microphone (paced by PulseAudio)."""
        return subprocess.Popen(
            [
                "pacat",
                "--playback",
                f"--server={self.server}",
                "--device=micfeed",
                *RAW,
                str(raw_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


RAW = ["--raw", "--rate=48000", "--channels=1", "--format=s16le", "--latency-msec=20"]


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def pulse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    for tool in ("pulseaudio", "pacat", "parec", "pactl"):
        if shutil.which(tool) is None:
            pytest.fail(
                f"{tool} not found: the station audio timing tests need Debian's pulseaudio and "
                "pulseaudio-utils (`make test` installs them)",
                pytrace=False,
            )
    d = tmp_path_factory.mktemp("pulse")
    sock = d / "native"
    script = d / "station_test.pa"
    script.write_text(
        f"""
load-module module-native-protocol-unix socket={sock} auth-anonymous=1
load-module module-null-sink sink_name=spk rate=48000 channels=1
load-module module-null-sink sink_name=micfeed rate=48000 channels=1
load-module module-remap-source source_name=mic master=micfeed.monitor
set-default-sink spk
set-default-source mic
"""
    )
    env = {
        **os.environ,
        "HOME": str(d),
        "PULSE_RUNTIME_PATH": str(d / "run"),
        "PULSE_STATE_PATH": str(d / "state"),
    }
    daemon = subprocess.Popen(
        [
            "pulseaudio",
            "-n",
            "-F",
            str(script),
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            f"--log-target=file:{d / 'log'}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    helpers: list[subprocess.Popen[bytes]] = [daemon]
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(
            ["pactl", f"--server=unix:{sock}", "info"], capture_output=True, check=False
        ).returncode:
            if daemon.poll() is not None or time.monotonic() > deadline:
                log = (d / "log").read_text() if (d / "log").exists() else ""
                pytest.fail(f"PulseAudio did not start:\n{log}", pytrace=False)
            time.sleep(0.1)
        server = PulseServer(d, sock, d / "speaker_capture.raw")
        # Keep-alive clients: without a low-latency client a null sink runs in ~2 s blocks
        # (research: the first capture callback came ~1.95 s late). The recorder doubles as
        # the speaker check.
        helpers.append(server.feeder(Path("/dev/zero")))
        with server.speaker_capture.open("wb") as capture:
            helpers.append(
                subprocess.Popen(
                    ["parec", f"--server={server.server}", "--device=spk.monitor", *RAW],
                    stdout=capture,
                    stderr=subprocess.DEVNULL,
                )
            )
        yield server
    finally:
        for proc in reversed(helpers):
            stop_process(proc)


@pytest.fixture
def pulse_audio(
    pulse_server: PulseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> PulseServer:
    """PortAudio -> ALSA `pulse` PCMs `mic`/`speaker` on the private PulseAudio server."""
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(pulse_server.alsa_config(tmp_path / "asound.conf")))
    monkeypatch.setenv("PULSE_SERVER", pulse_server.server)
    monkeypatch.setenv("HOME", str(tmp_path))
    return pulse_server


def tone(seconds: float, *, amplitude: int = 8000, hz: float = 440.0) -> bytes:
    n = int(48_000 * seconds)
    return b"".join(
        struct.pack("<h", int(amplitude * math.sin(2 * math.pi * hz * i / 48_000)))
        for i in range(n)
    )


def rms(pcm: bytes) -> float:
    count = len(pcm) // 2
    if count == 0:
        return 0.0
    samples = struct.unpack(f"<{count}h", pcm[: count * 2])
    return math.sqrt(sum(s * s for s in samples) / count)
