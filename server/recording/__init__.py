"""The recording bridge: from the SFU's forwarded packets to a sealed evidence package.

ARCHITECTURE 4.4: recordings remux the forwarded packets (VP8 + Opus into one WebM per
participant), never re-encode, and are written as sealed evidence packages by `recordings/`.
This package is the server side of that: `depacketize.py` turns RTP packets into frames,
`recorder.py` (`HearingRecorder`) taps a hearing's producers and drives one
`AsyncRecordingWriter`, `recovery.py` seals what a crash left unfinished.

Where it runs: in the SFU worker process that hosts the hearing (the packets are there). The
main process drives it through the hearing's `RouterHandle` (server/worker):
`start_recording` / `pause_recording` / `resume_recording` / `stop_recording` /
`set_recorded`, and hears failures as the pool's "recordingerror" event.

Lifecycle of a hearing's recording (the hearing service wires these to its state machine):

* started when the hearing goes in_session (`start_recording`): every producer of the
  hearing present then, and every later one, is recorded;
* paused with RECESS on recess (`pause_recording(PauseReason.RECESS)`); NON_PUBLIC_EVIDENCE and
  MEDIATION_OFF_RECORD are the other lawful reasons (SPC 法释〔2017〕5号 Art. 3), any other
  reason is refused; media during a pause is not in the package, the pause and its reason are
  in the signed timeline;
* resumed on resume (`resume_recording`), each video restarting at a requested keyframe;
* sealed on close (`stop_recording` -> recording id, root hash, package path);
* a participant's join/leave adds/removes their tracks (timeline: participant_joined /
  participant_left with the SFU close reason);
* a participant moved to a private caucus room is NOT recorded while there (caucus is off the
  record, OMR 18): call `set_recorded(h, participant, False)` when they enter it and `True`
  when they come back (call it before `set_room` into the caucus and after `set_room` back, so
  no frame of the move is recorded); `start_recording(..., not_recorded=[...])` names those in
  a caucus when recording starts; the same switch serves any other room kept off the record
  (the waiting room, if its participants publish);
* a failure (disk full, I/O error) stops the recording and emits "recordingerror" at once
  (within one tick, ~1 s) so the judge can be alerted; a dead worker emits "recordingerror"
  with code WORKER_DIED; `recover_unfinished()` at the next start-up seals what was left.
"""

from .depacketize import AudioFrame, OpusDepacketizer, VideoFrame, Vp8Depacketizer, parse_rtp
from .recorder import (
    ERROR_DISK_FULL,
    ERROR_FAILED,
    ERROR_IO,
    HearingRecorder,
    SealedRecording,
    error_code,
    load_keys,
)
from .recovery import recover_unfinished

__all__ = [
    "ERROR_DISK_FULL",
    "ERROR_FAILED",
    "ERROR_IO",
    "AudioFrame",
    "HearingRecorder",
    "OpusDepacketizer",
    "SealedRecording",
    "VideoFrame",
    "Vp8Depacketizer",
    "error_code",
    "load_keys",
    "parse_rtp",
    "recover_unfinished",
]
