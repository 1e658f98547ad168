"""A registered handler, and how to call it: worked out once, when it registers.

The signature is read here, never at dispatch. For each handler we decide how
the dispatcher calls it:

* ``positional`` - action handlers whose parameters are exactly the catalog
  event's keywords, in catalog order, are called ``target(*values)`` with the
  values the dispatcher extracted once for all handlers. Filters and
  lifecycle handlers taking their value positionally are called the same way.
* otherwise ``bind(payload)`` (or ``bind(value)``) builds the call: the keywords the handler names
  (all of them with ``**kwargs``), a missing one reported by name.

Sync handlers are wrapped so that they run on a thread of the plugin's
:class:`~ops_center_sdk.workers.WorkerPool`: ``target`` is then a coroutine
function like any other.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
from collections.abc import Callable, Coroutine, Mapping
from inspect import Parameter
from typing import TYPE_CHECKING, Any, Literal

from ..context import active_event, current_event
from ..errors import HookError

if TYPE_CHECKING:
    from ..workers import WorkerPool
    from .dispatch import HandlerChain

HandlerKind = Literal["action", "filter", "lifecycle"]
Call = Coroutine[Any, Any, Any]
Binder = Callable[[Any], Call]

# Global, so that handlers of several registries (plugins) keep their
# registration order when the host merges them into one chain.
_sequence = itertools.count()


class RegisteredHandler:
    """A handler registered for one event, filter or lifecycle phase.

    ``name`` is the function's qualified name, used in every message about
    it. ``calls``, ``failures`` and ``timeouts`` count its runs (a timeout is
    also a failure).
    """

    __slots__ = (
        "_calls",
        "_chain",
        "bind",
        "failures",
        "function",
        "hook",
        "is_async",
        "kind",
        "name",
        "owner",
        "positional",
        "priority",
        "sequence",
        "target",
        "timeout",
        "timeouts",
    )

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        owner: str,
        hook: str,
        kind: HandlerKind,
        keywords: tuple[str, ...] | None,
        priority: int,
        timeout: float,
        workers: WorkerPool,
    ) -> None:
        name = handler_name(function)
        where = f"{kind} handler {name!r} for {hook!r}"
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise HookError(f"{where}: priority must be an integer, got {priority!r}")
        check_timeout(timeout, where)
        self.function = function
        self.name = name
        self.owner = owner
        self.hook = hook
        self.kind: HandlerKind = kind
        self.priority = priority
        self.timeout = float(timeout)
        self.sequence = next(_sequence)
        self.is_async = _is_async(function)
        self.target: Callable[..., Call] = (
            function if self.is_async else _in_thread(function, workers)
        )
        self.positional: bool
        self.bind: Binder
        signature = _signature(function, where)
        if kind == "action":
            self.positional, self.bind = _plan_action(self.target, signature, name, hook, keywords)
        elif kind == "filter":
            self.positional, self.bind = _plan_filter(self.target, signature, name, hook)
        else:
            self.positional, self.bind = _plan_lifecycle(self.target, signature, name, hook)
        self._calls = 0
        self._chain: HandlerChain | None = None  # the chain that calls it now
        self.failures = 0
        self.timeouts = 0

    @property
    def calls(self) -> int:
        """How many times the handler was called."""
        # The chain counts its runs once per dispatch instead of once per
        # handler; a handler's count is what earlier chains settled plus that.
        chain = self._chain
        return self._calls + (chain.runs if chain is not None else 0)

    def __repr__(self) -> str:
        return f"<RegisteredHandler {self.name} {self.kind} {self.hook!r} priority={self.priority}>"


def handler_name(function: object) -> str:
    """The qualified name a handler goes by in messages (``module.qualname`` is too long)."""
    if isinstance(function, functools.partial):
        return f"partial({handler_name(function.func)})"
    name = getattr(function, "__qualname__", None)
    if isinstance(name, str):
        return name
    return type(function).__qualname__


def check_timeout(timeout: object, where: str) -> None:
    """Refuse a timeout that is not a positive, finite number of seconds."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise HookError(f"{where}: timeout must be a positive number of seconds, got {timeout!r}")


def _is_async(function: Callable[..., Any]) -> bool:
    if inspect.isasyncgenfunction(function) or inspect.isgeneratorfunction(function):
        kind = "an async generator" if inspect.isasyncgenfunction(function) else "a generator"
        raise HookError(
            f"handler {handler_name(function)!r} is {kind} function; "
            "a handler must be a plain 'async def' or 'def' function"
        )
    call = getattr(function, "__call__", None)  # noqa: B004 - async __call__ methods
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call)


def _in_thread(function: Callable[..., Any], workers: WorkerPool) -> Callable[..., Call]:
    """Wrap a sync handler so that it runs on one of ``workers`` (the context goes along)."""
    run = workers.run

    async def call_in_thread(*args: Any, **kwargs: Any) -> Any:
        # The worker thread is off the dispatcher's stack: carry the event name along.
        token = current_event.set(active_event())
        try:
            result = await run(function, *args, **kwargs)
        finally:
            current_event.reset(token)
        if inspect.isawaitable(result):  # a plain def that returned a coroutine
            result = await result
        return result

    return call_in_thread


def _signature(function: object, where: str) -> inspect.Signature:
    if not callable(function):
        raise HookError(f"{where}: a handler must be callable, got {type(function).__name__}")
    try:
        return inspect.signature(function)
    except (TypeError, ValueError) as exc:
        raise HookError(f"{where}: cannot read the handler's signature ({exc})") from None


def _describe_keywords(keywords: tuple[str, ...]) -> str:
    return ", ".join(keywords) if keywords else "no keywords"


def _plan_action(
    target: Callable[..., Call],
    signature: inspect.Signature,
    name: str,
    event: str,
    keywords: tuple[str, ...] | None,
) -> tuple[bool, Binder]:
    params = list(signature.parameters.values())
    where = f"hook handler {name!r} for event {event!r}"
    for param in params:
        if param.kind is Parameter.POSITIONAL_ONLY:
            raise HookError(
                f"{where}: parameter {param.name!r} is positional-only; "
                "handlers receive the event's payload by keyword"
            )
    takes_all = any(p.kind is Parameter.VAR_KEYWORD for p in params)
    named = [
        p for p in params if p.kind in (Parameter.POSITIONAL_OR_KEYWORD, Parameter.KEYWORD_ONLY)
    ]
    if not named and not takes_all and any(p.kind is Parameter.VAR_POSITIONAL for p in params):
        raise HookError(
            f"{where}: it takes only *args; name the keywords it needs "
            f"(the event provides: {_describe_keywords(keywords or ())}) or take **kwargs"
        )
    required = tuple(p.name for p in named if p.default is Parameter.empty)
    optional = tuple(p.name for p in named if p.default is not Parameter.empty)
    if keywords is not None:
        missing = [n for n in required if n not in keywords]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            listed = ", ".join(repr(n) for n in missing)
            raise HookError(
                f"{where}: required parameter{plural} {listed} "
                f"{'are not keywords' if plural else 'is not a keyword'} of that event "
                f"(the event provides: {_describe_keywords(keywords)}); "
                "give it a default or take **kwargs"
            )
        if (
            not takes_all
            and tuple(p.name for p in named) == keywords
            and all(p.kind is Parameter.POSITIONAL_OR_KEYWORD for p in named)
        ):
            return True, _bind_named(target, name, event, required, optional)
        # The catalog guarantees every keyword it names: nothing to check.
        required_to_check: tuple[str, ...] = ()
    else:
        required_to_check = required
    if takes_all:
        return False, _bind_all(target, name, event, required_to_check)
    return False, _bind_named(target, name, event, required, optional)


def _missing_keyword_error(
    name: str, event: str, missing: list[str], payload: Mapping[str, Any]
) -> HookError:
    listed = ", ".join(repr(n) for n in missing)
    carried = ", ".join(str(k) for k in payload) or "no keywords"
    return HookError(
        f"hook handler {name!r} needs keyword{'s' if len(missing) > 1 else ''} {listed}, "
        f"which event {event!r} did not carry (it carried: {carried})"
    )


def _bind_all(
    target: Callable[..., Call], name: str, event: str, required: tuple[str, ...]
) -> Binder:
    def bind(payload: Mapping[str, Any]) -> Call:
        if required:
            missing = [n for n in required if n not in payload]
            if missing:
                raise _missing_keyword_error(name, event, missing, payload)
        return target(**payload)

    return bind


def _bind_named(
    target: Callable[..., Call],
    name: str,
    event: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
) -> Binder:
    def bind(payload: Mapping[str, Any]) -> Call:
        try:
            kwargs = {key: payload[key] for key in required}
        except KeyError:
            missing = [n for n in required if n not in payload]
            raise _missing_keyword_error(name, event, missing, payload) from None
        for key in optional:
            if key in payload:
                kwargs[key] = payload[key]
        return target(**kwargs)

    return bind


def _plan_filter(
    target: Callable[..., Call], signature: inspect.Signature, name: str, hook: str
) -> tuple[bool, Binder]:
    where = f"filter handler {name!r} for {hook!r}"
    params = list(signature.parameters.values())
    required = [
        p
        for p in params
        if p.default is Parameter.empty
        and p.kind not in (Parameter.VAR_POSITIONAL, Parameter.VAR_KEYWORD)
    ]
    if len(required) > 1:
        listed = ", ".join(repr(p.name) for p in required)
        raise HookError(
            f"{where}: it has {len(required)} required parameters ({listed}); a filter "
            "takes the value as its single required argument and returns the new value"
        )
    value_param = required[0] if required else None
    if value_param is None:
        value_param = next(
            (p for p in params if p.kind not in (Parameter.VAR_POSITIONAL, Parameter.VAR_KEYWORD)),
            None,
        )
    if value_param is None:
        raise HookError(
            f"{where}: it takes no named parameter; a filter takes the value "
            "(e.g. 'data') and returns the new value"
        )
    if value_param.kind is not Parameter.KEYWORD_ONLY:
        # Positional parameters with defaults follow the required ones, so a
        # positional value parameter is always the first: pass it positionally.
        return True, target
    keyword = value_param.name

    def bind(value: Any) -> Call:
        return target(**{keyword: value})

    return False, bind


def _plan_lifecycle(
    target: Callable[..., Call], signature: inspect.Signature, name: str, phase: str
) -> tuple[bool, Binder]:
    required = [
        p.name
        for p in signature.parameters.values()
        if p.default is Parameter.empty
        and p.kind not in (Parameter.VAR_POSITIONAL, Parameter.VAR_KEYWORD)
    ]
    if required:
        listed = ", ".join(repr(n) for n in required)
        raise HookError(
            f"lifecycle handler {name!r} for {phase!r}: lifecycle handlers are called "
            f"with no arguments, but it requires {listed}"
        )
    return True, lambda _payload: target()
