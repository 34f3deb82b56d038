"""Prometheus metrics of one node (issue 16.7; docs/reliability.md, "Metrics").

`collect()` takes a snapshot, on request only: the live signaling connections (hearings and
participants connected now) from the web layer, and each SFU worker's figures over its pipe
(`worker.stats`: CPU seconds, hearings, peers, forwarded and received packets and bytes,
recording drops, write latency and failures, and the line adaptation's paused video streams,
read with a default of 0 so that a worker without adaptation reports 0). `render()` turns a
snapshot into the Prometheus text format with the maintained `prometheus-client` library, in a
registry of its own per call (no process-global state, so several apps in one test process do
not collide).

Counters only grow over a worker's life (server/worker/counters.py); a worker that died and was
replaced starts again from 0, which Prometheus's `rate()` treats as a counter reset.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.worker import WorkerPool

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WORKER_TIMEOUT_S = 2.0  # a stuck worker must not hang the scrape

# worker.stats key -> (metric name, help); counters, per worker.
WORKER_COUNTERS = {
    "forwarded_packets": ("shared_court_forwarded_packets", "RTP packets forwarded to subscribers"),
    "forwarded_bytes": ("shared_court_forwarded_bytes", "RTP payload bytes forwarded"),
    "retransmitted_packets": ("shared_court_retransmitted_packets", "RTX packets resent on NACK"),
    "received_packets": ("shared_court_received_packets", "RTP packets received from publishers"),
    "received_bytes": ("shared_court_received_bytes", "RTP bytes received from publishers"),
    "recording_dropped_frames": (
        "shared_court_recording_dropped_frames",
        "frames not recorded (waiting for a keyframe, writer backlog)",
    ),
    "recording_lost_frames": (
        "shared_court_recording_lost_frames",
        "video frames incomplete in the recording (packets lost on the way in)",
    ),
    "recording_late_packets": (
        "shared_court_recording_late_packets",
        "packets that came too late for the recording's reorder window",
    ),
    "recording_failures": ("shared_court_recording_failures", "recordings that failed"),
    "recording_writes": ("shared_court_recording_writes", "periodic recording flushes"),
}


@dataclass(frozen=True)
class Snapshot:
    hearings: int  # hearings with at least one connected participant on this node
    participants: int  # connected participants (signaling connections joined to a hearing)
    sockets: int  # open signaling WebSockets, joined or not
    workers: list[dict[str, Any]] = field(default_factory=list)  # worker.stats replies


async def _worker_stats(pool: WorkerPool) -> list[dict[str, Any]]:
    found = []
    for index, worker in enumerate(list(pool.workers)):
        if not worker.alive:
            continue
        try:
            stats = await asyncio.wait_for(pool.stats(index), WORKER_TIMEOUT_S)
        except Exception as exc:  # a worker dying meanwhile: reported as missing, not an error
            log.warning("metrics: worker %d did not answer: %r", index, exc)
            continue
        found.append({"index": index, **stats})
    return found


async def collect(
    pool: WorkerPool | None, joined: Iterable[tuple[str, str]], sockets: int
) -> Snapshot:
    """A snapshot: `joined` holds (hearing id, participant id) of each joined connection."""
    pairs = list(joined)
    return Snapshot(
        hearings=len({h for h, _ in pairs}),
        participants=len(pairs),
        sockets=sockets,
        workers=await _worker_stats(pool) if pool is not None else [],
    )


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self._s = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self._s
        yield GaugeMetricFamily(
            "shared_court_hearings", "hearings with someone connected", value=s.hearings
        )
        yield GaugeMetricFamily(
            "shared_court_participants", "participants connected to a hearing", value=s.participants
        )
        yield GaugeMetricFamily(
            "shared_court_signaling_sockets", "open signaling WebSockets", value=s.sockets
        )
        gauges = {
            "routers": GaugeMetricFamily(
                "shared_court_worker_hearings", "hearings placed on the worker", labels=["worker"]
            ),
            "peers": GaugeMetricFamily(
                "shared_court_worker_peers", "media peers on the worker", labels=["worker"]
            ),
            "recordings": GaugeMetricFamily(
                "shared_court_recordings", "recordings being written", labels=["worker"]
            ),
            "paused_video_streams": GaugeMetricFamily(
                "shared_court_paused_video_streams",
                "video streams paused for subscribers whose line cannot carry them (adaptation)",
                labels=["worker"],
            ),
            "recording_write_max_s": GaugeMetricFamily(
                "shared_court_recording_write_max_seconds",
                "longest recording flush of the recordings being written",
                labels=["worker"],
            ),
        }
        cpu = CounterMetricFamily(
            "shared_court_worker_cpu_seconds", "CPU seconds used by the worker", labels=["worker"]
        )
        latency = CounterMetricFamily(
            "shared_court_recording_write_seconds",
            "time spent in recording flushes (divide by _writes for the mean)",
            labels=["worker"],
        )
        counters = {
            key: CounterMetricFamily(name, text, labels=["worker"])
            for key, (name, text) in WORKER_COUNTERS.items()
        }
        for w in s.workers:
            label = [str(w["index"])]
            cpu.add_metric(label, float(w.get("cpu", 0.0)))
            latency.add_metric(label, int(w.get("recording_write_us", 0)) / 1e6)
            for key, gauge in gauges.items():
                gauge.add_metric(label, float(w.get(key, 0) or 0))
            for key, counter in counters.items():
                counter.add_metric(label, float(w.get(key, 0) or 0))
        yield cpu
        yield latency
        yield from gauges.values()
        yield from counters.values()


def render(snapshot: Snapshot) -> bytes:
    """The Prometheus text exposition of `snapshot`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry)
