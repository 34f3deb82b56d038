"""The hearing record on the signaling wire (issue 15): a transcript save reaches presiding
staff and the party in the main room at once, never the party in a caucus room (OMR 18)."""

from __future__ import annotations

import asyncio
from typing import Any

from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import ParticipantState
from tests.e2e.conftest import Court
from tests.e2e.test_signaling import enter_party, next_of


def transcript(text: str) -> dict[str, Any]:
    return {"entries": [{"role": "judge", "name": "王法官", "text": text}]}


async def test_caucus_receives_no_transcript_update(court: Court, clerk: SignalingClient) -> None:
    w = court.world.own
    path = f"/api/hearings/{w.hearing_id}/record/transcript"
    clerk_cookies = await court.staff("clerk")
    async with court.client(await court.staff("judge")) as judge:
        await judge.join(w.hearing_id)
        plaintiff = await enter_party(court, w.plaintiff_token, "PLAINTIFF")
        defendant = await enter_party(court, w.defendant_token, "DEFENDANT")
        try:
            await clerk.request(m.Admit(all=True))
            for party in (plaintiff, defendant):
                await next_of(party, m.Moved, lambda e: e.state is ParticipantState.IN_HEARING)
            await judge.request(m.MoveToRoom(participant_id=w.plaintiff_id, room_id="甲方"))
            await next_of(plaintiff, m.Moved, lambda e: e.state is ParticipantState.IN_PRIVATE_ROOM)

            status, body = await court.call(clerk_cookies, "PUT", path, transcript("开庭。"))
            assert status == 200, body
            seen = await next_of(defendant, m.RecordChanged)
            assert (seen.kind, seen.version, seen.text) == ("transcript", 1, body["text"])
            assert seen.text_sha256 == body["text_sha256"]
            assert (await next_of(judge, m.RecordChanged)).version == 1

            # Back in the main room, the plaintiff's first record message is the next save:
            # the one made while it was in the caucus never reached its socket.
            await judge.request(m.MoveToRoom(participant_id=w.plaintiff_id, room_id="main"))
            async with asyncio.timeout(10):
                while True:  # every message the plaintiff got until it is back in the main room
                    event = await plaintiff.next_event()
                    assert not isinstance(event, m.RecordChanged), "the caucus got the record"
                    if isinstance(event, m.Moved) and event.state is ParticipantState.IN_HEARING:
                        break
            status, body = await court.call(clerk_cookies, "PUT", path, transcript("继续开庭。"))
            assert status == 200, body
            first = await next_of(plaintiff, m.RecordChanged)
            assert first.version == 2
            assert "继续开庭" in (first.text or "")
        finally:
            await plaintiff.close()
            await defendant.close()
