"""A customer getting in touch: the reactive signal, and the lead-time figure's other end."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Contact:
    """A customer got in touch (call, chat, ticket, lookup) at `ts` (epoch seconds)."""

    ts: float
    customer_id: str | None = None
    phone: str | None = None
    channel: str = "call"
