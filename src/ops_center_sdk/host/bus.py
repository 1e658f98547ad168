"""The host's event bus: a durable event log, delivered to each subscriber in order.

``emit`` (or ``publish``, its synchronous form) writes the event to the
store's event log (:meth:`~.store.HostStore.append_event`) and returns: when
it is called inside :meth:`~.store.HostStore.transaction`, the event commits
with the record it announces, so a REST call that answered 2xx has its event
on disk. Each subscriber has its own worker task that reads the log after its
cursor, calls the subscriber, and only then moves the cursor: a slow or
failing subscriber delays nobody else, least of all the REST response that
caused the event, and each subscriber sees events in commit order.

A subscriber with a ``name`` is *durable*: its cursor is kept in the store
(``event_cursors``), so after a crash and restart it resumes with the first
event it had not settled. A sync durable subscriber's own writes commit in one
transaction with its cursor (exactly once); an async one is called again for
an event it was handling when the host died (at least once). A subscriber
without a name starts at the newest event and keeps its cursor in memory.

``apply_filters`` on the other hand runs inline: its result is what gets stored.

    bus = EventBus(store)                    # EventBus(): on a private in-memory store
    unsubscribe = bus.subscribe(on_event, name="plugin:my-plugin")
    await bus.emit("device.metrics_updated", {"device_id": "device-1", "metrics": {"cpu_usage": 9}})
    with store.transaction():                # the record and its event commit together
        store.insert("devices", record)
        bus.publish("device.created", {"device_id": record["id"], "device_data": record})
    await bus.drain()                        # tests and shutdown: wait for delivery

Settled events are pruned (:class:`EventRetention`): the log keeps the newest
``keep_count`` of them and none older than ``keep_age``.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from .store import HostStore, LoggedEvent

log = logging.getLogger("ops_center_sdk.host")


class EventEnvelope(TypedDict):
    """What a subscriber receives: a unique id, the event name, when, and the payload."""

    id: str
    name: str
    occurred_at: str
    payload: dict[str, Any]


Subscriber = Callable[[EventEnvelope], Awaitable[None] | None]
FilterRunner = Callable[[str, Any], Awaitable[Any]]

#: Events a worker reads from the log at a time.
_BATCH = 256


@dataclass(frozen=True)
class EventRetention:
    """How long settled events stay in the log (for inspection) before they are pruned.

    An event is *settled* once every durable subscriber's cursor passed it.
    Settled events beyond the newest ``keep_count``, or older than
    ``keep_age``, are deleted; the check runs every ``prune_every`` events.
    An event still unsettled after ``unsettled_max_age`` (its subscriber has
    not run for that long: a plugin that fails to start, say) is deleted all
    the same, with a warning naming the subscribers that never got it.
    """

    keep_count: int = 10_000
    keep_age: timedelta = timedelta(days=1)
    unsettled_max_age: timedelta = timedelta(days=7)
    prune_every: int = 1_000


async def _identity(name: str, data: Any) -> Any:
    return data


def _envelope(event: LoggedEvent) -> EventEnvelope:
    return EventEnvelope(
        id=event.id, name=event.name, occurred_at=event.occurred_at, payload=event.payload
    )


class _Delivery:
    """One subscriber's cursor in the log and the worker task that moves it."""

    def __init__(self, bus: EventBus, callback: Subscriber, name: str | None) -> None:
        self.bus = bus
        self.callback = callback
        self.name = name
        store = bus.store
        start = store.cursor(name) if name is not None else None
        if start is None:
            start = store.last_event_seq()
            if name is not None:
                store.set_cursor(name, start)
        self.position = start
        self.sync = not (
            inspect.iscoroutinefunction(callback)
            or inspect.iscoroutinefunction(type(callback).__call__)
        )
        self.worker: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wakeup = asyncio.Event()
        self.caught_up = asyncio.Event()
        self.stopped = False

    def wake(self) -> None:
        """Tell the worker the log grew (starting it on the running loop if need be)."""
        if self.stopped:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.wakeup.set)
            return
        if self.loop is not loop or self.worker is None or self.worker.done():
            # First event, or a new event loop (a test's): the old worker
            # belongs to a loop that no longer runs.
            self.loop = loop
            self.wakeup = asyncio.Event()
            self.caught_up = asyncio.Event()
            self.worker = loop.create_task(self._run(), name=f"ops-center-bus:{self.label}")
        self.caught_up.clear()
        self.wakeup.set()

    @property
    def label(self) -> str:
        return self.name or repr(self.callback)

    async def _run(self) -> None:
        while not self.stopped:
            self.wakeup.clear()
            store = self.bus.store
            batch = store.events_after(self.position, limit=_BATCH)
            if not batch:
                # Numbers up to the newest that were not read do not exist
                # (pruned, or their transaction rolled back).
                self.position = max(self.position, store.last_event_seq())
                self.caught_up.set()
                await self.wakeup.wait()
                continue
            for event in batch:
                if self.stopped:
                    return
                await self._deliver(event)

    async def _deliver(self, event: LoggedEvent) -> None:
        envelope = _envelope(event)
        store = self.bus.store
        try:
            if self.sync and self.name is not None:
                # Its writes and its cursor commit together: exactly once.
                with store.transaction():
                    self.callback(envelope)
                    store.set_cursor(self.name, event.seq)
                self.position = event.seq
                return
            result = self.callback(envelope)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception(
                "event subscriber %s failed on %s (event %s)",
                self.label,
                envelope["name"],
                envelope["id"],
            )
        self.position = event.seq
        if self.name is not None and not self.stopped:
            store.set_cursor(self.name, event.seq)

    def behind(self, head: int) -> bool:
        return (
            not self.stopped
            and self.position < head
            and self.loop is not None
            and self.loop is asyncio.get_running_loop()
        )

    async def join(self, head: int) -> None:
        if self.behind(head) and self.worker is not None and not self.worker.done():
            await self.caught_up.wait()

    def stop(self) -> None:
        self.stopped = True
        if self.worker is not None and not self.worker.done():
            self.worker.cancel()
        self.worker = None
        self.loop = None


class EventBus:
    """Logs events durably and delivers them to subscribers in the background."""

    def __init__(
        self, store: HostStore | None = None, *, retention: EventRetention | None = None
    ) -> None:
        self.store = store if store is not None else HostStore.in_memory()
        self.retention = retention or EventRetention()
        self._deliveries: list[_Delivery] = []
        self._filter_runner: FilterRunner = _identity
        self._since_prune = 0

    def subscribe(self, callback: Subscriber, *, name: str | None = None) -> Callable[[], None]:
        """Call ``callback(envelope)`` (sync or async) for every event; returns an unsubscribe.

        With a ``name`` the subscriber is durable: it resumes after the last
        event it settled under that name (a new name starts with the next
        event). Unsubscribing keeps the cursor; :meth:`forget` drops it.
        """
        if name is not None and any(d.name == name for d in self._deliveries):
            raise ValueError(f"a subscriber named {name!r} is already subscribed")
        delivery = _Delivery(self, callback, name)
        self._deliveries.append(delivery)
        if delivery.position < self.store.last_event_seq():
            delivery.wake()

        def unsubscribe() -> None:
            if delivery in self._deliveries:
                self._deliveries.remove(delivery)
                delivery.stop()

        return unsubscribe

    def forget(self, name: str) -> list[EventEnvelope]:
        """Drop the durable cursor ``name``; the events it had not settled are returned."""
        position = self.store.cursor(name)
        if position is None:
            return []
        backlog: list[EventEnvelope] = []
        while True:
            batch = self.store.events_after(position, limit=_BATCH)
            if not batch:
                break
            backlog += [_envelope(event) for event in batch]
            position = batch[-1].seq
        self.store.drop_cursor(name)
        return backlog

    def set_filter_runner(self, runner: FilterRunner | None) -> None:
        """Use ``await runner(name, data)`` to run filter chains (``None``: identity)."""
        self._filter_runner = runner or _identity

    async def apply_filters(self, name: str, data: Any) -> Any:
        """Pass ``data`` through the filter chain ``name``; on failure keep ``data``.

        The chain works on a deep copy, so ``data`` itself is never changed. The
        runner is expected to isolate its own handlers' failures; should it
        raise anyway, the error is logged and ``data`` goes on unfiltered, so a
        broken plugin never blocks a write.
        """
        if self._filter_runner is _identity:
            return data
        try:
            return await self._filter_runner(name, copy.deepcopy(data))
        except Exception:
            log.exception("filter chain %s failed; the value is used unfiltered", name)
            return data

    def publish(self, name: str, payload: Mapping[str, Any]) -> EventEnvelope:
        """Log an event (inside the caller's transaction, if one is open) and wake the workers.

        The payload is copied, so neither the emitter nor a subscriber changing
        its own objects afterwards changes what the event says.
        """
        envelope = EventEnvelope(
            id=uuid.uuid4().hex,
            name=name,
            occurred_at=datetime.now(UTC).isoformat(),
            payload=copy.deepcopy(dict(payload)),
        )
        self.store.append_event(envelope["id"], name, envelope["occurred_at"], envelope["payload"])
        for delivery in self._deliveries:
            delivery.wake()
        self._since_prune += 1
        if self._since_prune >= self.retention.prune_every:
            self._since_prune = 0
            self.prune()
        return envelope

    async def emit(self, name: str, payload: Mapping[str, Any]) -> EventEnvelope:
        """Log an event for every subscriber and return its envelope at once."""
        return self.publish(name, payload)

    def settled_up_to(self) -> int:
        """The number of the newest event every durable and live subscriber has settled."""
        positions = list(self.store.cursors().values())
        positions += [d.position for d in self._deliveries if d.name is None]
        head = self.store.last_event_seq()
        return min(positions, default=head)

    def prune(self, *, now: datetime | None = None) -> int:
        """Delete events beyond the retention (:class:`EventRetention`); return how many went."""
        moment = now or datetime.now(UTC)
        removed = self.store.prune_events(
            up_to=self.settled_up_to(),
            keep_last=self.retention.keep_count,
            older_than=(moment - self.retention.keep_age).isoformat(),
        )
        cutoff = (moment - self.retention.unsettled_max_age).isoformat()
        newest_expired = self.store.last_event_before(cutoff)
        if newest_expired:
            behind = sorted(
                name for name, position in self.store.cursors().items() if position < newest_expired
            )
            expired = self.store.prune_events(up_to=newest_expired, keep_last=0, older_than="")
            if expired:
                log.warning(
                    "%d events older than %s were never delivered to %s; they are dropped",
                    expired,
                    self.retention.unsettled_max_age,
                    ", ".join(behind) or "(no subscriber)",
                )
            removed += expired
        return removed

    async def drain(self) -> None:
        """Wait until every logged event (and any event those cause) is delivered."""
        while True:
            head = self.store.last_event_seq()
            waiting = [d for d in self._deliveries if d.behind(head)]
            if not waiting:
                return
            for delivery in waiting:
                await delivery.join(head)

    def stop(self) -> None:
        """Stop the workers now; what they had not settled stays in the log."""
        for delivery in self._deliveries:
            delivery.stop()

    async def aclose(self) -> None:
        """Deliver what is logged, then stop the workers."""
        await self.drain()
        self.stop()
