"""The Janus side-by-side bench (bench/janus_peer.py, issue 18.1) runs both SFUs for real.

Smoke mode: our worker and a private Janus VideoRoom, both in the `scjsrv` network namespace,
each forwarding the clip to 5 counting subscribers. Asserts that both delivered (about) every
packet to every subscriber and that the JSON carries the figures docs/benchmarks.md quotes;
then that the namespace and Janus are gone.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "janus_peer.py"


def _janus_processes() -> list[str]:
    done = subprocess.run(["pgrep", "-x", "janus"], capture_output=True, text=True, check=False)
    return done.stdout.split()


@pytest.mark.timeout(90)
def test_janus_peer_smoke_json() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the Janus bench needs root and iproute2 (network namespace)", pytrace=False)
    if shutil.which("janus") is None:
        pytest.fail("Debian's janus package is missing: `make venv` installs it", pytrace=False)
    before = _janus_processes()
    done = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--json"],
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout  # exactly one JSON object on stdout
    result = json.loads(lines[0])
    assert result["janus_version"] == "1.1.2"
    assert result["janus_event_loops"] == os.cpu_count()
    assert 0.5 < result["clip_mbps"] < 2
    [row] = result["by_n"]
    assert row["subscribers"] == 5
    for sfu in ("ours", "janus"):
        figures = row[sfu]
        # every subscriber got the stream: ~107 packets/s each (RTCP adds ~1 %)
        assert 0.97 <= figures["delivery_ratio"] <= 1.03, (sfu, figures)
        assert 90 < figures["publisher_pps"] < 130, (sfu, figures)
        assert 0 < figures["cpu_per_stream"] < 0.2, (sfu, figures)  # CPU-s per stream-second
        assert figures["seconds"] >= 2.5
        assert 0 <= figures["proc_kernel_share"] <= 1
        assert set(figures["drops"]) == {"udp_rcvbuf_errors", "veth_rx_dropped", "softnet_dropped"}
    # our worker's own process_time() and its /proc utime+stime agree (same ruler as Janus's)
    ours = row["ours"]
    assert ours["proc_cpu_per_stream"] == pytest.approx(ours["cpu_per_stream"], rel=0.5, abs=2e-3)
    assert isinstance(row["valid"], bool)
    ratio = row["janus_cpu_over_ours"]
    assert math.isfinite(ratio)
    assert ratio == pytest.approx(row["janus"]["cpu_per_stream"] / ours["cpu_per_stream"], rel=0.01)
    assert result["janus_cpu_over_ours"] == {"5": ratio}
    assert result["target_janus_1_5x_ours_met"] is None  # judged at N = 100 and 200 only
    # clean-up: no namespace, no veth, no Janus left behind
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "scjsrv" not in namespaces
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "scjh" not in links
    assert _janus_processes() == before
