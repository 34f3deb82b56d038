"""The hearing record (issue 15) over REST, on SQLite and PostgreSQL: the transcript written
in versions, signed by the parties on the exact text, staled by a late edit, finalised and
sealed by the court; the mediation agreement taking effect at the last signature or failing at
a refusal; and every refused signing attempt (changed text, reused or wrong code, someone
else's name, after the record is final) answered with its code and kept in the event log."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from recordings.document import FORMAT, canonical_json, text_sha256
from recordings.keys import load_verify_key
from server.app import create_app
from tests.conftest import FakeClock
from tests.server.conftest import Api, CourtWorld, World, make_config, recording_keys

# A 1x1 PNG: what a canvas's toBlob gives, in miniature.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
PNG_B64 = base64.b64encode(PNG).decode()


@pytest.fixture
async def app_client(
    tmp_path: Path, aiohttp_client: AiohttpClient, clock: FakeClock, database_url: str
) -> TestClient[Any, Any]:
    keys = await recording_keys(tmp_path / "keys")
    config = make_config(tmp_path, database={"url": database_url}, recording=keys)
    return await aiohttp_client(create_app(config, clock=clock))


def doc(court: CourtWorld, kind: str = "transcript") -> str:
    return f"/api/hearings/{court.hearing_id}/record/{kind}"


def entries(*texts: str) -> dict[str, Any]:
    return {
        "entries": [
            {"role": "judge", "name": "王法官", "text": texts[0]},
            *({"role": "plaintiff", "name": "原告", "text": t} for t in texts[1:]),
        ]
    }


async def as_staff(api: Api, court: CourtWorld, role: str, clock: FakeClock) -> None:
    clock.advance(61)
    api.client.session.cookie_jar.clear()
    assert (await api.login(court.users[role]))[0] == 200


async def as_party(api: Api, token: str, clock: FakeClock) -> None:
    clock.advance(61)
    api.client.session.cookie_jar.clear()
    assert (await api.redeem(token))[0] == 200


async def code_for(
    api: Api, court: CourtWorld, pid: str, kind: str = "transcript"
) -> dict[str, Any]:
    status, body = await api.call("POST", doc(court, kind) + "/code", {"participant_id": pid})
    assert status == 200, body
    return dict(body)


def sign_body(pid: str, code: str, sha: str, name: str = "原告本人") -> dict[str, Any]:
    return {
        "participant_id": pid,
        "name": name,
        "code": code,
        "text_sha256": sha,
        "where": "phone",
        "image_png_b64": PNG_B64,
    }


async def events(api: Api, court: CourtWorld, clock: FakeClock, kind: str) -> list[dict[str, Any]]:
    await as_staff(api, court, "judge", clock)
    status, body = await api.call("GET", f"/api/hearings/{court.hearing_id}/events")
    assert status == 200
    assert body["chain_intact"]
    return [e for e in body["events"] if e["kind"] == kind]


async def start_signing(api: Api, court: CourtWorld, clock: FakeClock) -> dict[str, Any]:
    await as_staff(api, court, "clerk", clock)
    status, body = await api.call("PUT", doc(court), entries("开庭。", "我方请求被告还款。"))
    assert status == 200, body
    status, body = await api.call("POST", doc(court) + "/signing-request")
    assert status == 200, body
    assert body["state"] == "signing"
    return dict(body)


async def test_transcript_versions_signing_stale_and_seal(
    api: Api, world: World, clock: FakeClock, tmp_path: Path
) -> None:
    court = world.own
    await as_staff(api, court, "clerk", clock)
    status, first = await api.call("PUT", doc(court), entries("开庭。"))
    assert status == 200, first
    assert first["version"] == 1
    assert first["state"] == "draft"
    assert "审判员 王法官：开庭。" in first["text"]
    assert first["text_sha256"] == text_sha256(first["text"])
    # Unchanged content makes no version; an edit from an old base is a conflict.
    assert (await api.call("PUT", doc(court), entries("开庭。")))[1]["version"] == 1
    status, body = await api.call(
        "PUT", doc(court), {**entries("开庭。", "我方请求还款。"), "base_version": 1}
    )
    assert status == 200
    assert body["version"] == 2
    status, body = await api.call("PUT", doc(court), {**entries("x"), "base_version": 1})
    assert (status, body["code"]) == (409, "CONFLICT")
    status, versions = await api.call("GET", doc(court) + "/versions")
    assert [v["version"] for v in versions] == [1, 2]
    assert all(v["saved_by_name"] == "a clerk" for v in versions)
    # Not before signatures are asked for.
    await as_party(api, court.plaintiff_token, clock)
    status, body = await api.call(
        "POST", doc(court) + "/code", {"participant_id": court.plaintiff_id}
    )
    assert (status, body["code"]) == (409, "WRONG_STATE")

    await as_staff(api, court, "clerk", clock)
    status, body = await api.call("POST", doc(court) + "/signing-request")
    assert status == 200
    assert {s["status"] for s in body["signers"]} == {"pending"}

    await as_party(api, court.plaintiff_token, clock)
    got = await code_for(api, court, court.plaintiff_id)
    shown = got["document"]["text_sha256"]
    status, body = await api.call(
        "POST", doc(court) + "/signatures", sign_body(court.plaintiff_id, got["code"], shown)
    )
    assert status == 200, body
    mine = {s["participant_id"]: s for s in body["signers"]}
    assert mine[court.plaintiff_id]["status"] == "signed"

    # A late edit stales the signature; the plaintiff signs the new text again.
    await as_staff(api, court, "clerk", clock)
    status, body = await api.call("PUT", doc(court), entries("开庭。", "我方请求还款一万元。"))
    mine = {s["participant_id"]: s for s in body["signers"]}
    assert mine[court.plaintiff_id]["status"] == "stale"
    await as_party(api, court.plaintiff_token, clock)
    got = await code_for(api, court, court.plaintiff_id)
    status, body = await api.call(
        "POST",
        doc(court) + "/signatures",
        sign_body(court.plaintiff_id, got["code"], got["document"]["text_sha256"]),
    )
    assert status == 200
    # The defendant refuses, with a reason.
    await as_party(api, court.defendant_token, clock)
    got = await code_for(api, court, court.defendant_id)
    status, body = await api.call(
        "POST",
        doc(court) + "/refusals",
        {
            "participant_id": court.defendant_id,
            "code": got["code"],
            "text_sha256": got["document"]["text_sha256"],
            "reason": "笔录漏记了我的陈述",
        },
    )
    assert status == 200, body
    status, _ = await api.call("GET", doc(court) + "/sealed")
    assert status == 409  # not final yet

    await as_staff(api, court, "clerk", clock)
    status, final = await api.call("POST", doc(court) + "/finalise")
    assert status == 200, final
    assert final["state"] == "finalised"
    assert final["sealed"]
    async with api.client.get(doc(court) + "/sealed") as resp:
        assert resp.status == 200
        sealed = json.loads(await resp.read())
    # The court's Ed25519 signature verifies with its public key.
    verify = await asyncio.to_thread(load_verify_key, tmp_path / "keys" / "signing.pub")
    signed = {"format": FORMAT, "document": sealed["document"]}
    signature = base64.b64decode(sealed["court_signature"]["signature"])
    assert verify.verify(signature, canonical_json(signed))
    document = sealed["document"]
    assert document["text"] == final["text"]
    assert document["outcome"] == "final"
    assert [s["participant_id"] for s in document["signatures"]] == [court.plaintiff_id]
    assert document["signatures"][0]["text_sha256"] == text_sha256(final["text"])
    assert base64.b64decode(document["signatures"][0]["image_png_b64"]) == PNG
    assert document["refusals"][0]["reason"] == "笔录漏记了我的陈述"
    # The party downloads it too; the station may not.
    await as_party(api, court.plaintiff_token, clock)
    async with api.client.get(doc(court) + "/sealed") as resp:
        assert resp.status == 200
    # ... and its printed form, which says the same text and hashes.
    async with api.client.get(doc(court) + "/sealed.pdf") as resp:
        assert (resp.status, resp.content_type) == (200, "application/pdf")
        pdf = await resp.read()
    printed = await asyncio.to_thread(
        subprocess.run, ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    )
    words = "".join(printed.stdout.decode().split())
    assert "".join(final["text"].split())[:20] in words
    assert text_sha256(final["text"]) in words
    assert len(await events(api, court, clock, "record.signed")) == 2
    assert len(await events(api, court, clock, "record.signing_refused")) == 1
    (finalised,) = await events(api, court, clock, "record.finalised")
    assert finalised["data"]["time_anchor"] == "no TSA configured"


async def rejected(api: Api, court: CourtWorld, clock: FakeClock) -> list[str]:
    return [e["data"]["code"] for e in await events(api, court, clock, "record.signature_rejected")]


async def test_text_changed_since_shown_is_refused_and_logged(
    api: Api, world: World, clock: FakeClock
) -> None:
    court = world.own
    await start_signing(api, court, clock)
    await as_party(api, court.plaintiff_token, clock)
    got = await code_for(api, court, court.plaintiff_id)
    await as_staff(api, court, "clerk", clock)
    await api.call("PUT", doc(court), entries("开庭。", "改过的陈述。"))
    await as_party(api, court.plaintiff_token, clock)
    status, body = await api.call(
        "POST",
        doc(court) + "/signatures",
        sign_body(court.plaintiff_id, got["code"], got["document"]["text_sha256"]),
    )
    assert (status, body["code"]) == (409, "TEXT_CHANGED")
    assert await rejected(api, court, clock) == ["TEXT_CHANGED"]


async def test_reused_and_wrong_codes_are_refused_and_logged(
    api: Api, world: World, clock: FakeClock
) -> None:
    court = world.own
    shown = (await start_signing(api, court, clock))["text_sha256"]
    await as_party(api, court.plaintiff_token, clock)
    got = await code_for(api, court, court.plaintiff_id)
    wrong = "000000" if got["code"] != "000000" else "111111"
    status, body = await api.call(
        "POST", doc(court) + "/signatures", sign_body(court.plaintiff_id, wrong, shown)
    )
    assert (status, body["code"]) == (403, "CODE_INVALID")
    status, _ = await api.call(
        "POST", doc(court) + "/signatures", sign_body(court.plaintiff_id, got["code"], shown)
    )
    assert status == 200
    status, body = await api.call(
        "POST", doc(court) + "/signatures", sign_body(court.plaintiff_id, got["code"], shown)
    )
    assert (status, body["code"]) == (403, "CODE_USED")
    # A new code replaces an unused one: the old one no longer signs.
    old = (await code_for(api, court, court.plaintiff_id))["code"]
    new = (await code_for(api, court, court.plaintiff_id))["code"]
    status, body = await api.call(
        "POST", doc(court) + "/signatures", sign_body(court.plaintiff_id, old, shown)
    )
    assert status == 403
    assert old == new or body["code"] == "CODE_USED"
    assert (await rejected(api, court, clock))[:2] == ["CODE_INVALID", "CODE_USED"]


async def test_signing_for_someone_else_is_refused_and_logged(
    api: Api, world: World, clock: FakeClock
) -> None:
    court = world.own
    shown = (await start_signing(api, court, clock))["text_sha256"]
    await as_party(api, court.plaintiff_token, clock)
    status, body = await api.call(
        "POST", doc(court) + "/code", {"participant_id": court.defendant_id}
    )
    assert (status, body["code"]) == (403, "NOT_YOUR_SIGNATURE")
    mine = (await code_for(api, court, court.plaintiff_id))["code"]
    status, body = await api.call(
        "POST", doc(court) + "/signatures", sign_body(court.defendant_id, mine, shown, "被告")
    )
    assert (status, body["code"]) == (403, "NOT_YOUR_SIGNATURE")
    # Staff never sign in a party's name; the station only for people it checked in person.
    for role in ("clerk", "judge"):
        await as_staff(api, court, role, clock)
        status, body = await api.call(
            "POST", doc(court) + "/signatures", sign_body(court.plaintiff_id, mine, shown)
        )
        assert (status, body["code"]) == (403, "NOT_YOUR_SIGNATURE")
    api.client.session.cookie_jar.clear()
    assert (await api.station_login(court.station_id, court.station_key))[0] == 200
    status, body = await api.call(
        "POST", doc(court) + "/code", {"participant_id": court.plaintiff_id}
    )
    assert (status, body["code"]) == (403, "NOT_YOUR_SIGNATURE")
    assert await rejected(api, court, clock) == ["NOT_YOUR_SIGNATURE"] * 5


async def test_nothing_changes_after_the_record_is_final(
    api: Api, world: World, clock: FakeClock
) -> None:
    court = world.own
    shown = (await start_signing(api, court, clock))["text_sha256"]
    await as_party(api, court.plaintiff_token, clock)
    code = (await code_for(api, court, court.plaintiff_id))["code"]
    await as_staff(api, court, "clerk", clock)
    assert (await api.call("POST", doc(court) + "/finalise"))[0] == 200
    for method, path, body in (
        ("PUT", "", entries("改")),
        ("POST", "/signing-request", None),
        ("POST", "/finalise", None),
    ):
        status, answer = await api.call(method, doc(court) + path, body)
        assert (status, answer["code"]) == (409, "RECORD_FINALISED"), path
    await as_party(api, court.plaintiff_token, clock)
    status, answer = await api.call(
        "POST", doc(court) + "/signatures", sign_body(court.plaintiff_id, code, shown)
    )
    assert (status, answer["code"]) == (409, "RECORD_FINALISED")
    status, answer = await api.call(
        "POST", doc(court) + "/code", {"participant_id": court.plaintiff_id}
    )
    assert (status, answer["code"]) == (409, "RECORD_FINALISED")
    assert await rejected(api, court, clock) == ["RECORD_FINALISED"] * 2


AGREEMENT = {
    "terms": ["双方自愿达成如下协议。"],
    "amounts": [{"payer": "被告", "payee": "原告", "amount": "12000", "due": "2026-12-31"}],
    "deadlines": [{"what": "被告归还借用的农机", "by": "2026-12-20"}],
}


async def agreement_signing(api: Api, court: CourtWorld, clock: FakeClock) -> str:
    await as_staff(api, court, "clerk", clock)
    status, body = await api.call("PUT", doc(court, "agreement"), AGREEMENT)
    assert (status, body["code"]) == (403, "FORBIDDEN")  # the mediator (or judge) drafts it
    await as_staff(api, court, "mediator", clock)
    status, body = await api.call("PUT", doc(court, "agreement"), AGREEMENT)
    assert status == 200, body
    assert "被告 向 原告 支付人民币 12000.00 元，于 2026年12月31日 前付清。" in body["text"]
    assert "被告归还借用的农机，于 2026年12月20日 前完成。" in body["text"]
    status, body = await api.call("POST", doc(court, "agreement") + "/signing-request")
    assert status == 200
    return str(body["text_sha256"])


async def test_agreement_takes_effect_at_the_last_signature(
    api: Api, world: World, clock: FakeClock
) -> None:
    court = world.own
    shown = await agreement_signing(api, court, clock)
    for token, pid in (
        (court.plaintiff_token, court.plaintiff_id),
        (court.defendant_token, court.defendant_id),
    ):
        await as_party(api, token, clock)
        code = (await code_for(api, court, pid, "agreement"))["code"]
        status, body = await api.call(
            "POST", doc(court, "agreement") + "/signatures", sign_body(pid, code, shown)
        )
        assert status == 200, body
    assert body["state"] == "effective"
    assert body["sealed"]
    effective = await events(api, court, clock, "agreement.effective")
    assert [e["data"]["document_id"] for e in effective] == [body["id"]]
    await as_staff(api, court, "mediator", clock)
    status, answer = await api.call("PUT", doc(court, "agreement"), AGREEMENT)
    assert (status, answer["code"]) == (409, "RECORD_FINALISED")


async def test_a_refusal_ends_the_mediation(api: Api, world: World, clock: FakeClock) -> None:
    court = world.own
    shown = await agreement_signing(api, court, clock)
    await as_party(api, court.defendant_token, clock)
    code = (await code_for(api, court, court.defendant_id, "agreement"))["code"]
    status, body = await api.call(
        "POST",
        doc(court, "agreement") + "/refusals",
        {
            "participant_id": court.defendant_id,
            "code": code,
            "text_sha256": shown,
            "reason": "金额太高",
        },
    )
    assert status == 200, body
    assert body["state"] == "failed"
    assert body["sealed"]
    failed = await events(api, court, clock, "mediation.failed")
    assert [(e["data"]["reason"], e["data"]["document_id"]) for e in failed] == [
        ("金额太高", body["id"])
    ]


async def test_a_failed_mediation_is_sent_on_to_a_hearing_with_its_record(
    api: Api, world: World, clock: FakeClock
) -> None:
    court = world.own
    body = {
        "title": "转为审判",
        "scheduled_start": "2026-12-20T09:00:00+08:00",
        "duration_minutes": 90,
        "presiding_user_id": court.user_ids["judge"],
        "clerk_user_id": court.user_ids["clerk"],
    }
    send_on = f"/api/hearings/{court.hearing_id}/record/send-on"
    await as_staff(api, court, "judge", clock)
    status, answer = await api.call("POST", send_on, body)
    assert (status, answer["code"]) == (409, "WRONG_STATE")  # it has not failed
    shown = await agreement_signing(api, court, clock)
    await as_party(api, court.defendant_token, clock)
    code = (await code_for(api, court, court.defendant_id, "agreement"))["code"]
    refusal = {"participant_id": court.defendant_id, "code": code, "text_sha256": shown}
    status, failed = await api.call(
        "POST", doc(court, "agreement") + "/refusals", {**refusal, "reason": "不同意"}
    )
    assert failed["state"] == "failed"
    await as_staff(api, court, "mediator", clock)
    status, answer = await api.call(
        "POST", send_on, {**body, "presiding_user_id": court.user_ids["mediator"]}
    )
    assert (status, answer["code"]) == (400, "BAD_FIELD")  # a judge hears it
    status, sent = await api.call("POST", send_on, body)
    assert status == 201, sent
    assert sent["source_document_ids"] == [failed["id"]]
    status, answer = await api.call("POST", send_on, body)
    assert (status, answer["code"]) == (409, "CONFLICT")
    # The new hearing: the same case, heard now, the same people, linked to the record.
    status, hearing = await api.call("GET", f"/api/hearings/{sent['hearing_id']}")
    assert hearing["case_id"] == court.case_id
    status, case = await api.call("GET", f"/api/cases/{court.case_id}")
    assert case["mode"] == "hearing"
    status, people = await api.call("GET", f"/api/hearings/{sent['hearing_id']}/participants")
    assert {"plaintiff", "defendant"} <= {p["role"] for p in people}
    status, transcript = await api.call(
        "GET", f"/api/hearings/{sent['hearing_id']}/record/transcript"
    )
    assert transcript["source_document_ids"] == [failed["id"]]
    assert transcript["version"] == 0


async def test_a_witness_cannot_follow_the_hearing_through_its_record(
    api: Api, world: World, clock: FakeClock
) -> None:
    court = world.own
    await start_signing(api, court, clock)
    await as_staff(api, court, "judge", clock)
    status, witness = await api.call(
        "POST",
        f"/api/hearings/{court.hearing_id}/participants",
        {"display_name": "证人", "role": "witness", "legal_name": "证人", "id_number_tail": "1234"},
    )
    assert status == 201, witness
    status, issued = await api.call(
        "POST", f"/api/hearings/{court.hearing_id}/participants/{witness['id']}/invitations", {}
    )
    assert status == 201, issued
    await as_party(api, issued["url"].split("#", 1)[1], clock)
    for path in (f"/api/hearings/{court.hearing_id}/record", doc(court)):
        status, body = await api.call("GET", path)
        assert (status, body["code"]) == (403, "FORBIDDEN"), path
    status, body = await api.call("POST", doc(court) + "/code", {"participant_id": witness["id"]})
    assert (status, body["code"]) == (403, "FORBIDDEN")
