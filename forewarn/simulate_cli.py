"""`forewarn simulate SCENARIO.yaml`: play a scenario into a running Forewarn and grade it.

Loads the scenario's network and rules through the REST API, streams its telemetry and
customer contacts into Kafka with a progress bar, then asks the API which outages opened and
says, fault by fault, whether Forewarn knew before the first customer called. The exit code
is 1 when a fault went unseen (or was seen too late) or a healthy place was flagged.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.rules.schemas import ContactsSpikeRule
from app.settings import Role, Settings
from forewarn.cli_common import console, load_settings
from forewarn.scenario import bundled_scenarios, load_scenario, scenario_path
from forewarn.simulator import (
    FaultReport,
    ScenarioResult,
    SimProgress,
    SimulationError,
    api_client,
    event_clock,
    run_scenario,
)

# Detectors re-read rules every 5 s and need a few heartbeats of each device before a fault.
EARLIEST_FAULT_WALL_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class FaultVerdict:
    fault: FaultReport
    outage: dict[str, Any] | None  # the earliest outage a telemetry rule opened on its places
    ok: bool
    summary: str


@dataclass(frozen=True, slots=True)
class Assessment:
    faults: list[FaultVerdict]
    unexpected: list[dict[str, Any]]  # outages on places no fault touched

    @property
    def ok(self) -> bool:
        return not self.unexpected and all(v.ok for v in self.faults)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _judge(fault: FaultReport, here: list[dict[str, Any]], reactive: set[str]) -> FaultVerdict:
    if not fault.expects_outage:
        during = [o for o in here if fault.started_at <= _at(o["started_at"]) <= fault.ended_at]
        if during:
            return FaultVerdict(fault, during[0], False, f"{len(during)} outage(s) opened")
        return FaultVerdict(fault, None, True, "no outage, as expected")
    proactive = sorted(
        (o for o in here if o["rule_name"] not in reactive and o.get("opened_at")),
        key=lambda o: _at(o["opened_at"]),
    )
    if not proactive:
        return FaultVerdict(fault, None, False, "not detected")
    first = proactive[0]
    if fault.first_call_at is None:
        return FaultVerdict(fault, first, True, "detected; nobody called")
    lead = (fault.first_call_at - _at(first["opened_at"])).total_seconds() / 60
    if lead > 0:
        return FaultVerdict(fault, first, True, f"detected {lead:.1f} min before the first call")
    return FaultVerdict(fault, first, False, f"detected {-lead:.1f} min after the first call")


def assess(
    result: ScenarioResult, outages: list[dict[str, Any]], *, reactive_rules: set[str]
) -> Assessment:
    """Match the outages `GET /v1/outages` lists with the faults the scenario injected.

    A fault that should open an outage is detected when a rule other than the reactive
    (`contacts_spike`) ones opened one on its places, and in time when that was before its
    first customer contact. A fault that should not (a flapping modem, maintenance) passes
    when no outage started on its places while it lasted. Any outage elsewhere is unexpected;
    a correlated parent is unexpected only when one of its children is.
    """
    mine = [o for o in outages if _at(o["started_at"]) >= result.started_at]
    verdicts = [
        _judge(f, [o for o in mine if o["scope_id"] in set(f.places)], reactive_rules)
        for f in result.faults
    ]
    faulty = {p for f in result.faults if f.expects_outage for p in f.places}
    children: dict[str, list[dict[str, Any]]] = {}
    for outage in mine:
        if outage.get("parent_id"):
            children.setdefault(outage["parent_id"], []).append(outage)

    def expected(outage: dict[str, Any]) -> bool:
        if outage["scope_id"] in faulty:
            return True
        kids = children.get(outage["id"], [])
        return bool(outage.get("is_parent") and kids and all(expected(k) for k in kids))

    return Assessment(verdicts, [o for o in mine if not expected(o)])


async def list_outages_since(api: httpx.AsyncClient, since: datetime) -> list[dict[str, Any]]:
    """Every outage that started at or after `since` (the API lists newest first)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"after": cursor} if cursor else {})}
        response = await api.get("/v1/outages", params=params)
        if response.is_error:
            raise SimulationError(f"GET /v1/outages: HTTP {response.status_code}")
        page = response.json()
        items = page["items"]
        found += [o for o in items if _at(o["started_at"]) >= since]
        cursor = page.get("next_cursor")
        if not cursor or not items or _at(items[-1]["started_at"]) < since:
            return found


def _clock(result_start: datetime, value: datetime | str | None) -> str:
    if value is None:
        return "-"
    moment = _at(value) if isinstance(value, str) else value
    seconds = int((moment - result_start).total_seconds())
    return f"{'-' if seconds < 0 else '+'}{abs(seconds) // 60:02d}:{abs(seconds) % 60:02d}"


def assessment_table(result: ScenarioResult, assessment: Assessment) -> Table:
    """Fault by fault: where, when it began, when Forewarn opened an outage, first call."""
    table = Table(title=f"{result.scenario}: did Forewarn know before the phones rang?")
    for column in ("fault", "scope", "began", "outage opened", "first call", "verdict"):
        table.add_column(column)
    start = result.started_at
    for verdict in assessment.faults:
        fault, outage = verdict.fault, verdict.outage
        opened = (
            f"{_clock(start, outage.get('opened_at') or outage['started_at'])} "
            f"{escape(outage['rule_name'])}"
            if outage
            else "-"
        )
        style = "green" if verdict.ok else "bold red"
        table.add_row(
            fault.kind,
            escape(fault.scope_id),
            _clock(start, fault.started_at),
            opened,
            _clock(start, fault.first_call_at),
            f"[{style}]{escape(verdict.summary)}[/]",
        )
    for outage in assessment.unexpected:
        table.add_row(
            "[bold red]none[/]",
            escape(outage["scope_id"]),
            "-",
            f"{_clock(start, outage.get('opened_at') or outage['started_at'])} "
            f"{escape(outage['rule_name'])}",
            "-",
            "[bold red]flagged a healthy place[/]",
        )
    return table


def _token(settings: Settings, token: str | None) -> str:
    if token:
        return token
    for configured in settings.api_tokens:
        if configured.role is Role.ADMIN:
            return configured.token.get_secret_value()
    raise typer.BadParameter(
        "give --token (or FOREWARN_API_TOKEN): an admin token of the target API",
        param_hint="--token",
    )


async def _confirm_replace(api: httpx.AsyncClient, api_url: str, yes: bool) -> None:
    response = await api.get("/v1/inventory/summary")
    if response.is_error:
        raise SimulationError(f"GET /v1/inventory/summary: HTTP {response.status_code}")
    summary = response.json()
    if yes or not summary.get("nodes"):
        return
    question = (
        f"{api_url} holds an inventory ({summary['nodes']} places, {summary['devices']} "
        f"devices, {summary['customers']} customers); the scenario replaces it and updates "
        "rules of the same names. Go on?"
    )
    if not sys.stdin.isatty() or not typer.confirm(question):
        raise SimulationError("not replacing the inventory; pass --yes to allow it")


def simulate(
    scenario_file: str = typer.Argument(
        ...,
        metavar="SCENARIO",
        help="A scenario file (see docs/simulator.md), or the name of a bundled one: "
        f"{', '.join(bundled_scenarios())}.",
    ),
    api: str | None = typer.Option(
        None,
        "--api",
        help="Base URL of the Forewarn API (default: http://FOREWARN_API_HOST:FOREWARN_API_PORT).",
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="FOREWARN_API_TOKEN",
        help="An admin API token (default: the first admin token in FOREWARN_API_TOKENS).",
    ),
    bootstrap_servers: str | None = typer.Option(
        None,
        "--bootstrap-servers",
        help="Kafka bootstrap servers (default: FOREWARN_KAFKA_BOOTSTRAP_SERVERS).",
    ),
    time_scale: float | None = typer.Option(
        None, min=0.001, max=1000, help="Scenario seconds per wall second (overrides the file)."
    ),
    report: Path | None = typer.Option(
        None, dir_okay=False, help="Write the result and the grading as JSON to this file."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Replace a non-empty inventory."),
    assess_after: float = typer.Option(
        5.0, min=0, help="Seconds to let the detector catch up before grading."
    ),
) -> None:
    """Play a scenario into a running Forewarn (`forewarn all`) and grade what it detected."""
    from consumers.clients import make_producer
    from forewarn.runtime import install_stop_signals

    settings = load_settings(log_level="warning")
    try:
        scenario = load_scenario(scenario_path(scenario_file))
        if time_scale is not None:
            scenario = scenario.model_copy(update={"time_scale": time_scale})
    except (ValidationError, yaml.YAMLError, ValueError) as exc:
        console.print(f"[bold red]{escape(str(scenario_file))}[/]: {escape(str(exc))}")
        raise typer.Exit(code=2) from None
    first = min((f.start for f in scenario.faults), default=None)
    if first is not None and first / scenario.time_scale < EARLIEST_FAULT_WALL_SECONDS:
        console.print(
            f"[yellow]the first fault begins {first / scenario.time_scale:.0f} wall seconds in; "
            f"detectors re-read rules every 5 s: start it later or lower the time scale[/]"
        )
    servers = bootstrap_servers or settings.kafka_bootstrap_servers
    if not servers:
        console.print("[bold red]give --bootstrap-servers or FOREWARN_KAFKA_BOOTSTRAP_SERVERS[/]")
        raise typer.Exit(code=2)
    settings = settings.model_copy(update={"kafka_bootstrap_servers": servers})
    api_url = api or f"http://{settings.api_host}:{settings.api_port}"
    secret = _token(settings, token)
    reactive = {r.name for r in scenario.rule_definitions if isinstance(r, ContactsSpikeRule)}
    out = Console()

    async def main() -> tuple[ScenarioResult, Assessment | None]:
        stop = asyncio.Event()
        install_stop_signals(stop)
        async with api_client(api_url, secret) as client:
            await _confirm_replace(client, api_url, yes)
            producer = make_producer(settings)
            await producer.start()
            columns = (
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[clock]}"),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
            )
            try:
                with Progress(*columns, console=out) as progress:
                    task = progress.add_task(
                        escape(scenario.name), total=scenario.end, clock="", counts=""
                    )

                    def on_progress(p: SimProgress) -> None:
                        seconds = int(p.scenario_seconds)
                        clock = f"{seconds // 60:02d}:{seconds % 60:02d}"
                        progress.update(
                            task,
                            completed=p.scenario_seconds,
                            clock=f"scenario {clock} (x{scenario.time_scale:g})",
                            counts=f"{p.telemetry_messages:,} readings, {p.contacts:,} contacts",
                        )
                        for at, note in p.notes:
                            stamp = f"+{int(at) // 60:02d}:{int(at) % 60:02d}"
                            progress.console.print(f"[dim]{stamp}[/] {escape(note)}")

                    not_before = await event_clock(
                        servers,
                        telemetry_topic=settings.topic("telemetry"),
                        contacts_topic=settings.topic("contacts"),
                        now=time.time(),
                    )
                    if not_before > time.time() + 1:
                        progress.console.print(
                            f"[dim]an earlier compressed run left the event clock "
                            f"{(not_before - time.time()) / 60:.1f} min ahead: starting there[/]"
                        )
                    lead = not_before - time.time() + scenario.end * (1 - 1 / scenario.time_scale)
                    if lead > settings.max_clock_skew_seconds:
                        progress.console.print(
                            f"[yellow]this run takes event time up to {lead / 60:.1f} min ahead "
                            f"of the wall clock; a detector dead-letters telemetry dated more "
                            f"than FOREWARN_MAX_CLOCK_SKEW_SECONDS "
                            f"({settings.max_clock_skew_seconds:g} s) ahead of its clock: raise "
                            f"it there or lower the time scale[/]"
                        )
                    result = await run_scenario(
                        scenario,
                        api=client,
                        producer=producer,
                        telemetry_topic=settings.topic("telemetry"),
                        contacts_topic=settings.topic("contacts"),
                        stop=stop,
                        on_progress=on_progress,
                        not_before=not_before,
                    )
            finally:
                await producer.stop()
            if stop.is_set():
                return result, None
            await asyncio.sleep(assess_after)
            outages = await list_outages_since(client, result.started_at)
        return result, assess(result, outages, reactive_rules=reactive)

    try:
        result, assessment = asyncio.run(main())
    except (SimulationError, httpx.HTTPError, OSError) as exc:
        console.print(f"[bold red]simulation failed[/]: {escape(str(exc) or type(exc).__name__)}")
        raise typer.Exit(code=1) from None
    out.print(
        f"{result.telemetry_messages:,} readings and {result.contacts:,} contacts in "
        f"{result.wall_seconds:.0f}s ({result.scenario_seconds / 60:.1f} scenario minutes)"
        + ("" if result.completed else "; stopped before the end")
    )
    if assessment is not None:
        out.print(assessment_table(result, assessment))
    if report is not None:
        report.write_bytes(
            orjson.dumps(_report_json(result, assessment), option=orjson.OPT_INDENT_2)
        )
    if assessment is not None and not assessment.ok:
        raise typer.Exit(code=1)


def _report_json(result: ScenarioResult, assessment: Assessment | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"result": result.model_dump(mode="json")}
    if assessment is not None:
        doc["ok"] = assessment.ok
        doc["faults"] = [
            {"scope_id": v.fault.scope_id, "kind": v.fault.kind, "ok": v.ok, "summary": v.summary}
            for v in assessment.faults
        ]
        doc["unexpected"] = assessment.unexpected
    return doc
