"""The update previews of the API (`app.noc.preview.UpdatePreviewer`): render and measure."""

from __future__ import annotations

from app.noc.preview import RenderedDraft, UpdateDraft
from notifiers.render import NoticeFacts, Renderer
from notifiers.segments import sms_length


class RenderedUpdatePreviewer:
    """Render a draft update exactly as the dispatcher would, and measure its SMS."""

    def __init__(self, renderer: Renderer | None = None) -> None:
        self._renderer = renderer or Renderer()

    def preview(self, draft: UpdateDraft, *, max_sms_segments: int) -> RenderedDraft:
        rendered = self._renderer.render(
            NoticeFacts(
                stage="update",
                language=draft.language,
                timezone=draft.timezone,
                customer_name=draft.customer_name,
                services=draft.services,
                started_at=draft.started_at,
                resolved_at=None,
                next_update_due=draft.next_update_due,
                eta=draft.eta,
                status_url=draft.status_url,
                message=draft.message,
                cause=draft.cause,
            ),
            max_sms_segments=max_sms_segments,
        )
        length = sms_length(rendered.sms)
        return RenderedDraft(
            sms=rendered.sms,
            sms_segments=length.segments,
            sms_encoding=length.encoding,
            subject=rendered.subject,
        )
