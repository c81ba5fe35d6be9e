"""CSV downloads: the people file and a transfer's audit log.

Two ways in. The bearer routes take the same bearer token and tenant scoping as GraphQL.
A download link (/downloads/<signed>, graph/auth/links.py) takes no header: for a plain
`<a href download>` in a browser. Either way the file is written with the operator's scope
as it is now, refusals have the JSON error shape, and the file streams: rows are read from
the database a page at a time, so memory does not grow with the tenant.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import structlog
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from graph.api.transfers import find_transfer
from graph.auth import links
from graph.core.context import operator_from_connection
from graph.core.relay import to_global_id
from graph.server import refusals
from models import csv_exports
from models.tenancy import User

log = logging.getLogger(__name__)

# A link's answers, files and refusals alike: never cached (the path is the credential), the path
# never sent on as a Referer, and a file never sniffed into something a browser would run.
LINK_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
LINK_EXPIRED = "This download link has expired. Ask for a new one."
LINK_REFUSED = "This download link is not valid."


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


def _people_file(operator: User) -> Response:
    return _csv(csv_exports.people_csv(operator), "people.csv")


async def _audit_file(operator: User, transfer_id: str, every_pair: bool) -> Response:
    """The audit log of a transfer the operator can see now (its failed pairs, or every pair); else 404."""
    transfer = await find_transfer(operator, transfer_id)
    if transfer is None:
        return refusals.error_response(404, "There is no transfer with this ID that you can see.", "NOT_FOUND")
    name = f"transfer-{transfer.id}-{'all' if every_pair else 'failed'}.csv"
    return _csv(csv_exports.audit_csv(operator, transfer, every_pair=every_pair), name)


async def people(request: Request) -> Response:
    operator = await _operator(request)
    if isinstance(operator, Response):
        return operator
    return _people_file(operator)


async def audit_log(request: Request) -> Response:
    operator = await _operator(request)
    if isinstance(operator, Response):
        return operator
    every_pair = request.query_params.get("all") in ("1", "true", "yes")
    return await _audit_file(operator, request.path_params["transfer_id"], every_pair)


async def _link_operator(download: links.Download) -> User | None:
    """The link's operator, if they still exist, are active and may transfer."""
    operator = await User.get_or_none(id=download.operator_pk, active=True).select_related("tenant")
    if operator is None or not operator.may_transfer:
        return None
    structlog.contextvars.bind_contextvars(tenant=operator.tenant.slug, operator=operator.username)
    return operator


async def _opened(signed: str) -> Response:
    try:
        download = links.read(signed)
    except links.Expired:
        log.info("download link refused: expired")
        return refusals.error_response(410, LINK_EXPIRED, "LINK_EXPIRED")
    except links.Refused as exc:
        log.info("download link refused: %s", exc)
        return refusals.error_response(403, LINK_REFUSED, "FORBIDDEN")
    operator = await _link_operator(download)
    if operator is None:
        log.info("download link refused: its operator is gone, inactive, or may no longer transfer")
        return refusals.error_response(403, LINK_REFUSED, "FORBIDDEN")
    if download.file == links.PEOPLE:
        return _people_file(operator)
    transfer_id = to_global_id("Transfer", download.transfer_pk)
    return await _audit_file(operator, transfer_id, every_pair=download.file == links.AUDIT_ALL)


async def by_link(request: Request) -> Response:
    """GET /downloads/<signed>: the file a download link opens, with no Authorization header."""
    response = await _opened(request.path_params["signed"])
    response.headers.update(LINK_HEADERS)
    return response


routes = [
    Route("/exports/people.csv", people),
    Route("/transfers/{transfer_id}/audit.csv", audit_log),
    # `path`: whatever follows, slashes included, is a link, and refused alike when it is not one.
    Route(links.PREFIX + "{signed:path}", by_link),
]
