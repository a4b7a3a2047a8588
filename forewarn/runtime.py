"""Wire Forewarn's components into one process: the composition root.

`app/` (the core and API), `consumers/` and `notifiers/` know nothing of each other's
construction; this module builds them from one `Settings` and runs the chosen ones until
asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Collection, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import create_engine, retry_until_done, session_factory, transaction
from app.main import create_app
from app.migrate import upgrade_to_head
from app.outages.events import OutageEvent
from app.serving import QuietServer, serve_until
from app.settings import Settings
from app.tokens.service import seed_tokens
from consumers.broker import TOPICS, EmbeddedBroker, ensure_topics
from consumers.contact_sink import KafkaContactSink
from consumers.outage_events import Planner
from consumers.recorded import KafkaRecordedTelemetry
from consumers.telemetry import AfterPersist, Detector
from forewarn.probes import bind_metrics_port, create_probe_app, process_checks, serve_probes
from notifiers import email_smtp, sms_http, webhook
from notifiers.channel import Channel
from notifiers.dispatcher import Dispatcher
from notifiers.preview import RenderedUpdatePreviewer
from notifiers.render import Renderer

log = structlog.get_logger("forewarn.runtime")

COMPONENTS = ("api", "detector", "planner", "notifier")
SEED_RETRY_SECONDS = 10.0
OnSent = Callable[..., Any]


@dataclass
class Hooks:
    """Callbacks the console (CLI or demo) uses to show what happens; tests add their own."""

    on_event: Callable[[OutageEvent], Any] | None = None
    on_sent: OnSent | None = None
    on_api_ready: Callable[[str], Any] | None = None
    # The detector calls this between its database commit and its publish.
    after_persist: AfterPersist | None = None


@dataclass
class Runtime:
    """What a running process holds: its settings, database and optional embedded broker."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: EmbeddedBroker | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # The detectors this process built: the probe server's readiness asks them for partitions.
    detectors: list[Detector] = field(default_factory=list)


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, *, embedded_broker: bool, migrate: bool
) -> AsyncIterator[Runtime]:
    """Start the broker when asked, make sure the topics and the schema exist, then yield."""
    broker: EmbeddedBroker | None = None
    if settings.kafka_bootstrap_servers is None and embedded_broker:
        broker = await asyncio.to_thread(EmbeddedBroker().start)
        settings = settings.model_copy(
            update={
                "kafka_bootstrap_servers": broker.bootstrap_servers,
                # The embedded broker holds a group join for half the session timeout.
                "kafka_session_timeout_ms": min(settings.kafka_session_timeout_ms, 6000),
            }
        )
        log.info("embedded broker started", bootstrap_servers=broker.bootstrap_servers)
    engine = create_engine(settings.database_url)
    try:
        if migrate:
            await asyncio.to_thread(upgrade_to_head, settings.database_url)
        if settings.kafka_bootstrap_servers is not None:
            await ensure_topics(
                settings.kafka_bootstrap_servers,
                [settings.topic(name) for name in TOPICS],
                settings.topic_partitions,
            )
        yield Runtime(settings, engine, session_factory(engine), broker)
    finally:
        await engine.dispose()
        if broker is not None:
            await asyncio.to_thread(broker.stop)


def delivery_warnings(settings: Settings) -> list[str]:
    """What a notifier with these settings cannot send, in words for its operator."""
    if settings.sms_gateway_url:
        return []
    return [
        "SMS is not configured (FOREWARN_SMS_GATEWAY_URL is unset): SMS notices are held, "
        "not sent, until a gateway is configured and the notifier restarted"
    ]


def build_channels(settings: Settings) -> dict[str, Channel]:
    """The delivery channels the settings configure."""
    channels: dict[str, Channel] = {"email": email_smtp.from_settings(settings)}
    if settings.sms_gateway_url:
        channels["sms"] = sms_http.from_settings(settings)
    if settings.webhook_signing_secret is not None:
        channels["webhook"] = webhook.from_settings(settings)
    return channels


async def _serve_api(runtime: Runtime, stop: asyncio.Event, hooks: Hooks) -> None:
    settings = runtime.settings
    broker = settings.kafka_bootstrap_servers is not None
    contacts = KafkaContactSink(settings) if broker else None
    app = create_app(
        settings=settings,
        sessions=runtime.sessions,
        contact_sink=contacts,
        recorded_telemetry=KafkaRecordedTelemetry(settings) if broker else None,
        update_previewer=RenderedUpdatePreviewer(),
    )
    config = uvicorn.Config(
        app,
        host=runtime.settings.api_host,
        port=runtime.settings.api_port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    url = f"http://{runtime.settings.api_host}:{runtime.settings.api_port}"
    on_ready = hooks.on_api_ready
    seeding = asyncio.create_task(_seed_settings_tokens(runtime, stop))
    try:
        await serve_until(
            QuietServer(config),
            stop,
            on_started=(lambda: on_ready(url)) if on_ready is not None else None,
        )
    finally:
        seeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await seeding
        if contacts is not None:
            await contacts.aclose()


async def _seed_settings_tokens(runtime: Runtime, stop: asyncio.Event) -> None:
    """List the settings' tokens in the token table; retry while the database is not ready.

    Authentication does not wait for this (settings tokens are checked in memory), so an API
    that starts before its database or its migration serves, and reports not ready, meanwhile.
    """

    async def seed() -> None:
        async with transaction(runtime.sessions) as session:
            await seed_tokens(session=session, tokens=runtime.settings.api_tokens)

    await retry_until_done(
        seed,
        stop=stop,
        every=SEED_RETRY_SECONDS,
        retry=lambda _exc: True,  # a missing table too: the migration may not have run yet
        waiting="settings tokens not listed yet; retrying",
        logger=log,
    )


def component_coroutines(
    runtime: Runtime, names: Collection[str], stop: asyncio.Event, hooks: Hooks
) -> list[Coroutine[Any, Any, None]]:
    """Build the long-running coroutine of each named component.

    A process without the API serves `/metrics`, `/healthz` and `/readyz` on the metrics port
    (unless it is 0); its socket is bound here, first, so a port in use stops start-up.
    """
    settings, sessions = runtime.settings, runtime.sessions
    probe_socket = None
    if names and "api" not in names and settings.metrics_port:
        probe_socket = bind_metrics_port(settings.api_host, settings.metrics_port)
    channels = build_channels(settings) if "notifier" in names else {}
    if "notifier" in names:
        for warning in delivery_warnings(settings):
            log.warning(warning, setting="FOREWARN_SMS_GATEWAY_URL", held="sms")
    coroutines: list[Coroutine[Any, Any, None]] = []
    runtime.detectors = []
    if "api" in names:
        coroutines.append(_serve_api(runtime, stop, hooks))
    if "detector" in names:
        detector = Detector(
            settings=settings,
            sessions=sessions,
            on_event=hooks.on_event,
            after_persist=hooks.after_persist,
        )
        runtime.detectors.append(detector)
        coroutines.append(detector.run(stop))
    if "planner" in names:
        coroutines.append(Planner(settings=settings, sessions=sessions).run(stop))
    if "notifier" in names:
        dispatcher = Dispatcher(
            sessions=sessions,
            channels=channels,
            renderer=Renderer(),
            settings=settings,
            on_sent=hooks.on_sent,
            lease=timedelta(seconds=settings.dispatch_lease_seconds),
            concurrency=settings.dispatch_concurrency,
        )
        coroutines.append(dispatcher.run(stop))
    if probe_socket is not None:
        checks = process_checks(settings=settings, sessions=sessions, detectors=runtime.detectors)
        probes = create_probe_app(checks=checks)
        coroutines.append(serve_probes(probes, sock=probe_socket, stop=stop))
    return coroutines


async def run_until_stopped(
    runtime: Runtime, names: Collection[str], stop: asyncio.Event, hooks: Hooks | None = None
) -> None:
    """Run the components until `stop` is set or one of them fails; then stop the rest."""
    tasks = [
        asyncio.create_task(coroutine, name=f"forewarn-{i}")
        for i, coroutine in enumerate(component_coroutines(runtime, names, stop, hooks or Hooks()))
    ]
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({*tasks, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    failure = next((t.exception() for t in done if t is not stopping and t.exception()), None)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    if failure is not None:
        raise failure
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


def install_stop_signals(stop: asyncio.Event) -> None:
    """Let SIGINT (Ctrl-C) and SIGTERM set `stop`, so every component shuts down in order."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
