"""graphql-core internals: the executor's per-field steps, which graph/execution overrides.

Checked against graphql-core 3.3.2 (CHECKED: the minor version; pyproject.toml admits no other).
`graphql.Executor` and `execution_context_class` are public, but the methods an executor runs per
field are not documented (`collect_subfields` is marked private), nor are the types of the field
groups they take (`graphql.execution.collect_fields`). The public API has no hook between
"resolve a field" and "complete its value", which is where graph/execution/plain_fields.py
completes plain fields without graphql-core's per-field machinery, and graph/execution/shared_events.py
reuses a subscription event's result.

`OVERRIDDEN` lists each method overridden or called there with its parameters, and
`EXECUTOR_STATE` the executor's attributes read: tests/test_fences.py checks both.
"""

from __future__ import annotations

from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet

LIBRARY = "graphql-core"
CHECKED = "3.3"

__all__ = ["EXECUTOR_STATE", "OVERRIDDEN", "FieldDetailsList", "GroupedFieldSet"]

# Executor method -> its parameters (after self), as the overrides and calls pass them.
OVERRIDDEN: dict[str, tuple[str, ...]] = {
    "execute_fields": ("parent_type", "source_value", "path", "grouped_field_set", "position_context"),
    "complete_value": ("return_type", "field_details_list", "info", "path", "result", "position_context"),
    "collect_subfields": ("return_type", "field_details_list"),  # -> (grouped fields, defer usages, ...)
    "build_per_event_executor": ("payload",),
    "execute_operation": ("serially",),
}
# Attributes of an executor that the overrides read.
EXECUTOR_STATE = ("middleware_manager", "is_awaitable", "operation", "fragment_definitions", "variable_values", "root_value")
