"""The key check in front of ``/plugins/<id>/...``, and what of the caller the plugin gets.

Every plugin route served by the host needs a valid API key (any key the
host knows: the admin key, a plugin's key, a key it issued), unless the
route is public (:mod:`ops_center_sdk.route_access`); a key that is sent is
checked even then. No key or a bad one is answered 401 in the host's error
shape, as the REST API answers it.

Then, public or not, the request loses the caller's credentials
(``Authorization``, ``Proxy-Authorization``, ``Cookie``) and any caller
header it came with, and carries instead the verified
:class:`~ops_center_sdk.caller.Caller` on its scope: an in-process plugin
reads it there, the proxy signs it for a plugin process
(:mod:`.plugin_proxy`).
"""

from __future__ import annotations

from starlette.types import Scope

from ..caller import CALLER_HEADERS, SCOPE_KEY, Caller
from .auth import APIKeys, Principal
from .errors import Unauthorized

#: The caller's credentials: never handed to a plugin.
CREDENTIAL_HEADERS = frozenset({b"authorization", b"proxy-authorization", b"cookie"})
_WITHHELD = CREDENTIAL_HEADERS | CALLER_HEADERS
_PLUGIN_OWNER = "plugin:"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def caller_of(principal: Principal) -> Caller:
    """The identity a plugin is told for ``principal`` (never its key)."""
    if principal.is_admin:
        return Caller("admin", "admin", principal.key_id)
    if principal.owner.startswith(_PLUGIN_OWNER):
        return Caller("plugin", principal.owner[len(_PLUGIN_OWNER) :], principal.key_id)
    return Caller("key", principal.owner, principal.key_id)


def guard(scope: Scope, keys: APIKeys, *, public: bool) -> Caller | None:
    """Check the request's key, then keep only what the plugin may see of the caller.

    Raises the 401 :class:`~.errors.Unauthorized` when a key is needed (the
    route is not ``public``) or sent, and is missing or not valid. On
    success the scope's headers lose the credentials and caller headers, and
    ``scope["ops_center.caller"]`` holds the caller (``None``: anonymous, on
    a public route).
    """
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    authorization = [v for k, v in headers if k.lower() == b"authorization"]
    caller: Caller | None = None
    if len(authorization) > 1:
        raise Unauthorized(
            f"{len(authorization)} Authorization headers were sent; send one", headers=_CHALLENGE
        )
    if authorization or not public:
        value = authorization[0].decode("latin-1") if authorization else None
        caller = caller_of(keys.principal_for(value))
    scope["headers"] = [(k, v) for k, v in headers if k.lower() not in _WITHHELD]
    scope[SCOPE_KEY] = caller
    return caller
