"""Choosing a backend by URL, the default location of a plugin's data, light imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ops_center_sdk.errors import StorageError
from ops_center_sdk.storage import (
    MemoryStorage,
    RedisStorage,
    SqliteStorage,
    Storage,
    default_storage_url,
    open_backend,
    open_storage,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPS_CENTER_STORAGE_URL", raising=False)
    monkeypatch.delenv("OPS_CENTER_DATA_DIR", raising=False)


async def test_memory_url() -> None:
    backend = open_backend("memory://")
    assert isinstance(backend, MemoryStorage)
    assert backend is not open_backend("memory://")


async def test_sqlite_url_with_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "with space" / "50%.db"
    backend = open_backend(f"sqlite:///{path}")  # an absolute path: four slashes in all
    assert isinstance(backend, SqliteStorage)
    assert backend.path == path
    assert path.is_file()
    await backend.close()


async def test_sqlite_url_with_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = open_backend("sqlite:///data/plugin.db")
    assert isinstance(backend, SqliteStorage)
    assert (tmp_path / "data" / "plugin.db").is_file()
    await backend.close()


async def test_redis_url_makes_a_redis_backend_without_connecting() -> None:
    backend = open_backend("redis://127.0.0.1:6379/3")
    assert isinstance(backend, RedisStorage)
    await backend.close()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "no scheme"),
        ("storage.db", "no scheme"),
        ("postgres://db/ops", "unknown storage URL scheme 'postgres'"),
        ("mongodb://:s3cret@db/ops", "mongodb://:***@db/ops"),
        ("sqlite://", "no file path"),
        ("sqlite:///", "no file path"),
        ("sqlite://host/x.db", "no file path"),
        ("sqlite:///x.db?mode=ro", "no options"),
        ("memory://somewhere", "nothing after"),
    ],
)
def test_unusable_urls_are_refused(url: str, words: str) -> None:
    with pytest.raises(StorageError) as error:
        open_backend(url)
    assert words in str(error.value)
    assert "s3cret" not in str(error.value)


def test_url_must_be_a_str() -> None:
    with pytest.raises(TypeError, match="str"):
        open_backend(Path("x.db"))  # type: ignore[arg-type]


def test_default_url_is_sqlite_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    expected = tmp_path / ".ops-center" / "data" / "plugins" / "my-plugin" / "storage.db"
    assert default_storage_url("my-plugin") == f"sqlite:///{expected.as_posix()}"

    monkeypatch.setenv("OPS_CENTER_DATA_DIR", str(tmp_path / "elsewhere"))
    expected = tmp_path / "elsewhere" / "plugins" / "my-plugin" / "storage.db"
    assert default_storage_url("my-plugin") == f"sqlite:///{expected.as_posix()}"


def test_default_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_CENTER_STORAGE_URL", "redis://cache:6379/2")
    assert default_storage_url("my-plugin") == "redis://cache:6379/2"


@pytest.mark.parametrize("plugin_id", ["", ".", "..", "../escape", "a/b", "a\\b"])
def test_plugin_ids_that_cannot_name_a_folder_are_refused(plugin_id: str) -> None:
    with pytest.raises(ValueError, match="plugin id"):
        default_storage_url(plugin_id)
    with pytest.raises(ValueError, match="plugin id"):
        open_storage(plugin_id, "memory://")


async def test_open_storage_writes_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_CENTER_DATA_DIR", str(tmp_path / "data dir"))
    storage = open_storage("my-plugin")
    assert isinstance(storage, Storage)
    assert storage.namespace == "my-plugin"
    await storage.set("installed_at", "2024-01-01T00:00:00")
    await storage.close()

    path = tmp_path / "data dir" / "plugins" / "my-plugin" / "storage.db"
    again = Storage(SqliteStorage(path), "my-plugin")
    assert await again.get("installed_at") == "2024-01-01T00:00:00"
    await again.close()


async def test_open_storage_on_an_explicit_url() -> None:
    storage = open_storage("my-plugin", "memory://")
    assert isinstance(storage.backend, MemoryStorage)
    assert storage.namespace == "my-plugin"


def test_importing_storage_does_not_import_redis() -> None:
    code = "import sys, ops_center_sdk.storage; print('redis' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
