"""What an SFU worker counts for the metrics endpoint (issue 16.7, server/metrics.py): packets
and bytes forwarded and received, recording drops, write latency and failures.

The figures live on objects that come and go (a consumer closes with its subscriber, a recorder
with its recording); Prometheus counters must only grow over a worker's life. So each call sums
the live objects and adds what the objects seen at the previous call but gone since had counted
then ("retired"): a stream's last fraction of a second before it closed may be missing, a count
never goes down. Read by ``WorkerProcess.stats`` on request only, never on the packet path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class _Hosted(Protocol):
    router: Any
    recorder: Any


@dataclass
class _Totals:
    """Monotonic sums over objects identified by a key, live or retired."""

    retired: dict[str, int] = field(default_factory=dict)
    last: dict[str, dict[str, int]] = field(default_factory=dict)

    def update(self, live: dict[str, dict[str, int]]) -> dict[str, int]:
        for key, figures in self.last.items():
            if key not in live:
                for name, value in figures.items():
                    self.retired[name] = self.retired.get(name, 0) + value
        self.last = live
        totals = dict(self.retired)
        for figures in live.values():
            for name, value in figures.items():
                totals[name] = totals.get(name, 0) + value
        return totals


@dataclass
class WorkerCounters:
    """One per worker process; `collect(hearings)` answers the `worker.stats` request's share."""

    _streams: _Totals = field(default_factory=_Totals)
    _recordings: _Totals = field(default_factory=_Totals)
    _failed: set[str] = field(default_factory=set)

    def collect(self, hearings: Mapping[Any, _Hosted]) -> dict[str, Any]:
        streams: dict[str, dict[str, int]] = {}
        recordings: dict[str, dict[str, int]] = {}
        latency_max = 0.0
        for hosted in hearings.values():
            for peer in list(hosted.router.peers.values()):
                for consumer in list(peer.consumers.values()):
                    stream = consumer.stream
                    if stream is not None:
                        streams["c" + str(consumer.id)] = {
                            "forwarded_packets": stream.packets,
                            "forwarded_bytes": stream.octets,
                            "retransmitted_packets": stream.retransmitted,
                        }
                for producer in list(peer.producers.values()):
                    streams["p" + str(producer.id)] = {
                        "received_packets": producer.packets_received,
                        "received_bytes": producer.bytes_received,
                    }
            recorder = hosted.recorder
            if recorder is not None:
                dump = recorder.dump()
                tracks = [t for p in dump["participants"].values() for t in p["tracks"]]
                recordings[str(dump["recording_id"])] = {
                    "recording_dropped_frames": int(dump["writer_dropped_frames"])
                    + sum(int(t.get("dropped_frames", 0)) for t in tracks),
                    "recording_lost_frames": sum(int(t.get("lost_frames", 0)) for t in tracks),
                    "recording_late_packets": sum(int(t.get("late_packets", 0)) for t in tracks),
                    "recording_writes": recorder.tick_count,
                    "recording_write_us": int(recorder.tick_seconds * 1e6),
                }
                latency_max = max(latency_max, recorder.tick_max_s)
                if dump["failure"] is not None:
                    self._failed.add(str(dump["recording_id"]))
        return {
            **self._streams.update(streams),
            **self._recordings.update(recordings),
            "recording_failures": len(self._failed),
            "recording_write_max_s": latency_max,
            "recordings": len(recordings),
        }
