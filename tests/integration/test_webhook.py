"""The webhook channel against a real loopback receiver that checks every signature."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

import httpx
import orjson
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.net import free_port
from app.serving import QuietServer
from app.settings import Settings
from notifiers import webhook
from notifiers.channel import Notice
from notifiers.exceptions import PermanentDeliveryError, TemporaryDeliveryError
from notifiers.webhook import WebhookChannel, sign, verify

pytestmark = pytest.mark.integration

SECRET = "whsec-test-0123456789abcdef"
_START_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Received:
    """One request the receiver accepted, exactly as it arrived."""

    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """A customer's webhook endpoint on 127.0.0.1: verifies signatures, records what it accepts."""

    def __init__(self, secret: str = SECRET, *, request_id: bool = True) -> None:
        self.secret = secret
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/forewarn"
        self.received: list[Received] = []
        self.rejected = 0
        self._request_id = request_id
        self._lock = threading.Lock()
        self._fail: list[tuple[int, dict[str, str]]] = []
        self._delay = 0.0
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def failures_left(self) -> int:
        """How many of the failures `fail_next` queued are still to be answered."""
        with self._lock:
            return len(self._fail)

    def fail_next(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer the next request with `status` and `headers` instead of accepting it."""
        with self._lock:
            self._fail.append((status, headers or {}))

    def set_delay(self, seconds: float) -> None:
        """Wait `seconds` before answering each request."""
        with self._lock:
            self._delay = seconds

    def __enter__(self) -> WebhookReceiver:
        app = Starlette(routes=[Route("/hooks/forewarn", self._receive, methods=["POST"])])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = QuietServer(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"webhook receiver did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT_S)

    async def _receive(self, request: Request) -> JSONResponse:
        with self._lock:
            delay = self._delay
            forced = self._fail.pop(0) if self._fail else None
        if delay > 0:
            await asyncio.sleep(delay)
        if forced is not None:
            status, forced_headers = forced
            return JSONResponse({"error": "simulated"}, status_code=status, headers=forced_headers)
        body = await request.body()
        ok = verify(
            self.secret,
            request.headers.get("x-forewarn-timestamp", ""),
            body,
            request.headers.get("x-forewarn-signature", ""),
            now=time.time(),
        )
        if not ok:
            with self._lock:
                self.rejected += 1
            return JSONResponse({"error": "bad signature"}, status_code=401)
        with self._lock:
            self.received.append(Received(headers=dict(request.headers), body=body))
        reply_headers = {"X-Request-Id": f"req-{uuid.uuid4().hex}"} if self._request_id else None
        return JSONResponse({"ok": True}, status_code=202, headers=reply_headers)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


ChannelFactory = Callable[..., WebhookChannel]


@pytest.fixture
async def channel_factory() -> AsyncIterator[ChannelFactory]:
    channels: list[WebhookChannel] = []

    def build(*, secret: str = SECRET, timeout: float = 5.0) -> WebhookChannel:
        channel = WebhookChannel(secret=secret, timeout=timeout)
        channels.append(channel)
        return channel

    yield build
    for channel in channels:
        await channel.aclose()


def make_notice(to: str, *, key: str = "notice-k-1") -> Notice:
    return Notice(
        outbox_id=1,
        customer_id="cust-42",
        outage_id="out-7",
        stage="detected",
        channel="webhook",
        language="de",
        to=to,
        subject="Störung in Ihrer Nähe",
        text="Wir wissen von einer Störung, die Ihren Anschluss betrifft.",
        html="<p>ignored</p>",
        idempotency_key=key,
    )


async def test_a_signed_notice_is_delivered_verified_and_acknowledged_with_its_request_id(
    receiver: WebhookReceiver, channel_factory: ChannelFactory
) -> None:
    delivery = await channel_factory().send(make_notice(receiver.url))

    assert receiver.rejected == 0
    [got] = receiver.received
    assert delivery.provider == "webhook"
    assert delivery.provider_id.startswith("req-")
    assert orjson.loads(got.body) == {
        "notice_id": "notice-k-1",
        "customer_id": "cust-42",
        "outage_id": "out-7",
        "stage": "detected",
        "language": "de",
        "subject": "Störung in Ihrer Nähe",
        "text": "Wir wissen von einer Störung, die Ihren Anschluss betrifft.",
    }
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-forewarn-notice"] == "notice-k-1"
    assert abs(int(got.headers["x-forewarn-timestamp"]) - time.time()) < 60
    assert got.headers["x-forewarn-signature"] == sign(
        SECRET, got.headers["x-forewarn-timestamp"], got.body
    )


async def test_without_a_request_id_the_delivery_is_known_by_the_idempotency_key(
    channel_factory: ChannelFactory,
) -> None:
    with WebhookReceiver(request_id=False) as bare:
        delivery = await channel_factory().send(make_notice(bare.url, key="notice-k-9"))

    assert delivery.provider_id == "notice-k-9"


async def test_a_tampered_body_or_timestamp_fails_verification(
    receiver: WebhookReceiver, channel_factory: ChannelFactory
) -> None:
    await channel_factory().send(make_notice(receiver.url))
    [got] = receiver.received
    timestamp = got.headers["x-forewarn-timestamp"]
    signature = got.headers["x-forewarn-signature"]
    now = float(timestamp)
    tampered = got.body.replace(b"out-7", b"out-8")

    assert verify(SECRET, timestamp, got.body, signature, now=now)
    assert not verify(SECRET, timestamp, tampered, signature, now=now)
    assert not verify(SECRET, str(int(timestamp) + 1), got.body, signature, now=now)
    assert not verify("another-secret", timestamp, got.body, signature, now=now)

    async with httpx.AsyncClient() as client:
        response = await client.post(
            receiver.url, content=tampered, headers={k: got.headers[k] for k in got.headers}
        )
    assert response.status_code == 401
    assert receiver.rejected == 1
    assert len(receiver.received) == 1


def test_verify_rejects_stale_future_and_malformed_timestamps() -> None:
    body = b'{"notice_id":"k"}'
    signed_at = 1_700_000_000
    signature = sign(SECRET, str(signed_at), body)

    assert verify(SECRET, str(signed_at), body, signature, now=signed_at + 300)
    assert not verify(SECRET, str(signed_at), body, signature, now=signed_at + 301)
    assert not verify(SECRET, str(signed_at), body, signature, now=signed_at - 301)
    assert verify(SECRET, str(signed_at), body, signature, now=signed_at + 900, tolerance=900)
    assert not verify(SECRET, "soon", body, signature, now=signed_at)
    assert not verify(
        SECRET, str(signed_at), body, signature.removeprefix("sha256="), now=signed_at
    )


async def test_a_receiver_with_another_secret_refuses_the_notice_permanently(
    channel_factory: ChannelFactory,
) -> None:
    with WebhookReceiver(secret="not-the-shared-secret") as strict:
        with pytest.raises(PermanentDeliveryError) as caught:
            await channel_factory().send(make_notice(strict.url))

    assert caught.value.reason == "http_401"
    assert strict.rejected == 1


async def test_http_429_is_temporary_and_carries_retry_after(
    receiver: WebhookReceiver, channel_factory: ChannelFactory
) -> None:
    receiver.fail_next(429, {"Retry-After": "7"})

    with pytest.raises(TemporaryDeliveryError) as caught:
        await channel_factory().send(make_notice(receiver.url))

    assert caught.value.reason == "http_429"
    assert caught.value.retry_after == 7.0
    assert caught.value.retriable


async def test_a_server_error_is_temporary_and_a_resend_is_delivered(
    receiver: WebhookReceiver, channel_factory: ChannelFactory
) -> None:
    channel = channel_factory()
    receiver.fail_next(503)

    with pytest.raises(TemporaryDeliveryError) as caught:
        await channel.send(make_notice(receiver.url))
    await channel.send(make_notice(receiver.url))

    assert caught.value.reason == "http_503"
    assert len(receiver.received) == 1


async def test_http_410_means_the_endpoint_is_gone_for_good(
    receiver: WebhookReceiver, channel_factory: ChannelFactory
) -> None:
    receiver.fail_next(410)

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel_factory().send(make_notice(receiver.url))

    assert caught.value.reason == "endpoint_gone"
    assert not caught.value.retriable


async def test_another_client_error_is_permanent_and_named_by_its_status(
    receiver: WebhookReceiver, channel_factory: ChannelFactory
) -> None:
    receiver.fail_next(404)

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel_factory().send(make_notice(receiver.url))

    assert caught.value.reason == "http_404"


async def test_a_receiver_slower_than_the_timeout_is_a_temporary_timeout(
    receiver: WebhookReceiver, channel_factory: ChannelFactory
) -> None:
    receiver.set_delay(0.5)

    with pytest.raises(TemporaryDeliveryError) as caught:
        await channel_factory(timeout=0.1).send(make_notice(receiver.url))

    assert caught.value.reason == "timeout"


async def test_a_refused_connection_is_temporary(channel_factory: ChannelFactory) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/forewarn"

    with pytest.raises(TemporaryDeliveryError) as caught:
        await channel_factory().send(make_notice(url))

    assert caught.value.reason == "connect_error"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "not a url", "http://"])
async def test_a_url_that_cannot_be_posted_to_is_permanent(
    channel_factory: ChannelFactory, url: str
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel_factory().send(make_notice(url))

    assert caught.value.reason == "invalid_url"


async def test_from_settings_requires_the_signing_secret() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="FOREWARN_WEBHOOK_SIGNING_SECRET must be set"):
        webhook.from_settings(settings.model_copy(update={"webhook_signing_secret": None}))

    configured = settings.model_copy(update={"webhook_signing_secret": SecretStr(SECRET)})
    channel = webhook.from_settings(configured)
    await channel.aclose()

    assert channel.name == "webhook"
    assert channel.idempotent
