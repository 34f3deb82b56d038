"""Screen sharing rules (issue 13.4) on the hearing service, with a real event log.

The SFU edge is the recording `Routing` of test_live_rules: `routing.screens` shows what the
rules told the SFU to forward. The same rules are checked on the wire in
tests/server/sfu/test_screen_share_wire.py (the SFU) and tests/e2e/test_screen_share.py.
"""

from __future__ import annotations

import pytest

from server.enums import HearingState
from server.errors import CourtError
from server.hearings.live import ScreenShareChanged
from signaling.reasons import CloseReason
from tests.server.test_live_rules import Room
from tests.server.test_live_rules import room as room  # the fixture


def shares(room: Room, name: str) -> list[tuple[str, str]]:
    """The screen-share steps told to `name`: (state, reason)."""
    return [
        (e.state, e.reason)
        for e in room.clients.events.get(room[name], [])
        if isinstance(e, ScreenShareChanged)
    ]


async def in_session(room: Room) -> None:
    await room.enter("judge", "plaintiff", "defendant", "witness")
    await room.live.admit(room["judge"], None)
    await room.live.hearing_state_changed(HearingState.IN_SESSION, "start")


async def test_request_allow_start_stop_with_the_log(room: Room) -> None:
    live = room.live
    await in_session(room)
    # The witness waits outside the main room: no sharing from there.
    with pytest.raises(CourtError, match="main room"):
        await live.request_screen_share(room["witness"])
    # A party cannot start without permission, nor allow itself.
    with pytest.raises(CourtError, match="not allowed"):
        await live.start_screen_share(room["plaintiff"], "2")
    await live.request_screen_share(room["plaintiff"])
    with pytest.raises(CourtError) as err:
        await live.allow_screen_share(room["plaintiff"], room["plaintiff"])
    assert err.value.code == "FORBIDDEN"
    with pytest.raises(CourtError, match="already asked"):
        await live.request_screen_share(room["plaintiff"])
    assert room.routing.screens == {}
    await live.allow_screen_share(room["judge"], room["plaintiff"])
    assert room.routing.screens == {}  # nothing forwarded until the m-line is named
    # One share at a time: a second request waits, and cannot be allowed meanwhile.
    await live.request_screen_share(room["defendant"])
    with pytest.raises(CourtError, match="stop that share first"):
        await live.allow_screen_share(room["judge"], room["defendant"])
    await live.deny_screen_share(room["judge"], room["defendant"], "not now")
    assert shares(room, "defendant")[-1] == ("denied", "not now")
    await live.start_screen_share(room["plaintiff"], "2")
    assert room.routing.screens == {room["plaintiff"]: "2"}
    assert ("live", "") in shares(room, "defendant")  # everyone is told it is live
    # Only staff stop someone else's share.
    with pytest.raises(CourtError) as err:
        await live.stop_screen_share(room["defendant"], room["plaintiff"])
    assert err.value.code == "FORBIDDEN"
    await live.stop_screen_share(room["judge"], room["plaintiff"])
    assert room.routing.screens == {room["plaintiff"]: None}
    assert shares(room, "defendant")[-1] == ("stopped", "court")
    assert live.screen_sharer is None
    events = [e for e in await room.events() if e.kind.startswith("screen_share.")]
    assert [(e.kind, e.data.get("reason")) for e in events] == [
        ("screen_share.requested", None),
        ("screen_share.allowed", None),
        ("screen_share.requested", None),
        ("screen_share.denied", "not now"),
        ("screen_share.started", None),
        ("screen_share.stopped", "court"),
    ]
    assert events[-1].actor == f"participant:{room['judge']}"
    assert events[4].data["mid"] == "2"


async def test_share_ends_when_the_sharer_leaves_the_main_room_or_the_browser_ends_it(
    room: Room,
) -> None:
    live = room.live
    await in_session(room)
    await live.request_screen_share(room["plaintiff"])
    await live.allow_screen_share(room["judge"], room["plaintiff"])
    await live.start_screen_share(room["plaintiff"], "3")
    await live.move_to_room(room["judge"], [room["plaintiff"]], "caucus1")
    assert room.routing.screens[room["plaintiff"]] is None
    assert shares(room, "plaintiff")[-1] == ("stopped", "left_main_room")
    await live.move_to_room(room["judge"], [room["plaintiff"]], "main")
    # The browser's own "stop sharing" ends it too, and a dropped connection.
    await live.request_screen_share(room["plaintiff"])
    await live.allow_screen_share(room["judge"], room["plaintiff"])
    await live.start_screen_share(room["plaintiff"], "3")
    await live.stop_screen_share(room["plaintiff"], None, ended=True)
    assert shares(room, "plaintiff")[-1] == ("stopped", "track_ended")
    await live.request_screen_share(room["plaintiff"])
    await live.disconnect(room["plaintiff"], CloseReason.NETWORK_LOST)
    assert live.screen_requests == []
    kinds = [(e.kind, e.data.get("reason")) for e in await room.events()]
    assert ("screen_share.stopped", "disconnected") in kinds
    assert ("screen_share.stopped", "track_ended") in kinds


async def test_staff_share_without_asking_anyone(room: Room) -> None:
    live = room.live
    await in_session(room)
    await live.request_screen_share(room["judge"])
    assert live.screen_sharer == room["judge"]
    await live.start_screen_share(room["judge"], "4")
    assert room.routing.screens == {room["judge"]: "4"}
    await live.stop_screen_share(room["judge"])
    assert shares(room, "judge")[-1] == ("stopped", "sharer")


async def test_a_late_connection_is_told_where_sharing_stands(room: Room) -> None:
    """A console opened (or reconnected) after a party asked still shows the request; a
    party arriving during a live share is told it is live; others' requests stay staff's."""
    live = room.live
    await in_session(room)
    await live.request_screen_share(room["plaintiff"])
    # The clerk's console opens now: the pending request is among the first things it hears.
    await room.enter("clerk")
    assert shares(room, "clerk") == [("requested", "")]
    # A party connecting meanwhile is not told of another party's request.
    await live.disconnect(room["defendant"], CloseReason.NETWORK_LOST)
    await live.connect(room["defendant"])
    assert shares(room, "defendant") == []
    await live.allow_screen_share(room["judge"], room["plaintiff"])
    await live.disconnect(room["clerk"], CloseReason.NETWORK_LOST)
    await live.connect(room["clerk"])
    assert shares(room, "clerk")[-1] == ("allowed", "")
    # The defendant's line drops; the share goes live while it is away.
    await live.disconnect(room["defendant"], CloseReason.NETWORK_LOST)
    await live.start_screen_share(room["plaintiff"], "2")
    await live.connect(room["defendant"])
    told = [e for e in room.clients.events[room["defendant"]] if isinstance(e, ScreenShareChanged)]
    assert [(e.state, e.participant_id, e.mid) for e in told][-1] == (
        "live",
        room["plaintiff"],
        "2",
    )
