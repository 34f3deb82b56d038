"""The wire vocabulary repeats the server's stored strings (signaling imports nothing from the
server); these tests make the two fail together if either changes."""

from __future__ import annotations

from enum import StrEnum

import pytest

from server import enums as server_enums
from server.errors import ErrorCode as ServerErrorCode
from server.web.ws import wire_code
from signaling import enums
from signaling.errors import HTTP_ONLY_CODES, LOCAL_CODES, ErrorCode


@pytest.mark.parametrize("name", ["HearingRole", "HearingState", "ParticipantState"])
def test_enums_match_the_server(name: str) -> None:
    ours: type[StrEnum] = getattr(enums, name)
    theirs: type[StrEnum] = getattr(server_enums, name)
    assert {e.name: e.value for e in ours} == {e.name: e.value for e in theirs}


def test_one_error_taxonomy_for_rest_and_signaling() -> None:
    # The server raises the protocol's codes (no second enum, no translator); the codes only
    # HTTP has never reach the wire, and the client's local codes are never the server's.
    assert ServerErrorCode is ErrorCode
    assert wire_code(ErrorCode.CSRF_FAILED) is ErrorCode.FORBIDDEN
    for code in HTTP_ONLY_CODES:
        assert wire_code(code) not in HTTP_ONLY_CODES
    for code in set(ErrorCode) - HTTP_ONLY_CODES:
        assert wire_code(code) is code
    assert not LOCAL_CODES & HTTP_ONLY_CODES
