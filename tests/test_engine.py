"""Applying a pair: COMBINE, OVERWRITE, both evaluation owners, one schedule, exactly once."""

from __future__ import annotations

import pytest
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models import engine, running, starting, transfer_events
from models.rules import check_pairs
from models.transfers import ItemStatus, Transfer, TransferItem, TransferKind, TransferStatus
from models.userdata import AgentSchedule, Evaluation, OwnedRecord
from tests.support import START, Api, World


async def _start(world: World, source: int, target: int) -> Transfer:
    transfer, problems = await starting.start_single(world.users[1], source, target)
    assert problems == []
    return transfer


async def _run(transfer: Transfer) -> list[transfer_events.Event]:
    events = await running.begin(transfer.id)
    for item_id in await TransferItem.filter(transfer_id=transfer.id).values_list("id", flat=True):
        events += await running.process_item(item_id)
    return events


async def test_combine_reassigns_every_source_record_and_keeps_the_targets_own(world: World) -> None:
    await world.give(10, "CCR", 3)
    await world.give(11, "CCR", 2)
    await _run(await _start(world, 10, 11))
    assert (await world.owned(11))["CCR"] == 5
    assert await world.owned(10) == {}


async def test_overwrite_deletes_the_targets_records_then_reassigns_the_sources(world: World) -> None:
    await world.give(10, "SKILL_MAPPING", 2)
    await world.give(11, "SKILL_MAPPING", 4)
    target_rows = set(await OwnedRecord.filter(owner_id=world.pk(11)).values_list("id", flat=True))
    await _run(await _start(world, 10, 11))
    now_owned = set(await OwnedRecord.filter(owner_id=world.pk(11)).values_list("id", flat=True))
    assert len(now_owned) == 2 and not (now_owned & target_rows)
    assert await OwnedRecord.filter(id__in=target_rows).count() == 0


async def test_overwrite_replaces_only_the_types_the_source_has_and_the_target_keeps_the_others(world: World) -> None:
    await world.give(10, "SKILL_MAPPING", 1)
    await world.give(10, "CCR", 1)
    await world.give(11, "SKILL_MAPPING", 2)
    await world.give(11, "PROJECT", 3)  # the source has no PROJECT...
    await world.give(11, "AGENT_SCHEDULE")  # ...and no schedule
    own_schedule = await AgentSchedule.get(user_id=world.pk(11))
    plan = {i.data_type.key: (i.moves, i.deletes) for i in await engine.impact(world.pk(10), world.pk(11))}
    assert (plan["SKILL_MAPPING"], plan["PROJECT"], plan["AGENT_SCHEDULE"]) == ((1, 2), (0, 0), (0, 0))
    transfer = await _run_and_get(world, 10, 11)
    assert await world.owned(11) == {"SKILL_MAPPING": 1, "CCR": 1, "PROJECT": 3, "AGENT_SCHEDULE": 1}
    assert (await AgentSchedule.get(user_id=world.pk(11))).id == own_schedule.id
    item = await TransferItem.get(transfer_id=transfer.id)
    assert item.overwritten == {"SKILL_MAPPING": 2}


async def test_evaluations_move_as_evaluator_and_as_approver(world: World) -> None:
    src, tgt, other = world.pk(10), world.pk(11), world.pk(12)
    await Evaluation.create(evaluator_id=src, approver_id=other)
    await Evaluation.create(evaluator_id=other, approver_id=src)
    await Evaluation.create(evaluator_id=src, approver_id=src)
    await Evaluation.create(evaluator_id=tgt, approver_id=None)
    transfer = await _start(world, 10, 11)
    plan = {i.data_type.key: i for i in await engine.impact(src, tgt)}
    assert plan["EVALUATION"].moves == 3 and plan["EVALUATION"].deletes == 0
    await _run(transfer)
    assert await Evaluation.filter(evaluator_id=src).count() == 0
    assert await Evaluation.filter(approver_id=src).count() == 0
    assert await Evaluation.filter(evaluator_id=tgt).count() == 3
    assert await Evaluation.filter(approver_id=tgt).count() == 2
    assert await Evaluation.filter(evaluator_id=other, approver_id=tgt).count() == 1
    item = await TransferItem.get(transfer_id=transfer.id)
    assert item.moved["EVALUATION"] == 3


async def test_a_user_has_at_most_one_schedule(world: World) -> None:
    await world.give(10, "AGENT_SCHEDULE")
    with pytest.raises(IntegrityError):
        async with in_transaction():
            await AgentSchedule.create(user_id=world.pk(10))


async def test_schedule_overwrite_leaves_the_target_with_the_sources_schedule(world: World) -> None:
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(11, "AGENT_SCHEDULE")
    source_schedule = await AgentSchedule.get(user_id=world.pk(10))
    await _run(await _start(world, 10, 11))
    assert (await AgentSchedule.get(user_id=world.pk(11))).id == source_schedule.id
    assert await AgentSchedule.filter(user_id=world.pk(10)).count() == 0


async def test_the_item_records_what_moved_and_what_was_overwritten_per_data_type(world: World) -> None:
    await world.give(10, "CCR", 2)
    await world.give(10, "PROJECT", 1)
    await world.give(11, "PROJECT", 5)
    transfer = await _run_and_get(world, 10, 11)
    item = await TransferItem.get(transfer_id=transfer.id)
    assert item.status is ItemStatus.SUCCEEDED
    assert item.moved == {"CCR": 2, "PROJECT": 1}
    assert item.overwritten == {"PROJECT": 5}
    assert transfer.status is TransferStatus.SUCCEEDED
    assert transfer.message == "Data Transfer Successful"


async def _run_and_get(world: World, source: int, target: int) -> Transfer:
    transfer = await _start(world, source, target)
    await _run(transfer)
    return await Transfer.get(id=transfer.id)


async def test_every_record_is_conserved_by_a_transfer(world: World) -> None:
    for key, n in (("CCR", 3), ("LOGIN_STATE", 2), ("EVALUATION", 2), ("AGENT_SCHEDULE", 1), ("PROJECT", 2)):
        await world.give(10, key, n)
    await world.give(11, "PROJECT", 4)
    before = await OwnedRecord.all().count() + await Evaluation.all().count() + await AgentSchedule.all().count()
    await _run_and_get(world, 10, 11)
    after = await OwnedRecord.all().count() + await Evaluation.all().count() + await AgentSchedule.all().count()
    assert after == before - 4  # exactly the target's overwritten PROJECT records are gone


async def test_applying_a_pair_again_after_a_crash_changes_nothing(world: World) -> None:
    await world.give(10, "CCR", 3)
    transfer = await _start(world, 10, 11)
    (item_id,) = await TransferItem.filter(transfer_id=transfer.id).values_list("id", flat=True)
    first = await running.process_item(item_id)
    again = await running.process_item(item_id)
    assert [e.type for e in first] == ["ITEM_SUCCEEDED", "SUCCEEDED"]
    assert again == []
    refreshed = await Transfer.get(id=transfer.id)
    assert (refreshed.processed_pairs, refreshed.succeeded_pairs) == (1, 1)
    assert (await world.owned(11))["CCR"] == 3


async def test_a_pair_is_checked_again_just_before_it_is_applied(world: World) -> None:
    await world.give(10, "CCR", 3)
    transfer = await _start(world, 10, 11)
    world.users[11].tenant_admin = True
    await world.users[11].save()
    await _run(transfer)
    item = await TransferItem.get(transfer_id=transfer.id)
    assert item.status is ItemStatus.FAILED and item.error_code == "TENANT_ADMIN"
    assert (await world.owned(10))["CCR"] == 3  # nothing moved
    refreshed = await Transfer.get(id=transfer.id)
    assert refreshed.status is TransferStatus.FAILED
    assert refreshed.message == running.FAILURE_MESSAGE


async def test_a_failing_pair_rolls_back_whole_and_is_recorded(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    await world.give(10, "CCR", 3)
    await world.give(10, "PROJECT", 2)
    transfer = await _start(world, 10, 11)
    real_apply = engine.apply_pair

    async def apply_then_fail(source_pk: int, target_pk: int, db, **options):  # the database fails mid-pair
        await real_apply(source_pk, target_pk, db, **options)
        raise RuntimeError("disk full")

    monkeypatch.setattr(engine, "apply_pair", apply_then_fail)
    await _run(transfer)
    assert await world.owned(10) == {"CCR": 3, "PROJECT": 2}
    item = await TransferItem.get(transfer_id=transfer.id)
    assert item.status is ItemStatus.FAILED and item.error_code == "TRANSFER_ERROR"
    assert "disk full" not in item.error_message and "error reference" in item.error_message  # no internal text
    assert item.attempts == 1  # not a passing failure: not tried again


async def _fail_updates_of(owner_pk: int) -> tuple[str, str]:
    """A trigger that fails every update of `owner_pk`'s records the way a lost race does.

    Returns the SQL that installs it and the SQL that removes it."""
    from models import settings

    if settings.DATABASE_URL.startswith("postgres"):
        return (
            "CREATE OR REPLACE FUNCTION udt_test_conflict() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure'; END $$ LANGUAGE plpgsql; "
            f"CREATE TRIGGER udt_test_conflict BEFORE UPDATE ON owned_record FOR EACH ROW "
            f"WHEN (OLD.owner_id = {owner_pk}) EXECUTE FUNCTION udt_test_conflict()",
            "DROP TRIGGER udt_test_conflict ON owned_record",
        )
    return (
        f"CREATE TRIGGER udt_test_conflict BEFORE UPDATE ON owned_record WHEN OLD.owner_id = {owner_pk} "
        "BEGIN SELECT RAISE(ABORT, 'database is locked'); END",
        "DROP TRIGGER udt_test_conflict",
    )


async def test_a_pair_that_keeps_failing_for_a_passing_reason_fails_after_the_attempt_limit(world: World) -> None:
    from tortoise import connections

    from models import settings

    await world.give(10, "CCR", 3)
    transfer = await _start(world, 10, 11)
    install, remove = await _fail_updates_of(world.pk(10))
    db = connections.get("default")
    await db.execute_script(install)
    try:
        events = await _run(transfer)
    finally:
        await db.execute_script(remove)
    item = await TransferItem.get(transfer_id=transfer.id)
    assert (item.status, item.error_code) == (ItemStatus.FAILED, "TRANSFER_ERROR")
    assert f"in {settings.MAX_ATTEMPTS} attempts" in item.error_message
    assert item.attempts == settings.MAX_ATTEMPTS + 1  # the last time it was taken up, it was given up
    assert await world.owned(10) == {"CCR": 3}  # nothing half-applied
    assert [e.type for e in events][-2:] == ["ITEM_FAILED", "FAILED"]


async def test_two_starts_racing_for_the_same_user_give_one_transfer(world: World) -> None:
    import asyncio

    await world.stock(10)
    results = await asyncio.gather(
        *(starting.start_single(world.users[1], 10, target) for target in range(11, 21))
    )
    started = [t for t, _ in results if t is not None]
    refused = [p for t, p in results if t is None]
    assert len(started) == 1
    assert all(problems and problems[0].code == "USER_BUSY" for problems in refused)
    assert await Transfer.filter(tenant_id=world.tenant.id, kind=TransferKind.SINGLE).count() == 1


async def test_the_rules_use_the_same_number_of_queries_for_one_pair_or_two_thousand(world: World) -> None:
    from tests.support import QueryCounter

    with QueryCounter() as one:
        await check_pairs(world.users[1], [(10, 11, 2)])
    pairs = [(str(s), str(s + 1000), i + 2) for i, s in enumerate(range(10, 2010))]
    with QueryCounter() as many:
        await check_pairs(world.users[1], pairs)
    assert 0 < many.count == one.count


@pytest.mark.postgres
async def test_postgres_moves_a_storage_table_in_one_statement(world: World) -> None:
    """Data-modifying CTEs: one statement per storage table, and one more where an OVERWRITE
    type has a unique owner column (the target's row must be gone before the source's comes)."""
    from tests.support import QueryCounter

    for user in (10, 11):
        for key in ("CCR", "SKILL_MAPPING", "EVALUATION", "AGENT_SCHEDULE"):
            await world.give(user, key)
    with QueryCounter() as counter:
        async with in_transaction() as db:
            done = {i.data_type.key: (i.moves, i.deletes) for i in await engine.apply_pair(world.pk(10), world.pk(11), db)}
    assert done["SKILL_MAPPING"] == (1, 1) and done["AGENT_SCHEDULE"] == (1, 1) and done["EVALUATION"] == (1, 0)
    assert counter.count == 4  # owned records, evaluations, and the schedules' table twice


STAGED_DEADLOCK = """
CREATE SEQUENCE udt_test_deadlock;
CREATE FUNCTION udt_test_deadlock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Sequences are not rolled back: only the first attempt sees 1.
    IF nextval('udt_test_deadlock') = 1 THEN
        RAISE EXCEPTION 'deadlock staged by a test' USING ERRCODE = 'deadlock_detected';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER udt_test_deadlock BEFORE UPDATE ON owned_record
    FOR EACH ROW WHEN (OLD.owner_id = {owner}) EXECUTE FUNCTION udt_test_deadlock();
"""
UNSTAGE = """
DROP TRIGGER IF EXISTS udt_test_deadlock ON owned_record;
DROP FUNCTION IF EXISTS udt_test_deadlock();
DROP SEQUENCE IF EXISTS udt_test_deadlock;
"""


@pytest.mark.postgres
async def test_a_pair_that_lost_a_deadlock_runs_again_and_is_applied_exactly_once(api: Api, world: World) -> None:
    from tortoise import connections

    from graph.api.transfer_events import event_cursor
    from graph.core.relay import pk_of

    await world.give(10, "CCR", 1)  # one record: each attempt of the pair updates it once
    db = connections.get("default")
    await db.execute_script(STAGED_DEADLOCK.format(owner=world.pk(10)))
    try:
        started = (await api(START, world.admin, s=10, t=11, confirm=True))["startTransfer"]
        gid = started["transfer"]["id"]
        done = await api.wait_finished(world.admin, gid)
        _, (attempts,) = await db.execute_query("SELECT last_value FROM udt_test_deadlock")
    finally:
        await db.execute_script(UNSTAGE)
    assert attempts["last_value"] == 2  # the first attempt hit the deadlock and rolled back; the second went through
    assert (done["status"], done["processedPairs"], done["succeededPairs"], done["failedPairs"]) == ("SUCCEEDED", 1, 1, 0)
    (item,) = [e["node"] for e in done["items"]["edges"]]
    assert item["status"] == "SUCCEEDED" and item["moved"] == [{"dataType": {"key": "CCR"}, "count": 1}]
    assert await world.owned(10) == {} and await world.owned(11) == {"CCR": 1}
    events = await api.events(world.admin, gid, after=event_cursor(pk_of(gid, "Transfer"), 0))
    assert [e["type"] for e in events] == ["SNAPSHOT", "STARTED", "ITEM_SUCCEEDED", "SUCCEEDED"]


def test_a_broken_client_protocol_state_is_a_passing_failure_worth_another_attempt() -> None:
    """asyncpg refusing an operation mid-transaction (seen once under heavy load, before a
    COMMIT went out): nothing committed, and the claim makes a second attempt safe."""
    from asyncpg.exceptions import InternalClientError

    from models.db import is_transient

    assert is_transient(InternalClientError("cannot switch to state 15; another operation (2) is in progress"))
    assert not is_transient(RuntimeError("disk full"))
