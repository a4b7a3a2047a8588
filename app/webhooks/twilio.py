"""Twilio's request signature, as pure functions: no request, no settings, no clock.

Twilio signs each callback with `X-Twilio-Signature`: the base64 of an HMAC-SHA1, keyed with
the account's auth token, over the full URL it called followed by every POST parameter as
name + value, sorted by name (then value). A receiver recomputes it from the URL it is known
by publicly, since proxies in between change the host and scheme the application sees.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

SIGNATURE_HEADER = "X-Twilio-Signature"


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Return the signature Twilio sends for a POST of `params` to `url`."""
    payload = url + "".join(name + value for name, value in sorted(set(params)))
    mac = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def is_valid(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], given: str | None
) -> bool:
    """Tell whether `given` is the signature of this request, comparing in constant time."""
    if not given:
        return False
    expected = signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def auth_token(gateway_token: str) -> str | None:
    """Return the auth token of an `ACCOUNT_SID:AUTH_TOKEN` credential, or None when absent."""
    _account, sep, token = gateway_token.partition(":")
    return token if sep and token else None
