"""Every allowed and every forbidden hearing transition, from an independent table."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from server.enums import HearingState, StaffRole
from server.hearings import states
from server.storage.models import Hearing, HearingEvent
from server.web.appkeys import SESSIONS
from tests.server.conftest import Api, World, app_of

# Written out by hand, apart from the implementation: source -> target -> roles allowed.
# j = judge, m = mediator, c = clerk.
ALLOWED = """
scheduled  opened     jmc
scheduled  closed     jm
opened     in_session jm
opened     closed     jm
in_session recess     jm
in_session suspended  jmc
in_session closed     jm
recess     in_session jm
recess     closed     jm
suspended  in_session jm
suspended  closed     jm
"""
LETTERS = {"j": StaffRole.JUDGE, "m": StaffRole.MEDIATOR, "c": StaffRole.CLERK}
EXPECTED: dict[tuple[HearingState, HearingState], set[StaffRole]] = {}
for line in ALLOWED.strip().splitlines():
    src, dst, who = line.split()
    EXPECTED[(HearingState(src), HearingState(dst))] = {LETTERS[c] for c in who}

ALL_PAIRS = list(itertools.product(HearingState, HearingState))


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_transition_table(source: HearingState, target: HearingState) -> None:
    for role in StaffRole:
        allowed = role in EXPECTED.get((source, target), set())
        if allowed:
            assert states.transition(source, target, role).target is target
        else:
            with pytest.raises(states.TransitionRefused) as refused:
                states.transition(source, target, role)
            assert refused.value.forbidden == ((source, target) in EXPECTED)


async def _set_state(client: TestClient[Any, Any], hearing_id: str, state: HearingState) -> None:
    async with app_of(client)[SESSIONS].begin() as db:
        await db.execute(update(Hearing).where(Hearing.id == hearing_id).values(state=state))


async def _state_and_log(client: TestClient[Any, Any], hearing_id: str) -> tuple[str, int]:
    async with app_of(client)[SESSIONS]() as db:
        state = await db.scalar(select(Hearing.state).where(Hearing.id == hearing_id))
        count = len(
            (
                await db.scalars(select(HearingEvent).where(HearingEvent.hearing_id == hearing_id))
            ).all()
        )
    assert state is not None
    return state.value, count


async def test_every_transition_through_the_api(
    api: Api, world: World, app_client: TestClient[Any, Any]
) -> None:
    hearing = world.own.hearing_id
    url = f"/api/hearings/{hearing}/state"
    problems = []
    for role in StaffRole:
        api.client.session.cookie_jar.clear()
        await api.login(world.own.users[role.value])
        for source, target in ALL_PAIRS:
            await _set_state(app_client, hearing, source)
            before = await _state_and_log(app_client, hearing)
            status, body = await api.call("POST", url, {"state": target, "reason": "test"})
            after = await _state_and_log(app_client, hearing)
            if role in EXPECTED.get((source, target), set()):
                want = 200
                ok = after == (target.value, before[1] + 1)
            else:
                # Roles that never run hearings are refused before the state is looked at.
                may_run = role in set(LETTERS.values())
                want = 403 if (source, target) in EXPECTED or not may_run else 409
                ok = after == before  # refused: nothing changed, nothing logged
            if status != want or not ok:
                problems.append(f"{role} {source}->{target}: {status} {body} {before}->{after}")
    assert not problems, "\n".join(problems)


async def test_transition_is_logged_with_actor_and_reason(api: Api, world: World) -> None:
    await api.login(world.own.users["clerk"])
    status, body = await api.call(
        "POST",
        f"/api/hearings/{world.own.hearing_id}/state",
        {"state": "opened", "reason": "候庭开始 waiting room open"},
    )
    assert (status, body["state"]) == (200, "opened")
    await api.login(world.own.users["judge"])
    status, body = await api.call(
        "POST",
        f"/api/hearings/{world.own.hearing_id}/state",
        {"state": "in_session", "reason": " "},
    )
    assert (status, body["code"]) == (400, "BAD_FIELD")
    status, timeline = await api.call("GET", f"/api/hearings/{world.own.hearing_id}/events")
    last = timeline["events"][-1]
    assert last["kind"] == "hearing.state"
    assert last["actor"] == f"user:{world.own.user_ids['clerk']}"
    assert last["data"] == {
        "action": "open",
        "from": "scheduled",
        "to": "opened",
        "reason": "候庭开始 waiting room open",
    }
