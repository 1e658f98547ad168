"""Errors the API client raises, one class per kind of failure.

Every error answered by Ops-Center is an :class:`APIError` carrying the HTTP
``status``, the error ``code`` and ``message`` from the response body, the
``details`` (bad fields...) and the call that failed (``method``,
``endpoint``). Catch the subclass you can handle::

    try:
        device = await plugin.api.devices.get(device_id)
    except NotFoundError:
        device = None
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import OpsCenterError


class APIError(OpsCenterError):
    """A call to the Ops-Center API failed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        method: str | None = None,
        endpoint: str | None = None,
        details: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.method = method
        self.endpoint = endpoint
        self.details = [dict(detail) for detail in details]
        super().__init__(self._describe())

    def _describe(self) -> str:
        call = f"{self.method} {self.endpoint}: " if self.method and self.endpoint else ""
        answer = " ".join(str(part) for part in (self.status, self.code) if part is not None)
        answer = f"{answer}: " if answer else ""
        return f"{call}{answer}{self.message}"


class APIConfigurationError(APIError):
    """The client cannot make calls: no Ops-Center URL was given or set in the environment."""


class APIConnectionError(APIError):
    """Ops-Center could not be reached (refused, reset, DNS), after any retries."""


class APITimeoutError(APIConnectionError):
    """Ops-Center did not answer within the client's ``timeout``."""


class ValidationError(APIError):
    """400 or 422: the request was malformed; ``details`` name each bad field."""


class AuthenticationError(APIError):
    """401: no API key, or one Ops-Center does not know (revoked, mistyped)."""


class PermissionDeniedError(APIError):
    """403, or refused before sending: the key lacks ``permission`` for ``call``."""

    def __init__(
        self, message: str, *, permission: str | None = None, call: str | None = None, **kw: Any
    ) -> None:
        self.permission = permission
        self.call = call
        super().__init__(message, **kw)


class NotFoundError(APIError):
    """404: no record with that id (or no such endpoint)."""


class ConflictError(APIError):
    """409: the id is taken, or the record is in a state that forbids the change."""


class RateLimitedError(APIError):
    """429, after any retries: ``retry_after`` says how many seconds to wait, when known."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ServerError(APIError):
    """5xx, after any retries: Ops-Center failed to answer."""


_BY_STATUS: Mapping[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
}


def error_class(status: int) -> type[APIError]:
    """The error class for an HTTP status (:class:`APIError` when none fits better)."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)
