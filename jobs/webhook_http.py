"""One webhook attempt over HTTP: signed, sent to the address that was checked, never redirected.

The URL is checked (models/webhook_urls.py) and the request goes to the address
the check answered, not to the host name: httpx connects to that address, sends
the URL's host in `Host` and as TLS's SNI (httpcore's `sni_hostname` request
extension, which the certificate is verified against), so a DNS answer that
changes after the check cannot send it elsewhere. A new client per attempt: a
pooled connection would carry one host's TLS session to another host that
shares its address. Proxies from the environment are not used (trust_env off).
"""

from __future__ import annotations

import asyncio
import email.utils
from datetime import datetime, timedelta, timezone

import httpx

from models import webhook_secrets
from models.clock import now
from models.webhook_deliveries import MAX_RETRY_AFTER, Claim, Outcome, delivery_id
from models.webhook_urls import Guard, Refused, Target

USER_AGENT = "udt-webhooks/1"


def _connect_url(target: Target) -> str:
    host = f"[{target.address}]" if ":" in target.address else target.address
    return f"{target.scheme}://{host}:{target.port}{target.path}"


def retry_after(value: str | None, at: datetime) -> timedelta | None:
    """A Retry-After header (seconds, or an HTTP date) as a wait, at most MAX_RETRY_AFTER;
    None when absent or unreadable."""
    if not value:
        return None
    seconds = value.strip()
    if seconds.isascii() and seconds.isdigit():
        # However many digits (nine are already years): a wait longer than a day is a day.
        return MAX_RETRY_AFTER if len(seconds) > 9 else min(timedelta(seconds=int(seconds)), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(when - at, timedelta(0))


async def attempt(held: Claim, guard: Guard, timeout: float) -> Outcome:
    """Check the URL, sign, send; the outcome, whatever happens (a 2xx is the only success)."""
    try:
        target = await guard.check(held.url)
    except Refused as refused:
        return Outcome(error=f"Refused: {refused}")
    at = now()
    msg_id = delivery_id(held.delivery.id)
    headers = {
        "Host": target.netloc,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": webhook_secrets.signature(held.secrets, msg_id, at, held.delivery.body),
    }
    extensions = {} if target.literal or target.scheme != "https" else {"sni_hostname": target.host}
    try:
        async with asyncio.timeout(timeout):
            async with (
                httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
                # The status and headers are all an attempt needs: a receiver's body is never read,
                # so a huge or endless one costs nothing.
                client.stream(
                    "POST", _connect_url(target), content=held.delivery.body.encode(), headers=headers, extensions=extensions
                ) as response,
            ):
                pass
    except TimeoutError:
        return Outcome(error=f"No answer within {timeout:g} s from {target.address}.")
    except httpx.HTTPError as exc:
        return Outcome(error=f"{exc.__class__.__name__} at {target.address}: {exc}"[:500])
    later = retry_after(response.headers.get("retry-after"), now())
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    if response.is_redirect:
        error = f"HTTP {response.status_code}: redirects are not followed"
    return Outcome(status=response.status_code, error=error, retry_after=later)
