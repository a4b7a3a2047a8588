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
    reason: str = Field(min_length=1, max_length=2000)
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


class MaintenanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    scope: str
    start: datetime
    end: datetime
    reason: str
    services: list[str]
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None
