"""What only the SQLite backend promises: durability, index use, safety with bad files."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ops_center_sdk.errors import StorageError
from ops_center_sdk.storage import SqliteStorage, Storage, open_backend
from ops_center_sdk.storage import sqlite as sqlite_module

if TYPE_CHECKING:
    from conftest import FakeClock

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from ops_center_sdk.storage import SqliteStorage, Storage

    async def main():
        storage = Storage(SqliteStorage(sys.argv[1]), "crash-test")
        i = 0
        while True:
            await storage.set(f"k{i}", {"i": i, "pad": "x" * 200})
            print(i, flush=True)
            i += 1

    asyncio.run(main())
    """
)

INCREMENTER = textwrap.dedent(
    """
    import asyncio, sys
    from ops_center_sdk.storage import SqliteStorage, Storage

    async def main():
        storage = Storage(SqliteStorage(sys.argv[1]), "race")
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(int(sys.argv[2])):
            await storage.increment("counter")
            await storage.compare_and_set("claim", None, sys.argv[3])
        await storage.close()

    asyncio.run(main())
    """
)


def integrity(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        result: str = db.execute("PRAGMA integrity_check").fetchone()[0]
        return result
    finally:
        db.close()


@pytest.mark.slow
def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[int] = []
    try:
        assert writer.stdout is not None
        while len(acknowledged) < 150:
            line = writer.stdout.readline()
            if not line:
                pytest.fail(
                    f"the writer died early: {writer.stderr.read() if writer.stderr else ''}"
                )
            acknowledged.append(int(line))
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
        # Lines already in the pipe were acknowledged before the kill too.
        rest = writer.stdout.read()
        acknowledged += [int(line) for line in rest.split("\n")[:-1]]
    finally:
        if writer.poll() is None:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(timeout=10)
        for stream in (writer.stdout, writer.stderr):
            if stream is not None:
                stream.close()

    assert writer.returncode == -signal.SIGKILL
    assert acknowledged == list(range(len(acknowledged)))
    assert integrity(path) == "ok"

    async def read_back() -> tuple[dict[str, Any], list[str]]:
        async with Storage(SqliteStorage(path), "crash-test") as storage:
            stored = await storage.get_many(f"k{i}" for i in acknowledged)
            return stored, await storage.list_keys("k*")

    stored, keys = asyncio.run(read_back())
    assert stored == {f"k{i}": {"i": i, "pad": "x" * 200} for i in acknowledged}
    # The write in flight at the kill may or may not have committed.
    assert len(keys) in (len(acknowledged), len(acknowledged) + 1)


@pytest.mark.slow
def test_two_processes_increment_and_claim_atomically(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    SqliteStorage(path)  # creates the schema before the race
    rounds = 60
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", INCREMENTER, str(path), str(rounds), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline() == "ready\n"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        for worker in workers:
            _, errors = worker.communicate(timeout=60)
            assert worker.returncode == 0, errors
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)

    async def read_back() -> dict[str, Any]:
        async with Storage(SqliteStorage(path), "race") as storage:
            return await storage.get_many(["counter", "claim"])

    stored = asyncio.run(read_back())
    assert stored["counter"] == 2 * rounds
    assert stored["claim"] in ("first", "second")


@pytest.mark.parametrize(
    ("pattern", "statement"),
    [("device:*", "KEYS_RANGE"), ("*", "KEYS_ALL"), ("\U0010ffff*", "KEYS_FROM")],
)
async def test_list_keys_reads_an_index_range(tmp_path: Path, pattern: str, statement: str) -> None:
    backend = SqliteStorage(tmp_path / "plan.db")
    storage = Storage(backend, "plugin-a")
    await storage.set_many({f"device:{i}": i for i in range(50)} | {"other": 1})
    executed: list[str] = []
    backend._db.set_trace_callback(executed.append)

    await storage.list_keys(pattern)

    backend._db.set_trace_callback(None)
    queries = [sql for sql in executed if sql.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 1
    template = getattr(sqlite_module, statement)
    assert queries[0].startswith(template.split("?")[0])
    arguments = {"KEYS_RANGE": ("ns", "a", "b"), "KEYS_ALL": ("ns",), "KEYS_FROM": ("ns", "a")}
    plan = backend._db.execute(f"EXPLAIN QUERY PLAN {template}", arguments[statement]).fetchall()
    details = " | ".join(row[3] for row in plan)
    assert "SEARCH kv USING PRIMARY KEY (namespace=?" in details, details
    assert "SCAN" not in details, details
    await storage.close()


@pytest.mark.parametrize("statement", ["GET", "GET_MANY", "PURGE_ONE"])
def test_single_key_statements_use_the_primary_key(tmp_path: Path, statement: str) -> None:
    backend = SqliteStorage(tmp_path / "plan.db")
    template = getattr(sqlite_module, statement)
    arguments = {"GET": ("ns", "k"), "GET_MANY": ("ns", '["k"]'), "PURGE_ONE": ("ns", "k", 1.0)}
    plan = backend._db.execute(f"EXPLAIN QUERY PLAN {template}", arguments[statement]).fetchall()
    details = " | ".join(row[3] for row in plan)
    assert "SEARCH kv USING PRIMARY KEY (namespace=? AND key=?)" in details, details
    backend._db.close()


def test_connection_is_durable_wal(tmp_path: Path) -> None:
    backend = SqliteStorage(tmp_path / "pragmas.db")
    db = backend._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert db.isolation_level is None  # autocommit: each write commits by itself
    db.close()


def test_parent_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "storage.db"
    backend = SqliteStorage(path)
    assert path.is_file()
    backend._db.close()


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    content = b"these are my notes, not a database\n" * 200
    path.write_bytes(content)

    with pytest.raises(StorageError) as error:
        open_backend(f"sqlite:///{path}")

    assert str(path) in str(error.value)
    assert path.read_bytes() == content
    assert not (tmp_path / "notes.db-wal").exists()


def test_a_database_with_a_foreign_kv_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other-app.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
    db.execute("INSERT INTO kv VALUES ('theirs', x'00')")
    db.commit()
    db.close()

    with pytest.raises(StorageError, match="not Ops-Center storage") as error:
        SqliteStorage(path)

    assert str(path) in str(error.value)
    db = sqlite3.connect(path)
    assert db.execute("SELECT k FROM kv").fetchall() == [("theirs",)]
    db.close()


def test_a_folder_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=str(tmp_path)):
        SqliteStorage(tmp_path)


def test_memory_path_is_refused() -> None:
    with pytest.raises(StorageError, match="memory://"):
        SqliteStorage(":memory:")


async def test_operations_after_close_raise_storage_error(tmp_path: Path) -> None:
    storage = Storage(SqliteStorage(tmp_path / "closed.db"), "plugin-a")
    await storage.close()
    with pytest.raises(StorageError, match=r"closed\.db"):
        await storage.get("k")


async def test_clear_runs_off_the_loop_and_other_connections_see_it(tmp_path: Path) -> None:
    path = tmp_path / "clear.db"
    storage = Storage(SqliteStorage(path), "plugin-a")
    neighbour = Storage(SqliteStorage(path), "plugin-b")
    await storage.set_many({f"k{i}": i for i in range(3000)})
    await neighbour.set("mine", 1)

    assert await storage.clear() == 3000

    assert await storage.list_keys() == []
    assert await neighbour.get("mine") == 1
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM kv").fetchone()[0] == 1
    db.close()
    await storage.set("after", 1)
    assert await storage.list_keys() == ["after"]
    await storage.close()
    await neighbour.close()


async def test_expired_rows_are_purged_when_seen(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "purge.db"
    storage = Storage(SqliteStorage(path, clock=clock), "plugin-a")
    await storage.set("one", 1, ttl=5)
    await storage.set_many({"page:1": 1, "page:2": 2}, ttl=5)
    await storage.set("keep", 1)
    clock.advance(5)

    assert await storage.get("one") is None
    assert await storage.list_keys("page:*") == []

    db = sqlite3.connect(path)
    assert db.execute("SELECT key FROM kv").fetchall() == [("keep",)]
    db.close()
    await storage.close()


async def test_a_write_is_visible_to_other_connections_once_set_returns(tmp_path: Path) -> None:
    path = tmp_path / "visible.db"
    storage = Storage(SqliteStorage(path), "plugin-a")
    await storage.set("k", {"v": 1})

    db = sqlite3.connect(path)
    row = db.execute("SELECT value FROM kv WHERE namespace = 'plugin-a' AND key = 'k'").fetchone()
    db.close()
    assert row == ('{"v":1}',)
    await storage.close()
