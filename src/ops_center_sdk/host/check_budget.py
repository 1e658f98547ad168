"""Checks of untrusted input (manifests, packages) run off the event loop, within a time budget.

Reading a ``plugin.yaml``, validating its ``config_schema`` and checking a
package are CPU work on files someone else wrote. Run on the event loop,
one slow check would freeze every other request of the host; run without a
limit, it could hold a request open for as long as its author likes. So the
REST handlers that install or publish a plugin run these checks in a worker
thread and give up after :data:`DEFAULT_CHECK_BUDGET_SECONDS` (the app's
``state.check_budget`` if set), answering 422 ``check_too_slow``.

A thread cannot be stopped from outside: a check that ran over its budget
finishes in the background and its result is dropped. Checks that hold the
GIL without a break (one ``re`` match) delay other requests until they end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

from .errors import HostError

T = TypeVar("T")

#: How long the checks of one install or upload may take, in seconds.
DEFAULT_CHECK_BUDGET_SECONDS = 10.0


class CheckTooSlow(HostError):
    """A check of a manifest or package ran over its time budget (422 ``check_too_slow``)."""

    status, code = 422, "check_too_slow"


def check_budget_of(state: Any) -> float:
    """The budget an app's ``state`` sets (``check_budget``), or the default."""
    budget = getattr(state, "check_budget", None)
    return float(budget) if budget is not None else DEFAULT_CHECK_BUDGET_SECONDS


async def run_check(check: Callable[..., T], *args: Any, budget: float, what: str) -> T:
    """``check(*args)`` in a worker thread; :class:`CheckTooSlow` once ``budget`` seconds pass.

    ``what`` names the check in the error (``"checking plugin.yaml of /srv/p"``).
    """
    try:
        return await asyncio.wait_for(asyncio.to_thread(check, *args), budget)
    except TimeoutError:
        raise CheckTooSlow(
            f"{what} took longer than the budget of {budget:g} s, so it was refused; "
            "simplify the plugin (its config_schema, its files) and try again",
            details=[{"field": "budget", "message": f"{budget:g} s", "type": "time_budget"}],
        ) from None


def check_plugin_folder(path: str | Path) -> None:
    """Read and check ``plugin.yaml`` and ``config.yaml`` of a folder about to be installed.

    A path that names no folder, and a broken manifest, raise the same 422 the
    install would; anything else (no plugin.yaml, a config the host's own
    values may still fix) is left for the install to report. Meant for
    :func:`run_check`.
    """
    from ..config import Config
    from ..errors import ConfigError, ManifestError
    from ..manifest import MANIFEST_FILE, load_manifest
    from .plugin_errors import load_problem
    from .plugin_folder import plugin_folder

    plugin_folder(path)  # refuses a path naming no folder
    folder = Path(path).expanduser()
    if folder.name == MANIFEST_FILE:
        folder = folder.parent
    if not (folder / MANIFEST_FILE).is_file():
        return
    try:
        manifest = load_manifest(folder)
    except ManifestError as exc:
        raise load_problem(exc, folder) from None
    with suppress(ConfigError):
        Config.from_manifest(manifest, folder)
