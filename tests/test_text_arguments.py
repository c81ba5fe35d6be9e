"""Text the database cannot store (a NUL character, a lone UTF-16 surrogate) is refused where it
enters: every string argument, String or ID, literal or variable, nested in input objects and
lists, over HTTP and both WebSocket protocols, is INVALID_TEXT before any resolver runs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.transfers import Transfer
from tests.support import LEGACY_WS, TRANSPORT_WS, Api, World, answer

UNSTORABLE = ["\x00", "before\x00after", "\ud800", "a\udfffb"]

START = """mutation ($key: String, $types: [String!]) {
  startTransfer(input: {sourceUserId: 10, targetUserId: 11, confirm: true, idempotencyKey: $key, dataTypes: $types}) {
    transfer { id } userErrors { code } } }"""
PLAN = "query ($types: [String!]) { transferPlan(sourceUserId: 10, targetUserId: 11, dataTypes: $types) { sourceUser { userId } } }"
SEARCH = "query ($filter: UserFilter) { users(filter: $filter) { totalCount } }"
NODE = "query ($id: ID!) { node(id: $id) { id } }"


def literal(text: str) -> str:
    """`text` as a GraphQL string literal (JSON's escapes are GraphQL's)."""
    return json.dumps(text)


def variables_cases(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Each place a string variable may hold `text`: a String, an ID, an input object's field, a list's item."""
    return [
        (START, {"key": text}),
        (START, {"types": ["CCR", text]}),
        (PLAN, {"types": [text]}),
        (SEARCH, {"filter": {"search": text}}),
        (SEARCH, {"filter": {"viewId": text}}),
        (NODE, {"id": text}),
    ]


def literal_code(text: str) -> str:
    """A literal's NUL is INVALID_TEXT; a lone surrogate cannot even be spelled in a GraphQL
    string (the specification's lexer refuses the escape), so it is a syntax error."""
    return "INVALID_TEXT" if "\x00" in text else "GRAPHQL_PARSE_FAILED"


def literal_cases(text: str) -> list[str]:
    value = literal(text)
    return [
        "mutation { startTransfer(input: {sourceUserId: 10, targetUserId: 11, confirm: true, idempotencyKey: %s}) { transfer { id } } }" % value,
        "mutation { startTransfer(input: {sourceUserId: 10, targetUserId: 11, confirm: true, dataTypes: [\"CCR\", %s]}) { transfer { id } } }" % value,
        "{ users(filter: {search: %s}) { totalCount } }" % value,
        "{ node(id: %s) { id } }" % value,
        "query ($key: String = %s) { users(filter: {search: $key}) { totalCount } }" % value,  # a variable's default
    ]


async def refused_code(api: Api, world: World, protocol: str | None, query: str, variables: dict[str, Any] | None = None) -> str:
    result = await answer(api, world.admin, {"query": query, "variables": variables}, protocol)
    assert result.get("data") is None
    (error,) = result["errors"]
    assert "\x00" not in error["message"] and "\ud800" not in error["message"]
    return error["extensions"]["code"]


@pytest.mark.parametrize("protocol", [None, TRANSPORT_WS, LEGACY_WS])
async def test_unstorable_text_in_any_string_argument_is_invalid_text(api: Api, world: World, protocol: str | None) -> None:
    await world.stock(10)
    for text in UNSTORABLE:
        for query, variables in variables_cases(text):
            assert await refused_code(api, world, protocol, query, variables) == "INVALID_TEXT", (query, variables)
        for query in literal_cases(text):
            assert await refused_code(api, world, protocol, query) == literal_code(text), query
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 0


async def test_a_lone_surrogate_written_raw_in_the_document_is_a_syntax_error(api: Api, world: World) -> None:
    # GraphQL documents are Unicode text: the lexer itself refuses it, as any invalid character
    assert await refused_code(api, world, None, '{ node(id: "\ud800") { id } }') == "GRAPHQL_PARSE_FAILED"


async def test_text_outside_the_basic_plane_is_no_lone_surrogate_and_passes(api: Api, world: World) -> None:
    await world.stock(10)
    key = "é \U0001d11e \U0001f600"  # a JSON client may send these as surrogate pairs: they are whole
    started = (await api(START, world.admin, key=key))["startTransfer"]
    assert started["userErrors"] == []
    await api.wait_finished(world.admin, started["transfer"]["id"])
    assert (await api(SEARCH, world.admin, filter={"search": "\U0001f600"}))["users"]["totalCount"] == 0
    escaped = await answer(api, world.admin, {"query": SEARCH, "variables": {"filter": {"search": "\ud83d\ude00"}}}, None)
    assert escaped == {"data": {"users": {"totalCount": 0}}}
