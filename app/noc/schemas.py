"""What the NOC sends and sees of one outage: updates, resolutions, the detail with notices."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.inventory.schemas import Language
from app.outages.schemas import OutageOut, TimelineOut
from app.outages.update_texts import UpdateTemplate


class NoticeCount(BaseModel):
    stage: str
    channel: str
    state: str
    count: int


class OutageDetail(OutageOut):
    timeline: list[TimelineOut]
    notices: list[NoticeCount]


# An internal note: for the NOC's timeline and the audit log, never shown to a customer.
Note = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=2000,
        description="Internal: kept on the outage's timeline (GET /v1/outages/{id}) and in the "
        "audit log; never in a notice or on a public page.",
    ),
]


class AcknowledgeIn(BaseModel):
    """Taking an outage on, with an optional internal note."""

    model_config = ConfigDict(extra="forbid")

    note: Note = None


class UpdateIn(BaseModel):
    """An update for the customers of an outage: words per language or a ready-made text,
    and an internal note that stays with the NOC."""

    model_config = ConfigDict(extra="forbid")

    messages: dict[Language, Annotated[str, Field(min_length=1, max_length=240)]] = Field(
        default_factory=dict,
        description="Customer-facing: the update's words per language. Every language of the "
        "customers told of the outage needs one, unless `fallback_language` names the one "
        "they get instead.",
    )
    fallback_language: Language | None = Field(
        default=None,
        description="The language of `messages` that customers whose language is not in "
        "`messages` read. Unset: a missing language is refused (422).",
    )
    template: UpdateTemplate | None = None
    cause: str | None = Field(
        default=None,
        max_length=240,
        description="Customer-facing: shown in notices, on the status page and in lookups.",
    )
    eta: AwareDatetime | None = None
    state: Literal["identified", "monitoring"] | None = None
    note: Note = None

    @model_validator(mode="after")
    def _says_something(self) -> UpdateIn:
        if self.messages and self.template is not None:
            raise ValueError("give messages or a template, not both")
        return self

    @field_validator("fallback_language")
    @classmethod
    def _fallback_is_given(cls, language: Language | None, info: ValidationInfo) -> Language | None:
        if language is not None and language not in info.data.get("messages", {}):
            raise ValueError("must be one of the languages of messages")
        return language


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(
        default=None,
        max_length=1000,
        description="Internal: for the timeline and the audit log; customers never see it.",
    )


class NocResult(BaseModel):
    outage: OutageOut
    notices_planned: int
