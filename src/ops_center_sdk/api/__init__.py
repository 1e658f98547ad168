"""The Ops-Center API client (``plugin.api``) and its errors.

>>> from ops_center_sdk.api import APIClient, NotFoundError
"""

from __future__ import annotations

from .client import APIClient
from .errors import (
    APIConfigurationError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ValidationError,
)
from .resources import Alerts, Devices, Organizations, Resource, Users, Webhooks
from .retry import RetryPolicy

__all__ = [
    "APIClient",
    "APIConfigurationError",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Alerts",
    "AuthenticationError",
    "ConflictError",
    "Devices",
    "NotFoundError",
    "Organizations",
    "PermissionDeniedError",
    "RateLimitedError",
    "Resource",
    "RetryPolicy",
    "ServerError",
    "Users",
    "ValidationError",
    "Webhooks",
]
