"""Signed links in notices: one-click unsubscribe without an account or a guessable URL."""

from __future__ import annotations

import base64
import hashlib
import hmac

from app.exceptions import NotFoundError

CHANNELS = frozenset({"sms", "email", "webhook"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), b"unsubscribe:" + payload, hashlib.sha256).digest()[:18]


def unsubscribe_token(secret: str, customer_id: str, channel: str) -> str:
    """Return the token that opts `customer_id` out of `channel`."""
    payload = f"{customer_id}\n{channel}".encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def read_unsubscribe_token(secret: str, token: str) -> tuple[str, str]:
    """Return (customer id, channel) from a token; a forged or damaged one is not found."""
    encoded, _, signature = token.partition(".")
    try:
        payload, given = _unb64(encoded), _unb64(signature)
    except (ValueError, TypeError):
        raise NotFoundError("this link is not valid") from None
    if not hmac.compare_digest(given, _mac(secret, payload)):
        raise NotFoundError("this link is not valid")
    customer_id, _, channel = payload.decode(errors="replace").partition("\n")
    if channel not in CHANNELS:
        raise NotFoundError("this link is not valid")
    return customer_id, channel


def unsubscribe_url(base_url: str, secret: str, customer_id: str, channel: str) -> str:
    return f"{base_url.rstrip('/')}/u/{unsubscribe_token(secret, customer_id, channel)}"
