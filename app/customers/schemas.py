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
