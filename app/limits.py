"""Refuse request bodies over a fixed size with 413, before they fill the process's memory.

A declared `Content-Length` over the limit is refused before the app sees the request; a body
that streams past the limit (chunked, or a lying length) is cut off there, and whatever the app
was about to answer is replaced by the same 413. Bigger inventories go through
`forewarn inventory import`, which reads a file.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 16 * 1024 * 1024


class BodyTooLargeError(Exception):
    """Raised into the app from `receive` when the body passes the limit."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large_body(limit: int) -> bytes:
    body: dict[str, Any] = {
        "detail": "request body too large",
        "errors": [{"field": "body", "reason": f"larger than {limit} bytes"}],
    }
    return orjson.dumps(body)


class BodySizeLimitMiddleware:
    """Answer 413 (in the API's error shape) to any request body over `limit` bytes."""

    def __init__(self, app: ASGIApp, *, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, send: Send) -> None:
        body = _too_large_body(self.limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(send)
            return
        received = 0
        too_large = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    too_large = True
                    raise BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                return  # the app's answer to a body it never fully got; the 413 replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # The app may let our error through, or turn it into one of its own.
            if not too_large:
                raise
        if too_large and not started:
            await self._refuse(send)
