"""Bulk transfers: start, one at a time, outcome, audit log, retry, cancel."""

from __future__ import annotations

import asyncio
import csv
import io

import httpx
import pytest

from graph.api.transfer_events import event_cursor
from graph.core.relay import pk_of, to_global_id
from models import bulk, running, seed
from models.tenancy import ApiToken, User
from models.transfers import BulkUpload, ItemStatus, Transfer, TransferItem, TransferKind, TransferStatus
from models.userdata import DATA_TYPES, OwnedRecord
from tests.support import START, TRANSFER, Api, World, audit, make_world, run_pairs

START_BULK = """
mutation ($id: ID!, $confirm: Boolean!) {
  startBulkTransfer(input: {uploadId: $id, confirm: $confirm}) {
    transfer { id kind status totalPairs }
    userErrors { code message field }
  }
}"""
RETRY = """
mutation ($id: ID!) { retryFailedTransfers(transferId: $id, confirm: true) {
  transfer { id kind status totalPairs } userErrors { code message } } }"""
CANCEL = "mutation ($id: ID!) { cancelTransfer(id: $id) { transfer { id status message } userErrors { code message } } }"


async def upload_and_start(api: Api, token: str, content: str) -> dict:
    upload = (await api.upload(token, content))["upload"]
    return (await api(START_BULK, token, id=upload["id"], confirm=True))["startBulkTransfer"]


async def test_the_vendor_pages_worked_example_moves_data_in_the_right_direction(api: Api, database: str) -> None:
    await seed.seed_demo()
    admin = await User.get(tenant__slug="demo", username="admin")
    token = await ApiToken.issue(admin)
    async with httpx.AsyncClient() as client:
        people = (await client.get(f"{api.base}/exports/people.csv", headers={"Authorization": f"Bearer {token}"})).text
    # Transfer John Smith (19) to Jenny Andrews (21), and James Anderson (20) to Sam Rodgers (22):
    # 19 goes in Jenny's To User ID cell, 20 in Sam's.
    rows = list(csv.reader(io.StringIO(people)))
    for row in rows:
        if row[0] == "21":
            row[1] = "19"
        if row[0] == "22":
            row[1] = "20"
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    pk = {u.user_id: u.id for u in await User.filter(tenant__slug="demo", user_id__in=[19, 20, 21, 22])}
    from models.counts import owned_counts
    from models.engine import replaces

    before = await owned_counts(list(pk.values()))
    upload = (await api.upload(token, buffer.getvalue()))["upload"]
    preview = [(e["node"]["sourceUser"]["displayName"], e["node"]["targetUser"]["displayName"]) for e in upload["rows"]["edges"]]
    assert preview == [("John Smith", "Jenny Andrews"), ("James Anderson", "Sam Rodgers")]
    started = (await api(START_BULK, token, id=upload["id"], confirm=True))["startBulkTransfer"]
    assert started["userErrors"] == [] and started["transfer"]["kind"] == "BULK"
    events = await asyncio.wait_for(api.events(token, started["transfer"]["id"]), 60)
    assert events[-1]["type"] == "SUCCEEDED" and events[-1]["message"] == "Data Transfer Successful"
    after = await owned_counts(list(pk.values()))
    for source, target in ((19, 21), (20, 22)):
        assert after[pk[source]] == {}
        src, tgt = before[pk[source]], before[pk[target]]
        for dt in DATA_TYPES:
            kept = 0 if replaces(dt, src) else tgt.get(dt.key, 0)  # an OVERWRITE only replaces
            assert after[pk[target]].get(dt.key, 0) == kept + src.get(dt.key, 0), dt.key


async def test_a_bulk_transfer_reports_every_pair_and_one_terminal_event(api: Api, world: World) -> None:
    for s in (10, 11, 12):
        await world.give(s, "CCR", 2)
    started = await upload_and_start(api, world.admin, "Source User ID,Target User ID\n10,20\n11,21\n12,22\n")
    gid = started["transfer"]["id"]
    # from the first event on: the worker may have applied a pair before this subscribes
    events = await api.events(world.admin, gid, after=event_cursor(pk_of(gid, "Transfer"), 0))
    types = [e["type"] for e in events]
    assert types.count("ITEM_SUCCEEDED") == 3 and types[-1] == "SUCCEEDED"
    assert [t for t in types if t in ("SUCCEEDED", "FAILED", "PARTIALLY_FAILED", "CANCELLED")] == ["SUCCEEDED"]
    assert events[-1]["processedPairs"] == 3 and events[-1]["succeededPairs"] == 3
    for s, t in ((10, 20), (11, 21), (12, 22)):
        assert await world.owned(s) == {} and await world.owned(t) == {"CCR": 2}


async def test_start_needs_confirm_and_a_clean_upload(api: Api, world: World) -> None:
    clean = (await api.upload(world.admin, "Source User ID,Target User ID\n10,20\n"))["upload"]
    refused = (await api(START_BULK, world.admin, id=clean["id"], confirm=False))["startBulkTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["CONFIRMATION_REQUIRED"]
    dirty = (await api.upload(world.admin, "Source User ID,Target User ID\n10,20\n4,21\n"))["upload"]
    refused = (await api(START_BULK, world.admin, id=dirty["id"], confirm=True))["startBulkTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["UPLOAD_HAS_ERRORS"]
    broken = (await api.upload(world.admin, "nothing here\n"))["upload"]
    refused = (await api(START_BULK, world.admin, id=broken["id"], confirm=True))["startBulkTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["UPLOAD_HAS_ERRORS"]
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 0


async def test_start_revalidates_against_todays_data(api: Api, world: World) -> None:
    await world.stock(10)
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n10,20\n"))["upload"]
    world.users[20].tenant_admin = True
    await world.users[20].save()
    refused = (await api(START_BULK, world.admin, id=upload["id"], confirm=True))["startBulkTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["UPLOAD_HAS_ERRORS"]
    preview = await api("query ($id: ID!) { bulkUpload(id: $id) { errorCount rows { edges { node { errors { code } } } } } }", world.admin, id=upload["id"])
    assert preview["bulkUpload"]["errorCount"] == 1
    assert preview["bulkUpload"]["rows"]["edges"][0]["node"]["errors"] == [{"code": "TENANT_ADMIN"}]


async def test_an_upload_starts_at_most_one_transfer(api: Api, world: World) -> None:
    await world.stock(10)
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n10,20\n"))["upload"]
    first = (await api(START_BULK, world.admin, id=upload["id"], confirm=True))["startBulkTransfer"]
    await api.wait_finished(world.admin, first["transfer"]["id"])
    again = (await api(START_BULK, world.admin, id=upload["id"], confirm=True))["startBulkTransfer"]
    assert [e["code"] for e in again["userErrors"]] == ["UPLOAD_ALREADY_USED"]
    linked = await api("query ($id: ID!) { bulkUpload(id: $id) { transfer { id } } }", world.admin, id=upload["id"])
    assert linked["bulkUpload"]["transfer"]["id"] == first["transfer"]["id"]


async def test_twenty_concurrent_starts_give_exactly_one_bulk_transfer(world: World) -> None:
    admin = world.users[1]
    uploads = []
    for i in range(20):  # twenty different valid uploads, each with a pair of its own
        source = await User.create(tenant=world.tenant, user_id=100 + 2 * i, first_name="S", last_name=str(i), username=f"s{i}")
        await OwnedRecord.create(data_type="CCR", owner=source)
        await User.create(tenant=world.tenant, user_id=101 + 2 * i, first_name="T", last_name=str(i), username=f"t{i}")
        uploads.append(await bulk.create_upload(admin, "f.csv", f"Source User ID,Target User ID\n{100 + 2 * i},{101 + 2 * i}\n".encode()))
    results = await asyncio.gather(*(bulk.start(admin, u) for u in uploads))
    accepted = [t for t, _ in results if t is not None]
    assert len(accepted) == 1
    assert all([p.code for p in problems] == ["BULK_TRANSFER_IN_PROGRESS"] for t, problems in results if t is None)
    assert await Transfer.filter(tenant_id=world.tenant.id, kind=TransferKind.BULK).count() == 1


async def test_a_second_bulk_transfer_waits_for_the_first(api: Api, world: World) -> None:
    await world.stock(10, 11)
    queued, _ = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "a.csv", b"Source User ID,Target User ID\n10,20\n"))
    refused = await upload_and_start(api, world.admin, "Source User ID,Target User ID\n11,21\n")
    assert [e["code"] for e in refused["userErrors"]] == ["BULK_TRANSFER_IN_PROGRESS"]
    active = await api("{ activeBulkTransfer { id status } }", world.admin)
    assert active["activeBulkTransfer"] == {"id": to_global_id("Transfer", queued.id), "status": "QUEUED"}
    # its users are busy for single transfers too
    single = (await api(START, world.admin, s=10, t=25, confirm=True))["startTransfer"]
    assert [e["code"] for e in single["userErrors"]] == ["USER_BUSY"]
    await running.cancel(queued)
    assert (await api("{ activeBulkTransfer { id } }", world.admin))["activeBulkTransfer"] is None


async def test_a_partial_failure_names_the_failed_users_in_the_audit_log_and_a_retry_finishes_them(api: Api, world: World) -> None:
    for s in (10, 11, 12):
        await world.give(s, "CCR", 1)
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n10,20\n11,21\n12,22\n"))["upload"]
    world.users[21].tenant_admin = True  # after the start's check, before the pair is applied
    transfer, _ = await bulk.start(world.users[1], await BulkUpload.get(id=pk_of(upload["id"], "BulkUpload")))
    await world.users[21].save()
    from jobs import transfer as transfer_jobs
    from jobs.connection import arq_pool

    pool = await arq_pool()
    await transfer_jobs.enqueue(pool, transfer)
    await pool.aclose()
    gid = to_global_id("Transfer", transfer.id)
    events = await asyncio.wait_for(api.events(world.admin, gid), 60)
    failed = [e for e in events if e["type"] == "ITEM_FAILED"]
    assert [(e["sourceUserId"], e["targetUserId"], e["errorCode"]) for e in failed] == [(11, 21, "TENANT_ADMIN")]
    assert events[-1]["type"] == "PARTIALLY_FAILED"
    done = (await api(TRANSFER, world.admin, id=gid))["transfer"]
    assert done["status"] == "PARTIALLY_FAILED"
    assert done["message"] == "Errors occurred during data transfer. The user IDs listed below were not transferred."
    assert done["failedUserIds"] == [11, 21]
    assert (done["succeededPairs"], done["failedPairs"]) == (2, 1)
    log = await audit(api, world.admin, done["auditLogUrl"])
    assert log[0] == ["Line Number", "Source User ID", "Source Name", "Target User ID", "Target Name", "Status", "Code", "Message", "Time", "Data Types"]
    assert [r[:7] for r in log[1:]] == [["3", "11", "Agent11 Number11", "21", "Agent21 Number21", "FAILED", "TENANT_ADMIN"]]
    every = await audit(api, world.admin, done["auditLogUrl"] + "?all=1")
    assert [r[0] for r in every[1:]] == ["2", "3", "4"]
    ccr = every[0].index("CCR moved")
    assert [r[ccr] for r in every[1:]] == ["1", "0", "1"]

    world.users[21].tenant_admin = False
    await world.users[21].save()
    retried = (await api(RETRY, world.admin, id=gid))["retryFailedTransfers"]
    assert retried["userErrors"] == [] and retried["transfer"]["totalPairs"] == 1 and retried["transfer"]["kind"] == "BULK"
    finished = await api.wait_finished(world.admin, retried["transfer"]["id"])
    assert finished["status"] == "SUCCEEDED"
    assert await world.owned(21) == {"CCR": 1} and await world.owned(11) == {}
    nothing = (await api(RETRY, world.admin, id=retried["transfer"]["id"]))["retryFailedTransfers"]
    assert [e["code"] for e in nothing["userErrors"]] == ["NOTHING_TO_RETRY"]
    # the original's failed pair succeeded in the retry: it is never offered again
    twice = (await api(RETRY, world.admin, id=gid))["retryFailedTransfers"]
    assert [e["code"] for e in twice["userErrors"]] == ["ALREADY_RETRIED"]
    assert await world.owned(21) == {"CCR": 1}


async def test_a_retry_is_refused_while_a_failed_pair_would_still_fail(api: Api, world: World) -> None:
    await world.stock(10, 11)
    admin = world.users[1]
    transfer, _ = await bulk.start(admin, await bulk.create_upload(admin, "a.csv", b"Source User ID,Target User ID\n10,20\n11,21\n"))
    world.users[21].tenant_admin = True  # after the start: the pair fails, and would fail again
    await world.users[21].save()
    await run_pairs(transfer.id)
    gid = to_global_id("Transfer", transfer.id)
    assert (await api(TRANSFER, world.admin, id=gid))["transfer"]["status"] == "PARTIALLY_FAILED"
    refused = (await api(RETRY, world.admin, id=gid))["retryFailedTransfers"]
    assert refused["transfer"] is None
    assert [e["code"] for e in refused["userErrors"]] == ["TENANT_ADMIN"]
    assert "(21)" in refused["userErrors"][0]["message"]
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 1


async def test_a_transfer_still_queued_or_running_cannot_be_retried(api: Api, world: World) -> None:
    await world.stock(10)
    admin = world.users[1]
    queued, _ = await bulk.start(admin, await bulk.create_upload(admin, "a.csv", b"Source User ID,Target User ID\n10,20\n"))
    refused = (await api(RETRY, world.admin, id=to_global_id("Transfer", queued.id)))["retryFailedTransfers"]
    assert refused["transfer"] is None
    assert [e["code"] for e in refused["userErrors"]] == ["TRANSFER_NOT_FINISHED"]
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 1
    await running.cancel(queued)


async def test_an_upload_that_does_not_exist_or_is_another_tenants_is_not_found(api: Api, world: World) -> None:
    other = await make_world()
    theirs = (await api.upload(other.admin, "Source User ID,Target User ID\n10,20\n"))["upload"]["id"]
    for missing in (theirs, to_global_id("BulkUpload", 10**9), to_global_id("Transfer", 1)):
        refused = (await api(START_BULK, world.admin, id=missing, confirm=True))["startBulkTransfer"]
        assert refused["transfer"] is None
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("UPLOAD_NOT_FOUND", ["input", "uploadId"])]
    assert await Transfer.filter(tenant_id__in=[world.tenant.id, other.tenant.id]).count() == 0


async def test_a_transfer_where_no_pair_succeeds_failed(world: World) -> None:
    await world.stock(10, 11)
    transfer, _ = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "a.csv", b"Source User ID,Target User ID\n10,20\n11,21\n"))
    await User.filter(id__in=[world.pk(20), world.pk(21)]).update(tenant_admin=True)
    for item_id in await TransferItem.filter(transfer_id=transfer.id).values_list("id", flat=True):
        await running.process_item(item_id)
    done = await Transfer.get(id=transfer.id)
    assert done.status is TransferStatus.FAILED and done.message == running.FAILURE_MESSAGE


async def test_cancel_stops_after_the_pair_in_flight_and_keeps_applied_pairs(api: Api, world: World) -> None:
    for s in (10, 11, 12):
        await world.give(s, "CCR", 1)
    transfer, _ = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "a.csv", b"Source User ID,Target User ID\n10,20\n11,21\n12,22\n"))
    first = await TransferItem.filter(transfer_id=transfer.id).order_by("position").first()
    await running.begin(transfer.id)
    await running.process_item(first.id)
    gid = to_global_id("Transfer", transfer.id)
    result = (await api(CANCEL, world.admin, id=gid))["cancelTransfer"]
    assert result["userErrors"] == [] and result["transfer"]["status"] == "CANCELLED"
    assert "1 of 3 pairs were applied before it stopped" in result["transfer"]["message"]
    statuses = await TransferItem.filter(transfer_id=transfer.id).order_by("position").values_list("status", flat=True)
    assert statuses == [ItemStatus.SUCCEEDED, ItemStatus.CANCELLED, ItemStatus.CANCELLED]
    assert await world.owned(20) == {"CCR": 1} and await world.owned(11) == {"CCR": 1}
    for item_id in await TransferItem.filter(transfer_id=transfer.id).values_list("id", flat=True):
        assert await running.process_item(item_id) == []  # a late worker applies nothing
    again = (await api(CANCEL, world.admin, id=gid))["cancelTransfer"]
    assert [e["code"] for e in again["userErrors"]] == ["TRANSFER_FINISHED"]
    # the users are free again
    assert (await api(START, world.admin, s=11, t=21, confirm=True))["startTransfer"]["userErrors"] == []


@pytest.mark.concurrent
async def test_counters_stay_exact_when_workers_apply_pairs_concurrently(world: World) -> None:
    await world.stock(*range(10, 20))
    content = "Source User ID,Target User ID\n" + "".join(f"{s},{s + 10}\n" for s in range(10, 20))
    transfer, _ = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "a.csv", content.encode()))
    items = await TransferItem.filter(transfer_id=transfer.id).values_list("id", flat=True)
    await User.filter(id=world.pk(25)).update(tenant_admin=True)  # one pair will fail
    results = await asyncio.gather(*(running.process_item(i) for i in items * 3))  # every pair offered three times
    done = await Transfer.get(id=transfer.id)
    assert (done.processed_pairs, done.succeeded_pairs, done.failed_pairs) == (10, 9, 1)
    assert done.status is TransferStatus.PARTIALLY_FAILED
    terminal = [e for events in results for e in events if e.terminal]
    assert len(terminal) == 1


async def _waiting_on_locks(conn) -> int:  # type: ignore[no-untyped-def]
    """Backends of this database blocked on a lock (PostgreSQL)."""
    return await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )


async def _until_waiting(conn, n: int) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(30):
        while await _waiting_on_locks(conn) < n:
            await asyncio.sleep(0.02)


@pytest.mark.concurrent
async def test_a_cancel_while_a_pair_is_in_flight_neither_deadlocks_nor_rolls_that_pair_back(
    api: Api, world: World, database: str
) -> None:
    """The interleaving is forced: a second connection holds the source's records, so the pair
    stops inside its transaction (item claimed, records not yet moved); the cancel then comes,
    and only when it waits too is the pair let go."""
    import asyncpg

    for s in (10, 11, 12):
        await world.give(s, "CCR", 1)
    upload = await bulk.create_upload(world.users[1], "a.csv", b"Source User ID,Target User ID\n10,20\n11,21\n12,22\n")
    transfer, _ = await bulk.start(world.users[1], upload)
    first = await TransferItem.filter(transfer_id=transfer.id).order_by("position").first()
    await running.begin(transfer.id)
    holder = await asyncpg.connect(database.replace("postgres://", "postgresql://", 1))
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.execute("SELECT id FROM owned_record WHERE owner_id = $1 FOR UPDATE", world.pk(10))
        pair = asyncio.create_task(running.process_item(first.id))
        await _until_waiting(holder, 1)
        cancelled = asyncio.create_task(api(CANCEL, world.admin, id=to_global_id("Transfer", transfer.id)))
        await _until_waiting(holder, 2)
        await holding.commit()
        applied, result = await asyncio.gather(pair, cancelled)
    finally:
        await holder.close()
    assert [e.type for e in applied] == ["ITEM_SUCCEEDED"]
    assert result["cancelTransfer"]["userErrors"] == [] and result["cancelTransfer"]["transfer"]["status"] == "CANCELLED"
    statuses = await TransferItem.filter(transfer_id=transfer.id).order_by("position").values_list("status", flat=True)
    assert statuses == [ItemStatus.SUCCEEDED, ItemStatus.CANCELLED, ItemStatus.CANCELLED]
    done = await Transfer.get(id=transfer.id)
    assert (done.status, done.processed_pairs, done.succeeded_pairs, done.failed_pairs) == (TransferStatus.CANCELLED, 1, 1, 0)
    assert "1 of 3 pairs were applied" in done.message
    assert await world.owned(20) == {"CCR": 1} and await world.owned(10) == {}


async def test_a_source_emptied_between_upload_and_start_refuses_the_start_with_the_error_at_its_line(
    api: Api, world: World
) -> None:
    from models.userdata import OwnedRecord

    await world.stock(10, 11)
    await world.give(21, "PROJECT", 2)
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n10,20\n11,21\n"))["upload"]
    assert upload["errorCount"] == 0
    await OwnedRecord.filter(owner_id=world.pk(11)).delete()
    refused = (await api(START_BULK, world.admin, id=upload["id"], confirm=True))["startBulkTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["UPLOAD_HAS_ERRORS"]
    preview = await api(
        "query ($id: ID!) { bulkUpload(id: $id) { errorCount rows(onlyErrors: true) { edges { node { rowNumber errors { code } } } } } }",
        world.admin,
        id=upload["id"],
    )
    assert preview["bulkUpload"]["errorCount"] == 1
    assert [e["node"] for e in preview["bulkUpload"]["rows"]["edges"]] == [{"rowNumber": 3, "errors": [{"code": "NOTHING_TO_TRANSFER"}]}]
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 0
    assert await world.owned(21) == {"PROJECT": 2}


async def test_a_source_emptied_between_start_and_its_pair_fails_that_pair_alone_and_changes_nothing(
    api: Api, world: World
) -> None:
    from models.userdata import OwnedRecord

    await world.give(10, "PROJECT", 1)
    await world.give(11, "PROJECT", 1)
    await world.give(20, "PROJECT", 4)
    await world.give(21, "PROJECT", 5)
    admin = world.users[1]
    transfer, problems = await bulk.start(admin, await bulk.create_upload(admin, "a.csv", b"Source User ID,Target User ID\n10,20\n11,21\n"))
    assert problems == []
    await OwnedRecord.filter(owner_id=world.pk(11)).delete()  # emptied after the start's check
    await run_pairs(transfer.id)
    done = (await api(TRANSFER, world.admin, id=to_global_id("Transfer", transfer.id)))["transfer"]
    assert (done["status"], done["failedUserIds"]) == ("PARTIALLY_FAILED", [11, 21])
    items = {e["node"]["rowNumber"]: e["node"] for e in done["items"]["edges"]}
    assert (items[2]["status"], items[3]["status"], items[3]["errorCode"]) == ("SUCCEEDED", "FAILED", "NOTHING_TO_TRANSFER")
    assert await world.owned(20) == {"PROJECT": 1} and await world.owned(21) == {"PROJECT": 5}
    log = await audit(api, world.admin, done["auditLogUrl"])
    assert [r[:7] for r in log[1:]] == [["3", "11", "Agent11 Number11", "21", "Agent21 Number21", "FAILED", "NOTHING_TO_TRANSFER"]]
