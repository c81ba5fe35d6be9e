"""Every library internal the service relies on is still there, as its fence read it.

The fences are graph/fences/ (strawberry, graphql-core, uvicorn), models/fences/tortoise.py and
models/asyncpg_client.py. When an upgrade changes what one relies on, its test fails naming the
library and the fence: read that fence's internals again in the new version, adapt them, then
update its CHECKED and the bound in pyproject.toml.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import sys
import tomllib
from importlib.metadata import packages_distributions, version
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

import graphql
import pytest
import strawberry
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from strawberry.asgi import GraphQL
from strawberry.extensions import SchemaExtension
from tortoise import Tortoise
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionContextPooled
from uvicorn.protocols.http.flow_control import FlowControl

from graph.fences import graphql_core, uvicorn
from graph.fences import strawberry as strawberry_fence
from graph.live.websocket import WebSocketProtocol
from graph.live.ws_protocols import LegacyWSHandler, TransportWSHandler
from graph.server.heads import HttpProtocol
from models.fences import tortoise
from models.tenancy import Tenant
from models.transfers import EventRecord

ROOT = Path(__file__).resolve().parent.parent
ASYNCPG_CLIENT = "models/asyncpg_client.py"


def fence_name(fence: ModuleType) -> str:
    return fence.__name__.replace(".", "/") + ".py"


def holds(condition: object, library: str, fence: str, what: str) -> None:
    """Fail, naming the library and the fence, unless `condition`."""
    if not condition:
        pytest.fail(
            f"{library} {version(library)} changed what {fence} relies on: {what}. Read the fence's internals "
            "again in this version, adapt it, then update its CHECKED and the bound in pyproject.toml.",
            pytrace=False,
        )


def parameters(function: Any) -> tuple[str, ...]:
    return tuple(name for name in inspect.signature(function).parameters if name != "self")


def takes(cls: type, methods: dict[str, tuple[str, ...]], library: str, fence: str) -> None:
    """Each of `methods` exists on `cls` and takes these parameters first."""
    for name, expected in methods.items():
        method = getattr(cls, name, None)
        holds(callable(method), library, fence, f"{cls.__name__}.{name} is gone")
        found = parameters(method)
        holds(found[: len(expected)] == expected, library, fence,
              f"{cls.__name__}.{name} takes {found}, not {expected}")


def attributes(cls: type, package: str) -> set[str]:
    """The attributes `cls` and its bases from `package` declare or assign (`self.name = ...`)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] != package:
            continue
        names |= set(vars(klass)) | set(getattr(klass, "__annotations__", {})) | set(getattr(klass, "__slots__", ()))
        names |= set(re.findall(r"self\.(\w+)\s*(?::[^=\n]+)?=(?!=)", inspect.getsource(klass)))
    return names


def keeps(cls: type, names: tuple[str, ...] | list[str], package: str, library: str, fence: str) -> None:
    missing = sorted(set(names) - attributes(cls, package))
    holds(not missing, library, fence, f"{cls.__name__} no longer has {', '.join(missing)}")


def own_names_free(subclass: type, base: type, package: str, library: str, fence: str) -> None:
    """The subclass's own private names are not (now) the library's: an upgrade must not start using them."""
    ours = {n for n in attributes(subclass, subclass.__module__.split(".")[0]) if n.startswith("_") and not n.startswith("__")}
    taken = sorted(ours & attributes(base, package))
    holds(not taken, library, fence, f"{base.__name__} now has {', '.join(taken)}, which {subclass.__name__} uses as its own")


# strawberry-graphql

STRAWBERRY = (strawberry_fence.LIBRARY, fence_name(strawberry_fence))


@strawberry.type
class FenceItem:
    name: str

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


class _Seen(SchemaExtension):
    names: list[str | None] = []

    def on_operation(self):  # noqa: ANN201
        yield
        _Seen.names.append(strawberry_fence.provided_operation_name(self.execution_context))


@strawberry.type
class FenceQuery:
    @strawberry.field
    def item(self) -> FenceItem:
        return FenceItem(name="a")

    @strawberry.field
    def fragments(self, info: strawberry.Info) -> list[str]:
        return sorted(strawberry_fence.raw_fragments(info))


_SCHEMA = strawberry.Schema(query=FenceQuery, extensions=[_Seen])


def test_a_strawberry_schema_holds_its_graphql_core_schema() -> None:
    found = strawberry_fence.graphql_schema(_SCHEMA)
    holds(isinstance(found, graphql.GraphQLSchema) and found.query_type.name == "FenceQuery", *STRAWBERRY,
          "graphql_schema: Schema._schema is not the graphql-core schema")


async def test_strawberry_tells_the_operation_name_a_request_gave_from_none() -> None:
    _Seen.names.clear()
    await _SCHEMA.execute("query A { item { name } } query B { item { name } }", operation_name="B")
    await _SCHEMA.execute("query A { item { name } }")
    holds(_Seen.names == ["B", None], *STRAWBERRY,
          f"provided_operation_name: ExecutionContext._provided_operation_name gave {_Seen.names}")


async def test_a_resolver_reads_the_fragments_of_its_document() -> None:
    result = await _SCHEMA.execute("query { fragments ...F } fragment F on FenceQuery { item { name } }")
    holds(result.errors is None and result.data["fragments"] == ["F"], *STRAWBERRY,
          f"raw_fragments: Info._raw_info.fragments gave {result.data or result.errors}")


def test_strawberry_marks_definitions_and_attribute_readers() -> None:
    item = strawberry_fence.graphql_schema(_SCHEMA).type_map["FenceItem"]
    holds(getattr(strawberry_fence.field_definition(item), "origin", None) is FenceItem, *STRAWBERRY,
          "field_definition: a type's extensions no longer name its strawberry definition")
    holds(getattr(strawberry_fence.field_definition(item.fields["name"]), "python_name", None) == "name", *STRAWBERRY,
          "field_definition: a field's extensions no longer name its strawberry definition")
    holds(strawberry_fence.reads_attribute(item.fields["name"]) and not strawberry_fence.reads_attribute(item.fields["shout"]),
          *STRAWBERRY, "reads_attribute: the default resolver is no longer marked")


def test_strawberry_executes_with_the_context_the_service_extends() -> None:
    holds(_SCHEMA.execution_context_class is strawberry_fence.CoreExecutionContext, *STRAWBERRY,
          "CoreExecutionContext is no longer strawberry's default execution context")
    holds(issubclass(strawberry_fence.CoreExecutionContext, graphql.Executor), *STRAWBERRY,
          "CoreExecutionContext is no longer a graphql-core Executor")


def test_strawberry_validates_a_document_against_rules() -> None:
    errors = strawberry_fence.validate_document(
        strawberry_fence.graphql_schema(_SCHEMA), graphql.parse("{ nothing }"), tuple(graphql.specified_rules)
    )
    holds(len(errors) == 1 and isinstance(errors[0], graphql.GraphQLError), *STRAWBERRY,
          f"validate_document(schema, document, rules) gave {errors}")


def test_strawberry_runs_extensions_through_a_runner_a_schema_creates() -> None:
    runner = strawberry_fence.SchemaExtensionsRunner
    takes(runner, {"__init__": ("execution_context", "extensions"), "on_stream_result": ("result",),
                   "get_extensions_results": ("ctx",)}, *STRAWBERRY)
    keeps(runner, ["extensions"], "strawberry", *STRAWBERRY)
    takes(strawberry.Schema, {"create_extensions_runner": ("execution_context", "extensions"),
                              "stream": ("query",), "subscribe": ("query",)}, *STRAWBERRY)
    holds("allowed_operation_types" in parameters(strawberry.Schema.execute), *STRAWBERRY,
          "Schema.execute takes no allowed_operation_types")
    error = strawberry_fence.InvalidOperationTypeError(strawberry_fence.OperationType.SUBSCRIPTION)
    holds(error.operation_type is strawberry_fence.OperationType.SUBSCRIPTION and error.as_http_error_reason("POST"),
          *STRAWBERRY, "InvalidOperationTypeError no longer carries its operation_type and HTTP reason")
    refused = strawberry_fence.PreExecutionError(data=None, errors=[graphql.GraphQLError("no")])
    holds(refused.errors[0].message == "no", *STRAWBERRY, "PreExecutionError(data, errors) changed")


def test_strawberry_views_read_requests_through_the_hooks_the_view_overrides() -> None:
    takes(GraphQL, {"parse_http_body": ("request",), "parse_multipart": ("request",), "parse_json": ("data",),
                    "run": ("request",), "encode_json": ("data",), "decode_json": ("data",)}, *STRAWBERRY)
    adapter = strawberry_fence.AsyncHTTPRequestAdapter
    for name in ("content_type", "method", "get_form_data"):
        holds(hasattr(adapter, name), *STRAWBERRY, f"cross_web's AsyncHTTPRequestAdapter has no {name}")
    refusal = strawberry_fence.HTTPException(400, "bad")
    holds((refusal.status_code, refusal.reason) == (400, "bad"), *STRAWBERRY, "cross_web's HTTPException changed")
    holds(strawberry_fence.parse_content_type("multipart/form-data; boundary=x")[0] == "multipart/form-data",
          *STRAWBERRY, "parse_content_type no longer gives the media type first")


def test_strawberry_websocket_handlers_have_what_the_service_overrides() -> None:
    transport, legacy = strawberry_fence.BaseGraphQLTransportWSHandler, strawberry_fence.BaseGraphQLWSHandler
    takes(transport, {"handle_message": ("message",), "handle_invalid_message": ("error_message",)}, *STRAWBERRY)
    takes(legacy, {"handle": (), "handle_message": ("message",), "handle_connection_init": ("message",),
                   "handle_start": ("message",), "send_message": ("message",), "handle_keep_alive": (),
                   "cleanup": ()}, *STRAWBERRY)
    keeps(legacy, ["websocket", "view", "context", "keep_alive", "keep_alive_task", "connection_acknowledged", "tasks"],
          "strawberry", *STRAWBERRY)
    for error in (strawberry_fence.NonJsonMessageReceived, strawberry_fence.NonTextMessageReceived,
                  strawberry_fence.WebSocketDisconnected):
        holds(issubclass(error, Exception), *STRAWBERRY, f"{error.__name__} is no longer an exception")
    own_names_free(LegacyWSHandler, legacy, "strawberry", *STRAWBERRY)
    own_names_free(TransportWSHandler, transport, "strawberry", *STRAWBERRY)


def test_strawberry_describes_selected_fields_with_these_types() -> None:
    keeps(strawberry_fence.SelectedField, ["name", "selections"], "strawberry", *STRAWBERRY)
    members = [getattr(a, "__forward_arg__", getattr(a, "__name__", None)) for a in get_args(strawberry_fence.Selection)]
    holds("SelectedField" in members, *STRAWBERRY, f"Selection is {members}, without SelectedField")


# graphql-core

GRAPHQL_CORE = (graphql_core.LIBRARY, fence_name(graphql_core))


def test_graphql_core_executes_fields_through_the_steps_the_service_overrides() -> None:
    takes(graphql.Executor, graphql_core.OVERRIDDEN, *GRAPHQL_CORE)
    keeps(graphql.Executor, graphql_core.EXECUTOR_STATE, "graphql", *GRAPHQL_CORE)
    from graphql.execution.collect_fields import CollectedFields, FieldDetails

    holds(CollectedFields._fields[:2] == ("grouped_field_set", "new_defer_usages"), *GRAPHQL_CORE,
          f"collect_subfields gives {CollectedFields._fields}, not (grouped fields, defer usages, ...)")
    holds("node" in FieldDetails._fields, *GRAPHQL_CORE, "a FieldDetailsList's items have no node")
    holds("coerced" in graphql.execution.values.VariableValues._fields, *GRAPHQL_CORE, "variable values have no coerced")


# uvicorn

UVICORN = (uvicorn.LIBRARY, fence_name(uvicorn))


def test_uvicorn_http_protocol_has_the_hooks_and_state_heads_uses() -> None:
    takes(uvicorn.HttpToolsProtocol, uvicorn.HTTP_OVERRIDDEN, *UVICORN)
    keeps(uvicorn.HttpToolsProtocol, uvicorn.HTTP_STATE, "uvicorn", *UVICORN)
    keeps(uvicorn.RequestResponseCycle, uvicorn.CYCLE_STATE, "uvicorn", *UVICORN)
    keeps(FlowControl, ["read_paused", "resume_reading"], "uvicorn", *UVICORN)
    own_names_free(HttpProtocol, uvicorn.HttpToolsProtocol, "uvicorn", *UVICORN)


def test_uvicorn_websocket_protocol_has_the_hooks_and_state_websocket_uses() -> None:
    takes(uvicorn.WebSocketsSansIOProtocol, uvicorn.WS_OVERRIDDEN, *UVICORN)
    keeps(uvicorn.WebSocketsSansIOProtocol, uvicorn.WS_STATE, "uvicorn", *UVICORN)
    own_names_free(WebSocketProtocol, uvicorn.WebSocketsSansIOProtocol, "uvicorn", *UVICORN)


# tortoise-orm

TORTOISE = (tortoise.LIBRARY, fence_name(tortoise))


async def test_tortoise_builds_a_saved_model_from_a_row_as_its_own_queries_do(world: Any) -> None:
    db = tortoise.connection(Tenant)
    (row,) = await db.execute_query_dict(f"SELECT * FROM {tortoise.table_name(Tenant)} WHERE id = {world.tenant.pk}")
    built, fetched = tortoise.from_row(Tenant, row), await Tenant.get(pk=world.tenant.pk)
    same = {c: (getattr(built, c), getattr(fetched, c)) for c in tortoise.column_names(Tenant)}
    holds(all(a == b for a, b in same.values()), *TORTOISE, f"from_row: _init_from_db built {same}")
    holds(built._saved_in_db, *TORTOISE, "from_row: _init_from_db no longer marks the instance saved")


def test_tortoise_describes_a_model_through_its_meta() -> None:
    holds(tortoise.table_name(Tenant) == "tenant" and tortoise.pk_column(Tenant) == "id", *TORTOISE,
          "Model._meta.db_table or db_pk_column changed")
    holds({"id", "name"} <= set(tortoise.column_names(Tenant)), *TORTOISE, "Model._meta.db_fields changed")
    data = tortoise.model_field(EventRecord, "data")
    holds(callable(data.to_db_value) and hasattr(data, "source_field"), *TORTOISE, "Model._meta.fields_map changed")
    holds(hasattr(tortoise.connection(Tenant), "execute_query_dict"), *TORTOISE, "Model._meta.db is no connection")


def test_tortoise_init_has_a_global_fallback() -> None:
    holds("_enable_global_fallback" in parameters(Tortoise.init), *TORTOISE,
          "init_with_global_fallback: Tortoise.init takes no _enable_global_fallback")


def test_tortoise_asyncpg_transactions_have_what_the_service_client_replaces() -> None:
    where = (tortoise.LIBRARY, ASYNCPG_CLIENT)
    holds(callable(getattr(AsyncpgDBClient, "_in_transaction", None)), *where, "AsyncpgDBClient._in_transaction is gone")
    keeps(AsyncpgDBClient, ["_pool_init_lock", "_pool"], "tortoise", *where)
    keeps(TransactionWrapper, ["_connection", "_parent", "_finalized", "begin", "commit", "rollback"], "tortoise", *where)
    keeps(TransactionContextPooled, ["client", "connection_name", "token", "ensure_connection"], "tortoise", *where)
    takes(TransactionContextPooled, {"__init__": ("client", "pool_init_lock")}, *where)


# Versions: what pyproject.toml admits

FENCES = (strawberry_fence, graphql_core, uvicorn, tortoise)
_PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DECLARED = {canonicalize_name(Requirement(r).name): Requirement(r) for r in _PROJECT["dependencies"]}


def test_the_declared_bounds_admit_the_installed_versions() -> None:
    refused = {name: version(name) for name, req in DECLARED.items() if not req.specifier.contains(version(name))}
    assert not refused, f"pyproject.toml refuses what is installed: {refused}"


@pytest.mark.parametrize("fence", FENCES, ids=lambda f: f.LIBRARY)
def test_a_fenced_library_is_admitted_only_in_the_minor_version_checked(fence: ModuleType) -> None:
    installed, specifier = Version(version(fence.LIBRARY)), DECLARED[fence.LIBRARY].specifier
    major, minor = map(int, fence.CHECKED.split("."))
    assert (installed.major, installed.minor) == (major, minor), (
        f"{fence.LIBRARY} {installed} is installed, but {fence_name(fence)} was checked against {fence.CHECKED}: "
        "read its internals again, then update CHECKED and pyproject.toml"
    )
    assert not specifier.contains(f"{major}.{minor + 1}.0") and not specifier.contains(f"{major + 1}.0.0"), (
        f"pyproject.toml admits {fence.LIBRARY} past {fence.CHECKED}, which {fence_name(fence)} was not checked against"
    )


def _imported_top_levels() -> set[str]:
    names = set()
    for path in [*ROOT.glob("graph/**/*.py"), *ROOT.glob("models/**/*.py"), *ROOT.glob("jobs/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    # Under mutmut (tests/mutation.py) the tree is its copy, whose mutated modules import mutmut.
    tool = {"mutmut"} if "MUTANT_UNDER_TEST" in os.environ else set()
    return names - set(sys.stdlib_module_names) - {"graph", "models", "jobs"} - tool


def test_every_library_the_code_imports_is_declared() -> None:
    distributions = packages_distributions()
    undeclared = {name: distributions.get(name) for name in _imported_top_levels()
                  if not any(canonicalize_name(d) in DECLARED for d in distributions.get(name, []))}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
