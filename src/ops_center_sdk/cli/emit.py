"""``ops-center-plugin emit``: fire an event into a running dev host.

    ops-center-plugin emit device.metrics_updated \\
        --data '{"device_id": "web-1", "metrics": {"cpu_usage": 97}}'

Posts ``{"name": EVENT, "payload": DATA}`` to ``/api/v1/events`` with the
admin key. Exit code 0 when the host accepted the event, 1 when it refused it
or cannot be reached, 2 for bad arguments (``--data`` that is not a JSON
object, no key to send, plain ``http://`` to another machine: the admin key
never crosses a network in clear text, and the key ``dev`` saved is only
ever sent to this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .admin_key import DEFAULT_DATA_DIR, KEY_ENV, URL_ENV, key_path, saved_admin_key
from .publish import is_loopback

DEFAULT_URL = "http://127.0.0.1:8000"


def run(args: argparse.Namespace) -> int:
    """Send the event; print what the host said."""
    payload = _payload(args.data)
    if payload is None:
        return 2
    url = (args.url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    refusal = _refuse_url(url)
    if refusal:
        _error(refusal)
        return 2
    data_dir = Path(args.data_dir or DEFAULT_DATA_DIR)
    key = args.key or os.environ.get(KEY_ENV)
    if not key and is_loopback(urlsplit(url).hostname or ""):
        # The key dev saved is for the local host only; never send it elsewhere.
        key = saved_admin_key(data_dir)
    if not key:
        _error(
            f"no admin key: pass --key, set {KEY_ENV}, or run this where "
            f"'ops-center-plugin dev' saved one ({key_path(data_dir)})"
        )
        return 2
    import httpx

    endpoint = _api_root(url) + "/events"
    try:
        response = httpx.post(
            endpoint,
            json={"name": args.event, "payload": payload},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10.0,
        )
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        _error(
            f"cannot reach Ops-Center at {url} ({reason}); is 'ops-center-plugin dev' running "
            "there? (--url or OPS_CENTER_API_URL)"
        )
        return 1
    if response.status_code >= 400:
        _error(f"{url} refused {args.event}: {_describe(response)}")
        return 1
    try:
        answer = response.json()
    except ValueError:
        _error(f"{url} answered HTTP {response.status_code} without JSON: is it an Ops-Center?")
        return 1
    if not isinstance(answer, dict):
        answer = {}
    print(f"emitted {answer.get('name', args.event)} (event {answer.get('id')}) to {url}")
    return 0


def _refuse_url(url: str) -> str | None:
    """Why the admin key must not be sent to ``url``, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--url: {url!r} is not an http(s) URL such as http://127.0.0.1:8000"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return (
            f"refusing to send the admin key over plain http to {parts.hostname}: use https:// "
            "(plain http is allowed only to this machine: localhost, 127.0.0.1, ::1)"
        )
    return None


def _payload(text: str) -> dict[str, Any] | None:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        _error(
            f"--data is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}: {text!r}"
        )
        return None
    if not isinstance(payload, dict):
        _error(f"--data must be a JSON object of payload keywords, not {type(payload).__name__}")
        return None
    return payload


def _api_root(url: str) -> str:
    return url if url.endswith("/api/v1") else url + "/api/v1"


def _describe(response: Any) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:300]}"
    message = str(error.get("message"))
    lines = [f"{message} (HTTP {response.status_code} {error.get('code')})"]
    lines += [
        f"  - {d.get('field')}: {d.get('message')}"
        for d in error.get("details") or []
        if isinstance(d, dict) and d.get("field") and str(d.get("message")) not in message
    ]
    return "\n".join(lines)


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
