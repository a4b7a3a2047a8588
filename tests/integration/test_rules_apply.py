"""`forewarn rules apply`: rules kept in a file and applied idempotently."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from app.db import transaction
from app.exceptions import InvalidInputError
from app.rules.apply import ApplyAction, apply_rules, parse_rules_file
from app.rules.schemas import AnyRule
from app.rules.service import list_rules, parse_definition, rule_versions
from forewarn.cli import app
from tests.integration.test_api import RULES

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules.yaml"
NAMES = [rule["name"] for rule in RULES]


def example_rules() -> list[AnyRule]:
    return parse_rules_file(EXAMPLE.read_bytes(), EXAMPLE.suffix)


async def apply(
    sessions: async_sessionmaker[AsyncSession], rules: list[AnyRule], *, prune: bool = False
) -> dict[str, tuple[ApplyAction, int]]:
    async with transaction(sessions) as session:
        report = await apply_rules(session=session, rules=rules, actor="cli:test", prune=prune)
    return {change.name: (change.action, change.version) for change in report.changes}


async def stored(sessions: async_sessionmaker[AsyncSession]) -> dict[str, tuple[int, bool]]:
    async with transaction(sessions) as session:
        return {row.name: (row.version, row.enabled) for row in await list_rules(session=session)}


def test_the_example_file_holds_the_documented_rules() -> None:
    assert [parse_definition(rule) for rule in RULES] == example_rules()


async def test_applying_the_example_twice_creates_each_rule_once_then_changes_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = await apply(sessions, example_rules())
    second = await apply(sessions, example_rules())

    assert first == {name: (ApplyAction.CREATED, 1) for name in NAMES}
    assert second == {name: (ApplyAction.UNCHANGED, 1) for name in NAMES}
    assert await stored(sessions) == {name: (1, True) for name in NAMES}


async def test_a_changed_threshold_updates_only_that_rule_to_a_new_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await apply(sessions, example_rules())
    changed = [{**rule, "threshold": 0.5} if rule["name"] == "modems-down-on-node" else rule
               for rule in RULES]  # fmt: skip
    raw = yaml.safe_dump({"rules": changed}).encode()

    report = await apply(sessions, parse_rules_file(raw, ".yaml"))

    assert report["modems-down-on-node"] == (ApplyAction.UPDATED, 2)
    assert {name: r for name, r in report.items() if name != "modems-down-on-node"} == {
        name: (ApplyAction.UNCHANGED, 1) for name in NAMES if name != "modems-down-on-node"
    }
    async with transaction(sessions) as session:
        rule = next(r for r in await list_rules(session=session) if r.name == "modems-down-on-node")
        versions = await rule_versions(session=session, rule_id=rule.id)
    assert [(v.version, v.definition["threshold"]) for v in versions] == [(1, 0.3), (2, 0.5)]


async def test_prune_disables_a_stored_rule_the_file_no_longer_lists(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await apply(sessions, example_rules())
    without_spike = [rule for rule in example_rules() if rule.name != "calls-spike"]

    kept = await apply(sessions, without_spike)
    pruned = await apply(sessions, without_spike, prune=True)
    again = await apply(sessions, without_spike, prune=True)

    assert "calls-spike" not in kept
    assert pruned["calls-spike"] == (ApplyAction.DISABLED, 2)
    assert "calls-spike" not in again
    assert (await stored(sessions))["calls-spike"] == (2, False)


async def test_a_rule_disabled_in_the_file_is_updated_and_enabling_it_again_too(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await apply(sessions, example_rules())
    disabled = [{**rule, "enabled": False} if rule["name"] == "calls-spike" else rule
                for rule in RULES]  # fmt: skip

    off = await apply(sessions, parse_rules_file(orjson.dumps(disabled), ".json"))
    on = await apply(sessions, example_rules())

    assert off["calls-spike"] == (ApplyAction.UPDATED, 2)
    assert on["calls-spike"] == (ApplyAction.UPDATED, 3)
    assert (await stored(sessions))["calls-spike"] == (3, True)


def test_an_invalid_file_reports_every_bad_field_at_once() -> None:
    bad = [
        RULES[0],
        {**RULES[1], "missed_intervals": 0},
        {**RULES[4], "threshold": 1.5, "for": "soon"},
        {key: value for key, value in RULES[3].items() if key != "kind"},
        {**RULES[2], "kind": "nonsense"},
        RULES[0],
    ]

    with pytest.raises(InvalidInputError) as caught:
        parse_rules_file(yaml.safe_dump(bad).encode(), ".yml")

    assert {(e["field"]) for e in caught.value.errors} == {
        "rules[1].missed_intervals",
        "rules[2].threshold",
        "rules[2].for",
        "rules[3].kind",
        "rules[4].kind",
        "rules[5].name",
    }
    duplicate = next(e for e in caught.value.errors if e["field"] == "rules[5].name")
    assert "rules[0]" in duplicate["reason"]


@pytest.mark.parametrize(
    ("raw", "suffix", "field"),
    [
        (b"rules: [unclosed", ".yaml", "file"),
        (b"{not json", ".json", "file"),
        (b"[]", ".toml", "file"),
        (b"name: x", ".yaml", "rules"),
        (b'{"rules": [], "extra": 1}', ".json", "extra"),
    ],
    ids=["bad-yaml", "bad-json", "unknown-suffix", "not-a-list", "unknown-key"],
)
def test_a_file_that_is_not_a_list_of_rules_is_refused_naming_why(
    raw: bytes, suffix: str, field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_rules_file(raw, suffix)
    assert [e["field"] for e in caught.value.errors] == [field]


async def test_duplicate_names_are_refused_before_anything_is_stored(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rules = example_rules()

    with pytest.raises(InvalidInputError) as caught:
        await apply(sessions, [*rules, rules[1]])

    assert [e["field"] for e in caught.value.errors] == [f"rules[{len(rules)}].name"]
    assert await stored(sessions) == {}


# The CLI, end to end, against a fresh migrated SQLite file.


def run(database: Path, *args: str) -> tuple[int, str]:
    runner = CliRunner(env={"FOREWARN_DATABASE_URL": f"sqlite+aiosqlite:///{database}"})
    result = runner.invoke(app, ["rules", "apply", *args])
    return result.exit_code, result.output


def stored_rows(database: Path) -> list[tuple[str, int, bool]]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT name, version, enabled FROM rules ORDER BY name")
        return [(name, version, bool(enabled)) for name, version, enabled in rows]


def test_the_cli_applies_a_file_and_a_dry_run_stores_nothing(cli_database: Path) -> None:
    dry_code, dry_output = run(cli_database, str(EXAMPLE), "--dry-run")
    after_dry_run = stored_rows(cli_database)
    code, output = run(cli_database, str(EXAMPLE))
    again_code, again_output = run(cli_database, str(EXAMPLE))

    assert dry_code == 0, dry_output
    assert "would be created" in dry_output and "dry run" in dry_output
    assert after_dry_run == []
    assert code == 0, output
    assert all(name in output for name in NAMES) and "5 created" in output
    assert again_code == 0 and "5 unchanged" in again_output
    assert stored_rows(cli_database) == sorted((name, 1, True) for name in NAMES)


def test_the_cli_prunes_and_its_dry_run_only_shows_it(cli_database: Path, tmp_path: Path) -> None:
    run(cli_database, str(EXAMPLE))
    fewer = tmp_path / "fewer.json"
    fewer.write_bytes(orjson.dumps([r for r in RULES if r["name"] != "calls-spike"]))

    dry_code, dry_output = run(cli_database, str(fewer), "--prune", "--dry-run")
    unpruned = stored_rows(cli_database)
    code, output = run(cli_database, str(fewer), "--prune")

    assert dry_code == 0 and "would be disabled" in dry_output
    assert ("calls-spike", 1, True) in unpruned
    assert code == 0 and "1 disabled" in output
    assert ("calls-spike", 2, False) in stored_rows(cli_database)


def test_the_cli_prints_every_bad_field_and_exits_1_storing_nothing(
    cli_database: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text(yaml.safe_dump([RULES[0], {**RULES[4], "threshold": 1.5, "for": "soon"}]))

    code, output = run(cli_database, str(bad))

    assert code == 1
    assert "rules[1].threshold" in output and "rules[1].for" in output
    assert "2 error(s)" in output
    assert stored_rows(cli_database) == []
