"""The host's resource store: JSON records, API keys and the event log in one SQLite file.

Records of every kind (``devices``, ``alerts``, ... and whatever else the
host keeps, such as installed plugins) live in one table, keyed by
``(kind, id)`` and kept in creation order. Filters compare top-level fields of
the JSON document.

The event log (``events``) holds every event the host emitted, numbered in
commit order, and ``event_cursors`` how far each durable subscriber got: it
is the transactional outbox :mod:`.bus` delivers from.

Calls are synchronous and short: sqlite3 in WAL mode answers a single-record
operation in tens of microseconds, less than a hop to a worker thread would
cost, so the async routes call it directly on the event loop. Each statement
commits on its own (autocommit), so a method that returned has committed,
unless it runs inside :meth:`HostStore.transaction`: then everything in the
block commits together, or nothing does.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: File name of the store inside a host's data directory.
DB_FILE = "ops-center.db"

_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (kind, id)
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash    TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_owner ON api_keys (owner);
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    payload     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_cursors (
    subscriber TEXT PRIMARY KEY,
    position   INTEGER NOT NULL
);
"""

Record = dict[str, Any]


class RecordExists(Exception):
    """A record of that kind already has that id."""

    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"{kind} record {record_id!r} already exists")
        self.kind = kind
        self.record_id = record_id


@dataclass(frozen=True)
class RecordPage:
    """One page of a listing and the number of records matching in all."""

    items: list[Record]
    total: int


@dataclass(frozen=True)
class StoredKey:
    """An API key as stored: its hash, never the key itself."""

    key_hash: str
    key_id: str
    owner: str
    permissions: frozenset[str]
    created_at: str


@dataclass(frozen=True)
class LoggedEvent:
    """An event as the log keeps it: its place in commit order and its envelope fields."""

    seq: int
    id: str
    name: str
    occurred_at: str
    payload: dict[str, Any]


class HostStore:
    """Records and API keys in SQLite.

    ``HostStore(path)`` opens (and creates) a database file;
    ``HostStore.in_memory()`` a private in-memory one, for tests and the
    testing kit. ``HostStore.in_directory(data_dir)`` uses
    ``<data_dir>/ops-center.db``.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        # One connection, used from the event loop's thread and guarded by the
        # lock for the rare caller on another thread.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._depth = 0
        self._migrate()

    @classmethod
    def in_memory(cls) -> HostStore:
        """A store that lives as long as the object (nothing on disk)."""
        return cls(":memory:")

    @classmethod
    def in_directory(cls, data_dir: str | Path) -> HostStore:
        """The store of a data directory (created when missing)."""
        directory = Path(data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory / DB_FILE)

    def _migrate(self) -> None:
        with self._lock:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version > _SCHEMA_VERSION:
                self._db.close()
                raise RuntimeError(
                    f"{self.path} was written by a newer Ops-Center (schema {version}); "
                    "upgrade ops-center-plugin-sdk"
                )
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the database (a closed store cannot be used again)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit every write of the block together, or none if it raises.

        The block must not ``await``: the store has one connection, and a
        coroutine running meanwhile would write inside this transaction.
        Nested blocks join the outer one.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    # ==================== records ====================

    def insert(self, kind: str, record: Mapping[str, Any]) -> None:
        """Add a record (``record["id"]`` is its id); :class:`RecordExists` if taken."""
        record_id = str(record["id"])
        text = json.dumps(record, separators=(",", ":"))
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO records (kind, id, data) VALUES (?, ?, ?)",
                    (kind, record_id, text),
                )
            except sqlite3.IntegrityError:
                raise RecordExists(kind, record_id) from None

    def get(self, kind: str, record_id: str) -> Record | None:
        """The record, or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM records WHERE kind = ? AND id = ?", (kind, record_id)
            ).fetchone()
        if row is None:
            return None
        record: Record = json.loads(row[0])
        return record

    def exists(self, kind: str, record_id: str) -> bool:
        """True when the record exists."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM records WHERE kind = ? AND id = ?", (kind, record_id)
            ).fetchone()
        return row is not None

    def replace(self, kind: str, record_id: str, record: Mapping[str, Any]) -> bool:
        """Overwrite a record, keeping its place in the order; False if absent."""
        text = json.dumps(record, separators=(",", ":"))
        with self._lock:
            cursor = self._db.execute(
                "UPDATE records SET data = ? WHERE kind = ? AND id = ?", (text, kind, record_id)
            )
        return cursor.rowcount > 0

    def delete(self, kind: str, record_id: str) -> bool:
        """Remove a record; True when it existed."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM records WHERE kind = ? AND id = ?", (kind, record_id)
            )
        return cursor.rowcount > 0

    def pop(self, kind: str, record_id: str) -> Record | None:
        """Remove a record and return it as it was; ``None`` when there was none.

        One statement, so two callers deleting the same record never both get it.
        """
        with self._lock:
            row = self._db.execute(
                "DELETE FROM records WHERE kind = ? AND id = ? RETURNING data", (kind, record_id)
            ).fetchone()
        if row is None:
            return None
        record: Record = json.loads(row[0])
        return record

    def find(
        self,
        kind: str,
        *,
        where: Mapping[str, str | None] | None = None,
        where_casefold: Mapping[str, str] | None = None,
        contains: Mapping[str, str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> RecordPage:
        """Records of ``kind`` in creation order, filtered on top-level fields.

        ``where`` fields must equal the value (``None``: the field is null or
        absent), ``where_casefold`` equal it ignoring case, ``contains`` hold
        it as a case-insensitive substring.
        """
        clauses = ["kind = ?"]
        params: list[Any] = [kind]
        for field, value in (where or {}).items():
            if value is None:
                clauses.append("json_extract(data, ?) IS NULL")
                params.append(_json_path(field))
            else:
                clauses.append("json_extract(data, ?) = ?")
                params += [_json_path(field), value]
        for field, value in (where_casefold or {}).items():
            clauses.append("lower(json_extract(data, ?)) = lower(?)")
            params += [_json_path(field), value]
        for field, value in (contains or {}).items():
            clauses.append("instr(lower(json_extract(data, ?)), lower(?)) > 0")
            params += [_json_path(field), value]
        condition = " AND ".join(clauses)
        with self._lock:
            (total,) = self._db.execute(
                f"SELECT count(*) FROM records WHERE {condition}", params
            ).fetchone()
            rows = self._db.execute(
                f"SELECT data FROM records WHERE {condition} ORDER BY seq LIMIT ? OFFSET ?",
                [*params, -1 if limit is None else limit, offset],
            ).fetchall()
        return RecordPage([json.loads(row[0]) for row in rows], total)

    def count(self, kind: str) -> int:
        """How many records of ``kind`` exist."""
        with self._lock:
            (total,) = self._db.execute(
                "SELECT count(*) FROM records WHERE kind = ?", (kind,)
            ).fetchone()
        return int(total)

    # ==================== API keys ====================

    def add_key(self, key: StoredKey) -> None:
        """Store an API key's hash and grants."""
        permissions = json.dumps(sorted(key.permissions))
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys (key_hash, key_id, owner, permissions, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (key.key_hash, key.key_id, key.owner, permissions, key.created_at),
            )

    def api_keys(self) -> list[StoredKey]:
        """Every stored API key."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key_hash, key_id, owner, permissions, created_at FROM api_keys"
            ).fetchall()
        return [
            StoredKey(key_hash, key_id, owner, frozenset(json.loads(perms)), created_at)
            for key_hash, key_id, owner, perms, created_at in rows
        ]

    def delete_keys(self, *, key_hashes: Iterable[str] = (), owner: str | None = None) -> int:
        """Remove keys by hash and/or by owner; return how many went."""
        removed = 0
        with self._lock:
            for key_hash in key_hashes:
                cursor = self._db.execute("DELETE FROM api_keys WHERE key_hash = ?", (key_hash,))
                removed += cursor.rowcount
            if owner is not None:
                cursor = self._db.execute("DELETE FROM api_keys WHERE owner = ?", (owner,))
                removed += cursor.rowcount
        return removed

    # ==================== event log ====================

    def append_event(
        self, event_id: str, name: str, occurred_at: str, payload: Mapping[str, Any]
    ) -> int:
        """Log an event; its sequence number (commit order) is returned."""
        text = json.dumps(payload, separators=(",", ":"))
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO events (id, name, occurred_at, payload) VALUES (?, ?, ?, ?)",
                (event_id, name, occurred_at, text),
            )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def events_after(self, seq: int, *, limit: int = 100) -> list[LoggedEvent]:
        """Logged events numbered above ``seq``, oldest first, at most ``limit``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, name, occurred_at, payload FROM events"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [
            LoggedEvent(seq, event_id, name, occurred_at, json.loads(payload))
            for seq, event_id, name, occurred_at, payload in rows
        ]

    def last_event_seq(self) -> int:
        """The number of the newest event ever logged (0: none yet).

        Numbers are never reused, so pruning old events does not lower it.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'"
            ).fetchone()
        return int(row[0]) if row is not None else 0

    def event_count(self) -> int:
        """How many events the log holds."""
        with self._lock:
            (total,) = self._db.execute("SELECT count(*) FROM events").fetchone()
        return int(total)

    def last_event_before(self, occurred_at: str) -> int:
        """The number of the newest logged event that occurred before ``occurred_at`` (0: none)."""
        with self._lock:
            oldest = self._db.execute(
                "SELECT occurred_at FROM events ORDER BY seq LIMIT 1"
            ).fetchone()
            if oldest is None or oldest[0] >= occurred_at:
                return 0  # the usual case, answered without a scan
            (seq,) = self._db.execute(
                "SELECT max(seq) FROM events WHERE occurred_at < ?", (occurred_at,)
            ).fetchone()
        return int(seq or 0)

    def cursor(self, subscriber: str) -> int | None:
        """The number of the last event ``subscriber`` settled; ``None`` if it has no cursor."""
        with self._lock:
            row = self._db.execute(
                "SELECT position FROM event_cursors WHERE subscriber = ?", (subscriber,)
            ).fetchone()
        return int(row[0]) if row is not None else None

    def cursors(self) -> dict[str, int]:
        """Every durable subscriber's cursor."""
        with self._lock:
            rows = self._db.execute("SELECT subscriber, position FROM event_cursors").fetchall()
        return {subscriber: int(position) for subscriber, position in rows}

    def set_cursor(self, subscriber: str, position: int) -> None:
        """Record that ``subscriber`` settled every event up to ``position``."""
        with self._lock:
            self._db.execute(
                "INSERT INTO event_cursors (subscriber, position) VALUES (?, ?)"
                " ON CONFLICT (subscriber) DO UPDATE SET position = excluded.position",
                (subscriber, position),
            )

    def drop_cursor(self, subscriber: str) -> bool:
        """Forget ``subscriber``'s cursor; True when it had one."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM event_cursors WHERE subscriber = ?", (subscriber,)
            )
        return cursor.rowcount > 0

    def prune_events(self, *, up_to: int, keep_last: int, older_than: str) -> int:
        """Delete events numbered ``<= up_to``, but for the newest ``keep_last`` of those
        that did not occur before ``older_than`` (ISO 8601); return how many went."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM events WHERE seq <= ? AND (seq <= ? OR occurred_at < ?)",
                (up_to, up_to - keep_last, older_than),
            )
        return cursor.rowcount


def _json_path(field: str) -> str:
    # Quoted so that field names with dots or dashes address one top-level key.
    escaped = field.replace("\\", "\\\\").replace('"', '\\"')
    return f'$."{escaped}"'
