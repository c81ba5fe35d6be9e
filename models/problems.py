"""A problem: why a request, a pair or a row is refused, as callers see it.

Its own module, free of the database, so that the process reading an upload
(models/upload_reader.py) can build problems without loading the ORM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Which part of the request a problem is about: a side of the pair, the idempotency key,
# the data types chosen, or a webhook endpoint's URL or events.
Role = Literal["source", "target", "key", "types", "url", "events"]


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    role: Role | None = None  # which side of the pair the problem is about
