"""A customer's outages as the lookup API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class CustomerOutage(BaseModel):
    id: str
    state: str
    services: list[str]
    started_at: datetime
    opened_at: datetime | None
    eta: datetime | None
    next_update_due: datetime | None
    cause: str | None
    status_url: str


class CustomerOutages(BaseModel):
    customer_id: str
    affected: bool
    outages: list[CustomerOutage]


class ConsentIn(BaseModel):
    """A choice the customer made and told the contact centre: stop this channel, or resume."""

    opted_out: bool


class ConsentRecord(BaseModel):
    channel: str
    opted_out: bool
    source: str
    actor: str | None
    at: datetime


class CustomerConsent(BaseModel):
    customer_id: str
    opted_out: list[str]
    listed_by_inventory: list[str]
    history: list[ConsentRecord]
