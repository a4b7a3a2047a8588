"""`forewarn rules`: keep detection rules in a file and apply it (GitOps style)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.rules.apply import ApplyAction, ApplyReport
from forewarn.cli_common import cli_actor, console, load_settings

rules_app = typer.Typer(help="Detection rules.", no_args_is_help=True)

_STYLE = {
    ApplyAction.CREATED: "green",
    ApplyAction.UPDATED: "yellow",
    ApplyAction.UNCHANGED: "dim",
    ApplyAction.DISABLED: "red",
}


def _table(report: ApplyReport, *, dry_run: bool) -> Table:
    title = "rules (dry run: nothing stored)" if dry_run else "rules"
    table = Table("name", "action", "version", title=title)
    for change in report.changes:
        action = f"would be {change.action.value}" if dry_run else change.action.value
        table.add_row(
            escape(change.name), f"[{_STYLE[change.action]}]{action}[/]", str(change.version)
        )
    return table


@rules_app.command("apply")
def rules_apply(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .yaml, .yml or .json"),
    prune: bool = typer.Option(False, help="Disable stored rules the file does not list."),
    dry_run: bool = typer.Option(False, help="Show what would change; store nothing."),
) -> None:
    """Make the stored rules match FILE: create, update (as a new version), leave alone."""
    from app.db import create_engine, session_factory
    from app.exceptions import InvalidInputError
    from app.rules.apply import apply_rules, parse_rules_file

    settings = load_settings()

    async def main() -> ApplyReport:
        rules = parse_rules_file(await asyncio.to_thread(file.read_bytes), file.suffix)
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                report = await apply_rules(
                    session=session, rules=rules, actor=cli_actor(), prune=prune
                )
                if dry_run:
                    await session.rollback()
                else:
                    await session.commit()
        finally:
            await engine.dispose()
        return report

    try:
        report = asyncio.run(main())
    except InvalidInputError as exc:
        for error in exc.errors:
            console.print(f"[red]{escape(error['field'])}[/]: {escape(error['reason'])}")
        console.print(f"[bold red]{len(exc.errors)} error(s); nothing applied[/]")
        raise typer.Exit(code=1) from None
    Console().print(_table(report, dry_run=dry_run))
    counts = ", ".join(f"{len(report.names(action))} {action.value}" for action in ApplyAction)
    console.print(f"{'dry run: ' if dry_run else ''}{counts}")


def _read_ndjson(path: Path) -> list[bytes]:
    """The non-empty lines of a JSON-lines file."""
    return [line for line in path.read_bytes().splitlines() if line.strip()]


@rules_app.command("backtest")
def rules_backtest(
    name: str = typer.Argument(..., help="The stored rule to replay."),
    events: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Recorded telemetry, one JSON message per line."
    ),
    contacts: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Recorded contacts, one JSON object per line."
    ),
    start: datetime | None = typer.Option(
        None, "--from", help="Replay the telemetry topic from this time (UTC if no zone)."
    ),
    end: datetime | None = typer.Option(None, "--to", help="... up to this time."),
    trial: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Replay this rule file's definition instead."
    ),
) -> None:
    """Replay recorded telemetry through a rule and show the outages it would have opened."""
    from sqlalchemy import select

    from app.db import create_engine, session_factory
    from app.detection.backtest import Recording
    from app.exceptions import ForewarnError, InvalidInputError
    from app.rules.apply import parse_rules_file
    from app.rules.backtest import BacktestOut, run_backtest
    from app.rules.models import Rule
    from consumers.recorded import KafkaRecordedTelemetry

    if (events is None) == (start is None):
        console.print("[red]give either --events FILE or --from/--to[/]")
        raise typer.Exit(code=2)
    if start is not None and end is None:
        console.print("[red]--from needs --to[/]")
        raise typer.Exit(code=2)
    settings = load_settings()

    def aware(moment: datetime) -> datetime:
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    async def load() -> Recording:
        if start is not None and end is not None:
            return await KafkaRecordedTelemetry(settings).read_range(aware(start), aware(end))
        recording = Recording()
        for line in await asyncio.to_thread(_read_ndjson, events) if events else []:
            recording.add_telemetry(line)
        if contacts is not None:
            for line in await asyncio.to_thread(_read_ndjson, contacts):
                recording.add_contact(line)
        return recording

    async def main() -> BacktestOut:
        candidate = None
        if trial is not None:
            [candidate] = parse_rules_file(await asyncio.to_thread(trial.read_bytes), trial.suffix)
        recording = await load()
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                rule_id = await session.scalar(select(Rule.id).where(Rule.name == name))
                if rule_id is None:
                    raise InvalidInputError([{"field": "name", "reason": f"no rule {name!r}"}])
                return await run_backtest(
                    session=session,
                    settings=settings,
                    rule_id=rule_id,
                    events=recording.events,
                    contacts=recording.contacts,
                    trial=candidate,
                    invalid=recording.invalid,
                    truncated=recording.truncated,
                )
        finally:
            await engine.dispose()

    try:
        result = asyncio.run(main())
    except InvalidInputError as exc:
        for error in exc.errors:
            console.print(f"[red]{escape(error['field'])}[/]: {escape(error['reason'])}")
        raise typer.Exit(code=1) from None
    except ForewarnError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(code=1) from None
    table = Table(
        "scope", "started", "opened", "closed", "state", "customers", title=result.rule_name
    )
    for outage in result.outages:
        table.add_row(
            escape(f"{outage.scope_level}:{outage.scope_id}"),
            outage.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            outage.opened_at.strftime("%H:%M:%S") if outage.opened_at else "-",
            outage.closed_at.strftime("%H:%M:%S") if outage.closed_at else "-",
            outage.final_state,
            str(outage.customers),
        )
    Console().print(table)
    console.print(
        f"{result.events:,} events, {result.contacts:,} contacts, {result.invalid:,} invalid, "
        f"{result.late:,} late; {result.opened} outage(s) would have opened and told "
        f"{result.customers_reached:,} customer(s)"
        + ("  [yellow](the range was truncated)[/]" if result.truncated else "")
    )
