"""The app's own start and stop code: ``@app.on_event`` handlers and ``lifespan=``.

FastAPI lets an app run code at startup and shutdown (``@app.on_event("startup")``,
``FastAPI(lifespan=...)``). The app that ``plugin.create_app()`` returns has a
lifespan of its own (it starts and stops the plugin), so Starlette would never
call the handlers a plugin author adds to it. :class:`AppEvents` runs them as
part of the plugin's lifecycle instead, wherever the plugin runs (on its own,
in a host's process, as a host's process):

- at **enable**, after ``on_enable`` and the scheduler started: the
  ``startup`` handlers in registration order, then the ``lifespan`` given to
  ``create_app(lifespan=...)`` up to its ``yield``. The first failure stops
  there and fails the enable, like an ``on_enable`` failure;
- at **disable** (and when the process goes away), before ``on_disable``:
  the rest of the ``lifespan``, then the ``shutdown`` handlers in
  registration order. Every one runs even if another fails.

Failures are logged with their traceback on ``ops_center_sdk.app``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

log = logging.getLogger("ops_center_sdk.app")

#: ``lifespan=`` as FastAPI takes it: called with the app, gives an async context manager.
Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


class AppEvents:
    """The startup and shutdown code of one plugin app.

    >>> events = AppEvents(plugin.id, app, lifespan=None)
    >>> await events.startup()   # in Plugin.enable
    >>> await events.shutdown()  # in Plugin.disable
    """

    def __init__(self, plugin_id: str, app: Any, lifespan: Lifespan | None = None) -> None:
        self.plugin_id = plugin_id
        self.app = app
        self.lifespan = lifespan
        self._stack: AsyncExitStack | None = None
        self._started = False

    async def startup(self) -> None:
        """Run the ``startup`` handlers, then enter ``lifespan``; raise the first failure."""
        if self._started:
            return
        for handler in list(self.app.router.on_startup):
            await self._call("startup", handler)
        if self.lifespan is not None:
            stack = AsyncExitStack()
            try:
                await stack.enter_async_context(self.lifespan(self.app))
            except Exception:
                log.exception("plugin %r: the app's lifespan failed at startup", self.plugin_id)
                raise
            self._stack = stack
        self._started = True

    async def shutdown(self) -> None:
        """Leave ``lifespan``, then run every ``shutdown`` handler; raise the first failure."""
        if not self._started:
            return
        self._started = False
        failures: list[Exception] = []
        stack, self._stack = self._stack, None
        if stack is not None:
            try:
                await stack.aclose()
            except Exception as exc:
                log.exception("plugin %r: the app's lifespan failed at shutdown", self.plugin_id)
                failures.append(exc)
        for handler in list(self.app.router.on_shutdown):
            try:
                await self._call("shutdown", handler)
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    async def _call(self, event: str, handler: Callable[[], Any]) -> None:
        try:
            result = handler()
            if inspect.isawaitable(result):
                await result
        except Exception:
            name = getattr(handler, "__qualname__", repr(handler))
            log.exception(
                "plugin %r: @app.on_event(%r) handler %s failed", self.plugin_id, event, name
            )
            raise
