"""Filter chains: each filter returns the new value; a failing one leaves it as it was."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from ops_center_sdk.context import active_event
from ops_center_sdk.errors import HookError, UnknownEventError
from ops_center_sdk.hooks import HookRegistry

pytestmark = pytest.mark.filterwarnings("error")

FILTER = "device.data.process"
TINY = 0.05


def tagger(tag: str) -> Any:
    async def add_tag(data: dict[str, Any]) -> dict[str, Any]:
        data.setdefault("tags", [])
        data["tags"] = [*data["tags"], tag]
        return data

    add_tag.__qualname__ = f"add_{tag}"
    return add_tag


async def test_chain_runs_in_priority_order_on_the_previous_result(hooks: HookRegistry) -> None:
    hooks.add_filter(FILTER, tagger("low"), priority=1)
    hooks.add_filter(FILTER, tagger("first-10"))
    hooks.add_filter(FILTER, tagger("high"), priority=99)
    hooks.add_filter(FILTER, tagger("second-10"))
    result = await hooks.apply_filters(FILTER, {"name": "sw1"})
    assert result == {"name": "sw1", "tags": ["high", "first-10", "second-10", "low"]}


async def test_the_spec_example_that_mutates_and_returns(hooks: HookRegistry) -> None:
    async def enrich_data(data: dict[str, Any]) -> dict[str, Any]:
        data["enriched"] = True
        return data

    hooks.add_filter(FILTER, enrich_data)
    original = {"name": "sw1"}
    result = await hooks.apply_filters(FILTER, original)
    assert result == {"name": "sw1", "enriched": True}
    assert original == {"name": "sw1"}  # the caller's object is not changed


async def test_a_filter_may_return_a_new_object_of_any_type(hooks: HookRegistry) -> None:
    async def wrap(data: Any) -> Any:
        return {"wrapped": data}

    async def to_text(data: Any) -> Any:
        return repr(data)

    hooks.add_filter(FILTER, wrap, priority=2)
    hooks.add_filter(FILTER, to_text, priority=1)
    assert await hooks.apply_filters(FILTER, [1, 2]) == "{'wrapped': [1, 2]}"


async def test_none_keeps_the_value_and_is_logged(
    hooks: HookRegistry, hook_log: pytest.LogCaptureFixture
) -> None:
    async def forgets_to_return(data: dict[str, Any]) -> None:
        data["half"] = "done"

    hooks.add_filter(FILTER, tagger("before"), priority=20)
    forgetful = hooks.add_filter(FILTER, forgets_to_return)
    hooks.add_filter(FILTER, tagger("after"), priority=1)
    value, report = await hooks.apply_filters_with_report(FILTER, {"name": "sw1"})
    assert value == {"name": "sw1", "tags": ["before", "after"]}
    (failure,) = report.failures
    assert failure.handler == forgetful.name
    assert isinstance(failure.exception, HookError)
    assert "returned None on 'device.data.process'" in str(failure.exception)
    (record,) = hook_log.records
    assert record.levelno == logging.ERROR
    assert f"filter handler '{forgetful.name}' of plugin 'test-plugin' returned None" in (
        record.getMessage()
    )
    assert "the value is kept as it was before it" in record.getMessage()
    assert forgetful.failures == 1


async def test_an_exception_keeps_the_value_even_after_changing_it_in_place(
    hooks: HookRegistry, hook_log: pytest.LogCaptureFixture
) -> None:
    async def half_done(data: dict[str, Any]) -> dict[str, Any]:
        data["name"] = "overwritten"
        data.pop("site")
        raise ValueError("gave up half way")

    hooks.add_filter(FILTER, tagger("before"), priority=20)
    broken = hooks.add_filter(FILTER, half_done)
    hooks.add_filter(FILTER, tagger("after"), priority=1)
    original = {"name": "sw1", "site": "lab"}
    value, report = await hooks.apply_filters_with_report(FILTER, original)
    assert value == {"name": "sw1", "site": "lab", "tags": ["before", "after"]}
    assert original == {"name": "sw1", "site": "lab"}
    assert isinstance(report.failures[0].exception, ValueError)
    (record,) = hook_log.records
    assert f"filter handler '{broken.name}' of plugin 'test-plugin' failed" in record.getMessage()
    assert record.exc_info is not None
    assert "gave up half way" in hook_log.text


async def test_a_list_value_is_protected_too(hooks: HookRegistry) -> None:
    async def appends_then_fails(items: list[int]) -> list[int]:
        items.append(99)
        raise RuntimeError("no")

    async def doubles(items: list[int]) -> list[int]:
        return [i * 2 for i in items]

    hooks.add_filter(FILTER, appends_then_fails, priority=20)
    hooks.add_filter(FILTER, doubles)
    original = [1, 2]
    assert await hooks.apply_filters(FILTER, original) == [2, 4]
    assert original == [1, 2]


async def test_a_timed_out_filter_keeps_the_value(hooks: HookRegistry) -> None:
    never = asyncio.Event()

    async def hangs_after_changing(data: dict[str, Any]) -> dict[str, Any]:
        data["changed"] = True
        await never.wait()
        return data

    async def suspends_then_tags(data: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {**data, "after": True}

    hooks.add_filter(FILTER, tagger("before"), priority=20)
    hung = hooks.add_filter(FILTER, hangs_after_changing, timeout=TINY)
    hooks.add_filter(FILTER, suspends_then_tags, priority=1)
    value, report = await hooks.apply_filters_with_report(FILTER, {"name": "sw1"})
    assert value == {"name": "sw1", "tags": ["before"], "after": True}
    assert report.failures[0].timed_out
    assert report.failures[0].handler == hung.name
    assert hung.timeouts == 1


async def test_a_suspending_filter_returns_the_value_it_awaited(hooks: HookRegistry) -> None:
    loop = asyncio.get_running_loop()

    async def looks_up_site(data: dict[str, Any]) -> dict[str, Any]:
        lookup: asyncio.Future[str] = loop.create_future()
        loop.call_soon(lookup.set_result, "lab-7")
        return {**data, "site": await lookup}

    hooks.add_filter(FILTER, looks_up_site)
    hooks.add_filter(FILTER, tagger("after"), priority=1)
    assert await hooks.apply_filters(FILTER, {"name": "sw1"}) == {
        "name": "sw1",
        "site": "lab-7",
        "tags": ["after"],
    }


async def test_keyword_only_positional_only_and_sync_filters(hooks: HookRegistry) -> None:
    threads: list[int] = []

    async def keyword_only(*, record: dict[str, Any], extra: int = 1) -> dict[str, Any]:
        return {**record, "keyword_only": extra}

    async def positional_only(record: dict[str, Any], /) -> dict[str, Any]:
        return {**record, "positional_only": True}

    def blocking(record: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.get_ident())
        return {**record, "sync": active_event()}

    hooks.add_filter(FILTER, keyword_only, priority=3)
    hooks.add_filter(FILTER, positional_only, priority=2)
    hooks.add_filter(FILTER, blocking, priority=1)
    value = await hooks.apply_filters(FILTER, {})
    assert value == {"keyword_only": 1, "positional_only": True, "sync": FILTER}
    assert threads[0] != threading.get_ident()


async def test_current_event_is_the_filter_name(hooks: HookRegistry) -> None:
    seen: list[str | None] = []

    async def look(data: Any) -> Any:
        seen.append(active_event())
        return data

    hooks.add_filter(FILTER, look)
    await hooks.apply_filters(FILTER, 1)
    assert seen == [FILTER]
    assert active_event() is None


async def test_no_filters_returns_the_same_object(hooks: HookRegistry) -> None:
    value = {"name": "sw1"}
    assert await hooks.apply_filters(FILTER, value) is value
    same, report = await hooks.apply_filters_with_report(FILTER, value)
    assert same is value
    assert report.ok
    assert report.handlers_run == 0


async def test_unknown_filter_name(hooks: HookRegistry) -> None:
    with pytest.raises(UnknownEventError, match=r"unknown filter 'device.data.proces'; did you "):
        await hooks.apply_filters("device.data.proces", {})
    with pytest.raises(UnknownEventError, match=r"'device.created' is not a filter"):
        await hooks.apply_filters("device.created", {})


async def test_filter_counts(hooks: HookRegistry) -> None:
    async def broken(data: Any) -> Any:
        raise RuntimeError("no")

    good = hooks.add_filter(FILTER, tagger("ok"))
    bad = hooks.add_filter(FILTER, broken)
    for _ in range(3):
        await hooks.apply_filters(FILTER, {})
    assert (good.calls, good.failures, bad.calls, bad.failures) == (3, 0, 3, 3)
