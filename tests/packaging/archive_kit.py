"""Plugin folders and hand-made archives (good and malicious) for the package tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

MAIN = """\
from ops_center_sdk import Plugin

plugin = Plugin(id="{id}", version="{version}")


@plugin.on_install
async def on_install():
    await plugin.storage.set("installed", True)


@plugin.hook("device.created")
async def on_device_created(device_id, device_data):
    await plugin.storage.set(f"device:{{device_id}}", device_data)


@plugin.route("/status", methods=["GET"])
async def get_status():
    return {{"version": "{version}", "devices": len(await plugin.storage.list_keys("device:*"))}}


app = plugin.create_app()
"""

MANIFEST = """\
id: {id}
name: Demo Plugin
version: {version}
description: A plugin for the package tests
author: Tests
category: {category}
keywords: [{keyword}]
permissions: []
hooks:
  - event: device.created
    handler: on_device_created
routes:
  - path: /status
    methods: [GET]
    handler: get_status
"""


def plugin_files(
    plugin_id: str = "demo-plugin",
    version: str = "1.0.0",
    *,
    category: str = "monitoring",
    keyword: str = "demo",
) -> dict[str, str]:
    """The files of a small valid plugin: relative path -> text."""
    values = {"id": plugin_id, "version": version, "category": category, "keyword": keyword}
    return {
        "plugin.yaml": MANIFEST.format(**values),
        "main.py": MAIN.format(**values),
        "README.md": f"# Demo Plugin\n\n{plugin_id} {version}\n",
    }


def write_plugin(folder: Path, plugin_id: str = "demo-plugin", version: str = "1.0.0") -> Path:
    """A valid plugin folder on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in plugin_files(plugin_id, version).items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


@dataclass(frozen=True)
class Member:
    """One entry of a hand-made tar."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644


def members_of(plugin_id: str = "demo-plugin", version: str = "1.0.0") -> list[Member]:
    """A valid plugin's entries under its top folder ``<id>-<version>/``."""
    top = f"{plugin_id}-{version}"
    entries = [Member(top, type=tarfile.DIRTYPE, mode=0o755)]
    for name, text in plugin_files(plugin_id, version).items():
        entries.append(Member(f"{top}/{name}", text.encode()))
    return entries


def tar_gz(path: Path, members: list[Member], *, pax: dict[str, str] | None = None) -> Path:
    """Write ``members`` as a .tar.gz exactly as given (no safety checks)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = member.type
            info.mode = member.mode
            info.linkname = member.linkname
            if pax:
                info.pax_headers = dict(pax)
            if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size = len(member.data)
                tar.addfile(info, io.BytesIO(member.data))
            else:
                tar.addfile(info)
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return path


def sha256_hex(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def malicious_archives(
    plugin_id: str = "demo-plugin", version: str = "1.0.0"
) -> dict[str, list[Member]]:
    """Otherwise valid packages with one bad entry each, by what is wrong."""
    top = f"{plugin_id}-{version}"
    good = members_of(plugin_id, version)
    return {
        "path traversal": [*good, Member(f"{top}/../../escaped.txt", b"owned")],
        "absolute path": [*good, Member("/tmp/ops-center-absolute.txt", b"owned")],
        "escaping symlink": [
            *good,
            Member(f"{top}/passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
        ],
        "inside symlink": [
            *good,
            Member(f"{top}/again.py", type=tarfile.SYMTYPE, linkname="main.py"),
        ],
        "hardlink": [*good, Member(f"{top}/hard", type=tarfile.LNKTYPE, linkname="/etc/passwd")],
        "device file": [*good, Member(f"{top}/zero", type=tarfile.CHRTYPE)],
        "fifo": [*good, Member(f"{top}/pipe", type=tarfile.FIFOTYPE)],
        "two top folders": [*good, Member("other-1.0.0/extra.txt", b"x")],
        "file at the top": [*good, Member("loose.txt", b"x")],
        "duplicate entry": [*good, Member(f"{top}/main.py", b"print('replaced')\n")],
    }
