"""The pytest plugin, run as a plugin author runs it: a fresh pytest session, no ini options."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SPEC = Path(__file__).resolve().parents[1] / "spec"

SPEC_UNIT_TESTING = """
from ops_center_sdk.testing import create_test_plugin, trigger_hook
import pytest


@pytest.mark.asyncio
async def test_device_hook():
    # Create test plugin with mocks
    plugin = create_test_plugin("test-plugin")

    # Register your hook
    @plugin.hook("device.created")
    async def on_device_created(device_id: str, device_data: dict):
        await plugin.storage.set(f"device:{device_id}", device_data)

    # Trigger the hook
    await trigger_hook(
        plugin,
        "device.created",
        device_id="device-123",
        device_data={"name": "Test Device"}
    )

    # Verify behavior
    stored = await plugin.storage.get("device:device-123")
    assert stored["name"] == "Test Device"


@pytest.mark.asyncio
async def test_api_calls():
    plugin = create_test_plugin("test-plugin")

    # Create mock device
    device = await plugin.api.devices.create({
        "name": "Test Device",
        "type": "server"
    })

    # Verify
    assert device["name"] == "Test Device"

    # Check API was called
    requests = plugin.api.get_requests(method="POST", endpoint="/devices")
    assert len(requests) == 1
"""

SPEC_FIXTURES = '''
def test_with_fixtures(plugin, mock_api, mock_storage):
    """Use pytest fixtures"""
    assert plugin.metadata.id == "test-plugin"
'''


def run(pytester: pytest.Pytester, **files: str) -> pytest.RunResult:
    pytester.makepyfile(**{name: textwrap.dedent(body) for name, body in files.items()})
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_spec_unit_testing_and_fixture_examples_pass_as_written(pytester: pytest.Pytester) -> None:
    result = run(pytester, test_unit=SPEC_UNIT_TESTING, test_fixtures=SPEC_FIXTURES)
    result.assert_outcomes(passed=3)


def test_async_tests_run_without_markers(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        test_plain="""
        async def test_storage(mock_storage):
            await mock_storage.set("k", 1)
            assert await mock_storage.get("k") == 1
        """,
    )
    result.assert_outcomes(passed=1)


def test_a_project_that_chose_strict_mode_keeps_it(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = strict\n")
    result = run(pytester, test_plain="async def test_unmarked():\n    pass\n")
    assert not re.search(r"\b1 passed", result.stdout.str())


def test_plugin_under_test_and_client_load_the_folders_plugin(pytester: pytest.Pytester) -> None:
    pytester.copy_example(str(SPEC / "spec_plugin" / "plugin.yaml"))
    pytester.copy_example(str(SPEC / "spec_plugin" / "main.py"))
    result = run(
        pytester,
        test_real="""
        from ops_center_sdk.testing import trigger_hook

        async def test_route(plugin_under_test, plugin_client):
            await plugin_under_test.api.devices.create({"id": "d1", "name": "x"})
            await trigger_hook(plugin_under_test, "device.created",
                               device_id="d1", device_data={"name": "x"})
            response = await plugin_client.get("/plugins/my-plugin/status")
            assert response.json()["devices_tracked"] == 1
            assert plugin_under_test.permissions == (
                "devices:read", "devices:write", "alerts:write", "users:read")
        """,
    )
    result.assert_outcomes(passed=1)


IMPORTING_PLUGIN = """
from ops_center_sdk import Plugin

plugin = Plugin(id="import-plugin", name="Import", version="1.0.0")


async def remind(who: str) -> None:
    await plugin.storage.set(f"reminded:{who}", True)
"""


def test_a_test_that_imports_the_entrypoint_gets_the_plugin_under_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", plugin="id: import-plugin\nname: Import\nversion: 1.0.0\n")
    pytester.makepyfile(main=IMPORTING_PLUGIN)
    result = run(
        pytester,
        test_imports="""
        from datetime import timedelta

        from main import plugin, remind  # imported before the fixture loads the plugin


        async def test_same_plugin(plugin_under_test):
            assert plugin is plugin_under_test
            await plugin_under_test.scheduler.run_in(timedelta(minutes=1), remind, "ana")
            await plugin_under_test.scheduler.advance(timedelta(minutes=2))
            assert await plugin_under_test.storage.get("reminded:ana") is True


        async def test_each_test_starts_clean(plugin_under_test):
            assert await plugin_under_test.storage.list_keys() == []
            assert not plugin_under_test.enabled
        """,
    )
    result.assert_outcomes(passed=2)
    assert not (pytester.path / ".ops-center").exists()  # no real storage was opened


def run_pytest_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_a_plugin_folder_without_pytest_ini_runs_without_deprecation_warnings(
    tmp_path: Path,
) -> None:
    from ops_center_sdk.cli.main import main

    assert main(["init", str(tmp_path / "my-plugin"), "--no-input"]) == 0
    folder = tmp_path / "my-plugin"
    (folder / "pytest.ini").unlink()

    result = run_pytest_in(folder, "tests")

    shown = result.stdout + result.stderr
    assert result.returncode == 0, shown
    assert " passed" in result.stdout
    assert "PytestDeprecationWarning" not in shown
    assert "warning" not in result.stdout.lower()
    assert "asyncio_default_fixture_loop_scope=function" in result.stdout

    chosen = run_pytest_in(folder, "tests", "-o", "asyncio_default_fixture_loop_scope=module")
    assert chosen.returncode == 0, chosen.stdout + chosen.stderr
    assert "asyncio_default_fixture_loop_scope=module" in chosen.stdout
