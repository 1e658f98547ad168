"""Dead letters: events a plugin process could not be given, kept for an operator.

An event lands here when its delivery was given up (the plugin refused it,
or every retry failed), or when it was still queued as the plugin was
disabled or the host stopped. Each keeps the whole envelope, so a replay
sends the same event id again: a plugin that did handle it after all
answers "duplicate" and runs nothing twice.

Records live in the host store (kind ``dead_letters``), so they outlast
restarts; ``GET /api/v1/plugins/{id}/dead-letters`` lists them and
``POST .../dead-letters/{event_id}/replay`` queues one again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .bus import EventEnvelope
from .store import HostStore, Record, RecordPage

#: Record kind of dead letters in the host store.
DEAD_LETTER_KIND = "dead_letters"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class DeadLetters:
    """The dead letters of every plugin, in the host store."""

    def __init__(self, store: HostStore) -> None:
        self._store = store

    @staticmethod
    def _id(plugin_id: str, event_id: str) -> str:
        return f"{plugin_id}:{event_id}"

    def add(
        self,
        plugin_id: str,
        envelope: EventEnvelope,
        *,
        attempts: int,
        error: str | None,
        status_code: int | None = None,
        reason: str = "failed",
    ) -> Record:
        """Keep ``envelope`` for ``plugin_id`` (replacing an earlier one of the same id).

        ``reason`` is ``failed`` (retries used up), ``refused`` (the plugin
        answered that it will never take it), ``too_large``, ``disabled`` or
        ``shutdown`` (still queued when the plugin or host stopped).
        """
        record_id = self._id(plugin_id, envelope["id"])
        record: Record = {
            "id": record_id,
            "plugin_id": plugin_id,
            "event_id": envelope["id"],
            "event": envelope["name"],
            "occurred_at": envelope.get("occurred_at"),
            "reason": reason,
            "attempts": attempts,
            "last_error": error,
            "status_code": status_code,
            "dead_at": _now(),
            "envelope": dict(envelope),
        }
        if not self._store.replace(DEAD_LETTER_KIND, record_id, record):
            self._store.insert(DEAD_LETTER_KIND, record)
        return record

    def page(self, plugin_id: str, *, offset: int = 0, limit: int | None = None) -> RecordPage:
        """The plugin's dead letters, oldest first."""
        return self._store.find(
            DEAD_LETTER_KIND, where={"plugin_id": plugin_id}, offset=offset, limit=limit
        )

    def get(self, plugin_id: str, event_id: str) -> Record | None:
        return self._store.get(DEAD_LETTER_KIND, self._id(plugin_id, event_id))

    def remove(self, plugin_id: str, event_id: str) -> bool:
        return self._store.delete(DEAD_LETTER_KIND, self._id(plugin_id, event_id))

    def count(self, plugin_id: str) -> int:
        return self.page(plugin_id, limit=0).total

    def clear(self, plugin_id: str) -> int:
        """Forget every dead letter of the plugin (it is being uninstalled)."""
        removed = 0
        for record in self.page(plugin_id).items:
            removed += self._store.delete(DEAD_LETTER_KIND, record["id"])
        return removed


def envelope_of(record: Record) -> EventEnvelope:
    """The event a record holds in ``envelope`` (a dead letter, a pending delivery)."""
    kept: dict[str, Any] = record["envelope"]
    return EventEnvelope(
        id=kept["id"],
        name=kept["name"],
        occurred_at=kept.get("occurred_at", ""),
        payload=kept.get("payload", {}),
    )
