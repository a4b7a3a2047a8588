"""`make run`: the whole of Forewarn on the embedded default, with a scenario to find.

Starts the embedded broker, a fresh SQLite file, a loopback SMTP server and SMS gateway and
every component, then plays forewarn/scenarios/demo.yaml into it: a few hundred modems and set-top
boxes, a fibre cut on one node, a power cut on a hub a little later, a modem that flaps, and
customers who start calling a few minutes into each fault. A live table shows each outage,
and how long before the first customer called Forewarn knew; every transition and notice is
printed as it happens. Scenario time runs faster than the wall clock (`--fault-duration`
sets how many wall seconds the first fault lasts), so the demo takes about two minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clock import as_utc, utc_now
from app.durations import parse_duration
from app.logs import mask_email, mask_phone
from app.net import free_port
from app.notifications.models import OutboxRow
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState
from app.outages.models import Outage
from app.rules.schemas import ContactsSpikeRule, RatioDownRule
from app.settings import CLOCK_SKEW_LIMIT_SECONDS, ApiToken, Role, Settings
from consumers.clients import make_producer
from forewarn.runtime import (
    COMPONENTS,
    Hooks,
    install_stop_signals,
    open_runtime,
    run_until_stopped,
)
from forewarn.scenario import SCENARIOS, Scenario, load_scenario
from forewarn.simnetwork import build_network
from forewarn.simulator import ScenarioResult, SimProgress, api_client, run_scenario
from notifiers.channel import Notice
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.smtp_sink import SmtpSink

DEMO_DB = Path("forewarn-demo.db")
DEMO_SCENARIO = SCENARIOS / "demo.yaml"
# The detector re-reads rules every 5 s: give it that, and a few heartbeats, before a fault.
MIN_FAULT_AFTER = 10.0
STATE_STYLE = {
    OutageState.SUSPECTED: "yellow",
    OutageState.OPEN: "bold red",
    OutageState.RESOLVED: "bold green",
    OutageState.CANCELLED: "dim",
}
CLOSED = {OutageState.RESOLVED.value, OutageState.CANCELLED.value}


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


def compress(
    scenario: Scenario,
    *,
    fault_after: float,
    fault_duration: float,
    rule_for: str,
    time_scale: float | None = None,
) -> Scenario:
    """Fit the scenario to the demo's knobs.

    The time scale makes the first fault that should open an outage last `fault_duration`
    wall seconds (unless `time_scale` is given); every fault moves so that one starts
    `fault_after` wall seconds in (at least `MIN_FAULT_AFTER`). `rule_for` is the `for` of
    the `ratio_down` rules (modems-down-on-node).
    """
    first = min(
        (f for f in scenario.faults if f.expects_outage), key=lambda f: f.start, default=None
    )
    scale = time_scale or (
        first.duration / fault_duration if first is not None else scenario.time_scale
    )
    shift = max(fault_after, MIN_FAULT_AFTER) * scale - (first.start if first else 0.0)
    faults = [f.model_copy(update={"start": max(0.0, f.start + shift)}) for f in scenario.faults]
    for_ = parse_duration(rule_for)
    rules = [
        r.model_copy(update={"for_": for_}) if isinstance(r, RatioDownRule) else r
        for r in scenario.rule_definitions
    ]
    return scenario.model_copy(update={"time_scale": scale, "faults": faults, "rules": rules})


@dataclass(frozen=True, slots=True)
class OutageRow:
    id: str
    state: str
    scope_level: str
    scope_id: str
    rule_name: str
    parent_id: str | None
    opened_at: datetime | None
    first_contact_at: datetime | None


class DemoView:
    """The live console: a line per transition, notice and scenario event, and a table."""

    def __init__(self, console: Console, scenario: Scenario) -> None:
        self.console = console
        self.scenario = scenario
        self.reactive = {
            r.name for r in scenario.rule_definitions if isinstance(r, ContactsSpikeRule)
        }
        self.progress = SimProgress(0.0, scenario.end, 0, 0, [])
        self.loaded = False
        self.sent: dict[tuple[str, str], int] = {}
        self.samples: set[tuple[str, str]] = set()  # (stage, language) whose SMS was shown
        self.outages: list[OutageRow] = []
        self.last_event = time.monotonic()

    def _stamp(self, at: float | None = None) -> str:
        seconds = int(self.progress.scenario_seconds if at is None else at)
        return f"[dim]+{seconds // 60:02d}:{seconds % 60:02d}[/]"

    def on_progress(self, progress: SimProgress) -> None:
        self.progress = progress
        if not self.loaded:
            self.loaded = True
            self.console.print(
                f"{self._stamp()} inventory and {len(self.scenario.rule_definitions)} rules "
                f"loaded; scenario {self.scenario.name!r} playing at "
                f"x{self.scenario.time_scale:g}"
            )
        for at, note in progress.notes:
            self.console.print(f"{self._stamp(at)} [cyan]scenario[/] {escape(note)}")

    def on_event(self, event: OutageEvent) -> None:
        self.last_event = time.monotonic()
        style = STATE_STYLE.get(event.state, "cyan")
        self.console.print(
            f"{self._stamp()} [{style}]outage {event.state.value.upper():9}[/] "
            f"{event.outage_id}  rule={event.rule_name}  {event.scope_level}={event.scope_id}"
        )

    def on_sent(self, row: Any, notice: Notice) -> None:
        key = (notice.channel, notice.language)
        self.sent[key] = self.sent.get(key, 0) + 1
        self.console.print(
            f"{self._stamp()} [green]notice sent[/] {row.stage:9} {notice.channel:5} "
            f"{notice.language}  customer={row.customer_id}  to={_masked(notice)}"
        )
        if notice.channel == "sms" and (row.stage, notice.language) not in self.samples:
            self.samples.add((row.stage, notice.language))
            self.console.print(f"           [dim]the SMS reads:[/] {escape(notice.text)}")

    async def poll(self, sessions: async_sessionmaker[AsyncSession], stop: asyncio.Event) -> None:
        """Keep the outage rows fresh from the database (lead times live there)."""
        while not stop.is_set():
            try:
                async with sessions() as session:
                    rows = list(await session.scalars(select(Outage).order_by(Outage.started_at)))
                self.outages = _ordered(rows)
            except SQLAlchemyError:  # SQLite busy for a moment: keep showing the last rows
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    def lead(self, row: OutageRow) -> str:
        """How long before the first customer call Forewarn knew, as far as is known."""
        if row.state == OutageState.SUSPECTED.value:
            return "[yellow]suspected: confirming before anyone is told[/]"
        if row.state == OutageState.CANCELLED.value:
            return "[dim]cleared before anyone was told[/]"
        if row.rule_name in self.reactive:
            return "opened by customer contacts"
        if row.opened_at is None:
            return ""
        if row.first_contact_at is None:
            return "no customer has called yet"
        minutes = (row.first_contact_at - row.opened_at).total_seconds() / 60
        if minutes >= 0:
            return f"[bold green]detected {minutes:.1f} min before the first customer call[/]"
        return f"[red]first customer call came {-minutes:.1f} min before detection[/]"

    def render(self) -> RenderableType:
        p = self.progress
        seconds, end = int(p.scenario_seconds), int(p.end)
        header = (
            f"scenario {seconds // 60:02d}:{seconds % 60:02d} of {end // 60:02d}:{end % 60:02d} "
            f"at x{self.scenario.time_scale:g}   {p.telemetry_messages:,} readings   "
            f"{p.contacts:,} customer contacts"
        )
        outages = Table(title="Outages", show_edge=False, expand=False)
        for column in ("state", "scope", "rule", "lead time"):
            outages.add_column(column)
        for row in self.outages:
            style = STATE_STYLE.get(OutageState(row.state), "cyan")
            scope = f"{'  ↳ ' if row.parent_id else ''}{row.scope_level} {row.scope_id}"
            outages.add_row(
                f"[{style}]{row.state}[/]", escape(scope), escape(row.rule_name), self.lead(row)
            )
        return Group(header, outages, self.summary())

    def summary(self) -> Table:
        table = Table(title="Notices sent", show_edge=False)
        table.add_column("channel")
        table.add_column("language")
        table.add_column("count", justify="right")
        for (channel, language), count in sorted(dict(self.sent).items()):
            table.add_row(channel, language, str(count))
        return table


def _ordered(rows: list[Outage]) -> list[OutageRow]:
    """Outages by start, each parent (a hub rolled up from its nodes) above its children."""
    first_seen = {o.id: i for i, o in enumerate(rows)}
    rows = sorted(
        rows,
        key=lambda o: (
            first_seen.get(o.parent_id or o.id, first_seen[o.id]),
            o.parent_id is not None,
            o.scope_id,
        ),
    )
    return [
        OutageRow(
            o.id,
            o.state,
            o.scope_level,
            o.scope_id,
            o.rule_name,
            o.parent_id,
            as_utc(o.opened_at) if o.opened_at else None,
            as_utc(o.first_contact_at) if o.first_contact_at else None,
        )
        for o in rows
    ]


async def _nothing_due(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether every notice that is due has been sent (a quiet-hours one may wait)."""
    try:
        async with sessions() as session:
            waiting = await session.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(
                    or_(
                        OutboxRow.state == "sending",
                        (OutboxRow.state == "pending") & (OutboxRow.next_attempt_at <= utc_now()),
                    )
                )
            )
    except SQLAlchemyError:  # SQLite busy: ask again on the next round
        return False
    return not waiting


async def _wait_until_told(
    view: DemoView,
    sessions: async_sessionmaker[AsyncSession],
    stop: asyncio.Event,
    settle: timedelta = timedelta(seconds=3),
) -> None:
    """Wait until the faults are over, every outage is closed, and its notices are out."""
    last_fault_end = max((f.end for f in view.scenario.faults), default=0.0)
    calm = 0
    while not stop.is_set():
        over = view.progress.scenario_seconds >= last_fault_end
        closed = bool(view.outages) and all(o.state in CLOSED for o in view.outages)
        quiet = time.monotonic() - view.last_event >= settle.total_seconds()
        calm = calm + 1 if over and closed and quiet and await _nothing_due(sessions) else 0
        if calm >= 3:
            return
        await asyncio.sleep(0.5)


async def _play(
    view: DemoView,
    sessions: async_sessionmaker[AsyncSession],
    stop: asyncio.Event,
    components: asyncio.Task[None],
    playing: Coroutine[Any, Any, ScenarioResult],
    exit_when_resolved: bool,
) -> None:
    """Play the scenario until Ctrl-C, a failure, or (when asked) everything is told."""
    simulation = asyncio.create_task(playing, name="scenario")
    poller = asyncio.create_task(view.poll(sessions, stop), name="outage-poller")
    waiters: list[asyncio.Task[Any]] = [simulation]
    if exit_when_resolved:
        waiters.append(asyncio.create_task(_wait_until_told(view, sessions, stop)))
    await asyncio.wait({components, *waiters}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    for result in await asyncio.gather(poller, *waiters, return_exceptions=True):
        if isinstance(result, Exception):
            raise result


async def run_demo(
    settings: Settings,
    *,
    console: Console,
    fault_after: float,
    fault_duration: float,
    rule_for: str,
    exit_when_resolved: bool,
    scenario_path: Path = DEMO_SCENARIO,
    time_scale: float | None = None,
) -> None:
    """Run the demo until Ctrl-C (or, when asked, until every outage is resolved and told)."""
    scenario = compress(
        await asyncio.to_thread(load_scenario, scenario_path),
        fault_after=fault_after,
        fault_duration=fault_duration,
        rule_for=rule_for,
        time_scale=time_scale,
    )
    network = build_network(scenario)
    await asyncio.to_thread(reset_demo_database)
    token = secrets.token_urlsafe(24)
    port_free = _port_free(settings.api_host, settings.api_port)
    api_port = settings.api_port if port_free else free_port()
    view = DemoView(console, scenario)
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
                # Scenario time runs fast: say "resolved" as soon as the clear is persisted.
                "resolve_hold_minutes": 0,
                # Scenario time runs ahead of the wall clock on purpose, further while the demo
                # lingers: the demo's detector must not take it for a broken clock.
                "max_clock_skew_seconds": CLOCK_SKEW_LIMIT_SECONDS,
            }
        )
        async with open_runtime(settings, embedded_broker=True, migrate=True) as runtime:
            api_url = runtime.settings.public_base_url
            kinds = {d.kind for d in network.devices}
            counts = ", ".join(
                f"{sum(d.kind == k for d in network.devices)} {k}" for k in sorted(kinds)
            )
            faults = "; ".join(f"{f.kind} on {f.scope_id}" for f in scenario.faults)
            console.print(
                Panel.fit(
                    f"Forewarn demo\n"
                    f"Kafka (embedded Tansu): {runtime.settings.kafka_bootstrap_servers}\n"
                    f"Database: {DEMO_DB}   SMTP sink: {smtp.host}:{smtp.port}   "
                    f"SMS gateway: {gateway.url}\n"
                    f"API: {api_url}  (try: curl -H 'Authorization: Bearer {token}' "
                    f"{api_url}/v1/outages)\n"
                    f"Scenario {scenario.name!r} at x{scenario.time_scale:g}: devices {counts}, "
                    f"{len(network.customers)} customers\n"
                    f"Faults: {escape(faults)}.  Ctrl-C stops.",
                    border_style="cyan",
                )
            )
            hooks = Hooks(
                on_event=view.on_event,
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
            producer = make_producer(runtime.settings)
            await producer.start()
            try:
                async with api_client(api_url, token) as api:
                    playing = run_scenario(
                        scenario,
                        api=api,
                        producer=producer,
                        telemetry_topic=runtime.settings.topic("telemetry"),
                        contacts_topic=runtime.settings.topic("contacts"),
                        stop=stop,
                        linger=True,
                        on_progress=view.on_progress,
                        network=network,
                    )
                    with Live(console=console, get_renderable=view.render, refresh_per_second=2):
                        await _play(
                            view, runtime.sessions, stop, components, playing, exit_when_resolved
                        )
            finally:
                stop.set()
                await producer.stop()
                await components
    if not console.is_terminal:
        console.line()  # the live view's last frame ends without one there
    console.print(
        f"SMS gateway received {len(gateway.messages)} messages; "
        f"SMTP server received {len(smtp.messages)} e-mails. Stopped cleanly."
    )
