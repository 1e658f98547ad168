"""``ops-center-plugin build [PATH]``: validate, then write the package and its checksum."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .output import Output, human_size, plural

if TYPE_CHECKING:
    from ..packaging import BuiltPackage

EXIT_OK, EXIT_FAILED = 0, 1


def run(args: argparse.Namespace) -> int:
    """Build ``dist/<id>-<version>.tar.gz`` (and ``.sha256``) from the plugin in ``args.path``."""
    output = Output(json_mode=args.json)
    built = build_or_report(Path(args.path), args.output, output)
    if built is None:
        return EXIT_FAILED
    if output.json_mode:
        output.json({"built": True, **describe(built)})
        return EXIT_OK
    show_package(output, built)
    return EXIT_OK


def over_limits(built: BuiltPackage) -> list[str]:
    """Why a marketplace with the default :class:`PackageLimits` would refuse ``built``.

    The build itself goes on (a host may allow more); the author learns now,
    not at ``publish``.
    """
    from ..packaging import PackageLimits

    limits = PackageLimits()
    folders = {
        "/".join(item.path.split("/")[:depth])
        for item in built.files
        for depth in range(1, item.path.count("/") + 1)
    }
    entries = 1 + len(folders) + len(built.files)
    reasons = []
    if built.size > limits.max_compressed_bytes:
        reasons.append(
            f"the package is {human_size(built.size)}, over the marketplace's limit of "
            f"{human_size(limits.max_compressed_bytes)}"
        )
    if built.unpacked_size > limits.max_unpacked_bytes:
        reasons.append(
            f"it unpacks to {human_size(built.unpacked_size)}, over the marketplace's limit of "
            f"{human_size(limits.max_unpacked_bytes)}"
        )
    if entries > limits.max_entries:
        reasons.append(
            f"it holds {entries} entries, over the marketplace's limit of {limits.max_entries}"
        )
    return reasons


def build_or_report(folder: Path, output_dir: str | None, output: Output) -> BuiltPackage | None:
    """Validate and build; print what stops the build and return ``None`` then.

    Shared with ``publish``, which builds when ``dist/`` lacks the package.
    """
    from ..errors import OpsCenterError
    from ..packaging import build_package
    from ..validation import validate_plugin
    from .validate import show_summary

    report = validate_plugin(folder)
    if not report.valid:
        if output.json_mode:
            output.json({"built": False, "validation": report.to_dict()})
        else:
            output.findings(report.findings)
            show_summary(output, report)
            output.error("the plugin is not valid, so nothing was built")
        return None
    if report.warnings and not output.json_mode:
        output.findings(report.warnings)
    try:
        return build_package(folder, output_dir)
    except OpsCenterError as exc:
        if output.json_mode:
            output.json({"built": False, "error": str(exc)})
        else:
            output.error(f"build failed: {exc}", hint="nothing was written to the output folder")
        return None
    except OSError as exc:
        output.error(f"build failed: {exc}", hint="nothing was written to the output folder")
        return None


def describe(built: BuiltPackage) -> dict[str, Any]:
    """The package as JSON-ready data."""
    return {
        "package": str(built.path),
        "checksum_file": str(built.checksum_path),
        "sha256": built.sha256,
        "size": built.size,
        "unpacked_size": built.unpacked_size,
        "files": [{"path": item.path, "size": item.size} for item in built.files],
        "warnings": over_limits(built),
    }


def show_package(output: Output, built: BuiltPackage) -> None:
    """The file list, the package's size and its checksum, for people."""
    width = max((len(item.path) for item in built.files), default=0)
    for item in built.files:
        output.line(f"  {item.path:<{width}}  {human_size(item.size):>10}")
    shown = os.path.relpath(built.path) if _is_below_cwd(built.path) else str(built.path)
    files = plural(len(built.files), "file")
    output.success(
        f"built {shown}: {files}, {human_size(built.unpacked_size)} unpacked, "
        f"{human_size(built.size)} packed"
    )
    output.line(f"   sha256 {built.sha256}  ({built.checksum_path.name})")
    reasons = over_limits(built)
    if reasons:
        label = output.style("warning", "bold", "yellow")
        for reason in reasons:
            output.line(f"{label} {reason}: a marketplace will refuse it")
        output.line("        fix: list large files that the plugin does not need in .opsignore")


def _is_below_cwd(path: Path) -> bool:
    return path.resolve().is_relative_to(Path.cwd().resolve())
