"""Exception types of the evidence container.

Every failure a caller may want to react to has its own type, and every integrity failure says
*where* it is (file, segment, record index, byte offset) because a court report must point at the
damaged place, not just say "invalid".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in a package something is: any field may be unknown (None)."""

    file: str | None = None
    segment: int | None = None
    record: int | None = None
    offset: int | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            parts.append(self.file)
        if self.segment is not None:
            parts.append(f"segment {self.segment}")
        if self.record is not None:
            parts.append(f"record {self.record}")
        if self.offset is not None:
            parts.append(f"byte offset {self.offset}")
        return ", ".join(parts) if parts else "package"


class RecordingError(Exception):
    """Base class of everything `recordings` raises on purpose."""


class FormatError(RecordingError):
    """A persisted structure cannot be parsed: bad magic, unknown version, bad framing."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.location = location or Location()
        super().__init__(f"{self.location}: {message}")


class UnsupportedVersionError(FormatError):
    """A structure carries a version tag this implementation does not know; refused."""


class IntegrityError(RecordingError):
    """Authenticated content does not match: tampering, reordering, truncation, bad signature."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.location = location or Location()
        super().__init__(f"{self.location}: {message}")


class KeyFileError(RecordingError):
    """A key file cannot be read, has the wrong type, or does not fit the recording."""


class RecordingStateError(RecordingError):
    """The writer was asked something its state forbids (feeding after seal, resume unpaused)."""


class RecordingIOError(RecordingError):
    """Writing the package failed; the writer is unusable afterwards."""


class DiskFullError(RecordingIOError):
    """ENOSPC while writing evidence. The server must alert the judge at once.

    When raised, the writer has truncated the torn record and tried to seal the package with a
    signed disk-full incident; `sealed` says whether that worked (if not, `recover()` at the next
    start-up seals it).
    """

    def __init__(self, message: str, *, sealed: bool) -> None:
        self.sealed = sealed
        super().__init__(message)


class InvalidReasonError(RecordingError, ValueError):
    """A pause was requested without a reason from the fixed set."""
