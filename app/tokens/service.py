"""Stored API tokens: create, list, revoke, look up by digest; seed the settings' tokens.

A token is `fw_` and 32 random bytes (URL-safe base64). Only its SHA-256 digest is stored;
the clear token is returned once, by `create_token`. The tokens of `FOREWARN_API_TOKENS` are
seeded into the same table (digest only) so every token shows in one list, but they keep
authenticating from the settings in memory: `find_token` never answers for a seeded row, and
one can be revoked only by removing it from the settings.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import Entity, record
from app.auth import Lookup, Principal, token_digest
from app.clock import Clock, utc_now
from app.db import transaction
from app.exceptions import ConflictError, InvalidInputError, NotFoundError
from app.settings import ApiToken, Role
from app.tokens.models import StoredToken
from app.tokens.schemas import NAME_PATTERN, TokenOut

log = structlog.get_logger("forewarn.tokens")

TOKEN_PREFIX = "fw_"  # noqa: S105 - a prefix that makes a leaked token recognisable
# `created_by` of seeded rows; no token name contains a colon, so no actor can be this.
SEEDED_BY = "env:FOREWARN_API_TOKENS"
LAST_USED_RESOLUTION = timedelta(minutes=1)

_NAME = re.compile(NAME_PATTERN)


def new_token() -> str:
    """A fresh token: `fw_` and 32 random bytes."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def to_out(row: StoredToken) -> TokenOut:
    return TokenOut(
        name=row.name,
        role=Role(row.role),
        source="settings" if row.created_by == SEEDED_BY else "stored",
        created_at=row.created_at,
        created_by=row.created_by,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _audit_view(row: StoredToken) -> dict[str, str]:
    return {"name": row.name, "role": row.role}


async def _by_name(session: AsyncSession, name: str, *, lock: bool = False) -> StoredToken | None:
    query = select(StoredToken).where(StoredToken.name == name)
    if lock:
        query = query.with_for_update()
    row: StoredToken | None = await session.scalar(query)
    return row


async def get_token(*, session: AsyncSession, name: str) -> StoredToken:
    row = await _by_name(session, name)
    if row is None:
        raise NotFoundError(f"token {name!r} does not exist")
    return row


async def create_token(
    *, session: AsyncSession, name: str, role: Role, actor: str, clock: Clock = utc_now
) -> str:
    """Store a new token for `name` and return it in clear, the only time it is seen."""
    if not _NAME.fullmatch(name):
        reason = "a letter, then up to 63 letters, digits, '.', '_' or '-'"
        raise InvalidInputError([{"field": "name", "reason": reason}])
    if await _by_name(session, name) is not None:
        raise ConflictError(f"a token named {name!r} already exists")
    token = new_token()
    row = StoredToken(
        name=name,
        role=role.value,
        digest=token_digest(token),
        created_at=clock(),
        created_by=actor,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise ConflictError(f"a token named {name!r} already exists") from None
    await record(
        session=session,
        actor=actor,
        action="create",
        entity=Entity.TOKEN,
        entity_id=name,
        before=None,
        after=_audit_view(row),
        clock=clock,
    )
    return token


async def revoke_token(
    *, session: AsyncSession, name: str, actor: str, clock: Clock = utc_now
) -> StoredToken:
    """Revoke a stored token (it stays listed, marked revoked); again is a no-op."""
    row = await _by_name(session, name, lock=True)
    if row is None:
        raise NotFoundError(f"token {name!r} does not exist")
    if row.created_by == SEEDED_BY:
        raise ConflictError(
            f"token {name!r} comes from FOREWARN_API_TOKENS; remove it there and restart the API"
        )
    if row.revoked_at is None:
        row.revoked_at = clock()
        await session.flush()
        await record(
            session=session,
            actor=actor,
            action="revoke",
            entity=Entity.TOKEN,
            entity_id=name,
            before=_audit_view(row),
            after=None,
            clock=clock,
        )
    return row


async def list_tokens(*, session: AsyncSession) -> list[StoredToken]:
    """Every token, seeded and stored, revoked ones included, by name."""
    return list(await session.scalars(select(StoredToken).order_by(StoredToken.name)))


async def seed_tokens(
    *, session: AsyncSession, tokens: Iterable[ApiToken], clock: Clock = utc_now
) -> None:
    """Upsert the settings' tokens by name (digest only); mark seeded ones no longer set revoked.

    Safe to run from several API replicas at once. The settings win: a stored token with the
    name of a settings token is replaced by it (and a warning logged).
    """
    tokens = list({token.name: token for token in tokens}.values())  # a repeated name: the last
    now = clock()
    names = {token.name for token in tokens}
    if names:
        taken = await session.scalars(
            select(StoredToken.name).where(
                StoredToken.name.in_(names), StoredToken.created_by != SEEDED_BY
            )
        )
        for name in taken:
            log.warning("a stored token is replaced by the FOREWARN_API_TOKENS one", name=name)
        dialect = session.get_bind().dialect.name
        insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert_(StoredToken).values(
            [
                {
                    "name": token.name,
                    "role": token.role.value,
                    "digest": token_digest(token.token.get_secret_value()),
                    "created_at": now,
                    "created_by": SEEDED_BY,
                }
                for token in tokens
            ]
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[StoredToken.name],
                set_={
                    "role": statement.excluded.role,
                    "digest": statement.excluded.digest,
                    "created_by": SEEDED_BY,
                    "revoked_at": None,
                },
            )
        )
    gone = update(StoredToken).where(
        StoredToken.created_by == SEEDED_BY, StoredToken.revoked_at.is_(None)
    )
    if names:
        gone = gone.where(StoredToken.name.not_in(names))
    await session.execute(gone.values(revoked_at=now))


async def find_token(
    *, session: AsyncSession, digest: bytes, clock: Clock = utc_now
) -> StoredToken | None:
    """The live stored token with this digest (None if unknown, revoked or seeded).

    Notes its use in `last_used_at`, at most once a minute.
    """
    row: StoredToken | None = await session.scalar(
        select(StoredToken).where(
            StoredToken.digest == digest,
            StoredToken.revoked_at.is_(None),
            StoredToken.created_by != SEEDED_BY,
        )
    )
    if row is None:
        return None
    now = clock()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
        await session.flush()
    return row


def stored_token_lookup(
    sessions: async_sessionmaker[AsyncSession], *, clock: Clock = utc_now
) -> Lookup:
    """The `TokenRegistry` lookup of stored tokens: one short transaction per cache miss."""

    async def lookup(digest: bytes) -> Principal | None:
        async with transaction(sessions) as session:
            row = await find_token(session=session, digest=digest, clock=clock)
            return None if row is None else Principal(row.name, Role(row.role))

    return lookup
