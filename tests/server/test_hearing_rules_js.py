"""The console offers only the transitions the server allows: its mirror of the transition
table (server/web/static/js/hearing-rules.js) is parsed and compared with server.hearings.states,
and its room movers and called roles with server.hearings.live."""

from __future__ import annotations

import re
from pathlib import Path

from server.hearings import live
from server.hearings.states import TRANSITIONS

JS = Path(__file__).resolve().parents[2] / "server/web/static/js/hearing-rules.js"
ROLE_SETS = {"PRESIDING": {"judge", "clerk", "mediator"}, "RUNNERS": {"judge", "mediator"}}


def _source() -> str:
    return JS.read_text(encoding="utf-8")


def test_role_sets_match() -> None:
    source = _source()
    for name, expected in ROLE_SETS.items():
        match = re.search(rf"const {name} = \[(.*?)\];", source)
        assert match, name
        assert set(re.findall(r'"([^"]+)"', match.group(1))) == expected


def test_transition_table_matches() -> None:
    body = re.search(r"export const TRANSITIONS = Object\.freeze\(\[(.*?)\]\);", _source(), re.S)
    assert body
    rows = re.findall(r'\["(\w+)", "(\w+)", "(\w+)", (\w+)\]', body.group(1))
    js = {(a, s, t, frozenset(ROLE_SETS[r])) for a, s, t, r in rows}
    py = {
        (t.action.value, t.source.value, t.target.value, frozenset(r.value for r in t.roles))
        for t in TRANSITIONS
    }
    assert len(rows) == len(TRANSITIONS)
    assert js == py


def test_room_movers_and_called_roles_match() -> None:
    source = _source()
    for name, expected in (("ROOM_MOVERS", live.ROOM_MOVERS), ("CALLED_ROLES", live.CALLED_ROLES)):
        match = re.search(rf"export const {name} = Object\.freeze\(\[(.*?)\]\);", source)
        assert match, name
        assert set(re.findall(r'"([^"]+)"', match.group(1))) == {r.value for r in expected}
