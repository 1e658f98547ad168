"""Task records: what the scheduler knows about one task, how it is stored,
and how its handler is checked, called and found again after a restart.

A task is a cron job (``kind="cron"``) or a one-shot run (``kind="once"``).
Its record survives a restart when the scheduler has a ``state`` storage: the
run history always, and for a one-shot task the handler (as a reference such
as ``"my_plugin.tasks:send_report"``) with its JSON arguments.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal

from .cron import CronSchedule

if TYPE_CHECKING:
    from ..storage import Storage
    from ..workers import WorkerPool

logger = logging.getLogger("ops_center_sdk.scheduler")

Handler = Callable[..., Any]
Kind = Literal["cron", "once"]

RECORD_VERSION = 1

#: Prefix of the scheduler's keys in its state storage: one key per task.
KEY_PREFIX = "scheduler:task:"


@dataclass(eq=False)
class Task:
    """One scheduled task, as held in memory."""

    id: str
    name: str
    kind: Kind
    created_at: datetime
    next_run: datetime | None
    handler: Handler | None = None
    #: False for a one-shot task given no name: its name is the handler's.
    named: bool = True
    schedule: CronSchedule | None = None
    cron: str | None = None
    timezone: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: How a restarted scheduler finds the handler (one-shot tasks only).
    handler_ref: str | None = None
    last_run: datetime | None = None
    run_count: int = 0
    failure_count: int = 0
    skipped_count: int = 0
    last_error: str | None = None
    persistent: bool = False
    #: The run in progress, if any.
    run: asyncio.Task[None] | None = None
    # Only with state shared by replicas (see .replicas); none of these is stored.
    #: Occurrences this replica found claimed by another replica.
    claimed_elsewhere: int = 0
    #: True while this replica is claiming a due run (it is then not due again).
    claiming: bool = False
    #: The claim this replica holds on a one-shot run: (key, stamp).
    claim: tuple[str, dict[str, str]] | None = None
    #: A claim on this one-shot run that was already there when this replica
    #: loaded the task: its run was cut short, and this replica may take it over.
    seen_claim: dict[str, Any] | None = None
    #: Not before this time: claiming failed (storage unreachable), try again then.
    retry_at: datetime | None = None

    @property
    def running(self) -> bool:
        """True while a run of this task is in progress."""
        run = self.run
        return run is not None and not run.done() and not run.get_loop().is_closed()

    def set_schedule(self, schedule: CronSchedule) -> None:
        """Make this a cron task on ``schedule``."""
        self.kind = "cron"
        self.schedule = schedule
        self.cron = schedule.expression
        self.timezone = schedule.timezone_name

    def info(self, *, shared: bool = False) -> dict[str, Any]:
        """The task as ``Scheduler.get_tasks()`` lists it; ``shared`` adds ``claimed_elsewhere``."""
        listed = {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "cron": self.cron,
            "timezone": self.timezone,
            "next_run": _iso(self.next_run),
            "last_run": _iso(self.last_run),
            "run_count": self.run_count,
            "failure_count": self.failure_count,
            "skipped_count": self.skipped_count,
            "running": self.running,
            "last_error": self.last_error,
            "persistent": self.persistent,
        }
        if shared:
            listed["claimed_elsewhere"] = self.claimed_elsewhere
        return listed

    def to_record(self) -> dict[str, Any]:
        """The JSON record stored for this task."""
        keeps_call = self.kind == "once"
        return {
            "version": RECORD_VERSION,
            "id": self.id,
            "name": self.name,
            "named": self.named,
            "kind": self.kind,
            "cron": self.cron,
            "timezone": self.timezone,
            "handler": self.handler_ref if keeps_call else None,
            "args": list(self.args) if keeps_call else [],
            "kwargs": dict(self.kwargs) if keeps_call else {},
            "created_at": _iso(self.created_at),
            "next_run": _iso(self.next_run),
            "last_run": _iso(self.last_run),
            "run_count": self.run_count,
            "failure_count": self.failure_count,
            "skipped_count": self.skipped_count,
            "last_error": self.last_error,
        }

    @classmethod
    def from_record(cls, record: Any) -> Task:
        """Rebuild a task (without its handler) from a stored record.

        Raises ``ValueError`` naming the field that is missing or wrong.
        """
        if not isinstance(record, dict):
            raise ValueError(f"a task record is a JSON object, got {type(record).__name__}")
        kind = record.get("kind")
        if kind not in ("cron", "once"):
            raise ValueError(f"field 'kind' must be 'cron' or 'once', got {kind!r}")
        created_at = _time_field(record, "created_at")
        if created_at is None:
            raise ValueError("field 'created_at' is missing")
        args = record.get("args", [])
        kwargs = record.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ValueError("fields 'args' and 'kwargs' must be a list and an object")
        return cls(
            id=_text_field(record, "id"),
            name=_text_field(record, "name"),
            kind=kind,
            named=bool(record.get("named", True)),
            created_at=created_at,
            next_run=_time_field(record, "next_run"),
            cron=_optional_text(record, "cron"),
            timezone=_optional_text(record, "timezone"),
            handler_ref=_optional_text(record, "handler"),
            args=tuple(args),
            kwargs=kwargs,
            last_run=_time_field(record, "last_run"),
            run_count=_count_field(record, "run_count"),
            failure_count=_count_field(record, "failure_count"),
            skipped_count=_count_field(record, "skipped_count"),
            last_error=_optional_text(record, "last_error"),
            persistent=True,
        )


class TaskStore:
    """Task records kept in the scheduler's state storage, one key per task id.

    Writes go one at a time so that the last write of a task is its latest
    state, even on a backend whose calls may finish out of order.
    """

    def __init__(self, storage: Storage, owner: str) -> None:
        self.storage = storage
        self.owner = owner
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    async def load(self) -> list[Task]:
        """Every readable stored task; an unreadable record is logged and left in place."""
        keys = await self.storage.list_keys(KEY_PREFIX + "*")
        records = await self.storage.get_many(keys) if keys else {}
        tasks: list[Task] = []
        for key in keys:
            if key not in records:
                continue
            try:
                task = Task.from_record(records[key])
                if key != KEY_PREFIX + task.id:
                    raise ValueError(f"it holds the record of task id {task.id!r}")
            except ValueError as exc:
                logger.warning("%s: ignoring unreadable task record %r: %s", self.owner, key, exc)
                continue
            tasks.append(task)
        return tasks

    async def save(self, task: Task, still_listed: Callable[[], bool]) -> None:
        """Store ``task``, unless ``still_listed()`` says it went meanwhile (cancelled, done)."""
        async with self._write_lock():
            if still_listed():
                await self.storage.set(KEY_PREFIX + task.id, task.to_record())

    async def forget(self, task_id: str) -> None:
        """Remove a task's record."""
        async with self._write_lock():
            await self.storage.delete(KEY_PREFIX + task_id)

    def _write_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock


def handler_reference(handler: Handler, registered: Mapping[str, Handler]) -> str | None:
    """A name a restarted process can turn back into ``handler``, or None.

    A handler given to ``Scheduler.register_handler`` is known by its
    registered name; otherwise a module-level function (or class attribute)
    by ``"module:qualname"``. Lambdas, nested functions and bound methods have
    no such name.
    """
    for name, known in registered.items():
        if known is handler:
            return name
    module = getattr(handler, "__module__", None)
    qualname = getattr(handler, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    reference = f"{module}:{qualname}"
    return reference if resolve_handler(reference, {}) is handler else None


def resolve_handler(reference: str, registered: Mapping[str, Handler]) -> Handler | None:
    """The handler a reference names: a registered name, else ``module:qualname``."""
    if reference in registered:
        return registered[reference]
    module_name, _, qualname = reference.partition(":")
    if not module_name or not qualname:
        return None
    try:
        target: Any = import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except Exception:  # a module that no longer imports is a missing handler, not a crash
        return None
    return target if callable(target) else None


async def call_handler(
    handler: Handler, args: tuple[Any, ...], kwargs: Mapping[str, Any], workers: WorkerPool
) -> None:
    """Await an async handler; run a plain one on one of ``workers`` (off the event loop)."""
    if _is_async(handler):
        await handler(*args, **kwargs)
        return
    result = await workers.run(handler, *args, **kwargs)
    if inspect.isawaitable(result):
        await result


def _is_async(handler: Handler) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def check_handler(
    handler: object, args: tuple[Any, ...], kwargs: Mapping[str, Any], task_name: str
) -> None:
    """Refuse, when it is scheduled, a handler that cannot take the task's arguments."""
    if not callable(handler):
        raise TypeError(f"task {task_name!r}: handler must be callable, got {handler!r}")
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(
            f"task {task_name!r}: handler {handler_name(handler)}{signature} cannot be "
            f"called with args={args!r} kwargs={dict(kwargs)!r}: {exc}"
        ) from None


def handler_name(handler: object) -> str:
    """The name an unnamed task takes from its handler (``__qualname__``)."""
    name = getattr(handler, "__qualname__", None) or getattr(handler, "__name__", None)
    return str(name) if name else type(handler).__name__


def is_json(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """True when the arguments can be stored as JSON."""
    try:
        json.dumps([list(args), dict(kwargs)], allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _text_field(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"field {name!r} must be a non-empty string, got {value!r}")
    return value


def _optional_text(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {name!r} must be a string or null, got {value!r}")
    return value


def _count_field(record: dict[str, Any], name: str) -> int:
    value = record.get(name, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"field {name!r} must be a count (an integer >= 0), got {value!r}")
    return value


def _time_field(record: dict[str, Any], name: str) -> datetime | None:
    value = record.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"field {name!r} must be an ISO 8601 time, got {value!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"field {name!r} must carry a UTC offset, got {value!r}")
    return moment.astimezone(UTC)
