"""Backtest a rule: replay recorded telemetry through the engine, count who would have heard.

The engine runs exactly as live (same code, same timers, event time); nothing is stored and
nobody is notified. Customers are counted from today's inventory for each outage the rule
would have opened (a suspected outage that never opened would have told no one).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.detection.backtest import replay
from app.detection.telemetry import Telemetry
from app.domain.contacts import Contact
from app.inventory.topology import load_topology
from app.notifications.recipients import affected_customers
from app.rules.schemas import AnyRule, RuleDefinition, to_spec
from app.rules.service import get_rule, parse_definition
from app.settings import Settings

MAX_INLINE_EVENTS = 200_000


class BacktestIn(BaseModel):
    """What to replay: events in the body, or a time range of the telemetry topic."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rule: RuleDefinition | None = Field(
        default=None, description="Try this definition instead of the stored one."
    )
    events: list[dict[str, Any]] | None = Field(
        default=None, max_length=MAX_INLINE_EVENTS, description="Telemetry messages (v1 or VES)."
    )
    contacts: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_INLINE_EVENTS)
    start: AwareDatetime | None = Field(default=None, alias="from")
    end: AwareDatetime | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _one_source(self) -> BacktestIn:
        ranged = self.start is not None or self.end is not None
        if self.events is None and not ranged:
            raise ValueError("give either events or a from/to time range")
        if self.events is not None and ranged:
            raise ValueError("give events or a from/to time range, not both")
        if ranged and (self.start is None or self.end is None):
            raise ValueError("a time range needs both from and to")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("to must be after from")
        return self


class BacktestOutage(BaseModel):
    scope_level: str
    scope_id: str
    started_at: datetime
    suspected_at: datetime | None
    opened_at: datetime | None
    closed_at: datetime | None
    final_state: str
    parent_scope_id: str | None
    is_parent: bool
    customers: int
    details: dict[str, float | int]


class BacktestOut(BaseModel):
    rule_id: int
    rule_name: str
    rule_version: int | None = Field(description="None when a trial definition was replayed.")
    events: int
    contacts: int
    invalid: int
    late: int
    unscoped: int
    truncated: bool
    outages: list[BacktestOutage]
    opened: int
    customers_reached: int


async def run_backtest(
    *,
    session: AsyncSession,
    settings: Settings,
    rule_id: int,
    events: Sequence[Telemetry],
    contacts: Sequence[Contact] = (),
    trial: AnyRule | None = None,
    invalid: int = 0,
    truncated: bool = False,
) -> BacktestOut:
    """Replay `events` through the stored rule (or `trial`) and report its outages."""
    stored = await get_rule(session=session, rule_id=rule_id)
    definition = trial if trial is not None else parse_definition(stored.definition)
    spec = to_spec(stored.id, stored.version, definition)
    topology = await load_topology(session=session)
    result = replay(
        [spec],
        topology,
        events,
        contacts,
        allowed_lateness=settings.allowed_lateness_seconds,
        correlate_min_children=settings.correlate_min_children,
    )
    reached: dict[tuple[str, str], set[str]] = {}
    for outage in result.outages:
        if outage.opened_at is not None and not outage.is_parent:
            recipients = await affected_customers(
                session=session,
                scope_level=outage.scope_level,
                scope_id=outage.scope_id,
                services=spec.services,
            )
            reached[(outage.scope_level, outage.scope_id)] = {r.customer_id for r in recipients}
    outages: list[BacktestOutage] = []
    for outage in result.outages:
        customers = reached.get((outage.scope_level, outage.scope_id), set())
        if outage.is_parent:  # a parent tells the customers of its children, once each
            customers = set().union(
                *(
                    reached.get((o.scope_level, o.scope_id), set())
                    for o in result.outages
                    if o.parent_scope_id == outage.scope_id
                )
            )
        outages.append(
            BacktestOutage(
                scope_level=outage.scope_level,
                scope_id=outage.scope_id,
                started_at=outage.started_at,
                suspected_at=outage.suspected_at,
                opened_at=outage.opened_at,
                closed_at=outage.closed_at,
                final_state=outage.final_state.value,
                parent_scope_id=outage.parent_scope_id,
                is_parent=outage.is_parent,
                customers=len(customers),
                details=outage.details,
            )
        )
    opened = [o for o in outages if o.opened_at is not None]
    return BacktestOut(
        rule_id=stored.id,
        rule_name=definition.name,
        rule_version=None if trial is not None else stored.version,
        events=result.events,
        contacts=len(contacts),
        invalid=invalid,
        late=result.late,
        unscoped=result.unscoped,
        truncated=truncated,
        outages=outages,
        opened=len(opened),
        customers_reached=len(set().union(*reached.values())),
    )
