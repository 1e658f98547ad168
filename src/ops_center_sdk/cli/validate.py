"""``ops-center-plugin validate [PATH]``: check a plugin without running its code."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .output import Output, plural

if TYPE_CHECKING:
    from ..validation import ValidationReport

EXIT_OK, EXIT_INVALID = 0, 1


def run(args: argparse.Namespace) -> int:
    """Print the findings for the plugin in ``args.path``; 0 when valid, 1 when not."""
    from ..validation import validate_plugin

    output = Output(json_mode=args.json)
    report = validate_plugin(args.path)
    if output.json_mode:
        output.json(report.to_dict())
        return EXIT_OK if report.valid else EXIT_INVALID
    output.findings(report.findings)
    if report.public_routes:
        output.line(f"public routes: {', '.join(report.public_routes)} (served without a key)")
    show_summary(output, report)
    return EXIT_OK if report.valid else EXIT_INVALID


def show_summary(output: Output, report: ValidationReport) -> None:
    """The last line of ``validate``: valid or not, with the counts."""
    name = f"{report.plugin_id} {report.version}" if report.plugin_id else str(report.folder)
    warnings = plural(len(report.warnings), "warning")
    if report.valid:
        output.success(f"{name} is valid ({warnings})")
        return
    errors = plural(len(report.errors), "error")
    label = output.style("invalid", "bold", "red")
    output.line(f"{label} {name}: {errors}, {warnings}")
