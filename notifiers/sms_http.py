"""Send SMS through a Twilio-Messages-style HTTP API.

The client is aiohttp, not httpx: the fan-out benchmark (docs/benchmarks.md) measured httpx at
about 500-1,000 requests/s against the loopback gateway and aiohttp at 6,500-7,500 on the same
machine, and this is the path every SMS of a 100k-customer outage takes.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import orjson

from app.settings import Settings
from notifiers.channel import Delivery, Notice
from notifiers.exceptions import PermanentDeliveryError, TemporaryDeliveryError
from notifiers.http_retry import retry_after_seconds

_INVALID_TO_CODE = 21211


class SmsHttpChannel:
    """Hand one SMS per notice to an HTTP SMS gateway."""

    name = "sms"
    provider = "sms_http"
    # The gateway deduplicates on the Idempotency-Key header: a resend is safe.
    idempotent = True

    def __init__(
        self,
        *,
        base_url: str,
        account: str,
        token: str,
        sender: str,
        status_callback: str,
        timeout: float = 10.0,
        connections: int = 64,
    ) -> None:
        self._sender = sender
        self._status_callback = status_callback
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account}/Messages.json"
        self._auth = "Basic " + base64.b64encode(f"{account}:{token}".encode()).decode()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """The keep-alive session, made on first use (it needs the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                timeout=self._timeout,
                headers={"Authorization": self._auth},
            )
        return self._session

    async def send(self, notice: Notice) -> Delivery:
        """Post the notice to the gateway and return the message sid it assigned."""
        form = {
            "To": notice.to,
            "From": self._sender,
            "Body": notice.text,
            "StatusCallback": self._status_callback,
        }
        headers = {"Idempotency-Key": notice.idempotency_key}
        try:
            async with self._client().post(self._url, data=form, headers=headers) as response:
                status, body = response.status, await response.read()
                retry_after = response.headers.get("Retry-After")
        except TimeoutError as exc:
            raise TemporaryDeliveryError("timeout", type(exc).__name__) from None
        except aiohttp.ClientError as exc:
            raise TemporaryDeliveryError("connect_error", type(exc).__name__) from None
        _raise_for_status(status, body, retry_after)
        try:
            payload: Any = orjson.loads(body)
            sid = str(payload["sid"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise TemporaryDeliveryError("bad_response", f"status {status}") from None
        return Delivery(provider=self.provider, provider_id=sid)

    async def aclose(self) -> None:
        """Close the underlying HTTP session."""
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)  # let the connector close its sockets


def _raise_for_status(status: int, body: bytes, retry_after: str | None) -> None:
    """Raise the delivery error an unsuccessful gateway answer stands for."""
    if status < 400:
        return
    if status == 429:
        raise TemporaryDeliveryError("http_429", retry_after=retry_after_seconds(retry_after))
    if status >= 500:
        raise TemporaryDeliveryError(f"http_{status}")
    if status in (401, 403):
        raise PermanentDeliveryError("auth_failed", f"http_{status}")
    if status == 400 and _error_code(body) == _INVALID_TO_CODE:
        raise PermanentDeliveryError("invalid_number", f"code {_INVALID_TO_CODE}")
    raise PermanentDeliveryError(f"http_{status}")


def _error_code(body: bytes) -> int | None:
    """Return the provider error code from a JSON error body, if any."""
    try:
        payload: Any = orjson.loads(body)
        return int(payload["code"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def from_settings(settings: Settings) -> SmsHttpChannel:
    """Build the SMS channel from `FOREWARN_SMS_*` settings."""
    if settings.sms_gateway_url is None or settings.sms_gateway_token is None:
        raise ValueError("FOREWARN_SMS_GATEWAY_URL and FOREWARN_SMS_GATEWAY_TOKEN must be set")
    account, sep, token = settings.sms_gateway_token.get_secret_value().partition(":")
    if not (sep and account and token):
        raise ValueError("FOREWARN_SMS_GATEWAY_TOKEN must be account_sid:auth_token")
    return SmsHttpChannel(
        base_url=settings.sms_gateway_url,
        account=account,
        token=token,
        sender=settings.sms_from,
        status_callback=f"{settings.public_base_url.rstrip('/')}/v1/webhooks/sms/status",
    )
