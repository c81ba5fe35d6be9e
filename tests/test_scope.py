"""An operator limited to a view learns nothing about a user outside it, by any path (SPEC.md section 8).

Every field whose type is User (or an interface User implements) must be in
PROOFS below, with a real request showing that an out-of-view user does not
come out of it. A new field returning User fails the schema walk until it has
a scope rule and a proof here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable

import httpx
import pytest
from graphql import GraphQLError, GraphQLInterfaceType, GraphQLObjectType, GraphQLSchema, GraphQLUnionType, get_named_type

from graph.api.schema import schema
from graph.api.users import show_user_or_mask
from graph.core.context import Context
from graph.core.relay import pk_of, to_global_id
from models import csv_exports
from models.tenancy import TeamMember
from models.transfers import Transfer
from tests.support import START, Api, GraphQLErrors, World, make_world

# What must never reach the East lead about users outside East: the tenant
# admin (1), the clerk (3) and the West agents (30-39), by name, username or email.
OUTSIDE = (1, 3, 30, 31)
EAST_MEMBERS = {4, *range(10, 30), *range(40, 45)}


def _secrets(world: World) -> list[re.Pattern[str]]:
    """Each out-of-view user's last name (unique here), username and email, as whole words."""
    found = []
    for uid in OUTSIDE:
        u = world.users[uid]
        found += [re.compile(rf"(?<![\w.@]){re.escape(text)}(?![\w@])") for text in (u.last_name, u.username, u.email)]
    return found


def assert_reveals_nothing(world: World, result: object) -> None:
    text = result if isinstance(result, str) else json.dumps(result)
    leaked = [p.pattern for p in _secrets(world) if p.search(text)]
    assert leaked == [], f"out-of-view user data in {text}"


async def _admin_transfer(api: Api, world: World, source: int, target: int) -> str:
    if not await world.owned(source):
        await world.stock(source)
    started = (await api(START, world.admin, s=source, t=target, confirm=True))["startTransfer"]
    assert started["userErrors"] == []
    await api.wait_finished(world.admin, started["transfer"]["id"])
    return started["transfer"]["id"]


USER_FIELDS = "id userId firstName lastName displayName username email active tenantAdmin outsideView teams { name } data { count }"


async def prove_viewer_user(api: Api, world: World) -> None:
    # The lead is in no team of his own view: he still sees himself, and only himself.
    viewer = (await api(f"{{ viewer {{ user {{ {USER_FIELDS} }} }} }}", world.lead))["viewer"]
    assert viewer["user"]["userId"] == 2 and viewer["user"]["username"] == "lead"
    assert_reveals_nothing(world, viewer)


async def prove_users_connection(api: Api, world: World) -> None:
    query = f"{{ users(filter: {{active: null}}, first: 100) {{ totalCount edges {{ node {{ {USER_FIELDS} }} }} }} }}"
    result = (await api(query, world.lead))["users"]
    assert {e["node"]["userId"] for e in result["edges"]} == EAST_MEMBERS
    assert result["totalCount"] == len(EAST_MEMBERS)
    assert_reveals_nothing(world, result)
    west = f'{{ users(filter: {{viewId: "{to_global_id("View", world.views["West"].id)}"}}) {{ totalCount }} }}'
    assert (await api(west, world.lead))["users"]["totalCount"] == 0


async def prove_user(api: Api, world: World) -> None:
    query = f"query ($id: Int!) {{ user(userId: $id) {{ {USER_FIELDS} }} }}"
    for uid in OUTSIDE:
        assert (await api(query, world.lead, id=uid))["user"] is None
    assert (await api(query, world.lead, id=10))["user"]["username"] == "agent10"


async def prove_node(api: Api, world: World) -> None:
    query = f"query ($id: ID!) {{ node(id: $id) {{ ... on User {{ {USER_FIELDS} }} }} }}"
    for uid in OUTSIDE:
        assert (await api(query, world.lead, id=to_global_id("User", world.pk(uid))))["node"] is None
    assert (await api(query, world.lead, id=to_global_id("User", world.pk(10))))["node"]["userId"] == 10


async def prove_plan_users(api: Api, world: World) -> None:
    query = f"""query ($s: Int!, $t: Int!) {{ transferPlan(sourceUserId: $s, targetUserId: $t) {{
        sourceUser {{ {USER_FIELDS} }} targetUser {{ {USER_FIELDS} }} errors {{ code message }} }} }}"""
    for source, target in ((30, 11), (11, 31), (1, 3)):
        plan = (await api(query, world.lead, s=source, t=target))["transferPlan"]
        outside = [side for side, uid in (("sourceUser", source), ("targetUser", target)) if uid in OUTSIDE]
        assert all(plan[side] is None for side in outside)
        assert "USER_OUTSIDE_VIEW" in [e["code"] for e in plan["errors"]]
        assert_reveals_nothing(world, plan)
    assert (await api(query, world.lead, s=10, t=11))["transferPlan"]["sourceUser"]["userId"] == 10


async def prove_requested_by(api: Api, world: World) -> None:
    # The tenant admin (outside East) moves data between two East users: the lead may see
    # the transfer, but not who requested it.
    gid = await _admin_transfer(api, world, 10, 11)
    one = f"query ($id: ID!) {{ transfer(id: $id) {{ id requestedBy {{ {USER_FIELDS} }} }} }}"
    seen = (await api(one, world.lead, id=gid))["transfer"]
    assert seen == {"id": gid, "requestedBy": None}
    listed = (await api(f"{{ transfers {{ edges {{ node {{ id requestedBy {{ {USER_FIELDS} }} }} }} }} }}", world.lead))
    assert [e["node"] for e in listed["transfers"]["edges"]] == [{"id": gid, "requestedBy": None}]
    assert (await api(one, world.admin, id=gid))["transfer"]["requestedBy"]["username"] == "admin"
    # His own transfers name him: an operator always sees himself.
    await world.stock(12)
    own = (await api(START, world.lead, s=12, t=13, confirm=True))["startTransfer"]["transfer"]["id"]
    await api.wait_finished(world.lead, own)
    assert (await api(one, world.lead, id=own))["transfer"]["requestedBy"]["username"] == "lead"


async def prove_item_users(api: Api, world: World) -> None:
    # A transfer with any pair outside the view is not shown at all, so neither are its items.
    await world.stock(14, 30)
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n14,15\n30,31\n"))["upload"]
    start = 'mutation ($id: ID!) { startBulkTransfer(input: {uploadId: $id, confirm: true}) { transfer { id } userErrors { code } } }'
    gid = (await api(start, world.admin, id=upload["id"]))["startBulkTransfer"]["transfer"]["id"]
    await api.wait_finished(world.admin, gid)
    items = f"{{ items(first: 10) {{ edges {{ node {{ sourceUser {{ {USER_FIELDS} }} targetUser {{ {USER_FIELDS} }} }} }} }} }}"
    assert (await api(f"query ($id: ID!) {{ transfer(id: $id) {items} }}", world.lead, id=gid))["transfer"] is None
    listed = await api(f"{{ transfers(first: 10) {{ edges {{ node {items} }} }} }}", world.lead)
    assert_reveals_nothing(world, listed)
    assert (await api("{ activeBulkTransfer { id } }", world.lead))["activeBulkTransfer"] is None


async def prove_row_users(api: Api, world: World) -> None:
    upload = (await api.upload(world.lead, "Source User ID,Target User ID\n30,11\n12,1\n10,3\n14,15\n"))["upload"]
    rows = [e["node"] for e in upload["rows"]["edges"]]
    assert [(r["sourceUser"], r["targetUser"]) for r in rows[:3]] == [
        (None, {"userId": 11, "displayName": "Agent11 Number11"}),
        ({"userId": 12, "displayName": "Agent12 Number12"}, None),
        ({"userId": 10, "displayName": "Agent10 Number10"}, None),
    ]
    assert_reveals_nothing(world, upload)
    # An upload of the admin's that names a user outside the view is not shown to the lead.
    theirs = (await api.upload(world.admin, "Source User ID,Target User ID\n14,15\n30,31\n"))["upload"]
    query = f"query ($id: ID!) {{ bulkUpload(id: $id) {{ rows {{ edges {{ node {{ sourceUser {{ {USER_FIELDS} }} targetUser {{ {USER_FIELDS} }} }} }} }} }} }}"
    assert (await api(query, world.lead, id=theirs["id"]))["bulkUpload"] is None


async def prove_revert_conflict_users(api: Api, world: World) -> None:
    # A transfer naming a user outside the view, then or since, is not found: nor is its plan.
    plan = f"""query ($id: ID!) {{ revertPlan(transferId: $id) {{
        conflicts {{ code sourceUser {{ {USER_FIELDS} }} targetUser {{ {USER_FIELDS} }} }} }} }}"""
    across = await _admin_transfer(api, world, 14, 30)
    await world.give(16, "AGENT_SCHEDULE")
    left = await _admin_transfer(api, world, 16, 17)
    await TeamMember.filter(user_id=world.pk(17)).delete()  # 17 has left the East team since
    for gid in (across, left):
        with pytest.raises(GraphQLErrors) as refused:
            await api(plan, world.lead, id=gid)
        assert refused.value.codes == ["TRANSFER_NOT_FOUND"]
        assert_reveals_nothing(world, str(refused.value.errors))
    # In view, a conflict names its users.
    await world.give(18, "AGENT_SCHEDULE")
    own = (await api(START, world.lead, s=18, t=19, confirm=True))["startTransfer"]["transfer"]["id"]
    await api.wait_finished(world.lead, own)
    await world.give(18, "AGENT_SCHEDULE")
    (conflict,) = (await api(plan, world.lead, id=own))["revertPlan"]["conflicts"]
    assert (conflict["sourceUser"]["username"], conflict["targetUser"]["username"]) == ("agent18", "agent19")


Proof = Callable[[Api, World], Awaitable[None]]
# "Type.field" -> a request that shows the field reveals no user outside the view.
PROOFS: dict[str, Proof] = {
    "Viewer.user": prove_viewer_user,
    "UserEdge.node": prove_users_connection,
    "Query.user": prove_user,
    "Query.node": prove_node,
    "TransferPlan.sourceUser": prove_plan_users,
    "TransferPlan.targetUser": prove_plan_users,
    "Transfer.requestedBy": prove_requested_by,
    "TransferItem.sourceUser": prove_item_users,
    "TransferItem.targetUser": prove_item_users,
    "BulkUploadRow.sourceUser": prove_row_users,
    "BulkUploadRow.targetUser": prove_row_users,
    "RevertConflict.sourceUser": prove_revert_conflict_users,
    "RevertConflict.targetUser": prove_revert_conflict_users,
}


def fields_that_can_return_a_user(gql_schema: GraphQLSchema) -> set[str]:
    """Every field, anywhere, whose type (through lists and non-null) is User or an abstract type User is one of."""
    user = gql_schema.type_map["User"]
    found = set()
    for type_name, named in gql_schema.type_map.items():
        if type_name.startswith("__") or not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            continue
        for field_name, field in named.fields.items():
            returned = get_named_type(field.type)
            abstract = isinstance(returned, GraphQLInterfaceType | GraphQLUnionType)
            if returned is user or (abstract and gql_schema.is_sub_type(returned, user)):
                found.add(f"{type_name}.{field_name}")
    return found


def test_every_field_that_returns_a_user_has_a_scope_rule_and_a_proof() -> None:
    walked = fields_that_can_return_a_user(schema._schema)
    assert "Transfer.requestedBy" in walked and "Query.node" in walked  # the walk finds what it must
    assert walked - PROOFS.keys() == set(), "a field returns User with no scope proof in tests/test_scope.py"
    assert PROOFS.keys() - walked == set(), "a proof for a field that no longer exists"


@pytest.mark.parametrize("field", sorted(PROOFS))
async def test_an_out_of_view_user_is_not_revealed_by(field: str, api: Api, world: World) -> None:
    await PROOFS[field](api, world)


async def test_a_user_outside_the_view_reached_by_a_non_null_field_is_shown_by_user_id_only(world: World) -> None:
    """Where the contract forbids null (a transfer item's users), the user comes masked."""
    context = Context(request=None, response=None, pool=None, fanout=None, _operator=world.users[2])  # type: ignore[arg-type]
    masked = await show_user_or_mask(context, world.pk(30))
    assert (masked.user_id, masked.outside_view, masked.first_name, masked.username, masked.email) == (30, True, "", "", None)
    assert masked.display_name == "User 30" and masked.tenant_admin is False
    assert (masked.id, masked.last_name, masked.active) == (to_global_id("User", world.pk(30)), "", False)
    shown = await show_user_or_mask(context, world.pk(10))
    assert (shown.username, shown.outside_view) == ("agent10", False)
    # Another tenant's user is no user at all: not even masked.
    other = await make_world()
    with pytest.raises(GraphQLError) as unknown:
        await show_user_or_mask(context, other.pk(30))
    assert (unknown.value.message, unknown.value.extensions) == ("No such user.", {"code": "NOT_FOUND"})


async def test_the_audit_log_names_only_users_the_operator_may_see(api: Api, world: World) -> None:
    await world.stock(10)
    gid = await _admin_transfer(api, world, 10, 11)
    async with httpx.AsyncClient() as client:
        seen = await client.get(f"{api.base}/transfers/{gid}/audit.csv?all=1", headers={"Authorization": f"Bearer {world.lead}"})
    assert seen.status_code == 200 and "Agent10 Number10" in seen.text
    # Had the pair left the view while the file was being written, its users would go unnamed.
    await TeamMember.filter(user_id=world.pk(10)).update(team_id=(await TeamMember.get(user_id=world.pk(30))).team_id)
    transfer = await Transfer.get(id=pk_of(gid, "Transfer"))
    text = "".join([chunk async for chunk in csv_exports.audit_csv(world.users[2], transfer, every_pair=True)])
    assert "Agent10" not in text and "Agent11 Number11" in text
    async with httpx.AsyncClient() as client:
        gone = await client.get(f"{api.base}/transfers/{gid}/audit.csv", headers={"Authorization": f"Bearer {world.lead}"})
    assert gone.status_code == 404


async def test_the_people_file_lists_only_the_view(api: Api, world: World) -> None:
    async with httpx.AsyncClient() as client:
        people = await client.get(f"{api.base}/exports/people.csv", headers={"Authorization": f"Bearer {world.lead}"})
    assert people.status_code == 200
    assert {int(line.split(",")[0]) for line in people.text.splitlines()[1:]} == EAST_MEMBERS
    assert_reveals_nothing(world, people.text)


async def test_the_scope_written_out_as_sql_is_the_same_rule_as_the_scope(world: World) -> None:
    """The people file's statement filters by `scope_condition`; everything else by `scope`, and
    `in_scope` (every field showing a user) answers by that rule for exactly the users asked."""
    from tortoise import connections

    from models.sql import Statement
    from models.tenancy import User, in_scope, scope, scope_condition

    other = await make_world()  # another tenant's users are never in scope
    others = {u.id for u in other.users.values()}
    asked = {world.pk(n) for n in (1, 2, 3, 10, 30)} | others
    operators = {"admin": world.users[1], "lead, view East": world.users[2], "clerk, no view": world.users[3]}
    found = {}
    for name, operator in operators.items():
        q = Statement(connections.get("default"))
        written = {pk for (pk,) in await q.rows(f"SELECT u.id FROM app_user u WHERE {scope_condition(operator, q, 'u')}")}
        assert written == set(await scope(operator).values_list("id", flat=True)), name
        assert not written & others, name
        assert await in_scope(operator, asked) == (written | {operator.id}) & asked, name
        found[name] = {u.user_id for u in await User.filter(id__in=written)}
    assert found["admin"] == set(world.users)
    assert found["lead, view East"] == {4, *range(10, 30), *range(40, 45)}
    assert found["clerk, no view"] == set()


async def test_a_tenant_admin_with_a_view_is_held_to_that_view(api: Api, world: World) -> None:
    """Only a tenant admin with no view sees the whole tenant (SPEC.md section 8)."""
    from tortoise import connections

    from models.sql import Statement
    from models.tenancy import ApiToken, User, scope_condition

    boss = world.users[4]  # a tenant admin, member of East, given the West view
    boss.view = world.views["West"]
    await boss.save()
    token = await ApiToken.issue(boss)
    west = set(range(30, 40))
    listed = (await api("{ users(filter: {active: null}, first: 100) { totalCount edges { node { userId } } } }", token))["users"]
    assert {e["node"]["userId"] for e in listed["edges"]} == west and listed["totalCount"] == len(west)
    one = "query ($id: Int!) { user(userId: $id) { userId } }"
    assert (await api(one, token, id=10))["user"] is None
    assert (await api(one, token, id=30))["user"] == {"userId": 30}
    plan = "query ($s: Int!, $t: Int!) { transferPlan(sourceUserId: $s, targetUserId: $t) { errors { code } } }"
    assert "USER_OUTSIDE_VIEW" in [e["code"] for e in (await api(plan, token, s=10, t=30))["transferPlan"]["errors"]]
    (row,) = [e["node"] for e in (await api.upload(token, "Source User ID,Target User ID\n10,31\n"))["upload"]["rows"]["edges"]]
    assert (row["sourceUser"], row["targetUser"]["userId"]) == (None, 31)
    # The whole tenant's admin (in no team) moves data inside West: the transfer shows, not who asked.
    gid = await _admin_transfer(api, world, 30, 31)
    requested = "query ($id: ID!) { transfer(id: $id) { id requestedBy { userId } } }"
    assert (await api(requested, token, id=gid))["transfer"] == {"id": gid, "requestedBy": None}
    q = Statement(connections.get("default"))
    written = {pk for (pk,) in await q.rows(f"SELECT u.id FROM app_user u WHERE {scope_condition(boss, q, 'u')}")}
    assert {u.user_id for u in await User.filter(id__in=written)} == west
