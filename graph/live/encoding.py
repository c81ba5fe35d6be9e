"""Subscription messages whose data is JSON already: written out around it, not encoded again.

A shared event's data (graph/execution/shared_events.py) is encoded once, as EncodedData; the
`next` (graphql-ws: `data`) message that carries it is its subscription's head and that text.
A batch's data (EncodedBatch) becomes `Messages`, one such message per event, which the
WebSocket sends as one frame each (graph/live/websocket.py).
"""

from __future__ import annotations

import functools
import json

from graph.live.websocket import Messages

_ENCODE = {"separators": (",", ":")}  # as strawberry encodes


class EncodedData(dict):
    """A result's data with its JSON text, made once for all who send it; `body` is the rest
    of a message that carries it, after the subscription's `_head`, as UTF-8."""

    def __init__(self, data: dict) -> None:
        super().__init__(data)
        self.json = json.dumps(data, **_ENCODE)
        self.body = f"{self.json}}}}}".encode()


class EncodedBatch(list):
    """A batch's data: the EncodedData of each event it holds, in order."""


_MESSAGE = {"id", "type", "payload"}


def encoded_message(message: object) -> str | None:
    """The JSON text of a `next` (graphql-ws: `data`) message carrying a shared result, or None;
    for a batch's result, `Messages` holding one such message per event."""
    if not (isinstance(message, dict) and message.keys() == _MESSAGE and message["type"] in ("next", "data")):
        return None
    payload = message["payload"]
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, EncodedBatch):
        if len(payload) != 1:  # it would go out as one wrong message, its events counted as sent
            raise RuntimeError("a batch of events must be alone in its payload")
        return Messages(_head(message["id"], message["type"]).encode(), [each.body for each in data])
    if isinstance(data, EncodedData) and len(payload) == 1:
        return f'{_head(message["id"], message["type"])}{data.json}}}}}'
    return None


@functools.lru_cache(maxsize=4096)
def _head(operation_id: str, kind: str) -> str:
    """A message's text up to its data: the same for each event of one subscription."""
    return f'{{"id":{json.dumps(operation_id)},"type":"{kind}","payload":{{"data":'
