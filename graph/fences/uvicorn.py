"""uvicorn internals: the protocol classes `udt serve` runs, subclassed.

Checked against uvicorn 0.54.0 (CHECKED: the minor version; pyproject.toml admits no other), with
httptools 0.9 and websockets 17.4 under them. uvicorn takes a protocol class (`http=`, `ws=`)
but documents neither the classes' methods nor their state. Its options cannot bound a request's
head in size and time, answer what httptools cannot parse in the service's JSON error shape
(graph/server/heads.py), join a turn's WebSocket writes, or frame a batch of messages
(graph/live/websocket.py): those need the protocols' own hooks and state.

`HTTP_OVERRIDDEN` and `WS_OVERRIDDEN` list each method overridden with its parameters,
`HTTP_STATE`, `CYCLE_STATE` and `WS_STATE` the attributes read or set: tests/test_fences.py
checks them all.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

LIBRARY = "uvicorn"
CHECKED = "0.54"

__all__ = ["HttpToolsProtocol", "RequestResponseCycle", "WebSocketsSansIOProtocol"]

# Method -> its parameters (after self).
HTTP_OVERRIDDEN: dict[str, tuple[str, ...]] = {
    "connection_made": ("transport",),
    "connection_lost": ("exc",),
    "data_received": ("data",),
    "on_headers_complete": (),
    "on_message_complete": (),
    "on_response_complete": (),
    "send_400_response": ("msg",),
}
HTTP_STATE = ("loop", "transport", "cycle", "flow", "logger")  # flow: read_paused, resume_reading()
CYCLE_STATE = ("response_complete", "response_started", "disconnected", "message_event")
WS_OVERRIDDEN: dict[str, tuple[str, ...]] = {
    "connection_made": ("transport",),
    "handle_connect": ("event",),
    "send": ("message",),
}
# response and scope are set by handle_connect; conn is websockets' ServerProtocol (its `state`).
WS_STATE = ("transport", "response", "scope", "writable", "handshake_complete", "close_sent", "disconnected",
            "initial_response", "conn")
