"""Create, change, enable and list detection rules; every change is a new immutable version."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Entity, record
from app.clock import Clock, utc_now
from app.detection.spec import RuleSpec
from app.exceptions import ConflictError, NotFoundError
from app.rules.models import Rule, RuleVersion
from app.rules.schemas import AnyRule, RuleDefinition, rule_definition_json, to_spec

_definition: TypeAdapter[AnyRule] = TypeAdapter(RuleDefinition)


def parse_definition(definition: dict[str, Any]) -> AnyRule:
    """Validate a stored definition back into its rule model."""
    return _definition.validate_python(definition)


def rule_snapshot(rule: Rule) -> dict[str, Any]:
    """What the audit log keeps of a rule: its definition, whether it is on, its version."""
    return {"definition": dict(rule.definition), "enabled": rule.enabled, "version": rule.version}


async def audit_rule_change(
    *,
    session: AsyncSession,
    actor: str,
    action: str,
    rule_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    clock: Clock = utc_now,
) -> None:
    """Audit a change to a rule (snapshots from `rule_snapshot`); no change, no entry."""
    if before != after:
        await record(
            session=session,
            actor=actor,
            action=action,
            entity=Entity.RULE,
            entity_id=str(rule_id),
            before=before,
            after=after,
            clock=clock,
        )


async def _by_name(session: AsyncSession, name: str) -> Rule | None:
    rule: Rule | None = await session.scalar(select(Rule).where(Rule.name == name))
    return rule


async def get_rule(*, session: AsyncSession, rule_id: int) -> Rule:
    rule = await session.get(Rule, rule_id)
    if rule is None:
        raise NotFoundError(f"rule {rule_id} does not exist")
    return rule


def _version(rule: Rule, clock: Clock) -> RuleVersion:
    return RuleVersion(
        rule_id=rule.id,
        version=rule.version,
        enabled=rule.enabled,
        definition=rule.definition,
        created_at=clock(),
    )


async def create_rule(*, session: AsyncSession, rule: AnyRule, clock: Clock = utc_now) -> Rule:
    """Store a new rule as version 1; a name already in use is a conflict."""
    if await _by_name(session, rule.name) is not None:
        raise ConflictError(f"a rule named {rule.name!r} already exists")
    now = clock()
    row = Rule(
        name=rule.name,
        kind=rule.kind,
        version=1,
        enabled=rule.enabled,
        definition=rule_definition_json(rule),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise ConflictError(f"a rule named {rule.name!r} already exists") from None
    session.add(_version(row, clock))
    await session.flush()
    return row


async def update_rule(
    *, session: AsyncSession, rule_id: int, rule: AnyRule, clock: Clock = utc_now
) -> Rule:
    """Replace a rule's definition as a new version; outages keep the version they opened under."""
    row = await get_rule(session=session, rule_id=rule_id)
    if rule.name != row.name:
        other = await _by_name(session, rule.name)
        if other is not None:
            raise ConflictError(f"a rule named {rule.name!r} already exists")
    definition = rule_definition_json(rule)
    if definition == row.definition and rule.enabled == row.enabled:
        return row
    row.name, row.kind, row.definition, row.enabled = rule.name, rule.kind, definition, rule.enabled
    row.version += 1
    row.updated_at = clock()
    session.add(_version(row, clock))
    await session.flush()
    return row


async def set_enabled(
    *, session: AsyncSession, rule_id: int, enabled: bool, clock: Clock = utc_now
) -> Rule:
    """Switch a rule on or off (a new version when it changes)."""
    row = await get_rule(session=session, rule_id=rule_id)
    if row.enabled != enabled:
        row.enabled = enabled
        row.version += 1
        row.updated_at = clock()
        session.add(_version(row, clock))
        await session.flush()
    return row


async def delete_rule(*, session: AsyncSession, rule_id: int) -> None:
    """Delete a rule that never opened an outage; one that did can only be disabled."""
    row = await get_rule(session=session, rule_id=rule_id)
    try:
        async with session.begin_nested():
            await session.delete(row)
    except IntegrityError:  # the outages' foreign key restricts the delete
        raise ConflictError(
            f"rule {rule_id} has outages on record; disable it instead (PATCH enabled=false)"
        ) from None


async def list_rules(*, session: AsyncSession) -> list[Rule]:
    return list(await session.scalars(select(Rule).order_by(Rule.name)))


async def rule_versions(*, session: AsyncSession, rule_id: int) -> list[RuleVersion]:
    await get_rule(session=session, rule_id=rule_id)
    query = select(RuleVersion).where(RuleVersion.rule_id == rule_id).order_by(RuleVersion.version)
    return list(await session.scalars(query))


async def enabled_rule_specs(*, session: AsyncSession) -> list[RuleSpec]:
    """The enabled rules, at their current version, as the engine runs them."""
    rows = await session.scalars(select(Rule).where(Rule.enabled.is_(True)).order_by(Rule.id))
    return [to_spec(row.id, row.version, parse_definition(row.definition)) for row in rows]
