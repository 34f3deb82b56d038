"""docs/signaling.md (and the README) are the contract: a client must be writable from them
alone. These tests keep them in step with the code: every message type, error code, close
reason, close code, result shape, limit, consent value and excused cause documented is the
code's, every example decodes, and every server message documented is one the server sends."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from server.config import load_config
from server.hearings.live import EXCUSED_CAUSES, REQUIRED_CONSENTS
from server.web.ws import CLOSE_CODES, RESULT_DATA
from signaling import messages as m
from signaling.codec import decode
from signaling.enums import Sender
from signaling.errors import ErrorCode
from signaling.limits import (
    JOINS_PER_MINUTE,
    MAX_MESSAGE_BYTES,
    RATE_BURST,
    RATE_PER_S,
    RATE_STRIKES,
    WS_MAX_FRAME_BYTES,
)
from signaling.reasons import CloseReason

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "signaling.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
JSON_TYPES = {int: "integer", bool: "boolean", str: "string", list: "array"}


def _sections() -> dict[str, str]:
    """Each message's section (`#### `type``) up to the next heading."""
    parts = re.split(r"^(#{2,4} .*)$", DOC, flags=re.M)
    found: dict[str, str] = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        match = re.fullmatch(r"#### `([a-z_]+)`", heading)
        if match:
            found[match.group(1)] = body
    return found


def _table(header: str) -> list[list[str]]:
    """The rows of the markdown table whose header line starts with `header`."""
    lines = DOC.splitlines()
    start = next(n for n, line in enumerate(lines) if line.strip().startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip().startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_every_message_type_has_a_section() -> None:
    assert sorted(_sections()) == sorted(m.MESSAGE_TYPES)


def test_every_error_code_and_close_reason_is_explained() -> None:
    for code in ErrorCode:
        assert re.search(rf"^\| `{code.value}` \|", DOC, re.M), code
    for reason in CloseReason:
        assert re.search(rf"^\| `{reason.value}` \| \S", DOC, re.M), reason


@pytest.mark.parametrize("name", sorted(m.MESSAGE_TYPES))
def test_every_example_decodes_as_its_message(name: str) -> None:
    examples = re.findall(r"```json\n(.*?)\n```", _sections()[name], re.S)
    assert len(examples) == 1, name
    cls = m.MESSAGE_TYPES[name]
    sender = Sender.CLIENT if Sender.CLIENT in cls.SENDERS else Sender.SERVER
    decoded = decode(examples[0], sender=sender)
    assert m.type_name(type(decoded)) == name


def test_every_server_message_documented_is_sent_by_the_server() -> None:
    """A documented event the server never sends (as `participant_left` was) misleads clients."""
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for p in (ROOT / "server").rglob("*.py")
        if "sfu" not in p.parts
    )
    for name, cls in m.MESSAGE_TYPES.items():
        if Sender.SERVER in cls.SENDERS:
            assert re.search(rf"\bm\.{cls.__name__}\(", source), name


def test_result_data_table_is_the_servers() -> None:
    documented = {}
    for request, data in _table("| request | `result.data` |"):
        fields = dict(re.findall(r'"([a-z_]+)": ([a-z]+)', data.split("`")[1]))
        kinds = re.findall(r"\((integer|boolean|string|array)", data)
        assert len(kinds) == len(fields), request
        documented[request.strip("`")] = dict(zip(fields, kinds, strict=True))
    expected = {
        m.type_name(cls): {key: JSON_TYPES[t] for key, t in shape.items()}
        for cls, shape in RESULT_DATA.items()
    }
    assert documented == expected


def test_close_codes_are_the_servers() -> None:
    rows = {int(code): when for code, when in _table("| close code | when |")}
    assert set(rows) == {1000, 1009} | {int(c) for c in CLOSE_CODES.values()}
    for reason, code in CLOSE_CODES.items():
        assert f"`{reason.value}`" in rows[int(code)], reason
    assert "128 KiB" in rows[1009]


def test_limits_are_the_codes() -> None:
    assert f"{MAX_MESSAGE_BYTES:,} bytes" in DOC
    assert f"{WS_MAX_FRAME_BYTES:,} bytes" in DOC
    assert f"**{RATE_PER_S} requests/s sustained, burst {RATE_BURST}**" in DOC
    assert f"After\n  **{RATE_STRIKES}** consecutive" in DOC
    assert f"at most {JOINS_PER_MINUTE} per participant per minute" in DOC


def test_consent_values_are_the_rules() -> None:
    section = _sections()["consent"]
    named = set(re.findall(r"\*\*`([a-z_]+)`\*\*", section))
    assert named == REQUIRED_CONSENTS
    example = json.loads(re.findall(r"```json\n(.*?)\n```", section, re.S)[0])
    assert set(example["accepted_rules"]) == REQUIRED_CONSENTS  # the example is accepted


def test_excused_causes_are_the_rules() -> None:
    match = re.search(r"Excused: (.*?); not excused: (.*?)\.\n", DOC, re.S)
    assert match
    excused = set(re.findall(r"`([A-Z_]+)`", match.group(1)))
    not_excused = set(re.findall(r"`([A-Z_]+)`", match.group(2)))
    assert excused == {r.value for r in EXCUSED_CAUSES}
    media_only = {CloseReason.PRODUCER_CLOSED, CloseReason.ROOM_CHANGED}
    never_departures = {CloseReason.DUPLICATE_SESSION, CloseReason.JOIN_REFUSED}
    assert not_excused == {r.value for r in CloseReason} - excused - {
        r.value for r in media_only | never_departures
    }


def test_the_readme_names_the_csrf_header_and_the_origin_rule() -> None:
    assert "`X-CSRF-Token`" in README
    assert "`Origin: null` included" in README
    assert "`Origin` is accepted" in README
    assert "X-CSRF-Token" in DOC


@pytest.mark.parametrize("text", [DOC, README], ids=["signaling.md", "README"])
def test_the_documented_way_to_keep_the_demo_on_loopback_works(text: str) -> None:
    match = re.search(r"(SHARED_COURT_ICE__HOST_ADDRESSES)='([^']+)'", text)
    assert match, "the ICE host candidate note is missing"
    config = load_config(environ={match.group(1): match.group(2)}, overrides={})
    assert config.ice.host_addresses == ["127.0.0.1"]


def test_the_hearing_rules_list_every_departure_cause() -> None:
    rules = (ROOT / "docs" / "hearing-rules.md").read_text(encoding="utf-8")
    table = rules.split("| cause | how it is detected | excused |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    listed: dict[str, str] = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        for name in re.findall(r"`([A-Z_]+)`", cells[0]):
            listed[name] = cells[-1]
    # Media-only reasons, and a refused join (never in the hearing), are not departures.
    not_departures = {
        CloseReason.PRODUCER_CLOSED,
        CloseReason.ROOM_CHANGED,
        CloseReason.JOIN_REFUSED,
    }
    assert set(listed) == {r.value for r in CloseReason} - {r.value for r in not_departures}
    for name, excused in listed.items():
        if excused in ("yes", "no"):
            assert (excused == "yes") is (CloseReason(name) in EXCUSED_CAUSES), name
