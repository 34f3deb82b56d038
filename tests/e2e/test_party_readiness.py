"""A party's device check over the wire (issue 13): `probe` measures the network over the
signaling connection, `report_readiness` reaches presiding staff in the roster (and nobody
else), and the court's setting on skipping it is told in `welcome`."""

from __future__ import annotations

from signaling import messages as m
from signaling.enums import HearingState
from tests.e2e.conftest import Court
from tests.e2e.test_signaling import enter_party, next_of


async def test_probe_echoes_and_readiness_reaches_staff_only(court: Court) -> None:
    w = court.world.own
    async with court.client(await court.staff("judge")) as judge:
        welcome = await judge.join(w.hearing_id)
        assert welcome.device_check_skippable is True  # the default court setting
        await judge.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        plaintiff = await enter_party(court, w.plaintiff_token, "PLAINTIFF")
        defendant = await enter_party(court, w.defendant_token, "DEFENDANT")
        try:
            reply = await plaintiff.request(m.Probe(payload="x" * 16_384, reply_bytes=16_384))
            assert isinstance(reply, m.Result)
            assert reply.data["received"] == 16_384
            assert reply.data["payload"] == "x" * 16_384
            readiness = m.Readiness(
                score="bad",
                camera="denied",
                microphone="ok",
                speaker="ok",
                rtt_ms=120,
                loss_percent=0,
                up_kbps=800,
                down_kbps=3000,
                problems=["camera_denied"],
            )
            await plaintiff.request(m.ReportReadiness(readiness=readiness))
            roster = await next_of(
                judge,
                m.Roster,
                lambda r: any(p.readiness is not None for p in r.participants),
            )
            seen = {p.participant_id: p.readiness for p in roster.participants}
            assert seen[w.plaintiff_id] == readiness
            # another party never sees it
            await defendant.request(m.ReportReadiness(readiness=m.Readiness(score="good")))
            theirs = await next_of(defendant, m.Roster)
            assert all(p.readiness is None for p in theirs.participants)
        finally:
            await plaintiff.close()
            await defendant.close()
