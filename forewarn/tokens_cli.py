"""`forewarn token`: create, list and revoke the API's stored tokens."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Role, Settings
from forewarn.cli_common import cli_actor, console, load_settings

token_app = typer.Typer(help="API tokens.", no_args_is_help=True)

T = TypeVar("T")


def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction on the configured database; stop on a refused change."""
    from app.db import create_engine, session_factory, transaction
    from app.exceptions import ConflictError, InvalidInputError, NotFoundError

    async def main() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (ConflictError, InvalidInputError, NotFoundError) as exc:
        console.print(f"[bold red]error[/]: {escape(str(exc))}")
        raise typer.Exit(code=1) from None


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., "--name", help="Who or what uses it, e.g. noc-dashboard."),
    role: Role = typer.Option(..., "--role", help="viewer, engineer or admin."),
) -> None:
    """Create a token and print it, once: Forewarn keeps only its SHA-256 digest."""
    from app.tokens.service import create_token

    settings = load_settings()
    token = _in_transaction(
        settings,
        lambda session: create_token(session=session, name=name, role=role, actor=cli_actor()),
    )
    sys.stdout.write(f"{token}\n")
    sys.stdout.flush()
    console.print(
        f"[bold yellow]warning[/]: token [bold]{escape(name)}[/] ({role.value}) created. "
        "[bold]Store it now[/], in a secret store: it is shown only this once and cannot be "
        f"read back. Revoke it with `forewarn token revoke {escape(name)}`."
    )


@token_app.command("list")
def token_list() -> None:
    """List every token: name, role, origin, creation, last use, revocation. Never the token."""
    from app.tokens.schemas import TokenOut
    from app.tokens.service import list_tokens, to_out

    settings = load_settings()

    async def rows(session: AsyncSession) -> list[TokenOut]:
        return [to_out(row) for row in await list_tokens(session=session)]

    tokens = _in_transaction(settings, rows)
    table = Table("name", "role", "source", "created", "created by", "last used", "revoked")
    for token in tokens:
        table.add_row(
            escape(token.name),
            token.role.value,
            token.source,
            f"{token.created_at:%Y-%m-%d %H:%M}",
            escape(token.created_by),
            f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "-",
            f"[red]{token.revoked_at:%Y-%m-%d %H:%M}[/]" if token.revoked_at else "-",
        )
    Console().print(table)


@token_app.command("revoke")
def token_revoke(name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Revoke a stored token; API processes stop accepting it within 30 seconds."""
    from app.tokens.service import revoke_token

    settings = load_settings()

    async def revoke(session: AsyncSession) -> None:
        await revoke_token(session=session, name=name, actor=cli_actor())

    _in_transaction(settings, revoke)
    console.print(f"token {escape(name)} revoked; the API stops accepting it within 30 s")
