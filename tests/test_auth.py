"""Auth and tenancy: bearer tokens, UNAUTHENTICATED, FORBIDDEN, other tenants unseen."""

from __future__ import annotations

import pytest

from models.tenancy import ApiToken, User
from tests.support import START, Api, GraphQLErrors, World, make_world


async def test_no_token_is_unauthenticated(api: Api, world: World) -> None:
    with pytest.raises(GraphQLErrors) as caught:
        await api("{ viewer { canTransfer } }")
    assert caught.value.codes == ["UNAUTHENTICATED"]


async def test_a_wrong_token_is_unauthenticated(api: Api, world: World) -> None:
    with pytest.raises(GraphQLErrors) as caught:
        await api("{ users { totalCount } }", "udt_not-a-token")
    assert caught.value.codes == ["UNAUTHENTICATED"]


async def test_the_api_token_of_a_deactivated_user_is_unauthenticated(api: Api, world: World) -> None:
    assert (await api("{ viewer { canTransfer } }", world.tokens["clerk"]))["viewer"] == {"canTransfer": False}
    await User.filter(tenant=world.tenant, username="clerk").update(active=False)
    with pytest.raises(GraphQLErrors) as caught:
        await api("{ viewer { canTransfer } }", world.tokens["clerk"])
    assert caught.value.codes == ["UNAUTHENTICATED"]


async def test_tokens_are_stored_only_as_hashes(world: World) -> None:
    stored = await ApiToken.filter(user_id=world.pk(1)).values_list("token_hash", flat=True)
    assert world.admin not in stored
    assert ApiToken.hash(world.admin) in stored


async def test_an_operator_without_the_transfer_permission_is_forbidden(api: Api, world: World) -> None:
    assert (await api("{ viewer { canTransfer } }", world.tokens["clerk"]))["viewer"] == {"canTransfer": False}
    with pytest.raises(GraphQLErrors) as caught:
        await api(START, world.tokens["clerk"], s=10, t=11, confirm=True)
    assert caught.value.codes == ["FORBIDDEN"]
    with pytest.raises(GraphQLErrors) as caught:
        await api("{ users { totalCount } }", world.tokens["clerk"])
    assert caught.value.codes == ["FORBIDDEN"]


async def test_another_tenants_users_are_not_found(api: Api, world: World) -> None:
    other = await make_world()
    result = await api(
        "{ transferPlan(sourceUserId: 10, targetUserId: 11) { sourceUser { userId } errors { code } } }", other.admin
    )
    assert result["transferPlan"]["sourceUser"]["userId"] == 10  # their own 10, not ours
    other_user = (await api("{ user(userId: 10) { id } }", other.admin))["user"]["id"]
    node = "query ($id: ID!) { node(id: $id) { id } }"
    assert (await api(node, world.admin, id=other_user))["node"] is None


async def test_another_tenants_transfer_behaves_as_unknown(api: Api, world: World) -> None:
    other = await make_world()
    await other.stock(10)
    started = (await api(START, other.admin, s=10, t=11, confirm=True))["startTransfer"]["transfer"]
    assert (await api("query ($id: ID!) { transfer(id: $id) { id } }", world.admin, id=started["id"]))["transfer"] is None
    cancel = "mutation ($id: ID!) { cancelTransfer(id: $id) { transfer { id } userErrors { code } } }"
    assert (await api(cancel, world.admin, id=started["id"]))["cancelTransfer"]["userErrors"] == [{"code": "TRANSFER_NOT_FOUND"}]
    await api.wait_finished(other.admin, started["id"])


async def test_a_websocket_accepts_the_token_as_token_too(api: Api, world: World) -> None:
    await world.stock(10)
    started = (await api(START, world.admin, s=10, t=11, confirm=True))["startTransfer"]["transfer"]
    await api.wait_finished(world.admin, started["id"])
    received = await api.events("", started["id"], init={"token": world.admin})
    assert [e["type"] for e in received] == ["SNAPSHOT", "SUCCEEDED"]


async def test_an_operator_with_a_view_does_not_see_transfers_of_users_outside_it(api: Api, world: World) -> None:
    import httpx
    from gql.transport.exceptions import TransportQueryError

    await world.stock(30, 10)
    west = (await api(START, world.admin, s=30, t=31, confirm=True))["startTransfer"]["transfer"]["id"]
    east = (await api(START, world.lead, s=10, t=11, confirm=True))["startTransfer"]["transfer"]["id"]
    await api.wait_finished(world.admin, west)
    await api.wait_finished(world.admin, east)
    query = "query ($id: ID!) { transfer(id: $id) { id } }"
    assert (await api(query, world.lead, id=west))["transfer"] is None
    assert (await api(query, world.lead, id=east))["transfer"] == {"id": east}
    listed = await api("{ transfers { edges { node { id } } } }", world.lead)
    assert [e["node"]["id"] for e in listed["transfers"]["edges"]] == [east]
    admin_listed = await api("{ transfers { totalCount } }", world.admin)
    assert admin_listed["transfers"]["totalCount"] == 2
    with pytest.raises(TransportQueryError) as caught:
        await api.events(world.lead, west)
    assert caught.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
    async with httpx.AsyncClient() as client:
        log = await client.get(f"{api.base}/transfers/{west}/audit.csv", headers={"Authorization": f"Bearer {world.lead}"})
    assert log.status_code == 404


async def test_a_user_outside_the_view_is_not_named(api: Api, world: World) -> None:
    result = (await api(START, world.lead, s=30, t=11, confirm=True))["startTransfer"]
    (error,) = result["userErrors"]
    assert error["code"] == "USER_OUTSIDE_VIEW"
    assert "Agent30" not in error["message"] and "30" in error["message"]


async def test_an_operator_with_a_view_does_not_see_uploads_naming_users_outside_it(api: Api, world: World) -> None:
    west = (await api.upload(world.admin, "Source User ID,Target User ID\n30,31\n"))["upload"]["id"]
    east = (await api.upload(world.admin, "Source User ID,Target User ID\n10,11\n"))["upload"]["id"]
    query = "query ($id: ID!) { bulkUpload(id: $id) { id } }"
    assert (await api(query, world.lead, id=west))["bulkUpload"] is None
    assert (await api(query, world.lead, id=east))["bulkUpload"] == {"id": east}
    assert (await api(query, world.admin, id=west))["bulkUpload"] == {"id": west}
