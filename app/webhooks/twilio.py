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
from urllib.parse import urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_PORTS = {"https": 443, "http": 80}


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
    pairs = list(params)
    given_bytes = given.strip().encode()
    matches = [
        hmac.compare_digest(signature(auth_token, form, pairs).encode(), given_bytes)
        for form in url_forms(url)
    ]
    return any(matches)


def url_forms(url: str) -> tuple[str, ...]:
    """The URL as known, and with its scheme's default port written out or left out: Twilio
    may sign either form (`https://host/…` or `https://host:443/…`), and its own validator
    accepts both."""
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme)
    if default is None or parts.port not in (None, default) or "@" in parts.netloc:
        return (url,)
    host = parts.netloc.rsplit(":", 1)[0] if parts.port is not None else parts.netloc
    others = (
        urlunsplit(parts._replace(netloc=host)),
        urlunsplit(parts._replace(netloc=f"{host}:{default}")),
    )
    return (url, *(form for form in others if form != url))


def auth_token(gateway_token: str) -> str | None:
    """Return the auth token of an `ACCOUNT_SID:AUTH_TOKEN` credential, or None when absent."""
    _account, sep, token = gateway_token.partition(":")
    return token if sep and token else None
