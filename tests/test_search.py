"""The users search: bounded in length and words, and never a way to see everyone or internal text."""

from __future__ import annotations

import pytest

from graph.api.users import MAX_SEARCH_CHARS, MAX_SEARCH_WORDS
from models.db import MAX_INT
from models.tenancy import User
from tests.support import Api, GraphQLErrors, World

SEARCH = "query ($search: String) { users(filter: {search: $search}, first: 100) { edges { node { userId } } } }"


async def found(api: Api, world: World, search: str) -> list[int]:
    result = await api(SEARCH, world.admin, search=search)
    return [e["node"]["userId"] for e in result["users"]["edges"]]


async def refusal(api: Api, world: World, search: str) -> dict:
    with pytest.raises(GraphQLErrors) as caught:
        await api(SEARCH, world.admin, search=search)
    (error,) = caught.value.errors
    assert not any(word in error["message"].lower() for word in ("recursion", "sqlite", "like", "codec", "pattern"))
    return error


async def refused(api: Api, world: World, search: str) -> str:
    return (await refusal(api, world, search))["extensions"]["code"]


async def test_a_search_of_up_to_the_word_limit_finds_users(api: Api, world: World) -> None:
    assert await found(api, world, " ".join(["agent12"] * MAX_SEARCH_WORDS)) == [12]


async def test_more_words_than_the_limit_are_an_invalid_search(api: Api, world: World) -> None:
    assert await refused(api, world, " ".join(["agent12"] * (MAX_SEARCH_WORDS + 1))) == "INVALID_SEARCH"
    assert await refused(api, world, " ".join(["a"] * 1000)) == "INVALID_SEARCH"


async def test_a_search_of_exactly_the_character_limit_finds_users(api: Api, world: World) -> None:
    assert await found(api, world, "agent12".rjust(MAX_SEARCH_CHARS)) == [12]


async def test_an_invalid_search_says_what_is_wrong(api: Api, world: World) -> None:
    cases = {
        "a" * (MAX_SEARCH_CHARS + 1): f"A search is at most {MAX_SEARCH_CHARS} characters.",
        "agent\u0007": "A search cannot hold control characters.",
        " ".join(["a"] * (MAX_SEARCH_WORDS + 1)): f"A search is at most {MAX_SEARCH_WORDS} words.",
    }
    for search, message in cases.items():
        assert (await refusal(api, world, search))["message"] == message


async def test_the_largest_user_id_is_found_by_its_number(api: Api, world: World) -> None:
    await User.create(tenant=world.tenant, user_id=MAX_INT, first_name="Max", last_name="Int", username="maxint", email=None)
    assert await found(api, world, str(MAX_INT)) == [MAX_INT]


async def test_a_search_longer_than_the_limit_is_an_invalid_search(api: Api, world: World) -> None:
    assert await refused(api, world, "a" * (MAX_SEARCH_CHARS + 1)) == "INVALID_SEARCH"
    assert await refused(api, world, "a" * 60_000) == "INVALID_SEARCH"


async def test_a_control_character_is_an_invalid_search_not_a_match_for_everyone(api: Api, world: World) -> None:
    assert await refused(api, world, "\u0000") == "INVALID_TEXT"  # refused before the search sees it
    assert await refused(api, world, "agent\u0007") == "INVALID_SEARCH"


async def test_a_blank_search_filters_nothing(api: Api, world: World) -> None:
    assert len(await found(api, world, "   ")) == len(await found(api, world, "")) > 30
