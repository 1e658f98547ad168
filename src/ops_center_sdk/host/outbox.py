"""An ordered delivery queue with retries: one per out-of-process plugin, one per webhook.

Items are sent one at a time, in the order they were put, by one worker
task: a slow or failing receiver holds up only its own queue. A failed
attempt is retried with exponential backoff (``base * 2**(n-1)``, capped,
with some jitter) until ``max_attempts``; then the item is given up
(``on_give_up``: a plugin's dead letters, a webhook's failed delivery) and
the next one goes. A send can also say the failure is final (the receiver
refused the item: retrying cannot help) or that it should not count (the
receiver was down, not at fault for this item).

Before each attempt the queue awaits ``ready()``: a plugin process that is
restarting holds its queue, and the events that arrive meanwhile wait in it.

    outbox = Outbox("plugin my-plugin", send, policy=RetryPolicy(max_attempts=5))
    settled = outbox.put(envelope)    # a future: True delivered, False given up
    await outbox.join()               # everything put so far is settled
    left = await outbox.close()       # stop; what was not delivered
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger("ops_center_sdk.host")

T = TypeVar("T")

#: 4xx answers worth retrying (timeout, conflict, too early, too many requests);
#: any other 4xx says the receiver will never take the item.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed delivery is tried again."""

    max_attempts: int = 5
    base: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failed attempt (1-based)."""
        delay: float = min(self.maximum, self.base * 2.0 ** (attempt - 1))
        return delay * (1 + self.jitter * (2 * random.random() - 1))


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to.

    ``delivered``: done. Otherwise ``error`` says why; ``final`` means the
    receiver refused the item (no retry), ``counted=False`` that the attempt
    does not count towards ``max_attempts`` (the receiver went away).
    """

    delivered: bool
    error: str | None = None
    status_code: int | None = None
    final: bool = False
    counted: bool = True

    @classmethod
    def ok(cls, status_code: int | None = None) -> Outcome:
        return cls(True, status_code=status_code)

    @classmethod
    def failed(
        cls,
        error: str,
        *,
        status_code: int | None = None,
        final: bool = False,
        counted: bool = True,
    ) -> Outcome:
        return cls(False, error, status_code, final, counted)


Send = Callable[[T], Awaitable[Outcome]]
GiveUp = Callable[[T, int, Outcome], Awaitable[None] | None]
Attempted = Callable[[T, int, Outcome], None]


async def _always_ready() -> None:
    return None


class Outbox(Generic[T]):
    """An ordered queue of items for one receiver, sent by one worker with retries."""

    def __init__(
        self,
        name: str,
        send: Send[T],
        *,
        policy: RetryPolicy,
        on_give_up: GiveUp[T] | None = None,
        on_attempt: Attempted[T] | None = None,
        ready: Callable[[], Awaitable[object]] = _always_ready,
    ) -> None:
        self.name = name
        self.policy = policy
        self._send = send
        self._on_give_up = on_give_up
        self._on_attempt = on_attempt
        self._ready = ready
        self._items: deque[tuple[T, asyncio.Future[bool]]] = deque()
        self._current: tuple[T, asyncio.Future[bool]] | None = None
        self._wakeup = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        """Items waiting or being sent."""
        return len(self._items) + (self._current is not None)

    def put(self, item: T) -> asyncio.Future[bool]:
        """Queue ``item`` after the others (the worker starts on first use).

        The future returned is done when the item is settled: ``True``
        delivered, ``False`` given up; cancelled if the outbox closes first.
        """
        if self._closed:
            raise RuntimeError(f"{self.name}: the outbox is closed")
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[bool] = loop.create_future()
        self._items.append((item, settled))
        self._settled.clear()
        self._wakeup.set()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run(), name=f"ops-center-outbox:{self.name}")
        return settled

    def withdraw(self, item: T) -> bool:
        """Take ``item`` back if it is still waiting (not being sent); True if it was."""
        for queued in self._items:
            if queued[0] is item:
                self._items.remove(queued)
                queued[1].cancel()
                if not self._items and self._current is None:
                    self._settled.set()
                return True
        return False

    async def join(self) -> None:
        """Wait until every item put so far is delivered or given up."""
        await self._settled.wait()

    async def close(self) -> list[T]:
        """Stop the worker (an attempt in flight is abandoned); the items not delivered."""
        self._closed = True
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        queued = ([self._current] if self._current is not None else []) + list(self._items)
        self._current = None
        self._items.clear()
        self._settled.set()
        for _, settled in queued:
            settled.cancel()
        return [item for item, _ in queued]

    async def _run(self) -> None:
        while True:
            if not self._items:
                self._settled.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._current = self._items.popleft()
            item, settled = self._current
            delivered = False
            try:
                delivered = await self._deliver(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "%s: delivering an item failed unexpectedly; it is dropped", self.name
                )
            if not settled.done():
                settled.set_result(delivered)
            self._current = None

    async def _deliver(self, item: T) -> bool:
        attempts = 0
        while True:
            await self._ready()
            outcome = await self._send(item)
            if outcome.counted:
                attempts += 1
            if self._on_attempt is not None:
                self._on_attempt(item, attempts, outcome)
            if outcome.delivered:
                return True
            if outcome.final or attempts >= self.policy.max_attempts:
                await self._give_up(item, attempts, outcome)
                return False
            # Not counted (the receiver went away): ``ready()`` holds the next
            # attempt until it is back; the pause only guards against a spin.
            await asyncio.sleep(self.policy.delay(max(attempts, 1)))

    async def _give_up(self, item: T, attempts: int, outcome: Outcome) -> None:
        if self._on_give_up is None:
            log.error("%s: gave up after %d attempts: %s", self.name, attempts, outcome.error)
            return
        result = self._on_give_up(item, attempts, outcome)
        if result is not None:
            await result
