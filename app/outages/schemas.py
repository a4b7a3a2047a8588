"""Outages as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class OutageOut(BaseModel):
    id: str
    rule_id: int
    rule_name: str
    rule_version: int
    scope_level: str
    scope_id: str
    state: str
    severity: str
    services: list[str]
    parent_id: str | None
    is_parent: bool
    started_at: datetime
    suspected_at: datetime | None
    opened_at: datetime | None
    identified_at: datetime | None
    monitoring_at: datetime | None
    resolved_at: datetime | None
    cancelled_at: datetime | None
    cause: str | None
    eta: datetime | None
    next_update_due: datetime | None
    first_contact_at: datetime | None
    affected_customers: int
    status_url: str


class TimelineOut(BaseModel):
    at: datetime
    kind: str
    state: str
    actor: str
    message: dict[str, Any]


class OutagePage(BaseModel):
    items: list[OutageOut]
    next_cursor: str | None
