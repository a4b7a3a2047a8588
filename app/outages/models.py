"""Outages and their timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UtcDateTime


class Outage(Base):
    """One detected outage of one rule on one scope, stamped at every transition.

    `active_key` is `rule_id:scope_level:scope_id` while the outage is not closed and NULL
    afterwards; its unique constraint is what makes "one rule + scope never has two open
    outages" hold even when two detectors race.
    """

    __tablename__ = "outages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="RESTRICT"), index=True)
    rule_version: Mapped[int] = mapped_column(Integer)
    rule_name: Mapped[str] = mapped_column(String(128))
    scope_level: Mapped[str] = mapped_column(String(32))
    scope_id: Mapped[str] = mapped_column(String(128), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    active_key: Mapped[str | None] = mapped_column(String(320), unique=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("outages.id"), index=True)
    is_parent: Mapped[bool] = mapped_column(Boolean, default=False)
    public_token: Mapped[str] = mapped_column(String(64), unique=True)

    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    suspected_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    identified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    monitoring_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    cause: Mapped[str | None] = mapped_column(Text)
    eta: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_update_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_contact_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    update_sequence: Mapped[int] = mapped_column(Integer, default=0)
    survey_planned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    affected_customers: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TimelineEntry(Base):
    """Something that happened to an outage: a transition, an update, a note.

    A transition's entry also holds the outage event it causes (`event`) until that event is
    on Kafka (`published_at`): the transactional outbox that makes a crash between the
    database commit and the publish lose nothing.
    """

    __tablename__ = "outage_timeline"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outage_id: Mapped[str] = mapped_column(ForeignKey("outages.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    message: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    event: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
