"""Outages as the API shows them, and what the NOC sends to change them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.inventory.schemas import Language
from app.outages.update_texts import UpdateTemplate


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


class NoticeCount(BaseModel):
    stage: str
    channel: str
    state: str
    count: int


class OutageDetail(OutageOut):
    timeline: list[TimelineOut]
    notices: list[NoticeCount]


class OutagePage(BaseModel):
    items: list[OutageOut]
    next_cursor: str | None


class UpdateIn(BaseModel):
    """An update for the customers of an outage: words per language or a ready-made text."""

    model_config = ConfigDict(extra="forbid")

    messages: dict[Language, Annotated[str, Field(min_length=1, max_length=240)]] = Field(
        default_factory=dict, description="Per language; languages left out get the English."
    )
    template: UpdateTemplate | None = None
    cause: str | None = Field(default=None, max_length=240)
    eta: AwareDatetime | None = None
    state: Literal["identified", "monitoring"] | None = None

    @model_validator(mode="after")
    def _says_something(self) -> UpdateIn:
        if self.messages and self.template is not None:
            raise ValueError("give messages or a template, not both")
        if self.messages and Language.EN not in self.messages:
            raise ValueError("messages need an English text (the fallback for other languages)")
        return self


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(default=None, max_length=1000, description="For the timeline.")


class NocResult(BaseModel):
    outage: OutageOut
    notices_planned: int
