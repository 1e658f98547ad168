"""Hooks: action, filter and lifecycle handlers, and calling them.

* :mod:`.handler` - a registered handler; its signature is analysed once, here.
* :mod:`.registry` - :class:`HookRegistry`, one plugin's handlers.
* :mod:`.dispatch` - calling a chain of handlers: isolation, timeouts, filters.
* :mod:`.report` - :class:`DispatchReport`, what a dispatch did.
"""

from __future__ import annotations

from .handler import HandlerKind, RegisteredHandler
from .registry import LIFECYCLE_PHASES, HookRegistry
from .report import DispatchError, DispatchReport, HandlerFailure, HandlerStats

__all__ = [
    "LIFECYCLE_PHASES",
    "DispatchError",
    "DispatchReport",
    "HandlerFailure",
    "HandlerKind",
    "HandlerStats",
    "HookRegistry",
    "RegisteredHandler",
]
