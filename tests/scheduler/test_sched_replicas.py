"""Several replicas sharing the scheduler's state: each occurrence runs once.

Every replica is a real Scheduler on its own connection to the same store: a
Redis prefix (the test Redis, ``OPS_CENTER_TEST_REDIS_URL``, default
127.0.0.1:6379 db 0; ``OPS_CENTER_TEST_NO_REDIS=1`` leaves those out) or one
SQLite file. Each has its own ManualClock, set to the same times, which its
storage connection also reads for expiry (so claims expire in test time).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
import textwrap
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from ops_center_sdk.scheduler import ManualClock, Scheduler, parse_cron
from ops_center_sdk.scheduler.replicas import latest_occurrence
from ops_center_sdk.storage import (
    MemoryStorage,
    RedisStorage,
    SqliteStorage,
    Storage,
    StorageBackend,
)
from redis_kit import REDIS_URL

START = datetime(2024, 1, 1, tzinfo=UTC)
NAMESPACE = "_sdk.replicated-plugin"
EVERY_5 = "*/5 * * * *"

# What module-level handlers did; module-level so that a stored one-shot task
# can find its handler again by "module:qualname".
CALLS: list[str] = []


async def remember(label: str) -> None:
    CALLS.append(label)


async def hang_the_first_time(label: str) -> None:
    CALLS.append(label)
    if CALLS.count(label) == 1:
        await asyncio.Event().wait()  # until cancelled


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def hour_of_five_minute_runs() -> list[str]:
    return [at(minutes).isoformat() for minutes in range(5, 61, 5)]


@pytest.fixture(autouse=True)
def fresh_calls() -> None:
    CALLS.clear()


class Replica:
    """One replica of the plugin: a scheduler on its own clock and store connection."""

    def __init__(
        self,
        name: str,
        open_backend: Callable[[ManualClock], StorageBackend],
        runs: list[tuple[str, str]],
    ) -> None:
        self.name = name
        self.clock = ManualClock(START)
        self.backend = open_backend(self.clock)
        self.state = Storage(self.backend, NAMESPACE)
        self.runs = runs
        self.scheduler = Scheduler(
            owner="replicated-plugin", clock=self.clock, state=self.state, replica_id=name
        )

    async def collect(self) -> None:
        self.runs.append((self.clock.now().isoformat(), self.name))

    async def declare(self) -> str:
        return await self.scheduler.schedule(EVERY_5, "collect", self.collect)

    def task(self) -> dict[str, Any]:
        [task] = self.scheduler.get_tasks()
        return task


class Cluster:
    """Opens replicas on one shared store (a Redis prefix or a SQLite file)."""

    def __init__(self, kind: str, tmp_path: Path, redis_prefix: str) -> None:
        self.kind = kind
        self.path = tmp_path / "state.db"
        self.redis_prefix = redis_prefix
        self.runs: list[tuple[str, str]] = []
        self.replicas: list[Replica] = []

    def open_backend(self, clock: ManualClock) -> StorageBackend:
        if self.kind == "sqlite":
            return SqliteStorage(self.path, clock=clock.time)
        return RedisStorage(REDIS_URL, prefix=self.redis_prefix, clock=clock.time)

    def replica(self, name: str) -> Replica:
        replica = Replica(name, self.open_backend, self.runs)
        self.replicas.append(replica)
        return replica

    def occurrences(self) -> list[str]:
        return sorted(occurrence for occurrence, _ in self.runs)

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.scheduler.stop()
            await replica.backend.close()


@pytest.fixture(params=["redis", "sqlite"])
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    prefix = request.getfixturevalue("redis_prefix") if request.param == "redis" else ""
    shared = Cluster(request.param, tmp_path, prefix)
    yield shared
    await shared.close()


# ------------------------------------------------------------------- cron


async def test_two_replicas_run_each_occurrence_of_an_hour_once(cluster: Cluster) -> None:
    first, second = cluster.replica("first"), cluster.replica("second")
    assert await first.declare() == await second.declare()
    assert len(await first.state.list_keys("scheduler:task:*")) == 1

    for step in range(12):
        # Whoever reaches an occurrence first runs it: take turns.
        leader, follower = (first, second) if step % 2 == 0 else (second, first)
        assert await leader.scheduler.advance(timedelta(minutes=5)) == 1
        assert await follower.scheduler.advance(timedelta(minutes=5)) == 0

    assert cluster.occurrences() == hour_of_five_minute_runs()
    assert Counter(name for _, name in cluster.runs) == {"first": 6, "second": 6}
    for replica in (first, second):
        task = replica.task()
        assert (task["run_count"], task["claimed_elsewhere"]) == (12, 6)
        assert (task["failure_count"], task["skipped_count"]) == (0, 0)
        assert task["last_run"] == at(60).isoformat()
        assert task["next_run"] == at(65).isoformat()
    assert await first.state.get("scheduler:count:collect:runs") == 12


async def test_three_replicas_advancing_together_run_each_occurrence_once(
    cluster: Cluster,
) -> None:
    replicas = [cluster.replica(name) for name in ("a", "b", "c")]
    for replica in replicas:
        await replica.declare()

    ran = await asyncio.gather(
        *(replica.scheduler.advance(timedelta(hours=1)) for replica in replicas)
    )

    assert sum(ran) == 12
    assert cluster.occurrences() == hour_of_five_minute_runs()
    for replica, count in zip(replicas, ran, strict=True):
        assert count + replica.task()["claimed_elsewhere"] == 12
    assert await replicas[0].state.get("scheduler:count:collect:runs") == 12


async def test_a_replica_that_is_down_holds_up_no_other(cluster: Cluster) -> None:
    up, down = cluster.replica("up"), cluster.replica("down")
    await up.declare()
    await down.declare()

    assert await up.scheduler.advance(timedelta(hours=1)) == 12
    assert cluster.occurrences() == hour_of_five_minute_runs()

    # Back late, through the same hour: everything was claimed already.
    assert await down.scheduler.advance(timedelta(hours=1)) == 0
    task = down.task()
    assert (task["run_count"], task["claimed_elsewhere"]) == (12, 12)
    assert len(cluster.runs) == 12


async def test_a_missed_occurrence_runs_once_when_two_replicas_start_together(
    cluster: Cluster,
) -> None:
    earlier = cluster.replica("earlier")
    await earlier.declare()
    await earlier.scheduler.advance(timedelta(minutes=10))
    await earlier.scheduler.stop()

    # Everything was down from 00:10; two replicas start at 01:02.
    first, second = cluster.replica("first"), cluster.replica("second")
    for replica in (first, second):
        replica.clock.set(at(62))
        await replica.declare()
        assert replica.task()["next_run"] == at(15).isoformat()  # missed: runs at once
    await asyncio.gather(first.scheduler.start(), second.scheduler.start())
    ran = await asyncio.gather(first.scheduler.run_due(), second.scheduler.run_due())

    assert sorted(ran) == [0, 1]
    assert [name for _, name in cluster.runs].count("earlier") == 2
    assert len(cluster.runs) == 3
    for replica in (first, second):
        task = replica.task()
        assert task["run_count"] == 3
        assert task["next_run"] == at(65).isoformat()

    for replica in (first, second):
        await replica.scheduler.advance(timedelta(minutes=10))
    assert cluster.occurrences()[2:] == [at(minutes).isoformat() for minutes in (62, 65, 70)]


async def test_a_replica_waking_late_makes_up_for_nothing_another_ran(cluster: Cluster) -> None:
    steady, sleepy = cluster.replica("steady"), cluster.replica("sleepy")
    await steady.declare()
    await sleepy.declare()
    await steady.scheduler.advance(timedelta(minutes=182))
    assert len(cluster.runs) == 36

    # The sleepy replica still waits for 00:05, whose claim has expired by
    # 03:02; its one catch-up run stands for 03:00, which the steady one ran.
    sleepy.clock.set(at(182))
    assert await sleepy.state.get("scheduler:claim:cron:collect:" + at(5).isoformat()) is None
    assert await sleepy.scheduler.run_due() == 0
    assert sleepy.task()["claimed_elsewhere"] == 1
    assert sleepy.task()["next_run"] == at(185).isoformat()
    assert len(cluster.runs) == 36


async def test_replicas_declaring_a_job_at_once_share_its_record_and_counts(
    cluster: Cluster,
) -> None:
    first, second = cluster.replica("first"), cluster.replica("second")
    ids = await asyncio.gather(first.declare(), second.declare())
    assert ids[0] == ids[1]
    assert await first.state.list_keys("scheduler:task:*") == [f"scheduler:task:{ids[0]}"]

    await first.scheduler.advance(timedelta(minutes=15))
    await second.scheduler.advance(timedelta(minutes=15))
    third = cluster.replica("third")
    third.clock.set(at(16))
    await third.declare()
    task = third.task()
    assert (task["run_count"], task["last_run"], task["claimed_elsewhere"]) == (
        3,
        at(15).isoformat(),
        0,
    )
    assert task["next_run"] == at(20).isoformat()


async def test_failures_are_counted_over_every_replica(cluster: Cluster) -> None:
    first, second = cluster.replica("first"), cluster.replica("second")

    async def explode() -> None:
        raise RuntimeError("upstream down")

    for replica in (first, second):
        await replica.scheduler.schedule(EVERY_5, "fragile", explode)
    await first.scheduler.advance(timedelta(minutes=5))
    await second.scheduler.advance(timedelta(minutes=10))
    await first.scheduler.advance(timedelta(minutes=5))

    assert second.task()["failure_count"] == 2
    assert second.task()["last_error"] == "RuntimeError: upstream down"
    assert await first.state.get("scheduler:count:fragile:failures") == 2


async def test_cancel_removes_the_shared_counts(cluster: Cluster) -> None:
    replica = cluster.replica("only")
    await replica.declare()
    await replica.scheduler.advance(timedelta(minutes=10))
    assert await replica.state.list_keys("scheduler:count:*") == ["scheduler:count:collect:runs"]
    assert await replica.scheduler.cancel("collect") is True
    assert await replica.state.list_keys("scheduler:count:*") == []
    assert await replica.state.list_keys("scheduler:task:*") == []
    await replica.declare()
    assert replica.task()["run_count"] == 0


# --------------------------------------------------------------- one-shot


async def test_a_stored_one_shot_loaded_by_two_replicas_runs_once(cluster: Cluster) -> None:
    first = cluster.replica("first")
    task_id = await first.scheduler.run_at(at(30), remember, "report")
    second = cluster.replica("second")
    await second.scheduler.start()
    assert [task["id"] for task in second.scheduler.get_tasks()] == [task_id]

    ran = await asyncio.gather(
        first.scheduler.advance(timedelta(hours=1)), second.scheduler.advance(timedelta(hours=1))
    )

    assert sorted(ran) == [0, 1]
    assert CALLS == ["report"]
    assert first.scheduler.get_tasks() == second.scheduler.get_tasks() == []
    assert await first.state.list_keys("scheduler:*") == []


async def test_a_one_shot_already_run_elsewhere_is_dropped_not_run(cluster: Cluster) -> None:
    first = cluster.replica("first")
    await first.scheduler.run_at(at(30), remember, "report")
    second = cluster.replica("second")
    await second.scheduler.start()

    assert await first.scheduler.advance(timedelta(hours=1)) == 1
    # Its claim and record are gone; the second replica's copy must not run again.
    assert await second.scheduler.advance(timedelta(hours=1)) == 0
    assert CALLS == ["report"]
    assert second.scheduler.get_tasks() == []


async def test_a_one_shot_cut_short_by_stop_runs_again_after_start(cluster: Cluster) -> None:
    replica = cluster.replica("only")
    await replica.scheduler.run_in(0, hang_the_first_time, "job")
    first_run = asyncio.create_task(replica.scheduler.run_due())
    for _ in range(100):
        await asyncio.sleep(0)  # let the run start (no clock involved)
    assert CALLS == ["job"]
    await replica.scheduler.stop(grace=0)
    assert await first_run == 1

    # The claim it held is its own: started again, the replica takes the run over.
    await replica.scheduler.start()
    assert await replica.scheduler.run_due() == 1
    assert CALLS == ["job", "job"]
    assert await replica.state.list_keys("scheduler:*") == []


async def test_a_one_shot_in_memory_only_is_not_claimed(cluster: Cluster) -> None:
    replica = cluster.replica("only")
    seen: list[str] = []

    async def nested() -> None:
        seen.append("ran")

    await replica.scheduler.run_in(60, nested)
    assert replica.scheduler.get_tasks()[0]["persistent"] is False
    assert await replica.scheduler.advance(timedelta(minutes=1)) == 1
    assert seen == ["ran"]
    assert await replica.state.list_keys("scheduler:*") == []


# -------------------------------------------------- when claiming fails


def _locked_out_sqlite(tmp_path: Path, clock: ManualClock) -> StorageBackend:
    """The replica's SQLite file, giving up quickly when another writer holds it."""
    return SqliteStorage(tmp_path / "state.db", clock=clock.time, busy_timeout=0.05)


@pytest.fixture
def write_lock(tmp_path: Path) -> Iterator[Callable[[bool], None]]:
    """Holds (True) or lets go of (False) the write lock of tmp_path/state.db, as
    another process writing to the file would."""
    holder: list[sqlite3.Connection] = []

    def hold(locked: bool) -> None:
        if locked:
            db = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
            db.execute("BEGIN IMMEDIATE")
            holder.append(db)
        else:
            for db in holder:
                db.execute("ROLLBACK")
                db.close()
            holder.clear()

    yield hold
    hold(False)


async def test_a_cron_occurrence_that_cannot_be_claimed_does_not_run_and_counts_as_failed(
    tmp_path: Path, write_lock: Callable[[bool], None], caplog: pytest.LogCaptureFixture
) -> None:
    replica = Replica("only", partial(_locked_out_sqlite, tmp_path), [])
    await replica.declare()

    write_lock(True)
    assert await replica.scheduler.advance(timedelta(minutes=5)) == 0
    task = replica.task()
    assert task["failure_count"] == 1
    assert task["last_error"].startswith("StorageError: ")
    assert "locked" in task["last_error"]
    assert task["next_run"] == at(10).isoformat()
    [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert "could not claim" in error.getMessage()
    assert "'collect'" in error.getMessage()

    write_lock(False)
    assert await replica.scheduler.advance(timedelta(minutes=5)) == 1
    assert replica.runs == [(at(10).isoformat(), "only")]
    task = replica.task()
    assert (task["run_count"], task["failure_count"], task["last_error"]) == (1, 1, None)
    await replica.backend.close()


async def test_a_one_shot_that_cannot_be_claimed_waits_and_tries_again(
    tmp_path: Path, write_lock: Callable[[bool], None], caplog: pytest.LogCaptureFixture
) -> None:
    replica = Replica("only", partial(_locked_out_sqlite, tmp_path), [])
    await replica.scheduler.run_in(60, remember, "late")

    write_lock(True)
    assert await replica.scheduler.advance(timedelta(minutes=1)) == 0
    assert await replica.scheduler.advance(timedelta(seconds=29)) == 0
    [task] = replica.scheduler.get_tasks()
    assert (task["next_run"], task["run_count"]) == (at(1).isoformat(), 0)
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1  # held back, not retried in a tight loop
    assert "'remember'" in errors[0]
    assert "trying again in 30 s" in errors[0]

    write_lock(False)
    assert await replica.scheduler.advance(timedelta(seconds=1)) == 1
    assert CALLS == ["late"]
    assert await replica.state.list_keys("scheduler:*") == []
    await replica.backend.close()


# ---------------------------------------------------- not shared: no cost


async def test_state_on_memory_is_not_shared_and_writes_no_claims() -> None:
    assert MemoryStorage.shared is False
    assert SqliteStorage.shared is True
    assert RedisStorage.shared is True
    state = Storage(MemoryStorage(), NAMESPACE)
    scheduler = Scheduler(clock=ManualClock(START), state=state)
    assert scheduler.shared is False
    await scheduler.schedule(EVERY_5, "collect", remember, args=("tick",))
    assert await scheduler.advance(timedelta(hours=1)) == 12
    assert await state.list_keys("scheduler:*") == [
        f"scheduler:task:{scheduler.get_tasks()[0]['id']}"
    ]
    assert "claimed_elsewhere" not in scheduler.get_tasks()[0]
    assert Scheduler(clock=ManualClock(START)).shared is False


def test_replica_ids_are_checked_and_default_to_a_fresh_one() -> None:
    assert Scheduler(replica_id="pod-7").replica_id == "pod-7"
    assert Scheduler().replica_id != Scheduler().replica_id
    with pytest.raises(TypeError, match="replica_id must be a string, got 7"):
        Scheduler(replica_id=7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="replica_id must not be empty"):
        Scheduler(replica_id=" ")


# -------------------------------------------------- which occurrence a run is


def test_the_occurrence_a_run_stands_for_is_the_latest_one_due() -> None:
    every_5 = parse_cron(EVERY_5)
    assert latest_occurrence(every_5, at(5), at(5)) == at(5)
    assert latest_occurrence(every_5, at(5), at(9)) == at(5)
    assert latest_occurrence(every_5, at(5), at(62)) == at(60)
    # A week of missed minutes.
    every_minute = parse_cron("* * * * *")
    week = timedelta(days=7, seconds=30)
    assert latest_occurrence(every_minute, at(1), START + week) == START + timedelta(days=7)
    # Runs only during 03:00-03:59: the latest one is 03:59 the same day.
    night = parse_cron("* 3 * * *")
    due = START + timedelta(hours=3)
    now = START + timedelta(hours=10)
    assert latest_occurrence(night, due, now) == START + timedelta(hours=3, minutes=59)
    # A time zone: 09:00 in Paris is 08:00 UTC in winter.
    paris = parse_cron("0 9 * * *", "Europe/Paris")
    assert latest_occurrence(paris, at(8 * 60), START + timedelta(days=3, hours=12)) == (
        START + timedelta(days=3, hours=8)
    )


# ------------------------------------------------------- real processes

REPLICA_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from datetime import UTC, datetime, timedelta

    import redis.asyncio

    from ops_center_sdk.scheduler import ManualClock, Scheduler
    from ops_center_sdk.storage import RedisStorage, Storage


    async def main(url, prefix, name, log_key, go_key):
        backend = RedisStorage(url, prefix=prefix)
        clock = ManualClock(datetime(2024, 1, 1, tzinfo=UTC))
        scheduler = Scheduler(
            owner="replicated-plugin",
            clock=clock,
            state=Storage(backend, "_sdk.replicated-plugin"),
            replica_id=name,
        )
        client = redis.asyncio.Redis.from_url(url)

        async def collect():
            await client.rpush(log_key, json.dumps([clock.now().isoformat(), name]))

        await scheduler.schedule("*/5 * * * *", "collect", collect)
        await scheduler.start()
        print("ready", flush=True)
        if await client.blpop([go_key], timeout=30) is None:
            sys.exit("no go signal within 30 s")
        ran = 0
        for _ in range(60):
            ran += await scheduler.advance(timedelta(minutes=1))
        [task] = scheduler.get_tasks()
        print(json.dumps({"ran": ran, "claimed_elsewhere": task["claimed_elsewhere"]}), flush=True)
        await client.aclose()
        await backend.close()


    asyncio.run(main(*sys.argv[1:]))
    """
)


async def test_two_processes_on_one_redis_run_each_occurrence_once(
    redis_prefix: str, tmp_path: Path
) -> None:
    import redis

    script = tmp_path / "replica.py"
    script.write_text(REPLICA_SCRIPT, encoding="utf-8")
    log_key, go_key = redis_prefix + "test:runs", redis_prefix + "test:go"
    processes: list[asyncio.subprocess.Process] = []
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        for name in ("one", "two"):
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(script),
                    REDIS_URL,
                    redis_prefix,
                    name,
                    log_key,
                    go_key,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            )
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert line == b"ready\n", (line, await _stderr(process))
        client.rpush(go_key, "go", "go")  # both start advancing at once
        outcomes = []
        for process in processes:
            out, err = await asyncio.wait_for(process.communicate(), timeout=60)
            assert process.returncode == 0, err.decode()
            outcomes.append(json.loads(out))
        runs = [tuple(json.loads(entry)) for entry in client.lrange(log_key, 0, -1)]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()  # by its PID
                await process.wait()
        client.close()

    occurrences = [occurrence for occurrence, _ in runs]
    assert sorted(occurrences) == hour_of_five_minute_runs()
    assert sum(outcome["ran"] for outcome in outcomes) == 12
    for name, outcome in zip(("one", "two"), outcomes, strict=True):
        assert outcome["ran"] == sum(1 for _, runner in runs if runner == name)
        assert outcome["ran"] + outcome["claimed_elsewhere"] == 12


async def _stderr(process: asyncio.subprocess.Process) -> str:
    if process.stderr is None:
        return ""
    try:
        return (await asyncio.wait_for(process.stderr.read(), timeout=5)).decode()
    except TimeoutError:
        return "(no stderr within 5 s)"
