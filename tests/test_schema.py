"""schema.graphql is what the code exports, and it keeps the front-end contract.

The contract lives in ../shared/contract.graphql beside the project; tests/contract.graphql
is a copy, so that a clone on its own checks it too (the same check as
../shared/tools/check_contract.py: every breaking change from the contract is a violation).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import build_schema, find_breaking_changes

from graph.api.schema import schema

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "tests" / "contract.graphql"
SHARED_CONTRACT = ROOT.parent / "shared" / "contract.graphql"


def test_schema_file_is_the_exported_schema() -> None:
    exported = schema.as_str() + "\n"
    assert (ROOT / "schema.graphql").read_text() == exported, "schema.graphql is stale: run `udt export-schema > schema.graphql`"


def test_schema_keeps_the_contract() -> None:
    contract = build_schema(CONTRACT.read_text())
    violations = find_breaking_changes(contract, build_schema((ROOT / "schema.graphql").read_text()))
    assert [f"{v.type.name}: {v.description}" for v in violations] == []


def test_the_data_type_arguments_the_contract_cannot_extend_are_there() -> None:
    """`extend` cannot add arguments: the contract names these two in a comment."""
    exported = build_schema((ROOT / "schema.graphql").read_text())
    for type_name, field in (("Query", "transferPlan"), ("BulkUploadRow", "impact")):
        assert str(exported.get_type(type_name).fields[field].args["dataTypes"].type) == "[String!]"


@pytest.mark.skipif(not SHARED_CONTRACT.exists(), reason="../shared/contract.graphql is not beside this checkout")
def test_the_contract_copy_is_the_shared_contract() -> None:
    assert CONTRACT.read_text() == SHARED_CONTRACT.read_text(), "copy ../shared/contract.graphql to tests/contract.graphql"
