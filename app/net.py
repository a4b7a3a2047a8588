"""Network helpers every process side shares (API, consumers, notifiers, demo, tests)."""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Self


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on `host` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class StartedOnEnter:
    """A loopback server that `with` starts and stops: subclasses give `start` and `stop`."""

    def start(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
