"""The forwarding benchmark runs and reports sane figures (keys and sanity, not the targets)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "sfu_forwarding.py"


@pytest.mark.timeout(150)
def test_bench_smoke_json() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--json"],
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout  # exactly one JSON object on stdout
    result = json.loads(lines[0])
    for key in (
        "streams_per_core",
        "added_latency_ms_p50",
        "added_latency_ms_p95",
        "reencode_cost_ratio",
        "two_worker_scaling",
    ):
        assert isinstance(result[key], int | float), key
        assert math.isfinite(result[key]), key
    assert result["streams_per_core"] > 1
    assert result["full_frame_rate"] is True
    assert result["latency_samples"] > 50
    assert 0 <= result["added_latency_ms_p50"] <= result["added_latency_ms_p95"] < 1000
    assert result["reencode_cost_ratio"] > 1  # decode + re-encode costs more than forwarding
    assert 0.5 < result["two_worker_scaling"] < 3
    assert 0.5 < result["clip_mbps"] < 2
