"""DownloadLink: a short-lived link to a CSV file, for a plain `<a href download>` in a browser."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graph.auth import links


@strawberry.type(
    description="A link to one CSV file for you, that a browser opens without an Authorization header. "
    "Ask for it when the file is wanted: it expires within minutes, and the file is written when it is "
    "opened, with your scope as it is then."
)
class DownloadLink:
    url: str = strawberry.field(
        description="Absolute path with its signature; works without an Authorization header until expiresAt."
    )
    expires_at: datetime = strawberry.field(description="After this the link answers 410: ask for a new one.")

    @classmethod
    def of(cls, download: links.Download) -> DownloadLink:
        link = links.make(download)
        return cls(url=link.url, expires_at=link.expires_at)
