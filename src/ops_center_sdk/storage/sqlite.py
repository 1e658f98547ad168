"""The SQLite backend: the embedded default, one file, durable writes.

sqlite3 is called directly on the event-loop thread: in WAL mode a single-key
operation costs 5-35 us, less than a hop to a worker thread (about 90 us), so
going through a thread would be slower for the operations plugins do most.
Only :meth:`SqliteStorage.clear`, which can touch a whole namespace, runs off
the loop, on a connection of its own.

Every write is acknowledged only once it is on disk (WAL, ``synchronous=FULL``).
Single statements autocommit; operations made of several statements hold
``BEGIN IMMEDIATE`` so they stay atomic with other processes using the file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from ..errors import StorageError
from .base import Clock, StorageBackend, add_to_json_number, prefix_upper_bound

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT,
    key TEXT,
    value TEXT NOT NULL,
    expires_at REAL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID
"""
_COLUMNS = ["namespace", "key", "value", "expires_at"]

GET = "SELECT value, expires_at FROM kv WHERE namespace = ? AND key = ?"
GET_MANY = (
    "SELECT key, value, expires_at FROM kv"
    " WHERE namespace = ? AND key IN (SELECT value FROM json_each(?))"
)
PUT = "INSERT OR REPLACE INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)"
DELETE = "DELETE FROM kv WHERE namespace = ? AND key = ? RETURNING expires_at"
PURGE_ONE = "DELETE FROM kv WHERE namespace = ? AND key = ? AND expires_at <= ?"
KEYS_ALL = "SELECT key, expires_at FROM kv WHERE namespace = ? ORDER BY key"
# A half-open range on the primary key: SQLite reads only the matching index
# range. LIKE and GLOB would treat '%', '_', '*' in the prefix as wildcards.
KEYS_RANGE = (
    "SELECT key, expires_at FROM kv WHERE namespace = ? AND key >= ? AND key < ? ORDER BY key"
)
KEYS_FROM = "SELECT key, expires_at FROM kv WHERE namespace = ? AND key >= ? ORDER BY key"
COUNT_LIVE = (
    "SELECT count(*) FROM kv WHERE namespace = ? AND (expires_at IS NULL OR expires_at > ?)"
)
CLEAR = "DELETE FROM kv WHERE namespace = ?"


class SqliteStorage(StorageBackend):
    """Stores every namespace in one table of one SQLite file.

    Parent directories are created. Several processes may share the file.

    >>> backend = SqliteStorage("/var/lib/ops-center/plugins/my-plugin/storage.db")
    """

    shared = True

    def __init__(
        self, path: str | Path, *, clock: Clock = time.time, busy_timeout: float = 5.0
    ) -> None:
        super().__init__(clock=clock)
        if str(path) in ("", ":memory:") or str(path).startswith("file:"):
            raise StorageError(
                f"SQLite storage needs a file path, got {str(path)!r} (use memory:// for RAM)"
            )
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._errors = _SqliteErrors(self.path)
        self._clear_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the folder of SQLite storage {self.path}: {exc}"
            ) from exc
        self._db = self._connect(create=True)
        self._clearer: sqlite3.Connection | None = None

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=self._busy_timeout,
                check_same_thread=False,
            )
            db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StorageError(f"SQLite storage {self.path}: cannot use WAL (mode {mode})")
            db.execute("PRAGMA synchronous = FULL")
            if create:
                db.execute(SCHEMA)
                columns = [row[1] for row in db.execute("PRAGMA table_info(kv)")]
                if columns != _COLUMNS:
                    raise StorageError(
                        f"{self.path} has a table 'kv' that is not Ops-Center storage "
                        f"(columns {columns})"
                    )
        except sqlite3.Error as exc:
            if db is not None:
                db.close()
            raise StorageError(f"{self.path} is not a usable SQLite database: {exc}") from exc
        except StorageError:
            if db is not None:
                db.close()
            raise
        return db

    @contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _read(self, namespace: str, key: str, now: float) -> tuple[str, float | None] | None:
        row: tuple[str, float | None] | None = self._db.execute(GET, (namespace, key)).fetchone()
        if row is None or row[1] is None or row[1] > now:
            return row
        if not self._db.in_transaction:
            self._db.execute(PURGE_ONE, (namespace, key, now))
        return None

    async def get(self, namespace: str, key: str) -> str | None:
        with self._errors:
            row = self._read(namespace, key, self.clock())
        return None if row is None else row[0]

    async def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        now = self.clock()
        with self._errors:
            rows = self._db.execute(GET_MANY, (namespace, json.dumps(wanted))).fetchall()
        live = {key: value for key, value, exp in rows if exp is None or exp > now}
        return {key: live[key] for key in wanted if key in live}

    async def set(self, namespace: str, key: str, value: str, expires_at: float | None) -> None:
        with self._errors:
            self._db.execute(PUT, (namespace, key, value, expires_at))

    async def set_many(
        self, namespace: str, items: Mapping[str, str], expires_at: float | None
    ) -> None:
        rows = [(namespace, key, value, expires_at) for key, value in items.items()]
        with self._errors, self._write_transaction() as db:
            db.executemany(PUT, rows)

    async def delete(self, namespace: str, key: str) -> bool:
        now = self.clock()
        with self._errors:
            rows = self._db.execute(DELETE, (namespace, key)).fetchall()
        return bool(rows) and (rows[0][0] is None or rows[0][0] > now)

    async def exists(self, namespace: str, key: str) -> bool:
        with self._errors:
            return self._read(namespace, key, self.clock()) is not None

    async def keys(self, namespace: str, prefix: str) -> list[str]:
        now = self.clock()
        upper = prefix_upper_bound(prefix)
        with self._errors:
            if not prefix:
                rows = self._db.execute(KEYS_ALL, (namespace,)).fetchall()
            elif upper is None:
                rows = self._db.execute(KEYS_FROM, (namespace, prefix)).fetchall()
            else:
                rows = self._db.execute(KEYS_RANGE, (namespace, prefix, upper)).fetchall()
            live = [key for key, exp in rows if exp is None or exp > now]
            if len(live) != len(rows):
                dead = [
                    (namespace, key, now) for key, exp in rows if exp is not None and exp <= now
                ]
                with self._write_transaction() as db:
                    db.executemany(PURGE_ONE, dead)
        return live

    async def clear(self, namespace: str) -> int:
        return await asyncio.to_thread(self._clear, namespace, self.clock())

    def _clear(self, namespace: str, now: float) -> int:
        with self._clear_lock, self._errors:
            if self._clearer is None:
                self._clearer = self._connect(create=False)
            db = self._clearer
            db.execute("BEGIN IMMEDIATE")
            try:
                removed: int = db.execute(COUNT_LIVE, (namespace, now)).fetchone()[0]
                db.execute(CLEAR, (namespace,))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return removed

    async def compare_and_set(
        self,
        namespace: str,
        key: str,
        expected: str | None,
        value: str,
        expires_at: float | None,
    ) -> bool:
        now = self.clock()
        with self._errors, self._write_transaction() as db:
            row = self._read(namespace, key, now)
            if (None if row is None else row[0]) != expected:
                return False
            db.execute(PUT, (namespace, key, value, expires_at))
            return True

    async def increment(
        self, namespace: str, key: str, amount: int | float, expires_at: float | None
    ) -> str:
        now = self.clock()
        with self._errors, self._write_transaction() as db:
            row = self._read(namespace, key, now)
            if row is not None:
                expires_at = row[1]
            text = add_to_json_number(None if row is None else row[0], amount, key)
            db.execute(PUT, (namespace, key, text, expires_at))
            return text

    async def close(self) -> None:
        with self._clear_lock:
            if self._clearer is not None:
                self._clearer.close()
                self._clearer = None
        self._db.close()


class _SqliteErrors:
    """Turns sqlite3 errors into :class:`StorageError` naming the file.

    A class rather than ``@contextmanager``: it is entered on every call and a
    generator-based manager costs several times more.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, sqlite3.Error):
            raise StorageError(f"SQLite storage {self.path}: {error}") from error
