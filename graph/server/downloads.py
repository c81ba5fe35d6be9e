"""CSV downloads: the people file and a transfer's audit log.

Same bearer token and tenant scoping as GraphQL, and the same JSON error shape
when refused. Both stream: rows are read from the database a page at a time,
so memory does not grow with the tenant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from graph.api.transfers import find_transfer
from graph.core.context import operator_from_connection
from graph.server import refusals
from models import csv_exports
from models.tenancy import User


async def _operator(request: Request) -> User | Response:
    operator = await operator_from_connection(request)
    if operator is None:
        return refusals.unauthenticated()
    if not operator.may_transfer:
        return refusals.forbidden()
    return operator


def _csv(chunks: AsyncIterator[str], filename: str) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def people(request: Request) -> Response:
    operator = await _operator(request)
    if isinstance(operator, Response):
        return operator
    return _csv(csv_exports.people_csv(operator), "people.csv")


async def audit_log(request: Request) -> Response:
    operator = await _operator(request)
    if isinstance(operator, Response):
        return operator
    transfer = await find_transfer(operator, request.path_params["transfer_id"])
    if transfer is None:
        return refusals.error_response(404, "There is no transfer with this ID that you can see.", "NOT_FOUND")
    every_pair = request.query_params.get("all") in ("1", "true", "yes")
    name = f"transfer-{transfer.id}-{'all' if every_pair else 'failed'}.csv"
    return _csv(csv_exports.audit_csv(operator, transfer, every_pair=every_pair), name)


routes = [
    Route("/exports/people.csv", people),
    Route("/transfers/{transfer_id}/audit.csv", audit_log),
]
