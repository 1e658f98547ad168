"""Webhook deliveries: events out to the URLs registered through ``/api/v1/webhooks``.

For every event, each active webhook subscribed to its name (and registered
before the event occurred) gets a POST of
the event envelope (``{"id", "name", "occurred_at", "payload"}``) at exactly
the URL registered (redirects are not followed), signed like the host's
requests to plugins (:mod:`ops_center_sdk.signing`: method, path and query of
the URL, delivery id, body), with the webhook's own secret::

    X-Ops-Center-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256 of the signed message>
    X-Ops-Center-Delivery: <delivery log id>.<new for every try>
    X-Ops-Center-Event: device.created
    X-Ops-Center-Event-Id: <the event id, the same on every retry>

A receiver checks it with :func:`ops_center_sdk.signing.verify_webhook`.

Each webhook has its own queue and worker (:class:`~.outbox.Outbox`): events
reach it in order, and a slow or failing receiver holds up nobody else. A
2xx answer is a success; a timeout, a network error, 408, 409, 425, 429 or
5xx is retried with exponential backoff, up to ``max_attempts``; any other
answer fails the delivery at once (the receiver refuses it).

Every delivery is logged in the host store (kind ``webhook_deliveries``:
status ``pending``, ``delivered`` or ``failed``, the last status code,
attempts, last error, timestamps), for ``GET /api/v1/webhooks/{id}/deliveries``.
The sender is a durable subscriber of the event log: the pending deliveries
of an event are written in one transaction with its cursor, so after a crash
each event gets its deliveries exactly once. A pending delivery holds its
event, so deliveries cut short by a restart are sent when the host starts again.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from .. import __version__
from ..signing import signed_headers
from .bus import EventBus, EventEnvelope
from .dead_letters import envelope_of
from .outbox import RETRYABLE_4XX, Outbox, Outcome, RetryPolicy
from .store import HostStore, Record, RecordPage

log = logging.getLogger("ops_center_sdk.host.webhooks")

#: Record kind of registered webhooks (the REST resource's).
WEBHOOK_KIND = "webhooks"
#: Record kind of the delivery log.
DELIVERY_KIND = "webhook_deliveries"
EVENT_HEADER = "X-Ops-Center-Event"
EVENT_ID_HEADER = "X-Ops-Center-Event-Id"
#: The webhook sender's durable subscriber name on the event bus.
SUBSCRIBER = "webhooks"


@dataclass(frozen=True)
class WebhookSettings:
    """Timeouts and retries of webhook deliveries (seconds)."""

    timeout: float = 10.0
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=6, base=1.0, maximum=60.0)
    )
    #: Delivery records kept per webhook; the oldest finished ones go first.
    keep_deliveries: int = 1000


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _instant(stamp: object) -> datetime | None:
    """An ISO 8601 timestamp as a datetime (text order breaks when microseconds are 0)."""
    if not isinstance(stamp, str):
        return None
    try:
        instant = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Delivery:
    id: str
    webhook_id: str
    envelope: EventEnvelope


class WebhookSender:
    """Sends each event to the webhooks subscribed to it, and logs every delivery.

    >>> sender = WebhookSender(store, bus)
    >>> sender.start()            # subscribes to the bus; resumes pending deliveries
    >>> await sender.drain()      # tests: wait until every delivery is settled
    >>> await sender.aclose()
    """

    def __init__(
        self,
        store: HostStore,
        bus: EventBus,
        *,
        settings: WebhookSettings | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings or WebhookSettings()
        self._client = client
        self._owns_client = client is None
        self._outboxes: dict[str, Outbox[_Delivery]] = {}
        self._unsubscribe: Any = None

    def start(self) -> None:
        """Subscribe to the bus and queue the deliveries a stop left pending."""
        if self._unsubscribe is None:
            self._unsubscribe = self.bus.subscribe(self._on_event, name=SUBSCRIBER)
        for record in self.store.find(DELIVERY_KIND, where={"status": "pending"}).items:
            if isinstance(record.get("envelope"), dict):
                envelope = envelope_of(record)
                delivery = _Delivery(record["id"], record["webhook_id"], envelope)
                self._outbox(delivery.webhook_id).put(delivery)

    async def drain(self) -> None:
        """Wait until every delivery queued so far is delivered or failed."""
        for outbox in list(self._outboxes.values()):
            await outbox.join()

    async def aclose(self) -> None:
        """Stop sending; deliveries not done stay ``pending`` for the next start."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for outbox in self._outboxes.values():
            await outbox.close()
        self._outboxes.clear()
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    # ==================== sending ====================

    def _on_event(self, envelope: EventEnvelope) -> None:
        occurred_at = _instant(envelope["occurred_at"])
        for hook in self.store.find(WEBHOOK_KIND).items:
            if not hook.get("active", True) or envelope["name"] not in hook.get("events", ()):
                continue
            created_at = _instant(hook.get("created_at"))
            if created_at is not None and occurred_at is not None and created_at > occurred_at:
                # Events reach this subscriber after a delay; one that happened
                # before the webhook was registered is not the webhook's.
                continue
            delivery = _Delivery(f"delivery-{uuid.uuid4().hex[:16]}", hook["id"], envelope)
            stamp = _now()
            self.store.insert(
                DELIVERY_KIND,
                {
                    "id": delivery.id,
                    "webhook_id": hook["id"],
                    "event_id": envelope["id"],
                    "event": envelope["name"],
                    "url": hook["url"],
                    "status": "pending",
                    "status_code": None,
                    "attempts": 0,
                    "last_error": None,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "delivered_at": None,
                    "envelope": dict(envelope),
                },
            )
            self._outbox(hook["id"]).put(delivery)

    def _outbox(self, webhook_id: str) -> Outbox[_Delivery]:
        outbox = self._outboxes.get(webhook_id)
        if outbox is None:
            outbox = self._outboxes[webhook_id] = Outbox(
                f"webhook {webhook_id}",
                self._send,
                policy=self.settings.retry,
                on_attempt=self._attempted,
                on_give_up=self._gave_up,
            )
        return outbox

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,  # only ever to the URL the user registered
                headers={"User-Agent": f"ops-center-webhooks/{__version__}"},
            )
        return self._client

    async def _send(self, delivery: _Delivery) -> Outcome:
        hook = self.store.get(WEBHOOK_KIND, delivery.webhook_id)
        if hook is None or not hook.get("active", True):
            return Outcome.failed("the webhook was deleted or deactivated", final=True)
        body = json.dumps(delivery.envelope, separators=(",", ":")).encode()
        try:
            url = httpx.URL(str(hook["url"]))
            # Each try is a new request: a receiver that refuses replayed
            # delivery ids still takes the retry; the log id leads for the operator.
            signed = signed_headers(
                body,
                str(hook["secret"]),
                method="POST",
                path=url.raw_path.decode("ascii"),
                delivery_id=f"{delivery.id}.{secrets.token_hex(6)}",
            )
        except (httpx.InvalidURL, UnicodeDecodeError, ValueError) as exc:
            return Outcome.failed(f"the webhook cannot be signed: {exc}", final=True)
        headers = {
            "Content-Type": "application/json",
            **signed,
            EVENT_HEADER: delivery.envelope["name"],
            EVENT_ID_HEADER: delivery.envelope["id"],
        }
        try:
            response = await self._http().post(
                url, content=body, headers=headers, timeout=self.settings.timeout
            )
        except httpx.TimeoutException:
            return Outcome.failed(f"no answer within {self.settings.timeout:g} s")
        except httpx.HTTPError as exc:
            return Outcome.failed(f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return Outcome.ok(status)
        final = status < 500 and status not in RETRYABLE_4XX
        return Outcome.failed(f"{status}: {response.text[:200]!r}", status_code=status, final=final)

    def _attempted(self, delivery: _Delivery, attempts: int, outcome: Outcome) -> None:
        record = self.store.get(DELIVERY_KIND, delivery.id)
        if record is None:
            return
        stamp = _now()
        # A running total: a delivery resumed after a restart keeps its count.
        tries = int(record.get("attempts") or 0) + (1 if outcome.counted else 0)
        record.update(attempts=tries, status_code=outcome.status_code, updated_at=stamp)
        if outcome.delivered:
            record.update(status="delivered", delivered_at=stamp, envelope=None)
        else:
            record["last_error"] = outcome.error
        self.store.replace(DELIVERY_KIND, delivery.id, record)
        if outcome.delivered:
            self._prune(delivery.webhook_id)

    def _gave_up(self, delivery: _Delivery, attempts: int, outcome: Outcome) -> None:
        record = self.store.get(DELIVERY_KIND, delivery.id)
        if record is not None:
            record.update(status="failed", updated_at=_now(), envelope=None)
            self.store.replace(DELIVERY_KIND, delivery.id, record)
        log.error(
            "webhook %s: %s (%s) not delivered after %d attempts: %s",
            delivery.webhook_id,
            delivery.envelope["name"],
            delivery.envelope["id"],
            attempts,
            outcome.error,
        )
        self._prune(delivery.webhook_id)

    def _prune(self, webhook_id: str) -> None:
        keep = self.settings.keep_deliveries
        where: dict[str, str | None] = {"webhook_id": webhook_id}
        total = self.store.find(DELIVERY_KIND, where=where, limit=0).total
        if total <= keep:
            return
        for record in self.store.find(DELIVERY_KIND, where=where, limit=total - keep).items:
            if record.get("status") != "pending":
                self.store.delete(DELIVERY_KIND, record["id"])


def delivery_page(
    store: HostStore,
    webhook_id: str,
    *,
    status: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> RecordPage:
    """A webhook's deliveries, newest first (without the event a pending one holds)."""
    where: dict[str, str | None] = {"webhook_id": webhook_id}
    if status is not None:
        where["status"] = status
    total = store.find(DELIVERY_KIND, where=where, limit=0).total
    start = max(total - offset - limit, 0)
    count = max(min(limit, total - offset), 0)
    page = store.find(DELIVERY_KIND, where=where, offset=start, limit=count)
    return RecordPage([_public(record) for record in reversed(page.items)], total)


def _public(record: Record) -> Record:
    return {key: value for key, value in record.items() if key != "envelope"}
