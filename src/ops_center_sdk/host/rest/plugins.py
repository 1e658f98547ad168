"""``/api/v1/plugins``: install, enable, disable, uninstall, configure and watch plugins.

Reading (list, get, config, health, logs) needs ``plugins:read``, changing
config ``plugins:write``, the lifecycle calls ``plugins:admin``. A plugin's
own key may not enable, disable or uninstall that plugin.

Installing takes a folder on the host's machine (``{"path": "..."}``), run
in the host's process or, with ``"mode": "process"``, as its own process;
the marketplace installs packages by unpacking them and calling the same
:meth:`~ops_center_sdk.host.plugin_host.PluginHost.install_folder`.

A plugin process's events that could not be delivered are its dead letters:
``GET /plugins/{id}/dead-letters`` lists them, ``POST
.../dead-letters/{event_id}/replay`` sends one again (same event id) and
``DELETE .../dead-letters/{event_id}`` drops it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..auth import Principal
from ..check_budget import check_budget_of, check_plugin_folder, run_check
from ..errors import InvalidRequest, NotFound, PermissionDenied
from ..plugin_errors import PluginUnavailable
from ..plugin_host import PluginHost, key_owner
from ..runtime import IN_PROCESS, PROCESS
from ..store import RecordPage
from .common import PageQuery, only_query, permission
from .strict_json import StrictJSONRoute

router = APIRouter(prefix="/plugins", tags=["plugins"], route_class=StrictJSONRoute)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def plugin_host(request: Request) -> PluginHost:
    """FastAPI dependency: the app's plugin host (503 when it runs none)."""
    host: PluginHost | None = getattr(request.app.state, "plugins", None)
    if host is None:
        raise PluginUnavailable("this Ops-Center runs no plugin host")
    return host


Plugins = Annotated[PluginHost, Depends(plugin_host)]
Admin = Annotated[Principal, Depends(permission("plugins", "install"))]


def _not_itself(principal: Principal, plugin_id: str, action: str) -> None:
    if principal.owner == key_owner(plugin_id):
        raise PermissionDenied(
            f"a plugin may not {action} itself (plugin {plugin_id!r} used its own key)",
            details=[{"permission": "plugins:admin"}],
        )


class InstallRequest(BaseModel):
    """Body of ``POST /plugins``: a plugin folder on the host's machine."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        min_length=1,
        description="Folder holding plugin.yaml and the entrypoint (absolute, or "
        "relative to the folder the host runs in).",
        examples=["examples/device_anomaly_detector"],
    )
    enable: bool = Field(True, description="Enable the plugin once installed.")
    mode: Literal["in_process", "process"] = Field(
        IN_PROCESS,
        description="in_process: the host imports the plugin's code; process: the host runs "
        "it as its own process (uvicorn on a loopback port) and talks to it over the signed "
        "protocol, restarting it if it crashes or hangs.",
        examples=[PROCESS],
    )


@router.get(
    "",
    summary="List installed plugins",
    dependencies=[
        Depends(permission("plugins", "list")),
        Depends(only_query("status")),
    ],
)
async def list_plugins(
    plugins: Plugins,
    paging: PageQuery,
    status: Annotated[Literal["enabled", "disabled", "error"] | None, Query()] = None,
) -> dict[str, Any]:
    """One page of installed plugins, in install order."""
    found = [e for e in plugins.installed() if status is None or e.status == status]
    described = [plugins.describe(entry) for entry in paging.window(found)]
    return paging.response(RecordPage(described, len(found)))


@router.get(
    "/{plugin_id}",
    summary="Get an installed plugin",
    dependencies=[Depends(permission("plugins", "get"))],
)
async def get_plugin(plugins: Plugins, plugin_id: str) -> dict[str, Any]:
    """The plugin: metadata, status, events, filters, routes and last error."""
    return plugins.describe(plugins.get(plugin_id))


@router.post("", status_code=201, summary="Install a plugin from a folder")
async def install_plugin(
    request: Request, plugins: Plugins, body: InstallRequest, principal: Admin
) -> dict[str, Any]:
    """Load the plugin folder, run its ``on_install`` once and (by default) enable it.

    A broken plugin.yaml, an entrypoint that fails to import or a failing
    ``on_install`` is answered 422, naming the file and line; nothing is
    installed then. plugin.yaml and config.yaml are checked off the event
    loop first; checks that take longer than the host's budget (10 s) are
    answered 422 ``check_too_slow``. A plugin that installs but fails to enable is answered
    201 with ``status: "error"`` and the reason in ``error``.
    """
    await run_check(
        check_plugin_folder,
        body.path,
        budget=check_budget_of(request.app.state),
        what=f"checking plugin.yaml and config.yaml in {body.path!r}",
    )
    entry = await plugins.install_folder(body.path, enable=body.enable, mode=body.mode)
    return plugins.describe(entry)


@router.post("/{plugin_id}/enable", summary="Enable a plugin")
async def enable_plugin(plugins: Plugins, plugin_id: str, principal: Admin) -> dict[str, Any]:
    """Start the plugin: hooks, routes, scheduler. Enabling an enabled plugin does nothing."""
    _not_itself(principal, plugin_id, "enable")
    return plugins.describe(await plugins.enable(plugin_id))


@router.post("/{plugin_id}/disable", summary="Disable a plugin")
async def disable_plugin(plugins: Plugins, plugin_id: str, principal: Admin) -> dict[str, Any]:
    """Stop the plugin; its routes answer 503 until it is enabled again. Its data stays."""
    _not_itself(principal, plugin_id, "disable")
    return plugins.describe(await plugins.disable(plugin_id))


@router.delete("/{plugin_id}", status_code=204, summary="Uninstall a plugin")
async def uninstall_plugin(plugins: Plugins, plugin_id: str, principal: Admin) -> Response:
    """Disable the plugin, run its ``on_uninstall``, delete its data, config and API key."""
    _not_itself(principal, plugin_id, "uninstall")
    await plugins.uninstall(plugin_id)
    return Response(status_code=204)


@router.get(
    "/{plugin_id}/config",
    summary="Get a plugin's configuration",
    dependencies=[Depends(permission("plugins", "get_config"))],
)
async def get_config(plugins: Plugins, plugin_id: str) -> dict[str, Any]:
    """``config`` (merged: schema defaults, config.yaml, host values), ``overrides``, ``schema``."""
    return plugins.config_of(plugin_id)


@router.put(
    "/{plugin_id}/config",
    summary="Set a plugin's configuration",
    dependencies=[Depends(permission("plugins", "update_config"))],
)
async def put_config(
    plugins: Plugins,
    plugin_id: str,
    values: Annotated[dict[str, Any], Body(examples=[{"threshold": 2.5}])],
) -> dict[str, Any]:
    """Replace the values the host sets (they win over config.yaml).

    They are checked against the plugin's ``config_schema``: a 422 names each
    key path and the rule it breaks, and nothing changes. Kept across restarts.
    A plugin running as its own process is restarted with them.
    """
    return await plugins.set_config(plugin_id, values)


@router.get(
    "/{plugin_id}/health",
    summary="A plugin's health",
    dependencies=[Depends(permission("plugins", "health"))],
)
async def get_health(plugins: Plugins, plugin_id: str) -> dict[str, Any]:
    """Status, last error, hook call and failure counts, scheduled tasks.

    A plugin process is asked (``GET /_ops/health``) at this call; ``state``
    says how it runs (``running``, ``unhealthy``, ``restarting``...) and
    ``process`` gives its PID, URL, restarts, queue and dead letters.
    """
    return await plugins.check_health(plugin_id)


@router.get(
    "/{plugin_id}/logs",
    summary="A plugin's recent log records",
    dependencies=[
        Depends(permission("plugins", "logs")),
        Depends(only_query("limit", "level")),
    ],
)
async def get_logs(
    plugins: Plugins,
    plugin_id: str,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many records.")] = 100,
    level: Annotated[
        str | None, Query(description="Only records at this level or above (e.g. WARNING).")
    ] = None,
) -> dict[str, Any]:
    """The plugin's last ``limit`` records (``level`` and above), oldest first."""
    chosen = _level(level)
    items = plugins.logs(plugin_id, limit=limit, level=chosen)
    return {"items": items, "count": len(items)}


@router.get(
    "/{plugin_id}/dead-letters",
    summary="Events a plugin process could not be given",
    dependencies=[Depends(permission("plugins", "health")), Depends(only_query())],
)
async def list_dead_letters(plugins: Plugins, plugin_id: str, paging: PageQuery) -> dict[str, Any]:
    """One page of the plugin's dead letters, oldest first.

    Each names the event (``event_id``, ``event``), why it was given up
    (``reason``: ``failed``, ``refused``, ``too_large``, ``disabled``,
    ``shutdown``, ``overflow``), the ``attempts``, the ``last_error`` and
    ``status_code``, and holds the whole ``envelope``.
    """
    plugins.get(plugin_id)
    return paging.response(
        plugins.dead_letters.page(plugin_id, offset=paging.offset, limit=paging.page_size)
    )


@router.post(
    "/{plugin_id}/dead-letters/{event_id}/replay",
    status_code=202,
    summary="Send a dead letter again",
)
async def replay_dead_letter(
    plugins: Plugins, plugin_id: str, event_id: str, principal: Admin
) -> dict[str, Any]:
    """Queue the event for the plugin again, with the same id (the plugin runs an id once).

    The dead letter goes; should the delivery fail again, it comes back.
    409 when the plugin is not enabled.
    """
    return await plugins.replay_dead_letter(plugin_id, event_id)


@router.delete(
    "/{plugin_id}/dead-letters/{event_id}", status_code=204, summary="Drop a dead letter"
)
async def drop_dead_letter(
    plugins: Plugins, plugin_id: str, event_id: str, principal: Admin
) -> Response:
    """Forget the event: it will not be delivered."""
    plugins.get(plugin_id)
    if not plugins.dead_letters.remove(plugin_id, event_id):
        raise NotFound(f"plugin {plugin_id!r} has no dead letter for event {event_id!r}")
    return Response(status_code=204)


def _level(level: str | None) -> str | None:
    """A log level name in any case, upper-cased; 422 naming ``query.level`` otherwise."""
    if level is None:
        return None
    upper = level.upper()
    if upper not in LOG_LEVELS:
        message = f"unknown log level {level!r}; use {', '.join(LOG_LEVELS)}"
        raise InvalidRequest(
            message, details=[{"field": "query.level", "message": message, "type": "enum"}]
        )
    return upper
