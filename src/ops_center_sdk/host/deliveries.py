"""Where the deliveries of one event stand: one record per subscribed plugin.

``POST /api/v1/events`` answers 202 before any plugin got the event (the bus
delivers in the background, and a plugin process gets it later still, over
HTTP). The host tracks the deliveries of each event emitted that way, so
``GET /api/v1/events/{id}/deliveries`` (and ``ops-center-plugin emit
--wait``) can tell when every subscribed plugin handled it, and how:

- ``pending``: waiting in the host's queue for that plugin, or being handled;
- ``queued``: handed to the plugin's process queue (``--process``), not yet
  answered;
- ``handled``: every handler ran without an error;
- ``failed``: a handler raised or timed out (``failures`` names each, with
  its error), or the delivery was given up (``error``: a plugin process
  that never took it, its dead letters);
- ``dropped``: the plugin stopped (disabled, reloaded, uninstalled) before
  the event reached it.

Only the last ``capacity`` events are kept. Events the host raises itself
(a device created through the REST API...) are not tracked: nothing would
ask about them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..hooks import DispatchReport
    from .bus import EventEnvelope

#: How many events' deliveries are kept.
DEFAULT_CAPACITY = 1000
#: Delivery states that are final.
FINISHED = frozenset({"handled", "failed", "dropped"})


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Delivery:
    """One event's delivery to one plugin."""

    plugin_id: str
    status: str = "pending"
    handlers_run: int | None = None
    failures: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    finished_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "plugin_id": self.plugin_id,
            "status": self.status,
            "handlers_run": self.handlers_run,
            "failures": list(self.failures),
            "error": self.error,
            "finished_at": self.finished_at,
        }


@dataclass
class TrackedEvent:
    """An emitted event and its deliveries, by plugin id."""

    id: str
    name: str
    occurred_at: str
    deliveries: dict[str, Delivery]

    def as_dict(self) -> dict[str, Any]:
        deliveries = [delivery.as_dict() for delivery in self.deliveries.values()]
        done = all(d["status"] in FINISHED for d in deliveries)
        return {
            "id": self.id,
            "name": self.name,
            "occurred_at": self.occurred_at,
            "done": done,
            "ok": done and all(d["status"] == "handled" for d in deliveries),
            "deliveries": deliveries,
        }


class EventDeliveries:
    """The deliveries of the last ``capacity`` tracked events."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._events: OrderedDict[str, TrackedEvent] = OrderedDict()

    def track(self, envelope: EventEnvelope, plugin_ids: Iterable[str]) -> None:
        """Expect a delivery of ``envelope`` to each of ``plugin_ids`` (its subscribers)."""
        deliveries = {plugin_id: Delivery(plugin_id) for plugin_id in plugin_ids}
        event = TrackedEvent(envelope["id"], envelope["name"], envelope["occurred_at"], deliveries)
        self._events[event.id] = event
        while len(self._events) > self.capacity:
            self._events.popitem(last=False)

    def describe(self, event_id: str) -> dict[str, Any] | None:
        """``{"id", "name", "occurred_at", "done", "ok", "deliveries"}``, or None if unknown."""
        event = self._events.get(event_id)
        return event.as_dict() if event is not None else None

    def _open(self, event_id: str, plugin_id: str) -> Delivery | None:
        event = self._events.get(event_id)
        if event is None:
            return None
        return event.deliveries.get(plugin_id)

    def queued(self, event_id: str, plugin_id: str) -> None:
        """The event is in the plugin process's own queue."""
        delivery = self._open(event_id, plugin_id)
        if delivery is not None and delivery.status == "pending":
            delivery.status = "queued"

    def reported(self, event_id: str, plugin_id: str, report: DispatchReport) -> None:
        """An in-process plugin's handlers ran: ``report`` says which failed."""
        delivery = self._open(event_id, plugin_id)
        if delivery is None:
            return
        failures = [
            {"handler": f.handler, "error": f"{type(f.exception).__name__}: {f.exception}"}
            for f in report.failures
        ]
        self.finished(event_id, plugin_id, handlers_run=report.handlers_run, failures=failures)

    def finished(
        self,
        event_id: str,
        plugin_id: str,
        *,
        handlers_run: int | None = None,
        failures: Iterable[dict[str, str]] = (),
        error: str | None = None,
    ) -> None:
        """The delivery is over: handled, or failed (``failures`` or ``error``)."""
        delivery = self._open(event_id, plugin_id)
        if delivery is None:
            return
        delivery.failures = list(failures)
        delivery.handlers_run = handlers_run
        delivery.error = error
        delivery.status = "failed" if delivery.failures or error else "handled"
        delivery.finished_at = _now()

    def drop_waiting(self, plugin_id: str, reason: str) -> None:
        """The plugin stopped: its deliveries still in the host's queue never happen."""
        for event in self._events.values():
            delivery = event.deliveries.get(plugin_id)
            if delivery is not None and delivery.status == "pending":
                delivery.status = "dropped"
                delivery.error = reason
                delivery.finished_at = _now()
