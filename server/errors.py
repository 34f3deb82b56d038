"""The server's error taxonomy: one exception type with a machine code.

Services raise ``CourtError(code, message)``; the web middleware maps it to an HTTP status and
``{"type": "error", "code": ..., "message": ...}``; the WebSocket dispatcher sends the same
shape with the request's ``transaction``. Anything else that escapes is logged and becomes an
opaque ``INTERNAL``.
"""

from __future__ import annotations

from typing import Any

# One taxonomy for REST and signaling: the protocol package defines it (docs/signaling.md 6).
from signaling.errors import ErrorCode

__all__ = ["HTTP_STATUS", "CourtError", "ErrorCode", "not_found"]


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_JSON: 400,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNKNOWN_FIELD: 400,
    ErrorCode.BAD_FIELD: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.BAD_CREDENTIALS: 401,
    ErrorCode.LOCKED_OUT: 429,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CSRF_FAILED: 403,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_INVITATION: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.WRONG_STATE: 409,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNSUPPORTED_VERSION: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.MISSING_FIELD: 400,
    ErrorCode.TEXT_CHANGED: 409,
    ErrorCode.CODE_INVALID: 403,
    ErrorCode.CODE_USED: 403,
    ErrorCode.NOT_YOUR_SIGNATURE: 403,
    ErrorCode.RECORD_FINALISED: 409,
}


class CourtError(Exception):
    """A request failed for a reason the caller may be told about."""

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "error", "code": self.code.value, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


def not_found(what: str = "resource") -> CourtError:
    """The one answer for 'does not exist' and 'exists but not yours': they must look the same."""
    return CourtError(ErrorCode.NOT_FOUND, f"{what} not found")
