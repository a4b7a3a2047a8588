"""What a customer is effectively opted out of, as the planner sees it, for assertions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.inventory.consent import opt_outs_of
from app.inventory.models import Customer


async def opt_outs(
    sessions: async_sessionmaker[AsyncSession], customer_id: str = "c-1"
) -> list[str]:
    """The channels the customer is opted out of: their own consent plus the inventory's list."""
    async with sessions() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        effective = await opt_outs_of(session=session, listed={customer_id: customer.opt_outs})
    return sorted(effective[customer_id])
