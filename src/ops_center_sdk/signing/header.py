"""Reading the signature headers: strict, bounded, and never anything but a SignatureError.

A header comes from whoever sent the request, so it is read as hostile text:
its length, alphabet and every part are checked before any number is made
of it, and whatever is wrong is reported as a :class:`SignatureError` that
names the part at fault (quoted, cut short).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import OpsCenterError

SIGNATURE_HEADER = "X-Ops-Center-Signature"
DELIVERY_HEADER = "X-Ops-Center-Delivery"
#: The signature scheme (and wire protocol) version: ``v2`` covers the method,
#: the path and the delivery id besides the timestamp and the body.
SCHEME = "v2"
#: The scheme of protocol 1, which signed only the timestamp and the body.
OLD_SCHEME = "v1"
MAX_HEADER_LENGTH = 1024
#: ``v2=`` entries one header may carry (a secret being rotated needs two).
MAX_SIGNATURES = 8
MAX_DELIVERY_ID_LENGTH = 128

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_KEY = re.compile(r"[a-z][a-z0-9]{0,15}")
_LATER_SCHEME = re.compile(r"v[0-9]{1,3}")
_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]+")
_FORMAT = f"'t=<unix seconds>,{SCHEME}=<64 hex digits>'"


class SignatureError(OpsCenterError):
    """A delivery whose signature is missing, malformed, wrong, stale or replayed."""


@dataclass(frozen=True)
class SignatureHeader:
    """A well-formed ``X-Ops-Center-Signature``: its timestamp and its ``v2`` digests."""

    timestamp: int
    signatures: tuple[str, ...]


def _quoted(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_signature_header(header: str | None) -> SignatureHeader:
    """Read ``t=<unix seconds>,v2=<hex>[,v2=<hex>...]``; :class:`SignatureError` otherwise.

    Refused: a missing or empty header, one over ``MAX_HEADER_LENGTH``
    characters or not printable ASCII, an empty or unknown part, a ``t`` that
    is not 1 to 12 ASCII digits, a digest that is not 64 hex digits, a part
    given twice, more than ``MAX_SIGNATURES`` digests, and a header that
    carries only protocol 1's ``v1`` digests. Parts named ``v3``, ``v4``...
    are skipped, so a later sender may add its scheme beside ``v2``.

    >>> parse_signature_header("t=1700000000,v2=" + "0" * 64).timestamp
    1700000000
    """
    if not header or not header.strip():
        raise SignatureError(f"the {SIGNATURE_HEADER} header is missing")
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError(
            f"the {SIGNATURE_HEADER} header is {len(header)} characters long "
            f"(at most {MAX_HEADER_LENGTH})"
        )
    if not header.isascii() or not header.isprintable():
        raise SignatureError(
            f"the {SIGNATURE_HEADER} header holds characters that are not printable ASCII: "
            f"{_quoted(header)}"
        )
    timestamp: int | None = None
    digests: list[str] = []
    old_scheme = False
    for number, raw in enumerate(header.split(","), start=1):
        part = raw.strip(" \t")
        where = f"{SIGNATURE_HEADER} part {number} ({_quoted(part)})"
        key, equals, value = part.partition("=")
        if not equals or not _KEY.fullmatch(key) or not value:
            raise SignatureError(
                f"{where} is not 'name=value'; the header must look like {_FORMAT}"
            )
        if key == "t":
            if timestamp is not None:
                raise SignatureError(f"{where}: the timestamp is given twice")
            if not _TIMESTAMP.fullmatch(value):
                raise SignatureError(
                    f"{where}: the timestamp must be 1 to 12 digits (unix seconds)"
                )
            timestamp = int(value)
        elif key == SCHEME:
            digest = value.lower()
            if not _HEX_DIGEST.fullmatch(digest):
                raise SignatureError(f"{where}: a {SCHEME} signature is 64 hex digits")
            if digest in digests:
                raise SignatureError(f"{where}: the same signature is given twice")
            if len(digests) == MAX_SIGNATURES:
                raise SignatureError(f"{where}: at most {MAX_SIGNATURES} signatures are allowed")
            digests.append(digest)
        elif key == OLD_SCHEME:
            old_scheme = True
        elif not _LATER_SCHEME.fullmatch(key):
            raise SignatureError(
                f"{where}: unknown part {key!r}; the header must look like {_FORMAT}"
            )
    if not digests and old_scheme:
        raise SignatureError(
            f"the {SIGNATURE_HEADER} header carries only {OLD_SCHEME} signatures (protocol 1, "
            f"which does not cover the method, the path and the delivery id); "
            f"sign with {SCHEME}"
        )
    if timestamp is None or not digests:
        missing = "the timestamp 't'" if timestamp is None else f"a {SCHEME} signature"
        raise SignatureError(
            f"the {SIGNATURE_HEADER} header has no {missing}; it must look like {_FORMAT}"
        )
    return SignatureHeader(timestamp, tuple(digests))


def parse_delivery_id(value: str | None) -> str:
    """Check an ``X-Ops-Center-Delivery`` value: 1 to 128 of ``A-Z a-z 0-9 . _ : -``."""
    if value is None or not value:
        raise SignatureError(f"the {DELIVERY_HEADER} header is missing")
    if len(value) > MAX_DELIVERY_ID_LENGTH or not _DELIVERY_ID.fullmatch(value):
        raise SignatureError(
            f"the {DELIVERY_HEADER} header {_quoted(value)} must be 1 to "
            f"{MAX_DELIVERY_ID_LENGTH} of the characters A-Z a-z 0-9 . _ : -"
        )
    return value
