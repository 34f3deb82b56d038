"""ffprobe, the one way the suite looks inside a media file (recordings, exports, backups)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any


def probe(path: Path, *options: str) -> dict[str, Any]:
    """ffprobe's JSON of `path`: its streams and format, plus whatever `options` ask for.
    Fails the test plainly if ffprobe is missing (`make test` installs Debian's ffmpeg)."""
    ffprobe = shutil.which("ffprobe")
    assert ffprobe is not None, "ffprobe is required (Debian package ffmpeg)"
    out = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            *options,
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result
