"""The one JSON shape of every error the host answers.

Every 4xx and 5xx response has the body::

    {"error": {"code": "not_found", "message": "device 'x' not found", "details": []}}

``code`` is a stable machine word, ``message`` a sentence for people and
``details`` a list of objects (one per bad field, with ``field`` naming where,
e.g. ``body.name`` or ``query.page``). FastAPI's own errors (validation,
unknown route, wrong method, unparsable JSON) and unexpected exceptions are
turned into the same shape by :func:`install_error_handlers` and
:class:`CatchAllErrors`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("ops_center_sdk.host")

#: The ``code`` used for a status when nothing more precise is known.
STATUS_CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class HostError(Exception):
    """An error a route raises on purpose; answered as the JSON error shape."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = [dict(detail) for detail in details]
        self.headers = dict(headers) if headers else None


class BadRequest(HostError):
    status, code = 400, "bad_request"


class Unauthorized(HostError):
    status, code = 401, "unauthorized"


class PermissionDenied(HostError):
    status, code = 403, "permission_denied"


class NotFound(HostError):
    status, code = 404, "not_found"


class Conflict(HostError):
    status, code = 409, "conflict"


class InvalidRequest(HostError):
    status, code = 422, "validation_error"


def error_body(
    code: str, message: str, details: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"error": {"code": code, "message": message, "details": [dict(d) for d in details]}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A response in the one error shape."""
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def field_path(loc: Sequence[int | str]) -> str:
    """``("body", "tags", 0)`` -> ``"body.tags[0]"``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI error entries as ``{"field", "message", "type"}`` details."""
    details: list[dict[str, Any]] = []
    for error in errors:
        details.append(
            {
                "field": field_path(error.get("loc", ())),
                "message": str(error.get("msg", "invalid value")).removeprefix("Value error, "),
                "type": str(error.get("type", "value_error")),
            }
        )
    return details


def _summary(details: Sequence[Mapping[str, Any]]) -> str:
    shown = [f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in details[:3]]
    more = f" (and {len(details) - 3} more)" if len(details) > 3 else ""
    return "; ".join(shown) + more


async def _host_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HostError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    json_errors = [e for e in errors if e.get("type") == "json_invalid"]
    if json_errors:
        error = json_errors[0]
        reason = (error.get("ctx") or {}).get("error", "invalid JSON")
        position = error.get("loc", ("body", 0))[-1]
        return error_response(
            400,
            "invalid_json",
            f"the request body is not valid JSON: {reason} at character {position}",
            [{"field": "body", "message": str(reason), "type": "json_invalid"}],
        )
    details = validation_details(errors)
    content_type = request.headers.get("content-type", "")
    if any(d["field"] == "body" for d in details) and "json" not in content_type:
        details.append(
            {
                "field": "body",
                "message": "send the body as JSON with 'Content-Type: application/json'",
                "type": "content_type",
            }
        )
    return error_response(422, "validation_error", f"invalid request: {_summary(details)}", details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = STATUS_CODES.get(status, "error")
    if status == 404 and exc.detail in (None, "Not Found"):
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    elif isinstance(exc.detail, str) and exc.detail:
        message = exc.detail
    else:
        message = _phrase(status)
    return error_response(status, code, message, headers=exc.headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` in the one JSON shape."""
    app.add_exception_handler(HostError, _host_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(CatchAllErrors)


class CatchAllErrors:
    """ASGI middleware: an unexpected exception becomes a logged JSON 500.

    Starlette's own last-resort handler answers 500 but then re-raises, which
    would surface inside an in-memory client (``httpx.ASGITransport``) as an
    exception instead of a response; this one answers and stops there.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            log.exception("unhandled error answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(
                500, "internal_error", "the server failed to answer; see the host's log"
            )
            await response(scope, receive, send)
