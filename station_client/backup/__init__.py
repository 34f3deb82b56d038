"""The station's local backup recording: its own camera and microphone, sealed on its own disk.

Why: the court's evidence recording is made on the server from what reaches it. When a
village line drops, the station's side of the hearing is missing there, and that is the side
an appeal court may most need (who said what in the village office). So the station records
its own picture and sound too, continuously, into the same sealed evidence package as the
court's, signed by a key only this station holds, and the court is told of it before the
first frame.

One concept per module:

* ``encoder``: ``BackupEncoder``, the backup's own VP8/Opus encoders at a steady quality, and
  ``private_copy`` of the frames it shares with the live connection.
* ``package``: ``StationBackup``, the sealed evidence package on the station's disk (written on
  one thread, crash-safe), the station's signing key, and ``recover_unfinished``.
* ``controller``: ``BackupController``, which keeps the backup in step with what the court
  tells the station (on the record or not, paused and why, sealed at the close).
"""

from .controller import BackupController
from .encoder import BackupEncoder, private_copy
from .package import (
    BackupState,
    StationBackup,
    load_or_create_signing_key,
    recover_unfinished,
    verify_key_pem,
)

__all__ = [
    "BackupController",
    "BackupEncoder",
    "BackupState",
    "StationBackup",
    "load_or_create_signing_key",
    "private_copy",
    "recover_unfinished",
    "verify_key_pem",
]
