"""A plugin author's tests, written with the kit, fail on real bugs in the plugin.

Each case is a small buggy plugin plus the test its author would write; the
test runs in a fresh pytest session and must FAIL, naming the bug.
"""

from __future__ import annotations

import re
import textwrap

import pytest

pytest_plugins = ["pytester"]

BUGGY_PLUGIN = """
from datetime import datetime
from ops_center_sdk import Plugin

plugin = Plugin(id="buggy-plugin", name="Buggy", version="1.0.0")


@plugin.filter_hook("device.data.process")
async def tag(data: dict) -> dict:
    return {"name": data["name"], "tagged": True}  # BUG: drops every other field


@plugin.hook("device.created")
async def welcome(device_id: str) -> None:
    # BUG: plugin.yaml grants alerts:read only
    await plugin.api.alerts.create({"title": "welcome", "severity": "info"})


async def daily_report() -> None:
    await plugin.storage.increment("reports")


@plugin.on_enable
async def on_enable() -> None:
    # BUG: meant every day at 09:00, wrote Sundays only
    await plugin.scheduler.schedule(cron="0 9 * * 0", task_name="daily", handler=daily_report)


app = plugin.create_app()
"""

MANIFEST = """
id: buggy-plugin
name: Buggy
version: 1.0.0
permissions:
  - alerts:read
"""

AUTHOR_TESTS = """
from datetime import timedelta
from ops_center_sdk.testing import trigger_filter, trigger_hook


async def test_filter_keeps_the_device_fields(plugin_under_test):
    data = await trigger_filter(plugin_under_test, "device.data.process",
                                {"name": "web", "type": "server"})
    assert data["type"] == "server"


async def test_welcome_alert_is_raised(plugin_under_test):
    await trigger_hook(plugin_under_test, "device.created", device_id="d1", device_data={})


async def test_report_runs_every_day(plugin_under_test):
    await plugin_under_test.start()
    await plugin_under_test.scheduler.advance(timedelta(days=3))
    assert await plugin_under_test.storage.get("reports", default=0) == 3
"""


def test_the_kit_catches_three_real_bugs(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", plugin=textwrap.dedent(MANIFEST))
    pytester.makepyfile(main=BUGGY_PLUGIN, test_buggy=AUTHOR_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    output = result.stdout.str()
    assert "KeyError: 'type'" in output
    assert "alerts.create() needs the permission 'alerts:write'" in output
    assert re.search(r"assert [01] == 3", output)  # Sundays only: 0 or 1 run in 3 days
