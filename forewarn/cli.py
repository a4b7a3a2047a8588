"""The `forewarn` command: run components, manage the database, import inventory, demo."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import typer
from pydantic import SecretStr
from rich.console import Console

from app.settings import Settings
from forewarn.cli_common import cli_actor, console, load_settings
from forewarn.rules_cli import rules_app
from forewarn.simulate_cli import simulate
from forewarn.tokens_cli import token_app

app = typer.Typer(
    help="Forewarn: detect telecom outages before customers call, and keep them informed.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
inventory_app = typer.Typer(help="Network and customer inventory.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(inventory_app, name="inventory")
app.add_typer(rules_app, name="rules")
app.add_typer(token_app, name="token")


def _run_components(
    names: Collection[str], *, embedded_broker: bool, dev_sinks: bool = False
) -> None:
    from rich.markup import escape

    from forewarn.probes import MetricsPortError
    from forewarn.runtime import (
        Hooks,
        delivery_warnings,
        install_stop_signals,
        open_runtime,
        run_until_stopped,
    )

    settings = load_settings()
    needs_kafka = bool({"detector", "planner"} & set(names))
    if needs_kafka and settings.kafka_bootstrap_servers is None and not embedded_broker:
        console.print(
            "[bold red]configuration error[/]: FOREWARN_KAFKA_BOOTSTRAP_SERVERS is not set; "
            "set it, or use `forewarn all`, which starts the embedded broker"
        )
        raise typer.Exit(code=2)

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        migrate = settings.database_url.startswith("sqlite")
        with contextlib.ExitStack() as sinks:
            configured, hooks = settings, Hooks()
            if dev_sinks:
                configured = _start_dev_sinks(settings, sinks)
                hooks = Hooks(on_sent=_print_sent)
            async with open_runtime(
                configured, embedded_broker=embedded_broker, migrate=migrate
            ) as rt:
                kafka = rt.settings.kafka_bootstrap_servers or "not used"
                console.print(
                    f"forewarn: running {', '.join(sorted(names))} (Kafka {kafka}); Ctrl-C stops"
                )
                if "notifier" in names:
                    for warning in delivery_warnings(rt.settings):
                        console.print(f"[bold yellow]warning[/]: {escape(warning)}")
                await run_until_stopped(rt, names, stop, hooks)

    try:
        asyncio.run(main())
    except MetricsPortError as exc:
        console.print(f"[bold red]configuration error[/]: {escape(str(exc))}")
        raise typer.Exit(code=2) from None


@app.command()
def api() -> None:
    """Serve the REST API, /metrics, /healthz and /readyz."""
    _run_components({"api"}, embedded_broker=False)


@app.command()
def detector() -> None:
    """Consume telemetry, detect outages, publish outage events."""
    _run_components({"detector"}, embedded_broker=False)


@app.command()
def planner() -> None:
    """Consume outage events and plan customer notices."""
    _run_components({"planner"}, embedded_broker=False)


@app.command()
def notifier() -> None:
    """Send planned notices by SMS and e-mail."""
    _run_components({"notifier"}, embedded_broker=False)


def _start_dev_sinks(settings: Settings, stack: contextlib.ExitStack) -> Settings:
    """Start the loopback SMTP server and SMS gateway `forewarn demo` uses; point at them."""
    from notifiers.gateway_sim import SmsGatewaySimulator
    from notifiers.smtp_sink import SmtpSink

    smtp = stack.enter_context(SmtpSink())
    gateway = stack.enter_context(SmsGatewaySimulator())
    console.print(
        f"dev sinks: e-mail to the SMTP server on {smtp.host}:{smtp.port}, SMS to the gateway "
        f"on {gateway.url}; both keep what they receive in memory and deliver nothing"
    )
    return settings.model_copy(
        update={
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "smtp_username": None,
            "smtp_password": None,
            "sms_gateway_url": gateway.url,
            "sms_gateway_token": SecretStr(gateway.credentials),
        }
    )


def _print_sent(row: Any, notice: Any) -> None:
    """One line per notice a dev sink received; the address masked."""
    from app.logs import mask_email, mask_phone

    masked = mask_email(notice.to) if notice.channel == "email" else mask_phone(notice.to)
    console.print(
        f"notice sent: {row.stage} {notice.channel} {notice.language} "
        f"customer={row.customer_id} to={masked}"
    )


@app.command(name="all")
def run_all(
    dev_sinks: bool = typer.Option(
        False,
        "--dev-sinks",
        help="Send e-mail and SMS to the loopback SMTP server and SMS gateway that `forewarn "
        "demo` uses (kept in memory, delivered nowhere) instead of the configured ones.",
    ),
) -> None:
    """Run every component in one process (the embedded broker when no Kafka is configured)."""
    _run_components(
        {"api", "detector", "planner", "notifier"}, embedded_broker=True, dev_sinks=dev_sinks
    )


@app.command()
def broker() -> None:
    """Start the embedded Kafka-protocol broker, print its address, run until Ctrl-C."""
    from consumers.broker import TOPICS, EmbeddedBroker, ensure_topics

    settings = load_settings()

    async def main() -> None:
        from forewarn.runtime import install_stop_signals

        stop = asyncio.Event()
        install_stop_signals(stop)
        with EmbeddedBroker() as embedded:
            await ensure_topics(
                embedded.bootstrap_servers,
                [settings.topic(t) for t in TOPICS],
                settings.topic_partitions,
            )
            sys.stdout.write(f"{embedded.bootstrap_servers}\n")
            sys.stdout.flush()
            console.print(
                f"embedded broker on {embedded.bootstrap_servers}; "
                f"export FOREWARN_KAFKA_BOOTSTRAP_SERVERS={embedded.bootstrap_servers}"
            )
            await stop.wait()

    asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to FOREWARN_DATABASE_URL."""
    from app.migrate import head_revision, upgrade_to_head

    settings = load_settings()
    upgrade_to_head(settings.database_url)
    console.print(f"database at revision {head_revision(settings.database_url)}")


@inventory_app.command("import")
def inventory_import(path: Path = typer.Argument(..., exists=True)) -> None:
    """Replace the inventory with a JSON document (the PUT /v1/inventory body) or a CSV folder.

    A folder holds nodes.csv and, optionally, devices.csv and customers.csv.
    """
    from rich.markup import escape

    from app.db import create_engine, session_factory, transaction
    from app.exceptions import InvalidInputError
    from app.inventory.csv_import import import_inventory_dir
    from app.inventory.service import (
        import_inventory_file,
        inventory_summary,
        record_replacement,
    )

    settings = load_settings()
    is_dir = path.is_dir()

    async def main() -> None:
        engine = create_engine(settings.database_url)
        try:
            async with transaction(session_factory(engine)) as session:
                before = await inventory_summary(session=session)
                if is_dir:
                    summary = await import_inventory_dir(session=session, path=path)
                else:
                    summary = await import_inventory_file(session=session, path=path)
                await record_replacement(
                    session=session, actor=cli_actor(), before=before, after=summary
                )
        finally:
            await engine.dispose()
        console.print(f"inventory imported: {summary}")

    try:
        asyncio.run(main())
    except InvalidInputError as exc:
        for error in exc.errors:
            console.print(f"[red]{escape(error['field'])}[/]: {escape(error['reason'])}")
        console.print(f"[bold red]{len(exc.errors)} error(s); nothing imported[/]")
        raise typer.Exit(code=1) from None


@app.command()
def demo(
    fault_after: float = typer.Option(20.0, help="Seconds before the fault starts."),
    fault_duration: float = typer.Option(60.0, help="Seconds the fault lasts."),
    rule_for: str = typer.Option("30s", "--for", help="The demo rule's `for` duration."),
    exit_when_resolved: bool = typer.Option(
        False, help="Stop on its own once the outage is resolved and its notices sent."
    ),
) -> None:
    """Run everything on the embedded default with a simulated network and an injected fault."""
    from forewarn.demo import run_demo

    settings = load_settings(log_level="warning")
    asyncio.run(
        run_demo(
            settings,
            console=Console(),
            fault_after=fault_after,
            fault_duration=fault_duration,
            rule_for=rule_for,
            exit_when_resolved=exit_when_resolved,
        )
    )


app.command("simulate")(simulate)


def main() -> None:
    app()
