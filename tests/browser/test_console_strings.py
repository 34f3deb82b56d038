"""The staff console's words (issue 12): the summary's timeline names every kind of event the
log can hold, and every hearing action, in both languages; no raw `recording.sealed`."""

from __future__ import annotations

from server.enums import EventKind
from server.hearings.states import HearingAction
from tests.browser.test_strings import _keys


def test_every_event_kind_and_action_has_words_in_both_languages() -> None:
    wanted = {f"sc_ev_{k.value.replace('.', '_')}" for k in EventKind}
    wanted |= {f"sc_action_{a.value}" for a in HearingAction}
    for language, keys in _keys().items():
        assert wanted - keys == set(), language
