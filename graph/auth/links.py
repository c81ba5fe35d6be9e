"""Download links: a path that opens one file for one operator until it expires, with no header.

A plain link (`<a href download>`) cannot carry an Authorization header, so the path itself says
who asked, for which file, and until when, signed with HMAC-SHA256 (itsdangerous) under the
deployment's UDT_SECRET_KEY. It holds no token and nothing secret: the operator's row ID, the file
and the expiry, readable but not forgeable. Whether the operator may still have the file is
decided when the link is used (graph/server/downloads.py), not here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from models import clock, settings

PREFIX = "/downloads/"
# Keeps these signatures apart from any other use of the same key.
SALT = "udt.download-link"
# A link this module signs is under 200 characters: anything longer is refused unread.
MAX_CHARS = 512

PEOPLE = "people"
AUDIT_FAILED = "audit-failed"
AUDIT_ALL = "audit-all"
FILES = (PEOPLE, AUDIT_FAILED, AUDIT_ALL)


@dataclass(frozen=True)
class Download:
    """What a link opens: one operator's copy of one file."""

    operator_pk: int
    file: str  # one of FILES
    transfer_pk: int | None = None  # the audit logs' transfer


@dataclass(frozen=True)
class Link:
    url: str
    expires_at: datetime


class Refused(Exception):
    """The link opens nothing (tampered, unknown, signed by a key no longer listed)."""


class Expired(Refused):
    """A link this service signed, whose time is up."""


def _serializer() -> URLSafeSerializer:
    # itsdangerous takes its keys oldest first and signs with the last; UDT_SECRET_KEY lists them newest first.
    keys = list(reversed(settings.SECRET_KEYS))
    return URLSafeSerializer(keys, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})


def make(download: Download, now: datetime | None = None) -> Link:
    """A link to `download` that works for UDT_DOWNLOAD_LINK_SECONDS from `now`."""
    if not settings.SECRET_KEYS:
        raise RuntimeError("UDT_SECRET_KEY is not set: download links cannot be signed")
    if download.file not in FILES or (download.transfer_pk is None) != (download.file == PEOPLE):
        raise ValueError(f"not a file a link opens: {download}")
    expires = int((now or clock.now()).timestamp()) + settings.DOWNLOAD_LINK_SECONDS
    payload: dict[str, Any] = {"op": download.operator_pk, "file": download.file, "exp": expires}
    if download.transfer_pk is not None:
        payload["transfer"] = download.transfer_pk
    signed = _serializer().dumps(payload)
    return Link(url=PREFIX + signed, expires_at=datetime.fromtimestamp(expires, timezone.utc))


def _is_int(value: object) -> bool:
    return type(value) is int  # not a bool


def read(signed: str, now: datetime | None = None) -> Download:
    """What the link `signed` (the path after PREFIX) opens; Refused, or Expired once its time is up."""
    if not settings.SECRET_KEYS or len(signed) > MAX_CHARS:
        raise Refused("no key, or longer than any link signed here")
    try:
        payload = _serializer().loads(signed)
    except BadData:
        raise Refused("bad signature or payload") from None
    if not isinstance(payload, dict) or payload.get("file") not in FILES:
        raise Refused("not a download link")
    wants_transfer = payload["file"] != PEOPLE
    if set(payload) != {"op", "file", "exp", *(["transfer"] if wants_transfer else [])}:
        raise Refused("not a download link")
    if not all(_is_int(payload[key]) for key in payload if key != "file"):
        raise Refused("not a download link")
    if (now or clock.now()).timestamp() >= payload["exp"]:
        raise Expired("expired")
    return Download(operator_pk=payload["op"], file=payload["file"], transfer_pk=payload.get("transfer"))
