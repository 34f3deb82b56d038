"""`stats` over the signaling wire: presiding staff get one ParticipantStats per participant
connected to the media server, typed as documented; a party asking is refused FORBIDDEN."""

from __future__ import annotations

import pytest

from signaling import messages as m
from signaling.enums import HearingState
from signaling.errors import ErrorCode, RequestError
from tests.e2e.conftest import Court
from tests.e2e.test_signaling import enter_party


async def test_presiding_staff_see_connection_figures_and_parties_may_not(court: Court) -> None:
    w = court.world.own
    async with court.client(await court.staff("judge")) as judge:
        welcome = await judge.join(w.hearing_id)
        me = welcome.participant_id
        # the court frame's heading comes with the welcome
        assert (welcome.court_name, welcome.case_number) == ("Court A", "a-1")
        assert welcome.station_name == "a station"
        await judge.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        party = await enter_party(court, w.plaintiff_token, "PLAINTIFF")
        try:
            reply = await judge.request(m.Stats())
            assert isinstance(reply, m.Result)
            listed = reply.data["participants"]
            assert isinstance(listed, list)
            figures = [m.ParticipantStats.model_validate(p) for p in listed]
            # every joined connection has its peer on the SFU (no media yet: no round trip)
            assert {f.participant_id for f in figures} == {me, w.plaintiff_id}
            assert all(f.rtt_ms is None for f in figures)
            assert all(f.bitrate_in_kbps >= 0 and f.bitrate_out_kbps >= 0 for f in figures)
            with pytest.raises(RequestError) as err:
                await party.request(m.Stats())
            assert err.value.code is ErrorCode.FORBIDDEN
        finally:
            await party.close()
