"""The one place signaling text becomes messages and messages become text (STYLE 11).

``decode(text, sender=...)`` either returns a validated, frozen message or raises
``SignalingError`` with a machine code — never anything else, for any input (a hypothesis
test feeds it arbitrary text and JSON). Checks run cheapest-first, and each failure class has
its own code so a client developer can tell what went wrong:

1. size: more than ``MAX_MESSAGE_BYTES`` of UTF-8 -> TOO_LARGE (not parsed at all);
2. JSON: invalid UTF-8 or JSON, NaN/Infinity, duplicate keys, nesting too deep -> BAD_JSON;
3. shape: anything but an object -> BAD_REQUEST;
4. version: ``v`` missing -> MISSING_FIELD, not an integer -> BAD_FIELD, an integer this side
   does not speak -> UNSUPPORTED_VERSION (checked before ``type``, so a newer client sending a
   newer message learns about the version, not about an "unknown type");
5. type: missing -> MISSING_FIELD, not a string -> BAD_FIELD, unknown or not sendable by this
   sender -> UNKNOWN_TYPE;
6. fields, by the message's strict model: unknown -> UNKNOWN_FIELD, absent -> MISSING_FIELD,
   wrong type or value -> BAD_FIELD (``true`` is not an integer, ``"1"`` not a boolean).

Whenever the object had a readable ``transaction`` (a string of 1-64 characters) the error
carries it, so the server's ``error`` reply can echo it and the client can fail the right
request. Duplicate keys are refused because two JSON parsers may pick different values for
them (a classic smuggling vector).

``encode(message)`` serializes compactly and refuses to produce a message the other side would
reject as too large.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from pydantic import ValidationError

from signaling.enums import Sender
from signaling.errors import ErrorCode, SignalingError
from signaling.limits import MAX_ID_CHARS, MAX_MESSAGE_BYTES, SUPPORTED_VERSIONS
from signaling.messages import MESSAGE_TYPES, Error, Message, Request

__all__ = ["decode", "encode", "error_for"]


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"duplicate key {key!r}")
        result[key] = value
    return result


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _readable_transaction(obj: dict[str, Any]) -> str | None:
    tx = obj.get("transaction")
    if isinstance(tx, str) and 0 < len(tx) <= MAX_ID_CHARS:
        return tx
    return None


# pydantic error types mapped to our codes; the first matching class (in this order) wins, so
# a message with several faults is reported the same way every time.
_PRIORITY = (
    (ErrorCode.BAD_JSON, frozenset({"json_invalid", "json_type"})),
    (ErrorCode.UNKNOWN_FIELD, frozenset({"extra_forbidden"})),
    (ErrorCode.MISSING_FIELD, frozenset({"missing"})),
)


def _from_validation(exc: ValidationError, transaction: str | None) -> SignalingError:
    errors = exc.errors(include_url=False, include_input=False)
    for code, kinds in _PRIORITY:
        for err in errors:
            if err["type"] in kinds:
                return SignalingError(code, _describe(err), transaction)
    return SignalingError(ErrorCode.BAD_FIELD, _describe(errors[0]), transaction)


def _describe(err: Any) -> str:
    loc = ".".join(str(part) for part in err.get("loc", ())) or "message"
    return f"{loc}: {err.get('msg', 'invalid')}"


def decode(data: str | bytes, *, sender: Sender | None = None) -> Message:
    """Parse and validate one message.

    ``sender`` is who sent it: the server decodes with ``Sender.CLIENT`` (a client cannot send
    ``welcome``), the client with ``Sender.SERVER``; ``None`` accepts any type (tools, tests).

    Raises ``SignalingError`` (and nothing else) with one of the codec codes.
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise SignalingError(
            ErrorCode.TOO_LARGE, f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES}"
        )
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        obj = json.loads(
            text, object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant
        )
    except RecursionError:
        raise SignalingError(ErrorCode.BAD_JSON, "JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, duplicates, big ints
        raise SignalingError(ErrorCode.BAD_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise SignalingError(ErrorCode.BAD_REQUEST, "a message is a JSON object")
    transaction = _readable_transaction(obj)

    if "v" not in obj:
        raise SignalingError(ErrorCode.MISSING_FIELD, "v: the protocol version", transaction)
    version = obj["v"]
    if type(version) is not int:
        raise SignalingError(ErrorCode.BAD_FIELD, "v: must be an integer", transaction)
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_VERSIONS))
        raise SignalingError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {version} is not supported (supported: {supported})",
            transaction,
        )

    if "type" not in obj:
        raise SignalingError(ErrorCode.MISSING_FIELD, "type: the message type", transaction)
    type_ = obj["type"]
    if not isinstance(type_, str):
        raise SignalingError(ErrorCode.BAD_FIELD, "type: must be a string", transaction)
    cls = MESSAGE_TYPES.get(type_)
    if cls is None:
        raise SignalingError(
            ErrorCode.UNKNOWN_TYPE, f"unknown message type {type_[:64]!r}", transaction
        )
    if sender is not None and sender not in cls.SENDERS:
        raise SignalingError(
            ErrorCode.UNKNOWN_TYPE, f"a {sender} does not send {type_!r}", transaction
        )
    # Requests generate a transaction when built in code; on the wire it is required.
    if issubclass(cls, Request) and "transaction" not in obj:
        raise SignalingError(ErrorCode.MISSING_FIELD, "transaction: required on requests")

    try:
        return cls.model_validate_json(text)
    except ValidationError as exc:
        raise _from_validation(exc, transaction) from None
    except (ValueError, RecursionError) as exc:  # defensive: parser limits inside pydantic
        raise SignalingError(ErrorCode.BAD_JSON, f"not valid JSON: {exc}", transaction) from None


def encode(message: Message) -> str:
    """Serialize a message to compact JSON text.

    Raises ``SignalingError(TOO_LARGE)`` if the result would exceed ``MAX_MESSAGE_BYTES``
    (the peer would refuse it); the caller must split or trim (e.g. a huge roster).
    """
    text = message.model_dump_json()
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise SignalingError(
            ErrorCode.TOO_LARGE,
            f"{message.__class__.__name__} encodes to {size} bytes; limit {MAX_MESSAGE_BYTES}",
            getattr(message, "transaction", None),
        )
    return text


def error_for(exc: SignalingError) -> str:
    """The wire ``error`` message for a failure (what the server sends back)."""
    return encode(Error(code=exc.code, message=exc.message[:1000], transaction=exc.transaction))
