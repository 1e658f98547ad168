"""SeenDeliveries: each id accepted once while its signature is fresh, in bounded memory."""

from __future__ import annotations

import pytest

from ops_center_sdk.signing import SeenDeliveries, SignatureError, signed_headers, verify_signature

T = 1_800_000_000
WINDOW = 300


def claim(seen: SeenDeliveries, delivery_id: str, timestamp: int, now: float) -> None:
    seen.claim(delivery_id, timestamp=timestamp, expires_at=timestamp + WINDOW, now=now)


def test_an_id_is_accepted_once() -> None:
    seen = SeenDeliveries()
    claim(seen, "d-1", T, T)
    claim(seen, "d-2", T, T)
    with pytest.raises(SignatureError, match="'d-1' was already received"):
        claim(seen, "d-1", T, T + 299)
    assert len(seen) == 2


def test_ids_are_forgotten_once_their_signature_is_stale() -> None:
    seen = SeenDeliveries()
    for n in range(100):
        claim(seen, f"d-{n}", T + n, T + n)
    claim(seen, "late", T + 350, T + 350)
    # Everything signed before T + 50 is past the window now: dropped.
    assert len(seen) == 51
    assert "d-49" not in seen
    assert "d-50" in seen


def test_a_full_set_drops_the_oldest_and_refuses_anything_as_old() -> None:
    seen = SeenDeliveries(max_entries=3)
    for n, stamp in enumerate((T, T + 1, T + 2)):
        claim(seen, f"d-{n}", stamp, T + 2)
    claim(seen, "d-3", T + 3, T + 3)  # full: d-0 (signed at T) makes room
    assert len(seen) == 3
    assert "d-0" not in seen
    with pytest.raises(SignatureError, match="too long ago to be checked for a replay"):
        claim(seen, "d-0", T, T + 3)  # its replay is still refused
    with pytest.raises(SignatureError, match="too long ago"):
        claim(seen, "never-seen", T, T + 3)
    claim(seen, "d-4", T + 4, T + 4)  # newer than anything dropped: accepted
    with pytest.raises(SignatureError, match="already received"):
        claim(seen, "d-3", T + 3, T + 4)


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SeenDeliveries(max_entries=0)


def test_only_authentic_requests_are_recorded() -> None:
    seen = SeenDeliveries()
    headers = signed_headers(b"{}", "s3cret", method="POST", path="/p", timestamp=T)
    request = {"method": "POST", "path": "/p", "delivery_id": headers["X-Ops-Center-Delivery"]}
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(
            b"{}", headers["X-Ops-Center-Signature"], "wrong", **request, now=T, seen=seen
        )
    assert len(seen) == 0
    verify_signature(
        b"{}", headers["X-Ops-Center-Signature"], "s3cret", **request, now=T, seen=seen
    )
    with pytest.raises(SignatureError, match="already received"):
        verify_signature(
            b"{}", headers["X-Ops-Center-Signature"], "s3cret", **request, now=T + 1, seen=seen
        )
