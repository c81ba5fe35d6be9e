"""The one spelling of a global ID, which the API shows and a webhook's body carries."""

from __future__ import annotations

import base64


def to_global_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode()
