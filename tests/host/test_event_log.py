"""The durable event log: events commit with their records, subscribers resume from cursors."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from host_kit import ADMIN_KEY, http_client

from ops_center_sdk.host import EventBus, EventEnvelope, create_host_app
from ops_center_sdk.host.bus import EventRetention
from ops_center_sdk.host.store import HostStore


def store_at(tmp_path: Path) -> HostStore:
    return HostStore.in_directory(tmp_path / "ops-center")


class Gate:
    """An async subscriber that records events and holds on the one numbered ``hold_at``."""

    def __init__(self, hold_at: int | None = None) -> None:
        self.seen: list[int] = []
        self.hold_at = hold_at
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, envelope: EventEnvelope) -> None:
        n = envelope["payload"]["n"]
        self.seen.append(n)
        if n == self.hold_at:
            self.holding.set()
            await self.release.wait()


async def test_a_failed_write_leaves_neither_the_record_nor_its_event(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    bus = EventBus(store)

    def write_then_fail() -> None:
        with store.transaction():
            store.insert("devices", {"id": "d1"})
            bus.publish("device.created", {"device_id": "d1", "device_data": {"id": "d1"}})
            raise RuntimeError("the write fails after the event was logged")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert store.get("devices", "d1") is None
    assert store.event_count() == 0
    assert store.events_after(0) == []
    store.close()


async def test_an_acknowledged_event_is_on_disk_when_the_call_answers(tmp_path: Path) -> None:
    data_dir = tmp_path / "ops-center"
    app = create_host_app(data_dir=data_dir, admin_key=ADMIN_KEY)
    async with http_client(app) as client:
        response = await client.post("/devices", json={"id": "d1", "name": "Web"})
        assert response.status_code == 201
        # Another connection, as a process started after a crash would open it.
        other = HostStore.in_directory(data_dir)
        [event] = other.events_after(0)
        assert event.name == "device.created"
        assert event.payload["device_data"]["name"] == "Web"
        other.close()
    await app.state.bus.aclose()
    app.state.store.close()


async def test_a_durable_subscriber_resumes_after_a_crash_with_what_it_had_not_settled(
    tmp_path: Path,
) -> None:
    store = store_at(tmp_path)
    bus = EventBus(store)
    gate = Gate(hold_at=2)
    bus.subscribe(gate, name="plugin:p")
    for n in range(5):
        await bus.emit("demo.tick", {"n": n})
    await asyncio.wait_for(gate.holding.wait(), 5)
    # The host dies while the subscriber handles event 2: nothing is drained.
    bus.stop()
    store.close()

    store = store_at(tmp_path)
    bus = EventBus(store)
    after = Gate()
    bus.subscribe(after, name="plugin:p")
    await bus.emit("demo.tick", {"n": 5})
    await asyncio.wait_for(bus.drain(), 5)
    assert gate.seen == [0, 1, 2]
    assert after.seen == [2, 3, 4, 5]  # 2 again: it was being handled
    store.close()


async def test_a_new_subscriber_starts_with_the_next_event(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    bus = EventBus(store)
    await bus.emit("demo.tick", {"n": 0})
    late = Gate()
    bus.subscribe(late, name="plugin:late")
    anonymous = Gate()
    bus.subscribe(anonymous)
    await bus.emit("demo.tick", {"n": 1})
    await bus.drain()
    assert late.seen == [1]
    assert anonymous.seen == [1]
    store.close()


async def test_two_subscribers_cannot_share_a_name() -> None:
    bus = EventBus()
    bus.subscribe(Gate(), name="plugin:p")
    with pytest.raises(ValueError, match="plugin:p"):
        bus.subscribe(Gate(), name="plugin:p")


async def test_unsubscribe_keeps_the_cursor_and_forget_returns_the_backlog(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    bus = EventBus(store)
    gate = Gate()
    unsubscribe = bus.subscribe(gate, name="plugin:p")
    await bus.emit("demo.tick", {"n": 0})
    await bus.drain()
    unsubscribe()
    await bus.emit("demo.tick", {"n": 1})
    await bus.emit("demo.tick", {"n": 2})
    backlog = bus.forget("plugin:p")
    assert [envelope["payload"]["n"] for envelope in backlog] == [1, 2]
    assert store.cursor("plugin:p") is None
    assert bus.forget("plugin:p") == []
    again = Gate()
    bus.subscribe(again, name="plugin:p")
    await bus.emit("demo.tick", {"n": 3})
    await bus.drain()
    assert again.seen == [3]
    store.close()


async def test_a_sync_durable_subscriber_commits_its_writes_with_its_cursor(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_at(tmp_path)
    bus = EventBus(store)

    def record(envelope: EventEnvelope) -> None:
        n = envelope["payload"]["n"]
        store.insert("seen", {"id": str(n)})
        if n == 1:
            raise RuntimeError("fails after its write")

    bus.subscribe(record, name="webhooks")
    for n in range(3):
        await bus.emit("demo.tick", {"n": n})
    with caplog.at_level(logging.ERROR, logger="ops_center_sdk.host"):
        await bus.drain()
    assert [r["id"] for r in store.find("seen").items] == ["0", "2"]  # 1's write rolled back
    assert store.cursor("webhooks") == store.last_event_seq()
    assert "fails after its write" in caplog.text
    store.close()


async def test_events_reach_each_subscriber_in_commit_order(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    bus = EventBus(store)
    first, second = Gate(), Gate()
    bus.subscribe(first, name="plugin:a")
    bus.subscribe(second, name="plugin:b")

    async def writer(start: int) -> None:
        for n in range(start, start + 50):
            with store.transaction():
                store.insert("devices", {"id": f"d{n}"})
                bus.publish("demo.tick", {"n": n})
            await asyncio.sleep(0)

    await asyncio.gather(writer(0), writer(100), writer(200))
    await bus.drain()
    committed = [event.payload["n"] for event in store.events_after(0, limit=1000)]
    assert first.seen == committed
    assert second.seen == committed
    assert len(committed) == 150
    store.close()


async def test_settled_events_are_pruned_by_count_and_age_unsettled_ones_kept(
    tmp_path: Path,
) -> None:
    store = store_at(tmp_path)
    bus = EventBus(
        store,
        retention=EventRetention(keep_count=3, keep_age=timedelta(hours=1), prune_every=10**9),
    )
    fast = Gate()
    bus.subscribe(fast, name="plugin:fast")
    stalled = Gate(hold_at=6)
    bus.subscribe(stalled, name="plugin:stalled")
    for n in range(10):
        await bus.emit("demo.tick", {"n": n})
    await asyncio.wait_for(stalled.holding.wait(), 5)
    # Events 0-5 are settled by both; 6-9 not by "stalled".
    assert bus.prune() == 3  # 0, 1, 2: settled and beyond the newest 3
    assert [e.payload["n"] for e in store.events_after(0)] == [3, 4, 5, 6, 7, 8, 9]
    # An hour later the settled ones go whatever their number; the unsettled stay.
    assert bus.prune(now=datetime.now(UTC) + timedelta(hours=2)) == 3
    assert [e.payload["n"] for e in store.events_after(0)] == [6, 7, 8, 9]
    stalled.release.set()
    await bus.drain()
    assert stalled.seen == list(range(10))
    assert store.last_event_seq() == 10  # numbers are never reused
    store.close()


async def test_events_unsettled_past_the_maximum_age_are_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_at(tmp_path)
    bus = EventBus(store, retention=EventRetention(unsettled_max_age=timedelta(days=7)))
    unsubscribe = bus.subscribe(Gate(), name="plugin:broken")
    unsubscribe()  # it never comes back to take its events
    for n in range(4):
        await bus.emit("demo.tick", {"n": n})
    assert bus.prune(now=datetime.now(UTC) + timedelta(days=1)) == 0
    with caplog.at_level(logging.WARNING, logger="ops_center_sdk.host"):
        assert bus.prune(now=datetime.now(UTC) + timedelta(days=8)) == 4
    assert "never delivered to plugin:broken" in caplog.text
    again = Gate()
    bus.subscribe(again, name="plugin:broken")
    await bus.emit("demo.tick", {"n": 4})
    await bus.drain()
    assert again.seen == [4]
    store.close()


async def test_the_log_is_pruned_as_events_are_published(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    bus = EventBus(store, retention=EventRetention(keep_count=20, prune_every=50))
    gate = Gate()
    bus.subscribe(gate, name="plugin:p")
    most = 0
    for n in range(500):
        await bus.emit("demo.tick", {"n": n})
        await bus.drain()
        most = max(most, store.event_count())
    assert gate.seen == list(range(500))
    assert most <= 20 + 50
    store.close()


async def test_a_store_from_the_previous_schema_gains_the_log(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "ops-center.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
        " id TEXT NOT NULL, data TEXT NOT NULL, UNIQUE (kind, id));"
        "INSERT INTO records (kind, id, data) VALUES ('devices', 'd1', '{\"id\": \"d1\"}');"
        "PRAGMA user_version=1;"
    )
    db.close()
    store = HostStore(path)
    assert store.get("devices", "d1") == {"id": "d1"}
    assert store.last_event_seq() == 0
    store.append_event("e1", "demo.tick", datetime.now(UTC).isoformat(), {})
    assert store.last_event_seq() == 1
    store.close()


async def test_events_of_rest_writes_wait_in_the_log_for_a_subscriber_that_was_down(
    tmp_path: Path,
) -> None:
    """A REST write's event reaches a durable subscriber that was down when it committed."""
    data_dir = tmp_path / "ops-center"
    app: FastAPI = create_host_app(data_dir=data_dir, admin_key=ADMIN_KEY)
    bus: EventBus = app.state.bus
    seen: list[dict[str, Any]] = []

    async def plugin(envelope: EventEnvelope) -> None:
        seen.append(envelope["payload"])

    unsubscribe = bus.subscribe(plugin, name="plugin:p")
    unsubscribe()  # down while the calls are made
    client: httpx.AsyncClient
    async with http_client(app) as client:
        for n in range(3):
            response = await client.post("/devices", json={"id": f"d{n}", "name": "Web"})
            assert response.status_code == 201
    bus.subscribe(plugin, name="plugin:p")
    await bus.drain()
    assert [payload["device_id"] for payload in seen] == ["d0", "d1", "d2"]
    await bus.aclose()
    app.state.store.close()
