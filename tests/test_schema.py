"""schema.graphql is what the code exports, and it keeps the front-end contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from graph.schema import schema

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT.parent / "shared" / "tools" / "check_contract.py"


def test_schema_file_is_the_exported_schema() -> None:
    exported = schema.as_str() + "\n"
    assert (ROOT / "schema.graphql").read_text() == exported, "schema.graphql is stale: run `udt export-schema > schema.graphql`"


@pytest.mark.skipif(not CHECK.exists(), reason="../shared/tools/check_contract.py is not beside this checkout")
def test_schema_keeps_the_contract() -> None:
    result = subprocess.run([sys.executable, str(CHECK), str(ROOT / "schema.graphql")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 violation(s)" in result.stdout
