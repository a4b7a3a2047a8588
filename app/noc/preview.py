"""Preview an update before it is posted: what each language's customers would read.

Rendering lives in `notifiers/`, which the core does not import: `UpdatePreviewer` is the port,
`notifiers.preview.RenderedUpdatePreviewer` the implementation `create_app` is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel

# The preview is rendered for a customer with a 10-letter first name, the longest the
# realistic segment tests measure (a longer name only changes the full form).
PREVIEW_NAME = "Maximilian"


@dataclass(frozen=True, slots=True)
class UpdateDraft:
    """An update not posted yet, as one language's customers would be told it."""

    language: str
    timezone: str
    customer_name: str
    services: tuple[str, ...]
    started_at: datetime
    next_update_due: datetime
    eta: datetime | None
    cause: str | None
    message: str
    status_url: str


@dataclass(frozen=True, slots=True)
class RenderedDraft:
    sms: str
    sms_segments: int
    sms_encoding: Literal["GSM-7", "UCS-2"]
    subject: str


class UpdatePreviewer(Protocol):
    """Render a draft as it would be sent, within `max_sms_segments`; sends nothing."""

    def preview(self, draft: UpdateDraft, *, max_sms_segments: int) -> RenderedDraft: ...


class LanguagePreview(BaseModel):
    language: str
    sms: str
    sms_segments: int
    sms_encoding: Literal["GSM-7", "UCS-2"]
    subject: str


class UpdatePreview(BaseModel):
    max_sms_segments: int
    timezone: str
    languages: list[LanguagePreview]
