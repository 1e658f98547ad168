"""One run per occurrence when several replicas share the scheduler's state.

When the state storage is shared between processes (``StorageBackend.shared``:
Redis, or one SQLite file opened by several processes), every replica of a
plugin declares the same cron jobs and may load the same stored one-shot
tasks. Before a run starts, the replica claims it with an atomic "set if
absent" on a key naming the task and the occurrence; only the replica whose
claim lands runs it, the others count it in ``claimed_elsewhere``.

Keys, in the scheduler's state namespace:

- ``scheduler:claim:cron:<task name>:<occurrence>``: a cron occurrence,
  ``{"by": <replica id>, "at": <time claimed>}``. A run stands for the latest
  occurrence at or before the replica's clock (for a normal run, its due time;
  for a run that makes up for missed ones, the latest of them, which a replica
  that was up all along claims too). So no replica tries an occurrence once the
  next one has come, and the key only has to outlive one period: it is kept for
  three periods of the schedule, and at least an hour.
- ``scheduler:claim:once:<task id>:<due time>``: a stored one-shot run, removed
  with the task's record when the run ends. A replica that loads the task while
  such a claim exists takes the run as cut short (a crash) and may take it
  over: one-shot tasks are delivered at least once.
- ``scheduler:count:<task name>:runs`` and ``...:failures``: the task's run and
  failure totals over every replica, kept by atomic increments.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import CronError
from .cron import CronSchedule
from .tasks import KEY_PREFIX, Task

if TYPE_CHECKING:
    from ..storage import Storage

CLAIM_PREFIX = "scheduler:claim:"
COUNT_PREFIX = "scheduler:count:"

#: The shortest time a cron claim is kept.
MIN_CLAIM_TTL = timedelta(hours=1)
#: How long a claim on a one-shot run is kept if its run never ends.
ONCE_CLAIM_TTL = timedelta(days=1)

#: Counter name -> the Task field it feeds.
COUNTERS = {"runs": "run_count", "failures": "failure_count"}

_FIRST_LOOK_BACK = timedelta(minutes=1)


def latest_occurrence(schedule: CronSchedule, due: datetime, now: datetime) -> datetime:
    """The latest occurrence of ``schedule`` at or before ``now``, from ``due`` on.

    ``due`` is the occurrence the task was waiting for (at or before ``now``).
    After a long gap the search looks back from ``now`` in growing windows, so
    a week of missed minutes costs a few steps, not ten thousand.

    >>> from datetime import UTC
    >>> from ops_center_sdk.scheduler import parse_cron
    >>> start = datetime(2024, 1, 1, tzinfo=UTC)
    >>> latest_occurrence(parse_cron("*/5 * * * *"), start, start + timedelta(minutes=12))
    datetime.datetime(2024, 1, 1, 0, 10, tzinfo=datetime.timezone.utc)
    """
    latest = due
    try:
        span = _FIRST_LOOK_BACK
        while now - span > latest:
            candidate = schedule.next_after(now - span)
            if candidate <= now:
                latest = candidate
                break
            span *= 4
        while (following := schedule.next_after(latest)) <= now:
            latest = following
    except CronError:  # no occurrence after `latest`: it is the last one
        pass
    return latest


def claim_ttl(schedule: CronSchedule, occurrence: datetime) -> timedelta:
    """How long the claim of ``occurrence`` is kept: three periods, at least an hour."""
    try:
        period = schedule.next_after(occurrence) - occurrence
    except CronError:
        return MIN_CLAIM_TTL
    return max(MIN_CLAIM_TTL, 3 * period)


def cron_claim_key(name: str, occurrence: datetime) -> str:
    """The key that claims one occurrence of the cron task ``name``."""
    return f"{CLAIM_PREFIX}cron:{name}:{occurrence.isoformat()}"


def once_claim_key(task_id: str, due: datetime) -> str:
    """The key that claims the run of one-shot task ``task_id`` due at ``due``."""
    return f"{CLAIM_PREFIX}once:{task_id}:{due.isoformat()}"


def count_key(name: str, counter: str) -> str:
    """The key of a task's shared counter (``"runs"`` or ``"failures"``)."""
    return f"{COUNT_PREFIX}{name}:{counter}"


class SharedRuns:
    """Claims and run totals of one replica, in state storage other replicas share."""

    def __init__(self, storage: Storage, replica_id: str) -> None:
        self.storage = storage
        self.replica_id = replica_id

    def stamp(self, now: datetime) -> dict[str, str]:
        """The value of a claim this replica makes at ``now``."""
        return {"by": self.replica_id, "at": now.isoformat()}

    async def claim_cron(self, task: Task, now: datetime) -> bool:
        """Claim the occurrence a run of cron ``task`` started at ``now`` stands for."""
        assert task.schedule is not None
        assert task.next_run is not None
        occurrence = latest_occurrence(task.schedule, task.next_run, now)
        return await self.storage.compare_and_set(
            cron_claim_key(task.name, occurrence),
            None,
            self.stamp(now),
            ttl=claim_ttl(task.schedule, occurrence),
        )

    async def claim_once(self, task: Task, now: datetime) -> bool:
        """Claim the run of a stored one-shot ``task``; on success ``task.claim`` holds it.

        Lost when another replica holds the claim, and also when the task's
        record is gone or names another due time (it ran, or was changed,
        elsewhere).
        """
        assert task.next_run is not None
        key = once_claim_key(task.id, task.next_run)
        stamp = self.stamp(now)
        seen = task.seen_claim
        won = seen is not None and await self._swap(key, seen, stamp)
        if not won:
            won = await self._swap(key, None, stamp)
        if not won:
            task.seen_claim = None
            return False
        # The claim is ours: should what follows fail, a retry takes it over.
        task.seen_claim = stamp
        record = await self.storage.get(KEY_PREFIX + task.id)
        if not isinstance(record, dict) or record.get("next_run") != task.next_run.isoformat():
            await self.storage.delete(key)
            task.seen_claim = None
            return False
        task.seen_claim, task.claim = None, (key, stamp)
        return True

    async def _swap(self, key: str, expected: dict[str, Any] | None, stamp: dict[str, str]) -> bool:
        return await self.storage.compare_and_set(key, expected, stamp, ttl=ONCE_CLAIM_TTL)

    async def release(self, key: str) -> None:
        """Remove a one-shot claim (its task's record is already gone)."""
        await self.storage.delete(key)

    async def note_claims(self, tasks: list[Task]) -> None:
        """Remember, for each loaded one-shot task, a claim already made on its run."""
        keys = {
            once_claim_key(task.id, task.next_run): task
            for task in tasks
            if task.kind == "once" and task.next_run is not None
        }
        if not keys:
            return
        for key, value in (await self.storage.get_many(keys)).items():
            if isinstance(value, dict):
                keys[key].seen_claim = value

    async def add(self, name: str, counter: str) -> int:
        """Add one to a task's shared counter; return the new total."""
        total = await self.storage.increment(count_key(name, counter))
        return int(total)

    async def sync_counts(self, task: Task) -> None:
        """Take the shared totals into ``task``; seed absent counters from its record."""
        keys = {count_key(task.name, counter): field for counter, field in COUNTERS.items()}
        stored = await self.storage.get_many(keys)
        for key, field in keys.items():
            value = stored.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(task, field, value)
            elif value is None and getattr(task, field) > 0:
                # History from before the counters existed; if another replica
                # seeds it first, the next run reads the total back anyway.
                await self.storage.compare_and_set(key, None, getattr(task, field))

    async def forget_counts(self, name: str) -> None:
        """Remove a task's shared counters (the task was cancelled)."""
        for counter in COUNTERS:
            await self.storage.delete(count_key(name, counter))
