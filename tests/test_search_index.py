"""The users search answers from an index on PostgreSQL, finds exactly what it did, and counts
the whole match only when asked."""

from __future__ import annotations

import pytest
from tortoise import connections

from graph.api.users import _search
from models.tenancy import User
from tests.conftest import ON_POSTGRES
from tests.support import Api, QueryCounter, World

SEARCH = "query ($search: String) { users(filter: {search: $search, active: null}, first: 100) { edges { node { userId } } } }"


async def found(api: Api, world: World, search: str) -> list[int]:
    result = await api(SEARCH, world.admin, search=search)
    return [e["node"]["userId"] for e in result["users"]["edges"]]


@pytest.mark.postgres
async def test_the_migrations_make_a_trigram_index_that_a_search_uses(world: World) -> None:
    db = connections.get("default")
    _, rows = await db.execute_query("SELECT indexdef FROM pg_indexes WHERE indexname = 'app_user_search_trgm'")
    assert "gin_trgm_ops" in rows[0]["indexdef"]
    query = _search(User.all(), "agent12 number")  # the search alone, without the scope's own indexes
    async with db._in_transaction() as tx:  # a planning choice on a few rows: the scan is made dear, not impossible
        await tx.execute_script("SET LOCAL enable_seqscan = off")
        _, plan = await tx.execute_query(f"EXPLAIN {query.sql(params_inline=True)}")
    assert "app_user_search_trgm" in "\n".join(row[0] for row in plan)


async def test_a_search_finds_a_part_of_the_email_in_the_middle_and_across_its_at(api: Api, world: World) -> None:
    assert await found(api, world, "nt12@exam") == [12]
    assert await found(api, world, "12@EXAMPLE.C") == [12]


async def test_every_word_must_match_and_a_number_is_also_an_exact_user_id(api: Api, world: World) -> None:
    assert await found(api, world, "agent1 number13") == [13]
    assert await found(api, world, "agent3 3") == [30, 31, 32, 33, 34, 35, 36, 37, 38, 39]
    assert await found(api, world, "clerk 3") == [3]
    assert await found(api, world, "agent12 number13") == []


async def test_a_word_never_matches_across_two_fields(api: Api, world: World) -> None:
    # first name "Agent12", last name "Number12": together "Agent12 Number12", but no field holds "12n"
    assert await found(api, world, "12n") == []
    assert await found(api, world, "agent12number12") == []


async def test_like_wildcards_in_a_word_are_plain_characters(api: Api, world: World) -> None:
    await User.create(tenant=world.tenant, user_id=60, first_name="Ana", last_name="O_Neil%", username="ana", email=None)
    assert await found(api, world, "o_neil%") == [60]
    assert await found(api, world, "o%l") == []
    assert await found(api, world, "n_mber12") == []


async def test_a_search_ignores_case_of_ascii_letters_and_on_postgresql_of_every_letter(api: Api, world: World) -> None:
    await User.create(
        tenant=world.tenant, user_id=61, first_name="Zoë", last_name="Ångström", username="zoe.a", email="zoë@example.com"
    )
    assert await found(api, world, "ÅNGSTRöM zOë") == [61]  # ASCII letters in any case, others as written
    assert await found(api, world, "zoë@EXAMPLE") == [61]
    # PostgreSQL's UPPER folds every letter; SQLite's only ASCII ones, as before the index.
    assert await found(api, world, "ångström ZOË") == ([61] if ON_POSTGRES else [])


async def test_the_whole_match_is_counted_only_when_total_count_is_asked_for(api: Api, world: World) -> None:
    page = "query ($total: Boolean!) { users(filter: {search: \"agent\"}, first: 2) { totalCount @include(if: $total) edges { node { userId } } } }"
    with QueryCounter(everywhere=True, containing="COUNT(") as counted:
        without = await api(page, world.admin, total=False)
    assert counted.count == 0 and "totalCount" not in without["users"]
    with QueryCounter(everywhere=True, containing="COUNT(") as counted:
        asked = await api(page, world.admin, total=True)
    assert counted.count == 1 and asked["users"]["totalCount"] == 30
