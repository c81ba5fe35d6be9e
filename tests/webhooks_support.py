"""What the webhook tests share: the GraphQL they send, and an endpoint made through the API."""

from __future__ import annotations

from datetime import timedelta

from graph.core.relay import pk_of
from models.clock import now
from models.webhooks import WebhookDelivery
from tests.processes import until
from tests.support import Api

ENDPOINT_FIELDS = "id url events description enabled disabledReason createdAt"
DELIVERY_FIELDS = "id event status attempts lastResponseStatus lastError nextAttemptAt createdAt transfer { id status }"
ALL_EVENTS = ["transfer.succeeded", "transfer.partially_failed", "transfer.failed", "transfer.cancelled"]

CREATE = f"""
mutation ($url: String!, $events: [String!]!, $description: String) {{
  createWebhookEndpoint(input: {{url: $url, events: $events, description: $description}}) {{
    endpoint {{ {ENDPOINT_FIELDS} }} secret userErrors {{ code message field }}
  }}
}}"""
UPDATE = f"""
mutation ($input: UpdateWebhookEndpointInput!) {{
  updateWebhookEndpoint(input: $input) {{ endpoint {{ {ENDPOINT_FIELDS} }} userErrors {{ code message field }} }}
}}"""
DELETE = """
mutation ($id: ID!) { deleteWebhookEndpoint(input: {id: $id}) { deletedId userErrors { code message field } } }"""
ROTATE = f"""
mutation ($id: ID!) {{
  rotateWebhookSecret(input: {{id: $id}}) {{ endpoint {{ {ENDPOINT_FIELDS} }} secret userErrors {{ code message field }} }}
}}"""
REDELIVER = f"""
mutation ($id: ID!) {{
  redeliverWebhook(input: {{id: $id}}) {{ delivery {{ {DELIVERY_FIELDS} }} userErrors {{ code message field }} }}
}}"""
SEND_TEST = f"""
mutation ($id: ID!) {{
  sendTestWebhook(input: {{id: $id}}) {{ delivery {{ {DELIVERY_FIELDS} }} userErrors {{ code message field }} }}
}}"""
ENDPOINTS = f"""
query ($after: String) {{
  webhookEndpoints(first: 10, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{ {ENDPOINT_FIELDS} deliveries(first: 10) {{ totalCount edges {{ node {{ {DELIVERY_FIELDS} }} }} }} }} }}
  }}
}}"""


async def create_endpoint(api: Api, token: str, url: str, events: list[str] | None = None) -> tuple[str, str]:
    """An endpoint made through the API: its ID and its secret."""
    created = (await api(CREATE, token, url=url, events=events or ALL_EVENTS))["createWebhookEndpoint"]
    assert created["userErrors"] == [], created
    return created["endpoint"]["id"], created["secret"]


async def endpoint_pk(endpoint_id: str) -> int:
    pk = pk_of(endpoint_id, "WebhookEndpoint")
    assert pk is not None
    return pk


async def deliveries_of(endpoint_id: str) -> list[WebhookDelivery]:
    return await WebhookDelivery.filter(endpoint_id=await endpoint_pk(endpoint_id)).order_by("id")


async def settled(delivery_pk: int, attempts: int, timeout: float = 30) -> WebhookDelivery:
    """The delivery once it has made `attempts` attempts and no worker holds it."""

    async def done() -> bool:
        found = await WebhookDelivery.get(id=delivery_pk)
        return found.attempts >= attempts and found.lease_until is None

    await until(done, timeout)
    return await WebhookDelivery.get(id=delivery_pk)


async def make_due(delivery_pk: int) -> None:
    """Move the clock on to the delivery's next attempt (its time is stored: move it back)."""
    await WebhookDelivery.filter(id=delivery_pk).update(next_attempt_at=now() - timedelta(seconds=1))
