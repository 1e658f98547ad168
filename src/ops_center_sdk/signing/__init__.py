"""Signed requests: how the host (and its webhooks) prove a request came from Ops-Center.

Every host-to-plugin request, and every webhook delivery, carries two headers::

    X-Ops-Center-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256 of the signed message>
    X-Ops-Center-Delivery: <a new id for every request>

The signed message (:func:`signed_message`) holds the timestamp, the method,
the path with its query, the delivery id and the raw body, so a captured
request is good for nothing else: not for another endpoint, not with another
body, not after ``tolerance`` seconds, and (with :class:`SeenDeliveries`) not
twice. Comparisons run in constant time. Protocol 1's ``v1`` signatures,
which covered only the timestamp and the body, are refused.

>>> headers = signed_headers(b"{}", "s3cret", method="POST", path="/_ops/lifecycle/enable")
>>> verify_signature(b"{}", headers[SIGNATURE_HEADER], "s3cret", method="POST",
...                  path="/_ops/lifecycle/enable", delivery_id=headers[DELIVERY_HEADER])

A webhook receiver checks a delivery with :func:`verify_webhook`.
"""

from .header import (
    DELIVERY_HEADER,
    MAX_DELIVERY_ID_LENGTH,
    MAX_HEADER_LENGTH,
    MAX_SIGNATURES,
    SCHEME,
    SIGNATURE_HEADER,
    SignatureError,
    SignatureHeader,
    parse_delivery_id,
    parse_signature_header,
)
from .message import (
    DEFAULT_TOLERANCE,
    new_delivery_id,
    request_path,
    sign_delivery,
    signature_for,
    signed_headers,
    signed_message,
    verify_signature,
)
from .replay import DEFAULT_MAX_ENTRIES, SeenDeliveries
from .webhook import verify_webhook

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_TOLERANCE",
    "DELIVERY_HEADER",
    "MAX_DELIVERY_ID_LENGTH",
    "MAX_HEADER_LENGTH",
    "MAX_SIGNATURES",
    "SCHEME",
    "SIGNATURE_HEADER",
    "SeenDeliveries",
    "SignatureError",
    "SignatureHeader",
    "new_delivery_id",
    "parse_delivery_id",
    "parse_signature_header",
    "request_path",
    "sign_delivery",
    "signature_for",
    "signed_headers",
    "signed_message",
    "verify_signature",
    "verify_webhook",
]
