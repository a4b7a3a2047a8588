"""Notification fan-out: a 100k-customer outage, from open to the last SMS sent.

1. Planning: `plan_notices` for the `detected` stage of one outage over 100k customers
   (bulk statements), timed on its own.
2. Sending: one `Dispatcher` (this process) against the loopback SMS gateway running in its
   own process (keep-alive HTTP), until every row is sent; SMS/s per dispatcher process.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, select

from app.db import create_engine, session_factory, transaction
from app.inventory.schemas import InventoryIn
from app.inventory.service import replace_inventory
from app.migrate import upgrade_to_head
from app.net import free_port
from app.notifications.models import OutboxRow
from app.notifications.planner import plan_notices
from app.outages.lifecycle import OutageState, Transition
from app.outages.service import apply_transitions
from app.rules.schemas import RatioDownRule
from app.rules.service import create_rule
from app.settings import Settings
from notifiers import sms_http
from notifiers.dispatcher import Dispatcher
from notifiers.render import Renderer

console = Console()
LANGUAGES = ["en", "de", "es", "vi", "hi"]


def inventory(customers: int) -> InventoryIn:
    return InventoryIn.model_validate(
        {
            "nodes": [
                {"id": "north", "level": "region"},
                {"id": "hub-1", "level": "hub", "parent": "north"},
                {"id": "node-1", "level": "node", "parent": "hub-1"},
            ],
            "devices": [
                {"id": f"cpe-{i}", "node": "node-1", "services": ["internet"]}
                for i in range(customers)
            ],
            "customers": [
                {
                    "id": f"c-{i}",
                    "name": f"Customer {i}",
                    "phone": f"+4915{110000000 + i}",
                    "language": LANGUAGES[i % len(LANGUAGES)],
                    "channels": ["sms"],
                    "devices": [f"cpe-{i}"],
                }
                for i in range(customers)
            ],
        }
    )


async def measure(customers: int, db: str, url: str, credentials: str) -> dict[str, float]:
    await asyncio.to_thread(upgrade_to_head, db)
    engine = create_engine(db)
    sessions = session_factory(engine)
    console.print(f"loading {customers:,} customers into {db.split('://')[0]} ...")
    doc = await asyncio.to_thread(inventory, customers)
    rule = RatioDownRule.model_validate(
        {
            "name": "bench",
            "kind": "ratio_down",
            "metric": "cpe.online",
            "threshold": 0.3,
            "clear_threshold": 0.1,
            "services": ["internet"],
        }
    )
    now = datetime.now(UTC) - timedelta(seconds=1)
    async with transaction(sessions) as session:
        await replace_inventory(session=session, doc=doc)
        stored = await create_rule(session=session, rule=rule)
        [event] = await apply_transitions(
            session=session,
            transitions=[
                Transition(
                    rule_id=stored.id,
                    rule_version=1,
                    rule_name="bench",
                    scope_level="node",
                    scope_id="node-1",
                    to_state=OutageState.OPEN,
                    at=now,
                    started_at=now,
                    severity="critical",
                    services=("internet",),
                )
            ],
            next_update_interval=timedelta(minutes=30),
        )
    assert event is not None  # noqa: S101 - a fresh outage always yields its event
    started = time.perf_counter()
    async with transaction(sessions) as session:
        planned = await plan_notices(session=session, event=event, now=now)
    planning = time.perf_counter() - started
    console.print(f"planned {planned:,} notices in {planning:.2f} s")

    settings = Settings(
        database_url=db,
        sms_gateway_url=url,
        sms_gateway_token=SecretStr(credentials),
        sms_rate_per_second=100_000,
        dispatch_batch_size=1000,
    )
    dispatcher = Dispatcher(
        sessions=sessions,
        channels={"sms": sms_http.from_settings(settings)},
        renderer=Renderer(),
        settings=settings,
        concurrency=64,
    )
    sent = 0
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("sending", total=planned)
        while sent < planned:
            claimed = await dispatcher.dispatch_once()
            if claimed == 0:
                break
            sent += claimed
            progress.update(task, completed=sent)
    sending = time.perf_counter() - started
    await dispatcher.aclose()
    async with sessions() as session:
        delivered = await session.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.state == "sent")
        )
    await engine.dispose()
    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{url}/_stats")).json()
    figures = {
        "customers": customers,
        "database": db.split("+")[0],
        "planning_s": round(planning, 2),
        "sent": int(delivered or 0),
        "gateway_messages": stats["messages"],
        "sending_s": round(sending, 2),
        "sms_per_s_per_process": round((delivered or 0) / sending),
    }
    console.print(figures)
    return figures


def run_fanout(customers: int, database_url: str | None) -> dict[str, float]:
    """Start the gateway in its own process, then plan and send; return the figures."""
    port = free_port()
    gateway = subprocess.Popen(  # noqa: S603 - our own simulator
        [sys.executable, "-m", "notifiers.gateway_sim", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url, credentials = (gateway.stdout.readline() if gateway.stdout else "").split()
        with tempfile.TemporaryDirectory() as tmp:
            db = database_url or f"sqlite+aiosqlite:///{tmp}/fanout.db"
            return asyncio.run(measure(customers, db, url, credentials))
    finally:
        gateway.terminate()
        gateway.wait(10)
