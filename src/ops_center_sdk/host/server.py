"""The local Ops-Center as served: the REST app with the plugin host, and their lifespan.

:func:`create_server_app` is what ``ops-center-plugin dev`` runs under
uvicorn. At startup the plugin host loads the installed plugins (enabling
those that were enabled, starting the processes of those that run as
processes), installs the folders it was given, and starts delivering events
to the registered webhooks; at shutdown queued events are delivered, then
every plugin is disabled (and stays enabled on record, so a restart brings
it back with its config and storage).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from .app import create_host_app
from .errors import HostError
from .plugin_host import IN_PROCESS_URL, PluginHost
from .process_runtime import ProcessSettings
from .rest import API_PREFIX
from .rest import events as events_rest
from .rest import plugins as plugins_rest
from .runtime import IN_PROCESS
from .webhook_sender import WebhookSender, WebhookSettings

log = logging.getLogger("ops_center_sdk.host")

AppContext = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_server_app(
    *,
    data_dir: Path | None = None,
    admin_key: str | None = None,
    public_url: str = IN_PROCESS_URL,
    local_url: str | None = None,
    storage_url: str | None = None,
    plugins: Sequence[str | Path] = (),
    plugin_mode: str = IN_PROCESS,
    process_settings: ProcessSettings | None = None,
    webhook_settings: WebhookSettings | None = None,
) -> FastAPI:
    """The host app (``create_host_app``) with a :class:`PluginHost` on ``app.state.plugins``.

    ``data_dir`` keeps the store (``ops-center.db``) and each plugin's storage
    (``plugins/<id>/storage.db``); None keeps everything in memory.
    ``public_url`` is where the server is reached (the plugins' API base URL);
    ``local_url`` where a plugin process on this machine reaches it (default:
    ``public_url``, when it is a real address).
    ``plugins`` are folders installed (or, if installed, taken as the code to
    run) and enabled at startup, in ``plugin_mode`` (``in_process`` or
    ``process``); one that fails is logged and skipped.
    ``process_settings`` and ``webhook_settings`` tune the timeouts and
    retries of plugin processes and of webhook deliveries.
    The webhook sender is on ``app.state.webhooks``.

    >>> app = create_server_app(data_dir=Path(".ops-center/data"), admin_key="dev-key",
    ...                         plugins=["examples/device_anomaly_detector"])
    >>> uvicorn.run(app)  # doctest: +SKIP
    """
    app = create_host_app(data_dir=data_dir, admin_key=admin_key)
    host = PluginHost(
        app,
        data_dir=data_dir,
        storage_url=storage_url,
        api_url=public_url,
        local_url=local_url,
        process_settings=process_settings,
    )
    webhooks = WebhookSender(app.state.store, app.state.bus, settings=webhook_settings)
    app.state.webhooks = webhooks
    app.include_router(plugins_rest.router, prefix=API_PREFIX)
    app.include_router(events_rest.router, prefix=API_PREFIX)
    folders = list(plugins)

    @asynccontextmanager
    async def run_plugins(app: FastAPI) -> AsyncIterator[None]:
        webhooks.start()
        await host.start()
        for folder in folders:
            try:
                await host.install_folder(folder, replace=True, mode=plugin_mode)
            except HostError as exc:
                log.error("plugin folder %s: %s", folder, exc.message)
        try:
            yield
        finally:
            await host.shutdown()
            await webhooks.aclose()

    add_lifespan(app, run_plugins)
    return app


def add_lifespan(app: FastAPI, context: AppContext) -> None:
    """Run ``context(app)`` inside the app's lifespan: after its startup, before its shutdown."""
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with outer(app) as state, context(app):
            yield state

    app.router.lifespan_context = lifespan
