"""Hostile and malformed requests: a 400 with a JSON GraphQL error, never a 500 or internal text."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx
import pytest

import graph.api.users
from tests.support import Api, World

UPLOAD = "mutation ($file: Upload!) { uploadBulkTransferFile(file: $file) { upload { id } userErrors { code message } } }"
# Python, SQL and library words that must never reach a client.
INTERNAL = ("Traceback", "object has no attribute", "codec", "Error:", "sqlite", "recursion", "sys.set_int", "psycopg", "asyncpg")


async def post(api: Api, token: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kwargs.pop("headers", {}))
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(f"{api.base}/graphql", headers=headers, **kwargs)


def error_of(response: httpx.Response, status: int) -> dict:
    """The only error of a response with that status, checked for shape and for internal text."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert not any(word.lower() in response.text.lower() for word in INTERNAL), response.text
    (error,) = response.json()["errors"]
    assert error["message"]
    return error


def raw_json(body: bytes) -> dict:
    return {"content": body, "headers": {"Content-Type": "application/json"}}


@pytest.mark.parametrize("body", [b'"a string"', b"null", b"42", b"true"])
async def test_a_body_that_is_not_a_json_object_is_a_400(api: Api, world: World, body: bytes) -> None:
    assert error_of(await post(api, world.admin, **raw_json(body)), 400)["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/graphql", ""])
async def test_a_post_that_is_neither_json_nor_multipart_is_a_400_that_says_what_is(api: Api, world: World, content_type: str) -> None:
    error = error_of(await post(api, world.admin, content=b'{"query": "{ __typename }"}', headers={"Content-Type": content_type}), 400)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "application/json" in error["message"] and "multipart/form-data" in error["message"]


async def test_a_body_that_is_not_utf8_is_a_400(api: Api, world: World) -> None:
    error = error_of(await post(api, world.admin, **raw_json(b'{"query": "{ __typename }\xff"}')), 400)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "UTF-8" in error["message"]


async def test_variables_nested_100000_deep_are_a_400(api: Api, world: World) -> None:
    body = b'{"query": "query ($x: String) { __typename }", "variables": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    assert error_of(await post(api, world.admin, **raw_json(body)), 400)["extensions"]["code"] == "BAD_REQUEST"


async def test_an_integer_thousands_of_digits_long_is_refused_without_internal_text(api: Api, world: World) -> None:
    variable = b'{"query": "query ($x: Int!) { user(userId: $x) { id } }", "variables": {"x": ' + b"9" * 5000 + b"}}"
    assert error_of(await post(api, world.admin, **raw_json(variable)), 400)["extensions"]["code"] == "BAD_REQUEST"
    literal = await post(api, world.admin, json={"query": "{ user(userId: %s) { id } }" % ("9" * 5000)})
    assert error_of(literal, 200)["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_lone_surrogate_in_operation_name_names_no_operation(api: Api, world: World) -> None:
    body = b'{"query": "{ __typename }", "operationName": "\\ud800"}'
    assert error_of(await post(api, world.admin, **raw_json(body)), 200)["extensions"]["code"] == "OPERATION_NAME_REQUIRED"


async def test_a_body_over_a_megabyte_is_refused_before_it_is_read(api: Api, world: World) -> None:
    body = json.dumps({"query": "{ __typename }", "variables": {"x": "a" * 2_000_000}}).encode()
    assert error_of(await post(api, world.admin, **raw_json(body)), 413)["extensions"]["code"] == "REQUEST_TOO_LARGE"


@pytest.mark.parametrize("files_map", ['["variables.file"]', '"variables.file"', '{"0": "variables.file"}', '{"0": ["variables.nothing.here"]}', '{"9": ["variables.file"]}'])
async def test_a_multipart_map_of_the_wrong_shape_is_a_400(api: Api, world: World, files_map: str) -> None:
    operations = json.dumps({"query": UPLOAD, "variables": {"file": None}})
    files = {"operations": (None, operations), "map": (None, files_map), "0": ("people.csv", b"From User ID,To User ID\n")}
    assert error_of(await post(api, world.admin, files=files), 400)["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("value", ["people.csv", {"name": "people.csv", "content": "x"}, 12])
async def test_an_upload_given_as_a_plain_value_is_an_invalid_file(api: Api, world: World, value: Any) -> None:
    response = await post(api, world.admin, json={"query": UPLOAD, "variables": {"file": value}})
    assert response.status_code == 200
    assert "attribute" not in response.text
    payload = response.json()["data"]["uploadBulkTransferFile"]
    assert payload["upload"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["INVALID_FILE"]


async def test_an_unexpected_exception_is_an_internal_error_with_a_request_id_logged_once(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(operator: Any) -> list:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(graph.api.users, "visible_views", broken)
    with caplog.at_level(logging.INFO):
        response = await post(api, world.admin, json={"query": "{ views { name } }"})
    error = error_of(response, 200)
    assert "secret" not in response.text
    assert error["extensions"]["code"] == "INTERNAL_ERROR"
    request_id = error["extensions"]["requestId"]
    traced = [r for r in caplog.records if r.exc_info]
    assert len(traced) == 1
    assert response.headers["X-Request-ID"] == request_id  # the same ID as the log's and the response header's
    assert request_id in traced[0].getMessage()
    assert "secret internal detail" in str(traced[0].exc_info[1])


async def test_unauthenticated_and_forbidden_are_logged_at_info_without_a_trace(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        assert error_of(await post(api, json={"query": "{ viewer { canTransfer } }"}), 401)["extensions"]["code"] == "UNAUTHENTICATED"
        forbidden = await post(api, world.tokens["clerk"], json={"query": "{ users { totalCount } }"})
        assert error_of(forbidden, 200)["extensions"]["code"] == "FORBIDDEN"
    ours = [r for r in caplog.records if "UNAUTHENTICATED" in r.getMessage() or "FORBIDDEN" in r.getMessage()]
    assert {r.levelno for r in ours} == {logging.INFO}
    assert len(ours) == 2
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


async def test_only_the_exact_encoding_of_a_global_id_resolves(api: Api, world: World) -> None:
    node = "query ($id: ID!) { node(id: $id) { id } }"
    pk = str(world.pk(12))
    real = (await api("{ user(userId: 12) { id } }", world.admin))["user"]["id"]
    assert real == b64(f"User:{pk}")
    assert (await api(node, world.admin, id=real))["node"] == {"id": real}
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in pk)
    variants = [
        real + "\u200b",  # a trailing zero-width space
        real.rstrip("=") + "=" * (4 - len(real.rstrip("=")) % 4) + "==",  # extra padding
        real.rstrip("=")[:-1],  # a character short
        " " + real,
        b64(f"User: {pk}"),
        b64(f"User:{pk[0]}_{pk[1:]}"),
        b64(f"User:0{pk}"),
        b64(f"User:+{pk}"),
        b64(f"User:{pk} "),
        b64(f"User:{arabic_indic}"),
    ]
    for variant in variants:
        assert (await api(node, world.admin, id=variant))["node"] is None, variant


async def test_a_subscription_sent_over_http_is_a_400_that_points_to_the_websocket(api: Api, world: World) -> None:
    query = 'subscription { transferEvents(transferId: "VHJhbnNmZXI6MQ==") { cursor } }'
    error = error_of(await post(api, world.admin, json={"query": query}), 400)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "WebSocket" in error["message"]
