"""Query limits, checked before any expensive work, in time linear in the document.

Before parsing, one pass over the lexer's tokens bounds the size, the token count and
the bracket nesting (graphql-core's parser recurses once per bracket). After parsing,
each fragment definition is measured once (depth, aliases, fragment spreads, cost, uploads) and
a spread adds its fragment's figures, so a fragment spread a million times over costs
no more to check than one spread once. graphql-core's own validation then runs only on
documents within these limits. (strawberry's QueryDepthLimiter and MaxAliasesLimiter
walk every spread again: exponential in nested fragments.)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    Lexer,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Source,
    TokenKind,
    VariableNode,
    get_named_type,
)
from graphql.error import GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from graph.core.errors import ClientError
from graph.core.relay import page_size
from graph.fences.strawberry import graphql_schema

MAX_QUERY_CHARS = 20_000
# graphql-core's OverlappingFieldsCanBeMerged is quadratic in same-named fields: at 1,000
# tokens its worst case stays near 0.2 s (5,000 allowed 0.9 s). Introspection needs 183.
MAX_TOKENS = 1_000
MAX_NESTING = 40  # brackets { [ ( inside one another
MAX_NUMBER_CHARS = 50  # a number literal; Python refuses ints past 4,300 digits with internal text
MAX_DEPTH = 15  # fields inside one another; GraphiQL's introspection query needs 15
MAX_ALIASES = 30  # after fragments are expanded
MAX_FRAGMENT_SPREADS = 100  # after fragments are expanded
MAX_COST = 20_000  # 1 a field; a connection's selections count once per row of its page
# Each uploadBulkTransferFile parses its file in a child process and stores an upload:
# one a document, however its file parts are mapped or its fields aliased.
UPLOAD_FIELD = "uploadBulkTransferFile"
MAX_UPLOADS = 1

_OPENERS = {TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L}
_CLOSERS = {TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R}


def refused(code: str, message: str, limit: int) -> ClientError:
    return ClientError(code, message, limit=limit)


def check_text(query: str) -> None:
    """Raise a ClientError when the raw document is too large or too nested to parse."""
    if len(query) > MAX_QUERY_CHARS:
        raise refused("QUERY_TOO_LARGE", f"The query is longer than {MAX_QUERY_CHARS} characters.", MAX_QUERY_CHARS)
    lexer = Lexer(Source(query))
    tokens = nesting = 0
    try:
        token = lexer.advance()
        while token.kind is not TokenKind.EOF:
            tokens += 1
            if tokens > MAX_TOKENS:
                raise refused("QUERY_TOO_LARGE", f"The query has more than {MAX_TOKENS} tokens.", MAX_TOKENS)
            if token.kind in _OPENERS:
                nesting += 1
                if nesting > MAX_NESTING:
                    raise refused("QUERY_TOO_DEEP", f"The query nests more than {MAX_NESTING} brackets.", MAX_NESTING)
            elif token.kind in _CLOSERS:
                nesting -= 1
            elif token.kind in (TokenKind.INT, TokenKind.FLOAT) and len(token.value or "") > MAX_NUMBER_CHARS:
                raise ClientError(
                    "GRAPHQL_VALIDATION_FAILED", f"A number in the query is longer than {MAX_NUMBER_CHARS} characters."
                )
            token = lexer.advance()
    except GraphQLSyntaxError:
        return  # the parser reports it, with its location


@dataclass(frozen=True)
class Measure:
    """What a selection set costs once fragments are expanded."""

    depth: int = 0
    aliases: int = 0
    spreads: int = 0
    cost: int = 0
    uploads: int = 0


NOTHING = Measure()


class _Meter:
    def __init__(self, schema: GraphQLSchema, variables: Mapping[str, Any]) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments: dict[str, Measure] = {}

    def page_rows(self, field: FieldNode, takes_first: bool) -> int:
        """Rows a connection field returns at most: its `first`, clamped as the resolvers clamp it."""
        if not takes_first:
            return 1
        arg = next((a for a in field.arguments or () if a.name.value == "first"), None)
        value = arg.value if arg else None
        if isinstance(value, IntValueNode):
            return page_size(int(value.value))
        if isinstance(value, VariableNode):
            given = self.variables.get(value.name.value)
            return page_size(given if isinstance(given, int) else 10**9)  # unknown: the largest page
        return page_size(None)

    def measure(self, selection_set: SelectionSetNode | None, parent: Any) -> Measure:
        """Recursion is bounded by MAX_NESTING, checked before parsing."""
        if selection_set is None:
            return NOTHING
        depth = aliases = spreads = cost = uploads = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                definition = getattr(parent, "fields", {}).get(node.name.value)
                child_type = get_named_type(definition.type) if definition else None
                child = self.measure(node.selection_set, child_type)
                rows = self.page_rows(node, definition is not None and "first" in definition.args)
                depth = max(depth, 1 + child.depth)
                aliases += (node.alias is not None) + child.aliases
                spreads += child.spreads
                cost += 1 + rows * child.cost
                uploads += node.name.value == UPLOAD_FIELD  # a field of Mutation: never nested in another
            else:
                if isinstance(node, InlineFragmentNode):
                    condition = node.type_condition
                    inner = self.measure(node.selection_set, self.schema.get_type(condition.name.value) if condition else parent)
                    extra = 0
                else:
                    assert isinstance(node, FragmentSpreadNode)
                    inner = self.fragments.get(node.name.value, NOTHING)  # unknown or cyclic: validation says so
                    extra = 1
                depth = max(depth, inner.depth)
                aliases += inner.aliases
                spreads += extra + inner.spreads
                cost += inner.cost
                uploads += inner.uploads
        return Measure(depth, aliases, spreads, cost, uploads)


def _spread_names(selection_set: SelectionSetNode) -> Iterator[str]:
    stack = [selection_set]
    while stack:
        for node in stack.pop().selections:
            if isinstance(node, FragmentSpreadNode):
                yield node.name.value
            elif node.selection_set is not None:
                stack.append(node.selection_set)


def _dependency_order(fragments: dict[str, FragmentDefinitionNode]) -> list[str]:
    """Fragment names, each after the fragments it spreads (iterative: chains may be long)."""
    order: list[str] = []
    seen: set[str] = set()  # being visited or done: a cycle is never followed twice
    for root in fragments:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(_spread_names(fragments[root].selection_set)))]
        while stack:
            name, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                stack.pop()
                order.append(name)
            elif child in fragments and child not in seen:
                seen.add(child)
                stack.append((child, iter(_spread_names(fragments[child].selection_set))))
    return order


def check_document(document: DocumentNode, schema: GraphQLSchema, variables: Mapping[str, Any] | None) -> None:
    """Raise a ClientError when any operation of the document exceeds a limit."""
    meter = _Meter(schema, variables or {})
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments.setdefault(definition.name.value, definition)
    for name in _dependency_order(fragments):
        fragment = fragments[name]
        meter.fragments[name] = meter.measure(fragment.selection_set, schema.get_type(fragment.type_condition.name.value))
    roots = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            _enforce(meter.measure(definition.selection_set, roots.get(definition.operation)))


def _enforce(found: Measure) -> None:
    if found.depth > MAX_DEPTH:
        raise refused("QUERY_TOO_DEEP", f"The query nests fields more than {MAX_DEPTH} deep.", MAX_DEPTH)
    if found.aliases > MAX_ALIASES:
        raise refused("TOO_MANY_ALIASES", f"The query uses more than {MAX_ALIASES} aliases.", MAX_ALIASES)
    if found.spreads > MAX_FRAGMENT_SPREADS:
        raise refused(
            "TOO_MANY_FRAGMENTS",
            f"The query spreads fragments more than {MAX_FRAGMENT_SPREADS} times once they are expanded.",
            MAX_FRAGMENT_SPREADS,
        )
    if found.cost > MAX_COST:
        raise refused(
            "QUERY_TOO_COMPLEX",
            f"The query could select more than {MAX_COST} fields (a connection's fields count once per row).",
            MAX_COST,
        )
    if found.uploads > MAX_UPLOADS:
        raise refused(
            "TOO_MANY_UPLOADS",
            f"The query selects {UPLOAD_FIELD} more than once: send each file in a request of its own.",
            MAX_UPLOADS,
        )


class QueryLimits(SchemaExtension):
    """Refuses a document over a limit before graphql-core parses or validates it."""

    def on_parse(self) -> Iterator[None]:
        if self.execution_context.query is not None:
            check_text(self.execution_context.query)  # raised: the operation ends with this error
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            try:
                check_document(context.graphql_document, graphql_schema(context.schema), context.variables)
            except GraphQLError as error:
                # strawberry skips its validation when an extension has set errors
                context.pre_execution_errors = [error]
        yield
