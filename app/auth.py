"""Bearer-token authentication: who is calling, and with which role.

Tokens are held only as SHA-256 digests and compared in constant time; the clear token is
never kept after start-up.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from app.exceptions import ForewarnError
from app.settings import ApiToken, Role


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


class TokenRegistry:
    """The known tokens, by digest."""

    def __init__(self, tokens: Iterable[ApiToken]) -> None:
        self._by_digest = {
            token_digest(t.token.get_secret_value()): Principal(t.name, t.role) for t in tokens
        }

    def authenticate(self, authorization: str | None) -> Principal:
        """Return the caller an `Authorization: Bearer …` header names, or raise 401."""
        if not authorization:
            raise UnauthenticatedError("missing bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("the Authorization header must be 'Bearer <token>'")
        digest = token_digest(token.strip())
        found: Principal | None = None
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                found = principal
        if found is None:
            raise UnauthenticatedError("unknown token")
        return found
