"""docs/signaling.md documents every message type and every error code."""

from __future__ import annotations

import re
from pathlib import Path

from signaling import messages as m
from signaling.errors import ErrorCode
from signaling.reasons import CloseReason

DOC = (Path(__file__).resolve().parents[2] / "docs" / "signaling.md").read_text(encoding="utf-8")


def test_every_message_type_has_a_section() -> None:
    documented = re.findall(r"^#### `([a-z_]+)`$", DOC, re.M)
    assert sorted(documented) == sorted(m.MESSAGE_TYPES)


def test_every_error_code_and_close_reason_is_explained() -> None:
    for code in ErrorCode:
        assert re.search(rf"^\| `{code.value}` \|", DOC, re.M), code
    for reason in CloseReason:
        assert re.search(rf"^\| `{reason.value}` \| \S", DOC, re.M), reason
