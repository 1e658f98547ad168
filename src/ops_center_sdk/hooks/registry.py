"""One plugin's hook handlers: registration (with its checks) and dispatch."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Final

from ..errors import HookError
from ..events import check_name
from ..workers import WorkerPool
from .dispatch import HandlerChain, missing_keywords_error
from .handler import HandlerKind, RegisteredHandler, check_timeout
from .report import DispatchReport, HandlerStats

#: The lifecycle phases, in the order a plugin goes through them.
LIFECYCLE_PHASES: Final = ("install", "enable", "disable", "uninstall")


class HookRegistry:
    """The action, filter and lifecycle handlers of one plugin.

    ``owner`` is the plugin id: the plugin's own events are named
    ``'<owner>.<name>'``. Handlers run one after another, higher ``priority``
    first (equal priorities in registration order); each is isolated (an
    exception is logged on ``ops_center_sdk.hooks`` and counted, the others
    still run) and has a timeout (``default_timeout`` unless given).

    >>> hooks = HookRegistry("my-plugin")
    >>> async def on_created(device_id: str) -> None: ...
    >>> handler = hooks.add_action("device.created", on_created)
    >>> report = await hooks.dispatch("device.created", device_id="d1", device_data={})
    """

    def __init__(
        self, owner: str, *, default_timeout: float = 30.0, workers: WorkerPool | None = None
    ) -> None:
        check_timeout(default_timeout, f"hook registry of plugin {owner!r}")
        self.owner = owner
        self.default_timeout = float(default_timeout)
        #: Where its sync handlers run (the plugin's pool; by default one of its own).
        self.workers = workers if workers is not None else WorkerPool(owner)
        self._handlers: dict[tuple[HandlerKind, str], list[RegisteredHandler]] = {}
        self._actions: dict[str, HandlerChain] = {}
        self._filters: dict[str, HandlerChain] = {}
        self._lifecycle: dict[str, HandlerChain] = {}
        # Names already checked, with their catalog keywords (None: custom event).
        self._known_events: dict[str, tuple[str, ...] | None] = {}
        self._known_filters: set[str] = set()
        self._empty_reports: dict[str, DispatchReport] = {}

    # ---------------------------------------------------------------- register

    def add_action(
        self,
        event: str,
        handler: Callable[..., Any],
        *,
        priority: int = 10,
        timeout: float | None = None,
    ) -> RegisteredHandler:
        """Call ``handler`` when ``event`` is dispatched.

        The handler gets the payload keywords its signature names (all of them
        with ``**kwargs``). For a catalog event, a handler requiring a keyword
        the event does not carry is refused here, with a :class:`HookError`.
        """
        keywords = self._event_keywords(event)
        registered = RegisteredHandler(
            handler,
            owner=self.owner,
            hook=event,
            kind="action",
            keywords=keywords,
            priority=priority,
            timeout=self.default_timeout if timeout is None else timeout,
            workers=self.workers,
        )
        self._add(registered)
        return registered

    def add_filter(
        self,
        name: str,
        handler: Callable[..., Any],
        *,
        priority: int = 10,
        timeout: float | None = None,
    ) -> RegisteredHandler:
        """Pass the value of filter chain ``name`` through ``handler``.

        The handler takes the value as its single required argument and
        returns the new value; ``None``, an exception or a timeout keep the
        value as it was before it (and are logged as errors).
        """
        self._check_filter_name(name)
        registered = RegisteredHandler(
            handler,
            owner=self.owner,
            hook=name,
            kind="filter",
            keywords=None,
            priority=priority,
            timeout=self.default_timeout if timeout is None else timeout,
            workers=self.workers,
        )
        self._add(registered)
        return registered

    def add_lifecycle(
        self, phase: str, handler: Callable[..., Any], *, timeout: float | None = None
    ) -> RegisteredHandler:
        """Call ``handler`` with no arguments in ``phase``: install, enable, disable, uninstall.

        Handlers of one phase run in registration order.
        """
        registered = RegisteredHandler(
            handler,
            owner=self.owner,
            hook=self._check_phase(phase),
            kind="lifecycle",
            keywords=(),
            priority=0,
            timeout=self.default_timeout if timeout is None else timeout,
            workers=self.workers,
        )
        self._add(registered)
        return registered

    def remove(self, handler: RegisteredHandler) -> None:
        """Unregister ``handler``; dispatches already running still call it."""
        handlers = self._handlers.get((handler.kind, handler.hook), [])
        if handler not in handlers:
            raise HookError(
                f"{handler.kind} handler {handler.name!r} for {handler.hook!r} is not "
                f"registered with plugin {self.owner!r}"
            )
        handlers.remove(handler)
        self._rebuild(handler.kind, handler.hook)

    def _add(self, handler: RegisteredHandler) -> None:
        self._handlers.setdefault((handler.kind, handler.hook), []).append(handler)
        self._rebuild(handler.kind, handler.hook)

    def _rebuild(self, kind: HandlerKind, hook: str) -> None:
        chains = self._chains(kind)
        old = chains.pop(hook, None)
        if old is not None:
            old.retire()
        handlers = self._handlers.get((kind, hook))
        if not handlers:
            self._handlers.pop((kind, hook), None)
            return
        keywords = self._known_events.get(hook) if kind == "action" else None
        chains[hook] = HandlerChain(self._chain_name(kind, hook), kind, handlers, keywords)

    def _chains(self, kind: HandlerKind) -> dict[str, HandlerChain]:
        if kind == "action":
            return self._actions
        return self._filters if kind == "filter" else self._lifecycle

    @staticmethod
    def _chain_name(kind: HandlerKind, hook: str) -> str:
        return f"lifecycle.{hook}" if kind == "lifecycle" else hook

    # ----------------------------------------------------------------- inspect

    def actions(self, event: str) -> Sequence[RegisteredHandler]:
        """The action handlers of ``event``, in call order."""
        self._event_keywords(event)
        chain = self._actions.get(event)
        return chain.handlers if chain is not None else ()

    def filters(self, name: str) -> Sequence[RegisteredHandler]:
        """The handlers of filter chain ``name``, in call order."""
        self._check_filter_name(name)
        chain = self._filters.get(name)
        return chain.handlers if chain is not None else ()

    def lifecycle(self, phase: str) -> Sequence[RegisteredHandler]:
        """The handlers of lifecycle ``phase``, in call order."""
        chain = self._lifecycle.get(self._check_phase(phase))
        return chain.handlers if chain is not None else ()

    def events(self) -> list[str]:
        """The events that have action handlers, sorted."""
        return sorted(self._actions)

    def filter_names(self) -> list[str]:
        """The filter chains that have handlers, sorted."""
        return sorted(self._filters)

    @property
    def stats(self) -> list[HandlerStats]:
        """Call, failure and timeout counts of every registered handler."""
        return [
            HandlerStats(h.kind, h.hook, h.name, h.calls, h.failures, h.timeouts, h.priority)
            for chains in (self._lifecycle, self._actions, self._filters)
            for chain in chains.values()
            for h in chain.handlers
        ]

    # ---------------------------------------------------------------- dispatch

    def dispatch(
        self, event: str, payload: Mapping[str, Any] | None = None, /, **kwargs: Any
    ) -> Coroutine[Any, Any, DispatchReport]:
        """Run the action handlers of ``event``; the payload as a mapping or as keywords.

        A catalog event must carry all of its keywords (else :class:`HookError`);
        an unknown name raises :class:`~ops_center_sdk.errors.UnknownEventError`.
        Handler failures do not raise: they are logged and listed in the report.

        >>> await hooks.dispatch("device.created", device_id="d1", device_data={"name": "x"})
        """
        # A plain def returning the chain's coroutine: awaiting it costs one
        # coroutine, not two (see the dispatch module on why that matters).
        if payload is None:
            payload = kwargs
        elif kwargs or type(payload) is not dict:
            payload = self._merge(event, payload, kwargs)
        chain = self._actions.get(event)
        if chain is None:
            return self._without_handlers(event, payload)
        return chain.dispatch(payload)

    def apply_filters(self, name: str, value: Any) -> Coroutine[Any, Any, Any]:
        """Pass ``value`` through filter chain ``name``; return the final value.

        Each filter gets the value as the previous one left it (a shallow copy
        of a dict or list, so the caller's object is never changed) and returns
        the new value.

        >>> data = await hooks.apply_filters("device.data.process", {"name": "x"})
        """
        chain = self._filters.get(name)
        if chain is None:
            return self._unfiltered(name, value)
        return chain.apply(value)

    async def apply_filters_with_report(self, name: str, value: Any) -> tuple[Any, DispatchReport]:
        """Like :meth:`apply_filters`, and the report of which filters failed."""
        chain = self._filters.get(name)
        if chain is None:
            return await self._unfiltered(name, value), DispatchReport(name, 0)
        result: tuple[Any, DispatchReport] = await chain.apply(value, with_report=True)
        return result

    async def run_lifecycle(self, phase: str) -> DispatchReport:
        """Run the handlers of lifecycle ``phase``; every one runs even if another fails.

        Failures are logged on ``ops_center_sdk.hooks`` and listed in the
        report; call ``report.raise_for_errors()`` to make them raise (the
        plugin does, so a failed install or enable is not silently ignored).
        """
        phase = self._check_phase(phase)
        chain = self._lifecycle.get(phase)
        if chain is None:
            return DispatchReport(self._chain_name("lifecycle", phase), 0)
        return await chain.dispatch({})

    # ------------------------------------------------------------------ checks

    def _event_keywords(self, event: str) -> tuple[str, ...] | None:
        try:
            return self._known_events[event]
        except (KeyError, TypeError):
            pass
        if not isinstance(event, str):
            raise TypeError(f"an event name must be a string, got {type(event).__name__}")
        keywords = check_name(event, self.owner, kind="event")
        self._known_events[event] = keywords
        return keywords

    def _check_filter_name(self, name: str) -> None:
        if name in self._known_filters:
            return
        if not isinstance(name, str):
            raise TypeError(f"a filter name must be a string, got {type(name).__name__}")
        check_name(name, self.owner, kind="filter")
        self._known_filters.add(name)

    @staticmethod
    def _check_phase(phase: str) -> str:
        if phase in LIFECYCLE_PHASES:
            return phase
        close = difflib.get_close_matches(str(phase), LIFECYCLE_PHASES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise HookError(
            f"unknown lifecycle phase {phase!r}{hint} The phases are: "
            f"{', '.join(LIFECYCLE_PHASES)}."
        )

    def _merge(self, event: str, payload: object, kwargs: dict[str, Any]) -> Mapping[str, Any]:
        if not isinstance(payload, Mapping):
            raise TypeError(
                f"the payload of {event!r} must be a mapping of keywords, "
                f"got {type(payload).__name__}"
            )
        return {**payload, **kwargs} if kwargs else payload

    async def _unfiltered(self, name: str, value: Any) -> Any:
        self._check_filter_name(name)
        return value

    async def _without_handlers(self, event: str, payload: Mapping[str, Any]) -> DispatchReport:
        keywords = self._event_keywords(event)
        if keywords:
            for keyword in keywords:
                if keyword not in payload:
                    raise missing_keywords_error(event, keywords, payload)
        report = self._empty_reports.get(event)
        if report is None:
            report = self._empty_reports[event] = DispatchReport(event, 0)
        return report
