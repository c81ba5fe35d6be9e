"""Undo: a finished transfer can be reverted within its window, pair by pair, from its journal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from graph.api.transfer_events import event_cursor
from graph.core.relay import pk_of, to_global_id
from jobs import transfer as transfer_jobs
from models import bulk, revert_pairs, revert_start, running, settings, starting
from models.idempotency import KEY_REUSED
from models.journal import JournalMove, JournalRemoved
from models.tenancy import User
from models.transfers import Transfer, TransferItem
from models.userdata import AgentSchedule, Evaluation, OwnedRecord
from tests.support import START, Api, GraphQLErrors, World, audit, run_pairs
from tests.test_bulk_transfer import CANCEL, RETRY, upload_and_start

PLAN = """
query ($id: ID!) {
  revertPlan(transferId: $id) {
    transfer { id }
    impact { dataType { key } returns restores skipped }
    conflicts { rowNumber sourceUser { userId } targetUser { userId } code message }
    errors { code message field }
  }
}"""

REVERT = """
mutation ($id: ID!, $confirm: Boolean!) {
  revertTransfer(input: {transferId: $id, confirm: $confirm}) {
    transfer { id kind status totalPairs }
    userErrors { code message field }
  }
}"""

STATE = """
query ($id: ID!) {
  transfer(id: $id) {
    id kind status revertibleUntil finishedAt
    revertOf { id } revertedBy { id }
    items(first: 50) { edges { node {
      status errorCode errorMessage sourceUser { userId } targetUser { userId }
      moved { dataType { key } count } restored { dataType { key } count } skipped { dataType { key } count }
    } } }
  }
}"""


async def holdings(world: World, *user_ids: int) -> dict[int, dict[str, object]]:
    """Exactly what each user owns: record IDs per data type, evaluations per owner column."""
    found: dict[int, dict[str, object]] = {}
    for uid in user_ids:
        pk = world.pk(uid)
        rows = await OwnedRecord.filter(owner_id=pk).values_list("data_type", "id")
        mine: dict[str, object] = {}
        for key, rid in rows:
            mine.setdefault(key, set()).add(rid)  # type: ignore[union-attr]
        mine["evaluator"] = set(await Evaluation.filter(evaluator_id=pk).values_list("id", flat=True))
        mine["approver"] = set(await Evaluation.filter(approver_id=pk).values_list("id", flat=True))
        mine["schedule"] = set(await AgentSchedule.filter(user_id=pk).values_list("id", flat=True))
        found[uid] = mine
    return found


async def transfer(api: Api, world: World, s: int, t: int) -> str:
    started = (await api(START, world.admin, s=s, t=t, confirm=True))["startTransfer"]
    assert started["userErrors"] == []
    done = await api.wait_finished(world.admin, started["transfer"]["id"])
    assert done["status"] == "SUCCEEDED"
    return started["transfer"]["id"]


async def revert(api: Api, world: World, transfer_id: str) -> dict:
    started = (await api(REVERT, world.admin, id=transfer_id, confirm=True))["revertTransfer"]
    assert started["userErrors"] == [], started
    return await api.wait_finished(world.admin, started["transfer"]["id"])


async def give_every_kind(world: World) -> None:
    """Source 10 and target 11 both own COMBINE and OVERWRITE types, schedules and evaluations
    in both owner columns (one evaluation by 11 that 10 approved)."""
    await world.give(10, "CCR", 3)
    await world.give(10, "PROJECT", 2)
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(10, "EVALUATION", 2)
    await Evaluation.create(evaluator_id=world.pk(11), approver_id=world.pk(10))
    await Evaluation.create(evaluator_id=world.pk(10), approver_id=world.pk(10))
    await world.give(11, "CCR", 1)
    await world.give(11, "PROJECT", 3)
    await world.give(11, "AGENT_SCHEDULE")
    await world.give(11, "SKILL_MAPPING", 2)  # an OVERWRITE type the source lacks: kept, and not journaled


def plus(owned: dict[int, dict[str, object]], gained: dict[int, dict[str, object]]) -> dict[int, dict[str, object]]:
    return {
        uid: {key: set(ids) | set(gained.get(uid, {}).get(key, set())) for key, ids in mine.items()}  # type: ignore[call-overload]
        | {key: ids for key, ids in gained.get(uid, {}).items() if key not in mine}
        for uid, mine in owned.items()
    }


async def test_after_a_full_revert_both_users_own_what_they_owned_before_plus_what_they_gained_since(
    api: Api, world: World
) -> None:
    await give_every_kind(world)
    before = await holdings(world, 10, 11)
    transfer_id = await transfer(api, world, 10, 11)
    assert await holdings(world, 10, 11) != before
    # Gained since, in every storage and both evaluation columns: each stays with its owner.
    gained_ccr = await OwnedRecord.create(data_type="CCR", owner_id=world.pk(11))
    gained_project = await OwnedRecord.create(data_type="PROJECT", owner_id=world.pk(10))
    approved = await Evaluation.create(evaluator_id=world.pk(12), approver_id=world.pk(11))
    evaluated = await Evaluation.create(evaluator_id=world.pk(10))
    gained = {
        10: {"PROJECT": {gained_project.id}, "evaluator": {evaluated.id}},
        11: {"CCR": {gained_ccr.id}, "approver": {approved.id}},
    }

    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert plan["errors"] == [] and plan["conflicts"] == []
    impact = {i["dataType"]["key"]: (i["returns"], i["restores"], i["skipped"]) for i in plan["impact"]}
    assert impact == {"CCR": (3, 0, 0), "EVALUATION": (4, 0, 0), "AGENT_SCHEDULE": (1, 1, 0), "PROJECT": (2, 3, 0)}

    done = await revert(api, world, transfer_id)
    assert done["status"] == "SUCCEEDED" and done["kind"] == "REVERT"
    assert await holdings(world, 10, 11) == plus(before, gained)


async def test_a_revert_pair_goes_back_from_the_original_target_and_names_what_it_did(api: Api, world: World) -> None:
    await give_every_kind(world)
    transfer_id = await transfer(api, world, 10, 11)
    done = await revert(api, world, transfer_id)
    state = (await api(STATE, world.admin, id=done["id"]))["transfer"]
    (item,) = [e["node"] for e in state["items"]["edges"]]
    assert (item["sourceUser"]["userId"], item["targetUser"]["userId"]) == (11, 10)
    assert {c["dataType"]["key"]: c["count"] for c in item["moved"]} == {
        "CCR": 3, "EVALUATION": 4, "AGENT_SCHEDULE": 1, "PROJECT": 2
    }
    assert {c["dataType"]["key"]: c["count"] for c in item["restored"]} == {"AGENT_SCHEDULE": 1, "PROJECT": 3}
    assert item["skipped"] == []
    assert state["revertOf"] == {"id": transfer_id} and state["revertibleUntil"] is None

    original = (await api(STATE, world.admin, id=transfer_id))["transfer"]
    assert original["revertedBy"] == {"id": done["id"]} and original["revertibleUntil"] is None


async def test_records_gained_since_stay_and_records_that_moved_on_are_skipped(api: Api, world: World) -> None:
    await world.give(10, "CCR", 4)
    transfer_id = await transfer(api, world, 10, 11)
    moved = await OwnedRecord.filter(owner_id=world.pk(11), data_type="CCR").values_list("id", flat=True)
    await OwnedRecord.filter(id=moved[0]).delete()  # deleted since
    await OwnedRecord.filter(id=moved[1]).update(owner_id=world.pk(12))  # moved on to someone else
    await world.give(11, "CCR", 2)  # gained since: stays with 11

    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert [(i["dataType"]["key"], i["returns"], i["restores"], i["skipped"]) for i in plan["impact"]] == [
        ("CCR", 2, 0, 2)
    ]
    await revert(api, world, transfer_id)
    assert await world.owned(10) == {"CCR": 2}
    assert await world.owned(11) == {"CCR": 2}
    assert await world.owned(12) == {"CCR": 1}


async def test_the_journal_is_written_with_the_pair_and_holds_every_moved_column_and_deleted_row(
    api: Api, world: World
) -> None:
    await give_every_kind(world)
    moved_ccr = set(await OwnedRecord.filter(owner_id=world.pk(10), data_type="CCR").values_list("id", flat=True))
    replaced = await OwnedRecord.filter(owner_id=world.pk(11), data_type="PROJECT").order_by("id").values("id", "payload")
    await transfer(api, world, 10, 11)
    (item,) = await TransferItem.filter(transfer__tenant_id=world.tenant.id)
    journal = {(j.data_type, j.owner_column): j for j in await JournalMove.filter(item_id=item.id)}
    assert set(journal) == {
        ("CCR", "owner_id"), ("PROJECT", "owner_id"), ("AGENT_SCHEDULE", "user_id"),
        ("EVALUATION", "evaluator_id"), ("EVALUATION", "approver_id"),
    }  # one row per data type and owner column, whatever the number of records
    assert set(journal["CCR", "owner_id"].record_ids) == moved_ccr
    assert (len(journal["EVALUATION", "evaluator_id"].record_ids), len(journal["EVALUATION", "approver_id"].record_ids)) == (3, 2)
    assert {j.previous_owner_id for j in journal.values()} == {world.pk(10)}
    removed = {r.table_name: r.rows for r in await JournalRemoved.filter(item_id=item.id)}
    assert removed.keys() == {"owned_record", "agent_schedule"}  # SKILL_MAPPING was kept: nothing to replace it
    assert sorted(r["id"] for r in removed["owned_record"]) == [r["id"] for r in replaced]
    assert {r["data_type"] for r in removed["owned_record"]} == {"PROJECT"}


async def test_with_undo_off_a_transfer_that_overwrites_writes_no_journal(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "REVERT_DAYS", 0)  # UDT_REVERT_DAYS=0: undo off
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(11, "AGENT_SCHEDULE")
    transfer_id = await transfer(api, world, 10, 11)
    pk = pk_of(transfer_id, "Transfer")
    assert not (await Transfer.get(id=pk)).journaled
    assert await AgentSchedule.filter(user_id=world.pk(11)).count() == 1
    assert await AgentSchedule.filter(user_id=world.pk(10)).count() == 0
    items = await TransferItem.filter(transfer_id=pk).values_list("id", flat=True)
    assert len(items) == 1
    assert await JournalMove.filter(item_id__in=items).count() == 0
    assert await JournalRemoved.filter(item_id__in=items).count() == 0


async def test_a_new_schedule_since_is_a_conflict_that_changes_nothing(api: Api, world: World) -> None:
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    await world.give(10, "AGENT_SCHEDULE")  # the source got a schedule of its own since
    before = await holdings(world, 10, 11)

    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    (conflict,) = plan["conflicts"]
    assert conflict == {
        "rowNumber": None,
        "sourceUser": {"userId": 10},
        "targetUser": {"userId": 11},
        "code": "REVERT_CONFLICT",
        "message": "Agent10 Number10 (10) has Agent Schedules of their own since the transfer; it cannot take back "
        "the transferred one. Nothing of this pair was reverted.",
    }
    assert (conflict["sourceUser"]["userId"], conflict["targetUser"]["userId"]) == (10, 11)
    assert plan["impact"] == [] and plan["errors"] == []

    done = await revert(api, world, transfer_id)
    assert done["status"] == "FAILED"
    state = (await api(STATE, world.admin, id=done["id"]))["transfer"]
    (item,) = [e["node"] for e in state["items"]["edges"]]
    assert (item["errorCode"], item["errorMessage"]) == (conflict["code"], conflict["message"])
    assert await holdings(world, 10, 11) == before


async def failed_revert(api: Api, world: World, transfer_id: str) -> tuple[str, str]:
    """Revert a one-pair transfer that must fail: its pair's error code and message."""
    done = await revert(api, world, transfer_id)
    assert done["status"] == "FAILED"
    state = (await api(STATE, world.admin, id=done["id"]))["transfer"]
    (item,) = [e["node"] for e in state["items"]["edges"]]
    return item["errorCode"], item["errorMessage"]


async def test_a_put_back_the_database_refuses_fails_the_pair_as_a_conflict_and_changes_nothing(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    await world.give(10, "AGENT_SCHEDULE")
    before = await holdings(world, 10, 11)

    async def misses_it(*args: object) -> None:  # the check misses the new schedule; the unique index does not
        return None

    monkeypatch.setattr(revert_pairs, "_unique_conflicts", misses_it)
    assert await failed_revert(api, world, transfer_id) == (
        "REVERT_CONFLICT",
        "Putting back Agent Schedules would break a rule of the data (IntegrityError). Nothing of this pair was reverted.",
    )
    assert await holdings(world, 10, 11) == before


async def test_a_new_schedule_of_the_target_since_is_a_conflict_too(api: Api, world: World) -> None:
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(11, "AGENT_SCHEDULE")
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    await AgentSchedule.filter(user_id=world.pk(11)).delete()
    await world.give(11, "AGENT_SCHEDULE")  # 11's transferred schedule was replaced since
    before = await holdings(world, 10, 11)

    (conflict,) = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]["conflicts"]
    assert conflict["code"] == "REVERT_CONFLICT"
    assert conflict["message"].startswith("Agent11 Number11 (11) has new Agent Schedules since the transfer")
    done = await revert(api, world, transfer_id)
    assert done["status"] == "FAILED"
    assert await holdings(world, 10, 11) == before


async def test_a_bulk_revert_reverts_the_others_when_one_pair_conflicts(api: Api, world: World) -> None:
    for uid in (10, 12, 14):
        await world.give(uid, "AGENT_SCHEDULE")
        await world.give(uid, "CCR", 2)
    started = await upload_and_start(api, world.admin, "From User ID,To User ID\n11,10\n13,12\n15,14\n")
    transfer_id = started["transfer"]["id"]
    assert (await api.wait_finished(world.admin, transfer_id))["status"] == "SUCCEEDED"
    await world.give(12, "AGENT_SCHEDULE")  # the second pair's source has a new schedule since
    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert [(c["rowNumber"], c["code"]) for c in plan["conflicts"]] == [(3, "REVERT_CONFLICT")]
    assert {i["dataType"]["key"]: i["returns"] for i in plan["impact"]} == {"CCR": 4, "AGENT_SCHEDULE": 2}

    done = await revert(api, world, transfer_id)
    assert done["status"] == "PARTIALLY_FAILED" and done["kind"] == "REVERT"
    assert await world.owned(10) == {"CCR": 2, "AGENT_SCHEDULE": 1}
    assert await world.owned(14) == {"CCR": 2, "AGENT_SCHEDULE": 1}
    assert await world.owned(13) == {"CCR": 2, "AGENT_SCHEDULE": 1}  # the conflicting pair stays


async def test_a_transfer_is_reverted_once(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    await revert(api, world, transfer_id)
    again = (await api(REVERT, world.admin, id=transfer_id, confirm=True))["revertTransfer"]
    assert [e["code"] for e in again["userErrors"]] == ["ALREADY_REVERTED"]
    assert again["userErrors"][0]["field"] == ["input", "transferId"]
    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert [e["code"] for e in plan["errors"]] == ["ALREADY_REVERTED"]


async def test_a_revert_cannot_be_reverted(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    done = await revert(api, world, await transfer(api, world, 10, 11))
    refused = (await api(REVERT, world.admin, id=done["id"], confirm=True))["revertTransfer"]
    assert refused["userErrors"] == [
        {"code": "NOT_REVERTIBLE", "message": "A revert cannot itself be reverted.", "field": ["input", "transferId"]}
    ]


async def test_a_transfer_without_a_succeeded_pair_is_not_revertible(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    started = (await api(START, world.admin, s=10, t=11, confirm=True))["startTransfer"]
    pk = int((await Transfer.filter(tenant_id=world.tenant.id).first()).id)  # type: ignore[union-attr]
    await OwnedRecord.filter(owner_id=world.pk(10)).delete()  # emptied before its turn: NOTHING_TO_TRANSFER
    await run_pairs(pk)
    state = (await api(STATE, world.admin, id=started["transfer"]["id"]))["transfer"]
    assert state["status"] == "FAILED" and state["revertibleUntil"] is None
    plan = (await api(PLAN, world.admin, id=started["transfer"]["id"]))["revertPlan"]
    assert plan["errors"] == [{
        "code": "NOT_REVERTIBLE",
        "message": "No pair of this transfer was applied: there is nothing to revert.",
        "field": ["transferId"],
    }]


async def test_without_confirm_nothing_is_reverted(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    refused = (await api(REVERT, world.admin, id=transfer_id, confirm=False))["revertTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["CONFIRMATION_REQUIRED"] and refused["transfer"] is None
    assert await world.owned(11) == {"CCR": 2}
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 1


async def test_the_window_ends_after_the_revert_days(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    state = (await api(STATE, world.admin, id=transfer_id))["transfer"]
    assert state["revertibleUntil"] is not None

    original = await Transfer.get(tenant_id=world.tenant.id)
    await Transfer.filter(id=original.id).update(finished_at=original.finished_at - timedelta(days=31))  # the clock moved
    refused = (await api(REVERT, world.admin, id=transfer_id, confirm=True))["revertTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["REVERT_EXPIRED"]
    assert (await api(STATE, world.admin, id=transfer_id))["transfer"]["revertibleUntil"] is None

    monkeypatch.setattr(settings, "REVERT_DAYS", 40)  # the setting moved
    assert (await api(STATE, world.admin, id=transfer_id))["transfer"]["revertibleUntil"] is not None


async def revert_queued(world: World, transfer_id: str) -> Transfer:
    """A revert started in the domain and not enqueued: it stays QUEUED for the test."""
    original = await Transfer.get(id=pk_of(transfer_id, "Transfer"))
    queued, problems = await revert_start.start(world.users[1], original)
    assert problems == [] and queued is not None
    return queued


async def test_a_revert_streams_its_events_like_any_transfer(api: Api, world: World, pool) -> None:
    await world.give(10, "CCR", 2)
    queued = await revert_queued(world, await transfer(api, world, 10, 11))

    async def run_it_once_subscribed(event: dict) -> None:
        if event["type"] == "SNAPSHOT":
            await transfer_jobs.enqueue(pool, queued)

    received = await api.events(world.admin, to_global_id("Transfer", queued.id), on_event=run_it_once_subscribed)
    assert [e["type"] for e in received] == ["SNAPSHOT", "STARTED", "ITEM_SUCCEEDED", "SUCCEEDED"]
    item = received[2]
    assert (item["sourceUserId"], item["targetUserId"]) == (11, 10)
    assert item["message"] == (
        "Reverted the transfer of Agent10 Number10 (10)'s data to Agent11 Number11 (11): 2 records returned, 0 restored."
    )


async def test_a_queued_revert_can_be_cancelled_and_changes_nothing(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    queued = await revert_queued(world, await transfer(api, world, 10, 11))
    cancelled = (await api(CANCEL, world.admin, id=to_global_id("Transfer", queued.id)))["cancelTransfer"]
    assert cancelled["transfer"]["status"] == "CANCELLED"
    assert await world.owned(11) == {"CCR": 2} and await world.owned(10) == {}


async def test_the_failed_pairs_of_a_revert_are_retried_as_a_revert(api: Api, world: World) -> None:
    for uid in (10, 12):
        await world.give(uid, "AGENT_SCHEDULE")
    started = await upload_and_start(api, world.admin, "From User ID,To User ID\n11,10\n13,12\n")
    original = started["transfer"]["id"]
    await api.wait_finished(world.admin, original)
    await world.give(12, "AGENT_SCHEDULE")
    reverted = await revert(api, world, original)
    assert reverted["status"] == "PARTIALLY_FAILED"

    await AgentSchedule.filter(user_id=world.pk(12)).delete()  # the conflict is cleared
    retried = (await api(RETRY, world.admin, id=reverted["id"]))["retryFailedTransfers"]
    assert retried["userErrors"] == [] and retried["transfer"]["kind"] == "REVERT"
    assert retried["transfer"]["totalPairs"] == 1
    assert (await api.wait_finished(world.admin, retried["transfer"]["id"]))["status"] == "SUCCEEDED"
    assert await world.owned(12) == {"AGENT_SCHEDULE": 1} and await world.owned(13) == {}
    state = (await api(STATE, world.admin, id=retried["transfer"]["id"]))["transfer"]
    assert state["revertOf"] == {"id": original}


async def test_a_revert_whose_window_ended_is_not_retried(api: Api, world: World) -> None:
    await world.give(10, "AGENT_SCHEDULE")
    transfer_id = await transfer(api, world, 10, 11)
    await world.give(10, "AGENT_SCHEDULE")
    reverted = await revert(api, world, transfer_id)
    assert reverted["status"] == "FAILED"
    original = await Transfer.get(id=pk_of(transfer_id, "Transfer"))
    await Transfer.filter(id=original.id).update(finished_at=original.finished_at - timedelta(days=settings.REVERT_DAYS))
    retried = (await api(RETRY, world.admin, id=reverted["id"]))["retryFailedTransfers"]
    assert [e["code"] for e in retried["userErrors"]] == ["REVERT_EXPIRED"]


async def test_a_revert_waits_for_users_busy_elsewhere_and_keeps_its_users_busy(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    await world.give(12, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    other, _ = await starting.start_single(world.users[1], 12, 10)  # queued: 10 is busy
    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert [e["code"] for e in plan["errors"]] == ["USER_BUSY"]
    refused = (await api(REVERT, world.admin, id=transfer_id, confirm=True))["revertTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["USER_BUSY"]
    await running.cancel(other)  # type: ignore[arg-type]

    await revert_queued(world, transfer_id)  # now the revert's users are busy
    single = (await api(START, world.admin, s=11, t=13, confirm=True))["startTransfer"]
    assert [e["code"] for e in single["userErrors"]] == ["USER_BUSY"]


async def test_a_bulk_revert_takes_the_tenants_one_bulk_slot(api: Api, world: World) -> None:
    await world.stock(10, 12)
    started = await upload_and_start(api, world.admin, "From User ID,To User ID\n11,10\n")
    await api.wait_finished(world.admin, started["transfer"]["id"])
    other, _ = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "b.csv", b"Source User ID,Target User ID\n12,13\n"))
    refused = (await api(REVERT, world.admin, id=started["transfer"]["id"], confirm=True))["revertTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["BULK_TRANSFER_IN_PROGRESS"]
    await running.cancel(other)  # type: ignore[arg-type]

    queued = await revert_queued(world, started["transfer"]["id"])
    active = (await api("{ activeBulkTransfer { id kind } }", world.admin))["activeBulkTransfer"]
    assert active == {"id": to_global_id("Transfer", queued.id), "kind": "REVERT"}
    second = await upload_and_start(api, world.admin, "Source User ID,Target User ID\n12,13\n")
    assert [e["code"] for e in second["userErrors"]] == ["BULK_TRANSFER_IN_PROGRESS"]


async def test_the_transfer_rules_are_checked_again_for_each_pair_of_a_revert(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    await User.filter(id=world.pk(10)).update(tenant_admin=True)  # an admin since
    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert [c["code"] for c in plan["conflicts"]] == ["TENANT_ADMIN"] and plan["impact"] == []
    done = await revert(api, world, transfer_id)
    state = (await api(STATE, world.admin, id=done["id"]))["transfer"]
    assert [e["node"]["errorCode"] for e in state["items"]["edges"]] == ["TENANT_ADMIN"]
    assert await world.owned(11) == {"CCR": 2}


async def test_a_resent_revert_with_its_idempotency_key_gets_the_same_revert(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    keyed = """mutation ($id: ID!) { revertTransfer(input: {transferId: $id, confirm: true, idempotencyKey: "undo-1"}) {
      transfer { id } userErrors { code } } }"""
    first = (await api(keyed, world.admin, id=transfer_id))["revertTransfer"]
    again = (await api(keyed, world.admin, id=transfer_id))["revertTransfer"]
    assert first["userErrors"] == again["userErrors"] == [] and first["transfer"] == again["transfer"]
    assert await Transfer.filter(tenant_id=world.tenant.id, kind="REVERT").count() == 1


async def test_an_unknown_transfer_has_no_plan_and_no_revert(api: Api, world: World) -> None:
    gid = to_global_id("Transfer", 10**9)
    with pytest.raises(GraphQLErrors) as refused:
        await api(PLAN, world.admin, id=gid)
    assert refused.value.codes == ["TRANSFER_NOT_FOUND"]
    result = (await api(REVERT, world.admin, id=gid, confirm=True))["revertTransfer"]
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("TRANSFER_NOT_FOUND", ["input", "transferId"])]


async def test_a_transfer_of_chosen_types_is_reverted_for_those_types_only(api: Api, world: World) -> None:
    await give_every_kind(world)
    before = await holdings(world, 10, 11)
    chosen = """mutation { startTransfer(input: {sourceUserId: 10, targetUserId: 11, confirm: true,
      dataTypes: ["PROJECT", "EVALUATION"]}) { transfer { id } userErrors { code } } }"""
    started = (await api(chosen, world.admin))["startTransfer"]
    await api.wait_finished(world.admin, started["transfer"]["id"])
    assert (await world.owned(10)).keys() == {"CCR", "AGENT_SCHEDULE"}  # the rest stayed

    plan = (await api(PLAN, world.admin, id=started["transfer"]["id"]))["revertPlan"]
    assert {i["dataType"]["key"]: (i["returns"], i["restores"]) for i in plan["impact"]} == {
        "EVALUATION": (4, 0), "PROJECT": (2, 3)
    }
    done = await revert(api, world, started["transfer"]["id"])
    types = "query ($id: ID!) { transfer(id: $id) { dataTypes { key } } }"
    assert [t["key"] for t in (await api(types, world.admin, id=done["id"]))["transfer"]["dataTypes"]] == [
        "EVALUATION", "PROJECT"
    ]
    assert await holdings(world, 10, 11) == before


async def test_the_audit_log_of_a_revert_names_each_pair_and_what_it_put_back(api: Api, world: World) -> None:
    await world.give(10, "CCR", 3)
    await world.give(10, "PROJECT", 1)
    await world.give(11, "PROJECT", 2)
    transfer_id = await transfer(api, world, 10, 11)
    one = await OwnedRecord.filter(owner_id=world.pk(11), data_type="CCR").first()
    await OwnedRecord.filter(id=one.id).delete()  # type: ignore[union-attr]  # deleted since: skipped
    done = await revert(api, world, transfer_id)
    log = await audit(api, world.admin, f"/transfers/{done['id']}/audit.csv?all=1")
    header, row = log[0], dict(zip(log[0], log[1]))
    assert header[-2:] == ["Records Restored", "Records Skipped"]
    assert (row["Source User ID"], row["Target User ID"], row["Status"]) == ("11", "10", "SUCCEEDED")
    assert (row["Records Moved"], row["Records Restored"], row["Records Skipped"]) == ("3", "2", "1")


async def test_a_revert_pair_whose_journal_is_gone_fails_and_changes_nothing(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    queued = await revert_queued(world, transfer_id)
    await Transfer.filter(id=pk_of(transfer_id, "Transfer")).update(journaled=False)  # as a purge leaves it
    await run_pairs(queued.id)
    (item,) = await TransferItem.filter(transfer_id=queued.id)
    assert (item.status.value, item.error_code) == ("FAILED", "REVERT_EXPIRED")
    assert await world.owned(11) == {"CCR": 2} and await world.owned(10) == {}


async def test_reverting_one_of_two_transfers_into_one_target_returns_only_what_that_transfer_moved(
    api: Api, world: World
) -> None:
    await world.give(10, "CCR", 2)
    await world.give(10, "EVALUATION", 1)
    await world.give(11, "CCR", 3)
    await world.give(11, "EVALUATION", 2)
    before = await holdings(world, 10, 11)
    first = await transfer(api, world, 10, 12)
    await transfer(api, world, 11, 12)
    plan = (await api(PLAN, world.admin, id=first))["revertPlan"]
    assert {i["dataType"]["key"]: (i["returns"], i["skipped"]) for i in plan["impact"]} == {"CCR": (2, 0), "EVALUATION": (1, 0)}
    await revert(api, world, first)
    after = await holdings(world, 10, 11, 12)
    assert after[10] == before[10]
    assert after[11] == {"evaluator": set(), "approver": set(), "schedule": set()}
    assert after[12]["CCR"] == before[11]["CCR"] and after[12]["evaluator"] == before[11]["evaluator"]


async def test_a_transfer_still_queued_or_running_is_not_revertible_yet(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    queued, _ = await starting.start_single(world.users[1], 10, 11)
    assert queued is not None
    gid = to_global_id("Transfer", queued.id)
    why = "The transfer is still queued or running; it can be reverted once it has finished."
    for status in ("QUEUED", "RUNNING"):
        assert (await Transfer.get(id=queued.id)).status.value == status
        plan = (await api(PLAN, world.admin, id=gid))["revertPlan"]
        assert plan["errors"] == [{"code": "NOT_REVERTIBLE", "message": why, "field": ["transferId"]}]
        refused = (await api(REVERT, world.admin, id=gid, confirm=True))["revertTransfer"]
        assert refused["userErrors"] == [{"code": "NOT_REVERTIBLE", "message": why, "field": ["input", "transferId"]}]
        await running.begin(queued.id)


async def test_the_undo_window_ends_at_its_end_time_which_the_refusal_names(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    end = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)
    finished = end - timedelta(days=settings.REVERT_DAYS)
    await Transfer.filter(id=pk_of(transfer_id, "Transfer")).update(finished_at=finished)

    monkeypatch.setattr(revert_pairs, "now", lambda: end - timedelta(seconds=1))  # its last second
    assert (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]["errors"] == []

    monkeypatch.setattr(revert_pairs, "now", lambda: end)  # its end: expired
    why = "The transfer can no longer be reverted: its undo window ended at 2026-12-01T09:30:00+00:00."
    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert plan["errors"] == [{"code": "REVERT_EXPIRED", "message": why, "field": ["transferId"]}]
    refused = (await api(REVERT, world.admin, id=transfer_id, confirm=True))["revertTransfer"]
    assert refused["userErrors"] == [{"code": "REVERT_EXPIRED", "message": why, "field": ["input", "transferId"]}]
    assert (await api(STATE, world.admin, id=transfer_id))["transfer"]["revertibleUntil"] is None


async def test_a_transfer_that_was_not_journaled_is_not_revertible(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    transfer_id = await transfer(api, world, 10, 11)
    await Transfer.filter(id=pk_of(transfer_id, "Transfer")).update(journaled=False)  # ran while undo was off
    why = "This transfer was not journaled (it ran while undo was off, or before undo existed): it cannot be reverted."
    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert plan["errors"] == [{"code": "NOT_REVERTIBLE", "message": why, "field": ["transferId"]}]
    refused = (await api(REVERT, world.admin, id=transfer_id, confirm=True))["revertTransfer"]
    assert refused["userErrors"] == [{"code": "NOT_REVERTIBLE", "message": why, "field": ["input", "transferId"]}]
    assert await world.owned(11) == {"CCR": 2}


async def test_a_revert_with_only_deleted_records_to_put_back_is_planned_run_and_retried(api: Api, world: World) -> None:
    """The original target owns nothing now: the revert is not refused as NOTHING_TO_TRANSFER."""
    await world.give(10, "PROJECT", 1)
    await world.give(11, "PROJECT", 2)
    transfer_id = await transfer(api, world, 10, 11)
    await OwnedRecord.filter(owner_id=world.pk(11)).delete()  # what it was given is gone since
    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert plan["errors"] == [] and plan["conflicts"] == []
    assert [(i["dataType"]["key"], i["returns"], i["restores"], i["skipped"]) for i in plan["impact"]] == [
        ("PROJECT", 0, 2, 1)
    ]

    await User.filter(id=world.pk(10)).update(tenant_admin=True)  # the revert's pair fails on its turn
    reverted = await revert(api, world, transfer_id)
    assert reverted["status"] == "FAILED"
    admin = "Target user Agent10 Number10 (10) is a tenant admin; tenant admins cannot be transferred."
    state = (await api(STATE, world.admin, id=reverted["id"]))["transfer"]
    assert [(e["node"]["errorCode"], e["node"]["errorMessage"]) for e in state["items"]["edges"]] == [("TENANT_ADMIN", admin)]
    refused = (await api(RETRY, world.admin, id=reverted["id"]))["retryFailedTransfers"]
    assert refused == {"transfer": None, "userErrors": [{"code": "TENANT_ADMIN", "message": admin}]}

    await User.filter(id=world.pk(10)).update(tenant_admin=False)
    retried = (await api(RETRY, world.admin, id=reverted["id"]))["retryFailedTransfers"]
    assert retried["userErrors"] == []
    assert (await api.wait_finished(world.admin, retried["transfer"]["id"]))["status"] == "SUCCEEDED"
    assert await world.owned(11) == {"PROJECT": 2} and await world.owned(10) == {}


RETRY_KEYED = """
mutation ($id: ID!) { retryFailedTransfers(transferId: $id, confirm: true, idempotencyKey: "retry-1") {
  transfer { id kind dataTypes { key } } userErrors { code message } } }"""


async def test_the_retry_of_a_revert_moves_the_reverts_data_types_and_is_resent_safely(api: Api, world: World) -> None:
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(10, "CCR", 2)
    chosen = """mutation { startTransfer(input: {sourceUserId: 10, targetUserId: 11, confirm: true,
      dataTypes: ["AGENT_SCHEDULE"]}) { transfer { id } userErrors { code } } }"""
    transfer_id = (await api(chosen, world.admin))["startTransfer"]["transfer"]["id"]
    await api.wait_finished(world.admin, transfer_id)
    await world.give(10, "AGENT_SCHEDULE")  # a conflict: the revert fails
    reverted = await revert(api, world, transfer_id)
    assert reverted["status"] == "FAILED"
    await AgentSchedule.filter(user_id=world.pk(10)).delete()  # cleared

    first = (await api(RETRY_KEYED, world.admin, id=reverted["id"]))["retryFailedTransfers"]
    again = (await api(RETRY_KEYED, world.admin, id=reverted["id"]))["retryFailedTransfers"]
    assert first["userErrors"] == again["userErrors"] == [] and again["transfer"] == first["transfer"]
    assert first["transfer"]["kind"] == "REVERT" and first["transfer"]["dataTypes"] == [{"key": "AGENT_SCHEDULE"}]
    assert (await api.wait_finished(world.admin, first["transfer"]["id"]))["status"] == "SUCCEEDED"
    assert await world.owned(10) == {"AGENT_SCHEDULE": 1, "CCR": 2} and await world.owned(11) == {}


async def test_the_retry_of_a_bulk_revert_takes_the_tenants_bulk_slot(api: Api, world: World) -> None:
    for uid in (10, 12):
        await world.give(uid, "AGENT_SCHEDULE")
    started = await upload_and_start(api, world.admin, "From User ID,To User ID\n11,10\n13,12\n")
    await api.wait_finished(world.admin, started["transfer"]["id"])
    await world.give(12, "AGENT_SCHEDULE")
    reverted = await revert(api, world, started["transfer"]["id"])
    assert reverted["status"] == "PARTIALLY_FAILED"
    await AgentSchedule.filter(user_id=world.pk(12)).delete()

    retrying, problems = await bulk.retry(world.users[1], await Transfer.get(id=pk_of(reverted["id"], "Transfer")))
    assert problems == [] and retrying is not None  # queued, not run
    active = (await api("{ activeBulkTransfer { id kind } }", world.admin))["activeBulkTransfer"]
    assert active == {"id": to_global_id("Transfer", retrying.id), "kind": "REVERT"}


async def test_the_plan_of_a_bulk_revert_names_the_bulk_in_progress_first_then_every_busy_user(
    api: Api, world: World
) -> None:
    await world.stock(10, 12, 14, 15, 16)
    started = await upload_and_start(api, world.admin, "Source User ID,Target User ID\n10,11\n12,13\n")
    transfer_id = started["transfer"]["id"]
    await api.wait_finished(world.admin, transfer_id)
    upload = await bulk.create_upload(world.users[1], "b.csv", b"Source User ID,Target User ID\n14,11\n15,13\n")
    other, _ = await bulk.start(world.users[1], upload)  # queued: the bulk slot, 11 and 13 are taken

    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    busy = "Source user Agent{0} Number{0} ({0}) is in a transfer that is queued or running."
    assert plan["errors"] == [
        {"code": "BULK_TRANSFER_IN_PROGRESS", "message": "Another bulk transfer of this tenant is queued or running.",
         "field": ["transferId"]},
        {"code": "USER_BUSY", "message": busy.format(11), "field": ["transferId"]},
        {"code": "USER_BUSY", "message": busy.format(13), "field": ["transferId"]},
    ]
    await running.cancel(other)  # type: ignore[arg-type]
    single, _ = await starting.start_single(world.users[1], 16, 17)  # a single transfer takes no bulk slot
    assert single is not None
    assert (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]["errors"] == []


async def test_a_key_used_for_the_revert_of_one_transfer_is_refused_for_another(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    await world.give(12, "CCR", 2)
    first, second = await transfer(api, world, 10, 11), await transfer(api, world, 12, 13)
    keyed = """mutation ($id: ID!) { revertTransfer(input: {transferId: $id, confirm: true, idempotencyKey: "undo-1"}) {
      transfer { id } userErrors { code message field } } }"""
    assert (await api(keyed, world.admin, id=first))["revertTransfer"]["userErrors"] == []
    refused = (await api(keyed, world.admin, id=second))["revertTransfer"]
    assert refused == {
        "transfer": None,
        "userErrors": [{"code": KEY_REUSED.code, "message": KEY_REUSED.message, "field": ["input", "idempotencyKey"]}],
    }
    assert await Transfer.filter(tenant_id=world.tenant.id, kind="REVERT").count() == 1


async def test_only_the_applied_pairs_of_a_transfer_are_reverted(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    await world.give(12, "CCR", 2)
    upload = await bulk.create_upload(world.users[1], "b.csv", b"Source User ID,Target User ID\n10,11\n12,13\n")
    started, _ = await bulk.start(world.users[1], upload)
    assert started is not None
    await OwnedRecord.filter(owner_id=world.pk(12)).delete()  # emptied before its turn: its pair fails
    await run_pairs(started.id)
    assert (await Transfer.get(id=started.id)).status.value == "PARTIALLY_FAILED"

    done = await revert(api, world, to_global_id("Transfer", started.id))
    assert done["totalPairs"] == 1 and done["status"] == "SUCCEEDED"
    state = (await api(STATE, world.admin, id=done["id"]))["transfer"]
    assert [(e["node"]["sourceUser"]["userId"], e["node"]["targetUser"]["userId"]) for e in state["items"]["edges"]] == [
        (11, 10)
    ]
    assert await world.owned(10) == {"CCR": 2} and await world.owned(11) == {}


async def test_a_schedule_that_moved_on_and_was_replaced_since_is_left_where_it_is_and_the_revert_says_so(
    api: Api, world: World
) -> None:
    await world.give(10, "AGENT_SCHEDULE")  # the target had none: nothing was deleted
    transfer_id = await transfer(api, world, 10, 11)
    await AgentSchedule.filter(user_id=world.pk(11)).delete()
    await world.give(11, "AGENT_SCHEDULE")  # a new one since: no deleted one competes with it
    plan = (await api(PLAN, world.admin, id=transfer_id))["revertPlan"]
    assert plan["errors"] == [] and plan["conflicts"] == []
    assert [(i["dataType"]["key"], i["returns"], i["restores"], i["skipped"]) for i in plan["impact"]] == [
        ("AGENT_SCHEDULE", 0, 0, 1)
    ]

    done = await revert(api, world, transfer_id)
    assert done["status"] == "SUCCEEDED"
    assert await world.owned(11) == {"AGENT_SCHEDULE": 1} and await world.owned(10) == {}
    events = await api.events(world.admin, done["id"], after=event_cursor(pk_of(done["id"], "Transfer"), 0))
    assert [e["message"] for e in events if e["type"] == "ITEM_SUCCEEDED"] == [
        "Reverted the transfer of Agent10 Number10 (10)'s data to Agent11 Number11 (11): 0 records returned, "
        "0 restored, 1 left where they are (they moved on since)."
    ]


async def test_a_put_back_the_database_refuses_names_every_data_type_of_that_table(api: Api, world: World) -> None:
    for uid in (10, 11):
        await world.give(uid, "PROJECT", 1)
        await world.give(uid, "SKILL_MAPPING", 1)
    deleted = await OwnedRecord.get(owner_id=world.pk(11), data_type="PROJECT")
    transfer_id = await transfer(api, world, 10, 11)
    await OwnedRecord.create(id=deleted.id, data_type="CCR", owner_id=world.pk(12))  # its ID is taken since
    before = await holdings(world, 10, 11, 12)

    assert await failed_revert(api, world, transfer_id) == (
        "REVERT_CONFLICT",
        "Putting back Skill Mappings, Projects would break a rule of the data (IntegrityError). "
        "Nothing of this pair was reverted.",
    )
    assert await holdings(world, 10, 11, 12) == before
