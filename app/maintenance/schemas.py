"""Maintenance windows as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class MaintenanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: str = Field(min_length=1, max_length=128, description="A region, hub or node id.")
    start: AwareDatetime
    end: AwareDatetime
    reason: str = Field(
        min_length=1,
        max_length=2000,
        description="Customer-facing: named in the notices and on the window's public page.",
    )
    note: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="Internal: for the NOC and the audit log; never in a notice or on a page.",
    )
    services: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=32,
        description="Services the work interrupts; customers with them are told. Empty: all.",
    )

    @model_validator(mode="after")
    def _end_after_start(self) -> MaintenanceIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class MaintenancePatch(BaseModel):
    """A change to a window's words: its public reason, its internal note (null clears it)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="Customer-facing: named in the notices still to come and on the page.",
    )
    note: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="Internal: for the NOC and the audit log; never in a notice or on a page.",
    )

    @model_validator(mode="after")
    def _changes_something(self) -> MaintenancePatch:
        if not self.model_fields_set:
            raise ValueError("give reason or note")
        if "reason" in self.model_fields_set and self.reason is None:
            raise ValueError("reason cannot be removed; the notices name it")
        return self


class MaintenanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    scope: str
    start: datetime
    end: datetime
    reason: str
    note: str | None
    services: list[str]
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None
