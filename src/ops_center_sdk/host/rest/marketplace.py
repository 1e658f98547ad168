"""``/api/v1/marketplace``: publish plugin packages, browse them, download and install them.

Publishing is ``POST /marketplace/plugins`` with the ``.tar.gz`` as the raw
body (``Content-Type: application/gzip``) and its SHA-256 in the
``X-Checksum-Sha256`` header (or the ``sha256`` query parameter)::

    curl -X POST http://127.0.0.1:8000/api/v1/marketplace/plugins \\
      -H "Authorization: Bearer $KEY" -H "Content-Type: application/gzip" \\
      -H "X-Checksum-Sha256: $(cut -d' ' -f1 dist/my-plugin-1.0.0.tar.gz.sha256)" \\
      --data-binary @dist/my-plugin-1.0.0.tar.gz

Reading needs ``plugins:read``; publishing and installing ``plugins:admin``.
In paths, a version may be ``latest``.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth import Principal, require
from ..check_budget import check_budget_of, check_plugin_folder, run_check
from ..errors import HostError
from ..limits import BodySizeLimit
from ..marketplace import Marketplace
from ..plugin_errors import PluginConflict
from ..store import Record, RecordPage
from .common import PageQuery, Paging, only_query
from .strict_json import StrictJSONRoute

if TYPE_CHECKING:
    from ..plugin_host import PluginHost

PREFIX = "/marketplace"
#: The full path packages are uploaded to (the one that takes large bodies).
UPLOAD_PATH = "/api/v1/marketplace/plugins"
CHECKSUM_HEADER = "X-Checksum-Sha256"
_PACKAGE_TYPES = (
    "application/gzip",
    "application/x-gzip",
    "application/octet-stream",
    "application/x-tar",
    "application/x-compressed-tar",
)

router = APIRouter(prefix=PREFIX, tags=["marketplace"], route_class=StrictJSONRoute)


def marketplace(request: Request) -> Marketplace:
    """FastAPI dependency: the app's marketplace."""
    market: Marketplace = request.app.state.marketplace
    return market


Market = Annotated[Marketplace, Depends(marketplace)]


def _page(items: list[Record], paging: Paging) -> dict[str, Any]:
    return paging.response(RecordPage(paging.window(items), len(items)))


@router.post(
    "/plugins",
    status_code=201,
    summary="Publish a plugin package",
    dependencies=[Depends(only_query("sha256"))],
)
async def publish(
    request: Request,
    market: Market,
    principal: Annotated[Principal, Depends(require("plugins:admin"))],
    sha256: Annotated[str | None, Query(description="The package's SHA-256 (hex).")] = None,
    checksum: Annotated[str | None, Header(alias=CHECKSUM_HEADER)] = None,
) -> dict[str, Any]:
    """Check and publish the package in the body; answers the listing and the version.

    Refused: a checksum that does not match (422 ``checksum_mismatch``), a
    package that is unsafe or invalid (422 ``package_refused``), checks that
    take longer than the host's budget (422 ``check_too_slow``), too large
    (413), or a version already published (409 ``version_exists``).
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in _PACKAGE_TYPES:
        error = HostError(
            f"send the package itself as the body with Content-Type: application/gzip "
            f"(got {content_type})"
        )
        error.status, error.code = 415, "unsupported_media_type"
        raise error
    expected = checksum or sha256
    if not expected:
        raise HostError(
            f"the package's SHA-256 is required: send it in the {CHECKSUM_HEADER} header",
            details=[{"field": f"header.{CHECKSUM_HEADER}", "message": "missing"}],
        )
    published = await market.publish_stream(
        request.stream(),
        expected,
        publisher=principal.owner,
        budget=check_budget_of(request.app.state),
    )
    return {"plugin": published.listing, "package": published.package}


@router.get(
    "/plugins",
    summary="List published plugins",
    dependencies=[Depends(require("plugins:read")), Depends(only_query("q", "category", "type"))],
)
async def list_plugins(
    market: Market,
    paging: PageQuery,
    q: Annotated[str | None, Query(description="Part of the id, name, description...")] = None,
    category: str | None = None,
    plugin_type: Annotated[str | None, Query(alias="type")] = None,
) -> dict[str, Any]:
    """One page of listings (the latest version's metadata), oldest first."""
    return _page(market.listings(q=q, category=category, plugin_type=plugin_type), paging)


@router.get(
    "/plugins/{plugin_id}",
    summary="Get a plugin's listing",
    dependencies=[Depends(require("plugins:read"))],
)
async def get_plugin(market: Market, plugin_id: str) -> Record:
    """The listing of one plugin: metadata, latest version, every version."""
    return market.listing(plugin_id)


@router.get(
    "/plugins/{plugin_id}/versions",
    summary="List a plugin's versions",
    dependencies=[Depends(require("plugins:read")), Depends(only_query())],
)
async def list_versions(market: Market, plugin_id: str, paging: PageQuery) -> dict[str, Any]:
    """The published versions, lowest first, each with its checksum and manifest."""
    market.listing(plugin_id)
    return _page(market.versions(plugin_id), paging)


@router.get(
    "/plugins/{plugin_id}/versions/{version}",
    summary="Get one version",
    dependencies=[Depends(require("plugins:read"))],
)
async def get_version(market: Market, plugin_id: str, version: str) -> Record:
    """One version's record (``latest`` for the highest)."""
    return market.package(plugin_id, version)


@router.get(
    "/plugins/{plugin_id}/versions/{version}/download",
    summary="Download a package",
    dependencies=[Depends(require("plugins:read"))],
    response_class=FileResponse,
)
async def download(market: Market, plugin_id: str, version: str) -> FileResponse:
    """The ``.tar.gz``; its SHA-256 is in the ``X-Checksum-Sha256`` header."""
    record = market.package(plugin_id, version)
    path = market.package_path(plugin_id, record["version"])
    return FileResponse(
        path,
        media_type="application/gzip",
        filename=record["filename"],
        headers={CHECKSUM_HEADER: record["sha256"]},
    )


@router.post(
    "/plugins/{plugin_id}/versions/{version}/install",
    status_code=201,
    summary="Install a published version into this Ops-Center",
    dependencies=[Depends(require("plugins:admin")), Depends(only_query("enable", "replace"))],
)
async def install(
    request: Request,
    market: Market,
    plugin_id: str,
    version: str,
    enable: bool = True,
    replace: bool = False,
) -> dict[str, Any]:
    """Verify the stored package, unpack it and install it (``replace=true`` to upgrade).

    The package is checked again (checksum, paths, links, sizes) before it is
    unpacked into the host's data folder; the plugin runs from there.
    """
    plugins = getattr(request.app.state, "plugins", None)
    if plugins is None:
        error = HostError(
            "this Ops-Center runs no plugin host; `ops-center-plugin dev` starts one that does"
        )
        error.status, error.code = 503, "unavailable"
        raise error
    if not replace:
        _refuse_installed(plugins, market.package(plugin_id, version), request)
    folder, record = await asyncio.to_thread(market.unpack, plugin_id, version)
    source = {
        "type": "marketplace",
        "plugin_id": record["plugin_id"],
        "version": record["version"],
        "sha256": record["sha256"],
    }
    try:
        await run_check(
            check_plugin_folder,
            folder,
            budget=check_budget_of(request.app.state),
            what=f"checking plugin.yaml of {plugin_id} {record['version']}",
        )
        entry = await plugins.install_folder(folder, enable=enable, replace=replace, source=source)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    market.remove_unpacked(record["plugin_id"], keep=folder)
    described: dict[str, Any] = plugins.describe(entry)
    return {"plugin": described, "package": record}


def _refuse_installed(plugins: PluginHost, record: Record, request: Request) -> None:
    """A 409 naming ``?replace=true`` when the package's plugin is installed already."""
    plugin_id = record["plugin_id"]
    existing = next((e for e in plugins.installed() if e.id == plugin_id), None)
    if existing is None:
        return
    again = request.url.include_query_params(replace="true")
    raise PluginConflict(
        f"plugin {plugin_id!r} is already installed (from {existing.folder}); to replace it "
        f"with {plugin_id} {record['version']} from the marketplace, keeping its storage and "
        f"config, add ?replace=true: POST {again.path}?{again.query} (or uninstall it first "
        f"with DELETE /api/v1/plugins/{plugin_id})",
        details=[{"field": "query.replace", "message": "already installed", "type": "conflict"}],
    )


class BodyLimits:
    """ASGI middleware: the host's body size limit, with a larger one for package uploads.

    Package uploads to :data:`UPLOAD_PATH` may be as large as the
    marketplace's compressed-size limit; every other request keeps the
    host's limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, upload_max_bytes: int) -> None:
        self.default = BodySizeLimit(app, max_bytes)
        self.upload = BodySizeLimit(app, max(max_bytes, upload_max_bytes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_upload = (
            scope["type"] == "http"
            and scope.get("method") == "POST"
            and scope.get("path", "").rstrip("/") == UPLOAD_PATH
        )
        await (self.upload if is_upload else self.default)(scope, receive, send)
