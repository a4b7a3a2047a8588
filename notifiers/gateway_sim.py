"""A loopback HTTP server that behaves like a Twilio-style SMS provider, for tests and the demo."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.net import StartedOnEnter, free_port
from app.serving import QuietServer

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_START_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class SentSms:
    """One message the simulator accepted."""

    sid: str
    to: str
    sender: str
    body: str
    status_callback: str


class SmsGatewaySimulator(StartedOnEnter):
    """A real HTTP SMS gateway on 127.0.0.1 whose failures a test can switch on at any time."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.account = f"AC{secrets.token_hex(16)}"
        self.token = secrets.token_hex(16)
        self.credentials = f"{self.account}:{self.token}"
        self.messages: list[SentSms] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._fail_remaining = 0
        self._fail_status = 500
        self._delay = 0.0
        self._sids_by_key: dict[str, str] = {}
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next `n` requests with `status` (429 carries `Retry-After: 1`)."""
        with self._lock:
            self._fail_remaining = n
            self._fail_status = status

    def set_delay(self, seconds: float) -> None:
        """Wait `seconds` before answering each request."""
        with self._lock:
            self._delay = seconds

    def start(self) -> None:
        """Serve in a background thread and return once the port accepts connections."""
        if self._thread is not None:
            return
        config = uvicorn.Config(
            self._app(),
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = QuietServer(config)
        self._thread = threading.Thread(
            target=self._server.run, name=f"sms-gateway-sim:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"SMS gateway simulator did not start on port {self.port}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and join the background thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT_S)
        self._server = None
        self._thread = None

    def _app(self) -> Starlette:
        """Build the ASGI app with the single Messages endpoint."""
        route = Route(
            "/2010-04-01/Accounts/{account}/Messages.json", self._create_message, methods=["POST"]
        )
        stats = Route("/_stats", self._stats, methods=["GET"])
        return Starlette(routes=[route, stats])

    async def _stats(self, _request: Request) -> JSONResponse:
        """What the gateway saw: requests, accepted messages, distinct recipients."""
        with self._lock:
            recipients = len({m.to for m in self.messages})
            return JSONResponse(
                {
                    "requests": self.requests,
                    "messages": len(self.messages),
                    "recipients": recipients,
                }
            )

    def _take_failure(self) -> tuple[float, int | None]:
        """Count a request; return the delay to apply and a forced status, if any."""
        with self._lock:
            self.requests += 1
            forced: int | None = None
            if self._fail_remaining > 0:
                self._fail_remaining -= 1
                forced = self._fail_status
            return self._delay, forced

    def _authorized(self, request: Request) -> bool:
        """Check HTTP basic auth and that the path names the same account."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(decoded, self.credentials) and (
            request.path_params["account"] == self.account
        )

    async def _create_message(self, request: Request) -> JSONResponse:
        """Accept, refuse or fail one message like a Twilio-style provider would."""
        delay, forced = self._take_failure()
        if delay > 0:
            await asyncio.sleep(delay)
        if forced is not None:
            headers = {"Retry-After": "1"} if forced == 429 else None
            body = {"code": forced, "message": "Simulated failure."}
            return JSONResponse(body, status_code=forced, headers=headers)
        if not self._authorized(request):
            return JSONResponse({"code": 20003, "message": "Authenticate"}, status_code=401)
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        to = form.get("To", [""])[0]
        body_text = form.get("Body", [""])[0]
        key = request.headers.get("idempotency-key")
        with self._lock:
            existing = self._sids_by_key.get(key) if key else None
        if existing is not None:
            return JSONResponse({"sid": existing, "status": "queued", "to": to, "body": body_text})
        if not _E164.match(to):
            return JSONResponse(
                {"code": 21211, "message": "The 'To' number is not a valid phone number."},
                status_code=400,
            )
        sms = SentSms(
            sid=f"SM{uuid.uuid4().hex}",
            to=to,
            sender=form.get("From", [""])[0],
            body=body_text,
            status_callback=form.get("StatusCallback", [""])[0],
        )
        with self._lock:
            existing = self._sids_by_key.get(key) if key else None
            if existing is None:
                if key:
                    self._sids_by_key[key] = sms.sid
                self.messages.append(sms)
        if existing is not None:
            return JSONResponse({"sid": existing, "status": "queued", "to": to, "body": body_text})
        return JSONResponse(
            {"sid": sms.sid, "status": "queued", "to": to, "body": body_text}, status_code=201
        )


def main() -> None:
    """Run the simulator on its own (`python -m notifiers.gateway_sim --port 8099`)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--credentials", default=None, help="ACCOUNT:TOKEN (default: random)")
    args = parser.parse_args()
    gateway = SmsGatewaySimulator(port=args.port)
    if args.credentials:
        gateway.account, _, gateway.token = args.credentials.partition(":")
        gateway.credentials = args.credentials
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    with gateway:
        print(f"{gateway.url} {gateway.credentials}", flush=True)  # noqa: T201 - the CLI's output
        stopped.wait()


if __name__ == "__main__":
    main()
