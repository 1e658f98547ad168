"""Dispatching action events: order, keyword subsetting, isolation, context, reports."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from ops_center_sdk.context import active_event
from ops_center_sdk.errors import HookError, UnknownEventError
from ops_center_sdk.hooks import DispatchError, DispatchReport, HookRegistry

pytestmark = pytest.mark.filterwarnings("error")

OWNER = "test-plugin"
DEVICE = {"name": "core-switch"}


async def test_handlers_run_in_priority_order_ties_in_registration_order(
    hooks: HookRegistry,
) -> None:
    calls: list[str] = []

    def handler(label: str) -> Any:
        async def record(device_id: str) -> None:
            calls.append(label)

        return record

    hooks.add_action("device.deleted", handler("low"), priority=1)
    hooks.add_action("device.deleted", handler("default-1"))
    hooks.add_action("device.deleted", handler("high"), priority=50)
    hooks.add_action("device.deleted", handler("default-2"))
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert calls == ["high", "default-1", "default-2", "low"]
    assert report.ok
    assert report.event == "device.deleted"
    assert report.handlers_run == 4


async def test_each_handler_gets_only_the_keywords_it_names(hooks: HookRegistry) -> None:
    seen: dict[str, Any] = {}

    async def both(device_id: str, device_data: dict[str, Any]) -> None:
        seen["both"] = (device_id, device_data)

    async def reversed_order(device_data: dict[str, Any], device_id: str) -> None:
        seen["reversed"] = (device_id, device_data)

    async def only_id(device_id: str) -> None:
        seen["only_id"] = device_id

    async def keyword_only(*, device_data: dict[str, Any]) -> None:
        seen["keyword_only"] = device_data

    async def nothing() -> None:
        seen["nothing"] = True

    async def everything(**kwargs: Any) -> None:
        seen["everything"] = kwargs

    async def named_and_rest(device_id: str, **rest: Any) -> None:
        seen["named_and_rest"] = (device_id, rest)

    async def future_field(device_id: str, site: str = "unknown") -> None:
        seen["future_field"] = site

    for handler in (
        both,
        reversed_order,
        only_id,
        keyword_only,
        nothing,
        everything,
        named_and_rest,
        future_field,
    ):
        hooks.add_action("device.created", handler)

    report = await hooks.dispatch("device.created", device_id="d1", device_data=DEVICE)
    assert report.ok
    assert seen == {
        "both": ("d1", DEVICE),
        "reversed": ("d1", DEVICE),
        "only_id": "d1",
        "keyword_only": DEVICE,
        "nothing": True,
        "everything": {"device_id": "d1", "device_data": DEVICE},
        "named_and_rest": ("d1", {"device_data": DEVICE}),
        "future_field": "unknown",
    }

    # The event grows a field: handlers that ask for it (or take all) get it.
    seen.clear()
    await hooks.dispatch("device.created", device_id="d1", device_data=DEVICE, site="lab")
    assert seen["future_field"] == "lab"
    assert seen["everything"] == {"device_id": "d1", "device_data": DEVICE, "site": "lab"}
    assert seen["both"] == ("d1", DEVICE)


async def test_payload_as_a_mapping_as_keywords_or_both(hooks: HookRegistry) -> None:
    seen: list[tuple[str, Any]] = []

    async def handler(device_id: str, device_data: dict[str, Any]) -> None:
        seen.append((device_id, device_data))

    hooks.add_action("device.updated", handler)
    payload = {"device_id": "d1", "device_data": DEVICE}
    await hooks.dispatch("device.updated", payload)
    await hooks.dispatch("device.updated", **payload)
    await hooks.dispatch("device.updated", {"device_id": "d1"}, device_data={"name": "x"})
    assert seen == [("d1", DEVICE), ("d1", DEVICE), ("d1", {"name": "x"})]
    assert payload == {"device_id": "d1", "device_data": DEVICE}


async def test_handler_cannot_change_the_callers_payload_mapping(hooks: HookRegistry) -> None:
    async def meddle(**kwargs: Any) -> None:
        kwargs["device_id"] = "changed"
        kwargs.pop("device_data")

    async def check(device_id: str, device_data: dict[str, Any]) -> None:
        assert device_id == "d1"

    hooks.add_action("device.created", meddle, priority=20)
    hooks.add_action("device.created", check)
    payload = {"device_id": "d1", "device_data": DEVICE}
    report = await hooks.dispatch("device.created", payload)
    assert report.ok
    assert payload == {"device_id": "d1", "device_data": DEVICE}


async def test_catalog_payload_missing_a_keyword_is_a_caller_error(hooks: HookRegistry) -> None:
    called = []

    async def handler(device_id: str) -> None:
        called.append(device_id)

    hooks.add_action("device.created", handler)
    with pytest.raises(HookError) as caught:
        await hooks.dispatch("device.created", device_id="d1")
    assert str(caught.value) == (
        "dispatch of 'device.created' is missing keyword 'device_data': "
        "the event carries device_id, device_data (got: device_id)"
    )
    with pytest.raises(HookError, match=r"missing keywords 'alert_id', 'alert_data'"):
        await hooks.dispatch("alert.created", {})
    assert called == []
    assert hooks.actions("device.created")[0].calls == 0


async def test_unknown_event_on_dispatch(hooks: HookRegistry) -> None:
    with pytest.raises(UnknownEventError, match=r"unknown event 'device.creatd'; did you mean"):
        await hooks.dispatch("device.creatd", device_id="d1", device_data={})


async def test_payload_must_be_a_mapping(hooks: HookRegistry) -> None:
    with pytest.raises(TypeError, match=r"payload of 'device.deleted' must be a mapping.*list"):
        await hooks.dispatch("device.deleted", ["d1"])  # type: ignore[arg-type]


async def test_event_without_handlers_gives_an_empty_report(hooks: HookRegistry) -> None:
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert isinstance(report, DispatchReport)
    assert report.ok
    assert report.handlers_run == 0
    assert report.failures == ()
    assert await hooks.dispatch(f"{OWNER}.nobody_listens") is not None
    # Still checked: the name and, for a catalog event, the payload.
    with pytest.raises(HookError, match=r"missing keywords 'device_id', 'device_data'"):
        await hooks.dispatch("device.deleted")
    with pytest.raises(UnknownEventError):
        await hooks.dispatch("device.gone", device_id="d1")


async def test_a_failing_handler_is_isolated_logged_and_counted(
    hooks: HookRegistry, hook_log: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def first(device_id: str) -> None:
        calls.append("first")

    async def broken(device_id: str) -> None:
        calls.append("broken")
        raise ValueError(f"cannot handle {device_id}")

    async def last(device_id: str) -> None:
        calls.append("last")

    hooks.add_action("device.deleted", first, priority=30)
    broken_handler = hooks.add_action("device.deleted", broken, priority=20)
    hooks.add_action("device.deleted", last, priority=10)

    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert calls == ["first", "broken", "last"]
    assert not report.ok
    assert report.handlers_run == 3
    (failure,) = report.failures
    assert failure.handler == broken_handler.name
    assert isinstance(failure.exception, ValueError)
    assert str(failure.exception) == "cannot handle d1"
    assert not failure.timed_out
    assert 'raise ValueError(f"cannot handle {device_id}")' in failure.traceback
    assert "ValueError: cannot handle d1" in failure.traceback

    (record,) = hook_log.records
    assert record.name == "ops_center_sdk.hooks"
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert f"'{broken_handler.name}'" in message
    assert "plugin 'test-plugin'" in message
    assert "'device.deleted'" in message
    assert record.exc_info is not None
    assert record.exc_info[1] is failure.exception
    assert "cannot handle d1" in hook_log.text  # the traceback is in the output

    await hooks.dispatch("device.deleted", device_id="d2", device_data={})
    assert (broken_handler.calls, broken_handler.failures) == (2, 2)
    stats = {s.handler.rsplit(".", 1)[-1]: (s.calls, s.failures) for s in hooks.stats}
    assert stats == {"first": (2, 0), "broken": (2, 2), "last": (2, 0)}


async def test_nothing_is_logged_into_the_plugins_logger(
    hooks: HookRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def broken(device_id: str) -> None:
        raise RuntimeError("boom")

    hooks.add_action("device.deleted", broken)
    await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert caplog.records
    assert all(r.name.startswith("ops_center_sdk") for r in caplog.records)
    assert not any(r.name.startswith("ops_center.plugins") for r in caplog.records)


async def test_raise_for_errors(hooks: HookRegistry) -> None:
    async def bad_value(device_id: str) -> None:
        raise ValueError("bad value")

    async def bad_key(device_id: str) -> None:
        raise KeyError("missing")

    one = hooks.add_action("device.deleted", bad_value)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    with pytest.raises(ValueError, match="bad value"):  # one failure: its own exception
        report.raise_for_errors()

    hooks.add_action("device.deleted", bad_key)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    with pytest.raises(DispatchError) as caught:
        report.raise_for_errors()
    error = caught.value
    assert isinstance(error, HookError)
    assert isinstance(error, ExceptionGroup)
    assert error.report is report
    assert [type(e) for e in error.exceptions] == [ValueError, KeyError]
    assert str(error).startswith("2 of 2 handlers of 'device.deleted' failed:")
    assert f"- {one.name}: ValueError: bad value" in str(error)

    hooks.remove(one)
    ok = await hooks.dispatch("alert.resolved", alert_id="a1", alert_data={})
    ok.raise_for_errors()  # nothing to raise


async def test_counts_survive_adding_and_removing_handlers(hooks: HookRegistry) -> None:
    async def counted(device_id: str) -> None: ...

    handler = hooks.add_action("device.deleted", counted)
    await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    other = hooks.add_action("device.deleted", counted, priority=1)
    await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    hooks.remove(other)
    await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert (handler.calls, other.calls) == (3, 1)


async def test_current_event_is_set_while_handlers_run(hooks: HookRegistry) -> None:
    seen: list[str | None] = []

    async def async_handler(device_id: str) -> None:
        seen.append(active_event())

    def sync_handler(device_id: str) -> None:
        seen.append(active_event())

    async def broken(device_id: str) -> None:
        seen.append(active_event())
        raise RuntimeError("boom")

    hooks.add_action("device.deleted", async_handler)
    hooks.add_action("device.deleted", sync_handler)
    hooks.add_action("device.deleted", broken)
    assert active_event() is None
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert seen == ["device.deleted"] * 3
    assert len(report.failures) == 1
    assert active_event() is None


async def test_sync_handler_runs_in_another_thread(hooks: HookRegistry) -> None:
    threads: list[int] = []

    def blocking(device_id: str, device_data: dict[str, Any]) -> None:
        threads.append(threading.get_ident())
        device_data["seen_by"] = device_id

    hooks.add_action("device.created", blocking)
    data: dict[str, Any] = {}
    report = await hooks.dispatch("device.created", device_id="d1", device_data=data)
    assert report.ok
    assert data == {"seen_by": "d1"}
    assert threads
    assert threads[0] != threading.get_ident()


async def test_sync_handler_failure_is_isolated(
    hooks: HookRegistry, hook_log: pytest.LogCaptureFixture
) -> None:
    after: list[str] = []

    def blocking(device_id: str) -> None:
        raise OSError("disk full")

    async def later(device_id: str) -> None:
        after.append(device_id)

    hooks.add_action("device.deleted", blocking)
    hooks.add_action("device.deleted", later)
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={})
    assert after == ["d1"]
    assert isinstance(report.failures[0].exception, OSError)
    assert "disk full" in hook_log.text


async def test_custom_event_passes_its_payload_through(hooks: HookRegistry) -> None:
    seen: list[Any] = []

    async def on_report(report_id: str, pages: int = 1) -> None:
        seen.append((report_id, pages))

    hooks.add_action(f"{OWNER}.report_ready", on_report)
    report = await hooks.dispatch(f"{OWNER}.report_ready", report_id="r1", pages=3)
    assert report.ok
    await hooks.dispatch(f"{OWNER}.report_ready", {"report_id": "r2"})
    assert seen == [("r1", 3), ("r2", 1)]


async def test_custom_event_missing_a_keyword_fails_that_handler_only(
    hooks: HookRegistry, hook_log: pytest.LogCaptureFixture
) -> None:
    seen: list[Any] = []

    async def needs_size(report_id: str, size: int) -> None:
        seen.append("needs_size")

    async def needs_all(report_id: str, **rest: Any) -> None:
        seen.append("needs_all")

    async def easy(**kwargs: Any) -> None:
        seen.append(kwargs)

    name = f"{OWNER}.report_ready"
    hooks.add_action(name, needs_size)
    hooks.add_action(name, needs_all)
    hooks.add_action(name, easy)
    report = await hooks.dispatch(name, pages=3)
    assert seen == [{"pages": 3}]
    assert [type(f.exception) for f in report.failures] == [HookError, HookError]
    first, second = (str(f.exception) for f in report.failures)
    assert "needs keywords 'report_id', 'size', which event 'test-plugin.report_ready'" in first
    assert "(it carried: pages)" in first
    assert "needs keyword 'report_id'," in second
    assert len(hook_log.records) == 2


async def test_nested_dispatch_from_a_handler(hooks: HookRegistry) -> None:
    seen: list[tuple[str, str | None]] = []

    async def on_created(device_id: str) -> None:
        seen.append(("created", active_event()))
        await hooks.dispatch("device.deleted", device_id=device_id, device_data={})
        seen.append(("created-after", active_event()))

    async def on_deleted(device_id: str) -> None:
        seen.append(("deleted", active_event()))

    hooks.add_action("device.created", on_created)
    hooks.add_action("device.deleted", on_deleted)
    report = await hooks.dispatch("device.created", device_id="d1", device_data={})
    assert report.ok
    assert seen == [
        ("created", "device.created"),
        ("deleted", "device.deleted"),
        ("created-after", "device.created"),
    ]


async def test_concurrent_dispatches_of_one_event(hooks: HookRegistry) -> None:
    gates = {"a": asyncio.Event(), "b": asyncio.Event()}
    seen: list[str] = []

    async def wait_for_gate(device_id: str) -> None:
        await gates[device_id].wait()
        seen.append(device_id)

    async def quick(device_id: str) -> None:
        seen.append(f"{device_id}-quick")

    hooks.add_action("device.deleted", wait_for_gate)
    hooks.add_action("device.deleted", quick)
    first = asyncio.create_task(hooks.dispatch("device.deleted", device_id="a", device_data={}))
    second = asyncio.create_task(hooks.dispatch("device.deleted", device_id="b", device_data={}))
    await asyncio.sleep(0)
    gates["b"].set()
    assert (await second).ok
    gates["a"].set()
    assert (await first).ok
    assert seen == ["b", "b-quick", "a", "a-quick"]
    # Afterwards a dispatch that never suspends (the gate is open) reuses a runner.
    gates["c"] = asyncio.Event()
    gates["c"].set()
    assert (await hooks.dispatch("device.deleted", device_id="c", device_data={})).ok
    assert seen[-2:] == ["c", "c-quick"]
