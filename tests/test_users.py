"""Finding users: scope, filters, search, pagination, views, and no N+1."""

from __future__ import annotations

from graph.core.relay import to_global_id
from models.tenancy import Team
from tests.support import START, Api, World, server_queries

USERS = """
query ($filter: UserFilter, $first: Int, $after: String) {
  users(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id userId displayName active tenantAdmin teams { name } data { dataType { key } count } } }
  }
}"""


def ids(result: dict) -> list[int]:
    return [e["node"]["userId"] for e in result["users"]["edges"]]


async def test_users_are_active_only_by_default_ordered_by_user_id(api: Api, world: World) -> None:
    found = ids(await api(USERS, world.admin, first=100))
    assert found == sorted(found)
    assert 40 not in found and 10 in found and 1 in found


async def test_inactive_only_and_both_states(api: Api, world: World) -> None:
    inactive = ids(await api(USERS, world.admin, filter={"active": False}, first=100))
    both = ids(await api(USERS, world.admin, filter={"active": None}, first=100))
    assert inactive == [40, 41, 42, 43, 44]
    assert len(both) == len(world.users)


async def test_an_operator_with_a_view_sees_only_the_users_of_that_view(api: Api, world: World) -> None:
    found = ids(await api(USERS, world.lead, filter={"active": None}, first=100))
    assert found == [4, *range(10, 30), *range(40, 45)]


async def test_view_filter_narrows_to_users_inside_that_view(api: Api, world: World) -> None:
    views = (await api("{ views { id name teams { name } } }", world.admin))["views"]
    west = next(v for v in views if v["name"] == "West")
    assert west["teams"] == [{"name": "West"}]
    assert ids(await api(USERS, world.admin, filter={"viewId": west["id"]}, first=100)) == list(range(30, 40))
    # the lead cannot widen their scope with another view's ID
    assert ids(await api(USERS, world.lead, filter={"viewId": west["id"]}, first=100)) == []


async def test_an_operator_with_a_view_may_filter_by_that_view_and_one_with_none_by_no_view(api: Api, world: World) -> None:
    east = to_global_id("View", world.views["East"].id)
    assert (await api("{ views { id name } }", world.lead))["views"] == [{"id": east, "name": "East"}]
    assert ids(await api(USERS, world.lead, filter={"viewId": east}, first=100)) == [4, *range(10, 30)]
    clerk = world.users[3]  # may transfer, but has no view: sees nobody, so no view either
    clerk.can_transfer = True
    await clerk.save()
    assert (await api("{ views { id } }", world.tokens["clerk"]))["views"] == []


async def test_search_matches_names_username_email_or_an_exact_user_id(api: Api, world: World) -> None:
    assert ids(await api(USERS, world.admin, filter={"search": "AGENT12"}, first=100)) == [12]
    assert ids(await api(USERS, world.admin, filter={"search": "number13"}, first=100)) == [13]
    assert ids(await api(USERS, world.admin, filter={"search": "agent14@example"}, first=100)) == [14]
    assert ids(await api(USERS, world.admin, filter={"search": "15"}, first=100)) == [15]
    assert ids(await api(USERS, world.admin, filter={"search": "Agent16 Number16"}, first=100)) == [16]
    assert ids(await api(USERS, world.admin, filter={"search": "\u00b2"}, first=100)) == []
    assert ids(await api(USERS, world.admin, filter={"search": "99999999999999999999"}, first=100)) == []


async def test_cursor_pagination_walks_every_user_once_with_a_total_count(api: Api, world: World) -> None:
    seen, after, pages = [], None, 0
    while True:
        page = (await api(USERS, world.admin, filter={"active": None}, first=7, after=after))["users"]
        assert page["totalCount"] == len(world.users)
        seen += [e["node"]["userId"] for e in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert page["edges"][-1]["cursor"] == after
    assert seen == sorted(u for u in world.users)
    assert pages == -(-len(world.users) // 7)


async def test_user_data_counts_per_data_type(api: Api, world: World) -> None:
    await world.give(10, "CCR", 3)
    await world.give(10, "EVALUATION", 2)
    result = await api("query { user(userId: 10) { data { dataType { key } count } } }", world.admin)
    assert {d["dataType"]["key"]: d["count"] for d in result["user"]["data"]} == {"CCR": 3, "EVALUATION": 2}


async def test_an_evaluation_counts_once_for_each_user_who_evaluated_or_approved_it(api: Api, world: World) -> None:
    from models.userdata import Evaluation

    ten, eleven = world.pk(10), world.pk(11)
    await Evaluation.create(evaluator_id=ten, approver_id=ten)  # self-approved: one record of 10's
    await Evaluation.create(evaluator_id=eleven, approver_id=ten)
    await Evaluation.create(evaluator_id=ten, approver_id=None)
    await world.give(10, "AGENT_SCHEDULE")
    await world.give(11, "CCR", 2)
    data = {}
    for uid in (10, 11):
        node = (await api(USERS, world.admin, filter={"search": str(uid)}, first=5))["users"]["edges"][0]["node"]
        data[uid] = {d["dataType"]["key"]: d["count"] for d in node["data"]}
    assert data == {10: {"EVALUATION": 3, "AGENT_SCHEDULE": 1}, 11: {"CCR": 2, "EVALUATION": 1}}


async def test_a_user_outside_the_scope_is_not_found(api: Api, world: World) -> None:
    assert (await api("query { user(userId: 30) { userId } }", world.lead))["user"] is None
    assert (await api("query { user(userId: 30) { userId } }", world.admin))["user"] == {"userId": 30}


async def test_node_finds_a_user_by_its_global_id_within_scope(api: Api, world: World) -> None:
    west_user = (await api("query { user(userId: 30) { id } }", world.admin))["user"]["id"]
    node = "query ($id: ID!) { node(id: $id) { id ... on User { userId } } }"
    assert (await api(node, world.admin, id=west_user))["node"]["userId"] == 30
    assert (await api(node, world.lead, id=west_user))["node"] is None


async def test_a_page_of_users_with_teams_and_data_costs_the_same_queries_at_any_size(api: Api, world: World) -> None:
    for uid in range(10, 30):
        await world.give(uid, "CCR", 2)
        await world.give(uid, "EVALUATION", 1)
    assert len(ids(await api(USERS, world.admin, first=50))) > 30
    small = await server_queries(lambda: api(USERS, world.admin, first=2))
    large = await server_queries(lambda: api(USERS, world.admin, first=50))
    assert 0 < large == small


async def test_data_types_list_the_catalogue_with_policies(api: Api, world: World) -> None:
    types = (await api("{ dataTypes { key name product policy } }", world.admin))["dataTypes"]
    by_key = {t["key"]: t for t in types}
    assert len(types) == 30
    assert by_key["AGENT_SCHEDULE"] == {"key": "AGENT_SCHEDULE", "name": "Agent Schedules", "product": "CLASSIC_WFM", "policy": "OVERWRITE"}
    assert by_key["EVALUATION"]["policy"] == "COMBINE"


async def test_viewer_describes_the_operator(api: Api, world: World) -> None:
    lead = (await api("{ viewer { user { userId } tenant { slug } view { name } canTransfer } }", world.lead))["viewer"]
    assert lead == {"user": {"userId": 2}, "tenant": {"slug": world.tenant.slug}, "view": {"name": "East"}, "canTransfer": True}
    admin = (await api("{ viewer { view { name } canTransfer } }", world.admin))["viewer"]
    assert admin == {"view": None, "canTransfer": True}


async def test_a_user_shows_who_they_are(api: Api, world: World) -> None:
    u = world.users[12]
    shown = "userId firstName lastName displayName username email active tenantAdmin outsideView"
    found = (await api(f"query ($id: Int!) {{ user(userId: $id) {{ {shown} }} }}", world.admin, id=12))["user"]
    assert found == {"userId": 12, "firstName": u.first_name, "lastName": u.last_name, "displayName": u.display_name,
                     "username": "agent12", "email": "agent12@example.com", "active": True, "tenantAdmin": False,
                     "outsideView": False}


async def test_teams_and_the_tenant_are_named_with_their_global_ids(api: Api, world: World) -> None:
    east = await Team.get(tenant_id=world.tenant.id, name="East")
    team = {"id": to_global_id("Team", east.id), "name": "East"}
    page = await api('{ users(filter: {search: "agent10"}) { edges { node { teams { id name } } } } }', world.admin)
    assert page["users"]["edges"] == [{"node": {"teams": [team]}}]
    views = (await api("{ views { name teams { id name } } }", world.admin))["views"]
    assert next(v["teams"] for v in views if v["name"] == "East") == [team]
    tenant = (await api("{ viewer { tenant { id name slug } } }", world.admin))["viewer"]["tenant"]
    assert tenant == {"id": to_global_id("Tenant", world.tenant.id), "name": world.tenant.name, "slug": world.tenant.slug}


async def test_a_user_read_for_one_field_is_shown_in_full_by_another_field_of_the_same_request(api: Api, world: World) -> None:
    """A page of users and `user` note the users they read, and that they are in scope, for the
    request's other fields (here a transfer's pairs, resolved after them): noted as they are."""
    await world.stock(10)
    gid = (await api(START, world.admin, s=10, t=11, confirm=True))["startTransfer"]["transfer"]["id"]
    await api.wait_finished(world.admin, gid)
    shown = "userId username outsideView"
    query = f"""query ($id: ID!) {{
      users(filter: {{search: "agent10"}}) {{ edges {{ node {{ {shown} }} }} }}
      user(userId: 11) {{ {shown} }}
      transfer(id: $id) {{ items {{ edges {{ node {{ sourceUser {{ {shown} }} targetUser {{ {shown} }} }} }} }} }}
    }}"""
    result = await api(query, world.admin, id=gid)
    ten, eleven = ({"userId": uid, "username": f"agent{uid}", "outsideView": False} for uid in (10, 11))
    assert [e["node"] for e in result["users"]["edges"]] == [ten]
    assert result["user"] == eleven
    assert [e["node"] for e in result["transfer"]["items"]["edges"]] == [{"sourceUser": ten, "targetUser": eleven}]
