"""What the NOC sends and sees of one outage: updates, resolutions, the detail with notices."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

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
