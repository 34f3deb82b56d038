"""The wire vocabulary repeats the server's stored strings (signaling imports nothing from the
server); these tests make the two fail together if either changes."""

from __future__ import annotations

from enum import StrEnum

import pytest

from server import enums as server_enums
from server.errors import ErrorCode as ServerErrorCode
from signaling import enums
from signaling.errors import LOCAL_CODES, ErrorCode


@pytest.mark.parametrize("name", ["HearingRole", "HearingState", "ParticipantState"])
def test_enums_match_the_server(name: str) -> None:
    ours: type[StrEnum] = getattr(enums, name)
    theirs: type[StrEnum] = getattr(server_enums, name)
    assert {e.name: e.value for e in ours} == {e.name: e.value for e in theirs}


def test_error_codes_the_server_can_send_exist_in_both_taxonomies() -> None:
    # The server's WebSocket dispatcher maps its CourtError codes onto the wire; every code
    # the signaling protocol documents for the server (not the codec's, not the client's
    # local ones) must exist in the server's taxonomy with the same spelling.
    server_side = {
        ErrorCode.UNAUTHORIZED,
        ErrorCode.FORBIDDEN,
        ErrorCode.NOT_FOUND,
        ErrorCode.WRONG_STATE,
        ErrorCode.CONFLICT,
        ErrorCode.RATE_LIMITED,
        ErrorCode.INTERNAL,
    }
    assert {c.value for c in server_side} <= {c.value for c in ServerErrorCode}
    assert not LOCAL_CODES & server_side
