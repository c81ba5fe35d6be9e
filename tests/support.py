"""Test helpers: a small world per test, and a real GraphQL client (gql) over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import csv
import io
import itertools
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from gql import Client, FileVar, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from graph.live.websocket import UVICORN
from models.tenancy import ApiToken, Team, TeamMember, Tenant, User, View, ViewTeam
from models.transfers import Transfer
from models.userdata import BY_KEY, OWNED, AgentSchedule, Evaluation, OwnedRecord

_slugs = itertools.count(1)
SUBSCRIPTION_TIMEOUT = 60  # seconds: a subscription that never completes fails instead of hanging
TRANSPORT_WS = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL  # graphql-transport-ws
LEGACY_WS = WebsocketsTransport.APOLLO_SUBPROTOCOL  # graphql-ws


class GraphQLErrors(Exception):
    def __init__(self, errors: list[dict]) -> None:
        super().__init__(errors)
        self.errors = errors

    @property
    def codes(self) -> list[str]:
        return [(e.get("extensions") or {}).get("code") for e in self.errors]


@dataclass
class Api:
    """Talks to the running app the way a front end does."""

    base: str  # http://127.0.0.1:PORT

    async def __call__(self, query: str, token: str | None = None, upload: bool = False, **variables: Any) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = HTTPXAsyncTransport(url=f"{self.base}/graphql", headers=headers, timeout=60)
        async with Client(transport=transport, execute_timeout=60) as session:  # gql's own default is 10 s
            try:
                return await session.execute(
                    GraphQLRequest(query, variable_values=variables or None), upload_files=upload
                )
            except TransportQueryError as exc:
                raise GraphQLErrors(exc.errors or []) from None

    async def via(self, protocol: str | None, query: str, token: str | None = None, **variables: Any) -> dict:
        """`query`'s data over HTTP (protocol None) or a WebSocket speaking `protocol`; GraphQLErrors if refused."""
        if protocol is None:
            return await self(query, token, **variables)
        async with asyncio.timeout(SUBSCRIPTION_TIMEOUT), self.ws(token, protocol) as session:
            try:
                return await session.execute(GraphQLRequest(query, variable_values=variables or None))
            except TransportQueryError as exc:
                raise GraphQLErrors(exc.errors or []) from None

    async def upload(self, token: str, content: bytes | str, filename: str = "people.csv") -> dict:
        data = content.encode() if isinstance(content, str) else content
        file = FileVar(io.BytesIO(data), filename=filename, content_type="text/csv")
        result = await self(UPLOAD, token, upload=True, file=file)
        return result["uploadBulkTransferFile"]

    def ws(
        self, token: str | None, protocol: str = TRANSPORT_WS, init: dict | None = None, origin: str | None = None,
        in_handshake: bool = False,
    ) -> Client:
        """A WebSocket client whose `connection_init` carries the token (or `init`), or, `in_handshake`,
        whose upgrade request does, in its Authorization header, as a server-side client may send it."""
        payload = init if init is not None else ({"Authorization": f"Bearer {token}"} if token and not in_handshake else {})
        url = self.base.replace("http://", "ws://") + "/graphql"
        headers = {"Origin": origin} if origin else {}  # as a browser on that page sends it
        if in_handshake and token:
            headers["Authorization"] = f"Bearer {token}"
        return Client(transport=WebsocketsTransport(url=url, init_payload=payload, subprotocols=[protocol], headers=headers or None))

    async def events(
        self,
        token: str,
        transfer_id: str,
        after: str | None = None,
        limit: int | None = None,
        protocol: str = TRANSPORT_WS,
        init: dict | None = None,
        on_event: Callable[[dict], Awaitable[None]] | None = None,
        timeout: float = SUBSCRIPTION_TIMEOUT,
    ) -> list[dict]:
        """Every event of a subscription until it completes (or `limit` events), within `timeout`.

        `on_event` runs after each event is received, while the subscription stays live.
        """
        received: list[dict] = []
        async with asyncio.timeout(timeout), self.ws(token, protocol, init) as session:
            request = GraphQLRequest(EVENTS, variable_values={"id": transfer_id, "after": after})
            async for result in session.subscribe(request):
                received.append(result["transferEvents"])
                if on_event is not None:
                    await on_event(received[-1])
                if limit and len(received) >= limit:
                    break
        return received

    async def wait_finished(self, token: str, transfer_id: str, timeout: float = 60) -> dict:
        """Poll until the transfer has finished (for tests that do not watch events)."""
        async with asyncio.timeout(timeout):
            while True:
                found = (await self(TRANSFER, token, id=transfer_id))["transfer"]
                if found["status"] not in ("QUEUED", "RUNNING"):
                    return found
                await asyncio.sleep(0.1)


async def run_pairs(transfer_id: int) -> None:
    """Apply a queued transfer's pairs here and now, as a worker would (without publishing
    its events), for tests that change the world between the start and the pairs."""
    from models import running
    from models.transfers import TransferItem

    await running.begin(transfer_id)
    for item_id in await TransferItem.filter(transfer_id=transfer_id).order_by("position").values_list("id", flat=True):
        await running.process_item(item_id)


async def audit(api: Api, token: str, url: str) -> list[list[str]]:
    """The rows of a transfer's audit log (Transfer.auditLogUrl), header first."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{api.base}{url}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.text)))


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RawConnection:
    """One HTTP/1.1 connection to the app, written byte by byte as an attacker would:
    a head that promises a body, part of it, a hang-up."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.address = (host, int(port))

    async def __aenter__(self) -> RawConnection:
        self.reader, self.writer = await asyncio.open_connection(*self.address)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def head(self, method: str, path: str, headers: dict[str, str]) -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: test", *(f"{k}: {v}" for k, v in headers.items())]
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def hang_up(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    async def answer(self, timeout: float = 30) -> RawAnswer:
        """The response, without sending more: it fails by timeout if the server waits for the body."""
        async with asyncio.timeout(timeout):
            status_line = await self.reader.readuntil(b"\r\n")
            headers = {}
            while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return RawAnswer(int(status_line.split()[1]), headers, body)

    async def closed_by_server(self) -> bool:
        """Whether the server closes the connection now: sooner than uvicorn's 5 s keep-alive would."""
        try:
            async with asyncio.timeout(3):
                return await self.reader.read(1) == b""
        except TimeoutError:
            return False


def multipart(*parts: tuple[str, bytes | str, str | None], boundary: str = "udt-test") -> tuple[str, bytes]:
    """(Content-Type, body) of a multipart/form-data body of (name, content, filename) parts, in that order."""
    chunks = []
    for name, content, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        data = content.encode() if isinstance(content, str) else content
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n")
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks) + f"--{boundary}--\r\n".encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(app: object, port: int | None = None, **options: Any) -> AsyncIterator[str]:
    """Run an ASGI app under uvicorn on `port` (a free one unless given), in this event loop; yields
    its base URL. `options` replace the service's own uvicorn options (UVICORN)."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **{**UVICORN, **options})
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def next_message(connection: Any) -> dict:
    """The next message that is not a keep-alive."""
    async with asyncio.timeout(SUBSCRIPTION_TIMEOUT):
        while True:
            message = json.loads(await connection.recv())
            if message["type"] not in ("ka", "ping", "pong"):
                return message


class Socket:
    """A raw WebSocket speaking one protocol: what each operation answers, message by message."""

    def __init__(self, api: Api, token: str, protocol: str) -> None:
        self.url = api.base.replace("http://", "ws://") + "/graphql"
        self.token, self.protocol, self.ids = token, protocol, 0

    async def __aenter__(self) -> Socket:
        self.connection = await connect(self.url, subprotocols=[self.protocol])
        await self.send({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}})
        assert (await self.receive())["type"] == "connection_ack"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()

    async def send(self, message: object) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self) -> dict:
        return await next_message(self.connection)

    async def result(self, payload: dict[str, Any]) -> dict:
        """An operation's one result: its `next`/`data` payload, or an `error` message's errors."""
        self.ids += 1
        start = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self.send({"id": str(self.ids), "type": start, "payload": payload})
        message = await self.receive()
        assert message["id"] == str(self.ids)
        if message["type"] == "error":
            return {"errors": message["payload"] if isinstance(message["payload"], list) else [message["payload"]]}
        assert message["type"] in ("next", "data"), message
        assert (await self.receive())["type"] == "complete"
        return message["payload"]


async def door(api: Api, protocol: str, payload: object) -> tuple[list[dict], int | None, str]:
    """What the server says to a connection_init: its messages, then the close code and reason."""
    url = api.base.replace("http://", "ws://") + "/graphql"
    messages: list[dict] = []
    async with connect(url, subprotocols=[protocol], max_size=None) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            while True:
                message = json.loads(await ws.recv())
                messages.append(message)
                if message["type"] == "connection_ack":
                    return messages, None, ""
        except ConnectionClosed as closed:
            code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")
            return messages, code, reason


async def answer(api: Api, token: str | None, payload: dict[str, Any], protocol: str | None) -> dict:
    """What one operation answers over HTTP (protocol None) or a WebSocket of its own, as sent:
    no client parses the document first."""
    if protocol is None:
        async with httpx.AsyncClient(timeout=60) as client:
            headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
            # ASCII JSON: a lone surrogate travels as the escape "\ud800", as JSON allows
            response = await client.post(f"{api.base}/graphql", headers=headers, content=json.dumps(payload).encode())
        assert response.status_code == 200, response.text
        return response.json()
    async with Socket(api, token, protocol) as socket:
        return await socket.result(payload)


UPLOAD = """
mutation ($file: Upload!) {
  uploadBulkTransferFile(file: $file) {
    upload { id rowCount pairCount errorCount errors { code message }
             rows(first: 100) { totalCount edges { node { rowNumber fromUserId toUserId
               sourceUser { userId displayName } targetUser { userId displayName }
               errors { code message field } } } } }
    userErrors { code message }
  }
}"""

EVENTS = """
subscription ($id: ID!, $after: String) {
  transferEvents(transferId: $id, after: $after) {
    cursor transferId type status totalPairs processedPairs succeededPairs failedPairs
    sourceUserId targetUserId errorCode message at
  }
}"""

TRANSFER_FIELDS = """
  id kind status totalPairs processedPairs succeededPairs failedPairs message failedUserIds auditLogUrl
  startedAt finishedAt createdAt requestedBy { userId }
  items(first: 100) { totalCount edges { node { rowNumber status errorCode errorMessage
    sourceUser { userId } targetUser { userId }
    moved { dataType { key } count } overwritten { dataType { key } count } finishedAt } } }
"""

TRANSFER = "query ($id: ID!) { transfer(id: $id) { " + TRANSFER_FIELDS + " } }"

START = """
mutation ($s: Int!, $t: Int!, $confirm: Boolean!) {
  startTransfer(input: {sourceUserId: $s, targetUserId: $t, confirm: $confirm}) {
    transfer { id status kind totalPairs }
    userErrors { code message field }
  }
}"""


@dataclass
class World:
    """One tenant per test: no test sees another's users, transfers or locks.

    Teams East and West; views East and West. User IDs:
      1 admin (tenant admin, whole tenant)    2 lead (transfer permission, view East)
      3 clerk (no permission)                 4 boss (tenant admin, in East)
      10-29 agents in East; 30-39 agents in West; 40-44 inactive agents in East
    """

    tenant: Tenant
    users: dict[int, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)

    @property
    def admin(self) -> str:
        return self.tokens["admin"]

    @property
    def lead(self) -> str:
        return self.tokens["lead"]

    def pk(self, user_id: int) -> int:
        return self.users[user_id].id

    async def give(self, user_id: int, key: str, count: int = 1) -> None:
        """`count` records of data type `key` owned by `user_id`."""
        dt = BY_KEY[key]
        pk = self.pk(user_id)
        if dt.storage is OWNED:
            await OwnedRecord.bulk_create([OwnedRecord(data_type=key, owner_id=pk) for _ in range(count)])
        elif dt.storage.model is Evaluation:
            await Evaluation.bulk_create([Evaluation(evaluator_id=pk) for _ in range(count)])
        elif dt.storage.model is AgentSchedule:
            assert count == 1, "one schedule per user"
            await AgentSchedule.create(user_id=pk)

    async def stock(self, *user_ids: int) -> None:
        """One CCR record each, for tests about something else: a source that owns
        nothing is refused with NOTHING_TO_TRANSFER."""
        for user_id in user_ids:
            await self.give(user_id, "CCR")

    async def owned(self, user_id: int) -> dict[str, int]:
        from models.counts import owned_counts

        return (await owned_counts([self.pk(user_id)]))[self.pk(user_id)]


async def make_world() -> World:
    n = next(_slugs)
    tenant = await Tenant.create(slug=f"t{n}-{id(object())}", name=f"Tenant {n}")
    world = World(tenant=tenant)
    east_team = await Team.create(tenant=tenant, name="East")
    west_team = await Team.create(tenant=tenant, name="West")
    for name, team in (("East", east_team), ("West", west_team)):
        world.views[name] = await View.create(tenant=tenant, name=name)
        await ViewTeam.create(view=world.views[name], team=team)

    people: list[tuple[int, str, dict]] = [
        (1, "admin", {"tenant_admin": True}),
        (2, "lead", {"can_transfer": True, "view": world.views["East"]}),
        (3, "clerk", {}),
        (4, "boss", {"tenant_admin": True}),
    ]
    people += [(uid, f"agent{uid}", {}) for uid in range(10, 40)]
    people += [(uid, f"former{uid}", {"active": False}) for uid in range(40, 45)]
    for uid, username, extra in people:
        user = await User.create(
            tenant=tenant,
            user_id=uid,
            first_name=username.capitalize(),
            last_name=f"Number{uid}",
            username=username,
            email=f"{username}@example.com",
            **extra,
        )
        world.users[uid] = user
        if uid == 4 or 10 <= uid < 30 or uid >= 40:
            await TeamMember.create(user=user, team=east_team)
        elif 30 <= uid < 40:
            await TeamMember.create(user=user, team=west_team)
    for name, uid in (("admin", 1), ("lead", 2), ("clerk", 3)):
        world.tokens[name] = await ApiToken.issue(world.users[uid])
    return world


async def start_bulk(world: World, pairs: list[tuple[int, int]]) -> Transfer:
    """A bulk transfer of `pairs` by the admin, each source owning 5 CCR: committed, not enqueued."""
    from models import bulk

    for source, _ in pairs:
        await world.give(source, "CCR", 5)
    content = "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in pairs)
    transfer, problems = await bulk.start(world.users[1], await bulk.create_upload(world.users[1], "f.csv", content.encode()))
    assert problems == []
    return transfer


_counting: contextvars.ContextVar[QueryCounter | None] = contextvars.ContextVar("counting", default=None)


class QueryCounter(logging.Handler):
    """Counts the SQL statements tortoise sends (its db_client logger logs each one).

    By default only statements sent from this task (and tasks it starts) count,
    so the in-process worker's background queries cannot blur the figure;
    `everywhere=True` counts the server's too (for requests over HTTP); `containing`,
    only the statements holding that text (e.g. "FROM api_token").
    """

    def __init__(self, everywhere: bool = False, containing: str = "") -> None:
        super().__init__(logging.DEBUG)
        self.everywhere = everywhere
        self.containing = containing.upper()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if not self.everywhere and _counting.get() is not self:
            return
        text = record.getMessage().lstrip().upper()
        if text.startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")) and self.containing in text:
            self.count += 1

    def __enter__(self) -> QueryCounter:
        logger = logging.getLogger("tortoise.db_client")
        self._level = logger.level
        self._token = _counting.set(self)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger("tortoise.db_client")
        logger.removeHandler(self)
        logger.setLevel(self._level)
        _counting.reset(self._token)


async def server_queries(request: Callable[[], Awaitable[object]], runs: int = 3) -> int:
    """SQL statements the server sends for `request`: the fewest of a few runs, since a
    background job of the in-process worker may add its own to any one of them."""
    counts = []
    for _ in range(runs):
        with QueryCounter(everywhere=True) as counter:
            await request()
        counts.append(counter.count)
    return min(counts)
