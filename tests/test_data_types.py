"""Choosing the data types a transfer moves: only those move, the source keeps the rest,
and the transfer, its plan, its messages and its audit log say which."""

from __future__ import annotations

import pytest

from graph.api.transfer_events import event_cursor
from graph.core.relay import pk_of, to_global_id
from models import bulk
from models.transfers import BulkUpload, Transfer
from models.userdata import DATA_TYPES, Evaluation
from tests.support import Api, GraphQLErrors, World, audit, run_pairs

START = """
mutation ($s: Int!, $t: Int!, $types: [String!], $key: String, $confirm: Boolean! = true) {
  startTransfer(input: {sourceUserId: $s, targetUserId: $t, confirm: $confirm, dataTypes: $types, idempotencyKey: $key}) {
    transfer { id dataTypes { key } }
    userErrors { code message field }
  }
}"""
START_BULK = """
mutation ($id: ID!, $types: [String!]) {
  startBulkTransfer(input: {uploadId: $id, confirm: true, dataTypes: $types}) {
    transfer { id dataTypes { key } }
    userErrors { code message field }
  }
}"""
PLAN = """
query ($s: Int!, $t: Int!, $types: [String!]) {
  transferPlan(sourceUserId: $s, targetUserId: $t, dataTypes: $types) {
    impact { dataType { key } moves deletes }
    errors { code message field }
  }
}"""
PREVIEW = """
query ($id: ID!, $types: [String!]) {
  bulkUpload(id: $id) { rows { edges { node { rowNumber errors { code }
    impact(dataTypes: $types) { dataType { key } moves deletes } } } } }
}"""
RETRY = """
mutation ($id: ID!) { retryFailedTransfers(transferId: $id, confirm: true) {
  transfer { id dataTypes { key } } userErrors { code message } } }"""
DONE = "query ($id: ID!) { transfer(id: $id) { status auditLogUrl dataTypes { key name } } }"

CSV = "Source User ID,Target User ID\n"


def keys(found: list[dict]) -> list[str]:
    return [t["key"] if "key" in t else t["dataType"]["key"] for t in found]


async def start(api: Api, world: World, s: int, t: int, types: list[str] | None, **extra: object) -> dict:
    return (await api(START, world.admin, s=s, t=t, types=types, **extra))["startTransfer"]


async def upload(api: Api, world: World, rows: str) -> str:
    return (await api.upload(world.admin, CSV + rows))["upload"]["id"]


async def test_only_the_chosen_types_move_and_the_source_keeps_the_rest(api: Api, world: World) -> None:
    await world.give(10, "CCR", 3)
    await world.give(10, "EVALUATION", 2)  # as evaluator
    await Evaluation.create(evaluator_id=world.pk(12), approver_id=world.pk(10))  # as approver
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(10, "PROJECT", 2)
    await world.give(10, "LOGIN_STATE")
    await world.give(11, "AGENT_SCHEDULE")
    await world.give(11, "PROJECT", 4)
    # Named out of order: the transfer keeps them in catalogue order.
    started = await start(api, world, 10, 11, ["AGENT_SCHEDULE", "EVALUATION", "CCR"])
    assert started["userErrors"] == []
    assert keys(started["transfer"]["dataTypes"]) == ["CCR", "EVALUATION", "AGENT_SCHEDULE"]
    gid = started["transfer"]["id"]
    events = await api.events(world.admin, gid, after=event_cursor(pk_of(gid, "Transfer"), 0))
    assert events[-1]["type"] == "SUCCEEDED"
    (item,) = [e for e in events if e["type"] == "ITEM_SUCCEEDED"]
    assert (
        "(chosen data types: CCRs, Evaluations (as evaluator and as approver), Agent Schedules)" in item["message"]
    )
    # COMBINE and OVERWRITE types chosen moved; PROJECT (an OVERWRITE not chosen) deleted nothing.
    assert await world.owned(11) == {"CCR": 3, "EVALUATION": 3, "AGENT_SCHEDULE": 1, "PROJECT": 4}
    assert await world.owned(10) == {"PROJECT": 2, "LOGIN_STATE": 1}
    approved = await Evaluation.get(evaluator_id=world.pk(12))
    assert approved.approver_id == world.pk(11)  # the approver column moved, the evaluator stayed
    assert await world.owned(12) == {"EVALUATION": 1}


async def test_a_transfer_without_a_choice_moves_and_lists_every_type(api: Api, world: World) -> None:
    await world.give(10, "CCR")
    await world.give(10, "PROJECT")
    started = await start(api, world, 10, 11, None)
    assert keys(started["transfer"]["dataTypes"]) == [dt.key for dt in DATA_TYPES]
    done = await api.wait_finished(world.admin, started["transfer"]["id"])
    assert done["status"] == "SUCCEEDED"
    assert await world.owned(11) == {"CCR": 1, "PROJECT": 1}
    log = await audit(api, world.admin, done["auditLogUrl"] + "?all=1")
    assert log[0][-1] == "Data Types" and log[1][-1] == "All"


async def test_the_plan_shows_only_the_chosen_types(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(10, "PROJECT", 3)
    await world.give(11, "AGENT_SCHEDULE")
    await world.give(11, "PROJECT", 1)
    plan = (await api(PLAN, world.admin, s=10, t=11, types=["AGENT_SCHEDULE", "CCR"]))["transferPlan"]
    assert plan["errors"] == []
    assert [(keys([i])[0], i["moves"], i["deletes"]) for i in plan["impact"]] == [
        ("CCR", 2, 0),
        ("AGENT_SCHEDULE", 1, 1),
    ]


@pytest.mark.parametrize(
    ("types", "named"),
    [(["CCR", "NO_SUCH_TYPE"], "'NO_SUCH_TYPE'"), (["CCR", "PROJECT", "CCR"], "'CCR'"), ([], "at least one")],
    ids=["unknown", "repeated", "empty"],
)
async def test_unknown_repeated_or_no_keys_are_invalid_and_start_nothing(
    api: Api, world: World, types: list[str], named: str
) -> None:
    await world.give(10, "CCR")
    await world.give(12, "CCR")
    started = await start(api, world, 10, 11, types)
    assert started["transfer"] is None
    (error,) = started["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID_DATA_TYPE", ["input", "dataTypes"])
    assert named in error["message"]
    unconfirmed = await start(api, world, 10, 11, types, confirm=False)
    assert [(e["code"], e["field"]) for e in unconfirmed["userErrors"]] == [
        ("INVALID_DATA_TYPE", ["input", "dataTypes"]),
        ("CONFIRMATION_REQUIRED", None),
    ]

    plan = (await api(PLAN, world.admin, s=10, t=11, types=types))["transferPlan"]
    assert [(e["code"], e["field"]) for e in plan["errors"]] == [("INVALID_DATA_TYPE", ["dataTypes"])]
    assert plan["impact"] == []

    upload_id = await upload(api, world, "12,13\n")
    refused_bulk = (await api(START_BULK, world.admin, id=upload_id, types=types))["startBulkTransfer"]
    assert [(e["code"], e["field"]) for e in refused_bulk["userErrors"]] == [("INVALID_DATA_TYPE", ["input", "dataTypes"])]
    with pytest.raises(GraphQLErrors) as refused:
        await api(PREVIEW, world.admin, id=upload_id, types=types)
    assert refused.value.codes == ["INVALID_DATA_TYPE"]

    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 0
    assert await world.owned(10) == {"CCR": 1} and await world.owned(12) == {"CCR": 1}


async def test_an_invalid_choice_names_every_unknown_key_and_every_repeated_one_and_an_empty_one_says_so(
    api: Api, world: World
) -> None:
    plan = (await api(PLAN, world.admin, s=10, t=11, types=["CCR", "NOPE", "CCR", "ALSO_NOT", "NOPE"]))["transferPlan"]
    assert [e["message"] for e in plan["errors"] if e["code"] == "INVALID_DATA_TYPE"] == [
        "Invalid dataTypes: unknown data type(s) 'NOPE', 'ALSO_NOT'; "
        "data type(s) named more than once 'CCR', 'NOPE'. Use the keys of DataType."
    ]
    empty = (await api(PLAN, world.admin, s=10, t=11, types=[]))["transferPlan"]
    assert [e["message"] for e in empty["errors"] if e["code"] == "INVALID_DATA_TYPE"] == [
        "Choose at least one data type, or leave dataTypes out to transfer every type."
    ]


async def test_an_invalid_choice_is_reported_first_then_the_pairs_own_problems(api: Api, world: World) -> None:
    await world.give(10, "CCR")
    plan = (await api(PLAN, world.admin, s=10, t=10, types=["NOPE"]))["transferPlan"]
    assert [e["code"] for e in plan["errors"]] == ["INVALID_DATA_TYPE", "SAME_USER"]
    unconfirmed = await start(api, world, 10, 10, ["NOPE"], confirm=False)
    assert [e["code"] for e in unconfirmed["userErrors"]] == ["INVALID_DATA_TYPE", "SAME_USER", "CONFIRMATION_REQUIRED"]


async def test_a_source_that_owns_only_types_not_chosen_has_nothing_to_transfer(api: Api, world: World) -> None:
    await world.give(10, "PROJECT", 2)
    await world.give(11, "CCR")
    started = await start(api, world, 10, 11, ["CCR", "AGENT_SCHEDULE"])
    assert [(e["code"], e["field"]) for e in started["userErrors"]] == [
        ("NOTHING_TO_TRANSFER", ["input", "sourceUserId"])
    ]
    plan = (await api(PLAN, world.admin, s=10, t=11, types=["CCR"]))["transferPlan"]
    assert [e["code"] for e in plan["errors"]] == ["NOTHING_TO_TRANSFER"]
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 0
    assert await world.owned(10) == {"PROJECT": 2}


async def test_a_bulk_transfer_moves_only_the_chosen_types_and_its_audit_log_says_so(api: Api, world: World) -> None:
    for source, target in ((10, 20), (11, 21)):
        await world.give(source, "CCR", 2)
        await world.give(source, "PROJECT", 1)
        await world.give(target, "PROJECT", 3)
    await world.give(12, "CCR")  # a row whose source owns none of the chosen types
    upload_id = await upload(api, world, "10,20\n11,21\n12,22\n")
    preview = (await api(PREVIEW, world.admin, id=upload_id, types=["PROJECT"]))["bulkUpload"]["rows"]["edges"]
    assert [(e["node"]["rowNumber"], [(keys([i])[0], i["moves"], i["deletes"]) for i in e["node"]["impact"]]) for e in preview] == [
        (2, [("PROJECT", 1, 3)]),
        (3, [("PROJECT", 1, 3)]),
        (4, [("PROJECT", 0, 0)]),
    ]

    refused = (await api(START_BULK, world.admin, id=upload_id, types=["PROJECT"]))["startBulkTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["UPLOAD_HAS_ERRORS"]
    rows = (await api(PREVIEW, world.admin, id=upload_id, types=None))["bulkUpload"]["rows"]["edges"]
    assert [e["node"]["errors"] for e in rows] == [[], [], [{"code": "NOTHING_TO_TRANSFER"}]]

    upload_id = await upload(api, world, "10,20\n11,21\n")
    started = (await api(START_BULK, world.admin, id=upload_id, types=["PROJECT"]))["startBulkTransfer"]
    assert started["userErrors"] == [] and keys(started["transfer"]["dataTypes"]) == ["PROJECT"]
    done = await api.wait_finished(world.admin, started["transfer"]["id"])
    assert done["status"] == "SUCCEEDED"
    for source, target in ((10, 20), (11, 21)):
        assert await world.owned(source) == {"CCR": 2}
        assert await world.owned(target) == {"PROJECT": 1}
    log = await audit(api, world.admin, done["auditLogUrl"] + "?all=1")
    assert log[0][-1] == "Data Types" and [r[-1] for r in log[1:]] == ["PROJECT", "PROJECT"]


async def test_a_retry_moves_the_same_types_as_the_transfer_it_retries(api: Api, world: World) -> None:
    for source in (10, 11):
        await world.give(source, "CCR")
        await world.give(source, "SKILL_MAPPING")
    upload_id = await upload(api, world, "10,20\n11,21\n")
    transfer, problems = await bulk.start(
        world.users[1], await BulkUpload.get(id=pk_of(upload_id, "BulkUpload")), data_types=["SKILL_MAPPING", "CCR"]
    )
    assert problems == []
    world.users[21].tenant_admin = True  # after the start: its pair fails
    await world.users[21].save()
    await run_pairs(transfer.id)
    world.users[21].tenant_admin = False
    await world.users[21].save()
    await world.give(11, "PROJECT")  # owned since, not chosen: it stays
    retried = (await api(RETRY, world.admin, id=to_global_id("Transfer", transfer.id)))["retryFailedTransfers"]
    assert retried["userErrors"] == []
    assert keys(retried["transfer"]["dataTypes"]) == ["CCR", "SKILL_MAPPING"]
    assert (await api.wait_finished(world.admin, retried["transfer"]["id"]))["status"] == "SUCCEEDED"
    assert await world.owned(21) == {"CCR": 1, "SKILL_MAPPING": 1}
    assert await world.owned(11) == {"PROJECT": 1}


async def test_an_idempotency_key_sent_again_with_other_types_is_reused(api: Api, world: World) -> None:
    await world.give(10, "CCR")
    await world.give(10, "PROJECT")
    first = await start(api, world, 10, 11, ["PROJECT", "CCR"], key="k-types")
    assert first["userErrors"] == []
    # The same choice in another order is the same request.
    again = await start(api, world, 10, 11, ["CCR", "PROJECT"], key="k-types")
    assert again["transfer"]["id"] == first["transfer"]["id"]
    for other in (["CCR"], None):
        reused = await start(api, world, 10, 11, other, key="k-types")
        assert reused["transfer"] is None
        assert [(e["code"], e["field"]) for e in reused["userErrors"]] == [
            ("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])
        ]
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 1
