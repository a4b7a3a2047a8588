"""`make run`: the whole of Forewarn on the embedded default, with a fault to find.

Starts the embedded broker, a fresh SQLite file, a loopback SMTP server and SMS gateway,
every component, and a simulated network of a few hundred modems; about 20 s in, most modems
on one node go down. The console shows each outage transition and each notice as it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from app.logs import mask_email, mask_phone
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState
from app.settings import ApiToken, Role, Settings
from consumers.broker import free_port
from consumers.clients import make_producer
from forewarn.runtime import (
    COMPONENTS,
    Hooks,
    install_stop_signals,
    open_runtime,
    run_until_stopped,
)
from forewarn.simulator import DEMO_RULE, Fault, build_network, stream_heartbeats
from notifiers.channel import Notice
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.smtp_sink import SmtpSink

DEMO_DB = Path("forewarn-demo.db")
STATE_STYLE = {
    OutageState.SUSPECTED: "yellow",
    OutageState.OPEN: "bold red",
    OutageState.RESOLVED: "bold green",
    OutageState.CANCELLED: "dim",
}


def reset_demo_database() -> None:
    """Start every demo from an empty database file."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _masked(notice: Notice) -> str:
    return mask_email(notice.to) if notice.channel == "email" else mask_phone(notice.to)


class DemoConsole:
    """Prints one line per outage transition and per notice, and keeps the tallies."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self.sent: dict[tuple[str, str], int] = {}
        self.resolved: set[str] = set()
        self.by_stage: dict[tuple[str, str], int] = {}
        self.samples: set[tuple[str, str]] = set()  # (stage, language) whose SMS text was shown

    def _stamp(self) -> str:
        return f"[dim]{time.monotonic() - self.started:6.1f}s[/]"

    def on_event(self, event: OutageEvent) -> None:
        style = STATE_STYLE.get(event.state, "cyan")
        self.console.print(
            f"{self._stamp()} [{style}]outage {event.state.value.upper():9}[/] "
            f"{event.outage_id}  rule={event.rule_name}  {event.scope_level}={event.scope_id}"
        )
        if event.state is OutageState.RESOLVED:
            self.resolved.add(event.outage_id)

    def on_sent(self, row: Any, notice: Notice) -> None:
        key = (notice.channel, notice.language)
        self.sent[key] = self.sent.get(key, 0) + 1
        stage_key = (row.outage_id, row.stage)
        count = self.by_stage.get(stage_key, 0) + 1
        self.by_stage[stage_key] = count
        self.console.print(
            f"{self._stamp()} [green]notice sent[/] {row.stage:9} {notice.channel:5} "
            f"{notice.language}  customer={row.customer_id}  to={_masked(notice)}"
        )
        if notice.channel == "sms" and (row.stage, notice.language) not in self.samples:
            self.samples.add((row.stage, notice.language))
            self.console.print(f"           [dim]the SMS reads:[/] {notice.text}")

    def all_told_resolved(self) -> bool:
        """Whether some outage is resolved and its resolved notices match its detected ones."""
        return any(
            self.by_stage.get((outage, "resolved"), 0) >= self.by_stage.get((outage, "detected"), 1)
            for outage in self.resolved
        )

    def summary(self) -> Table:
        table = Table(title="Notices sent", show_edge=False)
        table.add_column("channel")
        table.add_column("language")
        table.add_column("count", justify="right")
        for (channel, language), count in sorted(self.sent.items()):
            table.add_row(channel, language, str(count))
        return table


async def _load_demo_data(
    api_url: str, token: str, inventory: dict[str, Any], rule: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as client:
        response = await client.put("/v1/inventory", json=inventory)
        response.raise_for_status()
        response = await client.post("/v1/rules", json=rule)
        response.raise_for_status()


async def run_demo(
    settings: Settings,
    *,
    console: Console,
    fault_after: float,
    fault_duration: float,
    rule_for: str,
    exit_when_resolved: bool,
) -> None:
    """Run the demo until Ctrl-C (or, when asked, until the outage is resolved and told)."""
    await asyncio.to_thread(reset_demo_database)
    token = secrets.token_urlsafe(24)
    port_free = _port_free(settings.api_host, settings.api_port)
    api_port = settings.api_port if port_free else free_port()
    network = build_network()
    faulty_node = sorted(set(network.device_node.values()))[2]
    view = DemoConsole(console)
    stop = asyncio.Event()
    install_stop_signals(stop)
    api_ready = asyncio.Event()

    with SmtpSink() as smtp, SmsGatewaySimulator() as gateway:
        settings = settings.model_copy(
            update={
                "database_url": f"sqlite+aiosqlite:///./{DEMO_DB}",
                "kafka_bootstrap_servers": None,
                "smtp_host": smtp.host,
                "smtp_port": smtp.port,
                "sms_gateway_url": gateway.url,
                "sms_gateway_token": SecretStr(gateway.credentials),
                "link_secret": SecretStr(secrets.token_urlsafe(24)),
                "api_port": api_port,
                "public_base_url": f"http://{settings.api_host}:{api_port}",
                "api_tokens": (ApiToken("demo", Role.ADMIN, SecretStr(token)),),
                # The demo's fault is short: say "resolved" as soon as the clear is persisted.
                "resolve_hold_minutes": 0,
            }
        )
        async with open_runtime(settings, embedded_broker=True, migrate=True) as runtime:
            api_url = runtime.settings.public_base_url
            console.print(
                Panel.fit(
                    f"Forewarn demo\n"
                    f"Kafka (embedded Tansu): {runtime.settings.kafka_bootstrap_servers}\n"
                    f"Database: {DEMO_DB}   SMTP sink: {smtp.host}:{smtp.port}   "
                    f"SMS gateway: {gateway.url}\n"
                    f"API: {api_url}  (try: curl -H 'Authorization: Bearer {token}' "
                    f"{api_url}/v1/outages)\n"
                    f"Network: {len(network.device_node)} modems on "
                    f"{len(set(network.device_node.values()))} nodes; fault on {faulty_node} "
                    f"after {fault_after:.0f}s for {fault_duration:.0f}s.  Ctrl-C stops.",
                    border_style="cyan",
                )
            )

            def on_event(event: OutageEvent) -> None:
                view.on_event(event)

            hooks = Hooks(
                on_event=on_event,
                on_sent=view.on_sent,
                on_api_ready=lambda _url: api_ready.set(),
            )
            components = asyncio.create_task(
                run_until_stopped(runtime, COMPONENTS, stop, hooks), name="components"
            )
            await asyncio.wait(
                {asyncio.create_task(api_ready.wait()), components},
                return_when=asyncio.FIRST_COMPLETED,
            )
            if components.done():
                await components
                return
            rule = {**DEMO_RULE, "for": rule_for}
            await _load_demo_data(api_url, token, network.inventory, rule)
            console.print(f"{view._stamp()} inventory and rule {DEMO_RULE['name']!r} loaded")
            producer = make_producer(runtime.settings)
            await producer.start()
            fault = Fault(node=faulty_node, start_after=fault_after, duration=fault_duration)
            simulator = asyncio.create_task(
                stream_heartbeats(
                    producer=producer,
                    topic=runtime.settings.topic("telemetry"),
                    network=network,
                    fault=fault,
                    stop=stop,
                )
            )
            try:
                if exit_when_resolved:
                    await _wait_until_told(view, stop)
                    stop.set()
                await components
            finally:
                stop.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await simulator
                await producer.stop()
    console.print(view.summary())
    console.print(
        f"SMS gateway received {len(gateway.messages)} messages; "
        f"SMTP server received {len(smtp.messages)} e-mails. Stopped cleanly."
    )


async def _wait_until_told(view: DemoConsole, stop: asyncio.Event) -> None:
    """Wait until an outage is resolved and every customer told of it was told it ended."""
    while not stop.is_set():
        if view.all_told_resolved():
            return
        await asyncio.sleep(0.5)
