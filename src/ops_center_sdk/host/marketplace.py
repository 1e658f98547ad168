"""The local Ops-Center's marketplace: published plugin packages, by id and version.

Packages are files under ``<data_dir>/marketplace/packages/<id>/``; what the
marketplace knows of them is in the host store, as records of kind
``marketplace_plugins`` (one per plugin: its listing) and
``marketplace_packages`` (one per version, id ``<plugin id>@<version>``).

A package is accepted only when its SHA-256 is the one the publisher sent and
:func:`~ops_center_sdk.packaging.check_package` and the static validator
pass it (safe paths, no links, within the size limits, one top folder
``<id>-<version>/`` whose ``plugin.yaml`` says that id and version, a valid
plugin). A version once published is never replaced. Nothing of a refused
upload stays: it is checked in ``marketplace/incoming/`` and moved into
place only once accepted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import OpsCenterError
from ..packaging import (
    CHECKSUM_SUFFIX,
    PACKAGE_SUFFIX,
    PackageContents,
    PackageError,
    PackageLimits,
    check_sha256_text,
    checksum_line,
    extract_package,
    package_stem,
    sha256_of,
)
from .check_budget import DEFAULT_CHECK_BUDGET_SECONDS, run_check
from .errors import HostError
from .store import HostStore, Record, RecordExists

log = logging.getLogger("ops_center_sdk.host.marketplace")

LISTING_KIND = "marketplace_plugins"
PACKAGE_KIND = "marketplace_packages"
LATEST = "latest"
_CHUNK = 64 * 1024
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


class MarketplaceError(HostError, OpsCenterError):
    """A marketplace request that cannot be done; answered with ``status`` and ``code``."""


class PackageRefused(MarketplaceError):
    """The uploaded package is not acceptable (bad archive, bad manifest, invalid plugin)."""

    status, code = 422, "package_refused"


class ChecksumRefused(MarketplaceError):
    """The upload's SHA-256 is not the one the publisher sent."""

    status, code = 422, "checksum_mismatch"


class PackageTooLarge(MarketplaceError):
    status, code = 413, "payload_too_large"


class VersionExists(MarketplaceError):
    """That version of that plugin is already published; versions are never replaced."""

    status, code = 409, "version_exists"


class NotPublished(MarketplaceError):
    status, code = 404, "not_found"


def semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """Sort key of a SemVer version: a pre-release sorts before its release."""
    match = _SEMVER.match(version)
    if match is None:
        return (-1, -1, -1, -1, ())
    major, minor, patch, pre = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, parts)


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Published:
    """What an accepted upload became: the plugin's listing and the version's record."""

    listing: Record
    package: Record


class Marketplace:
    """Stores, lists and serves plugin packages; unpacks them for the plugin host.

    >>> market = Marketplace(Path("data/marketplace"), HostStore.in_memory())
    >>> published = market.publish_file(Path("dist/my-plugin-1.0.0.tar.gz"), sha256)
    >>> market.package_path("my-plugin", "1.0.0")
    """

    def __init__(
        self, root: Path | None, store: HostStore, *, limits: PackageLimits | None = None
    ) -> None:
        self._root = Path(root).absolute() if root is not None else None
        self.store = store
        self.limits = limits or PackageLimits()
        # Held from "is this version free?" to "recorded", so two uploads of one version
        # cannot both pass; checks run before it, in parallel.
        self._publishing = threading.Lock()

    @classmethod
    def for_host(
        cls, data_dir: Path | None, store: HostStore, *, limits: PackageLimits | None = None
    ) -> Marketplace:
        """The marketplace of a host: ``<data_dir>/marketplace``, or a temporary folder.

        Without a data dir (an in-memory host) the files go to a temporary
        folder, made on first use and removed when the marketplace goes away.
        """
        root = Path(data_dir) / "marketplace" if data_dir is not None else None
        return cls(root, store, limits=limits)

    @property
    def root(self) -> Path:
        """The folder holding the packages (and the uploads being checked)."""
        if self._root is None:
            folder = tempfile.mkdtemp(prefix="ops-center-marketplace-")
            weakref.finalize(self, shutil.rmtree, folder, True)
            self._root = Path(folder)
        return self._root

    # ==================== folders ====================

    @property
    def packages_dir(self) -> Path:
        return self.root / "packages"

    @property
    def incoming_dir(self) -> Path:
        return self.root / "incoming"

    @property
    def unpacked_dir(self) -> Path:
        return self.root / "installed"

    def _incoming_file(self) -> Path:
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.incoming_dir, suffix=PACKAGE_SUFFIX)
        os.close(handle)
        return Path(name)

    # ==================== publishing ====================

    async def publish_stream(
        self,
        chunks: AsyncIterable[bytes],
        sha256: str,
        *,
        publisher: str = "admin",
        budget: float = DEFAULT_CHECK_BUDGET_SECONDS,
    ) -> Published:
        """Receive an upload (the request body), check it, and publish it.

        The body is written to ``incoming/`` and refused as soon as it passes
        the size limit; nothing is left there whatever the outcome. The
        checks run in a worker thread and are refused with
        :class:`~ops_center_sdk.host.check_budget.CheckTooSlow` after
        ``budget`` seconds (nothing is published then).
        """
        expected = _checksum(sha256)
        incoming = self._incoming_file()
        try:
            received = 0
            # Chunks land in the page cache; a thread hop per chunk would cost more.
            with open(incoming, "wb") as out:  # noqa: ASYNC230
                async for chunk in chunks:
                    received += len(chunk)
                    if received > self.limits.max_compressed_bytes:
                        raise PackageTooLarge(
                            f"the package is larger than the limit of "
                            f"{self.limits.max_compressed_bytes} bytes"
                        )
                    out.write(chunk)
            if received == 0:
                raise PackageRefused(
                    "the request body is empty: send the package's bytes "
                    "(Content-Type: application/gzip)"
                )
            contents = await run_check(
                self._verified,
                incoming,
                expected,
                budget=budget,
                what="checking the uploaded package",
            )
            return await asyncio.to_thread(
                self._publish_checked, incoming, expected, contents, publisher
            )
        finally:
            incoming.unlink(missing_ok=True)

    def publish_file(self, path: Path, sha256: str, *, publisher: str = "admin") -> Published:
        """Check the package file ``path`` and publish a copy of it."""
        expected = _checksum(sha256)
        return self._publish_checked(path, expected, self._verified(path, expected), publisher)

    def _verified(self, path: Path, expected: str) -> PackageContents:
        """The package's contents once its checksum, archive and plugin pass every check."""
        actual = sha256_of(path)
        if actual != expected:
            raise ChecksumRefused(
                f"checksum mismatch: the publisher sent {expected}, the received package has "
                f"{actual}; the package was changed or damaged on the way, so it was refused",
                details=[{"field": "sha256", "message": "does not match the body"}],
            )
        return self._check(path, expected)

    def _publish_checked(
        self, path: Path, expected: str, contents: PackageContents, publisher: str
    ) -> Published:
        manifest = contents.manifest
        plugin_id, version = manifest.id, manifest.version
        with self._publishing:
            if self.store.exists(PACKAGE_KIND, _package_id(plugin_id, version)):
                raise _version_exists(plugin_id, version)
            folder = self.packages_dir / plugin_id
            folder.mkdir(parents=True, exist_ok=True)
            name = package_stem(plugin_id, version) + PACKAGE_SUFFIX
            target = folder / name
            handle, staged_name = tempfile.mkstemp(
                dir=folder, prefix=f".{name}.", suffix=".partial"
            )
            os.close(handle)
            staged = Path(staged_name)
            try:
                shutil.copyfile(path, staged)
                os.replace(staged, target)
            finally:
                staged.unlink(missing_ok=True)
            (folder / (name + CHECKSUM_SUFFIX)).write_text(
                checksum_line(expected, name), encoding="utf-8"
            )
            stamp = _now()
            record: Record = {
                "id": _package_id(plugin_id, version),
                "plugin_id": plugin_id,
                "version": version,
                "filename": name,
                "sha256": expected,
                "size": contents.size,
                "unpacked_size": contents.unpacked_size,
                "files": len(contents.files),
                "manifest": manifest.to_dict(),
                "published_by": publisher,
                "published_at": stamp,
            }
            try:
                self.store.insert(PACKAGE_KIND, record)
            except RecordExists:
                # Another upload of the same version won the race: its file is the one kept.
                raise _version_exists(plugin_id, version) from None
            listing = self._update_listing(plugin_id)
        log.info("published %s %s (%s)", plugin_id, version, expected)
        return Published(listing, record)

    def _check(self, path: Path, sha256: str) -> PackageContents:
        """Unpack into ``incoming/`` and validate the plugin statically; remove it after."""
        from ..validation import validate_plugin

        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=self.incoming_dir, suffix=".check"))
        try:
            try:
                contents = extract_package(
                    path, scratch / "plugin", expected_sha256=sha256, limits=self.limits
                )
            except PackageError as exc:
                raise PackageRefused(f"package refused: {exc}") from None
            report = validate_plugin(scratch / "plugin")
            if not report.valid:
                details = [
                    {
                        "field": finding.location or "package",
                        "message": finding.message,
                        "fix": finding.fix,
                        "type": finding.code,
                    }
                    for finding in report.errors
                ]
                raise PackageRefused(
                    f"package refused: {contents.manifest.id} {contents.manifest.version} is "
                    f"not a valid plugin: {report.errors[0]}",
                    details=details,
                )
            return contents
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _update_listing(self, plugin_id: str) -> Record:
        packages = self.versions(plugin_id)
        latest = packages[-1]
        manifest: Mapping[str, Any] = latest["manifest"]
        existing = self.store.get(LISTING_KIND, plugin_id)
        listing: Record = {
            "id": plugin_id,
            "name": manifest.get("name"),
            "description": manifest.get("description", ""),
            "author": manifest.get("author", ""),
            "type": manifest.get("type", "backend"),
            "category": manifest.get("category"),
            "keywords": list(manifest.get("keywords", [])),
            "license": manifest.get("license"),
            "homepage": manifest.get("homepage"),
            "repository": manifest.get("repository"),
            "pricing": manifest.get("pricing"),
            "permissions": manifest.get("permissions"),
            "latest_version": latest["version"],
            "versions": [package["version"] for package in packages],
            "created_at": existing["created_at"] if existing else latest["published_at"],
            "updated_at": latest["published_at"],
        }
        if existing is None:
            try:
                self.store.insert(LISTING_KIND, listing)
            except RecordExists:
                self.store.replace(LISTING_KIND, plugin_id, listing)
        else:
            self.store.replace(LISTING_KIND, plugin_id, listing)
        return listing

    # ==================== reading ====================

    def listings(
        self,
        *,
        q: str | None = None,
        category: str | None = None,
        plugin_type: str | None = None,
    ) -> list[Record]:
        """Every plugin's listing, oldest first, filtered.

        ``q`` matches part of the id, name, description, author or a
        keyword, in any case.
        """
        found = self.store.find(LISTING_KIND).items
        if category is not None:
            found = [item for item in found if item.get("category") == category]
        if plugin_type is not None:
            found = [item for item in found if item.get("type") == plugin_type]
        if q:
            needle = q.casefold()
            found = [item for item in found if needle in _search_text(item)]
        return found

    def listing(self, plugin_id: str) -> Record:
        """The plugin's listing; :class:`NotPublished` when it has none."""
        record = self.store.get(LISTING_KIND, plugin_id)
        if record is None:
            raise NotPublished(f"no plugin {plugin_id!r} is published in this marketplace")
        return record

    def versions(self, plugin_id: str) -> list[Record]:
        """The plugin's published versions, oldest (lowest SemVer) first."""
        found = self.store.find(PACKAGE_KIND, where={"plugin_id": plugin_id}).items
        return sorted(found, key=lambda record: semver_key(record["version"]))

    def package(self, plugin_id: str, version: str) -> Record:
        """One version's record (``version`` may be ``latest``)."""
        if version == LATEST:
            version = self.listing(plugin_id)["latest_version"]
        record = self.store.get(PACKAGE_KIND, _package_id(plugin_id, version))
        if record is None:
            self.listing(plugin_id)
            raise NotPublished(f"{plugin_id} has no published version {version!r}")
        return record

    def package_path(self, plugin_id: str, version: str) -> Path:
        """The stored package file of one version."""
        record = self.package(plugin_id, version)
        return Path(self.packages_dir, record["plugin_id"], record["filename"])

    # ==================== installing ====================

    def unpack(self, plugin_id: str, version: str) -> tuple[Path, Record]:
        """Check the stored package again and unpack it into a fresh folder for the host.

        Each unpack gets its own folder (``installed/<id>-<version>.<n>``), so
        the folder a running plugin uses is never written over.
        """
        record = self.package(plugin_id, version)
        path = self.packages_dir / record["plugin_id"] / record["filename"]
        stem = package_stem(record["plugin_id"], record["version"])
        destination = self.unpacked_dir / f"{stem}.{uuid.uuid4().hex[:8]}"
        try:
            extract_package(path, destination, expected_sha256=record["sha256"], limits=self.limits)
        except FileNotFoundError:
            raise NotPublished(f"the package file of {plugin_id} {version} is missing") from None
        except PackageError as exc:
            raise PackageRefused(f"the stored package cannot be installed: {exc}") from None
        return destination, record

    def remove_unpacked(self, plugin_id: str, *, keep: Path | None = None) -> None:
        """Delete the plugin's unpacked folders, except ``keep`` (the one in use)."""
        if not self.unpacked_dir.is_dir():
            return
        prefix = f"{plugin_id}-"
        for folder in self.unpacked_dir.iterdir():
            if not folder.name.startswith(prefix) or (keep and folder == keep):
                continue
            rest = folder.name[len(prefix) :].rsplit(".", 1)[0]
            if _SEMVER.match(rest):
                shutil.rmtree(folder, ignore_errors=True)


def _package_id(plugin_id: str, version: str) -> str:
    return f"{plugin_id}@{version}"


def _checksum(value: str) -> str:
    try:
        return check_sha256_text(value)
    except ValueError as exc:
        raise MarketplaceError(
            f"{exc}; send the package's SHA-256 in the X-Checksum-Sha256 header",
            details=[{"field": "sha256", "message": str(exc)}],
        ) from None


def _version_exists(plugin_id: str, version: str) -> VersionExists:
    return VersionExists(
        f"{plugin_id} {version} is already published; a published version is never replaced: "
        "raise the version in plugin.yaml and build again",
        details=[{"field": "version", "message": "already published", "type": "conflict"}],
    )


def _search_text(listing: Mapping[str, Any]) -> str:
    parts = [
        listing.get("id"),
        listing.get("name"),
        listing.get("description"),
        listing.get("author"),
        *listing.get("keywords", []),
    ]
    return " ".join(str(part) for part in parts if part).casefold()
