"""`/v1/rules`: the detection rules NOC engineers write."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from app.deps import Engineer, RowId, SessionDep, SettingsDep, Viewer
from app.detection.backtest import RecordedTelemetry
from app.detection.decode import decode_contact, decode_telemetry_message
from app.detection.exceptions import DecodeError, RecordingUnavailableError
from app.detection.telemetry import Telemetry
from app.domain.contacts import Contact
from app.exceptions import InvalidInputError
from app.rules.backtest import BacktestIn, BacktestOut, run_backtest
from app.rules.models import Rule, RuleVersion
from app.rules.schemas import (
    EnabledIn,
    RuleDefinition,
    RuleOut,
    RuleVersionOut,
    rule_definition_json,
)
from app.rules.service import (
    audit_rule_change,
    create_rule,
    delete_rule,
    get_rule,
    list_rules,
    rule_snapshot,
    rule_versions,
    set_enabled,
    update_rule,
)

router = APIRouter(prefix="/v1/rules", tags=["rules"])


def _out(rule: Rule) -> RuleOut:
    return RuleOut(
        id=rule.id,
        name=rule.name,
        kind=rule.kind,
        version=rule.version,
        enabled=rule.enabled,
        definition=rule.definition,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def _version_out(version: RuleVersion) -> RuleVersionOut:
    return RuleVersionOut(
        version=version.version,
        enabled=version.enabled,
        definition=version.definition,
        created_at=version.created_at,
    )


@router.post("", status_code=201)
async def post_rule(
    rule: RuleDefinition, session: SessionDep, engineer: Engineer, response: Response
) -> RuleOut:
    """Create a rule (version 1). 409 when the name is taken."""
    row = await create_rule(session=session, rule=rule)
    await audit_rule_change(
        session=session,
        actor=engineer.name,
        action="create",
        rule_id=row.id,
        before=None,
        after=rule_snapshot(row),
    )
    response.headers["Location"] = f"/v1/rules/{row.id}"
    return _out(row)


@router.post("/validate")
async def validate_rule(rule: RuleDefinition, _engineer: Engineer) -> dict[str, Any]:
    """Check a rule without storing it; answer with its normalised definition."""
    return {"valid": True, "definition": rule_definition_json(rule)}


@router.get("")
async def get_rules(session: SessionDep, _viewer: Viewer) -> list[RuleOut]:
    """List every rule at its current version."""
    return [_out(rule) for rule in await list_rules(session=session)]


@router.get("/{rule_id}")
async def get_one_rule(rule_id: RowId, session: SessionDep, _viewer: Viewer) -> RuleOut:
    return _out(await get_rule(session=session, rule_id=rule_id))


@router.get("/{rule_id}/versions")
async def get_rule_versions(
    rule_id: RowId, session: SessionDep, _viewer: Viewer
) -> list[RuleVersionOut]:
    """Every version of a rule, oldest first."""
    return [_version_out(v) for v in await rule_versions(session=session, rule_id=rule_id)]


@router.put("/{rule_id}")
async def put_rule(
    rule_id: RowId, rule: RuleDefinition, session: SessionDep, engineer: Engineer
) -> RuleOut:
    """Replace a rule's definition; a change makes a new version."""
    before = rule_snapshot(await get_rule(session=session, rule_id=rule_id))
    row = await update_rule(session=session, rule_id=rule_id, rule=rule)
    await audit_rule_change(
        session=session,
        actor=engineer.name,
        action="update",
        rule_id=rule_id,
        before=before,
        after=rule_snapshot(row),
    )
    return _out(row)


@router.patch("/{rule_id}")
async def patch_rule(
    rule_id: RowId, body: EnabledIn, session: SessionDep, engineer: Engineer
) -> RuleOut:
    """Enable or disable a rule."""
    before = rule_snapshot(await get_rule(session=session, rule_id=rule_id))
    row = await set_enabled(session=session, rule_id=rule_id, enabled=body.enabled)
    action = "enable" if body.enabled else "disable"
    await audit_rule_change(
        session=session,
        actor=engineer.name,
        action=action,
        rule_id=rule_id,
        before=before,
        after=rule_snapshot(row),
    )
    return _out(row)


@router.delete("/{rule_id}", status_code=204)
async def remove_rule(rule_id: RowId, session: SessionDep, engineer: Engineer) -> None:
    """Delete a rule that never opened an outage (409 otherwise: disable it instead)."""
    before = rule_snapshot(await get_rule(session=session, rule_id=rule_id))
    await delete_rule(session=session, rule_id=rule_id)
    await audit_rule_change(
        session=session,
        actor=engineer.name,
        action="delete",
        rule_id=rule_id,
        before=before,
        after=None,
    )


@router.post("/{rule_id}/backtest")
async def backtest_rule(
    rule_id: RowId,
    body: BacktestIn,
    session: SessionDep,
    settings: SettingsDep,
    _engineer: Engineer,
    request: Request,
) -> BacktestOut:
    """Replay recorded telemetry through the rule (or a trial definition); store nothing.

    Give `events` (and optionally `contacts`) in the body, or `from`/`to` to replay that
    range of the telemetry topic. The answer lists each outage the rule would have opened,
    when, and how many customers it would have reached.
    """
    if body.start is not None and body.end is not None:
        recorded: RecordedTelemetry | None = request.app.state.recorded_telemetry
        if recorded is None:
            raise InvalidInputError(
                [{"field": "from", "reason": "no broker is configured; send events instead"}]
            )
        try:
            recording = await recorded.read_range(body.start, body.end)
        except RecordingUnavailableError as exc:
            raise InvalidInputError([{"field": "from", "reason": str(exc)}]) from None
        events, contacts = recording.events, recording.contacts
        invalid, truncated = recording.invalid, recording.truncated
    else:
        events, contacts = _decode_inline(body)
        invalid, truncated = 0, False
    return await run_backtest(
        session=session,
        settings=settings,
        rule_id=rule_id,
        events=events,
        contacts=contacts,
        trial=body.rule,
        invalid=invalid,
        truncated=truncated,
    )


def _decode_inline(body: BacktestIn) -> tuple[list[Telemetry], list[Contact]]:
    """Decode the events and contacts sent in the body; report every bad one (up to 100)."""
    events: list[Telemetry] = []
    contacts: list[Contact] = []
    errors: list[dict[str, str]] = []
    for field, items in (("events", body.events or []), ("contacts", body.contacts)):
        for index, item in enumerate(items):
            try:
                raw = orjson.dumps(item)
                if field == "events":
                    events.extend(decode_telemetry_message(raw))
                else:
                    contacts.append(decode_contact(raw))
            except DecodeError as exc:
                errors.append({"field": f"{field}[{index}]", "reason": str(exc)})
            except TypeError:  # orjson: an integer beyond 64 bits
                errors.append({"field": f"{field}[{index}]", "reason": "a number is too large"})
    if errors:
        raise InvalidInputError(errors[:100])
    return events, contacts
