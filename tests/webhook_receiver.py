"""A real webhook receiver on a local port, for the webhook tests.

It verifies every delivery with the Standard Webhooks specification's own
library (`standardwebhooks.Webhook.verify`), against each secret it was given,
and answers as the test scripts it: a status, headers, or no answer at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.processes import until
from tests.support import serving


async def _endless() -> AsyncIterator[bytes]:
    while True:
        yield b"x" * 65536
        await asyncio.sleep(0)


@dataclass
class Received:
    """One request as it arrived, and which of the receiver's secrets verified it."""

    headers: dict[str, str]
    body: bytes
    verified_by: list[str]

    @property
    def payload(self) -> dict:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def signatures(self) -> list[str]:
        return self.headers["webhook-signature"].split(" ")


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer
    endless: bool = False  # answer the status, then a body that never ends


@dataclass
class Receiver:
    url: str = ""
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    # Answers in turn; when they run out, `default`.
    script: list[Answer] = field(default_factory=list)
    default: Answer = field(default_factory=Answer)

    def verify(self, headers: dict[str, str], body: bytes) -> list[str]:
        """The secrets whose signature the delivery carries, each checked by Webhook.verify."""
        good = []
        for secret in self.secrets:
            with contextlib.suppress(WebhookVerificationError):
                Webhook(secret).verify(body, headers)
                good.append(secret)
        return good

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        self.received.append(Received(headers, body, self.verify(headers, body)))
        answer = self.script.pop(0) if self.script else self.default
        if answer.hang:
            await asyncio.sleep(3600)
        if answer.endless:
            return StreamingResponse(_endless(), status_code=answer.status, headers=answer.headers)
        return Response(status_code=answer.status, headers=answer.headers)

    async def wait(self, count: int, timeout: float = 30) -> list[Received]:
        await until(lambda: len(self.received) >= count, timeout)
        return self.received

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST", "GET"])])


@contextlib.asynccontextmanager
async def receiving(path: str = "/hooks") -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with serving(receiver.app(), timeout_graceful_shutdown=0) as base:
        receiver.url = f"{base}{path}"
        yield receiver
