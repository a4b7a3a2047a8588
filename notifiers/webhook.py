"""Deliver notices as signed JSON POSTs to each customer's own webhook URL.

Receivers check a notice like this (the same `verify` this module exports)::

    timestamp = request.headers["X-Forewarn-Timestamp"]
    signature = request.headers["X-Forewarn-Signature"]
    if not verify(secret, timestamp, raw_body, signature, now=time.time()):
        return 401

and deduplicate on `X-Forewarn-Notice` (also the body's `notice_id`): a retried notice carries
the same id, so handling it twice is the receiver's to avoid, which makes a resend safe.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import httpx
import orjson

from app.settings import Settings
from notifiers.channel import Delivery, Notice
from notifiers.exceptions import PermanentDeliveryError, TemporaryDeliveryError
from notifiers.http_retry import retry_after_seconds

SIGNATURE_SCHEME = "sha256"
DEFAULT_TOLERANCE_S = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the `X-Forewarn-Signature` value for `body` sent at `timestamp`: `sha256=<hex>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_SCHEME}={mac.hexdigest()}"


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Tell whether `signature` signs `body` at `timestamp`, no more than `tolerance` s from `now`.

    The signature is compared in constant time; a timestamp that is not whole unix seconds, or is
    further than `tolerance` seconds from `now` in either direction, fails (this bounds replays).
    """
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode())


class WebhookChannel:
    """POST one signed JSON document per notice to the URL in `notice.to`."""

    name = "webhook"
    provider = "webhook"
    # Receivers deduplicate on the X-Forewarn-Notice header: a resend is safe.
    idempotent = True

    def __init__(
        self,
        *,
        secret: str,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("the webhook signing secret must not be empty")
        self._secret = secret
        self._clock = clock
        # Redirects are not followed: a 3xx is refused rather than re-posted somewhere else.
        self._client = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def send(self, notice: Notice) -> Delivery:
        """Post the signed notice to the customer's URL; return the receiver's request id."""
        body = orjson.dumps(
            {
                "notice_id": notice.idempotency_key,
                "customer_id": notice.customer_id,
                "outage_id": notice.outage_id,
                "stage": notice.stage,
                "language": notice.language,
                "subject": notice.subject,
                "text": notice.text,
            }
        )
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "X-Forewarn-Notice": notice.idempotency_key,
            "X-Forewarn-Timestamp": timestamp,
            "X-Forewarn-Signature": sign(self._secret, timestamp, body),
        }
        # Details name the exception type only: the URL is the customer's and may hold a token.
        try:
            response = await self._client.post(notice.to, content=body, headers=headers)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise PermanentDeliveryError("invalid_url", type(exc).__name__) from None
        except httpx.TimeoutException as exc:
            raise TemporaryDeliveryError("timeout", type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise TemporaryDeliveryError("connect_error", type(exc).__name__) from None
        _raise_for_status(response)
        request_id = response.headers.get("X-Request-Id") or notice.idempotency_key
        return Delivery(provider=self.provider, provider_id=request_id)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.aclose()


def _raise_for_status(response: httpx.Response) -> None:
    """Raise the delivery error a non-2xx receiver answer stands for."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        raise TemporaryDeliveryError(
            "http_429", retry_after=retry_after_seconds(response.headers.get("Retry-After"))
        )
    if status >= 500:
        raise TemporaryDeliveryError(f"http_{status}")
    if status == 410:
        raise PermanentDeliveryError("endpoint_gone", "http_410")
    raise PermanentDeliveryError(f"http_{status}")


def from_settings(settings: Settings) -> WebhookChannel:
    """Build the webhook channel from `FOREWARN_WEBHOOK_SIGNING_SECRET`."""
    secret = getattr(settings, "webhook_signing_secret", None)
    if secret is None or not secret.get_secret_value():
        raise ValueError("FOREWARN_WEBHOOK_SIGNING_SECRET must be set")
    return WebhookChannel(secret=secret.get_secret_value())
