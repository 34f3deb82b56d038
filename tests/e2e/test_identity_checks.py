"""A party locked out of its own identity check is let in after someone else checks it
(issue 14): the station in person (name and ID digits read from the document, against the
court's record), or the judge another way; each check is in the hearing's log with who and
how. Real server, real signaling clients."""

from __future__ import annotations

from typing import Any

import pytest

from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import IdentityCheck, ParticipantState
from signaling.errors import RequestError
from tests.e2e.conftest import Court
from tests.e2e.test_signaling import next_of

CONSENTS = ["online_proceedings", "court_rules", "no_recording"]


async def _locked_out(court: Court, token: str) -> SignalingClient:
    """The party joins and gets its name or digits wrong three times: locked out."""
    party = court.client(await court.party(token))
    await party.connect()
    await party.join(court.world.own.hearing_id)
    for _ in range(3):
        with pytest.raises(RequestError) as err:
            await party.request(m.ConfirmIdentity(name="某某", id_digits="0000"))
        assert err.value.code == "BAD_FIELD"
    with pytest.raises(RequestError) as err:  # even the right answer: too late now
        await party.request(m.ConfirmIdentity(name="PLAINTIFF", id_digits="1234"))
    assert err.value.code == "WRONG_STATE"
    return party


async def _confirmations(court: Court, participant_id: str) -> list[dict[str, Any]]:
    status, log = await court.call(
        await court.staff("judge"), "GET", f"/api/hearings/{court.world.own.hearing_id}/events"
    )
    assert status == 200
    return [
        {"actor": e["actor"], **e["data"]}
        for e in log["events"]
        if e["kind"] == "identity.confirmed" and e["data"]["participant_id"] == participant_id
    ]


async def _enters(party: SignalingClient, staff: SignalingClient, participant_id: str) -> None:
    """Consent, wait, admitted by staff: in the hearing."""
    await party.request(m.Consent(accepted_rules=CONSENTS))
    await next_of(party, m.Moved, lambda e: e.state is ParticipantState.WAITING)
    result = await staff.request(m.Admit(participant_id=participant_id))
    assert isinstance(result, m.Result)
    assert result.data == {"admitted": 1}
    await next_of(party, m.Moved, lambda e: e.state is ParticipantState.IN_HEARING)


async def test_a_locked_out_party_is_let_in_after_the_station_checks_in_person(
    court: Court, clerk: SignalingClient
) -> None:
    w = court.world.own
    party = await _locked_out(court, w.plaintiff_token)
    async with court.client(await court.station()) as station:
        station_pid = (await station.join(w.hearing_id)).participant_id
        with pytest.raises(RequestError) as err:  # the document says another number
            await station.request(
                m.AttestIdentity(participant_id=w.plaintiff_id, name="PLAINTIFF", id_digits="9999")
            )
        assert err.value.code == "BAD_FIELD"
        await station.request(
            m.AttestIdentity(
                participant_id=w.plaintiff_id,
                check=IdentityCheck.IN_PERSON,
                name="plaintiff",
                id_digits="1234",
                note="身份证原件",
            )
        )
        await _enters(party, clerk, w.plaintiff_id)
    await party.close()
    (checked,) = await _confirmations(court, w.plaintiff_id)
    assert checked["actor"] == f"participant:{station_pid}"
    assert checked["method"] == "station_attested"
    assert checked["check"] == "in_person"
    assert checked["record_matched"] is True
    assert checked["note"] == "身份证原件"


async def test_a_locked_out_party_is_let_in_after_the_judge_checks_another_way(
    court: Court, clerk: SignalingClient
) -> None:
    w = court.world.own
    party = await _locked_out(court, w.defendant_token)
    async with court.client(await court.staff("judge")) as judge:
        judge_pid = (await judge.join(w.hearing_id)).participant_id
        with pytest.raises(RequestError) as err:  # "another way" must be said
            await judge.request(
                m.AttestIdentity(participant_id=w.defendant_id, check=IdentityCheck.OTHER)
            )
        assert err.value.code == "BAD_FIELD"
        await judge.request(
            m.AttestIdentity(
                participant_id=w.defendant_id,
                check=IdentityCheck.DOCUMENT_ON_VIDEO,
                note="身份证对准摄像头核对",
            )
        )
        await _enters(party, judge, w.defendant_id)
    await party.close()
    (checked,) = await _confirmations(court, w.defendant_id)
    assert checked["actor"] == f"participant:{judge_pid}"
    assert checked["method"] == "staff_attested"
    assert checked["check"] == "document_on_video"
    assert checked["record_matched"] is None
