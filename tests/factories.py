"""Builders the DB tests share: an inventory, a rule and an open outage in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.inventory.models import Device, TopologyNode
from app.inventory.schemas import InventoryIn
from app.inventory.service import replace_inventory
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState, Transition
from app.outages.service import apply_transition
from app.rules.models import Rule, RuleVersion
from app.rules.schemas import AnyRule, RatioDownRule, rule_definition_json
from app.rules.service import create_rule
from consumers.telemetry import Detector


async def open_outage_on_node_17(
    *,
    session: AsyncSession,
    inventory: dict[str, Any],
    services: Sequence[str],
    at: datetime,
    severity: str = "major",
) -> OutageEvent:
    """Store `inventory`, a `modems-down` ratio_down rule for `services`, and open an outage
    of it on node-17 at `at`; return the outage's event (to plan notices from)."""
    await replace_inventory(session=session, doc=InventoryIn.model_validate(inventory))
    rule = RatioDownRule.model_validate(
        {
            "name": "modems-down",
            "kind": "ratio_down",
            "metric": "cpe.online",
            "threshold": 0.3,
            "clear_threshold": 0.1,
            "services": list(services),
        }
    )
    stored = await create_rule(session=session, rule=rule)
    event = await apply_transition(
        session=session,
        transition=Transition(
            rule_id=stored.id,
            rule_version=1,
            rule_name=stored.name,
            scope_level="node",
            scope_id="node-17",
            to_state=OutageState.OPEN,
            at=at,
            started_at=at,
            severity=severity,
            services=tuple(services),
        ),
        next_update_interval=timedelta(minutes=30),
        clock=lambda: at,
    )
    if event is None:
        raise AssertionError("a fresh outage always yields its event")
    return event


async def seed_modems_and_rule(
    *, session: AsyncSession, nodes: Sequence[str], per_node: int, rule: AnyRule
) -> None:
    """`nodes` under one hub, `per_node` modems (`<node>-cpe-<n>`) on each, and `rule` as rule
    1 — straight into the tables, for tests that run a detector process on them."""
    now = datetime.now(UTC)
    await session.execute(
        insert(TopologyNode),
        [{"id": "north", "level": "region", "parent_id": None}]
        + [{"id": "hub-1", "level": "hub", "parent_id": "north"}]
        + [{"id": node, "level": "node", "parent_id": "hub-1"} for node in nodes],
    )
    await session.execute(
        insert(Device),
        [
            {"id": f"{node}-cpe-{d}", "node_id": node, "services": ["internet"]}
            for node in nodes
            for d in range(per_node)
        ],
    )
    definition = rule_definition_json(rule)
    session.add(
        Rule(
            id=1,
            name=rule.name,
            kind=rule.kind,
            version=1,
            enabled=True,
            definition=definition,
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()
    session.add(
        RuleVersion(rule_id=1, version=1, enabled=True, definition=definition, created_at=now)
    )


@asynccontextmanager
async def detector_running(detector: Detector) -> AsyncIterator[asyncio.Task[None]]:
    """Run `detector` on this event loop while the block lasts; then stop it and wait for it."""
    stop = asyncio.Event()
    task = asyncio.create_task(detector.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
