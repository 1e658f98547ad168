"""``ops-center-plugin emit``: fire an event into a running dev host.

    ops-center-plugin emit device.metrics_updated \\
        --data '{"device_id": "web-1", "metrics": {"cpu_usage": 97}}'

Posts ``{"name": EVENT, "payload": DATA}`` to ``/api/v1/events`` with the
admin key. Exit code 0 when the host accepted the event, 1 when it refused it
or cannot be reached, 2 for bad arguments (``--data`` that is not a JSON
object, no key to send, plain ``http://`` to another machine: the admin key
never crosses a network in clear text, and the key ``dev`` saved is only
ever sent to this machine).

The host delivers events in the background. With ``--wait`` the command
returns only once every subscribed plugin handled the event (it polls
``GET /api/v1/events/{id}/deliveries``): 0 when each did without an error,
1 when one failed (each failing plugin and handler is printed with its
error), 3 when some were still not done after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from .admin_key import DEFAULT_DATA_DIR, KEY_ENV, URL_ENV, key_path, saved_admin_key
from .output import plural
from .publish import is_loopback

DEFAULT_URL = "http://127.0.0.1:8000"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3


def run(args: argparse.Namespace) -> int:
    """Send the event; print what the host said."""
    payload = _payload(args.data)
    if payload is None:
        return EXIT_USAGE
    url = (args.url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    refusal = _refuse_url(url)
    if refusal:
        _error(refusal)
        return EXIT_USAGE
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
        return EXIT_USAGE
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=_api_root(url), headers=headers, timeout=10.0) as http:
        try:
            response = http.post("/events", json={"name": args.event, "payload": payload})
            answer = _answer(response, url, f"refused {args.event}")
            if answer is None:
                return EXIT_FAILED
            event_id = answer.get("id")
            print(f"emitted {answer.get('name', args.event)} (event {event_id}) to {url}")
            if not getattr(args, "wait", False):
                return EXIT_OK
            return _wait(http, url, args.event, str(event_id), args.timeout)
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            _error(
                f"cannot reach Ops-Center at {url} ({reason}); is 'ops-center-plugin dev' "
                "running there? (--url or OPS_CENTER_API_URL)"
            )
            return EXIT_FAILED


def _answer(response: Any, url: str, refused: str) -> dict[str, Any] | None:
    """The JSON object the host answered, or None (the error printed)."""
    if response.status_code >= 400:
        _error(f"{url} {refused}: {_describe(response)}")
        return None
    try:
        answer = response.json()
    except ValueError:
        _error(f"{url} answered HTTP {response.status_code} without JSON: is it an Ops-Center?")
        return None
    return answer if isinstance(answer, dict) else {}


def _wait(http: Any, url: str, event: str, event_id: str, timeout: float) -> int:
    """Poll the event's deliveries until all are over or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        response = http.get(f"/events/{quote(event_id, safe='')}/deliveries")
        state = _answer(response, url, "cannot tell when the event is handled")
        if state is None:
            return EXIT_FAILED
        deliveries = [d for d in state.get("deliveries") or [] if isinstance(d, dict)]
        if state.get("done"):
            return _settled(event, deliveries)
        left = deadline - time.monotonic()
        if left <= 0:
            waiting = [d for d in deliveries if d.get("status") in ("pending", "queued")]
            names = ", ".join(f"{d.get('plugin_id')} ({d.get('status')})" for d in waiting)
            _error(
                f"not every plugin had handled {event} (event {event_id}) within {timeout:g} s; "
                f"still waiting: {names or 'nothing'}. The host goes on delivering it; "
                "--timeout waits longer"
            )
            return EXIT_TIMEOUT
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.5)


def _settled(event: str, deliveries: list[dict[str, Any]]) -> int:
    if not deliveries:
        print(f"no enabled plugin subscribes to {event}: nothing to wait for")
        return EXIT_OK
    failed = [d for d in deliveries if d.get("status") != "handled"]
    for delivery in failed:
        plugin = delivery.get("plugin_id")
        for failure in delivery.get("failures") or []:
            _error(f"{plugin}: {failure.get('handler')} failed on {event}: {failure.get('error')}")
        if delivery.get("error"):
            _error(f"{plugin}: {event} {delivery.get('status')}: {delivery.get('error')}")
    handled = [d for d in deliveries if d.get("status") == "handled"]
    if handled:
        shown = ", ".join(
            f"{d.get('plugin_id')} ({plural(int(d.get('handlers_run') or 0), 'handler')})"
            for d in handled
        )
        print(f"handled by {shown}")
    return EXIT_FAILED if failed else EXIT_OK


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
