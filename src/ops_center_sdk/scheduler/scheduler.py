"""The scheduler behind ``plugin.scheduler``: cron jobs and one-shot runs.

Rules a plugin author can rely on:

- ``schedule()`` is idempotent by ``task_name``: declaring the same name again
  (enabling the plugin twice, restarting it) keeps one task with the same id
  and its history, and takes the new cron expression, handler and arguments.
- A cron expression is evaluated in UTC unless a time zone is given (to
  ``schedule()`` or to the scheduler).
- Handlers may be ``async def`` or plain functions; plain ones run in a worker
  thread so they do not block the event loop. While a handler runs,
  ``ops_center_sdk.context.current_task`` holds the task's name.
- A failing run is logged (logger ``ops_center_sdk.scheduler``, with the
  traceback) and counted in ``failure_count``/``last_error``; the schedule
  goes on. A cron run still going when the next time comes is not started
  twice: that occurrence is skipped and counted in ``skipped_count``.
- Nothing runs until :meth:`Scheduler.start` (the plugin host calls it when
  the plugin is enabled). With a :class:`ManualClock` there is no background
  loop at all: the test moves time with :meth:`Scheduler.advance`, or moves
  the clock and calls :meth:`Scheduler.run_due`.

Persistence (with ``state``, a storage namespace private to the SDK): each
task's run history survives a restart, and so does a pending one-shot task
whose handler can be found again (a module-level function, referenced as
``"module:qualname"``, or a name given to :meth:`Scheduler.register_handler`)
and whose arguments are JSON. Other one-shot tasks live in memory only
(``persistent`` is False in ``get_tasks()``). Cron jobs are not restored on
their own: the plugin declares them again when it is enabled, and
``schedule()`` then picks up the stored history.

Misfire policy: runs missed while the process was down run ONCE, as soon as
the scheduler runs again. For a cron job all missed occurrences are coalesced
into one run (detected from the stored ``last_run``); a one-shot task whose
time has passed runs once. After that the schedule continues from the
current time. The same rule applies when the loop wakes late (the machine was
suspended): one run, not a burst.

A one-shot task is delivered at least once: its stored record is removed when
its run ends, so a run cut short (by a crash, or by ``stop()`` after its grace
period) runs again when the scheduler starts again.

Several replicas: when ``state`` is shared between processes (Redis, or one
SQLite file that several processes open; ``StorageBackend.shared``), each
replica claims a run in that storage before starting it, and only the replica
whose claim lands runs it. So each cron occurrence runs once over all the
replicas, a run that makes up for missed occurrences included (two replicas
starting together run it once), and so does each stored one-shot task; a
replica that is down or slow holds up no other. A replica that finds an
occurrence claimed counts it in ``claimed_elsewhere`` (listed by
``get_tasks()`` only for such a scheduler; not a failure, not a skip) and goes
on to the next one. The keys are described in :mod:`.replicas`. Across
replicas:

- ``run_count`` and ``failure_count`` are totals over every replica, kept in
  shared counters: a replica reads them back when it runs the task (or
  declares it), and counts each occurrence claimed elsewhere as one run.
  ``last_run`` is when the last occurrence this replica ran or saw claimed
  started. ``skipped_count`` and ``claimed_elsewhere`` are this replica's own.
- Overlap is judged per replica: a replica whose previous run of a task is
  still going skips the occurrence (``skipped_count``) without claiming it, so
  another replica may run it meanwhile. A handler that must never overlap
  itself across replicas takes a lock in storage
  (``compare_and_set(key, None, ..., ttl=...)``).
- Cron task ids are derived from the task name, so replicas that declare a
  job at the same moment share one stored record.
- If the claim cannot be made (the storage is unreachable), the occurrence
  does not run on this replica: it counts as a failure, with the storage
  error in ``last_error``. A one-shot task tries again 30 seconds later.
- A replica that starts while another is running a stored one-shot task takes
  that run for one cut short by a crash and runs it again (at least once).

Without shared state (none, or ``memory://``), nothing of this happens and a
run costs no extra storage write.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from typing import TYPE_CHECKING, Any

from ..context import current_task
from ..errors import CronError, SchedulerError
from ..workers import WorkerPool
from .clock import Clock, ManualClock, SystemClock, as_utc
from .cron import CronSchedule, parse_cron, resolve_timezone
from .replicas import SharedRuns
from .tasks import (
    Handler,
    Task,
    TaskStore,
    call_handler,
    check_handler,
    handler_name,
    handler_reference,
    is_json,
    resolve_handler,
)

if TYPE_CHECKING:
    from ..storage import Storage

logger = logging.getLogger("ops_center_sdk.scheduler")

#: How long a one-shot task waits before claiming its run again after the
#: storage could not be reached.
CLAIM_RETRY = timedelta(seconds=30)

_EDITABLE = (
    "kind",
    "handler",
    "named",
    "schedule",
    "cron",
    "timezone",
    "args",
    "kwargs",
    "handler_ref",
    "next_run",
    "persistent",
)


class Scheduler:
    """Cron jobs and one-shot runs for one plugin (``plugin.scheduler``).

    >>> scheduler = Scheduler(owner="my-plugin")

    ``owner`` names the plugin in log records; ``clock`` is where time comes
    from (a :class:`ManualClock` in tests); ``state`` is the storage that keeps
    tasks across restarts (None: memory only); ``timezone`` is the default
    time zone of cron expressions; ``replica_id`` names this scheduler in the
    claims it makes when ``state`` is shared with other replicas (default: a
    random one); ``workers`` is where plain ``def`` handlers run (the
    plugin's :class:`~ops_center_sdk.workers.WorkerPool`; by default one of
    its own). See the module documentation for the failure, overlap,
    persistence, misfire and replica rules.
    """

    def __init__(
        self,
        *,
        owner: str = "plugin",
        clock: Clock | None = None,
        state: Storage | None = None,
        timezone: str | tzinfo = "UTC",
        replica_id: str | None = None,
        workers: WorkerPool | None = None,
    ) -> None:
        if replica_id is not None:
            _check_task_name(replica_id, what="replica_id")
        self.owner = owner
        self.workers = workers if workers is not None else WorkerPool(owner)
        self.clock: Clock = clock if clock is not None else SystemClock()
        #: This scheduler's name in the claims it makes.
        self.replica_id = replica_id if replica_id is not None else uuid.uuid4().hex
        self._store = TaskStore(state, owner) if state is not None else None
        self._shared = (
            SharedRuns(state, self.replica_id)
            if state is not None and state.backend.shared
            else None
        )
        self._zone, _ = resolve_timezone(timezone)
        self._tasks: dict[str, Task] = {}
        # Stored cron history waiting for the plugin to declare its job again.
        self._dormant: dict[str, Task] = {}
        self._handlers: dict[str, Handler] = {}
        self._runs: set[asyncio.Task[None]] = set()
        self._loaded = False
        self._loop_task: asyncio.Task[None] | None = None
        self._sync: _LoopPrimitives | None = None

    @property
    def shared(self) -> bool:
        """True when the state storage is shared between processes: runs are claimed first."""
        return self._shared is not None

    # ------------------------------------------------------------ declaring

    async def schedule(
        self,
        cron: str,
        task_name: str,
        handler: Handler,
        *,
        timezone: str | None = None,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> str:
        """Run ``handler`` on a cron schedule; return the task id.

        >>> await scheduler.schedule(cron="0 */6 * * *", task_name="sync_data",
        ...                          handler=sync_handler)  # doctest: +SKIP

        Idempotent by ``task_name``: the same name gives the same task id and
        replaces the cron expression, handler and arguments (never a second
        task). Raises :class:`~ops_center_sdk.errors.CronError` naming the
        bad field, and :class:`~ops_center_sdk.errors.SchedulerError` for an
        unknown time zone.
        """
        _check_task_name(task_name)
        call_kwargs = dict(kwargs or {})
        call_args = tuple(args)
        check_handler(handler, call_args, call_kwargs, task_name)
        schedule = parse_cron(cron, timezone if timezone is not None else self._zone)
        await self._load()
        now = self.clock.now()
        task = self._find_named(task_name)
        if task is not None:
            unchanged = (
                task.kind == "cron"
                and task.cron == schedule.expression
                and task.timezone == schedule.timezone_name
            )
            before = _snapshot(task)
            task.set_schedule(schedule)
            task.handler, task.args, task.kwargs = handler, call_args, call_kwargs
            task.handler_ref, task.retry_at = None, None
            task.persistent = self._store is not None
            if not unchanged:
                task.next_run = schedule.next_after(now)
            await self._commit(task, partial(_restore, task, before))
            return task.id

        dormant = self._dormant.pop(task_name, None)
        if dormant is not None:
            task = dormant
            task.set_schedule(schedule)
            task.handler, task.args, task.kwargs = handler, call_args, call_kwargs
            task.next_run = _first_run_after_restart(task, schedule, now)
            if task.next_run <= now:
                logger.info(
                    "%s: task %r missed its run at %s while the process was down; it runs once now",
                    self.owner,
                    task_name,
                    task.next_run.isoformat(),
                )
        else:
            task = Task(
                # Replicas declaring the job at once must agree on its record.
                id=_id_from_name(task_name) if self._shared is not None else _new_id(),
                name=task_name,
                kind="cron",
                created_at=now,
                next_run=schedule.next_after(now),
                persistent=self._store is not None,
            )
            task.set_schedule(schedule)
            task.handler, task.args, task.kwargs = handler, call_args, call_kwargs
        self._tasks[task.id] = task

        def undo() -> None:
            del self._tasks[task.id]
            if dormant is not None:
                self._dormant[task_name] = dormant

        await self._commit(task, undo)
        if self._shared is not None:
            try:
                await self._shared.sync_counts(task)
            except Exception:
                logger.exception(
                    "%s: could not read the shared run counts of task %r", self.owner, task_name
                )
        return task.id

    async def run_at(
        self,
        when: datetime,
        handler: Handler,
        *args: Any,
        task_name: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Run ``handler(*args, **kwargs)`` once at ``when``; return the task id.

        >>> run_time = datetime.now() + timedelta(hours=1)
        >>> await scheduler.run_at(run_time, my_handler, arg1="value")  # doctest: +SKIP

        A naive ``when`` is the system's local time (as ``datetime.now()``
        gives); an aware one is taken as given. A time already past runs as
        soon as the scheduler runs. With ``task_name``, the call is
        idempotent like ``schedule()``: it replaces the pending task of that
        name. Without one the task is named after the handler. (The
        handler's own keyword arguments cannot be called ``when``,
        ``handler`` or ``task_name``.)
        """
        return await self._add_once(as_utc(when), handler, args, kwargs, task_name)

    async def run_in(
        self,
        delay: timedelta | float,
        handler: Handler,
        *args: Any,
        task_name: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Run ``handler(*args, **kwargs)`` once after ``delay``; return the task id.

        >>> await scheduler.run_in(timedelta(minutes=5), my_handler)  # doctest: +SKIP

        ``delay`` is a ``timedelta`` or a number of seconds, zero or more.
        """
        if isinstance(delay, timedelta):
            seconds = delay.total_seconds()
        elif isinstance(delay, int | float) and not isinstance(delay, bool):
            seconds = float(delay)
        else:
            raise TypeError(f"run_in delay must be a timedelta or seconds, got {delay!r}")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"run_in delay must be zero or more seconds, got {delay!r}")
        try:
            when = self.clock.now() + timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(
                f"run_in delay {delay!r} is too long: the run would fall after the year 9999"
            ) from None
        return await self._add_once(when, handler, args, kwargs, task_name)

    def register_handler(self, name: str, handler: Handler) -> None:
        """Give ``handler`` a name that persisted one-shot tasks can find it by.

        A one-shot task whose handler is registered is stored with that name;
        after a restart, registering the same name again (before or after
        ``start()``) lets the stored task run. Use it for handlers that have
        no importable ``module:qualname`` (closures, methods).
        """
        _check_task_name(name, what="handler name")
        if not callable(handler):
            raise TypeError(
                f"register_handler({name!r}): handler must be callable, got {handler!r}"
            )
        self._handlers[name] = handler
        for task in self._tasks.values():
            if task.handler is None and task.handler_ref == name:
                task.handler = handler
        self._wake()

    # ----------------------------------------------------------- cancelling

    async def cancel(self, task_id_or_name: str) -> bool:
        """Cancel a task by id, or every task of that name; True if one was found.

        An unknown id or name returns False (nothing to cancel is not an
        error, so ``on_disable`` code can cancel unconditionally). The stored
        record goes too. A run already in progress is left to finish.
        """
        await self._load()
        key = task_id_or_name
        victims = [self._tasks[key]] if key in self._tasks else []
        if not victims:
            victims = [task for task in self._tasks.values() if task.name == key]
        dormant = [task for task in self._dormant.values() if key in (task.id, task.name)]
        for task in victims + dormant:
            await self._remove(task)
        return bool(victims or dormant)

    async def cancel_all(self) -> int:
        """Cancel every task (stored records too); return how many were listed.

        Runs in progress are left to finish; :meth:`stop` waits for them.
        """
        await self._load()
        victims = list(self._tasks.values())
        for task in victims + list(self._dormant.values()):
            await self._remove(task)
        return len(victims)

    # ------------------------------------------------------------- looking

    def get_tasks(self) -> list[dict[str, Any]]:
        """Every pending task, soonest first.

        Each is a dict with ``id``, ``name``, ``kind`` (``"cron"`` or
        ``"once"``), ``cron``, ``timezone``, ``next_run`` and ``last_run``
        (ISO 8601, UTC, or None), ``run_count``, ``failure_count``,
        ``skipped_count``, ``running``, ``last_error`` (of the last run, None
        when it succeeded) and ``persistent``; with state shared between
        replicas also ``claimed_elsewhere`` (occurrences another replica ran).
        A one-shot task leaves the list when its run ends (or when another
        replica claims its run). Stored tasks appear once the scheduler has
        loaded them (at ``start()`` or its first call).
        """
        far = datetime.max.replace(tzinfo=UTC)
        ordered = sorted(self._tasks.values(), key=lambda task: task.next_run or far)
        shared = self._shared is not None
        return [task.info(shared=shared) for task in ordered]

    # ------------------------------------------------------------- running

    async def start(self) -> None:
        """Load stored tasks, apply the misfire policy and start the background loop.

        Calling it again while running does nothing. With a
        :class:`ManualClock` no loop is started: tasks run when the test calls
        :meth:`run_due` or :meth:`advance`.
        """
        await self._load()
        now = self.clock.now()
        for task in self._tasks.values():
            if task.kind == "once" and task.next_run is not None and task.next_run < now:
                logger.info(
                    "%s: task %r was due at %s; it runs once now",
                    self.owner,
                    task.name,
                    task.next_run.isoformat(),
                )
        if self.clock.manual or self._loop_running():
            return
        self._loop_task = asyncio.create_task(
            self._run_loop(), name=f"ops-center-scheduler:{self.owner}"
        )

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop the background loop and wait up to ``grace`` seconds for runs in progress.

        Runs still going after ``grace`` seconds are cancelled. Tasks and their
        stored state are kept: ``start()`` picks them up again.
        """
        loop = asyncio.get_running_loop()
        loop_task, self._loop_task = self._loop_task, None
        if loop_task is not None and not loop_task.done():
            loop_task.cancel()
            if loop_task.get_loop() is loop:
                await asyncio.wait([loop_task])
        runs = [run for run in self._runs if not run.done() and run.get_loop() is loop]
        if not runs:
            return
        _, pending = await asyncio.wait(runs, timeout=grace)
        if pending:
            logger.warning(
                "%s: cancelling %d task run(s) still going after %.1f s: %s",
                self.owner,
                len(pending),
                grace,
                ", ".join(sorted(run.get_name() for run in pending)),
            )
            for run in pending:
                run.cancel()
            await asyncio.wait(pending)

    async def run_due(self) -> int:
        """Run every task due at ``clock.now()``, in due order; wait for those runs.

        Returns how many runs were started. A cron task whose previous run is
        still going is skipped (counted), not started twice. Runs started
        elsewhere (the background loop, another ``run_due``) are not waited for.
        """
        await self._load()
        started = await self._start_due()
        if started:
            await asyncio.wait(started)
        return len(started)

    async def advance(self, delta: timedelta | float) -> int:
        """Move a :class:`ManualClock` forward by ``delta``, running tasks on the way.

        The clock stops at each due time in order, and every task due then
        runs (and is waited for) before the clock moves on: a ``*/5`` cron
        advanced one hour runs 12 times, interleaved with one-shot tasks by
        time. Returns how many runs were started. A handler that waits for
        something only the test will provide blocks this call; drive such a
        case with ``clock.advance()`` and :meth:`run_due` from a background
        task.
        """
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise SchedulerError(
                f"advance() moves a ManualClock, but this scheduler runs on "
                f"{type(clock).__name__}: create it with Scheduler(clock=ManualClock()) "
                "(MockScheduler does), or call run_due()"
            )
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError(f"advance() needs a delta of zero or more, got {delta!r}")
        await self._load()
        target = clock.time_after(step)
        ran = await self.run_due()
        while True:
            upcoming = [
                due
                for task in self._tasks.values()
                if (due := _due_time(task)) is not None and due <= target and _can_start(task)
            ]
            if not upcoming:
                break
            clock.set(max(min(upcoming), clock.now()))
            ran += await self.run_due()
        clock.set(max(target, clock.now()))
        return ran

    # ------------------------------------------------------------ internals

    async def _add_once(
        self,
        when: datetime,
        handler: Handler,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task_name: str | None,
    ) -> str:
        if task_name is not None:
            _check_task_name(task_name)
        name = task_name if task_name is not None else handler_name(handler)
        check_handler(handler, args, kwargs, name)
        await self._load()
        reference = handler_reference(handler, self._handlers)
        persistent = self._store is not None and reference is not None and is_json(args, kwargs)
        if self._store is not None and not persistent:
            logger.debug(
                "%s: task %r is kept in memory only: %s",
                self.owner,
                name,
                "its arguments are not JSON"
                if reference is not None
                else "its handler has no importable name (use register_handler)",
            )
        task = self._find_named(name) if task_name is not None else None
        if task is not None:
            before = _snapshot(task)
            was_stored = task.persistent
            task.kind, task.schedule, task.cron, task.timezone = "once", None, None, None
            task.handler, task.handler_ref, task.args, task.kwargs = (
                handler,
                reference,
                args,
                kwargs,
            )
            task.next_run, task.persistent, task.retry_at = when, persistent, None
            if was_stored and not persistent:
                await self._forget(task.id)
            await self._commit(task, partial(_restore, task, before))
            return task.id
        task = Task(
            id=_new_id(),
            name=name,
            kind="once",
            named=task_name is not None,
            created_at=self.clock.now(),
            next_run=when,
            handler=handler,
            handler_ref=reference,
            args=args,
            kwargs=kwargs,
            persistent=persistent,
        )
        self._tasks[task.id] = task
        await self._commit(task, lambda: self._tasks.pop(task.id, None))
        return task.id

    def _find_named(self, name: str) -> Task | None:
        for task in self._tasks.values():
            if task.named and task.name == name:
                return task
        return None

    async def _commit(self, task: Task, undo: Callable[[], object]) -> None:
        """Store a task just changed in memory; on a storage error undo the change."""
        try:
            await self._save(task)
        except BaseException:
            undo()
            raise
        self._wake()

    async def _remove(self, task: Task) -> None:
        if self._tasks.get(task.id) is task:
            del self._tasks[task.id]
        elif self._dormant.get(task.name) is task:
            del self._dormant[task.name]
        if task.persistent:
            try:
                await self._forget(task.id)
            except BaseException:
                # The stored record is still there: keep the task so state and memory agree.
                self._restore_removed(task)
                raise
            if self._shared is not None and task.kind == "cron":
                try:
                    await self._shared.forget_counts(task.name)
                except Exception:
                    logger.exception(
                        "%s: could not remove the shared run counts of task %r",
                        self.owner,
                        task.name,
                    )
        self._wake()

    def _restore_removed(self, task: Task) -> None:
        if task.handler is None and task.kind == "cron":
            self._dormant[task.name] = task
        else:
            self._tasks[task.id] = task

    async def _save(self, task: Task) -> None:
        if self._store is None or not task.persistent:
            return

        def still_listed() -> bool:
            return self._tasks.get(task.id) is task or self._dormant.get(task.name) is task

        await self._store.save(task, still_listed)

    async def _forget(self, task_id: str) -> None:
        if self._store is not None:
            await self._store.forget(task_id)

    async def _save_quietly(self, task: Task) -> None:
        try:
            await self._save(task)
        except Exception:
            logger.exception("%s: could not store the state of task %r", self.owner, task.name)

    async def _load(self) -> None:
        if self._loaded:
            return
        if self._store is None:
            self._loaded = True
            return
        async with self._primitives().load_lock:
            if self._loaded:
                return
            loaded = await self._store.load()
            far = datetime.max.replace(tzinfo=UTC)
            for task in sorted(loaded, key=lambda task: (task.next_run or far, task.created_at)):
                if task.kind == "cron":
                    self._dormant[task.name] = task
                    continue
                if task.next_run is None:
                    task.next_run = task.created_at
                if task.handler_ref is not None:
                    task.handler = resolve_handler(task.handler_ref, self._handlers)
                if task.handler is None:
                    logger.warning(
                        "%s: stored task %r cannot find its handler %r; it waits until "
                        "register_handler(%r, handler) is called",
                        self.owner,
                        task.name,
                        task.handler_ref,
                        task.handler_ref,
                    )
                self._tasks[task.id] = task
            if self._shared is not None:
                await self._shared.note_claims(list(self._tasks.values()))
            self._loaded = True

    async def _start_due(self) -> list[asyncio.Task[None]]:
        now = self.clock.now()
        far = datetime.max.replace(tzinfo=UTC)
        due = sorted(
            (task for task in self._tasks.values() if _is_due(task, now)),
            key=lambda task: task.next_run or far,
        )
        started: list[asyncio.Task[None]] = []
        skipped: list[Task] = []
        for task in due:
            # Claims await: a task may have been started, changed or cancelled meanwhile.
            if self._tasks.get(task.id) is not task or not _is_due(task, now):
                continue
            if task.running:
                if task.kind == "cron":
                    skipped.append(task)
                    self._skip(task, now)
                # A one-shot task replaced while its previous run goes on waits for that run.
                continue
            if self._shared is not None and task.persistent and not await self._claim(task, now):
                continue
            started.append(self._launch(task, now))
        for task in skipped:
            await self._save_quietly(task)
        return started

    async def _claim(self, task: Task, now: datetime) -> bool:
        """Claim the due run of ``task`` in shared state; True when this replica runs it."""
        assert self._shared is not None
        task.claiming = True
        try:
            if task.kind == "cron":
                won = await self._shared.claim_cron(task, now)
            else:
                won = await self._shared.claim_once(task, now)
        except Exception as exc:
            self._claim_failed(task, now, exc)
            return False
        finally:
            task.claiming = False
            self._wake()
        if not won:
            self._claimed_elsewhere(task, now)
            return False
        if self._tasks.get(task.id) is task and task.handler is not None and not task.running:
            return True
        # Cancelled (or started) while claiming: the claim is spent, the run is not made.
        if task.claim is not None:
            key, task.claim = task.claim[0], None
            await self._release_quietly(task, key)
        return False

    def _claimed_elsewhere(self, task: Task, now: datetime) -> None:
        if task.kind == "cron":
            task.claimed_elsewhere += 1
            task.run_count += 1
            task.last_run = now
            task.next_run = self._next_cron_run(task, now)
            logger.debug(
                "%s: task %r: the occurrence due at %s was claimed by another replica",
                self.owner,
                task.name,
                now.isoformat(),
            )
            return
        if self._tasks.get(task.id) is task:
            del self._tasks[task.id]
        logger.info(
            "%s: task %r was run (or changed) by another replica; dropped here",
            self.owner,
            task.name,
        )

    def _claim_failed(self, task: Task, now: datetime, error: Exception) -> None:
        problem = f"{type(error).__name__}: {error}"
        if task.kind == "cron":
            task.failure_count += 1
            task.last_error = problem
            task.next_run = self._next_cron_run(task, now)
            logger.error(
                "%s: task %r could not claim its run due at %s, so it does not run here: %s",
                self.owner,
                task.name,
                now.isoformat(),
                problem,
            )
            return
        task.retry_at = now + CLAIM_RETRY
        logger.error(
            "%s: task %r could not claim its run (trying again in %d s): %s",
            self.owner,
            task.name,
            CLAIM_RETRY.total_seconds(),
            problem,
        )

    async def _release_quietly(self, task: Task, key: str) -> None:
        assert self._shared is not None
        try:
            await self._shared.release(key)
        except Exception:
            logger.exception("%s: could not release the claim of task %r", self.owner, task.name)

    async def _count_shared(self, task: Task, counter: str) -> int | None:
        """Add one to a shared counter of ``task``; its new total, or None if storage failed."""
        if self._shared is None or not task.persistent or task.kind != "cron":
            return None
        try:
            return await self._shared.add(task.name, counter)
        except Exception:
            logger.exception(
                "%s: could not count the %s of task %r in shared state",
                self.owner,
                counter,
                task.name,
            )
            return None

    def _skip(self, task: Task, now: datetime) -> None:
        missed = task.next_run
        task.skipped_count += 1
        task.next_run = self._next_cron_run(task, now)
        logger.warning(
            "%s: task %r skipped its run due at %s: the previous run is still going",
            self.owner,
            task.name,
            missed.isoformat() if missed else "?",
        )

    def _next_cron_run(self, task: Task, now: datetime) -> datetime | None:
        if task.schedule is None:
            return None
        try:
            return task.schedule.next_after(now)
        except CronError as exc:
            logger.error("%s: task %r stops: %s", self.owner, task.name, exc)
            return None

    def _launch(self, task: Task, now: datetime) -> asyncio.Task[None]:
        handler = task.handler
        assert handler is not None
        due = task.next_run or now
        task.last_run = now
        task.run_count += 1
        task.retry_at = None
        task.next_run = self._next_cron_run(task, now) if task.kind == "cron" else None
        run = asyncio.create_task(
            self._execute(task, due, handler, task.args, dict(task.kwargs)),
            name=f"ops-center-task:{self.owner}:{task.name}",
        )
        task.run = run
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)
        return run

    async def _execute(
        self,
        task: Task,
        due: datetime,
        handler: Handler,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        if task.kind == "cron":
            total = await self._count_shared(task, "runs")
            if total is not None:
                task.run_count = total
            # A one-shot record keeps its due time until the run ends (at least once).
            await self._save_quietly(task)
        token = current_task.set(task.name)
        error: BaseException | None = None
        try:
            await call_handler(handler, args, kwargs, self.workers)
        except asyncio.CancelledError as exc:
            logger.warning("%s: task %r was cancelled while running", self.owner, task.name)
            error = exc
            if task.kind == "once" and task.next_run is None:
                task.next_run = due  # cut short, not done: it runs again at the next start
            raise
        except Exception as exc:
            logger.error(
                "%s: task %r failed: %s: %s",
                self.owner,
                task.name,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            error = exc
        finally:
            current_task.reset(token)
            await self._finish(task, error)

    async def _finish(self, task: Task, error: BaseException | None) -> None:
        if task.run is asyncio.current_task():
            task.run = None
        if error is None:
            task.last_error = None
        else:
            task.failure_count += 1
            message = str(error) or "the run was cancelled"
            task.last_error = f"{type(error).__name__}: {message}"
            total = await self._count_shared(task, "failures")
            if total is not None:
                task.failure_count = total
        claim, task.claim = task.claim, None
        if self._tasks.get(task.id) is task:
            if task.kind == "once" and task.next_run is None:
                del self._tasks[task.id]
                if task.persistent:
                    try:
                        await self._forget(task.id)
                    except Exception:
                        logger.exception(
                            "%s: could not remove the stored record of task %r",
                            self.owner,
                            task.name,
                        )
                        claim = None  # the record stays: so does the claim on it
                if claim is not None:
                    await self._release_quietly(task, claim[0])
            else:
                if claim is not None:
                    # Cut short: this replica (restarted) or another may take the run over.
                    task.seen_claim = claim[1]
                await self._save_quietly(task)
        self._wake()

    async def _run_loop(self) -> None:
        wake = self._primitives().wake
        while True:
            wake.clear()
            try:
                await self._start_due()
            except Exception:
                logger.exception("%s: the scheduler loop failed to start due runs", self.owner)
            await self._sleep(self._next_wake(), wake)

    async def _sleep(self, until: datetime | None, wake: asyncio.Event) -> None:
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(wake.wait())}
        if until is not None:
            waiters.add(asyncio.ensure_future(self.clock.sleep_until(until)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _next_wake(self) -> datetime | None:
        times = [
            due
            for task in self._tasks.values()
            if (due := _due_time(task)) is not None and _can_start(task)
        ]
        return min(times) if times else None

    def _loop_running(self) -> bool:
        task = self._loop_task
        return (
            task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop()
        )

    def _primitives(self) -> _LoopPrimitives:
        loop = asyncio.get_running_loop()
        if self._sync is None or self._sync.loop is not loop:
            self._sync = _LoopPrimitives(loop)
        return self._sync

    def _wake(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._sync is not None and self._sync.loop is loop:
            self._sync.wake.set()


class _LoopPrimitives:
    """Locks and the wake-up event, made per event loop (tests run several loops)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.load_lock = asyncio.Lock()
        self.wake = asyncio.Event()


def _can_start(task: Task) -> bool:
    """A task the loop should wake for: it has a handler and is not waiting on itself."""
    return (
        task.handler is not None
        and not task.claiming
        and not (task.kind == "once" and task.running)
    )


def _due_time(task: Task) -> datetime | None:
    """When ``task`` may start next: its next run, held back after a failed claim."""
    if task.next_run is None or task.retry_at is None:
        return task.next_run
    return max(task.next_run, task.retry_at)


def _is_due(task: Task, now: datetime) -> bool:
    """True when ``task`` should start (or be skipped, if still running) at ``now``."""
    due = _due_time(task)
    return task.handler is not None and not task.claiming and due is not None and due <= now


def _first_run_after_restart(task: Task, schedule: CronSchedule, now: datetime) -> datetime:
    """The first occurrence after the last run (or creation), which may be past."""
    base = task.last_run or task.created_at
    return schedule.next_after(min(base, now))


def _check_task_name(name: object, *, what: str = "task_name") -> None:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {name!r}")
    if not name.strip():
        raise ValueError(f"{what} must not be empty")


def _new_id() -> str:
    return os.urandom(8).hex()


def _id_from_name(name: str) -> str:
    """A task id that every replica derives alike from the task's name."""
    return hashlib.blake2b(name.encode("utf-8"), digest_size=8).hexdigest()


def _snapshot(task: Task) -> dict[str, Any]:
    return {name: getattr(task, name) for name in _EDITABLE}


def _restore(task: Task, snapshot: dict[str, Any]) -> None:
    for name, value in snapshot.items():
        setattr(task, name, value)
