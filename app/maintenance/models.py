"""Planned maintenance windows: detection is suppressed on their scope while they last."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UtcDateTime


class Maintenance(Base):
    """A window of planned work; customers under its scope hear before, at start and at end."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope_id: Mapped[str] = mapped_column(
        ForeignKey("topology_nodes.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    reason: Mapped[str] = mapped_column(Text)  # public: in the notices and on /m/{token}
    note: Mapped[str | None] = mapped_column(Text)  # internal: the NOC's only, never rendered
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    public_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    # When each stage's notices were planned (None: not yet): the planner's claim marks.
    scheduled_planned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_planned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_planned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
