"""API keys and permission checks.

A key is a random token shown once, when it is issued; the store keeps only
its SHA-256. Each key grants a set of permissions (``devices:read``, ...): a
plugin's key grants exactly its manifest's ``permissions``. The admin key,
given to the host at start, grants everything and is never stored.

Routes declare what they need with ``Depends(require("devices:read"))``:
no key or an unknown key is answered 401, a key without the permission 403
naming it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request

from .errors import PermissionDenied, Unauthorized
from .store import HostStore, StoredKey

_KEY_PREFIX = "ock_"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def hash_key(key: str) -> str:
    """The SHA-256 (hex) under which a key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key."""
    return _KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the owner of the key and what it may do."""

    key_id: str
    owner: str
    permissions: frozenset[str]
    is_admin: bool = False

    def allows(self, permission: str) -> bool:
        """True when this key grants ``permission``."""
        return self.is_admin or permission in self.permissions


class APIKeys:
    """Issues, checks and revokes API keys; keys live in the store, hashed.

    Lookups are served from memory (loaded once from the store, kept in step
    by :meth:`issue` and :meth:`revoke`), so checking a key costs one hash.
    """

    def __init__(self, store: HostStore, *, admin_key: str | None = None) -> None:
        self._store = store
        self._by_hash: dict[str, Principal] = {
            stored.key_hash: Principal(stored.key_id, stored.owner, stored.permissions)
            for stored in store.api_keys()
        }
        self._admin_hash: str | None = None
        if admin_key is not None:
            self.set_admin_key(admin_key)

    def set_admin_key(self, key: str) -> None:
        """Make ``key`` the admin key (every permission); it is not stored."""
        if not key:
            raise ValueError("the admin key must not be empty")
        self._admin_hash = hash_key(key)

    def issue(self, owner: str, permissions: Iterable[str]) -> str:
        """Create a key for ``owner`` granting exactly ``permissions``; return it.

        The returned key is the only copy: it cannot be read back later.
        """
        granted = frozenset(permissions)
        key = new_key()
        stored = StoredKey(
            key_hash=hash_key(key),
            key_id=f"key-{uuid.uuid4().hex[:12]}",
            owner=owner,
            permissions=granted,
            created_at=datetime.now(UTC).isoformat(),
        )
        self._store.add_key(stored)
        self._by_hash[stored.key_hash] = Principal(stored.key_id, owner, granted)
        return key

    def revoke(self, key: str) -> bool:
        """Stop accepting ``key``; True when it was a known key."""
        key_hash = hash_key(key)
        removed = self._store.delete_keys(key_hashes=[key_hash]) > 0
        return self._by_hash.pop(key_hash, None) is not None or removed

    def revoke_owner(self, owner: str) -> int:
        """Revoke every key of ``owner`` (e.g. a plugin being uninstalled)."""
        removed = self._store.delete_keys(owner=owner)
        for key_hash in [h for h, p in self._by_hash.items() if p.owner == owner]:
            del self._by_hash[key_hash]
        return removed

    def owners(self) -> dict[str, frozenset[str]]:
        """Every key owner and the permissions granted to them."""
        granted: dict[str, frozenset[str]] = {}
        for principal in self._by_hash.values():
            granted[principal.owner] = granted.get(principal.owner, frozenset()) | (
                principal.permissions
            )
        return granted

    def authenticate(self, key: str) -> Principal | None:
        """The principal a key acts as, or ``None`` for an unknown key."""
        key_hash = hash_key(key)
        if self._admin_hash is not None and hmac.compare_digest(key_hash, self._admin_hash):
            return Principal("admin", "admin", frozenset(), is_admin=True)
        # A dict lookup by hash reveals nothing usable about the key itself
        # (an attacker cannot steer the hash), unlike comparing raw keys.
        return self._by_hash.get(key_hash)

    def principal_for(self, authorization: str | None) -> Principal:
        """Check an ``Authorization`` header; raise the 401 error when it does not pass."""
        if not authorization:
            raise Unauthorized(
                "missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE
            )
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Unauthorized(
                "malformed Authorization header: expected 'Bearer <key>'", headers=_CHALLENGE
            )
        principal = self.authenticate(key)
        if principal is None:
            raise Unauthorized("invalid or revoked API key", headers=_CHALLENGE)
        return principal


def require(permission: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the request's principal, which must hold ``permission``."""

    async def check(request: Request) -> Principal:
        keys: APIKeys = request.app.state.keys
        principal = keys.principal_for(request.headers.get("authorization"))
        if not principal.allows(permission):
            raise PermissionDenied(
                f"this API key ({principal.owner}) lacks the permission {permission!r} "
                f"needed for {request.method} {request.url.path}",
                details=[{"permission": permission}],
            )
        return principal

    check.__name__ = f"require_{permission.replace(':', '_')}"
    return check
