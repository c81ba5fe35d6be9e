"""Webhook endpoints through GraphQL: a tenant-wide operator manages them; bad input, an unknown
endpoint or a view-scoped operator gets its code and changes nothing."""

from __future__ import annotations

import base64

import pytest

from graph.core.relay import to_global_id
from models.webhooks import WebhookEndpoint
from tests.support import Api, GraphQLErrors, World
from tests.webhook_receiver import receiving
from tests.webhooks_support import (
    ALL_EVENTS,
    CREATE,
    DELETE,
    ENDPOINTS,
    REDELIVER,
    ROTATE,
    SEND_TEST,
    UPDATE,
    create_endpoint,
    endpoint_pk,
)

URL = "http://127.0.0.1:9/hooks"


async def state(world: World) -> list[tuple]:
    """Everything stored of the tenant's endpoints, to show that a refusal changed nothing."""
    return await WebhookEndpoint.filter(tenant_id=world.tenant.id).order_by("id").values_list(
        "id", "url", "events", "description", "enabled", "disabled_reason", "secret", "previous_secret"
    )


async def test_an_endpoint_is_created_with_a_secret_shown_once_and_listed(api: Api, world: World) -> None:
    created = (await api(CREATE, world.admin, url=URL, events=["transfer.failed"], description="On-call"))[
        "createWebhookEndpoint"
    ]
    assert created["userErrors"] == []
    endpoint, secret = created["endpoint"], created["secret"]
    assert (endpoint["url"], endpoint["events"], endpoint["description"]) == (URL, ["transfer.failed"], "On-call")
    assert endpoint["enabled"] is True and endpoint["disabledReason"] is None
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32

    listed = (await api(ENDPOINTS, world.admin))["webhookEndpoints"]
    assert listed["totalCount"] == 1
    (node,) = [e["node"] for e in listed["edges"]]
    assert node["id"] == endpoint["id"] and node["deliveries"]["totalCount"] == 0
    assert secret not in str(listed)  # never shown again


async def test_an_endpoint_is_updated_disabled_enabled_and_deleted(api: Api, world: World) -> None:
    endpoint_id, _ = await create_endpoint(api, world.admin, URL)
    changed = (await api(UPDATE, world.admin, input={"id": endpoint_id, "url": URL + "/v2", "events": ["transfer.succeeded"]}))
    assert changed["updateWebhookEndpoint"]["endpoint"]["url"] == URL + "/v2"
    assert changed["updateWebhookEndpoint"]["endpoint"]["events"] == ["transfer.succeeded"]

    off = (await api(UPDATE, world.admin, input={"id": endpoint_id, "enabled": False}))["updateWebhookEndpoint"]["endpoint"]
    assert off["enabled"] is False and off["disabledReason"] == "Disabled by admin."
    on = (await api(UPDATE, world.admin, input={"id": endpoint_id, "enabled": True}))["updateWebhookEndpoint"]["endpoint"]
    assert on["enabled"] is True and on["disabledReason"] is None

    deleted = (await api(DELETE, world.admin, id=endpoint_id))["deleteWebhookEndpoint"]
    assert deleted == {"deletedId": endpoint_id, "userErrors": []}
    assert await state(world) == []


@pytest.mark.parametrize(
    ("url", "events", "code", "field"),
    [
        ("not a url", ALL_EVENTS, "INVALID_WEBHOOK_URL", ["input", "url"]),
        ("ftp://127.0.0.1/hooks", ALL_EVENTS, "INVALID_WEBHOOK_URL", ["input", "url"]),
        ("http://user:pw@127.0.0.1/hooks", ALL_EVENTS, "INVALID_WEBHOOK_URL", ["input", "url"]),
        (URL, ["transfer.finished"], "INVALID_WEBHOOK_EVENT", ["input", "events"]),
        (URL, [], "INVALID_WEBHOOK_EVENT", ["input", "events"]),
        (URL, ["transfer.failed", "transfer.failed"], "INVALID_WEBHOOK_EVENT", ["input", "events"]),
    ],
)
async def test_bad_input_is_refused_with_its_code_and_creates_nothing(
    api: Api, world: World, url: str, events: list[str], code: str, field: list[str]
) -> None:
    refused = (await api(CREATE, world.admin, url=url, events=events))["createWebhookEndpoint"]
    assert refused["endpoint"] is None and refused["secret"] is None
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [(code, field)]
    assert await state(world) == []


async def test_bad_input_to_an_update_changes_nothing(api: Api, world: World) -> None:
    endpoint_id, _ = await create_endpoint(api, world.admin, URL)
    before = await state(world)
    for change, code in (({"url": "gopher://x"}, "INVALID_WEBHOOK_URL"), ({"events": ["nope"]}, "INVALID_WEBHOOK_EVENT")):
        refused = (await api(UPDATE, world.admin, input={"id": endpoint_id, "description": "new", **change}))
        assert [e["code"] for e in refused["updateWebhookEndpoint"]["userErrors"]] == [code]
    assert await state(world) == before


async def test_an_unknown_endpoint_or_delivery_is_not_found_and_changes_nothing(api: Api, world: World) -> None:
    endpoint_id, _ = await create_endpoint(api, world.admin, URL)
    before = await state(world)
    unknown = [to_global_id("WebhookEndpoint", 2**31 - 1), "garbage", to_global_id("Transfer", await endpoint_pk(endpoint_id))]
    for id_ in unknown:
        for mutation, name in ((DELETE, "deleteWebhookEndpoint"), (ROTATE, "rotateWebhookSecret"), (SEND_TEST, "sendTestWebhook")):
            answer = (await api(mutation, world.admin, id=id_))[name]
            assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("NOT_FOUND", ["input", "id"])]
        updated = (await api(UPDATE, world.admin, input={"id": id_, "enabled": False}))["updateWebhookEndpoint"]
        assert [e["code"] for e in updated["userErrors"]] == ["NOT_FOUND"]
        redelivered = (await api(REDELIVER, world.admin, id=id_))["redeliverWebhook"]
        assert [e["code"] for e in redelivered["userErrors"]] == ["NOT_FOUND"]
    assert await state(world) == before


async def test_another_tenants_endpoint_is_not_found(api: Api, world: World) -> None:
    from tests.support import make_world

    other = await make_world()
    endpoint_id, _ = await create_endpoint(api, other.admin, URL)
    before = await state(other)
    answer = (await api(DELETE, world.admin, id=endpoint_id))["deleteWebhookEndpoint"]
    assert [e["code"] for e in answer["userErrors"]] == ["NOT_FOUND"]
    assert (await api(ENDPOINTS, world.admin))["webhookEndpoints"]["totalCount"] == 0
    assert await state(other) == before


async def test_a_view_scoped_operator_is_forbidden_and_changes_nothing(api: Api, world: World) -> None:
    endpoint_id, _ = await create_endpoint(api, world.admin, URL)
    before = await state(world)
    created = (await api(CREATE, world.lead, url=URL, events=ALL_EVENTS))["createWebhookEndpoint"]
    assert [e["code"] for e in created["userErrors"]] == ["FORBIDDEN"] and created["endpoint"] is None
    for mutation, name in ((DELETE, "deleteWebhookEndpoint"), (ROTATE, "rotateWebhookSecret"), (SEND_TEST, "sendTestWebhook")):
        answer = (await api(mutation, world.lead, id=endpoint_id))[name]
        assert [e["code"] for e in answer["userErrors"]] == ["FORBIDDEN"]
    updated = (await api(UPDATE, world.lead, input={"id": endpoint_id, "enabled": False}))["updateWebhookEndpoint"]
    assert [e["code"] for e in updated["userErrors"]] == ["FORBIDDEN"]
    with pytest.raises(GraphQLErrors) as refused:
        await api(ENDPOINTS, world.lead)
    assert refused.value.codes == ["FORBIDDEN"]
    assert await state(world) == before


async def test_an_operator_without_the_transfer_permission_is_forbidden(api: Api, world: World) -> None:
    with pytest.raises(GraphQLErrors) as refused:
        await api(CREATE, world.tokens["clerk"], url=URL, events=ALL_EVENTS)
    assert refused.value.codes == ["FORBIDDEN"]
    assert await state(world) == []


NODE = """
query ($id: ID!) {
  node(id: $id) { id ... on WebhookEndpoint { url events } ... on WebhookDelivery { event status transfer { id } } }
}"""


async def test_a_view_scoped_operator_or_another_tenant_learns_nothing_of_an_endpoint_or_delivery(
    api: Api, world: World
) -> None:
    from tests.support import make_world

    async with receiving() as receiver:  # delivered, so that no retry of it outlives the test
        endpoint_id, _ = await create_endpoint(api, world.admin, receiver.url)
        delivery_id = (await api(SEND_TEST, world.admin, id=endpoint_id))["sendTestWebhook"]["delivery"]["id"]
        await receiver.wait(1)
    assert (await api(NODE, world.admin, id=delivery_id))["node"]["event"] == "webhook.test"
    other = await make_world()
    before = await state(world)
    for token, refused in ((world.lead, "FORBIDDEN"), (other.admin, "NOT_FOUND")):
        for id_ in (endpoint_id, delivery_id):
            assert await api(NODE, token, id=id_) == {"node": None}
        redelivered = (await api(REDELIVER, token, id=delivery_id))["redeliverWebhook"]
        assert redelivered["delivery"] is None
        assert [e["code"] for e in redelivered["userErrors"]] == [refused]
    assert await state(world) == before
