"""Request signatures (v2): HMAC-SHA256 over time, method, path, delivery id and body."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops_center_sdk.signing import (
    DELIVERY_HEADER,
    MAX_HEADER_LENGTH,
    SIGNATURE_HEADER,
    SignatureError,
    SignatureHeader,
    parse_delivery_id,
    parse_signature_header,
    request_path,
    sign_delivery,
    signed_headers,
    signed_message,
    verify_signature,
)

BODY = b'{"id":"evt-1","name":"device.deleted","payload":{"device_id":"d1"}}'
NOW = 1_800_000_000
REQUEST: dict[str, Any] = {
    "method": "POST",
    "path": "/_ops/events",
    "delivery_id": "delivery-1",
}
DIGEST = "ab" * 32


def header_for(body: bytes = BODY, secret: str = "s3cret", **request: Any) -> str:
    return sign_delivery(body, secret, **{**REQUEST, **request}, timestamp=NOW)


def test_a_signature_verifies_for_the_same_request() -> None:
    header = header_for()
    assert header.startswith(f"t={NOW},v2=")
    verify_signature(BODY, header, "s3cret", **REQUEST, now=NOW + 5)


def test_the_signed_message_is_the_documented_bytes() -> None:
    message = signed_message(b"{}", timestamp=NOW, method="POST", path="/a?b=1", delivery_id="d")
    assert message == f"v2\n{NOW}\nPOST\n/a?b=1\nd\n{{}}".encode()
    expected = hmac.new(b"s3cret", message, hashlib.sha256).hexdigest()
    header = sign_delivery(
        b"{}", "s3cret", method="POST", path="/a?b=1", delivery_id="d", timestamp=NOW
    )
    assert header == f"t={NOW},v2={expected}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"body": BODY + b" "}, "does not match"),
        ({"secret": "other"}, "does not match"),
        ({"method": "PUT"}, "does not match this request (PUT /_ops/events"),
        ({"path": "/_ops/lifecycle/uninstall"}, "does not match"),
        ({"path": "/_ops/events?x=1"}, "does not match"),
        ({"delivery_id": "delivery-2"}, "does not match"),
        ({"now": NOW + 301}, "away from now"),
        ({"now": NOW - 301}, "away from now"),
    ],
)
def test_every_part_of_the_request_is_bound_by_the_signature(
    change: dict[str, Any], message: str
) -> None:
    received: dict[str, Any] = {"body": BODY, "secret": "s3cret", **REQUEST, "now": NOW}
    received.update(change)
    body, secret = received.pop("body"), received.pop("secret")
    with pytest.raises(SignatureError, match=message.replace("(", r"\(")):
        verify_signature(body, header_for(), secret, **received)


def test_a_protocol_1_signature_over_time_and_body_only_is_refused() -> None:
    old = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError, match=r"only v1 signatures .* sign with v2"):
        verify_signature(BODY, f"t={NOW},v1={old}", "s3cret", **REQUEST, now=NOW)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "header is missing"),
        ("", "header is missing"),
        ("   ", "header is missing"),
        ("t=1," + "v2=" + "a" * MAX_HEADER_LENGTH, "characters long"),
        (f"t={'9' * 400},v2={DIGEST}", "1 to 12 digits"),
        (f"t=-5,v2={DIGEST}", "1 to 12 digits"),
        (f"t=1e9,v2={DIGEST}", "1 to 12 digits"),
        (f"t=\u0661\u0667\u0660\u0660,v2={DIGEST}", "not printable ASCII"),
        (f"t={NOW},v1=é", "not printable ASCII"),
        (f"t={NOW},v2=\u00e9{DIGEST[1:]}", "not printable ASCII"),
        (f"t={NOW},v2={DIGEST}\n", "not printable ASCII"),
        (f"t={NOW},v2=xyz", "64 hex digits"),
        (f"t={NOW},v2={DIGEST}0", "64 hex digits"),
        (f"t={NOW},t={NOW},v2={DIGEST}", "part 2 .* given twice"),
        (f"t={NOW},v2={DIGEST},v2={DIGEST}", "same signature is given twice"),
        (f"t={NOW},{','.join(f'v2={i:064x}' for i in range(9))}", "at most 8"),
        (f"v2={DIGEST}", "no the timestamp 't'"),
        (f"t={NOW}", "no a v2 signature"),
        (f"t={NOW},v2={DIGEST},", "part 3 .* not 'name=value'"),
        (f"t={NOW},,v2={DIGEST}", "part 2 .* not 'name=value'"),
        (f"t={NOW},v2=", "part 2 .* not 'name=value'"),
        (f"t={NOW},=x,v2={DIGEST}", "not 'name=value'"),
        (f"t={NOW},sig={DIGEST}", "unknown part 'sig'"),
        ("t=yesterday,v2=abc", "1 to 12 digits"),
    ],
)
def test_malformed_headers_are_refused_with_the_part_at_fault(
    header: str | None, message: str
) -> None:
    with pytest.raises(SignatureError, match=message):
        parse_signature_header(header)
    with pytest.raises(SignatureError, match=message):
        verify_signature(BODY, header, "s3cret", **REQUEST, now=NOW)


def test_a_well_formed_header_is_read_with_spaces_upper_case_and_later_schemes() -> None:
    parsed = parse_signature_header(f" t={NOW} , v2={DIGEST.upper()}, v3=anything ")
    assert parsed == SignatureHeader(NOW, (DIGEST,))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "missing"),
        ("", "missing"),
        ("a" * 129, "1 to 128"),
        ("has space", "1 to 128"),
        ("dé", "1 to 128"),
        ("line\nbreak", "1 to 128"),
    ],
)
def test_bad_delivery_ids_are_refused(value: str | None, message: str) -> None:
    with pytest.raises(SignatureError, match=f"{DELIVERY_HEADER}.*{message}"):
        parse_delivery_id(value)
    with pytest.raises(SignatureError, match=message):
        verify_signature(BODY, header_for(), "s3cret", **{**REQUEST, "delivery_id": value})


def test_one_matching_entry_among_several_is_enough_for_secret_rotation() -> None:
    old = header_for(secret="old").split(",")[1]
    new = header_for(secret="new").split(",")[1]
    verify_signature(BODY, f"t={NOW},{old},{new}", "new", **REQUEST, now=NOW)


def test_no_secret_means_nothing_verifies_and_nothing_is_signed() -> None:
    with pytest.raises(SignatureError, match="no secret"):
        verify_signature(BODY, header_for(secret="x"), "", **REQUEST, now=NOW)
    with pytest.raises(ValueError, match="secret"):
        sign_delivery(BODY, "", **REQUEST)


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"method": "post"}, "upper-case HTTP method"),
        ({"path": "_ops/events"}, "request target as sent"),
        ({"path": "/_ops/a b"}, "request target as sent"),
        ({"path": "/_ops/\u00e9"}, "request target as sent"),
        ({"delivery_id": "two words"}, DELIVERY_HEADER),
    ],
)
def test_signing_refuses_what_cannot_go_on_the_wire(
    request_fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sign_delivery(BODY, "s3cret", **{**REQUEST, **request_fields})


def test_signed_headers_carry_a_new_delivery_id_each_time() -> None:
    first = signed_headers(BODY, "s3cret", method="POST", path="/_ops/events")
    second = signed_headers(BODY, "s3cret", method="POST", path="/_ops/events")
    assert first[DELIVERY_HEADER] != second[DELIVERY_HEADER]
    for headers in (first, second):
        verify_signature(
            BODY,
            headers[SIGNATURE_HEADER],
            "s3cret",
            method="POST",
            path="/_ops/events",
            delivery_id=headers[DELIVERY_HEADER],
        )


def test_request_path_is_the_target_as_sent() -> None:
    scope = {"path": "/a b", "raw_path": b"/a%20b", "query_string": b"x=%C3%A9"}
    assert request_path(scope) == "/a%20b?x=%C3%A9"
    assert request_path({"path": "/plain", "query_string": b""}) == "/plain"


#: Headers close to well-formed (known names, digits, hex) as well as any text at all.
PARTS = st.tuples(
    st.sampled_from(["t", "v1", "v2", "v3", "T", "x", ""]),
    st.one_of(
        st.text(max_size=70),
        st.integers(min_value=-10, max_value=10**15).map(str),
        st.text("0123456789abcdefABCDEF", min_size=62, max_size=66),
    ),
)
HEADERS = st.one_of(
    st.text(max_size=2000),
    st.lists(PARTS, max_size=12).map(lambda parts: ",".join(f"{k}={v}" for k, v in parts)),
)


@given(HEADERS)
def test_any_header_text_parses_or_raises_a_signature_error(header: str) -> None:
    try:
        parsed = parse_signature_header(header)
    except SignatureError as exc:
        assert str(exc).strip()  # noqa: PT017 - the property is about the error itself
        return
    assert 0 <= parsed.timestamp < 10**12
    assert 1 <= len(parsed.signatures) <= 8
    assert len(set(parsed.signatures)) == len(parsed.signatures)
    assert all(len(d) == 64 and set(d) <= set("0123456789abcdef") for d in parsed.signatures)


@given(
    HEADERS,
    st.one_of(st.none(), st.text(max_size=200)),
)
def test_any_headers_fail_verification_only_with_a_signature_error(
    header: str, delivery_id: str | None
) -> None:
    with pytest.raises(SignatureError):
        verify_signature(BODY, header, "s3cret", **{**REQUEST, "delivery_id": delivery_id})
