"""Replace the inventory: check every cross-reference, then write it in bulk statements."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import orjson
from pydantic import ValidationError
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Entity, record
from app.clock import utc_now
from app.errors import field_path
from app.exceptions import InvalidInputError
from app.inventory.consent import record_listed_opt_outs
from app.inventory.models import Customer, Device, TopologyNode, customer_devices
from app.inventory.schemas import InventoryIn, InventorySummary

PARENT_LEVEL = {"region": None, "hub": "region", "node": "hub"}
CHUNK = 2000


def check_references(doc: InventoryIn) -> list[dict[str, str]]:
    """Return every broken reference or duplicate in the document (empty when it is sound)."""
    errors: list[dict[str, str]] = []
    levels = {node.id: node.level for node in doc.nodes}
    for kind, ids in (
        ("nodes", [n.id for n in doc.nodes]),
        ("devices", [d.id for d in doc.devices]),
        ("customers", [c.id for c in doc.customers]),
    ):
        for duplicate, count in Counter(ids).items():
            if count > 1:
                errors.append({"field": kind, "reason": f"id {duplicate!r} appears {count} times"})
    for i, node in enumerate(doc.nodes):
        wanted = PARENT_LEVEL[node.level]
        where = f"nodes[{i}].parent"
        if wanted is None and node.parent is not None:
            errors.append({"field": where, "reason": "a region has no parent"})
        elif wanted is not None and node.parent is None:
            errors.append({"field": where, "reason": f"a {node.level} needs a {wanted} parent"})
        elif wanted is not None and levels.get(node.parent or "") != wanted:
            found = levels.get(node.parent or "")
            reason = f"{node.parent!r} is not a {wanted}" + (f" (it is a {found})" if found else "")
            errors.append({"field": where, "reason": reason})
    devices = {device.id for device in doc.devices}
    for i, device in enumerate(doc.devices):
        if levels.get(device.node) != "node":
            errors.append(
                {"field": f"devices[{i}].node", "reason": f"{device.node!r} is not a node"}
            )
    for i, customer in enumerate(doc.customers):
        for j, device_id in enumerate(customer.devices):
            if device_id not in devices:
                errors.append(
                    {
                        "field": f"customers[{i}].devices[{j}]",
                        "reason": f"unknown device {device_id!r}",
                    }
                )
        needs = {"sms": customer.phone, "email": customer.email, "webhook": customer.webhook_url}
        for j, channel in enumerate(customer.channels):
            if needs[channel.value] is None:
                address = {"sms": "phone", "email": "email", "webhook": "webhook_url"}[channel]
                errors.append(
                    {
                        "field": f"customers[{i}].channels[{j}]",
                        "reason": f"channel {channel.value} needs a {address}",
                    }
                )
    return errors


def _upsert(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> Any:
    dialect = session.get_bind().dialect.name
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_(table)
    keys = [c.name for c in table.primary_key.columns]
    changing = {c: statement.excluded[c] for c in rows[0] if c not in keys}
    if not changing:
        return statement.on_conflict_do_nothing(index_elements=keys)
    return statement.on_conflict_do_update(index_elements=keys, set_=changing)


async def _write(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        if chunk:
            await session.execute(_upsert(session, table, chunk), chunk)


async def _delete_missing(session: AsyncSession, table: Table, keep: set[str]) -> None:
    """Delete the rows whose id is not in `keep` (in Python: SQLite caps bound parameters)."""
    existing = set(await session.scalars(select(table.c.id)))
    gone = sorted(existing - keep)
    for start in range(0, len(gone), CHUNK):
        await session.execute(delete(table).where(table.c.id.in_(gone[start : start + CHUNK])))


async def replace_inventory(
    *, session: AsyncSession, doc: InventoryIn, clock: Callable[[], datetime] = utc_now
) -> InventorySummary:
    """Make the stored inventory exactly `doc`; raise `InvalidInputError` listing every problem.

    Rows that stay are updated in place (so outbox history keeps its customers); rows that
    are gone are deleted. Consent records are not inventory: none is changed or deleted here
    (a customer's own STOP survives any document); an opt-out the document newly lists is
    recorded as the operator's (`app.inventory.consent`).
    """
    errors = check_references(doc)
    if errors:
        raise InvalidInputError(errors)
    nodes_table = cast(Table, TopologyNode.__table__)
    devices_table = cast(Table, Device.__table__)
    customers_table = cast(Table, Customer.__table__)

    await session.execute(delete(customer_devices))
    await _delete_missing(session, devices_table, {d.id for d in doc.devices})
    await _delete_missing(session, customers_table, {c.id for c in doc.customers})
    keep_nodes = {n.id for n in doc.nodes}
    for level in ("node", "hub", "region"):
        existing = set(
            await session.scalars(select(TopologyNode.id).where(TopologyNode.level == level))
        )
        gone = sorted(existing - keep_nodes)
        for start in range(0, len(gone), CHUNK):
            await session.execute(
                delete(TopologyNode).where(TopologyNode.id.in_(gone[start : start + CHUNK]))
            )
    for level in ("region", "hub", "node"):
        await _write(
            session,
            nodes_table,
            [
                {
                    "id": n.id,
                    "level": n.level,
                    "parent_id": n.parent,
                    "name": n.name,
                    "names": {lang.value: text for lang, text in n.names.items()}
                    if n.names
                    else None,
                }
                for n in doc.nodes
                if n.level == level
            ],
        )
    await _write(
        session,
        devices_table,
        [{"id": d.id, "node_id": d.node, "services": list(d.services)} for d in doc.devices],
    )
    await record_listed_opt_outs(
        session=session,
        listed={c.id: [ch.value for ch in c.opt_outs] for c in doc.customers},
        at=clock(),
    )
    await _write(
        session,
        customers_table,
        [
            {
                "id": c.id,
                "name": c.name,
                "phone": c.phone,
                "email": c.email,
                "language": c.language.value,
                "timezone": c.timezone,
                "locale": c.locale,
                "channels": [ch.value for ch in c.channels],
                "quiet_hours": c.quiet_hours.model_dump() if c.quiet_hours else None,
                "opt_outs": [ch.value for ch in c.opt_outs],
                "priority": c.priority,
                "webhook_url": str(c.webhook_url) if c.webhook_url else None,
            }
            for c in doc.customers
        ],
    )
    links = [
        {"customer_id": c.id, "device_id": device_id}
        for c in doc.customers
        for device_id in dict.fromkeys(c.devices)
    ]
    for start in range(0, len(links), CHUNK):
        await session.execute(insert(customer_devices), links[start : start + CHUNK])
    return InventorySummary(
        nodes=len(doc.nodes), devices=len(doc.devices), customers=len(doc.customers)
    )


async def inventory_summary(*, session: AsyncSession) -> InventorySummary:
    """Count what is stored."""
    return InventorySummary(
        nodes=await session.scalar(select(func.count()).select_from(TopologyNode)) or 0,
        devices=await session.scalar(select(func.count()).select_from(Device)) or 0,
        customers=await session.scalar(select(func.count()).select_from(Customer)) or 0,
    )


async def record_replacement(
    *, session: AsyncSession, actor: str, before: InventorySummary, after: InventorySummary
) -> None:
    """Audit a replacement of the inventory: the counts before and after, no customer data."""
    await record(
        session=session,
        actor=actor,
        action="replace",
        entity=Entity.INVENTORY,
        entity_id="inventory",
        before=before.model_dump(),
        after=after.model_dump(),
    )


def parse_inventory(raw: bytes) -> InventoryIn:
    """Parse a JSON inventory document, reporting every invalid field as `InvalidInputError`."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError([{"field": "body", "reason": f"not JSON: {exc}"}]) from None
    try:
        return InventoryIn.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(
            [
                {"field": field_path(e["loc"]), "reason": e["msg"].removeprefix("Value error, ")}
                for e in exc.errors()
            ]
        ) from None


async def import_inventory_file(*, session: AsyncSession, path: Path) -> InventorySummary:
    """Replace the inventory with the JSON document in `path` (`forewarn inventory import`)."""
    raw = await asyncio.to_thread(path.read_bytes)
    return await replace_inventory(session=session, doc=parse_inventory(raw))
