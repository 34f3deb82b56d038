"""The signaling error taxonomy: one exception type with a machine code.

Every failure the protocol can report has a stable code (STYLE 10, after Synapse's ``Codes``
and Janus's numbered errors). The codec raises ``SignalingError`` for anything it rejects; the
server's WebSocket dispatcher turns it, and its own refusals, into one wire shape::

    {"v": 1, "type": "error", "code": "BAD_FIELD", "message": "...", "transaction": "t1"}

and the Python client raises the same codes back as typed exceptions (``RequestError``).
The server's REST API uses the same enum (``server/errors.py``), so a code means the same thing
on both surfaces; the few codes only HTTP has are marked, and never sent on the wire. Anything
unexpected on the server is logged there and sent as an opaque ``INTERNAL``.

``TIMEOUT`` and ``CLOSED`` are local to a client (a reply never came; the connection ended);
the server never sends them.
"""

from __future__ import annotations

from enum import StrEnum

from signaling.reasons import CloseReason


class ErrorCode(StrEnum):
    # -- the codec: the message itself is unacceptable ------------------------------------
    BAD_JSON = "BAD_JSON"  # not UTF-8 JSON (or NaN/Infinity, duplicate keys, too deep)
    BAD_REQUEST = "BAD_REQUEST"  # valid JSON but not a JSON object
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"  # `v` is an integer this side does not speak
    UNKNOWN_TYPE = "UNKNOWN_TYPE"  # `type` is not a message this sender may send
    UNKNOWN_FIELD = "UNKNOWN_FIELD"  # a field the message type does not have
    MISSING_FIELD = "MISSING_FIELD"  # a required field is absent
    BAD_FIELD = "BAD_FIELD"  # a field has the wrong type or an invalid value
    TOO_LARGE = "TOO_LARGE"  # the message exceeds MAX_MESSAGE_BYTES
    # -- the server: the message is well formed but refused --------------------------------
    UNAUTHORIZED = "UNAUTHORIZED"  # no valid session cookie / station credential
    FORBIDDEN = "FORBIDDEN"  # the participant's role may not do this
    NOT_FOUND = "NOT_FOUND"  # no such hearing / participant / room / recording (for you)
    WRONG_STATE = "WRONG_STATE"  # not now: not joined yet, already joined, hearing closed ...
    CONFLICT = "CONFLICT"  # the transaction id is already in use on this connection
    RATE_LIMITED = "RATE_LIMITED"  # too many requests; see docs/signaling.md "Rate limits"
    INTERNAL = "INTERNAL"  # the server failed; details are in its log, not on the wire
    # -- the server's REST API only, never on the signaling wire ----------------------------
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"  # a body that is not JSON
    BAD_CREDENTIALS = "BAD_CREDENTIALS"  # wrong user name, password or station key
    LOCKED_OUT = "LOCKED_OUT"  # too many failed logins; wait
    CSRF_FAILED = "CSRF_FAILED"  # a write without the session's X-CSRF-Token
    INVALID_INVITATION = "INVALID_INVITATION"  # an invitation link unknown, expired or revoked
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"  # the path exists, the HTTP method does not
    # The hearing record (issue 15): a signature the court must refuse.
    TEXT_CHANGED = "TEXT_CHANGED"  # the text was changed since it was shown to the signer
    CODE_INVALID = "CODE_INVALID"  # the signing code is wrong, or none was issued
    CODE_USED = "CODE_USED"  # the signing code was already used (one code, one signature)
    NOT_YOUR_SIGNATURE = "NOT_YOUR_SIGNATURE"  # signing in someone else's name
    RECORD_FINALISED = "RECORD_FINALISED"  # the document is final; nothing more can change
    # -- local to a client, never on the wire ------------------------------------------------
    TIMEOUT = "TIMEOUT"  # no reply within the request timeout
    CLOSED = "CLOSED"  # the connection ended before the reply came


# Codes the codec may raise while decoding (the server answers them with an `error` message).
CODEC_CODES = frozenset(
    {
        ErrorCode.BAD_JSON,
        ErrorCode.BAD_REQUEST,
        ErrorCode.UNSUPPORTED_VERSION,
        ErrorCode.UNKNOWN_TYPE,
        ErrorCode.UNKNOWN_FIELD,
        ErrorCode.MISSING_FIELD,
        ErrorCode.BAD_FIELD,
        ErrorCode.TOO_LARGE,
    }
)
# Codes that exist only inside a client.
LOCAL_CODES = frozenset({ErrorCode.TIMEOUT, ErrorCode.CLOSED})
# Codes of the server's REST API that the signaling wire never carries (the WebSocket sends
# FORBIDDEN for CSRF_FAILED and BAD_FIELD for the others, should a service raise one there).
HTTP_ONLY_CODES = frozenset(
    {
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        ErrorCode.BAD_CREDENTIALS,
        ErrorCode.LOCKED_OUT,
        ErrorCode.CSRF_FAILED,
        ErrorCode.INVALID_INVITATION,
        ErrorCode.METHOD_NOT_ALLOWED,
        ErrorCode.TEXT_CHANGED,
        ErrorCode.CODE_INVALID,
        ErrorCode.CODE_USED,
        ErrorCode.NOT_YOUR_SIGNATURE,
        ErrorCode.RECORD_FINALISED,
    }
)


class SignalingError(Exception):
    """A message was rejected or a request failed; ``code`` is machine-readable.

    ``transaction`` is the request's transaction id when one could be read, so the server can
    echo it in its ``error`` reply (and the client can match the reply to its request).
    """

    def __init__(self, code: ErrorCode, message: str, transaction: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transaction = transaction

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code.value!r}, message={self.message!r}, "
            f"transaction={self.transaction!r})"
        )


class RequestError(SignalingError):
    """The server answered a request with an ``error`` message."""


class RequestTimeout(SignalingError):
    """No reply to a request arrived within the timeout (the request may still take effect)."""

    def __init__(self, message: str, transaction: str | None = None) -> None:
        super().__init__(ErrorCode.TIMEOUT, message, transaction)


class ConnectionClosed(SignalingError):
    """The connection ended; ``reason`` says why when the server said so (or was inferred)."""

    def __init__(
        self, reason: CloseReason | None, message: str, transaction: str | None = None
    ) -> None:
        super().__init__(ErrorCode.CLOSED, message, transaction)
        self.reason = reason
