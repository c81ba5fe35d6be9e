"""A single transfer through the API: plan, confirmation, every eligibility rule, the outcome."""

from __future__ import annotations

from models import running, starting
from models.transfers import Transfer
from graph.core.relay import to_global_id
from tests.support import START, TRANSFER, Api, World, run_pairs

PLAN = """
query ($s: Int!, $t: Int!) {
  transferPlan(sourceUserId: $s, targetUserId: $t) {
    sourceUser { userId displayName } targetUser { userId displayName }
    impact { dataType { key policy } moves deletes }
    errors { code message field }
  }
}"""


def codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload.get("userErrors", payload.get("errors", []))]


async def start(api: Api, token: str, s: int, t: int, confirm: bool = True) -> dict:
    return (await api(START, token, s=s, t=t, confirm=confirm))["startTransfer"]


async def test_the_plan_shows_moves_and_overwrite_deletes_per_data_type_and_changes_nothing(api: Api, world: World) -> None:
    await world.give(10, "CCR", 3)
    await world.give(10, "PROJECT", 1)
    await world.give(11, "PROJECT", 2)
    await world.give(11, "CCR", 7)
    plan = (await api(PLAN, world.admin, s=10, t=11))["transferPlan"]
    impact = {i["dataType"]["key"]: (i["moves"], i["deletes"]) for i in plan["impact"]}
    assert plan["errors"] == []
    assert plan["sourceUser"]["userId"] == 10 and plan["targetUser"]["userId"] == 11
    assert impact["CCR"] == (3, 0)  # COMBINE never deletes
    assert impact["PROJECT"] == (1, 2)
    assert len(impact) == 30
    assert await world.owned(11) == {"CCR": 7, "PROJECT": 2}


async def test_the_plan_of_an_overwrite_type_the_target_lacks_deletes_nothing(api: Api, world: World) -> None:
    await world.give(10, "PROJECT", 2)
    await world.give(10, "AGENT_SCHEDULE")
    plan = (await api(PLAN, world.admin, s=10, t=11))["transferPlan"]
    impact = {i["dataType"]["key"]: (i["moves"], i["deletes"]) for i in plan["impact"]}
    assert plan["errors"] == []
    assert (impact["PROJECT"], impact["AGENT_SCHEDULE"]) == ((2, 0), (1, 0))


async def test_without_confirm_nothing_is_queued(api: Api, world: World) -> None:
    await world.stock(10)
    result = await start(api, world.admin, 10, 11, confirm=False)
    assert result["transfer"] is None
    assert codes(result) == ["CONFIRMATION_REQUIRED"]
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 0


async def test_a_confirmed_transfer_is_queued_and_moves_the_data(api: Api, world: World) -> None:
    await world.give(10, "CCR", 3)
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(11, "AGENT_SCHEDULE")
    result = await start(api, world.admin, 10, 11)
    assert result["userErrors"] == []
    assert result["transfer"]["status"] == "QUEUED" and result["transfer"]["kind"] == "SINGLE"
    done = await api.wait_finished(world.admin, result["transfer"]["id"])
    assert done["status"] == "SUCCEEDED" and done["message"] == "Data Transfer Successful"
    assert (done["totalPairs"], done["processedPairs"], done["succeededPairs"], done["failedPairs"]) == (1, 1, 1, 0)
    (item,) = [e["node"] for e in done["items"]["edges"]]
    assert {m["dataType"]["key"]: m["count"] for m in item["moved"]} == {"CCR": 3, "AGENT_SCHEDULE": 1}
    assert {m["dataType"]["key"]: m["count"] for m in item["overwritten"]} == {"AGENT_SCHEDULE": 1}
    assert await world.owned(10) == {}
    assert await world.owned(11) == {"CCR": 3, "AGENT_SCHEDULE": 1}
    assert done["requestedBy"] == {"userId": 1}


async def test_a_user_id_that_is_not_positive_is_invalid(api: Api, world: World) -> None:
    result = await start(api, world.admin, 0, 11)
    assert codes(result) == ["INVALID_USER_ID"]
    assert result["userErrors"][0]["field"] == ["input", "sourceUserId"]
    # 1 is an ID: the admin's, who is refused as a tenant admin.
    await world.stock(11)
    assert codes(await start(api, world.admin, 11, 1)) == ["TENANT_ADMIN"]


async def test_an_unknown_user_is_not_found(api: Api, world: World) -> None:
    await world.stock(10)
    result = await start(api, world.admin, 10, 999)
    assert codes(result) == ["USER_NOT_FOUND"]
    assert result["userErrors"][0]["field"] == ["input", "targetUserId"]


async def test_a_user_outside_the_operators_view_is_refused(api: Api, world: World) -> None:
    assert codes(await start(api, world.lead, 30, 11)) == ["USER_OUTSIDE_VIEW"]


async def test_tenant_admins_can_never_be_source_or_target(api: Api, world: World) -> None:
    await world.stock(4, 11)
    assert codes(await start(api, world.admin, 4, 11)) == ["TENANT_ADMIN"]
    assert codes(await start(api, world.admin, 11, 4)) == ["TENANT_ADMIN"]


async def test_source_and_target_must_differ(api: Api, world: World) -> None:
    await world.stock(11)
    assert codes(await start(api, world.admin, 11, 11)) == ["SAME_USER"]


async def test_inactive_users_may_take_part(api: Api, world: World) -> None:
    await world.give(40, "CCR", 2)
    result = await start(api, world.admin, 40, 41)
    assert result["userErrors"] == []
    assert (await api.wait_finished(world.admin, result["transfer"]["id"]))["status"] == "SUCCEEDED"
    assert await world.owned(41) == {"CCR": 2}


async def test_a_user_in_a_queued_transfer_is_busy(api: Api, world: World) -> None:
    await world.stock(10, 11, 12, 13)
    # Started without a worker job: it stays QUEUED while the test runs.
    queued, _ = await starting.start_single(world.users[1], 10, 11)
    assert codes(await start(api, world.admin, 12, 10)) == ["USER_BUSY"]
    plan = (await api(PLAN, world.admin, s=11, t=13))["transferPlan"]
    assert codes(plan) == ["USER_BUSY"]
    plan = (await api(PLAN, world.admin, s=13, t=10))["transferPlan"]  # busy as the target
    assert codes(plan) == ["USER_BUSY"] and plan["errors"][0]["field"] == ["targetUserId"]
    await running.cancel(queued)
    assert (await start(api, world.admin, 12, 10))["userErrors"] == []


async def test_every_problem_of_a_pair_is_reported(api: Api, world: World) -> None:
    await world.stock(4)
    result = await start(api, world.lead, 4, 30)
    assert sorted(codes(result)) == ["TENANT_ADMIN", "USER_OUTSIDE_VIEW"]


async def test_transfers_are_listed_newest_first_with_filters(api: Api, world: World) -> None:
    await world.stock(10, 12)
    first = (await start(api, world.admin, 10, 11))["transfer"]["id"]
    await api.wait_finished(world.admin, first)
    second = (await start(api, world.admin, 12, 13))["transfer"]["id"]
    await api.wait_finished(world.admin, second)
    listed = await api("{ transfers(first: 10) { totalCount edges { node { id kind status } } } }", world.admin)
    assert [e["node"]["id"] for e in listed["transfers"]["edges"]] == [second, first]
    bulk = await api("{ transfers(kind: BULK) { totalCount } }", world.admin)
    assert bulk["transfers"]["totalCount"] == 0
    done = await api("{ transfers(status: SUCCEEDED, first: 1) { totalCount pageInfo { hasNextPage } } }", world.admin)
    assert done["transfers"] == {"totalCount": 2, "pageInfo": {"hasNextPage": True}}


async def test_a_transfer_is_found_by_its_node_id(api: Api, world: World) -> None:
    await world.stock(10)
    started = (await start(api, world.admin, 10, 11))["transfer"]["id"]
    found = await api("query ($id: ID!) { node(id: $id) { ... on Transfer { kind } } }", world.admin, id=started)
    assert found["node"] == {"kind": "SINGLE"}
    assert (await api(TRANSFER, world.admin, id=started))["transfer"]["id"] == started
    await api.wait_finished(world.admin, started)


async def test_a_pair_fails_with_forbidden_when_its_operator_lost_the_permission(api: Api, world: World) -> None:
    await world.give(10, "CCR", 2)
    queued, problems = await starting.start_single(world.users[2], 10, 11)  # the lead may transfer today
    assert problems == []
    world.users[2].can_transfer = False  # and no longer may, before the pair is applied
    await world.users[2].save()
    await run_pairs(queued.id)
    done = (await api(TRANSFER, world.admin, id=to_global_id("Transfer", queued.id)))["transfer"]
    assert (done["status"], done["failedPairs"], done["failedUserIds"]) == ("FAILED", 1, [10, 11])
    (item,) = [e["node"] for e in done["items"]["edges"]]
    assert (item["status"], item["errorCode"]) == ("FAILED", "FORBIDDEN")
    assert await world.owned(10) == {"CCR": 2} and await world.owned(11) == {}


async def test_a_source_that_owns_nothing_is_refused_at_plan_and_start_naming_the_source(api: Api, world: World) -> None:
    await world.give(11, "PROJECT", 3)
    plan = (await api(PLAN, world.admin, s=10, t=11))["transferPlan"]
    assert [(e["code"], e["field"]) for e in plan["errors"]] == [("NOTHING_TO_TRANSFER", ["sourceUserId"])]
    assert "Agent10 Number10 (10)" in plan["errors"][0]["message"]
    refused = await start(api, world.admin, 10, 11)
    assert refused["transfer"] is None
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("NOTHING_TO_TRANSFER", ["input", "sourceUserId"])]
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 0
    assert await world.owned(11) == {"PROJECT": 3}


async def test_a_start_resent_without_a_key_after_the_first_finished_is_refused_and_deletes_nothing(
    api: Api, world: World
) -> None:
    for key, n in (("AGENT_SCHEDULE", 1), ("ACCUMULATED_VACATION_HOURS", 2), ("SKILL_MAPPING", 3), ("AGENT_WORK_SHIFT", 4)):
        await world.give(10, key, n)
    first = await start(api, world.admin, 10, 11)
    assert (await api.wait_finished(world.admin, first["transfer"]["id"]))["status"] == "SUCCEEDED"
    received = await world.owned(11)
    again = await start(api, world.admin, 10, 11)  # the response was lost; the client sends the request again
    assert again["transfer"] is None and codes(again) == ["NOTHING_TO_TRANSFER"]
    assert await world.owned(11) == received
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 1


async def test_a_reversed_transfer_keeps_the_target_types_the_source_lacks_and_plan_items_and_audit_agree(
    api: Api, world: World
) -> None:
    import csv
    import io

    import httpx

    # The old account (10) holds years of OVERWRITE data; the new one (11) a little. The
    # administrator picks them the wrong way round: 11 gives its data to 10.
    await world.give(10, "PROJECT", 5)
    await world.give(10, "AGENT_WORK_SHIFT", 4)
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(10, "SKILL_MAPPING", 2)
    await world.give(11, "SKILL_MAPPING", 1)
    await world.give(11, "CCR", 2)
    plan = (await api(PLAN, world.admin, s=11, t=10))["transferPlan"]
    deletes = {i["dataType"]["key"]: i["deletes"] for i in plan["impact"] if i["deletes"]}
    assert plan["errors"] == [] and deletes == {"SKILL_MAPPING": 2}
    started = await start(api, world.admin, 11, 10)
    done = await api.wait_finished(world.admin, started["transfer"]["id"])
    assert done["status"] == "SUCCEEDED"
    (item,) = [e["node"] for e in done["items"]["edges"]]
    assert {m["dataType"]["key"]: m["count"] for m in item["overwritten"]} == deletes
    assert {m["dataType"]["key"]: m["count"] for m in item["moved"]} == {"SKILL_MAPPING": 1, "CCR": 2}
    assert await world.owned(10) == {"PROJECT": 5, "AGENT_WORK_SHIFT": 4, "AGENT_SCHEDULE": 1, "SKILL_MAPPING": 1, "CCR": 2}
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{api.base}{done['auditLogUrl']}?all=1", headers={"Authorization": f"Bearer {world.admin}"})
    header, row = list(csv.reader(io.StringIO(response.text)))
    logged = dict(zip(header, row))
    assert logged["Records Overwritten"] == "2" and logged["SKILL_MAPPING overwritten"] == "2"
    assert logged["PROJECT overwritten"] == logged["AGENT_WORK_SHIFT overwritten"] == logged["AGENT_SCHEDULE overwritten"] == "0"
    events = await api.events(world.admin, started["transfer"]["id"], after=_first_cursor(started["transfer"]["id"]))
    (succeeded,) = [e for e in events if e["type"] == "ITEM_SUCCEEDED"]
    assert "3 records moved, 2 overwritten" in succeeded["message"]


def _first_cursor(gid: str) -> str:
    from graph.api.transfer_events import event_cursor
    from graph.core.relay import pk_of

    return event_cursor(pk_of(gid, "Transfer"), 0)


async def test_a_source_emptied_between_start_and_its_pair_fails_it_with_nothing_to_transfer_and_changes_nothing(
    api: Api, world: World
) -> None:
    from models.userdata import OwnedRecord

    await world.give(10, "PROJECT", 2)
    await world.give(11, "PROJECT", 3)
    await world.give(11, "AGENT_SCHEDULE")
    queued, problems = await starting.start_single(world.users[1], 10, 11)  # no worker job: it waits
    assert problems == []
    await OwnedRecord.filter(owner_id=world.pk(10)).delete()  # someone empties the source meanwhile
    await run_pairs(queued.id)
    done = (await api(TRANSFER, world.admin, id=to_global_id("Transfer", queued.id)))["transfer"]
    assert (done["status"], done["failedPairs"]) == ("FAILED", 1)
    (item,) = [e["node"] for e in done["items"]["edges"]]
    assert (item["status"], item["errorCode"], item["overwritten"]) == ("FAILED", "NOTHING_TO_TRANSFER", [])
    assert "Agent10 Number10 (10)" in item["errorMessage"]
    assert await world.owned(11) == {"PROJECT": 3, "AGENT_SCHEDULE": 1}
