"""Delivery signatures: HMAC-SHA256 over "<t>." + body, constant-time compare, freshness."""

from __future__ import annotations

import pytest

from ops_center_sdk.signing import SignatureError, sign_delivery, verify_signature

BODY = b'{"id":"evt-1","name":"device.deleted","payload":{"device_id":"d1"}}'
NOW = 1_800_000_000


def test_a_signature_verifies_with_the_same_secret_and_body() -> None:
    header = sign_delivery(BODY, "s3cret", timestamp=NOW)
    assert header.startswith(f"t={NOW},v1=")
    verify_signature(BODY, header, "s3cret", now=NOW + 5)


@pytest.mark.parametrize(
    ("body", "header_secret", "now", "message"),
    [
        (BODY + b" ", "s3cret", NOW, "does not match"),
        (BODY, "other", NOW, "does not match"),
        (BODY, "s3cret", NOW + 301, "away from now"),
        (BODY, "s3cret", NOW - 301, "away from now"),
    ],
)
def test_tampered_wrong_or_stale_deliveries_are_refused(
    body: bytes, header_secret: str, now: int, message: str
) -> None:
    header = sign_delivery(BODY, header_secret, timestamp=NOW)
    with pytest.raises(SignatureError, match=message):
        verify_signature(body, header, "s3cret", now=now)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=abc", "must look like"),
        (f"t={NOW}", "must look like"),
        ("t=yesterday,v1=abc", "not a number"),
    ],
)
def test_malformed_headers_are_refused(header: str | None, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_signature(BODY, header, "s3cret", now=NOW)


def test_one_matching_entry_among_several_is_enough_for_secret_rotation() -> None:
    old = sign_delivery(BODY, "old", timestamp=NOW).split(",")[1]
    new = sign_delivery(BODY, "new", timestamp=NOW).split(",")[1]
    verify_signature(BODY, f"t={NOW},{old},{new}", "new", now=NOW)


def test_no_secret_means_nothing_verifies() -> None:
    with pytest.raises(SignatureError, match="no secret"):
        verify_signature(BODY, sign_delivery(BODY, "x", timestamp=NOW), "", now=NOW)
    with pytest.raises(ValueError, match="secret"):
        sign_delivery(BODY, "")
