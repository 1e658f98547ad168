"""What a dispatch did: how many handlers ran and which of them failed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import HookError


@dataclass(frozen=True, slots=True)
class HandlerFailure:
    """One handler that raised, timed out, or (a filter) returned ``None``.

    ``handler`` is the handler's qualified name, ``traceback`` the formatted
    traceback (empty for a filter that returned ``None``).
    """

    handler: str
    exception: Exception
    traceback: str
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class HandlerStats:
    """Call and failure counts of one registered handler (failures include timeouts)."""

    kind: str
    hook: str
    handler: str
    calls: int
    failures: int
    timeouts: int
    priority: int = 10


class DispatchReport:
    """The outcome of one dispatch, filter chain or lifecycle phase.

    Failures were already logged on ``ops_center_sdk.hooks``; the report lets
    the caller decide whether they matter (:meth:`raise_for_errors`).
    Reports without failures are shared between dispatches: treat them as
    read-only.
    """

    __slots__ = ("event", "failures", "handlers_run")

    def __init__(
        self, event: str, handlers_run: int, failures: Sequence[HandlerFailure] = ()
    ) -> None:
        self.event = event
        self.handlers_run = handlers_run
        self.failures: tuple[HandlerFailure, ...] = tuple(failures)

    @property
    def ok(self) -> bool:
        """True when every handler finished without an error."""
        return not self.failures

    def raise_for_errors(self) -> None:
        """Raise if a handler failed.

        One failure raises that handler's own exception (so a test can
        ``pytest.raises(ValueError)``); several raise a :class:`DispatchError`,
        which is both a :class:`~ops_center_sdk.errors.HookError` and an
        ``ExceptionGroup`` of the handlers' exceptions.
        """
        if not self.failures:
            return
        if len(self.failures) == 1:
            raise self.failures[0].exception
        raise DispatchError(self)

    def __repr__(self) -> str:
        names = ", ".join(failure.handler for failure in self.failures)
        failed = f", failed=[{names}]" if names else ""
        return f"<DispatchReport {self.event!r} handlers_run={self.handlers_run}{failed}>"


class DispatchError(ExceptionGroup[Exception], HookError):
    """Several handlers of one event failed; ``exceptions`` holds their errors."""

    report: DispatchReport

    def __new__(cls, report: DispatchReport) -> DispatchError:
        lines = [
            f"{len(report.failures)} of {report.handlers_run} handlers of {report.event!r} failed:",
            *(f"  - {f.handler}: {_describe(f.exception)}" for f in report.failures),
        ]
        self = super().__new__(cls, "\n".join(lines), [f.exception for f in report.failures])
        self.report = report
        return self

    def __init__(self, report: DispatchReport) -> None:
        super().__init__(self.message, self.exceptions)


def _describe(exception: BaseException) -> str:
    text = str(exception)
    return f"{type(exception).__name__}: {text}" if text else type(exception).__name__
