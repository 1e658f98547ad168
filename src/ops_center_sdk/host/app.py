"""``create_host_app``: the local Ops-Center's REST application."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from .. import __version__
from ..docs_pages import install_docs_pages
from .auth import APIKeys
from .bus import EventBus
from .errors import install_error_handlers
from .limits import DEFAULT_MAX_BODY_BYTES
from .marketplace import Marketplace
from .rest import API_PREFIX, api_router
from .rest import marketplace as marketplace_rest
from .store import HostStore

log = logging.getLogger("ops_center_sdk.host")

#: How long shutdown waits for queued events to be delivered.
SHUTDOWN_DRAIN_SECONDS = 10.0


def create_host_app(
    *,
    data_dir: Path | None = None,
    admin_key: str | None = None,
    bus: EventBus | None = None,
    store: HostStore | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    title: str = "Ops-Center (local)",
) -> FastAPI:
    """The REST API of a local Ops-Center, under ``/api/v1`` (OpenAPI at ``/docs``, ``/redoc``).

    The store is ``store`` if given, else the SQLite file in ``data_dir``
    (``<data_dir>/ops-center.db``), else a private in-memory database.
    ``admin_key`` grants every permission; when ``None`` a random one is made.
    The parts are on ``app.state``: ``store``, ``bus``, ``marketplace``
    (``<data_dir>/marketplace``, packages published to it), ``keys`` (issue and
    revoke API keys) and ``admin_key``.

    When the server shuts down (ASGI lifespan), queued events are delivered
    (for up to 10 s), and the bus and store are closed if this function made
    them; a ``bus`` or ``store`` passed in stays open for its owner.

    >>> app = create_host_app(admin_key="secret")
    >>> key = app.state.keys.issue("my-plugin", ["devices:read"])
    """
    owns_store, owns_bus = store is None, bus is None
    if store is None:
        store = HostStore.in_directory(data_dir) if data_dir is not None else HostStore.in_memory()
    if bus is None:
        bus = EventBus(store)
    admin_key = admin_key or secrets.token_urlsafe(32)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        try:
            await asyncio.wait_for(bus.drain(), SHUTDOWN_DRAIN_SECONDS)
        except TimeoutError:
            log.warning("events still undelivered after %s s at shutdown", SHUTDOWN_DRAIN_SECONDS)
        if owns_bus:
            bus.stop()
        if owns_store:
            store.close()

    app = FastAPI(
        title=title,
        version=__version__,
        description="The Ops-Center REST API, served locally for plugin development.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_docs_pages(app)
    app.state.store = store
    app.state.bus = bus
    app.state.keys = APIKeys(store, admin_key=admin_key)
    app.state.admin_key = admin_key
    app.state.marketplace = Marketplace.for_host(data_dir, store)
    app.include_router(api_router())
    app.include_router(marketplace_rest.router, prefix=API_PREFIX)
    # Added last = outermost: the size limit sits inside the catch-all.
    app.add_middleware(
        marketplace_rest.BodyLimits,
        max_bytes=max_body_bytes,
        upload_max_bytes=app.state.marketplace.limits.max_compressed_bytes,
    )
    install_error_handlers(app)

    @app.get("/api/v1/health", tags=["host"], summary="Is the host up?")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    return app
