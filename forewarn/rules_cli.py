"""`forewarn rules`: keep detection rules in a file and apply it (GitOps style)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.rules.apply import ApplyAction, ApplyReport

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
    from forewarn.cli import console, load_settings

    settings = load_settings()

    async def main() -> ApplyReport:
        rules = parse_rules_file(await asyncio.to_thread(file.read_bytes), file.suffix)
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                report = await apply_rules(session=session, rules=rules, prune=prune)
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
