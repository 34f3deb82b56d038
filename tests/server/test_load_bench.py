"""The load benchmarks run and report what they promise (keys, and a smoke hearing at full
rate: the generator processes, the frame counting and the server all work together)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(script: str, limit: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke", "--json"],
        capture_output=True,
        text=True,
        timeout=limit,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout  # exactly one JSON object on stdout
    result: dict[str, Any] = json.loads(lines[0])
    return result


@pytest.mark.timeout(100)
def test_load_smoke_json() -> None:
    result = _run("load.py", 90)
    for key in (
        "cpu_per_participant",
        "generator_cpu_per_participant",
        "rss_mb_per_participant",
        "ws_latency_ms_p99",
    ):
        assert isinstance(result[key], int | float), key
    assert result["hearings_at_full_rate"] == 2  # both steps: every stream >= 95 % of frames
    assert result["ws_sessions"] == 50
    assert result["recording"] is True
    steps = result["steps"]
    assert [s["generator_procs"] for s in steps] == [1, 2]
    for step in steps:
        assert step["recordings"] == step["hearings"]  # recording on, as the target says
        assert step["paused_video_streams"] == 0  # full rate not faked by paused video
        assert 0.9 < step["min_publisher_rate"] <= 1.05  # the generator was not starved
        assert step["min_delivery"] <= 1.05  # frames, not packets: no retransmission surplus
    first = steps[0]["first_hearing"]
    assert len(first) == 4
    assert all(len(p["frames"]["video"]) == 3 for p in first)  # three others' video each
    assert all(len(p["frames"]["audio"]) == 3 for p in first)


@pytest.mark.timeout(100)
def test_hearing_mix_smoke_json() -> None:
    result = _run("hearing_mix.py", 90)
    assert result["audio_streams_per_core"] > 1
    assert result["hearings_per_core"] > 0
    assert result["audio"][0]["delivery_ratio"] >= 0.98
    mix = result["mix"]
    assert mix[0]["min_delivery"] >= 0.95
    assert mix[0]["worker_cpu_fraction"] > 0
