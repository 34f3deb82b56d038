"""Evidence recordings: remux, seal, verify and export court hearing recordings.

Standalone on purpose (imports nothing else of shared-court) so an auditor can verify a package
with this package alone. The format is specified in docs/recording-format.md.

Server-side entry points:
    RecordingWriter / AsyncRecordingWriter   record one hearing (writer.py, async_writer.py)
    recover(root, signing_key)               seal unfinished recordings at start-up
    verify_package(path, trusted_keys)       offline verification (exit codes 0/2/1/3)
    export_package(path, archive_key, out)   decrypt into playable WebM + timeline.json
    cli.main(argv)                           `python -m recordings ...`
"""

from .async_writer import AsyncRecordingWriter
from .clock import Clock, SystemClock
from .errors import (
    DiskFullError,
    FormatError,
    IntegrityError,
    InvalidReasonError,
    KeyFileError,
    Location,
    RecordingError,
    RecordingIOError,
    RecordingStateError,
    UnsupportedVersionError,
)
from .export import ExportedStream, ExportResult, export_package
from .ids import ParticipantId, RecordingId
from .keys import (
    ArchivePrivateKey,
    ArchivePublicKey,
    KeyProvider,
    SigningKey,
    StaticKeyProvider,
    VerifyKey,
    keygen,
    load_archive_private_key,
    load_archive_public_key,
    load_signing_key,
    load_verify_key,
)
from .recovery import RecoveryResult, find_unfinished, recover, recover_recording
from .timeline import EventType, IncidentCause, PauseReason
from .verify import Report, verify_package
from .writer import RecordingWriter, WriterConfig, create_writer

__all__ = [
    "ArchivePrivateKey",
    "ArchivePublicKey",
    "AsyncRecordingWriter",
    "Clock",
    "DiskFullError",
    "EventType",
    "ExportResult",
    "ExportedStream",
    "FormatError",
    "IncidentCause",
    "IntegrityError",
    "InvalidReasonError",
    "KeyFileError",
    "KeyProvider",
    "Location",
    "ParticipantId",
    "PauseReason",
    "RecordingError",
    "RecordingIOError",
    "RecordingId",
    "RecordingStateError",
    "RecordingWriter",
    "RecoveryResult",
    "Report",
    "SigningKey",
    "StaticKeyProvider",
    "SystemClock",
    "UnsupportedVersionError",
    "VerifyKey",
    "WriterConfig",
    "create_writer",
    "export_package",
    "find_unfinished",
    "keygen",
    "load_archive_private_key",
    "load_archive_public_key",
    "load_signing_key",
    "load_verify_key",
    "recover",
    "recover_recording",
    "verify_package",
]
