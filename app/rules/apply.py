"""Rules as files: make the stored rules match a YAML or JSON document (`forewarn rules apply`).

Applying is idempotent: a rule whose definition and `enabled` flag already match is left at its
version, so applying the same file twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
import yaml
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import Clock, utc_now
from app.errors import field_path
from app.exceptions import InvalidInputError
from app.rules.schemas import AnyRule, RuleDefinition, rule_definition_json
from app.rules.service import (
    audit_rule_change,
    create_rule,
    list_rules,
    rule_snapshot,
    set_enabled,
    update_rule,
)

_definition: TypeAdapter[AnyRule] = TypeAdapter(RuleDefinition)

YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)


class ApplyAction(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class RuleChange:
    """What applying did to one rule, and the version it is at afterwards."""

    name: str
    action: ApplyAction
    version: int


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """Every rule applying touched: the file's rules in file order, then the ones it disabled."""

    changes: list[RuleChange] = field(default_factory=list)

    def names(self, action: ApplyAction) -> list[str]:
        return [change.name for change in self.changes if change.action is action]

    @property
    def created(self) -> list[str]:
        return self.names(ApplyAction.CREATED)

    @property
    def updated(self) -> list[str]:
        return self.names(ApplyAction.UPDATED)

    @property
    def unchanged(self) -> list[str]:
        return self.names(ApplyAction.UNCHANGED)

    @property
    def disabled(self) -> list[str]:
        return self.names(ApplyAction.DISABLED)


def duplicate_name_errors(named: Iterable[tuple[int, str]]) -> list[dict[str, str]]:
    """Return an error for each rule (position, name) whose name an earlier rule already uses."""
    first: dict[str, int] = {}
    errors: list[dict[str, str]] = []
    for position, name in named:
        if name in first:
            errors.append(
                {
                    "field": f"rules[{position}].name",
                    "reason": f"name {name!r} is already used by rules[{first[name]}]",
                }
            )
        else:
            first[name] = position
    return errors


def _load(raw: bytes, suffix: str) -> Any:
    kind = suffix.lower()
    if kind in YAML_SUFFIXES:
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise InvalidInputError([{"field": "file", "reason": f"not YAML: {exc}"}]) from None
    if kind in JSON_SUFFIXES:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputError([{"field": "file", "reason": f"not JSON: {exc}"}]) from None
    allowed = ", ".join(YAML_SUFFIXES + JSON_SUFFIXES)
    raise InvalidInputError(
        [{"field": "file", "reason": f"unknown file type {suffix!r}; use one of {allowed}"}]
    )


def _items(document: Any) -> list[Any]:
    """Return the list of rules: the document itself, or its `rules` key."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get("rules"), list):
        extra = sorted(str(key) for key in document if key != "rules")
        if extra:
            raise InvalidInputError(
                [{"field": key, "reason": "unknown key; the file holds `rules`"} for key in extra]
            )
        return list(document["rules"])
    raise InvalidInputError(
        [{"field": "rules", "reason": "the file must be a list of rules or {rules: [...]}"}]
    )


def _location(item: Any, location: tuple[int | str, ...], error_type: str) -> tuple[Any, ...]:
    """Drop the discriminator's tag from a location; point tag errors at `kind`."""
    if error_type.startswith("union_tag_"):
        return ("kind",)
    if location and isinstance(item, dict) and location[0] == item.get("kind"):
        return location[1:]
    return location


def parse_rules_file(raw: bytes, suffix: str) -> list[AnyRule]:
    """Parse a YAML or JSON rules file; raise `InvalidInputError` listing every bad field."""
    items = _items(_load(raw, suffix))
    rules: list[AnyRule] = []
    positions: list[int] = []
    errors: list[dict[str, str]] = []
    for i, item in enumerate(items):
        try:
            rules.append(_definition.validate_python(item))
            positions.append(i)
        except ValidationError as exc:
            for error in exc.errors():
                location = _location(item, error["loc"], error["type"])
                errors.append(
                    {
                        "field": field_path(("rules", i, *location)),
                        "reason": error["msg"].removeprefix("Value error, "),
                    }
                )
    errors += duplicate_name_errors(zip(positions, (rule.name for rule in rules), strict=True))
    if errors:
        raise InvalidInputError(errors)
    return rules


async def apply_rules(
    *,
    session: AsyncSession,
    rules: list[AnyRule],
    actor: str,
    prune: bool = False,
    clock: Clock = utc_now,
) -> ApplyReport:
    """Create missing rules, update changed ones, and with `prune` disable those not listed.

    Rules are matched by name. A changed rule gets a new version; a pruned one is disabled,
    never deleted, so outages opened under it keep their history. Each change is audited
    (action `apply`) under `actor`.
    """
    errors = duplicate_name_errors(enumerate(rule.name for rule in rules))
    if errors:
        raise InvalidInputError(errors)
    stored = {row.name: row for row in await list_rules(session=session)}
    changes: list[RuleChange] = []
    for rule in rules:
        row = stored.get(rule.name)
        before = rule_snapshot(row) if row is not None else None
        if row is None:
            row = await create_rule(session=session, rule=rule, clock=clock)
            action = ApplyAction.CREATED
        elif rule_definition_json(rule) != row.definition or rule.enabled != row.enabled:
            row = await update_rule(session=session, rule_id=row.id, rule=rule, clock=clock)
            action = ApplyAction.UPDATED
        else:
            action = ApplyAction.UNCHANGED
        if action is not ApplyAction.UNCHANGED:
            await audit_rule_change(
                session=session,
                actor=actor,
                action="apply",
                rule_id=row.id,
                before=before,
                after=rule_snapshot(row),
                clock=clock,
            )
        changes.append(RuleChange(name=rule.name, action=action, version=row.version))
    if prune:
        listed = {rule.name for rule in rules}
        for name, row in sorted(stored.items()):
            if name not in listed and row.enabled:
                before = rule_snapshot(row)
                row = await set_enabled(session=session, rule_id=row.id, enabled=False, clock=clock)
                await audit_rule_change(
                    session=session,
                    actor=actor,
                    action="apply",
                    rule_id=row.id,
                    before=before,
                    after=rule_snapshot(row),
                    clock=clock,
                )
                changes.append(
                    RuleChange(name=name, action=ApplyAction.DISABLED, version=row.version)
                )
    return ApplyReport(changes=changes)
