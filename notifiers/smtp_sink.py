"""A loopback SMTP server that keeps every message it receives, for tests and the demo."""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from app.net import StartedOnEnter, free_port


class _Handler:
    """Parse each accepted message and hand it to the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Store the message, or answer 451 while the sink refuses mail."""
        if self._sink.refusing:
            return "451 4.3.0 Temporarily refusing mail"
        raw = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        self._sink.raw.append(raw)
        self._sink.messages.append(parsed)
        return "250 Message accepted for delivery"


class SmtpSink(StartedOnEnter):
    """An aiosmtpd server on 127.0.0.1 that appends every received message to `.messages`."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # each message as it arrived, to parse with another policy
        self._refusing = threading.Event()
        self._controller: Controller | None = None

    @property
    def refusing(self) -> bool:
        """Tell whether the sink currently answers 451 to every message."""
        return self._refusing.is_set()

    def refuse(self, on: bool = True) -> None:
        """Answer 451 to every message while `on`, accept again when off."""
        if on:
            self._refusing.set()
        else:
            self._refusing.clear()

    def start(self) -> None:
        """Start serving in a background thread (again, on the same port, after `stop`)."""
        if self._controller is None:
            controller = Controller(_Handler(self), hostname=self.host, port=self.port)
            controller.start()
            self._controller = controller

    def stop(self) -> None:
        """Stop serving and join the background thread; connections are refused until `start`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
