"""The host's SQLite store: data survives a restart; the store alone works too."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from host_kit import ADMIN_KEY, http_client

from ops_center_sdk.host import HostStore, create_host_app
from ops_center_sdk.host.store import DB_FILE, RecordExists


async def test_a_restarted_host_keeps_its_data(data_dir: Path) -> None:
    first = create_host_app(data_dir=data_dir, admin_key=ADMIN_KEY)
    async with http_client(first) as client:
        await client.post("/devices", json={"id": "d1", "name": "Web", "tags": ["x"]})
        await client.post("/alerts", json={"id": "a1", "title": "t", "severity": "info"})
        await client.post("/devices/d1/metrics", json={"cpu": 1})
    first.state.store.close()

    second = create_host_app(data_dir=data_dir, admin_key=ADMIN_KEY)
    async with http_client(second) as client:
        device = (await client.get("/devices/d1")).json()
        assert device["tags"] == ["x"]
        assert device["last_metrics"] == {"cpu": 1}
        assert (await client.get("/alerts/a1")).status_code == 200
        assert (await client.post("/devices", json={"id": "d1", "name": "x"})).status_code == 409
    second.state.store.close()


def test_store_file_uses_wal(data_dir: Path) -> None:
    store = HostStore.in_directory(data_dir)
    store.insert("devices", {"id": "d1", "name": "Web"})
    with sqlite3.connect(data_dir / DB_FILE) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT id FROM records").fetchall() == [("d1",)]
    store.close()


def test_store_records_in_memory() -> None:
    store = HostStore.in_memory()
    store.insert("things", {"id": "b", "kind": "x", "name": "Beta"})
    store.insert("things", {"id": "a", "kind": "y", "name": "alpha"})
    store.insert("others", {"id": "a", "kind": "x"})
    with pytest.raises(RecordExists):
        store.insert("things", {"id": "a"})
    assert [r["id"] for r in store.find("things").items] == ["b", "a"]
    assert store.find("things", where={"kind": "x"}).items == [
        {"id": "b", "kind": "x", "name": "Beta"}
    ]
    assert store.find("things", contains={"name": "ALP"}).total == 1
    assert store.find("things", where_casefold={"name": "BETA"}).total == 1
    page = store.find("things", offset=1, limit=1)
    assert ([r["id"] for r in page.items], page.total) == (["a"], 2)
    assert store.replace("things", "a", {"id": "a", "name": "A"})
    assert store.get("things", "a") == {"id": "a", "name": "A"}
    assert not store.replace("things", "zz", {"id": "zz"})
    assert store.delete("things", "a")
    assert not store.delete("things", "a")
    assert store.count("things") == 1
    assert store.count("others") == 1
    store.close()


def test_pop_removes_a_record_and_returns_it_as_it_was(data_dir: Path) -> None:
    store = HostStore.in_directory(data_dir)
    store.insert("devices", {"id": "d1", "name": "Web", "tags": ["x"]})
    store.insert("alerts", {"id": "d1", "title": "same id, other kind"})
    assert store.pop("devices", "d1") == {"id": "d1", "name": "Web", "tags": ["x"]}
    assert store.pop("devices", "d1") is None  # a second deletion gets nothing
    assert store.get("devices", "d1") is None
    assert store.get("alerts", "d1") is not None
    with sqlite3.connect(data_dir / DB_FILE) as db:  # committed: another connection agrees
        assert db.execute("SELECT kind FROM records").fetchall() == [("alerts",)]
    store.close()


def test_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(RuntimeError, match="newer"):
        HostStore(path)
