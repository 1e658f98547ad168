"""Mutations emit catalog events after the write commits; filters run before it."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ops_center_sdk.events import EVENT_CATALOG
from ops_center_sdk.host import EventBus, EventEnvelope
from ops_center_sdk.host.store import DB_FILE


class Recorder:
    """A subscriber that records envelopes and what a separate connection sees then."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.envelopes: list[EventEnvelope] = []
        self.committed: list[bool] = []

    def __call__(self, envelope: EventEnvelope) -> None:
        self.envelopes.append(envelope)
        payload = envelope["payload"]
        kind, _, action = envelope["name"].partition(".")
        table = {"device": "devices", "alert": "alerts", "user": "users"}.get(kind, "organizations")
        record_id = payload[f"{kind}_id"]
        with sqlite3.connect(self.db_path) as db:
            row = db.execute(
                "SELECT data FROM records WHERE kind = ? AND id = ?", (table, record_id)
            ).fetchone()
        self.committed.append(row is None if action == "deleted" else row is not None)

    @property
    def names(self) -> list[str]:
        return [e["name"] for e in self.envelopes]


async def test_every_mutation_emits_its_event_after_commit(
    app: FastAPI, client: httpx.AsyncClient, data_dir: Path
) -> None:
    recorder = Recorder(data_dir / DB_FILE)
    app.state.bus.subscribe(recorder)
    await client.post("/organizations", json={"id": "org-1", "name": "Acme"})
    await client.post("/users", json={"id": "u1", "email": "ann@example.com"})
    await client.patch("/users/u1", json={"role": "operator"})
    await client.post("/devices", json={"id": "d1", "name": "Web"})
    await client.patch("/devices/d1", json={"status": "online"})
    await client.put("/devices/d1", json={"name": "Web 2"})
    await client.post("/devices/d1/metrics", json={"cpu_usage": 97})
    await client.post("/alerts", json={"id": "a1", "title": "Hot", "severity": "critical"})
    await client.post("/alerts/a1/acknowledge")
    await client.post("/alerts/a1/resolve")
    before_deletion = (await client.get("/devices/d1")).json()
    await client.delete("/devices/d1")
    await app.state.bus.drain()

    assert recorder.names == [
        "organization.created",
        "user.created",
        "user.updated",
        "device.created",
        "device.updated",
        "device.updated",
        "device.metrics_updated",
        "alert.created",
        "alert.updated",
        "alert.resolved",
        "device.deleted",
    ]
    assert all(recorder.committed)
    for envelope in recorder.envelopes:
        assert set(envelope) == {"id", "name", "occurred_at", "payload"}
        assert tuple(envelope["payload"]) == EVENT_CATALOG[envelope["name"]]
        datetime.fromisoformat(envelope["occurred_at"])
    assert len({e["id"] for e in recorder.envelopes}) == len(recorder.envelopes)
    by_name = {e["name"]: e["payload"] for e in recorder.envelopes}
    assert by_name["device.metrics_updated"] == {"device_id": "d1", "metrics": {"cpu_usage": 97}}
    assert by_name["alert.resolved"]["alert_data"]["status"] == "resolved"
    assert by_name["user.updated"]["user_data"]["role"] == "operator"
    # A deletion carries the record as it was just before it went.
    assert by_name["device.deleted"] == {"device_id": "d1", "device_data": before_deletion}
    assert before_deletion["name"] == "Web 2"
    assert before_deletion["last_metrics"] == {"cpu_usage": 97}


async def test_failed_writes_emit_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    app.state.bus.subscribe(lambda envelope: seen.append(envelope["name"]))
    await client.post("/devices", json={"id": "d1", "name": "Web"})
    await client.post("/devices", json={"id": "d1", "name": "Again"})
    await client.post("/devices", json={"name": ""})
    await client.patch("/devices/d1", json={"status": "bogus"})
    await client.delete("/devices/nope")
    await client.post("/alerts", json={"title": "t", "severity": "unheard-of"})
    await client.post("/devices", json={"name": "x", "organization_id": "no-such-org"})
    await app.state.bus.drain()
    assert seen == ["device.created"]


async def test_filter_chain_shapes_the_stored_device(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    async def run_filters(name: str, data: Any) -> Any:
        calls.append((name, dict(data)))
        data["plugin_processed"] = True
        data["processed_at"] = datetime(2024, 1, 2, 3, 4, 5)
        data["id"] = "hijacked"
        return data

    app.state.bus.set_filter_runner(run_filters)
    events: list[EventEnvelope] = []
    app.state.bus.subscribe(events.append)
    created = (await client.post("/devices", json={"id": "d1", "name": "Web"})).json()
    assert calls[0][0] == "device.data.process"
    assert calls[0][1]["id"] == "d1"
    assert calls[0][1]["name"] == "Web"
    assert created["plugin_processed"] is True
    assert created["processed_at"] == "2024-01-02T03:04:05"
    assert created["id"] == "d1"
    assert (await client.get("/devices/d1")).json() == created
    await app.state.bus.drain()
    assert events[0]["payload"]["device_data"] == created

    updated = (await client.patch("/devices/d1", json={"status": "online"})).json()
    assert len(calls) == 2
    assert calls[1][1]["status"] == "online"
    assert updated["plugin_processed"] is True


@pytest.mark.parametrize(
    "outcome",
    ["raise", "none", "no-name", "not-json"],
)
async def test_a_broken_filter_chain_leaves_the_device_unfiltered(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, outcome: str
) -> None:
    async def run_filters(name: str, data: Any) -> Any:
        data["touched"] = True  # the host must not keep this half-done change
        if outcome == "raise":
            raise RuntimeError("filter exploded")
        if outcome == "none":
            return None
        if outcome == "no-name":
            del data["name"]
            return data
        data["handle"] = object()
        return data

    app.state.bus.set_filter_runner(run_filters)
    caplog.set_level(logging.ERROR, logger="ops_center_sdk.host")
    response = await client.post("/devices", json={"id": "d1", "name": "Web"})
    assert response.status_code == 201
    assert response.json()["name"] == "Web"
    assert "touched" not in response.json()
    assert "touched" not in (await client.get("/devices/d1")).json()
    assert any("device.data.process" in r.getMessage() for r in caplog.records)


async def test_a_filter_cannot_move_a_device_into_an_unknown_organization(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def run_filters(name: str, data: Any) -> Any:
        return {**data, "organization_id": data["name"], "filtered": True}

    app.state.bus.set_filter_runner(run_filters)
    caplog.set_level(logging.ERROR, logger="ops_center_sdk.host")
    await client.post("/organizations", json={"id": "org-1", "name": "Acme"})
    lost = await client.post("/devices", json={"id": "d1", "name": "nowhere"})
    assert lost.status_code == 201
    assert (lost.json()["organization_id"], "filtered" in lost.json()) == (None, False)
    assert any("'nowhere', which does not exist" in r.getMessage() for r in caplog.records)
    # into one that exists, the filter's output is kept
    moved = await client.post("/devices", json={"id": "d2", "name": "org-1"})
    assert (moved.json()["organization_id"], moved.json()["filtered"]) == ("org-1", True)


async def test_a_failing_subscriber_breaks_neither_the_response_nor_the_others(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(envelope: EventEnvelope) -> None:
        raise RuntimeError("subscriber exploded")

    seen: list[str] = []
    app.state.bus.subscribe(failing)
    app.state.bus.subscribe(lambda envelope: seen.append(envelope["name"]))
    caplog.set_level(logging.ERROR, logger="ops_center_sdk.host")
    assert (await client.post("/devices", json={"name": "A"})).status_code == 201
    assert (await client.post("/devices", json={"name": "B"})).status_code == 201
    await app.state.bus.drain()
    assert seen == ["device.created", "device.created"]
    failures = [r for r in caplog.records if "subscriber exploded" in (r.exc_text or "")]
    assert len(failures) == 2


async def test_a_slow_subscriber_does_not_hold_the_response(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    release = asyncio.Event()
    slow_done: list[str] = []
    fast_seen: list[str] = []

    async def slow(envelope: EventEnvelope) -> None:
        await release.wait()
        slow_done.append(envelope["name"])

    app.state.bus.subscribe(slow)
    app.state.bus.subscribe(lambda envelope: fast_seen.append(envelope["name"]))
    # Were emission awaited, this request would wait on `release` forever.
    response = await asyncio.wait_for(client.post("/devices", json={"name": "A"}), timeout=30)
    assert response.status_code == 201
    await asyncio.wait_for(client.delete(f"/devices/{response.json()['id']}"), timeout=30)
    for _ in range(10):
        await asyncio.sleep(0)
    assert fast_seen == ["device.created", "device.deleted"]
    assert slow_done == []
    release.set()
    await asyncio.wait_for(app.state.bus.drain(), timeout=30)
    assert slow_done == ["device.created", "device.deleted"]


async def test_each_subscriber_gets_events_in_order_and_can_unsubscribe() -> None:
    bus = EventBus()
    seen: list[int] = []

    async def subscriber(envelope: EventEnvelope) -> None:
        # Yield control so that later events could overtake, were order not kept.
        await asyncio.sleep(0)
        seen.append(envelope["payload"]["n"])

    unsubscribe = bus.subscribe(subscriber)
    for n in range(20):
        await bus.emit("demo.tick", {"n": n})
    await bus.drain()
    assert seen == list(range(20))
    unsubscribe()
    await bus.emit("demo.tick", {"n": 99})
    await bus.drain()
    assert seen == list(range(20))


async def test_drain_waits_for_events_caused_by_deliveries() -> None:
    bus = EventBus()
    seen: list[str] = []

    async def chain(envelope: EventEnvelope) -> None:
        seen.append(envelope["name"])
        if envelope["name"] == "demo.first":
            await bus.emit("demo.second", {})

    bus.subscribe(chain)
    await bus.emit("demo.first", {})
    await bus.drain()
    assert seen == ["demo.first", "demo.second"]
    await bus.aclose()
