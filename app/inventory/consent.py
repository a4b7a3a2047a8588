"""Consent: which channels may carry notices to a customer, and who said so.

Two voices decide, and an inventory import can only ever speak for the second:

- **The customer's own**: STOP or START by SMS, the one-click unsubscribe link, a preference
  recorded through the API (by the contact centre, on their word). Each is a `Consent`
  record; for each customer × channel the latest of them decides. No import touches them,
  and they outlive the customer row (a customer removed by a replacement and added back
  keeps their STOP).
- **The operator's**: the channels the inventory lists in a customer's `opt_outs`, which
  apply while they are listed. An import that newly lists one also records it (source
  `inventory`), so the history says when the operator gave it; those records are history
  and do not decide anything.

A channel is opted out when the inventory lists it or the customer's latest own record opts
out of it. So an import may add an opt-out but never remove the customer's own, and a START
opts back in of what the customer stopped, not of what the operator listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.inventory.models import Consent, Customer

_CHUNK = 2000


class Source(StrEnum):
    """How a consent record was given."""

    SMS_KEYWORD = "sms_keyword"
    UNSUBSCRIBE_LINK = "unsubscribe_link"
    API = "api"
    INVENTORY = "inventory"
    # Opt-outs stored before consent was kept apart: nobody can tell a STOP from an operator's
    # listing there, so they are kept as the customer's own (an import never undoes them).
    MIGRATED = "migrated"


OWN_SOURCES = frozenset({Source.SMS_KEYWORD, Source.UNSUBSCRIBE_LINK, Source.API, Source.MIGRATED})


def record_consent(
    *,
    session: AsyncSession,
    customer_id: str,
    channel: str,
    opted_out: bool,
    source: Source,
    at: datetime,
    actor: str | None = None,
) -> None:
    """Add one consent record to the session's transaction (stored when it commits)."""
    session.add(
        Consent(
            customer_id=customer_id,
            channel=channel,
            opted_out=opted_out,
            source=source.value,
            actor=actor,
            at=at,
        )
    )


async def own_choices(
    *, session: AsyncSession, customer_ids: Iterable[str]
) -> dict[str, dict[str, bool]]:
    """Customer → channel → opted out, from the latest of the customer's own records."""
    ids = sorted(set(customer_ids))
    choices: dict[str, dict[str, bool]] = {}
    for start in range(0, len(ids), _CHUNK):
        latest = (
            select(func.max(Consent.id))
            .where(
                Consent.customer_id.in_(ids[start : start + _CHUNK]),
                Consent.source.in_(sorted(OWN_SOURCES)),
            )
            .group_by(Consent.customer_id, Consent.channel)
        )
        rows = await session.execute(
            select(Consent.customer_id, Consent.channel, Consent.opted_out).where(
                Consent.id.in_(latest)
            )
        )
        for customer_id, channel, opted_out in rows:
            choices.setdefault(customer_id, {})[channel] = opted_out
    return choices


def effective_opt_outs(listed: Iterable[str] | None, own: Mapping[str, bool]) -> frozenset[str]:
    """The channels listed by the inventory plus those the customer's own latest choice stops."""
    return frozenset(listed or ()) | {channel for channel, out in own.items() if out}


async def opt_outs_of(
    *, session: AsyncSession, listed: Mapping[str, Iterable[str] | None]
) -> dict[str, frozenset[str]]:
    """The effective opt-outs of each customer, given what the inventory lists for them."""
    own = await own_choices(session=session, customer_ids=listed)
    return {c: effective_opt_outs(channels, own.get(c, {})) for c, channels in listed.items()}


async def record_listed_opt_outs(
    *, session: AsyncSession, listed: Mapping[str, Sequence[str]], at: datetime
) -> int:
    """Record, as the operator's, each opt-out the inventory now lists that the stored
    inventory did not; run before the customers are written. Return how many."""
    wanted = {c: set(channels) for c, channels in listed.items() if channels}
    ids = sorted(wanted)
    stored: dict[str, set[str]] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = await session.execute(
            select(Customer.id, Customer.opt_outs).where(
                Customer.id.in_(ids[start : start + _CHUNK])
            )
        )
        stored.update({c: set(opt_outs or ()) for c, opt_outs in rows})
    records = [
        {
            "customer_id": c,
            "channel": channel,
            "opted_out": True,
            "source": Source.INVENTORY.value,
            "actor": None,
            "at": at,
        }
        for c in ids
        for channel in sorted(wanted[c] - stored.get(c, set()))
    ]
    table = cast(Table, Consent.__table__)
    for start in range(0, len(records), _CHUNK):
        await session.execute(insert(table), records[start : start + _CHUNK])
    return len(records)


async def consent_history(*, session: AsyncSession, customer_id: str) -> list[Consent]:
    """Every consent record of the customer, oldest first."""
    return list(
        await session.scalars(
            select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.id)
        )
    )
