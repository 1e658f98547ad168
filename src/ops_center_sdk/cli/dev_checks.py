"""The static checks ``dev`` runs on every (re)load: ``validate``'s, printed, never blocking.

``dev`` runs what ``ops-center-plugin validate`` runs, off the event loop,
each time it brings the plugin's code in. The findings are printed under the
load's own line and kept on the plugin (``validation`` in
``GET /api/v1/plugins/{id}`` and its health). They never stop the plugin: code
that imports runs even when ``validate`` would refuse it, so an author sees
both the running plugin and what still needs fixing before ``build``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .output import plural

if TYPE_CHECKING:
    from ..validation import ValidationReport


async def run_static_checks(folder: Path) -> ValidationReport | None:
    """``validate``'s report on ``folder`` (None for a folder with no plugin.yaml).

    A folder with only a main.py runs in ``dev`` on the manifest its code
    declares; ``validate`` needs the plugin.yaml that ``init`` writes, so
    there is nothing to check it against.
    """
    if not (folder / "plugin.yaml").is_file():
        return None
    from ..validation import validate_plugin

    return await asyncio.to_thread(validate_plugin, folder)


def summary(report: ValidationReport) -> dict[str, Any]:
    """What the host shows of the checks: counts, findings and when they ran."""
    return {
        "valid": report.valid,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "findings": [finding.to_dict() for finding in report.findings],
        "checked_at": datetime.now(UTC).isoformat(),
    }


def report_lines(report: ValidationReport) -> list[str]:
    """The lines ``dev`` prints for the checks; none when ``validate`` finds nothing."""
    if not report.findings:
        return []
    counts = f"{plural(len(report.errors), 'error')}, {plural(len(report.warnings), 'warning')}"
    verdict = (
        "it runs here, but `ops-center-plugin validate` refuses it until they are fixed"
        if report.errors
        else "warnings do not stop the plugin"
    )
    lines = [f"  validate: {counts} ({verdict}):"]
    for finding in report.findings:
        lines.append(f"    {finding}")
    return lines
