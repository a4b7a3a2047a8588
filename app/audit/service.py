"""Record who changed what, with the state before and after; read the log back.

Entries are written in the transaction of the change they describe, so a change and its
entry are committed together or not at all. Snapshots hold definitions, states and counts,
never customer data; as a second line of defence every string in an entry has phone numbers
and e-mail addresses replaced by a placeholder before it is stored.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.clock import Clock, utc_now
from app.logs import redact_text

MAX_LIMIT = 1000


class Entity(StrEnum):
    """What an audit entry is about."""

    RULE = "rule"
    OUTAGE = "outage"
    INVENTORY = "inventory"
    MAINTENANCE = "maintenance"
    TOKEN = "token"  # noqa: S105 - the entity's name, not a secret


def _clean(value: Any) -> Any:
    """JSON-ready copy of `value` with personal data redacted from every string."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item) for item in value]
    return value


async def record(
    *,
    session: AsyncSession,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    clock: Clock = utc_now,
) -> AuditEntry:
    """Add one entry to the log, in the caller's transaction."""
    entry = AuditEntry(
        at=clock(),
        actor=redact_text(actor),
        action=action,
        entity=str(entity),
        entity_id=redact_text(entity_id),
        before=_clean(before) if before is not None else None,
        after=_clean(after) if after is not None else None,
    )
    session.add(entry)
    await session.flush()
    return entry


async def list_entries(
    *,
    session: AsyncSession,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Entries matching every given filter, newest first, at most `limit` (up to 1000)."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if entity is not None:
        query = query.where(AuditEntry.entity == str(entity))
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    return list(await session.scalars(query.limit(max(1, min(limit, MAX_LIMIT)))))
