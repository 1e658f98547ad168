"""The delivery ids a receiver has accepted, kept while their signatures are fresh.

A signature is accepted for ``tolerance`` seconds around its timestamp, so a
captured request could be sent again within that window: the receiver keeps
the id of every delivery it accepted until its timestamp is that old, and
refuses an id it holds. Only authentic requests are recorded (the signature
is checked first), so nobody without the secret can fill the set.

The set is bounded. When it is full the entry with the oldest timestamp makes
room, and from then on a timestamp no newer than the one it dropped is
refused: a replay of a dropped id is still caught, at the price of refusing
a genuine request signed in the same second as the dropped one (this needs
more than ``max_entries`` requests within a few seconds).
"""

from __future__ import annotations

import heapq

from .header import SignatureError

DEFAULT_MAX_ENTRIES = 50_000


class SeenDeliveries:
    """A bounded in-memory set of accepted delivery ids, each expiring with its signature.

    >>> seen = SeenDeliveries()
    >>> seen.claim("d-1", timestamp=1000, expires_at=1300, now=1000)
    >>> seen.claim("d-1", timestamp=1000, expires_at=1300, now=1001)
    Traceback (most recent call last):
    ...
    ops_center_sdk.signing.header.SignatureError: delivery 'd-1' was already received ...
    """

    def __init__(self, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.max_entries = max_entries
        self._expiry: dict[str, float] = {}
        self._by_expiry: list[tuple[float, int, str]] = []
        # The newest timestamp dropped to make room: replays older than it
        # could no longer be recognised, so they are refused outright.
        self._floor: int | None = None

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, delivery_id: object) -> bool:
        return delivery_id in self._expiry

    def claim(self, delivery_id: str, *, timestamp: int, expires_at: float, now: float) -> None:
        """Record ``delivery_id``; :class:`SignatureError` if it was seen (or cannot be told)."""
        self._expire(now)
        if delivery_id in self._expiry:
            raise SignatureError(
                f"delivery {delivery_id!r} was already received (a replayed request); "
                "every request needs a new delivery id"
            )
        if self._floor is not None and timestamp <= self._floor:
            raise SignatureError(
                f"delivery {delivery_id!r} is signed at {timestamp}, too long ago to be checked "
                f"for a replay ({self.max_entries} newer deliveries were received since); "
                "sign it again"
            )
        if len(self._expiry) >= self.max_entries:
            _, dropped_timestamp, dropped = heapq.heappop(self._by_expiry)
            del self._expiry[dropped]
            self._floor = max(self._floor or dropped_timestamp, dropped_timestamp)
        self._expiry[delivery_id] = expires_at
        heapq.heappush(self._by_expiry, (expires_at, timestamp, delivery_id))

    def _expire(self, now: float) -> None:
        heap = self._by_expiry
        while heap and heap[0][0] < now:
            _, _, delivery_id = heapq.heappop(heap)
            del self._expiry[delivery_id]
