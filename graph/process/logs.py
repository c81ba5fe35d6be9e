"""Logging: one line per event, plain text or JSON, carrying the IDs that tie lines together.

The code logs through stdlib `logging`; structlog's ProcessorFormatter renders
every record (uvicorn's and arq's too) with what is bound to the current
context: the request ID (asgi-correlation-id's, from `X-Request-ID`), the
operator and tenant of a request (graph/core/context.py), the transfer, upload and
item a worker is on (jobs/transfer.py). So `grep transfer_id=42` (text) or
`jq 'select(.transfer_id == 42)'` (JSON) follows a transfer across the API and
every worker.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from asgi_correlation_id import correlation_id

from graph.auth import links
from models import settings

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's X-Request-ID is kept when it looks like an ID (a UUID, a trace ID, ...);
# anything else is replaced by a fresh one, so no free text reaches the log this way.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def acceptable_request_id(value: str) -> bool:
    return _REQUEST_ID.fullmatch(value) is not None


def masked(url: str) -> str:
    """A connection URL fit to print: its password, if any, replaced by ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}"))


def _add_request_id(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    found = correlation_id.get()
    if found:
        event.setdefault("request_id", found)
    return event


def _drop_terminal_colours(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    event.pop("color_message", None)  # uvicorn's copy of its message with ANSI colours
    return event


class _NoDownloadLinks(logging.Filter):
    """A download link opens its file for whoever holds it until it expires: uvicorn's access
    log notes that one was opened, never the link itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) > 2:
            if isinstance(args[2], str) and args[2].startswith(links.PREFIX):
                record.args = (*args[:2], links.PREFIX + "...", *args[3:])
        return True


def configure(fmt: str | None = None, level: str | None = None) -> None:
    """Send every logger's records to stderr, one line each, as `fmt` says. Call once, at start."""
    fmt = fmt or settings.LOG_FORMAT
    level = level or settings.LOG_LEVEL
    shared = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_terminal_colours,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks are plain in both formats: a "pretty" one (Rich's, when it is installed)
    # prints each frame's local variables, and those hold bearer tokens and connection passwords.
    if fmt == "json":
        render = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        render = [structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)]
    handler = logging.StreamHandler()
    handler.addFilter(_NoDownloadLinks())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    # httpx logs each request's URL at INFO: a webhook URL may carry its receiver's secret.
    logging.getLogger("httpx").setLevel(logging.WARNING)
