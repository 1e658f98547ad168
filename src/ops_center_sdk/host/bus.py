"""The host's event bus: catalog events out to subscribers, filters in line.

``emit`` returns as soon as the event is queued: each subscriber has its own
queue and worker task, so a slow or failing subscriber delays nobody else,
least of all the REST response that caused the event, and each subscriber
sees events in the order they were emitted. ``apply_filters`` on the other
hand runs inline: its result is what gets stored.

    bus = EventBus()
    unsubscribe = bus.subscribe(on_event)    # on_event(envelope), sync or async
    await bus.emit("device.metrics_updated", {"device_id": "device-1", "metrics": {"cpu_usage": 9}})
    await bus.drain()                        # tests and shutdown: wait for delivery
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict

log = logging.getLogger("ops_center_sdk.host")


class EventEnvelope(TypedDict):
    """What a subscriber receives: a unique id, the event name, when, and the payload."""

    id: str
    name: str
    occurred_at: str
    payload: dict[str, Any]


Subscriber = Callable[[EventEnvelope], Awaitable[None] | None]
FilterRunner = Callable[[str, Any], Awaitable[Any]]


async def _identity(name: str, data: Any) -> Any:
    return data


class _Delivery:
    """One subscriber's queue and the worker task that empties it."""

    def __init__(self, callback: Subscriber) -> None:
        self.callback = callback
        self.queue: asyncio.Queue[EventEnvelope] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.unfinished = 0

    def put(self, envelope: EventEnvelope) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            # First event, or a new event loop (a test's): the old worker and
            # queue belong to a loop that no longer runs.
            self.loop = loop
            self.queue = asyncio.Queue()
            self.unfinished = 0
            self.worker = loop.create_task(self._run(), name=f"ops-center-bus:{self.callback!r}")
        self.unfinished += 1
        self.queue.put_nowait(envelope)

    async def _run(self) -> None:
        while True:
            envelope = await self.queue.get()
            try:
                result = self.callback(envelope)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception(
                    "event subscriber %r failed on %s (event %s)",
                    self.callback,
                    envelope["name"],
                    envelope["id"],
                )
            finally:
                self.unfinished -= 1
                self.queue.task_done()

    def pending(self) -> bool:
        return self.unfinished > 0 and self.loop is asyncio.get_running_loop()

    async def join(self) -> None:
        if self.loop is asyncio.get_running_loop():
            await self.queue.join()

    def stop(self) -> None:
        if self.worker is not None and not self.worker.done():
            self.worker.cancel()
        self.worker = None
        self.loop = None


class EventBus:
    """Delivers events to subscribers in the background and runs filter chains."""

    def __init__(self) -> None:
        self._deliveries: list[_Delivery] = []
        self._filter_runner: FilterRunner = _identity

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(envelope)`` (sync or async) for every event; returns an unsubscribe."""
        delivery = _Delivery(callback)
        self._deliveries.append(delivery)

        def unsubscribe() -> None:
            if delivery in self._deliveries:
                self._deliveries.remove(delivery)
                delivery.stop()

        return unsubscribe

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

    async def emit(self, name: str, payload: Mapping[str, Any]) -> EventEnvelope:
        """Queue an event for every subscriber and return its envelope at once.

        The payload is copied, so neither the emitter nor a subscriber changing
        its own objects afterwards changes what the event says.
        """
        envelope = EventEnvelope(
            id=uuid.uuid4().hex,
            name=name,
            occurred_at=datetime.now(UTC).isoformat(),
            payload=copy.deepcopy(dict(payload)),
        )
        for delivery in self._deliveries:
            delivery.put(envelope)
        return envelope

    async def drain(self) -> None:
        """Wait until every queued event (and any event those cause) is delivered."""
        while any(delivery.pending() for delivery in self._deliveries):
            for delivery in list(self._deliveries):
                await delivery.join()

    def stop(self) -> None:
        """Stop the workers now; events still queued are dropped."""
        for delivery in self._deliveries:
            delivery.stop()

    async def aclose(self) -> None:
        """Deliver what is queued, then stop the workers."""
        await self.drain()
        self.stop()
