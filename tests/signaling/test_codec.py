"""The codec: every message round-trips; every rejection class has its code; nothing but
``SignalingError`` ever escapes ``decode``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling import messages as m
from signaling.codec import decode, encode, error_for
from signaling.enums import Sender
from signaling.errors import CODEC_CODES, ErrorCode, SignalingError
from signaling.limits import MAX_MESSAGE_BYTES
from tests.signaling.samples import HID, SAMPLES


def wire(message: m.Message) -> dict[str, Any]:
    obj = json.loads(encode(message))
    assert isinstance(obj, dict)
    return obj


def rejects(data: str | bytes, sender: Sender | None = None) -> SignalingError:
    with pytest.raises(SignalingError) as info:
        decode(data, sender=sender)
    assert info.value.code in CODEC_CODES
    return info.value


def test_every_message_type_has_a_sample() -> None:
    assert {m.type_name(type(s)) for s in SAMPLES} == set(m.MESSAGE_TYPES)
    assert len(SAMPLES) == len(m.MESSAGE_TYPES)


@pytest.mark.parametrize("message", SAMPLES, ids=lambda s: m.type_name(type(s)))
def test_round_trip(message: m.Message) -> None:
    text = encode(message)
    assert decode(text) == message
    assert decode(text.encode()) == message
    obj = json.loads(text)
    assert obj["v"] == 1
    assert obj["type"] == m.type_name(type(message))
    for sender in message.SENDERS:
        assert decode(text, sender=sender) == message


@pytest.mark.parametrize("message", SAMPLES, ids=lambda s: m.type_name(type(s)))
def test_direction_is_enforced(message: m.Message) -> None:
    for sender in set(Sender) - message.SENDERS:
        err = rejects(encode(message), sender=sender)
        assert err.code == ErrorCode.UNKNOWN_TYPE
        assert err.transaction == getattr(message, "transaction", None)


def test_server_cannot_be_impersonated_by_a_client() -> None:
    welcome = next(s for s in SAMPLES if isinstance(s, m.Welcome))
    assert rejects(encode(welcome), sender=Sender.CLIENT).code == ErrorCode.UNKNOWN_TYPE
    assert "welcome" not in m.CLIENT_TYPES
    assert {"offer", "answer", "error"} <= m.CLIENT_TYPES & m.SERVER_TYPES


def test_requests_get_fresh_transactions_but_need_one_on_the_wire() -> None:
    a, b = m.Heartbeat(), m.Heartbeat()
    assert a.transaction != b.transaction
    obj = wire(a)
    del obj["transaction"]
    err = rejects(json.dumps(obj))
    assert err.code == ErrorCode.MISSING_FIELD


JOIN = {"v": 1, "type": "join", "transaction": "t1", "hearing_id": HID}
WELCOME = wire(next(s for s in SAMPLES if isinstance(s, m.Welcome)))


def variant(base: dict[str, Any], **changes: Any) -> str:
    obj = dict(base)
    for key, value in changes.items():
        if value is ...:
            del obj[key]
        else:
            obj[key] = value
    return json.dumps(obj)


REJECTIONS: list[tuple[str, str | bytes, ErrorCode, str | None]] = [
    ("bad json", '{"v": 1, "type": "join",', ErrorCode.BAD_JSON, None),
    ("empty", "", ErrorCode.BAD_JSON, None),
    ("not utf-8", b'{"v": 1, "type": "\xff"}', ErrorCode.BAD_JSON, None),
    ("nan", '{"v": 1, "type": "join", "x": NaN}', ErrorCode.BAD_JSON, None),
    ("duplicate key", '{"v": 1, "type": "join", "type": "leave"}', ErrorCode.BAD_JSON, None),
    ("deep nesting", "[" * 30_000 + "]" * 30_000, ErrorCode.BAD_JSON, None),
    ("array", "[1, 2]", ErrorCode.BAD_REQUEST, None),
    ("string", '"join"', ErrorCode.BAD_REQUEST, None),
    ("null", "null", ErrorCode.BAD_REQUEST, None),
    ("no version", variant(JOIN, v=...), ErrorCode.MISSING_FIELD, "t1"),
    ("version as string", variant(JOIN, v="1"), ErrorCode.BAD_FIELD, "t1"),
    ("version as bool", variant(JOIN, v=True), ErrorCode.BAD_FIELD, "t1"),
    ("version 2", variant(JOIN, v=2), ErrorCode.UNSUPPORTED_VERSION, "t1"),
    (
        "version 2 new type",
        variant(JOIN, v=2, type="hologram"),
        ErrorCode.UNSUPPORTED_VERSION,
        "t1",
    ),
    ("no type", variant(JOIN, type=...), ErrorCode.MISSING_FIELD, "t1"),
    ("type not a string", variant(JOIN, type=7), ErrorCode.BAD_FIELD, "t1"),
    ("unknown type", variant(JOIN, type="teleport"), ErrorCode.UNKNOWN_TYPE, "t1"),
    ("unknown field", variant(JOIN, admin=True), ErrorCode.UNKNOWN_FIELD, "t1"),
    ("missing field", variant(JOIN, hearing_id=...), ErrorCode.MISSING_FIELD, "t1"),
    ("missing transaction", variant(JOIN, transaction=...), ErrorCode.MISSING_FIELD, None),
    ("id as int", variant(JOIN, hearing_id=5), ErrorCode.BAD_FIELD, "t1"),
    ("empty id", variant(JOIN, hearing_id=""), ErrorCode.BAD_FIELD, "t1"),
    ("id too long", variant(JOIN, hearing_id="x" * 65), ErrorCode.BAD_FIELD, "t1"),
    ("bad enum", variant(JOIN, client_kind="fax"), ErrorCode.BAD_FIELD, "t1"),
    ("transaction as int", variant(JOIN, transaction=1), ErrorCode.BAD_FIELD, None),
    ("bool as int", variant(WELCOME, heartbeat_interval_s=True), ErrorCode.BAD_FIELD, "t-join"),
    ("float as int", variant(WELCOME, heartbeat_interval_s=10.0), ErrorCode.BAD_FIELD, "t-join"),
    ("int out of range", variant(WELCOME, heartbeat_interval_s=0), ErrorCode.BAD_FIELD, "t-join"),
    ("string as bool", variant(WELCOME, recording="true"), ErrorCode.BAD_FIELD, "t-join"),
    ("int as bool", variant(WELCOME, recording=1), ErrorCode.BAD_FIELD, "t-join"),
    (
        "nested unknown field",
        variant(WELCOME, ice_servers=[{"urls": ["stun:x"], "port": 1}]),
        ErrorCode.UNKNOWN_FIELD,
        "t-join",
    ),
    (
        "int as bool in an event",
        json.dumps({"v": 1, "type": "muted", "muted": 1}),
        ErrorCode.BAD_FIELD,
        None,
    ),
    (
        "admit needs one target",
        json.dumps({"v": 1, "type": "admit", "transaction": "t9"}),
        ErrorCode.BAD_FIELD,
        "t9",
    ),
    (
        "admit both targets",
        json.dumps(
            {"v": 1, "type": "admit", "transaction": "t9", "participant_id": "p", "all": True}
        ),
        ErrorCode.BAD_FIELD,
        "t9",
    ),
    (
        "bad id digits",
        json.dumps(
            {
                "v": 1,
                "type": "confirm_identity",
                "transaction": "t8",
                "name": "a",
                "id_digits": "12a4",
            }
        ),
        ErrorCode.BAD_FIELD,
        "t8",
    ),
    (
        "bad hash",
        json.dumps(
            {
                "v": 1,
                "type": "confirm_recording_hash",
                "transaction": "t7",
                "recording_id": "r",
                "root_hash": "AB" * 32,
                "confirmed": True,
            }
        ),
        ErrorCode.BAD_FIELD,
        "t7",
    ),
    (
        "naive time",
        json.dumps(
            {
                "v": 1,
                "type": "disconnect_evidence",
                "participant_id": "p",
                "reason": "NETWORK_LOST",
                "last_seen_at": "2026-11-23T09:00:00",
                "detected_at": "2026-11-23T09:00:00Z",
            }
        ),
        ErrorCode.BAD_FIELD,
        None,
    ),
    (
        "unknown close reason",
        json.dumps({"v": 1, "type": "closed", "reason": "BORED"}),
        ErrorCode.BAD_FIELD,
        None,
    ),
]


@pytest.mark.parametrize(
    ("data", "code", "transaction"),
    [r[1:] for r in REJECTIONS],
    ids=[r[0] for r in REJECTIONS],
)
def test_rejections(data: str | bytes, code: ErrorCode, transaction: str | None) -> None:
    err = rejects(data)
    assert err.code == code, err
    assert err.transaction == transaction


def test_oversize_is_rejected_at_the_limit_not_before() -> None:
    # Padding with whitespace keeps the JSON valid, so only the size decides.
    base = json.dumps(JOIN)
    at_limit = base[:-1] + " " * (MAX_MESSAGE_BYTES - len(base)) + "}"
    assert len(at_limit.encode()) == MAX_MESSAGE_BYTES
    assert isinstance(decode(at_limit), m.Join)
    over = base[:-1] + " " * (MAX_MESSAGE_BYTES - len(base) + 1) + "}"
    err = rejects(over)
    assert err.code == ErrorCode.TOO_LARGE
    # Multi-byte characters count as bytes, not characters.
    wide = json.dumps({**JOIN, "user_agent": "法" * 22_000}, ensure_ascii=False)
    assert len(wide) < MAX_MESSAGE_BYTES < len(wide.encode())
    assert rejects(wide).code == ErrorCode.TOO_LARGE


def test_encode_refuses_what_the_peer_would_reject() -> None:
    big = m.Result(transaction="t", data={"blob": "x" * MAX_MESSAGE_BYTES})
    with pytest.raises(SignalingError) as info:
        encode(big)
    assert info.value.code == ErrorCode.TOO_LARGE
    assert info.value.transaction == "t"


def test_error_reply_shape() -> None:
    err = rejects(variant(JOIN, admin=True))
    obj = json.loads(error_for(err))
    assert obj == {
        "v": 1,
        "type": "error",
        "code": "UNKNOWN_FIELD",
        "message": err.message,
        "transaction": "t1",
    }
    assert isinstance(decode(error_for(err), sender=Sender.SERVER), m.Error)


def test_models_are_frozen() -> None:
    join = m.Join(hearing_id=HID)
    with pytest.raises(ValueError, match="frozen"):
        join.hearing_id = "other"  # type: ignore[misc]


# -- property-style fuzzing: decode never raises anything but SignalingError --------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    sorted({name for cls in m.ALL_MESSAGES for name in cls.model_fields} | {"extra", ""})
)


def attempt(data: str | bytes, sender: Sender | None) -> m.Message | SignalingError:
    try:
        return decode(data, sender=sender)
    except SignalingError as exc:  # anything else propagates and fails the test
        return exc


def check_decode(data: str | bytes) -> None:
    for sender in (None, Sender.CLIENT, Sender.SERVER):
        outcome = attempt(data, sender)
        if isinstance(outcome, SignalingError):
            assert outcome.code in CODEC_CODES
            assert outcome.transaction is None or isinstance(outcome.transaction, str)
        else:
            # Whatever is accepted re-encodes to something accepted and equal.
            assert decode(encode(outcome)) == outcome


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text(text: str) -> None:
    check_decode(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    check_decode(data)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_arbitrary_json(value: Any) -> None:
    check_decode(json.dumps(value))


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(field_names, json_values | st.just(...)), min_size=1, max_size=3),
)
def test_fuzz_mutated_messages(sample: m.Message, mutations: list[tuple[str, Any]]) -> None:
    obj = wire(sample)
    for name, value in mutations:
        if value is ...:
            obj.pop(name, None)
        else:
            obj[name] = value
    check_decode(json.dumps(obj))
