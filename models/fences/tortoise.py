"""tortoise-orm internals, each behind one name.

Checked against tortoise-orm 1.1.9 (CHECKED: the minor version; pyproject.toml admits no other).
tortoise finds the asyncpg client by module path (models/settings.py), so it stays in
models/asyncpg_client.py, a fence of its own for tortoise's transactions; it checks this version.

- `from_row`: rows read by the service's own SQL (a claim's `UPDATE ... RETURNING`, one join
  instead of three queries) become model instances. tortoise has no public constructor for a
  row: `Model(**fields)` makes an unsaved instance that a later `save()` would INSERT, and runs
  each field's validation again.
- the model's metadata (`Model._meta`): the table, its columns, a field's conversion to the
  database's value and the connection a model uses, for SQL that tortoise's query builder
  cannot write (data-modifying CTEs, set-based moves). `Model.describe()` is the public view of
  the first two, but builds the whole description on every call, and has neither of the others.
- `init_with_global_fallback`: tortoise 1.x keeps its connections in a context variable; a
  server's request tasks, and arq's job tasks, start outside the context `Tortoise.init` ran in,
  and find the connections only with the (underscored) global fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from typing import Any, TypeVar

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.fields.base import Field
from tortoise.models import Model

LIBRARY = "tortoise-orm"
CHECKED = "1.1"

M = TypeVar("M", bound=Model)


def check_version() -> None:
    """Refuse to run on a tortoise-orm whose internals nobody read (ImportError at import)."""
    found = version(LIBRARY)
    if found.split(".")[:2] != CHECKED.split("."):
        raise ImportError(
            f"models/fences/tortoise.py was checked against {LIBRARY} {CHECKED}.x, not {found}: "
            "read its internals again (tests/test_fences.py), then update CHECKED and pyproject.toml."
        )


def from_row(model: type[M], row: Mapping[str, Any]) -> M:
    """The instance of `model` that a row of its table (every column, named as in the table) holds."""
    return model._init_from_db(**row)


def table_name(model: type[Model]) -> str:
    return model._meta.db_table


def column_names(model: type[Model]) -> set[str]:
    """The table's columns."""
    return model._meta.db_fields


def pk_column(model: type[Model]) -> str:
    return model._meta.db_pk_column


def model_field(model: type[Model], name: str) -> Field:
    """The field `name` of `model`: its `source_field` (column) and `to_db_value`."""
    return model._meta.fields_map[name]


def connection(model: type[Model]) -> BaseDBAsyncClient:
    """The connection `model`'s queries use (the task's transaction, if it is in one)."""
    return model._meta.db


async def init_with_global_fallback(config: dict) -> None:
    """`Tortoise.init`, with connections every task finds, whatever context it started in."""
    await Tortoise.init(config=config, _enable_global_fallback=True)


check_version()
