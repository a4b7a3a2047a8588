"""What every `forewarn` sub-command shares: the stderr console, settings loading, the actor."""

from __future__ import annotations

import getpass

import typer
from pydantic import ValidationError
from rich.console import Console

from app.logs import configure_logging
from app.settings import Settings

console = Console(stderr=True)


def cli_actor() -> str:
    """Who the audit log names for a change made from this command line: `cli:<user>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; stop with the bad variable's name on error."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        for error in exc.errors():
            name = "FOREWARN_" + "_".join(str(p) for p in error["loc"][:1]).upper()
            console.print(f"[bold red]configuration error[/]: {name}: {error['msg']}")
        raise typer.Exit(code=2) from None
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    return settings
