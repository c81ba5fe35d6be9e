"""Prometheus metrics: what the API and the workers count, and the backlog read at scrape time.

The metric objects live here so that the domain (models/) never sees them: the
thin layers (GraphQL extension, mutations, the lane job, the event publisher)
count what the domain returns. Each process has its own registry (the default
one) and serves it itself: the API on its own port at /metrics, a worker on
`UDT_METRICS_PORT` (one port per worker process; see README, *Operating it*).

Queue depth, the oldest pending pair and the webhooks pending are read when Prometheus scrapes (a
Collector), from Redis and the database, so they are right whichever process
changed them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from models import settings
from models.transfers import ACTIVE_STATUSES, Transfer
from models.webhooks import DeliveryStatus, WebhookDelivery

log = logging.getLogger(__name__)
disable_created_metrics()  # no `_created` twin of every counter: half the page, and Prometheus needs none

WORKER_DEFAULT_PORT = 9464  # when UDT_METRICS_PORT is unset
# A scrape waits at most this long for Redis and the database.
BACKLOG_TIMEOUT_SECONDS = 2.0

REQUESTS = Counter(
    "udt_graphql_requests", "GraphQL operations, by root field (or `multiple`, `other`) and outcome.",
    ["operation", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "udt_graphql_request_duration_seconds", "Time to answer a GraphQL query or mutation, by root field.", ["operation"]
)
TRANSFERS_STARTED = Counter("udt_transfers_started", "Transfers started, by kind.", ["kind"])
TRANSFERS_FINISHED = Counter("udt_transfers_finished", "Transfers that ended, by kind and status.", ["kind", "status"])
PAIRS_APPLIED = Counter("udt_pairs_applied", "Pairs applied (ITEM_SUCCEEDED).")
PAIRS_FAILED = Counter("udt_pairs_failed", "Pairs that failed (ITEM_FAILED), by error code.", ["error_code"])
PAIR_SECONDS = Histogram(
    "udt_pair_duration_seconds", "Time a worker took over one pair, retries included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
RECORDS_MOVED = Counter("udt_records_moved", "Records given to the target user, by data type.", ["data_type"])
RECORDS_DELETED = Counter("udt_records_deleted", "Target's records deleted (OVERWRITE types), by data type.", ["data_type"])
SUBSCRIPTIONS_OPEN = Gauge("udt_subscriptions_open", "transferEvents subscriptions open on this API process.")
WEBHOOKS_DELIVERED = Counter("udt_webhooks_delivered", "Webhook deliveries a receiver took (a 2xx answer).")
WEBHOOKS_RETRIED = Counter("udt_webhooks_retried", "Webhook attempts that failed and will be tried again.")
WEBHOOKS_FAILED = Counter(
    "udt_webhooks_failed", "Webhook deliveries given up (every retry failed, or their endpoint was disabled)."
)
EVENTS_PUBLISHED = Counter("udt_events_published", "Transfer events published to Redis, by type.", ["type"])


def transfer_started(kind: str) -> None:
    TRANSFERS_STARTED.labels(kind).inc()


def transfer_finished(kind: str, status: str) -> None:
    TRANSFERS_FINISHED.labels(kind, status).inc()


def pair_applied(seconds: float, moved: Mapping[str, int], deleted: Mapping[str, int]) -> None:
    PAIRS_APPLIED.inc()
    PAIR_SECONDS.observe(seconds)
    for key, count in moved.items():
        RECORDS_MOVED.labels(key).inc(count)
    for key, count in deleted.items():
        RECORDS_DELETED.labels(key).inc(count)


def pair_failed(seconds: float, error_code: str | None) -> None:
    PAIRS_FAILED.labels(error_code or "UNKNOWN").inc()
    PAIR_SECONDS.observe(seconds)


def events_published(types: list[str]) -> None:
    for type_ in types:
        EVENTS_PUBLISHED.labels(type_).inc()


class Backlog(Collector):
    """Queue depth and the oldest pending pair, read at scrape time on the process's event loop.

    prometheus_client collects on a thread (the worker's metrics server, or the
    API's threadpool), so the async reads are handed to the loop that owns the
    connections and awaited there.
    """

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.redis: Redis | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        found = self._read()
        if found is None:
            return
        depth, pending, oldest, webhooks = found
        yield GaugeMetricFamily("udt_queue_jobs", "Jobs in the arq queue (waiting or running lanes).", value=depth)
        yield GaugeMetricFamily("udt_pairs_pending", "Pairs of queued or running transfers not yet applied.", value=pending)
        yield GaugeMetricFamily(
            "udt_oldest_pending_pair_age_seconds",
            "How long the oldest pending pair has waited since its transfer started (0: none pending).",
            value=oldest,
        )
        yield GaugeMetricFamily("udt_webhooks_pending", "Webhook deliveries waiting for their next attempt.", value=webhooks)

    def _read(self) -> tuple[int, int, float, int] | None:
        loop, redis = self.loop, self.redis
        if loop is None or redis is None or loop.is_closed() or _running_loop() is loop:
            return None  # not watching yet, shut down, or asked on the loop itself (it would wait for itself)
        future = asyncio.run_coroutine_threadsafe(_backlog(redis), loop)
        try:
            return future.result(BACKLOG_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - Redis or the database away: leave these out of this scrape
            future.cancel()
            log.warning("metrics: could not read the backlog: %r", exc)
            return None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _backlog(redis: Redis) -> tuple[int, int, float, int]:
    depth = await redis.zcard(settings.QUEUE_NAME)
    active = await Transfer.filter(status__in=ACTIVE_STATUSES).values_list("created_at", "total_pairs", "processed_pairs")
    pending = sum(total - processed for _, total, processed in active)
    oldest = min((created for created, total, processed in active if total > processed), default=None)
    age = max(0.0, time.time() - oldest.timestamp()) if oldest else 0.0
    webhooks = await WebhookDelivery.filter(status=DeliveryStatus.PENDING).count()
    return depth, pending, age, webhooks


BACKLOG = Backlog()
REGISTRY.register(BACKLOG)


def watch_backlog(redis: Redis) -> None:
    """Read the backlog through this Redis client, on the running loop, from now on."""
    BACKLOG.loop, BACKLOG.redis = asyncio.get_running_loop(), redis


def serve(port: int) -> None:
    """/metrics on a port of its own (a daemon thread); a busy port costs the metrics, never the work."""
    try:
        start_http_server(port, settings.METRICS_HOST)
    except OSError as exc:
        log.error("metrics: cannot listen on %s:%s (%s); this process runs without /metrics", settings.METRICS_HOST, port, exc)
        return
    log.info("metrics on http://%s:%s/metrics", settings.METRICS_HOST, port)

