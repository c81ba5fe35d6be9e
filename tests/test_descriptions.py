"""Every type, field, argument, input field and enum value says what it is: GraphiQL's docs pane shows it.

The walk reads the introspection a front end gets over HTTP, so it checks what clients see.
"""

from __future__ import annotations

import httpx
from graphql import get_introspection_query

from tests.support import Api, World

BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def missing_descriptions(schema: dict) -> list[str]:
    """Coordinates (Type, Type.field, Type.field(arg), Enum.VALUE) that have no description."""
    missing = []

    def check(coordinate: str, item: dict) -> None:
        if not (item.get("description") or "").strip():
            missing.append(coordinate)

    for kind in schema["types"]:
        name = kind["name"]
        if name.startswith("__") or name in BUILT_IN:
            continue
        check(name, kind)
        for field in kind.get("fields") or []:
            check(f"{name}.{field['name']}", field)
            for arg in field["args"]:
                check(f"{name}.{field['name']}({arg['name']})", arg)
        for field in kind.get("inputFields") or []:
            check(f"{name}.{field['name']}", field)
        for value in kind.get("enumValues") or []:
            check(f"{name}.{value['name']}", value)
    return missing


async def test_every_type_field_argument_and_enum_value_has_a_description(api: Api, world: World) -> None:
    query = get_introspection_query(descriptions=True, input_value_deprecation=True)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{api.base}/graphql", json={"query": query}, headers={"Authorization": f"Bearer {world.admin}"})
    schema = response.json()["data"]["__schema"]
    assert len(schema["types"]) > 30  # the walk sees the whole schema
    assert missing_descriptions(schema) == []


def test_the_walk_finds_a_missing_description() -> None:
    bare = {"types": [{"name": "Thing", "description": "A thing.", "fields": [
        {"name": "size", "description": "", "args": [{"name": "unit", "description": None}]}
    ], "inputFields": None, "enumValues": None}]}
    assert missing_descriptions(bare) == ["Thing.size", "Thing.size(unit)"]
