"""GET /exports/people.csv: the people file of SPEC.md 6.1."""

from __future__ import annotations

import csv
import io

import httpx

from models.tenancy import Team, TeamMember
from tests.support import Api, World


async def download(api: Api, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as client:
        return await client.get(f"{api.base}/exports/people.csv", headers=headers)


def rows(response: httpx.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.text)))


async def test_the_people_file_has_the_columns_in_order_and_every_user_in_scope(api: Api, world: World) -> None:
    zulu = await Team.create(tenant=world.tenant, name="Zulu")
    await TeamMember.create(team=zulu, user=world.users[30])  # West and Zulu: by name
    await TeamMember.create(team=await Team.get(tenant=world.tenant, name="East"), user=world.users[30])
    response = await download(api, world.admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="people.csv"' in response.headers["content-disposition"]
    header, *body = rows(response)
    assert header == ["From User ID", "To User ID", "First Name", "Last Name", "Username", "Email", "Status", "Tenant Admin", "Teams"]
    assert [int(r[0]) for r in body] == sorted(world.users)  # active and inactive, by User ID
    agent = next(r for r in body if r[0] == "10")
    assert agent == ["10", "", "Agent10", "Number10", "agent10", "agent10@example.com", "Active", "No", "East"]
    assert next(r for r in body if r[0] == "30")[8] == "East; West; Zulu"
    assert next(r for r in body if r[0] == "1")[8] == ""  # in no team
    assert next(r for r in body if r[0] == "40")[6] == "Inactive"
    assert next(r for r in body if r[0] == "4")[7] == "Yes"


async def test_an_operator_with_a_view_downloads_only_that_view(api: Api, world: World) -> None:
    _, *body = rows(await download(api, world.lead))
    assert [int(r[0]) for r in body] == [4, *range(10, 30), *range(40, 45)]


async def test_cells_that_a_spreadsheet_would_run_are_neutralised(api: Api, world: World) -> None:
    user = world.users[11]
    user.first_name, user.last_name, user.email = "=HYPERLINK(\"http://x\")", "+1", "@evil"
    await user.save()
    row = next(r for r in rows(await download(api, world.admin))[1:] if r[0] == "11")
    assert row[2:4] == ["'=HYPERLINK(\"http://x\")", "'+1"]
    assert row[5] == "'@evil"


async def test_the_people_file_needs_a_token_and_the_permission(api: Api, world: World) -> None:
    assert (await download(api, None)).status_code == 401
    assert (await download(api, "udt_wrong")).status_code == 401
    assert (await download(api, world.tokens["clerk"])).status_code == 403


async def test_the_people_file_streams_page_by_page(api: Api, world: World) -> None:
    from models.csv_exports import PAGE, people_csv
    from models.tenancy import User

    await User.bulk_create(
        [User(tenant=world.tenant, user_id=1000 + i, first_name="Bulk", last_name=str(i), username=f"bulk{i}") for i in range(PAGE + 5)]
    )
    chunks = [chunk async for chunk in people_csv(world.users[1])]
    assert len(chunks) == 1 + 2  # the header, then one chunk per page of users
    assert sum(c.count("\n") for c in chunks) == 1 + len(world.users) + PAGE + 5


def test_every_cell_that_starts_like_a_formula_is_neutralised_wherever_it_sits() -> None:
    from models.csvfile import write_rows

    cells = ["=1+1", "+1", "-1", "@x", "\tx", "\rx", "=a,b", '="q"', "a\r\n=b", "plain", "", None, -3, 7]
    expected = {"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@x": "'@x", "\tx": "'\tx", "\rx": "'\rx", "=a,b": "'=a,b",
                '="q"': "'=\"q\"", "a\r\n=b": "a\r\n=b", "plain": "plain", "": "", None: "", -3: "'-3", 7: "7"}
    for cell in cells:
        for row in ([cell, "x", ""], ["x", cell, ""], ["x", "", cell]):
            written = next(csv.reader(io.StringIO(write_rows([row, ["a", "b", ""]]), newline="")))
            assert written[row.index(cell)] == expected[cell], (cell, row)
    # beside a formula, cell by cell, an absent value is still written empty and a number as its digits
    assert next(csv.reader(io.StringIO(write_rows([[None, "=1", 7]]), newline=""))) == ["", "'=1", "7"]
