"""Send e-mail notices over SMTP with aiosmtplib."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

import aiosmtplib

from app.clock import Clock, utc_now
from app.settings import Settings
from notifiers.channel import Delivery, Notice
from notifiers.exceptions import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError
from notifiers.headers import encode_header_value


class SmtpEmailChannel:
    """Hand one e-mail per notice to an SMTP relay, one connection per send."""

    name = "email"
    provider = "smtp"
    # SMTP has no idempotency: a send cut off before it was recorded is never retried.
    idempotent = False

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool = False,
        timeout: float = 10.0,
        clock: Clock = utc_now,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._start_tls = start_tls
        self._timeout = timeout
        self._clock = clock
        domain = parseaddr(sender)[1].rpartition("@")[2]
        self._domain = domain or "forewarn.invalid"

    def build_message(self, notice: Notice) -> EmailMessage:
        """Return the MIME message for a notice: text, optional HTML, unsubscribe headers.

        The subject is stored already folded (`notifiers.headers`): the stdlib folder can leave
        a space between two encoded words, where readers drop it."""
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = notice.to
        message.set_raw("Subject", encode_header_value("Subject", notice.subject))
        message["Date"] = format_datetime(self._clock())
        message["Message-ID"] = make_msgid(domain=self._domain)
        if notice.unsubscribe_url:
            message["List-Unsubscribe"] = f"<{notice.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["X-Forewarn-Notice"] = notice.idempotency_key
        message.set_content(notice.text)
        if notice.html:
            message.add_alternative(notice.html, subtype="html")
        return message

    async def aclose(self) -> None:
        """Nothing to release: each send opens and closes its own connection."""

    async def send(self, notice: Notice) -> Delivery:
        """Send the notice and return its Message-ID as the provider id."""
        message = self.build_message(notice)
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._start_tls,
                timeout=self._timeout,
            )
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise _delivery_error(exc) from None
        return Delivery(provider=self.provider, provider_id=str(message["Message-ID"]))


def _delivery_error(exc: BaseException) -> DeliveryError:
    """Map an aiosmtplib or socket error to a delivery error without naming the recipient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        if codes and all(code >= 500 for code in codes):
            return PermanentDeliveryError("recipient_refused", f"smtp {codes[0]}")
        code = next((c for c in codes if c < 500), 0)
        return TemporaryDeliveryError(f"smtp_{code}", "recipient deferred")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError) and exc.code >= 500:
        return PermanentDeliveryError("auth_failed", f"smtp {exc.code}")
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        if exc.code >= 500:
            return PermanentDeliveryError("recipient_refused", f"smtp {exc.code}")
        return TemporaryDeliveryError(f"smtp_{exc.code}", "recipient deferred")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if exc.code >= 500:
            return PermanentDeliveryError(f"smtp_{exc.code}")
        if exc.code >= 400:
            return TemporaryDeliveryError(f"smtp_{exc.code}")
        return TemporaryDeliveryError("connect_error", f"smtp {exc.code}")
    if isinstance(exc, asyncio.TimeoutError | aiosmtplib.SMTPTimeoutError):
        return TemporaryDeliveryError("timeout", type(exc).__name__)
    return TemporaryDeliveryError("connect_error", type(exc).__name__)


def from_settings(settings: Settings) -> SmtpEmailChannel:
    """Build the e-mail channel from `FOREWARN_SMTP_*` settings."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpEmailChannel(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        username=settings.smtp_username,
        password=password,
        start_tls=settings.smtp_starttls,
    )
