"""Builders the tests share: rules, customers and inventories as the API takes them, and the
rows and outages the DB tests start from. Each returns a fresh value; overrides replace."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import Clock, utc_now
from app.inventory.models import Device, TopologyNode
from app.inventory.schemas import InventoryIn
from app.inventory.service import replace_inventory
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState, Transition
from app.outages.models import Outage
from app.outages.service import apply_transitions
from app.rules.models import Rule, RuleVersion
from app.rules.schemas import AnyRule, RatioDownRule, rule_definition_json
from app.rules.service import create_rule
from consumers.telemetry import Detector
from notifiers.render import NoticeFacts

RULES: dict[str, dict[str, Any]] = {
    "ratio_down": {
        "name": "modems-down",
        "kind": "ratio_down",
        "metric": "cpe.online",
        "threshold": 0.3,
        "clear_threshold": 0.1,
    },
    "absence": {
        "name": "modems-silent",
        "kind": "absence",
        "metric": "cpe.heartbeat",
        "scope": "node",
        "expected_interval": "60s",
        "missed_intervals": 3,
        "threshold": 0.5,
        "clear_threshold": 0.2,
        "min_devices": 10,
        "for": "0s",
        "confirm_after": "60s",
        "severity": "major",
        "services": ["internet", "tv", "voice"],
    },
    "alarm": {
        "name": "olt-port-los",
        "kind": "alarm",
        "metric": "olt.los",
        "scope": "node",
        "match": {"severity": "critical"},
        "clear_metric": "olt.los_clear",
        "severity": "critical",
        "services": ["internet", "tv", "voice"],
    },
    "threshold": {
        "name": "tv-signal-poor",
        "kind": "threshold",
        "metric": "stb.snr_db",
        "scope": "node",
        "aggregate": "p50",
        "window": "5m",
        "op": "<",
        "threshold": 25,
        "clear_threshold": 28,
        "min_samples": 20,
        "for": "2m",
        "confirm_after": "0s",
        "severity": "minor",
        "services": ["tv"],
    },
    "contacts_spike": {
        "name": "calls-spike",
        "kind": "contacts_spike",
        "scope": "node",
        "window": "10m",
        "factor": 4,
        "min_contacts": 5,
        "severity": "major",
        "services": ["internet"],
    },
}


async def apply_transition(
    *,
    session: AsyncSession,
    transition: Transition,
    next_update_interval: timedelta = timedelta(minutes=30),
    clock: Clock = utc_now,
) -> OutageEvent | None:
    """Persist one transition as the detector does (`apply_transitions`); return its event."""
    [event] = await apply_transitions(
        session=session,
        transitions=[transition],
        next_update_interval=next_update_interval,
        clock=clock,
    )
    return event


def rule_row(
    *,
    name: str,
    at: datetime,
    rule_id: int = 1,
    kind: str = "ratio_down",
    definition: dict[str, Any] | None = None,
) -> Rule:
    """A stored rule at version 1, enabled, for tests that write rows straight to the database."""
    return Rule(
        id=rule_id,
        name=name,
        kind=kind,
        version=1,
        enabled=True,
        definition=definition or {},
        created_at=at,
        updated_at=at,
    )


def outage_row(
    outage_id: str,
    *,
    level: str,
    scope: str,
    at: datetime,
    rule_id: int = 1,
    rule_name: str = "r",
    services: Sequence[str] = ("internet",),
) -> Outage:
    """An open outage of rule `rule_id` on `level:scope`, opened at `at`, told to nobody yet."""
    return Outage(
        id=outage_id,
        rule_id=rule_id,
        rule_version=1,
        rule_name=rule_name,
        scope_level=level,
        scope_id=scope,
        state="open",
        severity="major",
        services=list(services),
        active_key=f"{rule_id}:{level}:{scope}",
        public_token=f"token-{outage_id}",
        started_at=at,
        opened_at=at,
        details={},
        affected_customers=0,
    )


def make_rule(kind: str = "ratio_down", **fields: Any) -> dict[str, Any]:
    """A rule of `kind` as the API takes it, with `fields` added or replaced (`for_` is `for`).

    The ratio_down one is `modems-down`: 30 % of a scope's modems offline, clear at 10 %."""
    if "for_" in fields:
        fields["for"] = fields.pop("for_")
    return {**copy.deepcopy(RULES[kind]), **fields}


def node_rule(**fields: Any) -> dict[str, Any]:
    """`modems-down-on-node`: the ratio_down rule per node, 10 modems or more, held 30 s."""
    base = {"scope": "node", "min_devices": 10, "for": "30s", "confirm_after": "0s"}
    extra = {"severity": "major", "services": ["internet"]}
    return make_rule(**{"name": "modems-down-on-node", **base, **extra, **fields})


def make_customer(i: int, **changes: Any) -> dict[str, Any]:
    """Customer `c-<i>` with device `cpe-<i>`, on SMS and e-mail, in one of five languages."""
    base = {
        "id": f"c-{i}",
        "name": f"Customer {i}",
        "phone": f"+49151{10000000 + i}",
        "email": f"customer{i}@example.com",
        "language": ["en", "de", "es", "vi", "hi"][i % 5],
        "timezone": "Europe/Berlin",
        "channels": ["sms", "email"],
        "devices": [f"cpe-{i}"],
    }
    return {**base, **changes}


def make_inventory(
    customers: Sequence[dict[str, Any]], services: Sequence[str] = ("internet", "tv")
) -> dict[str, Any]:
    """north > hub-1 > node-17, each customer's first device on node-17 with `services`."""
    return {
        "nodes": [
            {"id": "north", "level": "region"},
            {"id": "hub-1", "level": "hub", "parent": "north"},
            {"id": "node-17", "level": "node", "parent": "hub-1"},
        ],
        "devices": [
            {"id": c["devices"][0], "node": "node-17", "services": list(services)}
            for c in customers
        ],
        "customers": list(customers),
    }


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
    rule = RatioDownRule.model_validate(make_rule(services=list(services)))
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
    session.add(rule_row(name=rule.name, kind=rule.kind, definition=definition, at=now))
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


# Every stage a notice can be rendered for (each has a template in every language).
NOTICE_STAGES = (
    "detected",
    "update",
    "resolved",
    "overnight",
    "survey",
    "maintenance_scheduled",
    "maintenance_started",
    "maintenance_completed",
)


def notice_facts(opened: datetime, **changes: Any) -> NoticeFacts:
    """What a notice says, for the renderer's tests: an outage opened at `opened` on an
    English customer in Berlin, its update promised 30 min later; `changes` override."""
    base: dict[str, Any] = {
        "stage": "detected",
        "language": "en",
        "timezone": "Europe/Berlin",
        "customer_name": "Anna Weber",
        "services": ("internet", "tv"),
        "started_at": opened,
        "resolved_at": opened + timedelta(hours=1),
        "next_update_due": opened + timedelta(minutes=30),
        "eta": None,
        "status_url": "https://status.example.net/o/abc",
        "window_start": opened + timedelta(hours=15),
        "window_end": opened + timedelta(hours=19),
    }
    return NoticeFacts(**{**base, **changes})
