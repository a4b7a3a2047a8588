"""Who hears about an outage, on which channels, and when: outage events in, outbox rows out.

Planning is idempotent: every row's key is customer x outage x stage x sequence x channel and
rows are inserted with ON CONFLICT DO NOTHING, so a replayed outage event plans nothing twice.

When a row may be sent is decided here too (`next_attempt_at`):
- quiet hours: only an urgent notice (a critical outage, or a priority customer's `detected`)
  goes out during the customer's quiet hours; the rest wait for the morning, and an outage
  that began and ended in the night becomes one combined `overnight` notice;
- flap control: a `resolved` notice waits until the clear has held for `resolve_hold`; if the
  same rule opens on the same scope meanwhile, the held notice is dropped and the customer is
  not told again that it is down (they never heard it was fixed);
- a customer hears at most `max_notices` notices of one outage (its resolution always).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, distinct, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.inventory.models import Customer, Device, TopologyNode, customer_devices
from app.maintenance.models import Maintenance
from app.notifications.models import OutboxRow
from app.notifications.quiet import quiet_until
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState
from app.outages.models import Outage

# The notice stage an outage state starts; states absent here notify nobody.
STAGE_FOR_STATE: dict[OutageState, str] = {
    OutageState.OPEN: "detected",
    OutageState.RESOLVED: "resolved",
}
# A channel that depends on a service: during an outage of it, the customer's other listed
# channel is used instead (e-mail read over the home broadband, SMS over our own cells).
CHANNEL_NEEDS: dict[str, str] = {"email": "internet", "sms": "mobile"}
HELD = ("pending",)

CHUNK = 5000


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    resolve_hold: timedelta = timedelta(minutes=10)
    max_notices: int = 8


@dataclass(frozen=True, slots=True)
class Recipient:
    customer_id: str
    language: str
    channels: tuple[str, ...]
    timezone: str = "UTC"
    quiet_hours: dict[str, str] | None = None
    priority: bool = False
    services: frozenset[str] = field(default_factory=frozenset)


def stage_of(event: OutageEvent) -> str | None:
    """The notice stage an outage event starts, or None when it tells nobody anything."""
    if event.update_sequence > 0 and event.state.customers_told:
        return "update"
    return STAGE_FOR_STATE.get(event.state)


def nodes_under(scope_level: str, scope_id: str) -> Select[str]:
    """Select the ids of the `node`-level places inside a scope."""
    if scope_level == "node":
        return select(TopologyNode.id).where(TopologyNode.id == scope_id)
    if scope_level == "hub":
        return select(TopologyNode.id).where(TopologyNode.parent_id == scope_id)
    hubs = select(TopologyNode.id).where(TopologyNode.parent_id == scope_id)
    return select(TopologyNode.id).where(TopologyNode.parent_id.in_(hubs))


def usable_channels(
    listed: Sequence[str], opted_out: Iterable[str], down: Iterable[str]
) -> tuple[str, ...]:
    """The listed channels minus opt-outs, and minus those the outage takes down when another
    listed channel still works."""
    channels = [c for c in listed if c not in set(opted_out)]
    broken = set(down)
    working = [c for c in channels if CHANNEL_NEEDS.get(c) not in broken]
    return tuple(working or channels)


async def affected_customers(
    *, session: AsyncSession, scope_level: str, scope_id: str, services: Sequence[str]
) -> list[Recipient]:
    """Customers with a device in the scope that carries one of the outage's services.

    An outage with no services listed affects every service of the devices in its scope.
    """
    query = select(
        Customer.id,
        Customer.language,
        Customer.channels,
        Customer.opt_outs,
        Customer.timezone,
        Customer.quiet_hours,
        Customer.priority,
        Device.services,
    ).join(customer_devices, customer_devices.c.customer_id == Customer.id)
    query = query.join(Device, Device.id == customer_devices.c.device_id)
    if scope_level == "device":
        query = query.where(Device.id == scope_id)
    else:
        query = query.where(Device.node_id.in_(nodes_under(scope_level, scope_id)))
    wanted = frozenset(services)
    found: dict[str, tuple[Any, ...]] = {}
    hit: dict[str, set[str]] = {}
    for row in await session.execute(query):
        customer_id, device_services = row[0], frozenset(row[7] or ())
        affected = device_services & wanted if wanted else device_services
        if wanted and not affected:
            continue
        found.setdefault(customer_id, tuple(row))
        hit.setdefault(customer_id, set()).update(affected)
    recipients = []
    for customer_id, (_, language, channels, opt_outs, zone, quiet, priority, _s) in found.items():
        down = {CHANNEL_NEEDS[c] for c in CHANNEL_NEEDS if CHANNEL_NEEDS[c] in hit[customer_id]}
        recipients.append(
            Recipient(
                customer_id=customer_id,
                language=language,
                channels=usable_channels(channels, opt_outs or (), down),
                timezone=zone,
                quiet_hours=quiet,
                priority=bool(priority),
                services=frozenset(hit[customer_id]),
            )
        )
    return recipients


async def told_customers(*, session: AsyncSession, outage_id: str) -> list[Recipient]:
    """The customers a `detected` notice was planned for, with the channels they had then."""
    rows = await session.execute(
        select(
            OutboxRow.customer_id,
            OutboxRow.language,
            OutboxRow.channel,
            Customer.timezone,
            Customer.quiet_hours,
            Customer.priority,
            Customer.opt_outs,
        )
        .join(Customer, Customer.id == OutboxRow.customer_id)
        .where(OutboxRow.outage_id == outage_id, OutboxRow.stage == "detected")
        .order_by(OutboxRow.id)
    )
    channels: dict[str, list[str]] = {}
    facts: dict[str, tuple[Any, ...]] = {}
    for customer_id, language, channel, zone, quiet, priority, opt_outs in rows:
        if channel not in (opt_outs or ()):
            channels.setdefault(customer_id, []).append(channel)
        facts[customer_id] = (language, zone, quiet, bool(priority))
    return [
        Recipient(c, facts[c][0], tuple(channels.get(c, ())), facts[c][1], facts[c][2], facts[c][3])
        for c in facts
    ]


def _send_at(recipient: Recipient, earliest: datetime, urgent: bool) -> datetime:
    if urgent:
        return earliest
    return quiet_until(earliest, recipient.timezone, recipient.quiet_hours) or earliest


async def plan_notices(
    *,
    session: AsyncSession,
    event: OutageEvent,
    now: datetime,
    policy: PlanPolicy | None = None,
) -> int:
    """Write the outbox rows an outage event calls for; return how many rows it asked for.

    Correlated outages: a child attached to a parent plans its customers under the parent's
    id, so a customer under several failed nodes of one hub hears once; customers told about
    the child before it was attached are not told again. The parent itself plans only its
    resolution (to everyone told under it).
    """
    policy = policy or PlanPolicy()
    stage = stage_of(event)
    if stage is None:
        return 0
    plans: list[tuple[str, list[Recipient]]] = []
    if event.is_parent:
        if stage in ("resolved", "update"):
            plans.append(
                (event.outage_id, await told_customers(session=session, outage_id=event.outage_id))
            )
    elif stage == "detected":
        recipients = await affected_customers(
            session=session,
            scope_level=event.scope_level,
            scope_id=event.scope_id,
            services=event.services,
        )
        await _set_affected(session, event.outage_id, len(recipients))
        if event.parent_id is None:
            plans.append((event.outage_id, recipients))
        else:
            told_before = {
                r.customer_id
                for r in await told_customers(session=session, outage_id=event.outage_id)
            }
            fresh = [r for r in recipients if r.customer_id not in told_before]
            plans.append((event.parent_id, fresh))
    elif stage == "update":
        if event.update_sequence > policy.max_notices - 2:
            return 0  # the cap: only the resolution is still to come
        plans.append(
            (event.outage_id, await told_customers(session=session, outage_id=event.outage_id))
        )
    else:
        plans.append(
            (event.outage_id, await told_customers(session=session, outage_id=event.outage_id))
        )
        if event.parent_id is not None:
            mine = {
                r.customer_id
                for r in await affected_customers(
                    session=session,
                    scope_level=event.scope_level,
                    scope_id=event.scope_id,
                    services=event.services,
                )
            }
            told_under_parent = await told_customers(session=session, outage_id=event.parent_id)
            plans.append((event.parent_id, [r for r in told_under_parent if r.customer_id in mine]))
    count = 0
    for outage_id, recipients in plans:
        count += await _plan(session, event, stage, outage_id, recipients, now, policy)
    if event.parent_id is not None and stage == "detected":
        told = await session.scalar(
            select(func.count(distinct(OutboxRow.customer_id))).where(
                OutboxRow.outage_id == event.parent_id, OutboxRow.stage == "detected"
            )
        )
        await _set_affected(session, event.parent_id, int(told or 0))
    return count


async def _plan(
    session: AsyncSession,
    event: OutageEvent,
    stage: str,
    outage_id: str,
    recipients: list[Recipient],
    now: datetime,
    policy: PlanPolicy,
) -> int:
    sequence = event.update_sequence if stage == "update" else 0
    continuing: set[str] = set()
    overnight: set[str] = set()
    if stage in ("detected", "resolved"):
        # A customer already told of another outage that is still open (another rule on the
        # same place, say) hears of this one neither coming nor going: one "we know", and one
        # "fixed" when the last of them ends.
        elsewhere = await _told_of_another_open_outage(
            session, outage_id, [r.customer_id for r in recipients]
        )
        if stage == "resolved":
            recipients = [r for r in recipients if r.customer_id not in elsewhere]
    if stage == "detected":
        continuing = await _drop_held_resolutions(session, event, outage_id, now) | elsewhere
    elif stage == "resolved":
        overnight = await _fold_night_into_one(session, outage_id, now)
    urgent_outage = event.severity == "critical"
    rows: list[dict[str, Any]] = []
    for r in recipients:
        row_stage, state, send_at = stage, "pending", now
        if stage == "resolved":
            send_at = now + policy.resolve_hold
            if r.customer_id in overnight:
                row_stage = "overnight"
        if r.customer_id in continuing:
            state = "superseded"  # they know it is down already; they will hear it is fixed
        send_at = _send_at(r, send_at, urgent=stage == "detected" and (urgent_outage or r.priority))
        rows.extend(
            {
                "customer_id": r.customer_id,
                "outage_id": outage_id,
                "stage": row_stage,
                "sequence": sequence,
                "channel": channel,
                "language": r.language,
                "state": state,
                "attempts": 0,
                "priority": 1 if r.priority else 0,
                "created_at": now,
                "next_attempt_at": send_at,
            }
            for channel in r.channels
        )
    await insert_outbox_rows(session=session, rows=rows)
    return len(rows)


async def _told_of_another_open_outage(
    session: AsyncSession, outage_id: str, customers: Sequence[str]
) -> set[str]:
    """Those of `customers` with a `detected` notice planned for another outage still open."""
    other_open = select(Outage.id).where(Outage.active_key.is_not(None), Outage.id != outage_id)
    found: set[str] = set()
    ids = sorted(set(customers))
    for start in range(0, len(ids), CHUNK):
        found.update(
            await session.scalars(
                select(OutboxRow.customer_id)
                .where(
                    OutboxRow.stage == "detected",
                    OutboxRow.outage_id.in_(other_open),
                    OutboxRow.customer_id.in_(ids[start : start + CHUNK]),
                )
                .distinct()
            )
        )
    return found


async def _drop_held_resolutions(
    session: AsyncSession, event: OutageEvent, outage_id: str, now: datetime
) -> set[str]:
    """Cancel resolved notices still held for the same rule and scope; return their customers."""
    earlier = select(Outage.id).where(
        Outage.rule_id == event.rule_id,
        Outage.scope_level == event.scope_level,
        Outage.scope_id == event.scope_id,
        Outage.id != outage_id,
    )
    held = and_(
        OutboxRow.outage_id.in_(earlier),
        OutboxRow.stage == "resolved",
        OutboxRow.state == "pending",
        OutboxRow.next_attempt_at > now,
    )
    customers = set(await session.scalars(select(OutboxRow.customer_id).where(held).distinct()))
    if customers:
        await session.execute(
            update(OutboxRow).where(held).values(state="superseded", last_error="flap")
        )
    return customers


async def _fold_night_into_one(session: AsyncSession, outage_id: str, now: datetime) -> set[str]:
    """Customers whose `detected` notice still waits for the morning get one `overnight`
    notice instead of two; their waiting notices are dropped. Return those customers."""
    # Held for the morning: never tried yet (a row waiting to be retried has an error).
    waiting = and_(
        OutboxRow.outage_id == outage_id,
        OutboxRow.stage.in_(("detected", "update")),
        OutboxRow.state == "pending",
        OutboxRow.next_attempt_at > now,
        OutboxRow.attempts == 0,
        OutboxRow.last_error.is_(None),
    )
    held = set(
        await session.scalars(
            select(OutboxRow.customer_id).where(waiting, OutboxRow.stage == "detected").distinct()
        )
    )
    sent = set(
        await session.scalars(
            select(OutboxRow.customer_id)
            .where(
                OutboxRow.outage_id == outage_id,
                OutboxRow.stage == "detected",
                OutboxRow.state.in_(("sent", "sending", "unconfirmed")),
            )
            .distinct()
        )
    )
    night = held - sent
    if night:
        ids = sorted(night)
        for start in range(0, len(ids), CHUNK):
            await session.execute(
                update(OutboxRow)
                .where(waiting, OutboxRow.customer_id.in_(ids[start : start + CHUNK]))
                .values(state="superseded", last_error="overnight")
            )
    return night


async def _set_affected(session: AsyncSession, outage_id: str, count: int) -> None:
    await session.execute(
        update(Outage).where(Outage.id == outage_id).values(affected_customers=count)
    )


async def insert_outbox_rows(*, session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
    """Bulk-insert outbox rows, skipping any whose unique key already exists."""
    batch = list(rows)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(batch), CHUNK):
        statement = insert(OutboxRow).on_conflict_do_nothing(
            index_elements=["customer_id", "outage_id", "stage", "sequence", "channel"]
        )
        await session.execute(statement, batch[start : start + CHUNK])


async def plan_survey(*, session: AsyncSession, outage_id: str, now: datetime) -> int:
    """Ask the customers told of an outage, by SMS, how well we kept them informed."""
    recipients = [
        Recipient(r.customer_id, r.language, ("sms",), r.timezone, r.quiet_hours, r.priority)
        for r in await told_customers(session=session, outage_id=outage_id)
        if "sms" in r.channels
    ]
    rows = [
        {
            "customer_id": r.customer_id,
            "outage_id": outage_id,
            "stage": "survey",
            "sequence": 0,
            "channel": "sms",
            "language": r.language,
            "state": "pending",
            "attempts": 0,
            "priority": 0,
            "created_at": now,
            "next_attempt_at": _send_at(r, now, urgent=False),
        }
        for r in recipients
    ]
    await insert_outbox_rows(session=session, rows=rows)
    return len(rows)


MAINTENANCE_STAGES = ("maintenance_scheduled", "maintenance_started", "maintenance_completed")


async def plan_maintenance_notices(
    *, session: AsyncSession, window: Maintenance, stage: str, now: datetime
) -> int:
    """Tell the customers under a maintenance window's scope about it (one stage of three).

    While the work runs its services are down, so the `started` notice avoids the channels
    that depend on them, as an outage's notices do.
    """
    level = await session.scalar(
        select(TopologyNode.level).where(TopologyNode.id == window.scope_id)
    )
    if level is None:
        return 0
    recipients = await affected_customers(
        session=session, scope_level=level, scope_id=window.scope_id, services=window.services
    )
    rows: list[dict[str, Any]] = []
    for r in recipients:
        channels = r.channels
        if stage != "maintenance_started":
            channels = await _listed_channels(session, r.customer_id)
        rows.extend(
            {
                "customer_id": r.customer_id,
                "outage_id": None,
                "maintenance_id": window.id,
                "stage": stage,
                "sequence": 0,
                "channel": channel,
                "language": r.language,
                "state": "pending",
                "attempts": 0,
                "priority": 1 if r.priority else 0,
                "created_at": now,
                "next_attempt_at": _send_at(r, now, urgent=False),
            }
            for channel in channels
        )
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), CHUNK):
        statement = insert(OutboxRow).on_conflict_do_nothing(
            index_elements=["customer_id", "maintenance_id", "stage", "channel"]
        )
        await session.execute(statement, rows[start : start + CHUNK])
    return len(rows)


async def _listed_channels(session: AsyncSession, customer_id: str) -> tuple[str, ...]:
    row = (
        await session.execute(
            select(Customer.channels, Customer.opt_outs).where(Customer.id == customer_id)
        )
    ).one()
    return usable_channels(row[0], row[1] or (), ())
