"""Whatever the signature headers hold, an /_ops/ endpoint answers 401 in the error shape."""

from __future__ import annotations

import json

import pytest
from asgi_kit import RawRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from ops_center_sdk.protocol import ProtocolEndpoints
from ops_center_sdk.signing import signed_headers
from ops_center_sdk.testing import create_test_plugin

SECRET = "header-secret"
DIGEST = "cd" * 32
PATHS = [
    ("POST", "/_ops/events"),
    ("POST", "/_ops/filters/device.data.process"),
    ("POST", "/_ops/lifecycle/uninstall"),
    ("GET", "/_ops/health"),
]
#: The real endpoints of one plugin, built once: hypothesis runs many examples on them.
APP = Starlette(routes=ProtocolEndpoints(create_test_plugin("headers"), secret=SECRET).routes())


def good_headers(method: str, path: str, body: bytes = b"{}") -> list[tuple[bytes, bytes]]:
    headers = signed_headers(body, SECRET, method=method, path=path)
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


def with_signature(value: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"x-ops-center-signature", value), (b"x-ops-center-delivery", b"delivery-1")]


async def answer_to(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, str]:
    body = b"{}" if method == "POST" else b""
    answer = await RawRequest(method, path, headers, iter([body])).send_to(APP)
    return answer.status, answer.json()["error"]["code"]


@pytest.mark.parametrize(("method", "path"), PATHS)
@pytest.mark.parametrize(
    "value",
    [
        f"t={'9' * 400},v2={DIGEST}".encode(),
        f"t={'9' * 400},v1=abc".encode(),
        "t=1800000000,v1=\u00e9\u00e8".encode(),
        "t=1800000000,v2=\u00e9".encode("latin-1"),
        b"t=1800000000,v2=\xff\xfe",
        b"t=\x001,v2=" + DIGEST.encode(),
        b"t=1," + b"v2=" + b"a" * 5000,
        b"t=1,t=2,v2=" + DIGEST.encode(),
        b"v2=" + DIGEST.encode(),
        b",,,",
        b"",
    ],
)
async def test_absurd_signature_headers_get_401_never_500(
    method: str, path: str, value: bytes
) -> None:
    assert await answer_to(method, path, with_signature(value)) == (401, "bad_signature")


@pytest.mark.parametrize(("method", "path"), PATHS)
async def test_a_header_sent_twice_is_refused(method: str, path: str) -> None:
    headers = good_headers(method, path, b"{}" if method == "POST" else b"")
    for repeated in headers:
        assert await answer_to(method, path, [*headers, repeated]) == (401, "bad_signature")


async def test_the_same_headers_well_formed_are_accepted() -> None:
    answer = await RawRequest(
        "GET", "/_ops/health", good_headers("GET", "/_ops/health", b"")
    ).send_to(APP)
    assert answer.status == 200
    assert json.loads(answer.body)["protocol"] == 2


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150, deadline=None)
@given(
    st.sampled_from(PATHS),
    st.text(max_size=1500),
    st.one_of(st.none(), st.text(max_size=200)),
)
async def test_any_header_text_gets_401(
    endpoint: tuple[str, str], signature: str, delivery: str | None
) -> None:
    method, path = endpoint
    headers = [(b"x-ops-center-signature", signature.encode("utf-8"))]
    if delivery is not None:
        headers.append((b"x-ops-center-delivery", delivery.encode("utf-8")))
    assert await answer_to(method, path, headers) == (401, "bad_signature")
