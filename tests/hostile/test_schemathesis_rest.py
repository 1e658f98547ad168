"""Schemathesis against the served host's OpenAPI: no input is answered 5xx.

The host runs as ``dev`` serves it (uvicorn on 127.0.0.1, SQLite in a temp
folder, one plugin installed); every operation of ``/openapi.json`` gets
schema-conforming and schema-breaking cases, sent with the admin key. Every
URL in a body points at a receiver on 127.0.0.1 and an install's ``path``
stays below the temp folder. Every 4xx must be in the host's error shape.

``OPS_CENTER_SCHEMATHESIS_CASES`` sets the cases per operation and mode
(default 4, a few hundred in all) and makes the run random rather than fixed.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis_kit import Receiver, loopback_receiver, rewrite_request

from ops_center_sdk.host.outbox import RetryPolicy
from ops_center_sdk.host.rest.webhooks import EVENT_CATALOG
from ops_center_sdk.host.server import create_server_app
from ops_center_sdk.host.webhook_sender import WebhookSettings
from served_app import served

pytestmark = pytest.mark.slow

KEY = "admin-schemathesis"
INSTALL = ("POST", "/api/v1/plugins")
UPLOAD = ("POST", "/api/v1/marketplace/plugins")
WEBHOOK = ("POST", "/api/v1/webhooks")
CASES = int(os.environ.get("OPS_CENTER_SCHEMATHESIS_CASES", "4"))
RANDOM = "OPS_CENTER_SCHEMATHESIS_CASES" in os.environ
#: The longest one answer may take before the host counts as hung.
ANSWER_SECONDS = 15.0
EVENTS = sorted(EVENT_CATALOG)
FAST_WEBHOOKS = WebhookSettings(
    timeout=2.0, retry=RetryPolicy(max_attempts=2, base=0.02, maximum=0.1, jitter=0.0)
)

PLUGIN_YAML = """\
id: fuzz-target
name: Fuzz Target
version: 1.0.0
permissions: [devices:read]
config_schema:
  type: object
  additionalProperties: false
  properties:
    threshold: {type: number, minimum: 0, maximum: 10, default: 3}
    label: {type: string, pattern: '^[a-z]+$', default: abc}
"""
PLUGIN_MAIN = """\
from ops_center_sdk import Plugin

plugin = Plugin(id="fuzz-target", version="1.0.0")


@plugin.hook("device.created")
async def on_created(device_id, device_data):
    await plugin.storage.set(f"device:{device_id}", device_data)
"""


@dataclass
class Findings:
    """How many cases were sent, and every answer that broke the rules."""

    cases: int = 0
    unsendable: int = 0
    server_errors: list[str] = field(default_factory=list)
    bad_shapes: list[str] = field(default_factory=list)


def describe(request: dict[str, Any], status: int | str, answer: str) -> str:
    body = request.get("json", request.get("data"))
    return (
        f"{request['method']} {request['url']} params={request.get('params')!r} "
        f"body={repr(body)[:300]} -> {status} {answer[:300]}"
    )


def has_error_shape(text: str) -> bool:
    """Whether ``text`` is ``{"error": {"code": str, "message": str, "details": list}}``."""
    try:
        body = json.loads(text)
    except ValueError:
        return False
    if not isinstance(body, dict) or set(body) != {"error"}:
        return False
    error = body["error"]
    return (
        isinstance(error, dict)
        and set(error) == {"code", "message", "details"}
        and isinstance(error["code"], str)
        and isinstance(error["message"], str)
        and bool(error["message"])
        and isinstance(error["details"], list)
    )


class Run:
    """Sends cases to the served host and checks each answer."""

    def __init__(self, base_url: str, receiver: Receiver) -> None:
        self.base_url = base_url
        self.receiver = receiver
        self.findings = Findings()
        self.session = requests.Session()

    def send(self, case: Case, data: st.DataObject) -> None:
        operation = (case.method.upper(), case.path)
        parameters = case.path_parameters or {}
        if "plugin_id" in parameters and data.draw(st.booleans(), label="the installed plugin"):
            parameters["plugin_id"] = "fuzz-target"
        request = case.as_transport_kwargs(
            base_url=self.base_url, headers={"Authorization": f"Bearer {KEY}"}
        )
        rewrite_request(request, self.receiver.url, install=operation == INSTALL)
        body = request.get("json")
        # Fuzzed text is rarely an http URL; half the time make the webhook a real one.
        if (
            operation == WEBHOOK
            and isinstance(body, dict)
            and "url" in body
            and data.draw(st.booleans(), label="a webhook on the receiver")
        ):
            events = data.draw(st.lists(st.sampled_from(EVENTS), min_size=1), label="events")
            request["json"] = {**body, "url": self.receiver.url, "events": events}
        if operation == UPLOAD:
            # The upload reads a raw archive body the schema does not describe.
            request.pop("json", None)
            request["data"] = data.draw(st.binary(max_size=512), label="archive")
        self.check(request)

    def check(self, request: dict[str, Any]) -> None:
        """Send one ``requests`` call and record any answer that breaks the rules."""
        try:
            response = self.session.request(**request, timeout=ANSWER_SECONDS)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError):
            self.findings.unsendable += 1  # refused by the client: nothing reached the host
            return
        except requests.exceptions.RequestException as exc:
            self.findings.cases += 1
            self.findings.server_errors.append(describe(request, "no answer", repr(exc)))
            return
        self.findings.cases += 1
        if response.status_code >= 500:
            self.findings.server_errors.append(
                describe(request, response.status_code, response.text)
            )
        elif response.status_code >= 400 and not has_error_shape(response.text):
            self.findings.bad_shapes.append(describe(request, response.status_code, response.text))


def hand_written(base_url: str) -> list[dict[str, Any]]:
    """Inputs schemathesis' generators rarely reach, each once answered 500 by some host."""
    auth = {"Authorization": f"Bearer {KEY}"}
    install = f"{base_url}/api/v1/plugins"
    return (
        [
            {"method": "POST", "url": install, "headers": auth, "json": {"path": path}}
            for path in (
                "a" * 300,
                "\u00e9" * 200,
                "a/" * 3000,
                "~no-such-user-ops-center/x",
                "x\x00y",
            )
        ]
        + [
            {"method": "GET", "url": f"{base_url}/api/v1/devices", "headers": auth, "params": query}
            for query in ({"page": 10**20}, {"page_size": -(10**20)}, {"page": "1e309"})
        ]
        + [
            {
                "method": "POST",
                "url": f"{base_url}/api/v1/webhooks",
                "headers": auth,
                "json": {"url": url, "events": ["device.created"]},
            }
            for url in ("http://127.0.0.1:99999/hook", "http://[::1/hook")
        ]
    )


def fuzz(run: Run, operation: Any, mode: GenerationMode) -> None:
    """``CASES`` cases of ``operation`` in ``mode``, each sent and checked."""

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=CASES,
        database=None,
        deadline=None,
        derandomize=not RANDOM,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def one(case: Case, data: st.DataObject) -> None:
        run.send(case, data)

    # No case of a mode may exist (nothing makes a bare string parameter invalid).
    with suppress(Unsatisfiable):
        one()


def seed_plugin(root: Path) -> None:
    folder = root / "plugins" / "fuzz-target"
    folder.mkdir(parents=True)
    (folder / "plugin.yaml").write_text(PLUGIN_YAML, encoding="utf-8")
    (folder / "main.py").write_text(PLUGIN_MAIN, encoding="utf-8")


def test_no_input_is_answered_5xx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    seed_plugin(work)
    # Relative install paths resolve in the temp folder, and so does "~".
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(work))
    started = time.monotonic()
    app = create_server_app(
        data_dir=tmp_path / "data", admin_key=KEY, webhook_settings=FAST_WEBHOOKS
    )
    with loopback_receiver() as receiver, served(app) as base_url:
        run = Run(base_url, receiver)
        auth = {"Authorization": f"Bearer {KEY}"}
        installed = run.session.post(
            f"{base_url}/api/v1/plugins", json={"path": "plugins/fuzz-target"}, headers=auth
        )
        assert installed.status_code == 201, installed.text
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        # Deleting goes last, so the other calls reach the plugin and records.
        operations = sorted(
            (result.ok() for result in schema.get_all_operations()),
            key=lambda op: op.method.upper() == "DELETE",
        )
        assert len(operations) > 40, [op.label for op in operations]
        for request in hand_written(base_url):
            run.check(request)
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(run, operation, mode)
            if os.environ.get("OPS_CENTER_SCHEMATHESIS_TIMES"):
                with capsys.disabled():
                    print(f"{time.monotonic() - started:6.1f} s  {operation.label}")
        webhooks = run.session.get(
            f"{base_url}/api/v1/webhooks", params={"page_size": 500}, headers=auth
        ).json()["items"]
        run.session.close()
    findings = run.findings
    with capsys.disabled():
        print(
            f"\nschemathesis cases {findings.cases}, 5xx {len(findings.server_errors)} "
            f"(4xx off the error shape {len(findings.bad_shapes)}, unsendable "
            f"{findings.unsendable}, webhooks {len(webhooks)}, "
            f"{time.monotonic() - started:.1f} s)"
        )
    assert findings.server_errors == [], "\n".join(findings.server_errors)
    assert findings.bad_shapes == [], "\n".join(findings.bad_shapes)
    assert {hook["url"] for hook in webhooks} <= {receiver.url}
    assert findings.cases >= len(operations) * CASES
