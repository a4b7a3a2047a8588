"""A customer's consent as the API shows and records it: a preference told to the contact
centre is the customer's own choice (source `api`), like a STOP or an unsubscribe link."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.schemas import ConsentRecord, CustomerConsent
from app.exceptions import NotFoundError
from app.inventory.consent import Source, consent_history, opt_outs_of, record_consent
from app.inventory.models import Customer


async def customer_consent(*, session: AsyncSession, customer_id: str) -> CustomerConsent:
    """The customer's effective opt-outs, the inventory's list and every consent record."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFoundError("no such customer")
    listed = list(customer.opt_outs or ())
    effective = await opt_outs_of(session=session, listed={customer_id: listed})
    history = await consent_history(session=session, customer_id=customer_id)
    return CustomerConsent(
        customer_id=customer_id,
        opted_out=sorted(effective[customer_id]),
        listed_by_inventory=sorted(listed),
        history=[
            ConsentRecord(
                channel=c.channel, opted_out=c.opted_out, source=c.source, actor=c.actor, at=c.at
            )
            for c in history
        ],
    )


async def set_consent(
    *,
    session: AsyncSession,
    customer_id: str,
    channel: str,
    opted_out: bool,
    actor: str,
    now: datetime,
) -> CustomerConsent:
    """Record the customer's choice for one channel, as told to `actor`; answer the result."""
    if await session.get(Customer, customer_id) is None:
        raise NotFoundError("no such customer")
    record_consent(
        session=session,
        customer_id=customer_id,
        channel=channel,
        opted_out=opted_out,
        source=Source.API,
        at=now,
        actor=actor,
    )
    return await customer_consent(session=session, customer_id=customer_id)
