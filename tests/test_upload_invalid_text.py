"""Text no database stores (NUL) is refused where it enters a file: INVALID_TEXT at its line.

PostgreSQL refuses a NUL in text and SQLite keeps it, so it is refused before either sees
it, with the same answer on both (run this module on each).
"""

from __future__ import annotations

import json

import httpx

from tests.support import UPLOAD, Api, World
from tests.test_bulk_transfer import START_BULK
from tests.test_bulk_upload import errors_by_line


def rows_by_line(upload: dict) -> dict[int, dict]:
    return {e["node"]["rowNumber"]: e["node"] for e in upload["rows"]["edges"]}


async def test_a_nul_in_an_id_cell_is_invalid_text_at_its_line_about_that_cell(api: Api, world: World) -> None:
    await world.stock(19, 20, 23)
    people = "From User ID,To User ID\n21,19\n22,2\x000\n2\x004,23\n"
    upload = (await api.upload(world.admin, people))["upload"]
    rows = rows_by_line(upload)
    assert rows[2]["errors"] == []
    # the people file's To cell names the source; its From cell the target
    assert [(e["code"], e["field"]) for e in rows[3]["errors"]] == [("INVALID_TEXT", ["toUserId"])]
    assert [(e["code"], e["field"]) for e in rows[4]["errors"]] == [("INVALID_TEXT", ["fromUserId"])]
    assert rows[3]["errors"][0]["message"] == "Source user ID holds a NUL character (a zero byte), which is not text."
    assert (rows[3]["toUserId"], rows[4]["fromUserId"]) == ("2\ufffd0", "2\ufffd4")  # stored, and shown, without it
    assert upload["errorCount"] == 2 and upload["pairCount"] == 3
    refused = (await api(START_BULK, world.admin, id=upload["id"], confirm=True))["startBulkTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["UPLOAD_HAS_ERRORS"]


async def test_in_the_source_target_form_the_cells_mean_what_they_say(api: Api, world: World) -> None:
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n\x0019,21\n"))["upload"]
    (row,) = rows_by_line(upload).values()
    assert [(e["code"], e["field"]) for e in row["errors"]] == [("INVALID_TEXT", ["fromUserId"])]


async def test_a_nul_in_another_cell_of_a_row_that_requests_a_transfer_refuses_the_row_for_good(
    api: Api, world: World
) -> None:
    await world.stock(19, 20)
    people = "From User ID,To User ID,First Name\n21,19,Ann\n22,20,B\x00b\n"
    upload = (await api.upload(world.admin, people))["upload"]
    rows = rows_by_line(upload)
    assert rows[2]["errors"] == []
    (error,) = rows[3]["errors"]
    assert (error["code"], error["field"]) == ("INVALID_TEXT", None)
    assert error["message"] == "Column 3 holds a NUL character (a zero byte), which is not text."
    # its ID cells are fine, and it stays refused when the start checks the rows again
    assert rows[3]["sourceUser"]["userId"] == 20 and rows[3]["targetUser"]["userId"] == 22
    refused = (await api(START_BULK, world.admin, id=upload["id"], confirm=True))["startBulkTransfer"]
    assert [e["code"] for e in refused["userErrors"]] == ["UPLOAD_HAS_ERRORS"]
    again = (await api.upload(world.admin, people))["upload"]
    assert errors_by_line(again) == {3: ["INVALID_TEXT"]}


async def test_a_nul_in_a_row_that_requests_nothing_is_not_read(api: Api, world: World) -> None:
    await world.stock(19)
    people = "From User ID,To User ID,First Name\n21,19,Ann\n2\x002,,B\x00b\n"
    upload = (await api.upload(world.admin, people))["upload"]
    assert upload["errorCount"] == 0 and (upload["rowCount"], upload["pairCount"]) == (2, 1)


async def test_a_nul_in_the_file_name_is_shown_as_the_replacement_character(api: Api, world: World) -> None:
    await world.stock(19)
    operations = json.dumps({"query": UPLOAD.replace("upload { id", "upload { id filename"), "variables": {"file": None}})
    body = b"".join(
        [
            b'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n%s\r\n' % operations.encode(),
            b'--b\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0": ["variables.file"]}\r\n',
            b'--b\r\nContent-Disposition: form-data; name="0"; filename="peo\x00ple.csv"\r\n',
            b"Content-Type: text/csv\r\n\r\nFrom User ID,To User ID\n21,19\n\r\n--b--\r\n",
        ]
    )
    headers = {"Authorization": f"Bearer {world.admin}", "Content-Type": "multipart/form-data; boundary=b"}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{api.base}/graphql", content=body, headers=headers)
    answer = response.json()["data"]["uploadBulkTransferFile"]
    assert answer["userErrors"] == [] and answer["upload"]["filename"] == "peo\ufffdple.csv"
