"""Send SMS through a Twilio-Messages-style HTTP API."""

from __future__ import annotations

from typing import Any

import httpx

from app.settings import Settings
from notifiers.channel import Delivery, Notice
from notifiers.exceptions import PermanentDeliveryError, TemporaryDeliveryError

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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._account = account
        self._sender = sender
        self._status_callback = status_callback
        self._path = f"/2010-04-01/Accounts/{account}/Messages.json"
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=httpx.BasicAuth(account, token),
            timeout=timeout,
            transport=transport,
        )

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
            response = await self._client.post(self._path, data=form, headers=headers)
        except httpx.TimeoutException as exc:
            raise TemporaryDeliveryError("timeout", type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise TemporaryDeliveryError("connect_error", type(exc).__name__) from None
        _raise_for_status(response)
        try:
            payload: Any = response.json()
            sid = str(payload["sid"])
        except (ValueError, KeyError, TypeError):
            raise TemporaryDeliveryError("bad_response", f"status {response.status_code}") from None
        return Delivery(provider=self.provider, provider_id=sid)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.aclose()


def _raise_for_status(response: httpx.Response) -> None:
    """Raise the delivery error an unsuccessful gateway answer stands for."""
    status = response.status_code
    if status < 400:
        return
    if status == 429:
        raise TemporaryDeliveryError(
            "http_429", retry_after=_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 500:
        raise TemporaryDeliveryError(f"http_{status}")
    if status in (401, 403):
        raise PermanentDeliveryError("auth_failed", f"http_{status}")
    if status == 400 and _error_code(response) == _INVALID_TO_CODE:
        raise PermanentDeliveryError("invalid_number", f"code {_INVALID_TO_CODE}")
    raise PermanentDeliveryError(f"http_{status}")


def _retry_after(raw: str | None) -> float | None:
    """Parse a Retry-After header given in seconds; ignore anything else."""
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        return None


def _error_code(response: httpx.Response) -> int | None:
    """Return the provider error code from a JSON error body, if any."""
    try:
        payload: Any = response.json()
        return int(payload["code"])
    except (ValueError, KeyError, TypeError):
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
