"""Plain fields completed in place give exactly what graphql-core gives: data, errors and their paths.

graph/execution/plain_fields.py completes fields that only read an attribute without
graphql-core's machinery per field. Each query here runs on a small schema
twice, with strawberry's own execution and with the plain one, and the two
answers must be the same, down to the order of keys and the path of each error
(Leaf is a shared type: each instance is completed once per selection).
"""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
import strawberry

from graph.execution.plain_fields import PlainDataExecutionContext, shared


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@shared  # its instances below are reused, and some of them refuse to complete
@strawberry.type
class Leaf:
    key: str
    colour: Colour
    size: int | None = None


@strawberry.type
class Pair:
    leaf: Leaf
    count: int
    leaves: list[Leaf]


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Person(Named):
    pairs: list[Pair]

    @strawberry.field
    async def loaded(self) -> list[Pair]:
        return self.pairs


def _pair(key: str, count: int, colour: Colour = Colour.RED) -> Pair:
    return Pair(leaf=Leaf(key=key, colour=colour), count=count, leaves=[Leaf(key=key + "!", colour=Colour.BLUE, size=2)])


BROKEN_LEAF: Any = Leaf(key=None, colour=Colour.RED)  # a null in a non-null field
BAD_COLOUR: Any = Leaf(key="x", colour="green")  # a value the enum cannot represent
BIG: Any = Pair(leaf=Leaf(key="big", colour=Colour.RED), count=2**40, leaves=[])  # past GraphQL's Int


@strawberry.type
class Query:
    @strawberry.field
    def person(self) -> Person:
        return Person(name="Ann", pairs=[_pair("a", 1), _pair("b", 2, Colour.BLUE)])

    @strawberry.field
    def people(self) -> list[Named]:
        return [Person(name="Bob", pairs=[_pair("c", 3)])]

    @strawberry.field
    async def broken(self) -> list[Pair]:
        return [_pair("d", 4), Pair(leaf=BROKEN_LEAF, count=5, leaves=[])]

    @strawberry.field
    def nullable_broken(self) -> list[Leaf | None]:
        return [Leaf(key="e", colour=Colour.RED), BROKEN_LEAF, BAD_COLOUR]

    @strawberry.field
    def big(self) -> Pair:
        return BIG


STOCK = strawberry.Schema(query=Query, types=[Person])
PLAIN = strawberry.Schema(query=Query, types=[Person], execution_context_class=PlainDataExecutionContext)

QUERIES = {
    "nested objects and lists, aliases, typename": """{ person { __typename name
        pairs { n: count leaf { key colour __typename } leaves { key size } }
        loaded { count leaf { key } alias: leaf { colour } } } }""",
    "fragments and directives": """query ($yes: Boolean!) { person {
        ...P pairs { count @skip(if: $yes) leaf { key @include(if: $yes) ...L } } } }
        fragment P on Person { name loaded { ...on Pair { count } } }
        fragment L on Leaf { colour }""",
    "an interface": "{ people { __typename name ... on Person { pairs { count } } } }",
    "a null in a non-null field, under a resolver": "{ broken { count leaf { key colour } } }",
    "nulls and bad enum values in a nullable list": "{ nullableBroken { key colour } }",
    "an integer past 32 bits": "{ big { count leaf { key } } }",
}


def _shape(result: Any) -> dict:
    errors = [{"message": e.message, "path": e.path} for e in result.errors or []]
    return {"data": result.data, "errors": errors}


@pytest.mark.parametrize("query", list(QUERIES.values()), ids=list(QUERIES))
async def test_plain_completion_answers_exactly_as_graphql_core(query: str) -> None:
    stock = await STOCK.execute(query, variable_values={"yes": True})
    plain = await PLAIN.execute(query, variable_values={"yes": True})
    assert json.dumps(_shape(plain)) == json.dumps(_shape(stock))
    assert stock.data is not None or stock.errors


async def test_errors_keep_their_paths_and_null_only_what_they_must() -> None:
    result = await PLAIN.execute("{ nullableBroken { key colour } }")
    assert [e.path for e in result.errors] == [["nullableBroken", 1, "key"], ["nullableBroken", 2, "colour"]]
    assert result.data == {"nullableBroken": [{"key": "e", "colour": "RED"}, None, None]}
    result = await PLAIN.execute("{ broken { count leaf { key } } }")
    assert [e.path for e in result.errors] == [["broken", 1, "leaf", "key"]]
    assert result.data is None  # every level up to the root is non-null
