"""The REST resources of the local Ops-Center, one module each, under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from . import alerts, devices, organizations, users, webhooks
from .strict_json import StrictJSONRoute

API_PREFIX = "/api/v1"


def api_router() -> APIRouter:
    """Every resource router, mounted under ``/api/v1``."""
    router = APIRouter(prefix=API_PREFIX, route_class=StrictJSONRoute)
    for module in (devices, users, organizations, alerts, webhooks):
        router.include_router(module.router)
    return router
