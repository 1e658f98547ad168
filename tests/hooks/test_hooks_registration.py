"""Registering handlers: what is accepted, what is refused, and what the error says."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from ops_center_sdk.errors import HookError, UnknownEventError
from ops_center_sdk.events import EVENT_CATALOG
from ops_center_sdk.hooks import HookRegistry

OWNER = "test-plugin"


async def on_created(device_id: str, device_data: dict[str, Any]) -> None:
    pass


# ------------------------------------------------------------------ accepted


async def test_the_specs_device_deleted_handler_gets_the_record_as_it_was(
    hooks: HookRegistry,
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    # the signature plugins written against the spec declare
    async def on_device_deleted(device_id: str, device_data: dict) -> None:  # type: ignore[type-arg]
        seen.append((device_id, device_data))

    handler = hooks.add_action("device.deleted", on_device_deleted)
    assert handler.positional  # exactly the catalog's keywords, in order
    report = await hooks.dispatch("device.deleted", device_id="d1", device_data={"name": "Web"})
    assert report.ok
    assert seen == [("d1", {"name": "Web"})]


def test_every_deleted_event_carries_the_record_it_deleted() -> None:
    deleted = {name: keys for name, keys in EVENT_CATALOG.items() if name.endswith(".deleted")}
    assert "device.deleted" in deleted
    for name, keywords in deleted.items():
        kind = name.removesuffix(".deleted")
        assert keywords == (f"{kind}_id", f"{kind}_data"), name


def test_handler_records_what_it_was_registered_with(hooks: HookRegistry) -> None:
    handler = hooks.add_action("device.created", on_created, priority=3, timeout=1.5)
    assert handler.function is on_created
    assert handler.name == "on_created"
    assert handler.hook == "device.created"
    assert handler.kind == "action"
    assert handler.owner == OWNER
    assert handler.priority == 3
    assert handler.timeout == 1.5
    assert handler.is_async


def test_defaults_are_priority_10_and_the_registry_timeout() -> None:
    hooks = HookRegistry(OWNER, default_timeout=7)
    handler = hooks.add_action("device.created", on_created)
    assert handler.priority == 10
    assert handler.timeout == 7.0
    assert HookRegistry(OWNER).add_action("device.created", on_created).timeout == 30.0


def test_accepted_signatures(hooks: HookRegistry) -> None:
    async def subset(device_id: str) -> None: ...
    async def reversed_order(device_data: dict[str, Any], device_id: str) -> None: ...
    async def keyword_only(*, device_id: str) -> None: ...
    async def everything(**kwargs: Any) -> None: ...
    async def args_and_kwargs(*args: Any, **kwargs: Any) -> None: ...
    async def optional_extra(device_id: str, extra: int = 0) -> None: ...
    async def nothing() -> None: ...
    def sync(device_id: str) -> None: ...

    class Callable:
        async def __call__(self, device_id: str) -> None: ...

    for handler in (
        subset,
        reversed_order,
        keyword_only,
        everything,
        args_and_kwargs,
        optional_extra,
        nothing,
        sync,
        Callable(),
        functools.partial(on_created, device_id="fixed"),
    ):
        hooks.add_action("device.created", handler)
    assert len(hooks.actions("device.created")) == 10
    assert not hooks.actions("device.created")[7].is_async  # sync: runs in a thread
    assert hooks.actions("device.created")[8].is_async  # async __call__


def test_handler_names_for_partials_and_callable_objects(hooks: HookRegistry) -> None:
    class Notifier:
        async def __call__(self, device_id: str) -> None: ...

    partial = hooks.add_action("device.deleted", functools.partial(on_created, device_data={}))
    instance = hooks.add_action("device.deleted", Notifier())
    assert partial.name == "partial(on_created)"
    assert instance.name == (
        "test_handler_names_for_partials_and_callable_objects.<locals>.Notifier"
    )


def test_custom_events_in_the_plugins_namespace(hooks: HookRegistry) -> None:
    async def anything(report_id: str, size: int) -> None: ...

    hooks.add_action(f"{OWNER}.report_ready", anything)
    assert hooks.events() == [f"{OWNER}.report_ready"]


def test_events_and_filter_names_list_what_has_handlers(hooks: HookRegistry) -> None:
    async def enrich(data: dict[str, Any]) -> dict[str, Any]:
        return data

    hooks.add_action("device.updated", on_created)
    hooks.add_action("device.created", on_created)
    hooks.add_filter("device.data.process", enrich)
    assert hooks.events() == ["device.created", "device.updated"]
    assert hooks.filter_names() == ["device.data.process"]
    assert hooks.actions("alert.created") == ()


def test_priority_order_and_ties_in_registration_order(hooks: HookRegistry) -> None:
    async def low() -> None: ...
    async def high_first() -> None: ...
    async def middle() -> None: ...
    async def high_second() -> None: ...

    hooks.add_action("device.deleted", low, priority=5)
    hooks.add_action("device.deleted", high_first, priority=20)
    hooks.add_action("device.deleted", middle)
    hooks.add_action("device.deleted", high_second, priority=20)
    names = [h.function.__name__ for h in hooks.actions("device.deleted")]
    assert names == ["high_first", "high_second", "middle", "low"]


def test_remove_unregisters_and_refuses_a_second_time(hooks: HookRegistry) -> None:
    first = hooks.add_action("device.created", on_created)
    hooks.add_action("device.created", on_created, priority=1)
    hooks.remove(first)
    assert [h.priority for h in hooks.actions("device.created")] == [1]
    with pytest.raises(HookError, match=r"'on_created' for 'device.created' is not registered"):
        hooks.remove(first)


def test_removing_the_last_handler_removes_the_event(hooks: HookRegistry) -> None:
    handler = hooks.add_action("device.created", on_created)
    hooks.remove(handler)
    assert hooks.events() == []


# ------------------------------------------------------------------ refused


def test_required_parameter_the_event_does_not_carry(hooks: HookRegistry) -> None:
    async def on_metrics(device_id: str, cpu: float) -> None: ...

    with pytest.raises(HookError) as caught:
        hooks.add_action("device.metrics_updated", on_metrics)
    message = str(caught.value)
    assert "'test_required_parameter_the_event_does_not_carry.<locals>.on_metrics'" in message
    assert "'device.metrics_updated'" in message
    assert "required parameter 'cpu' is not a keyword of that event" in message
    assert "the event provides: device_id, metrics" in message
    assert hooks.actions("device.metrics_updated") == ()


def test_several_missing_parameters_are_all_named(hooks: HookRegistry) -> None:
    async def handler(device_id: str, owner: str, site: str) -> None: ...

    with pytest.raises(HookError, match=r"required parameters 'owner', 'site' are not keywords"):
        hooks.add_action("device.deleted", handler)


def test_positional_only_parameters_are_refused(hooks: HookRegistry) -> None:
    async def handler(device_id: str, /) -> None: ...

    with pytest.raises(HookError, match=r"parameter 'device_id' is positional-only; handlers"):
        hooks.add_action("device.deleted", handler)


def test_args_only_handler_is_refused(hooks: HookRegistry) -> None:
    async def handler(*args: Any) -> None: ...

    with pytest.raises(
        HookError, match=r"it takes only \*args; .*provides: device_id, device_data\)"
    ):
        hooks.add_action("device.deleted", handler)


def test_non_callable_is_refused(hooks: HookRegistry) -> None:
    with pytest.raises(HookError, match=r"a handler must be callable, got str"):
        hooks.add_action("device.created", "on_created")  # type: ignore[arg-type]


def test_generator_functions_are_refused(hooks: HookRegistry) -> None:
    async def agen(device_id: str) -> Any:
        yield device_id

    def gen(device_id: str) -> Any:
        yield device_id

    with pytest.raises(HookError, match=r"'.*agen' is an async generator function"):
        hooks.add_action("device.deleted", agen)
    with pytest.raises(HookError, match=r"'.*gen' is a generator function"):
        hooks.add_action("device.deleted", gen)


@pytest.mark.parametrize(
    ("priority", "timeout", "expected"),
    [
        ("high", None, r"priority must be an integer, got 'high'"),
        (True, None, r"priority must be an integer, got True"),
        (10, 0, r"timeout must be a positive number of seconds, got 0"),
        (10, -1.0, r"timeout must be a positive number of seconds, got -1.0"),
        (10, float("nan"), r"timeout must be a positive number of seconds, got nan"),
        (10, "5", r"timeout must be a positive number of seconds, got '5'"),
    ],
)
def test_bad_priority_or_timeout(
    hooks: HookRegistry, priority: Any, timeout: Any, expected: str
) -> None:
    with pytest.raises(HookError, match=r"action handler 'on_created' for 'device.created': "):
        hooks.add_action("device.created", on_created, priority=priority, timeout=timeout)
    with pytest.raises(HookError, match=expected):
        hooks.add_action("device.created", on_created, priority=priority, timeout=timeout)
    assert hooks.actions("device.created") == ()


def test_bad_registry_default_timeout() -> None:
    with pytest.raises(HookError, match=r"plugin 'p': timeout must be a positive number"):
        HookRegistry("p", default_timeout=0)


def test_unknown_event_suggests_the_close_one(hooks: HookRegistry) -> None:
    with pytest.raises(UnknownEventError, match=r"unknown event 'device.craeted'; did you mean "):
        hooks.add_action("device.craeted", on_created)
    with pytest.raises(UnknownEventError, match=r"'device.created'\?"):
        hooks.add_action("device.craeted", on_created)


def test_event_of_another_namespace_is_refused(hooks: HookRegistry) -> None:
    with pytest.raises(UnknownEventError, match=r"must be named 'test-plugin.<name>'"):
        hooks.add_action("other-plugin.report_ready", on_created)


def test_filter_name_used_as_an_event_points_to_filter_hook(hooks: HookRegistry) -> None:
    with pytest.raises(UnknownEventError, match=r"@plugin.filter_hook\('device.data.process'\)"):
        hooks.add_action("device.data.process", on_created)


def test_event_name_used_as_a_filter_points_to_hook(hooks: HookRegistry) -> None:
    async def enrich(data: Any) -> Any:
        return data

    with pytest.raises(UnknownEventError, match=r"register it with @plugin.hook\('device.created'"):
        hooks.add_filter("device.created", enrich)


def test_non_string_event_name(hooks: HookRegistry) -> None:
    with pytest.raises(TypeError, match=r"an event name must be a string, got int"):
        hooks.add_action(42, on_created)  # type: ignore[arg-type]


def test_filter_with_two_required_parameters_is_refused(hooks: HookRegistry) -> None:
    async def merge(data: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
        return data

    with pytest.raises(HookError) as caught:
        hooks.add_filter("device.data.process", merge)
    message = str(caught.value)
    assert (
        "filter handler 'test_filter_with_two_required_parameters_is_refused.<locals>.merge'"
        in (message)
    )
    assert "2 required parameters ('data', 'other')" in message
    assert "single required argument" in message


def test_filter_without_a_named_parameter_is_refused(hooks: HookRegistry) -> None:
    async def nothing() -> None: ...
    async def only_args(*args: Any) -> None: ...

    for handler in (nothing, only_args):
        with pytest.raises(
            HookError, match=r"it takes no named parameter; a filter takes the value"
        ):
            hooks.add_filter("device.data.process", handler)


def test_filter_value_parameter_may_have_any_name_and_kind(hooks: HookRegistry) -> None:
    async def named(record: Any) -> Any:
        return record

    async def positional_only(record: Any, /) -> Any:
        return record

    async def keyword_only(*, record: Any, flag: bool = False) -> Any:
        return record

    for handler in (named, positional_only, keyword_only):
        hooks.add_filter("device.data.process", handler)
    assert len(hooks.filters("device.data.process")) == 3


def test_lifecycle_handler_with_a_required_parameter_is_refused(hooks: HookRegistry) -> None:
    async def setup(config: dict[str, Any]) -> None: ...

    with pytest.raises(
        HookError, match=r"lifecycle handler '.*setup' for 'install': .* no arguments, but it "
    ):
        hooks.add_lifecycle("install", setup)


def test_unknown_lifecycle_phase_suggests_the_close_one(hooks: HookRegistry) -> None:
    async def setup() -> None: ...

    with pytest.raises(
        HookError, match=r"unknown lifecycle phase 'instal'; did you mean 'install'"
    ):
        hooks.add_lifecycle("instal", setup)
    with pytest.raises(HookError, match=r"'start'. The phases are: install, enable, disable"):
        hooks.add_lifecycle("start", setup)
