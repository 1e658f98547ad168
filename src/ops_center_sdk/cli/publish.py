"""``ops-center-plugin publish [PATH]``: upload a plugin's package to an Ops-Center marketplace."""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .admin_key import DEFAULT_DATA_DIR, KEY_ENV, URL_ENV, key_path, saved_admin_key
from .output import Output, human_size

if TYPE_CHECKING:
    import httpx

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
UPLOAD_ENDPOINT = "/marketplace/plugins"
CHECKSUM_HEADER = "X-Checksum-Sha256"
_CHUNK = 64 * 1024


class UsageError(Exception):
    """What the command was given cannot work (exit 2)."""


class PublishFailed(Exception):
    """The package could not be found, built or uploaded (exit 1)."""


@dataclass(frozen=True)
class PackageToSend:
    path: Path
    sha256: str
    plugin_id: str | None
    version: str | None


def run(args: argparse.Namespace) -> int:
    """Find (or build) the package and upload it; report the marketplace listing."""
    output = Output(json_mode=args.json)
    try:
        url = server_url(args.url)
        key = api_key(args.key, url, Path(args.path), output)
    except UsageError as exc:
        output.error(str(exc))
        return EXIT_USAGE
    try:
        package = find_package(Path(args.path), rebuild=args.rebuild, output=output)
        answer = upload(url, key, package, timeout=args.timeout, output=output)
    except UsageError as exc:
        output.error(str(exc))
        return EXIT_USAGE
    except PublishFailed as exc:
        message = str(exc) or "the plugin could not be built (see above)"
        if output.json_mode:
            output.json({"published": False, "error": message})
        elif str(exc):
            output.error(message)
        return EXIT_FAILED
    report(output, url, package, answer)
    return EXIT_OK


# ==================== where to ====================


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_url(given: str | None) -> str:
    """The Ops-Center URL from ``--url`` or ``OPS_CENTER_API_URL``; plain http only to loopback."""
    url = (given or os.environ.get(URL_ENV, "")).strip()
    if not url:
        raise UsageError(
            f"no Ops-Center URL: set {URL_ENV} (export {URL_ENV}=https://ops.example.com) or "
            "pass --url; a local `ops-center-plugin dev` listens on http://127.0.0.1:8000"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not an http(s) URL such as https://ops.example.com")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise UsageError(
            f"refusing to send the API key over plain http to {parts.hostname}: use https:// "
            "(plain http is allowed only to this machine: localhost, 127.0.0.1, ::1)"
        )
    return url.rstrip("/")


def api_key(given: str | None, url: str, folder: Path, output: Output) -> str:
    """``--key``, else ``OPS_CENTER_API_KEY``, else (for a local host) the dev host's saved key."""
    key = (given or os.environ.get(KEY_ENV, "")).strip()
    if key:
        return key
    hostname = urlsplit(url).hostname or ""
    if is_loopback(hostname):
        base = folder if folder.is_dir() else folder.parent
        for data_dir in dict.fromkeys((base / DEFAULT_DATA_DIR, DEFAULT_DATA_DIR)):
            saved = saved_admin_key(data_dir)
            if saved:
                output.note(
                    f"using the admin key dev kept for {data_dir} (in {key_path(data_dir)})"
                )
                return saved
    raise UsageError(
        f"no API key: set {KEY_ENV} (export {KEY_ENV}=your_api_key) or pass --key; "
        "publishing needs a key with the plugins:admin permission"
    )


# ==================== what ====================


def find_package(path: Path, *, rebuild: bool, output: Output) -> PackageToSend:
    """The package to upload: ``path`` itself, or the plugin's ``dist/`` one (built if needed)."""
    from ..errors import ManifestError
    from ..packaging import (
        CHECKSUM_SUFFIX,
        PACKAGE_SUFFIX,
        PackageError,
        package_stem,
        read_checksum_file,
        sha256_of,
    )

    if path.is_file():
        if not path.name.endswith(PACKAGE_SUFFIX):
            raise UsageError(f"{path} is not a {PACKAGE_SUFFIX} package or a plugin folder")
        checksum_file = path.with_name(path.name + CHECKSUM_SUFFIX)
        try:
            digest = (
                read_checksum_file(checksum_file, path.name)
                if checksum_file.is_file()
                else sha256_of(path)
            )
        except PackageError as exc:
            raise PublishFailed(str(exc)) from None
        return PackageToSend(path, digest, None, None)
    if not path.is_dir():
        raise UsageError(f"{path} does not exist")
    from ..manifest import load_manifest

    try:
        manifest = load_manifest(path)
    except ManifestError as exc:
        raise PublishFailed(f"{exc}\nfix plugin.yaml, then publish again") from None
    name = package_stem(manifest.id, manifest.version) + PACKAGE_SUFFIX
    package = path / "dist" / name
    checksum_file = package.with_name(name + CHECKSUM_SUFFIX)
    reason = _rebuild_reason(path, package, checksum_file, rebuild)
    if reason:
        output.note(f"building {name}: {reason}")
        return _build(path, output)
    try:
        digest = read_checksum_file(checksum_file, name)
    except PackageError as exc:
        raise PublishFailed(str(exc)) from None
    if sha256_of(package) != digest:
        raise PublishFailed(
            f"{package} does not match {checksum_file.name}: it was changed after the build; "
            "run `ops-center-plugin build` again (or publish --rebuild)"
        )
    return PackageToSend(package, digest, manifest.id, manifest.version)


def _rebuild_reason(folder: Path, package: Path, checksum_file: Path, rebuild: bool) -> str | None:
    from ..errors import OpsCenterError
    from ..packaging import collect_files

    if rebuild:
        return "--rebuild"
    if not package.is_file() or not checksum_file.is_file():
        return f"dist/ has no {package.name}"
    built_at = package.stat().st_mtime
    try:
        files = collect_files(folder, exclude=[package.parent])
    except OpsCenterError:
        return "the plugin's files changed since the build"
    changed = {item.path: item.source.stat().st_mtime for item in files}
    newest = max(changed, key=changed.__getitem__, default=None)
    if newest is not None and changed[newest] > built_at:
        return f"{newest} changed after {package.name} was built"
    return None


def _build(folder: Path, output: Output) -> PackageToSend:
    from .build import build_or_report

    building = Output(json_mode=output.json_mode, out=output.err, err=output.err)
    built = build_or_report(folder, None, building)
    if built is None:
        raise PublishFailed("")
    from ..manifest import load_manifest

    manifest = load_manifest(folder)
    output.note(f"built {built.path} (sha256 {built.sha256})")
    return PackageToSend(built.path, built.sha256, manifest.id, manifest.version)


# ==================== sending ====================


def upload(
    url: str, key: str, package: PackageToSend, *, timeout: float, output: Output
) -> dict[str, Any]:
    """POST the package to the marketplace; the answer's JSON, or :class:`PublishFailed`."""
    import httpx

    from ..api.client import api_base_url

    endpoint = api_base_url(url) + UPLOAD_ENDPOINT
    size = package.path.stat().st_size
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/gzip",
        "Content-Length": str(size),
        CHECKSUM_HEADER: package.sha256,
        "Accept": "application/json",
    }
    show_progress = not output.json_mode and output.err.isatty()
    try:
        with httpx.Client(timeout=timeout) as client:
            if show_progress:
                response = _upload_with_progress(client, endpoint, headers, package.path, size)
            else:
                response = client.post(endpoint, headers=headers, content=_chunks(package.path))
    except httpx.ConnectError as exc:
        raise PublishFailed(
            f"cannot reach {url}: {exc}; is the Ops-Center running, and is the URL right?"
        ) from None
    except httpx.TimeoutException:
        raise PublishFailed(f"{url} did not answer within {timeout:g} s (--timeout)") from None
    except httpx.TransportError as exc:
        raise PublishFailed(f"uploading to {url} failed: {exc}") from None
    return _answer(response, url, package)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _upload_with_progress(
    client: httpx.Client, endpoint: str, headers: dict[str, str], path: Path, size: int
) -> httpx.Response:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task(f"uploading {path.name}", total=size)

        def counted() -> Iterator[bytes]:
            for chunk in _chunks(path):
                yield chunk
                progress.advance(task, len(chunk))

        return client.post(endpoint, headers=headers, content=counted())


def _answer(response: httpx.Response, url: str, package: PackageToSend) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.status_code == 201 and isinstance(body, dict):
        return body
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    message = message or response.text.strip()[:300] or response.reason_phrase
    what = f"{package.plugin_id} {package.version}" if package.plugin_id else package.path.name
    status = response.status_code
    if status == 409:
        raise PublishFailed(
            f"{what} is already published at {url} (409); a published version is never "
            "replaced\n  raise `version` in plugin.yaml, then build and publish again"
        )
    if status == 401:
        raise PublishFailed(f"{url} refused the API key (401): {message}; check --key/{KEY_ENV}")
    if status == 403:
        raise PublishFailed(
            f"the API key may not publish (403): {message}; publishing needs plugins:admin"
        )
    if status == 404:
        raise PublishFailed(
            f"{url} has no marketplace endpoint ({response.request.url.path} answered 404): "
            "is it an Ops-Center?"
        )
    details = error.get("details") if isinstance(error, dict) else None
    lines = [f"{url} refused {what} ({status}): {message}"]
    for detail in details or []:
        if isinstance(detail, dict) and detail.get("message"):
            where = f"{detail['field']}: " if detail.get("field") else ""
            fix = f" (fix: {detail['fix']})" if detail.get("fix") else ""
            lines.append(f"  - {where}{detail['message']}{fix}")
    raise PublishFailed("\n".join(lines))


def report(output: Output, url: str, package: PackageToSend, answer: dict[str, Any]) -> None:
    """What the marketplace now lists, for people or as JSON."""
    from ..api.client import api_base_url

    listing = answer.get("plugin", {})
    published = answer.get("package", {})
    listing_url = f"{api_base_url(url)}{UPLOAD_ENDPOINT}/{listing.get('id')}"
    if output.json_mode:
        output.json({"published": True, "url": listing_url, **answer})
        return
    output.success(
        f"published {published.get('plugin_id')} {published.get('version')} to {url} "
        f"({human_size(published.get('size', 0))}, sha256 {published.get('sha256')})"
    )
    description = listing.get("description")
    output.line(f"   {listing.get('name')}" + (f": {description}" if description else ""))
    output.line(f"   versions: {', '.join(listing.get('versions', []))}")
    output.line(f"   listing:  {listing_url}")
