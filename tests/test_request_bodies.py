"""Every body is bounded before it is read: the token on the headers first, then the declared
length, then the bytes as they come; an upload's spool is gone when the request ends.

Each test talks to the running app over a socket of its own, sending only what it says."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from graph.server import multipart as multipart_limits
from graph.server.bodies import MAX_JSON_BODY_BYTES
from graph.server.heads import MAX_HEAD_BYTES
from models import settings
from models.transfers import BulkUpload
from tests.support import UPLOAD, Api, QueryCounter, RawConnection, World, multipart

FIVE_GB = "5000000000"
OPERATIONS = json.dumps({"query": UPLOAD, "variables": {"file": None}})
MAP = '{"0": ["variables.file"]}'
CSV_HEAD = b"From User ID,To User ID\n"


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def upload_head() -> tuple[str, bytes, bytes]:
    """(Content-Type, the body before the file's bytes, the body after them) of an upload."""
    content_type, body = multipart(("operations", OPERATIONS, None), ("map", MAP, None), ("0", b"\0", "people.csv"))
    before, after = body.split(b"\0")
    return content_type, before, after


def spools(folder: Path) -> list[str]:
    """This process's open files in `folder` (a spooled upload is an unlinked file: only its descriptor shows it)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith(str(folder)):
            found.append(target)
    return found


async def until(condition, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def refusal(answer, status: int, code: str) -> dict:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    assert error["extensions"]["code"] == code
    return error


@pytest.fixture
def spool_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the app (in this process) spools uploads during the test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=x"])
@pytest.mark.parametrize("token", [None, "udt_not-a-live-token"])
async def test_a_post_without_a_live_token_is_401_before_its_body_is_read_and_the_connection_closed(
    api: Api, content_type: str, token: str | None
) -> None:
    async with RawConnection(api.base) as conn:
        await conn.head("POST", "/graphql", {"Content-Type": content_type, "Content-Length": FIVE_GB, **auth(token)})
        answer = await conn.answer()  # no byte of the body was sent
        error = refusal(answer, 401, "UNAUTHENTICATED")
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.headers["connection"] == "close"
        assert "token" in error["message"]
        assert await conn.closed_by_server()


INTROSPECTION = "{ __schema { types { name } } }"


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("token", [None, "udt_not-a-live-token"])
async def test_an_operation_without_a_live_token_is_401_by_post_and_by_get_alike(
    api: Api, method: str, token: str | None
) -> None:
    async with RawConnection(api.base) as conn:
        if method == "POST":
            body = json.dumps({"query": INTROSPECTION}).encode()
            await conn.head("POST", "/graphql", {"Content-Type": "application/json", "Content-Length": str(len(body)), **auth(token)})
            await conn.send(body)
        else:  # a GET query, asking for HTML or not: only a GET without `query` is GraphiQL's page
            await conn.head("GET", f"/graphql?{urlencode({'query': INTROSPECTION})}", {"Accept": "text/html", **auth(token)})
        answer = await conn.answer()
    error = refusal(answer, 401, "UNAUTHENTICATED")
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "token" in error["message"] and "__schema" not in answer.body.decode()


async def test_graphiqls_page_needs_no_token(api: Api) -> None:
    async with RawConnection(api.base) as conn:
        await conn.head("GET", "/graphql", {"Accept": "text/html"})
        answer = await conn.answer()
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/html")


async def test_the_operator_found_on_the_headers_is_the_requests_with_one_token_lookup(api: Api, world: World) -> None:
    query = "{ viewer { user { userId } canTransfer } }"
    with QueryCounter(everywhere=True, containing="FROM api_token") as lookups:
        viewer = await api(query, world.admin)
    assert viewer == {"viewer": {"user": {"userId": 1}, "canTransfer": True}}
    assert lookups.count == 1
    with QueryCounter(everywhere=True, containing="FROM api_token") as lookups:
        async with httpx.AsyncClient() as client:
            got = await client.get(f"{api.base}/graphql", params={"query": query}, headers=auth(world.admin))
    assert got.json() == {"data": viewer}
    assert lookups.count == 1


@pytest.mark.parametrize(
    ("content_type", "limit"),
    [("application/json", lambda: MAX_JSON_BODY_BYTES), ("multipart/form-data; boundary=x", lambda: settings.MAX_UPLOAD_BYTES + multipart_limits.ALLOWANCE)],
)
async def test_a_declared_length_over_the_limit_is_413_at_once(api: Api, world: World, content_type: str, limit) -> None:
    for declared in (FIVE_GB, str(limit() + 1)):
        async with RawConnection(api.base) as conn:
            await conn.head("POST", "/graphql", {"Content-Type": content_type, "Content-Length": declared, **auth(world.admin)})
            await conn.send(b"{}" if declared == FIVE_GB else b"")  # 6 bytes or none: never the promised body
            answer = await conn.answer()
            error = refusal(answer, 413, "REQUEST_TOO_LARGE")
            assert error["extensions"]["limit"] == limit()
            assert answer.headers["connection"] == "close"
            assert await conn.closed_by_server()


async def test_a_declared_length_at_the_multipart_limit_is_read(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "MAX_UPLOAD_BYTES", 1000)
    content_type, before, after = upload_head()
    padding = 1000 + multipart_limits.ALLOWANCE - len(before) - len(after)
    body = before + CSV_HEAD + b"#" * (padding - len(CSV_HEAD)) + after
    assert len(body) == 1000 + multipart_limits.ALLOWANCE
    async with RawConnection(api.base) as conn:
        await conn.head("POST", "/graphql", {"Content-Type": content_type, "Content-Length": str(len(body)), **auth(world.admin)})
        await conn.send(body)
        answer = await conn.answer()
    assert answer.status == 200  # within the request's limit; over the file's, which the mutation says
    payload = answer.json()["data"]["uploadBulkTransferFile"]
    assert [e["code"] for e in payload["userErrors"]] == ["FILE_TOO_LARGE"]


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def test_a_chunked_json_body_past_the_limit_is_cut_off_there(api: Api, world: World) -> None:
    async with RawConnection(api.base) as conn:
        await conn.head("POST", "/graphql", {"Content-Type": "application/json", "Transfer-Encoding": "chunked", **auth(world.admin)})
        for _ in range(MAX_JSON_BODY_BYTES // 65536):
            await conn.send(chunk(b" " * 65536))
        await conn.send(chunk(b" "))  # one byte past the limit (no more: unread bytes would make the close a reset)
        answer = await conn.answer()  # the body never ends: only a cut-off answers
        refusal(answer, 413, "REQUEST_TOO_LARGE")
        assert answer.headers["connection"] == "close"
        assert await conn.closed_by_server()


async def test_an_upload_past_its_limit_is_cut_off_and_nothing_stays_spooled(
    api: Api, world: World, spool_folder: Path
) -> None:
    content_type, before, _ = upload_head()
    uploads = await BulkUpload.filter(tenant_id=world.tenant.id).count()
    async with RawConnection(api.base) as conn:
        await conn.head("POST", "/graphql", {"Content-Type": content_type, "Transfer-Encoding": "chunked", **auth(world.admin)})
        await conn.send(chunk(before + CSV_HEAD + b"#" * 2_000_000))
        await until(lambda: spools(spool_folder))  # over a megabyte: on disk now
        left = settings.MAX_UPLOAD_BYTES + multipart_limits.ALLOWANCE + 1 - len(before + CSV_HEAD) - 2_000_000
        while left:  # one byte past the limit, and no more
            await conn.send(chunk(b"#" * min(left, 1_000_000)))
            left -= min(left, 1_000_000)
        answer = await conn.answer()  # the body never ends
        refusal(answer, 413, "REQUEST_TOO_LARGE")
        assert answer.headers["connection"] == "close"
        assert spools(spool_folder) == []
    assert await BulkUpload.filter(tenant_id=world.tenant.id).count() == uploads


@pytest.mark.parametrize("outcome", ["stored", "refused by the specification", "hung up"])
async def test_an_uploads_spool_is_removed_when_the_request_ends_whatever_its_outcome(
    api: Api, world: World, spool_folder: Path, caplog: pytest.LogCaptureFixture, outcome: str
) -> None:
    files_map = MAP if outcome != "refused by the specification" else '{"0": ["variables.nothing"]}'
    content_type, body = multipart(("operations", OPERATIONS, None), ("map", files_map, None), ("0", b"\0", "people.csv"))
    before, after = body.split(b"\0")
    file = CSV_HEAD + b"10,11\n" + b"#" * 1_500_000 + b"\n"
    caplog.set_level(logging.INFO)
    async with RawConnection(api.base) as conn:
        length = len(before) + len(file) + len(after)
        await conn.head("POST", "/graphql", {"Content-Type": content_type, "Content-Length": str(length), **auth(world.admin)})
        await conn.send(before + file[:1_200_000])
        await until(lambda: spools(spool_folder))  # the file is on disk, mid-request
        if outcome == "hung up":
            await conn.hang_up()
            await until(lambda: any("hung up" in r.getMessage() for r in caplog.records))
        else:
            await conn.send(file[1_200_000:] + after)
            answer = await conn.answer()
            assert answer.status == (200 if outcome == "stored" else 400), answer.body
    assert spools(spool_folder) == []


async def test_a_client_hanging_up_mid_body_is_one_info_line_without_a_trace(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with RawConnection(api.base) as conn:
        await conn.head("POST", "/graphql", {"Content-Type": "application/json", "Content-Length": "1000", **auth(world.admin)})
        await conn.send(b'{"query":')  # 9 bytes
        await conn.hang_up()
    await until(lambda: any("hung up" in r.getMessage() for r in caplog.records))
    (line,) = [r for r in caplog.records if "hung up" in r.getMessage()]
    assert line.levelno == logging.INFO
    assert "1000 bytes declared" in line.getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_request_head_past_its_limit_is_431_and_closed_before_it_ends(api: Api) -> None:
    async with RawConnection(api.base) as conn:
        await conn.send(b"POST /graphql HTTP/1.1\r\nHost: test\r\nX-Padding: ")
        for _ in range(MAX_HEAD_BYTES // 4096 + 2):  # the header never ends
            await conn.send(b"a" * 4096)
        answer = await conn.answer()
        refusal(answer, 431, "REQUEST_TOO_LARGE")
        assert answer.json()["errors"][0]["extensions"]["limit"] == MAX_HEAD_BYTES
        assert await conn.closed_by_server()


async def test_a_head_just_within_its_limit_and_a_large_body_after_it_are_answered(api: Api, world: World) -> None:
    body = json.dumps({"query": "{ __typename }", "variables": {"pad": "x" * 500_000}}).encode()
    padding = "a" * (MAX_HEAD_BYTES - 1000)
    async with RawConnection(api.base) as conn:
        for _ in range(2):  # the second head follows a large body on the same connection
            headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), "X-Padding": padding, **auth(world.admin)}
            await conn.head("POST", "/graphql", headers)
            await conn.send(body)
            answer = await conn.answer()
            assert answer.status == 200 and answer.json() == {"data": {"__typename": "Query"}}
