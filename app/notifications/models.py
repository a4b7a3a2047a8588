"""The notification outbox: one row per customer x outage x stage x sequence x channel.

`sequence` numbers the notices of a stage that can repeat (the NOC's updates and the
automatic "still working on it" ones); it is 0 for the stages that happen once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UtcDateTime


class OutboxRow(Base):
    """A notice to send, or sent; its unique key is why a crash can never send it twice."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        UniqueConstraint("customer_id", "outage_id", "stage", "sequence", "channel"),
        UniqueConstraint("customer_id", "maintenance_id", "stage", "channel"),
        Index("ix_notification_outbox_due", "state", "priority", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    outage_id: Mapped[str | None] = mapped_column(
        ForeignKey("outages.id", ondelete="CASCADE"), index=True
    )
    maintenance_id: Mapped[int | None] = mapped_column(
        ForeignKey("maintenance_windows.id", ondelete="CASCADE"), index=True
    )
    stage: Mapped[str] = mapped_column(String(32))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16))
    # The customer's own affected services (the outage's that their devices in its scope
    # carry), as the planner found them; the notice names these. Copied from the `detected`
    # row to the notices that follow it. None on rows planned before this column: those name
    # no service ("your service"), never the outage's whole list.
    services: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(128), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivery_status: Mapped[str | None] = mapped_column(String(32))
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SurveyResponse(Base):
    """A customer's 1-5 answer to "How did we do?" after an outage."""

    __tablename__ = "survey_responses"
    __table_args__ = (UniqueConstraint("customer_id", "outage_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    outage_id: Mapped[str] = mapped_column(ForeignKey("outages.id", ondelete="CASCADE"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
