"""Query limits: any document is refused, before any expensive work, when it is over one of them."""

from __future__ import annotations

import json

import httpx
import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from graphql import parse

from graph.api.schema import schema as api_schema
from graph.core.errors import ClientError
from graph.execution import limits
from graph.fences.strawberry import graphql_schema
from models import settings
from models.transfers import BulkUpload
from tests.support import LEGACY_WS, TRANSPORT_WS, Api, World


async def send(api: Api, query: str, token: str | None = None, **variables: object) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{api.base}/graphql", headers=headers, json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


def refusal(result: dict) -> str:
    """The limit's code of a refused document; nothing ran."""
    assert "data" not in result or result["data"] is None
    (error,) = result["errors"]
    return error["extensions"]["code"]


def nested_fragments(levels: int) -> str:
    """Each fragment spreads the next one twice: 2**levels spreads once expanded."""
    spreads = "".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}\n" for i in range(levels))
    return "query { ...F0 }\n" + spreads + f"fragment F{levels} on Query {{ __typename }}"


def of_types(depth: int) -> str:
    """A valid query `depth` fields deep: __schema, queryType, then ofType down to name."""
    return "{ __schema { queryType { " + "ofType { " * (depth - 3) + "name" + " }" * (depth - 3) + " } } }"


async def test_fragments_spreading_each_other_twice_are_refused_without_expanding_them(api: Api, world: World) -> None:
    # 2**40 spreads: expanding them, as strawberry's depth and alias limiters did, would never end
    assert refusal(await send(api, nested_fragments(40), world.admin)) == "TOO_MANY_FRAGMENTS"
    assert (await send(api, nested_fragments(3), world.admin))["data"] == {"__typename": "Query"}


async def test_fragment_spreads_are_counted_across_sibling_fields_and_inline_fragments_are_not_spreads(api: Api, world: World) -> None:
    def spreads(first: int, second: int) -> str:
        return (f'{{ a: __type(name: "Query") {{ {"...T " * first}}} b: __type(name: "Query") {{ {"...T " * second}}} }}'
                " fragment T on __Type { name }")

    half = limits.MAX_FRAGMENT_SPREADS // 2
    assert "errors" not in await send(api, spreads(half, half), world.admin)
    assert refusal(await send(api, spreads(half + 1, half), world.admin)) == "TOO_MANY_FRAGMENTS"
    inline = "{ " + "... on Query { __typename } " * (limits.MAX_FRAGMENT_SPREADS + 1) + "}"
    assert (await send(api, inline, world.admin))["data"] == {"__typename": "Query"}


async def test_fields_and_fragments_add_up_in_cost_whatever_order_the_fragments_come_in(api: Api, world: World) -> None:
    def pages(first: int, last: int) -> str:
        page = "users(first: 100) { edges { node { id userId displayName teams { name } data { count } } } }"
        return " ".join(f"u{i}: {page}" for i in range(first, last))

    assert "errors" not in await send(api, "{ " + pages(0, 12) + " }", world.admin)
    beside = "{ " + pages(0, 13) + " ...F } fragment F on Query { " + pages(13, 25) + " }"
    assert refusal(await send(api, beside, world.admin)) == "QUERY_TOO_COMPLEX"
    # B is measured as A's part first; C, after it, is measured all the same
    later = "{ ...A ...C } fragment A on Query { ...B } fragment B on Query { __typename } fragment C on Query { " + pages(0, 25) + " }"
    assert refusal(await send(api, later, world.admin)) == "QUERY_TOO_COMPLEX"


async def test_a_spread_of_an_unknown_fragment_is_a_validation_error(api: Api, world: World) -> None:
    (error,) = (await send(api, "{ __typename ...Nope }", world.admin))["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "Nope" in error["message"]


async def test_a_query_deeper_than_the_depth_limit_is_refused(api: Api, world: World) -> None:
    assert (await send(api, of_types(limits.MAX_DEPTH), world.admin))["data"]["__schema"]["queryType"] == {"ofType": None}
    assert refusal(await send(api, of_types(limits.MAX_DEPTH + 1), world.admin)) == "QUERY_TOO_DEEP"


async def test_depth_counts_through_fragments(api: Api, world: World) -> None:
    inner = "ofType { " * (limits.MAX_DEPTH - 2) + "name" + " }" * (limits.MAX_DEPTH - 2)
    query = "{ __schema { queryType { ...T } } } fragment T on __Type { " + inner + " }"
    assert refusal(await send(api, query, world.admin)) == "QUERY_TOO_DEEP"


async def test_brackets_nested_past_the_limit_are_refused_before_parsing(api: Api, world: World) -> None:
    query = "{ __typename(x: " + "[" * 5000 + "]" * 5000 + ") }"
    assert refusal(await send(api, query, world.admin)) == "QUERY_TOO_DEEP"


async def test_a_document_over_the_token_limit_is_refused(api: Api, world: World) -> None:
    fields = " ".join(["__typename"] * limits.MAX_TOKENS)
    assert refusal(await send(api, "{ " + fields + " }", world.admin)) == "QUERY_TOO_LARGE"


async def test_a_document_over_the_size_limit_is_refused(api: Api, world: World) -> None:
    comment = "# " + "x" * limits.MAX_QUERY_CHARS + "\n"
    assert refusal(await send(api, comment + "{ __typename }", world.admin)) == "QUERY_TOO_LARGE"


async def test_aliases_count_once_fragments_are_expanded(api: Api, world: World) -> None:
    sixteen = " ".join(f"a{i}: __typename" for i in range(16))
    assert refusal(await send(api, "{ ...A ...A } fragment A on Query { " + sixteen + " }", world.admin)) == "TOO_MANY_ALIASES"
    assert "errors" not in await send(api, "{ ...A } fragment A on Query { " + sixteen + " }", world.admin)


async def test_a_query_that_could_select_too_many_rows_and_fields_is_refused(api: Api, world: World) -> None:
    page = "users(first: 100) { edges { node { id userId displayName teams { name } data { count } } } }"
    affordable = " ".join(f"u{i}: {page}" for i in range(5))
    assert "errors" not in await send(api, "{ " + affordable + " }", world.admin)
    costly = " ".join(f"u{i}: {page}" for i in range(25))
    assert refusal(await send(api, "{ " + costly + " }", world.admin)) == "QUERY_TOO_COMPLEX"


async def test_a_text_answered_before_is_checked_again_with_each_requests_variables(api: Api, world: World) -> None:
    # Parsing and validation are kept per text (graph/execution/documents.py); the limits are not.
    page = "users(first: $n) { edges { node { id userId displayName teams { name } data { count } } } }"
    query = "query ($n: Int) { " + " ".join(f"u{i}: {page}" for i in range(25)) + " }"
    assert "errors" not in await send(api, query, world.admin, n=1)
    assert refusal(await send(api, query, world.admin, n=100)) == "QUERY_TOO_COMPLEX"
    assert "errors" not in await send(api, query, world.admin, n=1)
    for _ in range(2):  # an invalid document is refused the same way every time
        (error,) = (await send(api, "{ users { nope } }", world.admin))["errors"]
        assert "nope" in error["message"]


async def test_a_page_size_left_to_a_variables_default_counts_as_the_largest_page(api: Api, world: World) -> None:
    """The default is applied after the limits are checked: a page of unknown size may be the largest."""
    page = "users(first: $n) { edges { node { id userId displayName teams { name } data { count } } } }"

    def pages(count: int) -> str:  # each costs 901 at the largest page (100 rows of 9 fields, and itself)
        return " ".join(f"u{i}: {page}" for i in range(count))

    assert "errors" not in await send(api, "query ($n: Int) { " + pages(23) + " }", world.admin, n=50)
    assert "errors" not in await send(api, "query ($n: Int = 100) { " + pages(22) + " }", world.admin)
    # 23 pages of 100 rows are over the limit; of 90 rows, within it
    assert refusal(await send(api, "query ($n: Int = 100) { " + pages(23) + " }", world.admin)) == "QUERY_TOO_COMPLEX"
    assert refusal(await send(api, "query ($n: Int) { " + pages(23) + " }", world.admin, n=None)) == "QUERY_TOO_COMPLEX"


async def test_a_connection_inside_a_connection_counts_its_page_once_per_row_of_the_outer_one(api: Api, world: World) -> None:
    nested = "{ transfers(first: 100) { edges { node { items(first: %d) { edges { node { status } } } } } } }"
    assert "errors" not in await send(api, nested % 10, world.admin)
    assert refusal(await send(api, nested % 100, world.admin)) == "QUERY_TOO_COMPLEX"


async def test_a_page_is_never_larger_than_the_page_size_cap(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "MAX_PAGE_SIZE", 5)
    result = await send(api, "{ users(first: 1000) { edges { node { userId } } pageInfo { hasNextPage } } }", world.admin)
    assert len(result["data"]["users"]["edges"]) == 5
    assert result["data"]["users"]["pageInfo"]["hasNextPage"] is True


async def test_graphiqls_introspection_query_is_within_every_limit(api: Api, world: World) -> None:
    from graphql import get_introspection_query

    query = get_introspection_query(
        descriptions=True, specified_by_url=True, directive_is_repeatable=True, schema_description=True, input_value_deprecation=True
    )
    result = await send(api, query, world.admin)
    assert "errors" not in result
    assert result["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_subscription_over_the_limits_is_refused_with_the_limits_code(api: Api, world: World, protocol: str) -> None:
    too_nested = "subscription { transferEvents(transferId: " + "[" * 100 + "]" * 100 + ") { cursor } }"
    too_long = 'subscription { transferEvents(transferId: "' + "x" * limits.MAX_QUERY_CHARS + '") { cursor } }'

    too_many = "subscription { transferEvents(transferId: \"x\") { " + "a: cursor " * (limits.MAX_ALIASES + 1) + "} }"
    for query, code in ((too_nested, "QUERY_TOO_DEEP"), (too_long, "QUERY_TOO_LARGE"), (too_many, "TOO_MANY_ALIASES")):
        async with api.ws(world.admin, protocol) as session:
            with pytest.raises(TransportQueryError) as refused:
                async for _ in session.subscribe(GraphQLRequest(query)):
                    pass
        assert refused.value.errors[0]["extensions"]["code"] == code


async def test_inline_fragments_count_as_the_rest_for_depth_aliases_and_cost(api: Api, world: World) -> None:
    """`... on Query { }` and `... { }` hide nothing from the limits."""
    inner = "ofType { " * (limits.MAX_DEPTH - 3) + "name" + " }" * (limits.MAX_DEPTH - 3)
    assert "errors" not in await send(api, "{ __schema { queryType { ... on __Type { " + inner + " } } } }", world.admin)
    deeper = "{ __schema { queryType { ... on __Type { ofType { " + inner + " } } } } }"
    assert refusal(await send(api, deeper, world.admin)) == "QUERY_TOO_DEEP"
    aliases = " ".join(f"a{i}: __typename" for i in range(limits.MAX_ALIASES))
    assert "errors" not in await send(api, "{ ... on Query { " + aliases + " } }", world.admin)
    assert refusal(await send(api, "{ ... on Query { " + aliases + " } ... { b: __typename } }", world.admin)) == "TOO_MANY_ALIASES"
    page = "users(first: 100) { edges { node { id userId displayName teams { name } data { count } } } }"
    costly = " ".join(f"u{i}: {page}" for i in range(25))
    assert refusal(await send(api, "{ ... on Query { " + costly + " } }", world.admin)) == "QUERY_TOO_COMPLEX"
    assert refusal(await send(api, "{ ... { " + costly + " } }", world.admin)) == "QUERY_TOO_COMPLEX"
    # Inside an abstract type, the fragment's own type says which fields are connections.
    items = "items(first: 100) { edges { node { rowNumber status errorCode errorMessage finishedAt sourceUser { userId displayName } targetUser { userId displayName } } } }"
    nodes = " ".join(f't{i}: node(id: "x") {{ ... on Transfer {{ {items} }} }}' for i in range(16))
    assert refusal(await send(api, "{ " + nodes + " }", world.admin)) == "QUERY_TOO_COMPLEX"


async def upload_with(api: Api, token: str, query: str, files_map: str = '{"0": ["variables.f"]}') -> dict:
    """`query` over a multipart request whose one file part goes where `files_map` says."""
    variables = {path.removeprefix("variables."): None for path in json.loads(files_map)["0"]}
    operations = json.dumps({"query": query, "variables": variables})
    parts = [("operations", (None, operations)), ("map", (None, files_map)), ("0", ("people.csv", b"From User ID,To User ID\n10,11\n", "text/csv"))]
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{api.base}/graphql", headers={"Authorization": f"Bearer {token}"}, files=parts)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    "query",
    [
        "mutation ($f: Upload!) { a: uploadBulkTransferFile(file: $f) { upload { id } } b: uploadBulkTransferFile(file: $f) { upload { id } } }",
        "mutation ($f: Upload!) { ...U ...U } fragment U on Mutation { uploadBulkTransferFile(file: $f) { upload { id } } }",
        "mutation ($f: Upload!) { ... on Mutation { uploadBulkTransferFile(file: $f) { upload { id } } } x: uploadBulkTransferFile(file: $f) { upload { id } } }",
    ],
    ids=["aliases", "fragments", "inline fragment"],
)
async def test_a_document_selecting_the_upload_more_than_once_is_refused_before_anything_runs(
    api: Api, world: World, query: str
) -> None:
    before = await BulkUpload.filter(tenant_id=world.tenant.id).count()
    result = await upload_with(api, world.admin, query)
    assert refusal(result) == "TOO_MANY_UPLOADS"
    assert result["errors"][0]["extensions"]["limit"] == limits.MAX_UPLOADS == 1
    assert await BulkUpload.filter(tenant_id=world.tenant.id).count() == before
    once = "mutation ($f: Upload!) { ...U } fragment U on Mutation { uploadBulkTransferFile(file: $f) { upload { id } } }"
    assert (await upload_with(api, world.admin, once))["data"]["uploadBulkTransferFile"]["upload"]["id"]


def refusal_of(check, *args) -> tuple[str, str, int]:  # type: ignore[no-untyped-def]
    """The code, message and limit of the refusal `check(*args)` raises."""
    with pytest.raises(ClientError) as raised:
        check(*args)
    return raised.value.extensions["code"], raised.value.message, raised.value.extensions["limit"]


def test_each_limit_on_the_text_lets_its_exact_size_through_and_names_itself_when_refusing() -> None:
    at_most = {
        "characters": ("{ __typename }".ljust(limits.MAX_QUERY_CHARS), "{ __typename }".ljust(limits.MAX_QUERY_CHARS + 1)),
        "tokens": ("{" + " a" * (limits.MAX_TOKENS - 2) + "}", "{" + " a" * (limits.MAX_TOKENS - 1) + "}"),
        "brackets": ("{" * limits.MAX_NESTING + "}" * limits.MAX_NESTING, "{" * (limits.MAX_NESTING + 1)),
    }
    expected = {
        "characters": ("QUERY_TOO_LARGE", limits.MAX_QUERY_CHARS),
        "tokens": ("QUERY_TOO_LARGE", limits.MAX_TOKENS),
        "brackets": ("QUERY_TOO_DEEP", limits.MAX_NESTING),
    }
    for what, (fits, over) in at_most.items():
        limits.check_text(fits)
        code, message, limit = refusal_of(limits.check_text, over)
        assert (code, limit) == expected[what]
        assert f"more than {limit} {what}" in message or f"longer than {limit} {what}" in message


def test_a_closed_bracket_takes_one_level_off_the_nesting() -> None:
    deep = limits.MAX_NESTING - 10
    limits.check_text("{" * deep + "}" + "{" * 11)  # deep - 1 + 11: the limit itself
    assert refusal_of(limits.check_text, "{" * deep + "}" + "{" * 12)[0] == "QUERY_TOO_DEEP"


def test_a_number_literal_may_have_exactly_the_most_digits() -> None:
    limits.check_text("{ a(n: " + "9" * limits.MAX_NUMBER_CHARS + ") }")
    with pytest.raises(ClientError) as raised:
        limits.check_text("{ a(n: " + "9" * (limits.MAX_NUMBER_CHARS + 1) + ") }")
    assert raised.value.extensions["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert f"longer than {limits.MAX_NUMBER_CHARS} characters" in raised.value.message


def test_each_limit_on_the_document_names_itself_and_its_figure_when_refusing() -> None:
    schema = graphql_schema(api_schema)

    def check(query: str) -> None:
        limits.check_document(parse(query), schema, {})

    page = "users(first: 100) { edges { node { id userId displayName teams { name } data { count } } } }"  # 901
    pages = " ".join(f"u{i}: {page}" for i in range(22))  # 19,822
    fits_cost = "{ " + pages + " x: users(first: 59) { edges { node { id } } } }"  # and 178: the limit itself
    over_cost = "{ " + pages + " x: users(first: 60) { edges { node { id } } } }"  # and 181
    check(fits_cost)
    assert refusal_of(check, over_cost) == (
        "QUERY_TOO_COMPLEX",
        f"The query could select more than {limits.MAX_COST} fields (a connection's fields count once per row).",
        limits.MAX_COST,
    )
    cases = {
        "QUERY_TOO_DEEP": (of_types(limits.MAX_DEPTH + 1), f"more than {limits.MAX_DEPTH} deep", limits.MAX_DEPTH),
        "TOO_MANY_ALIASES": (
            "{ " + " ".join(f"a{i}: __typename" for i in range(limits.MAX_ALIASES + 1)) + " }",
            f"more than {limits.MAX_ALIASES} aliases",
            limits.MAX_ALIASES,
        ),
        "TOO_MANY_FRAGMENTS": (
            "{ " + "...F " * (limits.MAX_FRAGMENT_SPREADS + 1) + "} fragment F on Query { __typename }",
            f"more than {limits.MAX_FRAGMENT_SPREADS} times",
            limits.MAX_FRAGMENT_SPREADS,
        ),
        "TOO_MANY_UPLOADS": (
            "mutation ($f: Upload!) { a: uploadBulkTransferFile(file: $f) { upload { id } } "
            "b: uploadBulkTransferFile(file: $f) { upload { id } } }",
            "more than once",
            limits.MAX_UPLOADS,
        ),
    }
    for code, (query, words, figure) in cases.items():
        found, message, limit = refusal_of(check, query)
        assert (found, limit) == (code, figure) and words in message, (code, message)
