"""Uploads follow the GraphQL multipart request specification strictly: `operations`, then `map`,
then the file parts; anything else is a 400 BAD_REQUEST, and nothing is stored."""

from __future__ import annotations

import json

import httpx
import pytest

from models.transfers import BulkUpload
from tests.support import Api, World

UPLOAD = "mutation ($file: Upload!) { uploadBulkTransferFile(file: $file) { upload { id } userErrors { code } } }"
OPERATIONS = json.dumps({"query": UPLOAD, "variables": {"file": None}})
CSV = b"From User ID,To User ID\n10,11\n"
# Starlette's and python-multipart's words, which must not reach a client.
PARSER_WORDS = ("Content-Disposition", "Invalid multipart", "boundary", "Maximum number", "KB")


async def send(api: Api, token: str, parts: list[tuple[str, tuple]]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(f"{api.base}/graphql", headers={"Authorization": f"Bearer {token}"}, files=parts)


def fields(files_map: str, operations: str = OPERATIONS) -> list[tuple[str, tuple]]:
    return [("operations", (None, operations)), ("map", (None, files_map))]


def file(name: str) -> tuple[str, tuple]:
    return (name, ("people.csv", CSV, "text/csv"))


async def refused(api: Api, world: World, parts: list[tuple[str, tuple]]) -> str:
    """The message of the request's 400, checked to have stored nothing."""
    before = await BulkUpload.filter(tenant_id=world.tenant.id).count()
    response = await send(api, world.admin, parts)
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert await BulkUpload.filter(tenant_id=world.tenant.id).count() == before
    return error["message"]


async def test_a_well_formed_upload_is_stored(api: Api, world: World) -> None:
    response = await send(api, world.admin, [*fields('{"0": ["variables.file"]}'), file("0")])
    assert response.json()["data"]["uploadBulkTransferFile"]["upload"]["id"]


async def test_one_file_part_may_go_to_several_paths_and_a_document_reading_it_twice_is_then_refused_by_the_upload_limit(
    api: Api, world: World
) -> None:
    before = await BulkUpload.filter(tenant_id=world.tenant.id).count()
    selection = "{ upload { pairCount } }"
    twice = f"mutation ($a: Upload!, $b: Upload!) {{ a: uploadBulkTransferFile(file: $a) {selection} b: uploadBulkTransferFile(file: $b) {selection} }}"
    operations = json.dumps({"query": twice, "variables": {"a": None, "b": None}})
    response = await send(api, world.admin, [*fields('{"0": ["variables.a", "variables.b"]}', operations), file("0")])
    assert response.status_code == 200  # the multipart layer took it (the specification allows it)
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "TOO_MANY_UPLOADS", "limit": 1}
    assert await BulkUpload.filter(tenant_id=world.tenant.id).count() == before


async def test_a_batch_of_operations_is_refused_so_no_file_part_is_read_twice(api: Api, world: World) -> None:
    batch = json.dumps([{"query": UPLOAD, "variables": {"file": None}}] * 2)
    await refused(api, world, [*fields('{"0": ["0.variables.file", "1.variables.file"]}', batch), file("0")])  # batching is off


async def test_two_file_parts_mapped_to_one_path_are_refused(api: Api, world: World) -> None:
    await refused(api, world, [*fields('{"0": ["variables.file"], "1": ["variables.file"]}'), file("0"), file("1")])


async def test_one_file_part_mapped_twice_to_one_path_is_refused(api: Api, world: World) -> None:
    message = await refused(api, world, [*fields('{"0": ["variables.file", "variables.file"]}'), file("0")])
    assert "same path" in message


async def test_a_map_naming_a_part_twice_is_refused(api: Api, world: World) -> None:
    message = await refused(api, world, [*fields('{"0": ["variables.file"], "0": ["variables.file"]}'), file("0")])
    assert "twice" in message


async def test_a_map_naming_a_missing_part_is_refused(api: Api, world: World) -> None:
    message = await refused(api, world, [*fields('{"0": ["variables.file"]}'), file("1")])
    assert "does not hold" in message
    await refused(api, world, fields('{"0": ["variables.file"]}'))


async def test_a_file_part_that_no_map_entry_names_is_refused(api: Api, world: World) -> None:
    message = await refused(api, world, [*fields("{}"), file("0")])
    assert "does not name" in message


@pytest.mark.parametrize(
    "path", ["variables.nothing", "variables.file.0", "variables", "query", "variables.file.", "0.variables.file", ""]
)
async def test_a_path_that_does_not_lead_to_a_null_placeholder_is_refused(api: Api, world: World, path: str) -> None:
    message = await refused(api, world, [*fields(json.dumps({"0": [path]})), file("0")])
    assert "null" in message


async def test_a_path_to_a_value_that_is_not_null_is_refused(api: Api, world: World) -> None:
    operations = json.dumps({"query": UPLOAD, "variables": {"file": "people.csv"}})
    await refused(api, world, [*fields('{"0": ["variables.file"]}', operations), file("0")])


async def test_fields_out_of_order_are_refused(api: Api, world: World) -> None:
    operations, files_map = fields('{"0": ["variables.file"]}')
    for parts in ([files_map, operations, file("0")], [operations, file("0"), files_map], [file("0"), operations, files_map]):
        assert "then" in await refused(api, world, parts)


async def test_operations_or_map_sent_as_a_file_is_refused(api: Api, world: World) -> None:
    operations = ("operations", ("ops.json", OPERATIONS.encode(), "application/json"))
    await refused(api, world, [operations, ("map", (None, '{"0": ["variables.file"]}')), file("0")])


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param([*fields('{"0": ["variables.file"]}'), file("0"), file("1")], id="two files"),
        pytest.param([*fields('{"0": ["variables.file"]}'), ("extra", (None, "x")), file("0")], id="a third field"),
        pytest.param([("operations", (None, "x" * 300_000)), *fields("{}")[1:], file("0")], id="a field over its size"),
    ],
)
async def test_parts_past_the_counts_are_refused_in_our_words(api: Api, world: World, parts: list) -> None:
    message = await refused(api, world, parts)
    assert not any(word in message for word in PARSER_WORDS), message


async def test_a_malformed_multipart_body_is_refused_in_our_words(api: Api, world: World) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        for content_type, body in [
            ("multipart/form-data", b"--x\r\n"),  # no boundary
            ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--\r\n'),  # no name
        ]:
            headers = {"Authorization": f"Bearer {world.admin}", "Content-Type": content_type}
            response = await client.post(f"{api.base}/graphql", headers=headers, content=body)
            assert response.status_code == 400, response.text
            (error,) = response.json()["errors"]
            assert error["extensions"]["code"] == "BAD_REQUEST"
            assert not any(word in error["message"] for word in PARSER_WORDS), error["message"]
