"""Bearer-token authentication: who is calling, and with which role.

Tokens are held only as SHA-256 digests. The settings' tokens (`FOREWARN_API_TOKENS`) are
compared in memory, in constant time; any other token is looked up by digest among the stored
ones (`app/tokens`). A stored token found is cached for `CACHE_SECONDS`, so a revocation
reaches every API process within that time (at once on the process that revoked it).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from app.exceptions import ForewarnError
from app.settings import ApiToken, Role

CACHE_SECONDS = 30.0


class UnauthenticatedError(ForewarnError):
    http_status = 401


class ForbiddenError(ForewarnError):
    http_status = 403


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a token's name and role."""

    name: str
    role: Role

    def require(self, role: Role) -> None:
        """Raise `ForbiddenError` unless this caller's role includes `role`."""
        if self.role.rank < role.rank:
            raise ForbiddenError(f"this needs the {role.value} role; the token has {self.role}")


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


Lookup = Callable[[bytes], Awaitable[Principal | None]]


class TokenRegistry:
    """The known tokens: the settings' by digest in memory, stored ones through `lookup`."""

    def __init__(
        self,
        tokens: Iterable[ApiToken],
        *,
        lookup: Lookup | None = None,
        cache_seconds: float = CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._by_digest = {
            token_digest(t.token.get_secret_value()): Principal(t.name, t.role) for t in tokens
        }
        self._lookup = lookup
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[bytes, tuple[Principal, float]] = {}

    @property
    def names(self) -> frozenset[str]:
        """The names of the settings' tokens."""
        return frozenset(principal.name for principal in self._by_digest.values())

    def _from_settings(self, digest: bytes) -> Principal | None:
        found: Principal | None = None
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                found = principal
        return found

    async def _stored(self, digest: bytes) -> Principal | None:
        if self._lookup is None:
            return None
        now = self._monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal = await self._lookup(digest)
        if principal is None:
            self._cache.pop(digest, None)
        else:
            self._cache[digest] = (principal, now + self._cache_seconds)
        return principal

    async def authenticate(self, authorization: str | None) -> Principal:
        """Return the caller an `Authorization: Bearer …` header names, or raise 401."""
        if not authorization:
            raise UnauthenticatedError("missing bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("the Authorization header must be 'Bearer <token>'")
        digest = token_digest(token.strip())
        found = self._from_settings(digest) or await self._stored(digest)
        if found is None:
            raise UnauthenticatedError("unknown token")
        return found

    def forget(self, name: str) -> None:
        """Drop the cached stored token of this name (after revoking it here)."""
        for digest in [d for d, (principal, _) in self._cache.items() if principal.name == name]:
            del self._cache[digest]
