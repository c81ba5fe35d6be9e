"""Idempotent starts: a start resent with its key gets the first one's transfer, and nothing new starts."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from graph.core.relay import to_global_id
from models import bulk, running, starting
from models.idempotency import IdempotencyKey
from models.transfers import Transfer
from tests.support import Api, GraphQLErrors, World, make_world, run_pairs

START = """
mutation ($s: Int!, $t: Int!, $confirm: Boolean!, $key: String) {
  startTransfer(input: {sourceUserId: $s, targetUserId: $t, confirm: $confirm, idempotencyKey: $key}) {
    transfer { id status }
    userErrors { code message field }
  }
}"""
START_BULK = """
mutation ($id: ID!, $key: String) {
  startBulkTransfer(input: {uploadId: $id, confirm: true, idempotencyKey: $key}) {
    transfer { id status } userErrors { code message field }
  }
}"""
RETRY = """
mutation ($id: ID!, $key: String) {
  retryFailedTransfers(transferId: $id, confirm: true, idempotencyKey: $key) {
    transfer { id status } userErrors { code message field }
  }
}"""


async def start(api: Api, token: str, s: int, t: int, key: str | None, confirm: bool = True) -> dict:
    return (await api(START, token, s=s, t=t, confirm=confirm, key=key))["startTransfer"]


async def transfers_of(world: World) -> int:
    return await Transfer.filter(tenant_id=world.tenant.id).count()


async def test_a_start_resent_after_its_response_was_lost_gets_the_same_transfer_and_deletes_nothing(
    api: Api, world: World
) -> None:
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(10, "ACCUMULATED_VACATION_HOURS", 2)
    await world.give(10, "SKILL_MAPPING", 3)
    first = await start(api, world.admin, 10, 11, key="req-7f3a")
    assert first["userErrors"] == []
    done = await api.wait_finished(world.admin, first["transfer"]["id"])
    assert done["status"] == "SUCCEEDED"
    received = await world.owned(11)
    again = await start(api, world.admin, 10, 11, key="req-7f3a")  # the response was lost: the client resends
    assert again["userErrors"] == []
    assert again["transfer"] == {"id": first["transfer"]["id"], "status": "SUCCEEDED"}
    assert await transfers_of(world) == 1
    assert await world.owned(11) == received == {"AGENT_SCHEDULE": 1, "ACCUMULATED_VACATION_HOURS": 2, "SKILL_MAPPING": 3}


async def test_a_resent_start_gets_its_transfer_while_it_is_still_queued_not_user_busy(api: Api, world: World) -> None:
    await world.stock(10)
    queued, problems = await starting.start_single(world.users[1], 10, 11, "k1")  # no worker job: stays QUEUED
    assert problems == []
    again = await start(api, world.admin, 10, 11, key="k1")
    assert again == {"transfer": {"id": to_global_id("Transfer", queued.id), "status": "QUEUED"}, "userErrors": []}
    assert await transfers_of(world) == 1
    await running.cancel(queued)


async def test_the_same_key_with_another_input_is_refused_as_reused_and_starts_nothing(api: Api, world: World) -> None:
    await world.stock(10, 12)
    first = await start(api, world.admin, 10, 11, key="k1")
    await api.wait_finished(world.admin, first["transfer"]["id"])
    other = await start(api, world.admin, 12, 13, key="k1")
    assert other["transfer"] is None
    assert [(e["code"], e["field"]) for e in other["userErrors"]] == [("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])]
    assert await transfers_of(world) == 1
    assert await world.owned(12) == {"CCR": 1}


async def test_twenty_concurrent_starts_with_one_key_create_one_transfer(api: Api, world: World) -> None:
    # Races on SQLite too: the checks before the transaction interleave, and the key's unique
    # constraint decides (without it, nineteen would be told USER_BUSY).
    await world.stock(10)
    results = await asyncio.gather(*(start(api, world.admin, 10, 11, key="burst") for _ in range(20)))
    assert all(r["userErrors"] == [] for r in results), [r["userErrors"] for r in results]
    ids = {r["transfer"]["id"] for r in results}
    assert len(ids) == 1
    assert await transfers_of(world) == 1
    assert (await api.wait_finished(world.admin, ids.pop()))["status"] == "SUCCEEDED"


async def test_a_key_belongs_to_its_operator_and_tenant(api: Api, world: World) -> None:
    await world.stock(10, 12)
    mine = await start(api, world.admin, 10, 11, key="shared")
    theirs = await start(api, world.lead, 12, 13, key="shared")  # another operator's key of the same name
    assert theirs["userErrors"] == [] and theirs["transfer"]["id"] != mine["transfer"]["id"]
    other = await make_world()
    await other.stock(10)
    elsewhere = await start(api, other.admin, 10, 11, key="shared")
    assert elsewhere["userErrors"] == [] and elsewhere["transfer"]["id"] not in (mine["transfer"]["id"], theirs["transfer"]["id"])
    for token, gid in ((world.admin, mine), (world.admin, theirs), (other.admin, elsewhere)):
        await api.wait_finished(token, gid["transfer"]["id"])


async def test_a_key_is_forgotten_after_24_hours(api: Api, world: World) -> None:
    await world.stock(10, 12)
    first = await start(api, world.admin, 10, 11, key="daily")
    await api.wait_finished(world.admin, first["transfer"]["id"])
    row = await IdempotencyKey.get(operator_id=world.pk(1), key="daily")
    await IdempotencyKey.filter(id=row.id).update(created_at=row.created_at - timedelta(hours=24, seconds=1))
    later = await start(api, world.admin, 12, 13, key="daily")  # another input: the old request is forgotten
    assert later["userErrors"] == [] and later["transfer"]["id"] != first["transfer"]["id"]
    await api.wait_finished(world.admin, later["transfer"]["id"])
    assert await IdempotencyKey.filter(operator_id=world.pk(1), key="daily").count() == 1


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/Adak"])  # UTC+14, UTC-10
async def test_a_key_lives_24_hours_whatever_the_servers_time_zone(world: World, zone: str) -> None:
    await world.stock(10, 12, 14)
    admin = world.users[1]
    kept, _ = await starting.start_single(admin, 10, 11, idempotency_key="zoned-kept")
    gone, _ = await starting.start_single(admin, 12, 13, idempotency_key="zoned-gone")
    for key, age in (("zoned-kept", timedelta(hours=23)), ("zoned-gone", timedelta(hours=24, minutes=1))):
        await IdempotencyKey.filter(operator_id=admin.id, key=key).update(created_at=datetime.now(timezone.utc) - age)
    was = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        again, problems = await starting.start_single(admin, 10, 11, idempotency_key="zoned-kept")
        assert problems == [] and again.id == kept.id
        other, problems = await starting.start_single(admin, 14, 15, idempotency_key="zoned-gone")
        assert problems == [] and other.id != gone.id  # forgotten: another request may use the key
    finally:
        if was is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = was
        time.tzset()
    for t in (kept, gone, other):
        await running.cancel(t)


async def test_a_key_that_is_empty_too_long_or_not_printable_is_refused(api: Api, world: World) -> None:
    await world.stock(10)
    for bad in ("", "x" * 256, "tab\there", "line\n"):
        refused = await start(api, world.admin, 10, 11, key=bad)
        assert refused["transfer"] is None
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
            ("INVALID_IDEMPOTENCY_KEY", ["input", "idempotencyKey"])
        ], repr(bad)
    with pytest.raises(GraphQLErrors) as nul:  # no text the database can store (tests/test_text_arguments.py)
        await start(api, world.admin, 10, 11, key="\x00")
    assert nul.value.codes == ["INVALID_TEXT"]
    assert await transfers_of(world) == 0
    ok = await start(api, world.admin, 10, 11, key="é" * 255)  # 255 printable characters, not bytes
    assert ok["userErrors"] == []
    await api.wait_finished(world.admin, ok["transfer"]["id"])
    await world.stock(12)
    one = await start(api, world.admin, 12, 13, key="x")  # one character is a key
    assert one["userErrors"] == []
    await api.wait_finished(world.admin, one["transfer"]["id"])


async def test_without_confirm_a_known_key_still_needs_confirmation(api: Api, world: World) -> None:
    await world.stock(10)
    first = await start(api, world.admin, 10, 11, key="k1")
    await api.wait_finished(world.admin, first["transfer"]["id"])
    unconfirmed = await start(api, world.admin, 10, 11, key="k1", confirm=False)
    assert unconfirmed["transfer"] is None
    assert "CONFIRMATION_REQUIRED" in [e["code"] for e in unconfirmed["userErrors"]]


async def test_a_resent_bulk_start_gets_its_transfer_not_upload_already_used(api: Api, world: World) -> None:
    await world.stock(10)
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n10,20\n"))["upload"]
    first = (await api(START_BULK, world.admin, id=upload["id"], key="bulk-1"))["startBulkTransfer"]
    await api.wait_finished(world.admin, first["transfer"]["id"])
    again = (await api(START_BULK, world.admin, id=upload["id"], key="bulk-1"))["startBulkTransfer"]
    assert again["userErrors"] == [] and again["transfer"]["id"] == first["transfer"]["id"]
    other = (await api.upload(world.admin, "Source User ID,Target User ID\n20,21\n"))["upload"]
    reused = (await api(START_BULK, world.admin, id=other["id"], key="bulk-1"))["startBulkTransfer"]
    assert [(e["code"], e["field"]) for e in reused["userErrors"]] == [("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])]
    assert await transfers_of(world) == 1


async def test_a_resent_retry_gets_its_retry_not_already_retried(api: Api, world: World) -> None:
    await world.stock(10, 11)
    admin = world.users[1]
    failing, _ = await bulk.start(admin, await bulk.create_upload(admin, "a.csv", b"Source User ID,Target User ID\n10,20\n11,21\n"))
    world.users[21].tenant_admin = True  # the second pair fails
    await world.users[21].save()
    await run_pairs(failing.id)
    world.users[21].tenant_admin = False
    await world.users[21].save()
    gid = to_global_id("Transfer", failing.id)
    first = (await api(RETRY, world.admin, id=gid, key="retry-1"))["retryFailedTransfers"]
    assert first["userErrors"] == []
    await api.wait_finished(world.admin, first["transfer"]["id"])
    again = (await api(RETRY, world.admin, id=gid, key="retry-1"))["retryFailedTransfers"]
    assert again["userErrors"] == [] and again["transfer"]["id"] == first["transfer"]["id"]
    bad = (await api(RETRY, world.admin, id=gid, key=""))["retryFailedTransfers"]
    assert [(e["code"], e["field"]) for e in bad["userErrors"]] == [("INVALID_IDEMPOTENCY_KEY", ["idempotencyKey"])]
    assert await transfers_of(world) == 2


async def test_a_resent_start_never_shows_a_transfer_whose_users_have_left_the_view(api: Api, world: World) -> None:
    from models.tenancy import TeamMember

    await world.stock(12)
    first = await start(api, world.lead, 12, 13, key="moved-away")
    assert first["userErrors"] == []
    await api.wait_finished(world.lead, first["transfer"]["id"])
    west = (await TeamMember.get(user_id=world.pk(30))).team_id
    await TeamMember.filter(user_id=world.pk(13)).update(team_id=west)  # 13 has left East since
    again = await start(api, world.lead, 12, 13, key="moved-away")
    assert again["transfer"] is None
    assert [(e["code"], e["message"], e["field"]) for e in again["userErrors"]] == [
        ("TRANSFER_NOT_FOUND", "No such transfer.", ["input", "idempotencyKey"])
    ]
    assert await transfers_of(world) == 1


async def test_one_key_sent_with_a_revert_and_then_a_retry_of_the_same_transfer_is_reused(api: Api, world: World) -> None:
    """The fingerprint tells the mutations apart, not only their inputs."""
    await world.stock(10, 11)
    admin = world.users[1]
    failing, _ = await bulk.start(admin, await bulk.create_upload(admin, "a.csv", b"Source User ID,Target User ID\n10,20\n11,21\n"))
    world.users[21].tenant_admin = True  # the second pair fails, the first succeeds: revertible and retryable
    await world.users[21].save()
    await run_pairs(failing.id)
    world.users[21].tenant_admin = False
    await world.users[21].save()
    gid = to_global_id("Transfer", failing.id)
    revert = """mutation ($id: ID!, $key: String) {
      revertTransfer(input: {transferId: $id, confirm: true, idempotencyKey: $key}) { transfer { id kind } userErrors { code } } }"""
    reverted = (await api(revert, world.admin, id=gid, key="one-key"))["revertTransfer"]
    assert reverted["userErrors"] == [] and reverted["transfer"]["kind"] == "REVERT"
    retried = (await api(RETRY, world.admin, id=gid, key="one-key"))["retryFailedTransfers"]
    assert retried["transfer"] is None
    assert [e["code"] for e in retried["userErrors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    assert await transfers_of(world) == 2


async def test_a_key_taken_by_another_request_between_the_check_and_the_start_is_reused_not_stolen(
    world: World, monkeypatch
) -> None:
    """Forced interleaving: the first request with the key commits right after the second one
    has found the key free; the second is refused, and the first keeps its transfer."""
    from models import idempotency

    await world.stock(10, 12)
    admin = world.users[1]
    prior = idempotency.prior
    first: list[Transfer] = []

    async def another_request_commits_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        answer = await prior(*args, **kwargs)
        if not first:
            monkeypatch.setattr(idempotency, "prior", prior)
            started, problems = await starting.start_single(admin, 10, 11, idempotency_key="shared")
            assert problems == [] and started is not None
            first.append(started)
        return answer

    monkeypatch.setattr(idempotency, "prior", another_request_commits_meanwhile)
    second, problems = await starting.start_single(admin, 12, 13, idempotency_key="shared")
    assert second is None and [p.code for p in problems] == ["IDEMPOTENCY_KEY_REUSED"]
    resent, problems = await starting.start_single(admin, 10, 11, idempotency_key="shared")
    assert problems == [] and resent is not None and resent.id == first[0].id
    assert await transfers_of(world) == 1
    await running.cancel(first[0])


def test_a_start_without_a_choice_of_data_types_keeps_the_fingerprint_it_had_before_there_was_a_choice() -> None:
    """Keys remembered by a version without the choice still match the same start after an upgrade."""
    from models.idempotency import choice, request

    without = request("key-1", "startBulkTransfer", uploadId=5)
    assert request("key-1", "startBulkTransfer", uploadId=5, **choice(None)) == without
    assert request("key-1", "startBulkTransfer", uploadId=5, **choice(["CCR"])) != without
