"""A subscription event's result, executed and encoded once, sent to every subscriber that asked the same.

An event that every subscriber shares (graph/live/fanout.py: `Published.shared`) keeps its
result per document and variables: the first subscriber executes it and encodes its JSON, the
others reuse both. Only where that cannot change what a subscriber sees: the selection under
the subscription's field reaches leaves only (scalars, enums, `__typename`), which the event
alone decides. `TransferEvent.transfer`, read through the subscriber's own view, is executed
per subscriber; so is a result with errors, and anything that is not a shared event (a
SNAPSHOT, events read from the database's record).

A subscriber woken for several shared events may yield them as one `EventBatch`: its result is
each event's shared result, and its message a `Messages` of one `next` each
(graph/live/encoding.py), so graphql-core's and strawberry's per-event work runs once per batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)

from graph.execution.plain_fields import PlainDataExecutionContext
from graph.live.encoding import EncodedBatch, EncodedData

def _fields(selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode], seen: set[str]) -> Iterator[FieldNode]:
    """The fields of a selection set, through its fragments."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments, seen)
        elif selection.name.value not in seen and selection.name.value in fragments:  # a fragment spread
            seen.add(selection.name.value)
            yield from _fields(fragments[selection.name.value].selection_set, fragments, seen)


def shareable(operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]) -> bool:
    """Whether a subscription's result on a shared event is the same for every subscriber who
    sends the same document and variables: its selection reaches leaves only."""
    if operation.operation is not OperationType.SUBSCRIPTION or operation.loc is None:
        return False
    for root in _fields(operation.selection_set, fragments, set()):
        if root.selection_set is None or any(f.selection_set for f in _fields(root.selection_set, fragments, set())):
            return False  # an object below the event: it may depend on who asks
    return True


class EventBatch:
    """Shared events a subscription yields together; `taken` says how many its result holds
    (all, unless one failed: that one and the rest are then yielded one by one).

    `items` carry each event's `shared` dict; `root_value(item)` makes the event a selection
    runs on, asked for only when no subscriber has run it yet."""

    __slots__ = ("items", "root_value", "taken")

    def __init__(self, items: Sequence[Any], root_value: Callable[[Any], Any]) -> None:
        self.items, self.root_value, self.taken = items, root_value, 0


class SharedEventExecutor(PlainDataExecutionContext):
    """Runs a subscription's selection once per shared event, document and variables."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared_key = self._key()  # the per-event executors are copies of this one

    def _key(self) -> tuple | None:
        operation = self.operation
        if not shareable(operation, self.fragment_definitions):
            return None
        variables = repr(sorted(self.variable_values.coerced.items()))  # @include/@skip may use them
        return operation.loc.source.body, operation.name.value if operation.name else None, variables  # type: ignore[union-attr]

    def build_per_event_executor(self, payload: Any) -> Any:
        """An event already executed for this document and variables needs no executor of its own."""
        if isinstance(payload, EventBatch):
            return _Executed(self._execute_batch(payload))
        shared = getattr(payload, "shared", None)
        if shared is not None and self.shared_key is not None and self.shared_key in shared:
            return shared[self.shared_key]
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> Any:
        shared = getattr(self.root_value, "shared", None)
        result = super().execute_operation(serially)
        if shared is None or self.shared_key is None:
            return result
        if not isinstance(result, ExecutionResult) or result.errors or result.data is None:
            return result  # awaitable or failed: this subscriber's alone
        executed = shared[self.shared_key] = _Executed(ExecutionResult(EncodedData(result.data)))
        return executed.result

    def _execute_batch(self, batch: EventBatch) -> ExecutionResult:
        """Each event's shared result, up to the first that is not one (it has errors, which
        strawberry must see to mask them): that one goes alone, as do the rest."""
        data, key = EncodedBatch(), self.shared_key
        for item in batch.items:
            executed = item.shared.get(key)
            try:
                result = executed.result if executed is not None else self.build_per_event_executor(batch.root_value(item)).execute_operation()
            except Exception:  # raised again when it goes alone, after those before it are sent
                break
            if not isinstance(result, ExecutionResult) or not isinstance(result.data, EncodedData):  # errors: not shared
                if inspect.iscoroutine(result):
                    result.close()  # never so for leaves; its event is executed again, alone
                break
            data.append(result.data)
        batch.taken = len(data)
        return ExecutionResult(data)


class _Executed:
    """Stands in for an event's executor (graphql-core asks it for the result, once per subscriber)."""

    __slots__ = ("result",)

    def __init__(self, result: ExecutionResult) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> ExecutionResult:
        return self.result
