"""The SMS and e-mail channels against real loopback servers."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from app.net import free_port
from app.settings import Settings
from notifiers import email_smtp, sms_http
from notifiers.channel import Notice
from notifiers.email_smtp import SmtpEmailChannel
from notifiers.exceptions import PermanentDeliveryError, TemporaryDeliveryError
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.render import NoticeFacts, Renderer
from notifiers.sms_http import SmsHttpChannel
from notifiers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

PHONE = "+4915112345678"
CALLBACK = "http://127.0.0.1:8000/v1/webhooks/sms/status"


def make_notice(
    *, to: str = PHONE, channel: str = "sms", html: str | None = None, key: str = "k-1"
) -> Notice:
    return Notice(
        outbox_id=1,
        customer_id="cust-42",
        outage_id="out-7",
        stage="detected",
        channel=channel,
        language="en",
        to=to,
        subject="Outage in your area",
        text="We are aware of an outage affecting your service.",
        html=html,
        idempotency_key=key,
    )


ChannelFactory = Callable[..., SmsHttpChannel]


@pytest.fixture
async def sms_channel(sms_gateway: SmsGatewaySimulator) -> AsyncIterator[ChannelFactory]:
    channels: list[SmsHttpChannel] = []

    def build(*, token: str | None = None, timeout: float = 5.0) -> SmsHttpChannel:
        account, _, secret = sms_gateway.credentials.partition(":")
        channel = SmsHttpChannel(
            base_url=sms_gateway.url,
            account=account,
            token=token if token is not None else secret,
            sender="Forewarn",
            status_callback=CALLBACK,
            timeout=timeout,
        )
        channels.append(channel)
        return channel

    yield build
    for channel in channels:
        await channel.aclose()


def email_channel(port: int, *, timeout: float = 5.0) -> SmtpEmailChannel:
    return SmtpEmailChannel(
        host="127.0.0.1",
        port=port,
        sender="Forewarn <noreply@forewarn.example>",
        timeout=timeout,
    )


async def test_sms_is_recorded_by_the_gateway_and_returns_its_sid(
    sms_gateway: SmsGatewaySimulator, sms_channel: ChannelFactory
) -> None:
    delivery = await sms_channel().send(make_notice())

    assert delivery.provider == "sms_http"
    assert delivery.provider_id.startswith("SM") and len(delivery.provider_id) == 34
    [sent] = sms_gateway.messages
    assert sent.sid == delivery.provider_id
    assert sent.to == PHONE
    assert sent.body == "We are aware of an outage affecting your service."
    assert sent.sender == "Forewarn"
    assert sent.status_callback == CALLBACK


async def test_sms_with_wrong_credentials_fails_permanently_as_auth_failed(
    sms_gateway: SmsGatewaySimulator, sms_channel: ChannelFactory
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await sms_channel(token="wrong").send(make_notice())

    assert caught.value.reason == "auth_failed"
    assert sms_gateway.messages == []


async def test_sms_rate_limited_is_temporary_with_retry_after(
    sms_gateway: SmsGatewaySimulator, sms_channel: ChannelFactory
) -> None:
    sms_gateway.fail_next(1, status=429)

    with pytest.raises(TemporaryDeliveryError) as caught:
        await sms_channel().send(make_notice())

    assert caught.value.reason == "http_429"
    assert caught.value.retry_after == 1.0
    assert sms_gateway.messages == []


async def test_sms_server_error_is_temporary_and_next_attempt_succeeds(
    sms_gateway: SmsGatewaySimulator, sms_channel: ChannelFactory
) -> None:
    sms_gateway.fail_next(1, status=500)
    channel = sms_channel()

    with pytest.raises(TemporaryDeliveryError) as caught:
        await channel.send(make_notice())
    delivery = await channel.send(make_notice())

    assert caught.value.reason == "http_500"
    assert [m.sid for m in sms_gateway.messages] == [delivery.provider_id]
    assert sms_gateway.requests == 2


async def test_sms_slower_than_channel_timeout_is_temporary_timeout(
    sms_gateway: SmsGatewaySimulator, sms_channel: ChannelFactory
) -> None:
    sms_gateway.set_delay(1.0)

    with pytest.raises(TemporaryDeliveryError) as caught:
        await sms_channel(timeout=0.2).send(make_notice())

    assert caught.value.reason == "timeout"


async def test_sms_to_invalid_number_fails_permanently_without_leaking_it(
    sms_gateway: SmsGatewaySimulator, sms_channel: ChannelFactory
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await sms_channel().send(make_notice(to="0151 1234"))

    assert caught.value.reason == "invalid_number"
    assert "0151" not in str(caught.value)
    assert sms_gateway.messages == []


async def test_sms_sent_twice_with_same_idempotency_key_is_delivered_once(
    sms_gateway: SmsGatewaySimulator, sms_channel: ChannelFactory
) -> None:
    channel = sms_channel()

    first = await channel.send(make_notice(key="same"))
    second = await channel.send(make_notice(key="same"))
    third = await channel.send(make_notice(key="other"))

    assert first.provider_id == second.provider_id
    assert third.provider_id != first.provider_id
    assert [m.sid for m in sms_gateway.messages] == [first.provider_id, third.provider_id]


async def test_sms_to_a_closed_port_is_temporary_connect_error() -> None:
    channel = SmsHttpChannel(
        base_url=f"http://127.0.0.1:{free_port()}",
        account="ACx",
        token="secret",
        sender="Forewarn",
        status_callback=CALLBACK,
        timeout=2.0,
    )
    try:
        with pytest.raises(TemporaryDeliveryError) as caught:
            await channel.send(make_notice())
    finally:
        await channel.aclose()

    assert caught.value.reason == "connect_error"


async def test_sms_channel_from_settings_reaches_the_gateway(
    sms_gateway: SmsGatewaySimulator,
) -> None:
    settings = Settings(
        sms_gateway_url=sms_gateway.url,
        sms_gateway_token=SecretStr(sms_gateway.credentials),
        sms_from="Forewarn",
        public_base_url="https://forewarn.example",
    )
    channel = sms_http.from_settings(settings)
    try:
        await channel.send(make_notice())
    finally:
        await channel.aclose()

    [sent] = sms_gateway.messages
    assert sent.status_callback == "https://forewarn.example/v1/webhooks/sms/status"


async def test_email_reaches_the_sink_with_text_html_and_unsubscribe_headers(
    smtp_server: SmtpSink,
) -> None:
    notice = make_notice(to="anna@example.com", channel="email", html="<p>Outage</p>")
    notice = dataclasses.replace(notice, unsubscribe_url="https://forewarn.example/u/signed")

    delivery = await email_channel(smtp_server.port).send(notice)

    assert delivery.provider == "smtp"
    [message] = smtp_server.messages
    assert message["Message-ID"] == delivery.provider_id
    assert delivery.provider_id.endswith("@forewarn.example>")
    assert message["To"] == "anna@example.com"
    assert message["Subject"] == "Outage in your area"
    assert message["List-Unsubscribe"] == "<https://forewarn.example/u/signed>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Forewarn-Notice"] == "k-1"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and "outage affecting" in text.get_content()
    assert html is not None and "<p>Outage</p>" in html.get_content()


async def test_email_without_html_is_plain_text(smtp_server: SmtpSink) -> None:
    await email_channel(smtp_server.port).send(make_notice(to="a@example.com", channel="email"))

    [message] = smtp_server.messages
    assert message.get_content_type() == "text/plain"


async def test_email_to_a_closed_port_is_temporary() -> None:
    channel = email_channel(free_port(), timeout=2.0)

    with pytest.raises(TemporaryDeliveryError) as caught:
        await channel.send(make_notice(to="a@example.com", channel="email"))

    assert caught.value.reason in {"connect_error", "timeout"}


async def test_email_refused_with_451_is_temporary_then_delivered(smtp_server: SmtpSink) -> None:
    channel = email_channel(smtp_server.port)
    notice = make_notice(to="a@example.com", channel="email")
    smtp_server.refuse(True)

    with pytest.raises(TemporaryDeliveryError) as caught:
        await channel.send(notice)
    smtp_server.refuse(False)
    await channel.send(notice)

    assert caught.value.reason == "smtp_451"
    assert len(smtp_server.messages) == 1


async def test_email_channel_from_settings_reaches_the_sink(smtp_server: SmtpSink) -> None:
    settings = Settings(
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        public_base_url="https://forewarn.example/",
    )

    await email_smtp.from_settings(settings).send(make_notice(to="a@example.com", channel="email"))

    [message] = smtp_server.messages
    assert message["From"] == settings.smtp_from
    assert message["List-Unsubscribe"] is None  # only a notice with a signed link carries one


async def test_email_while_the_smtp_server_is_down_is_temporary_then_delivered(
    smtp_server: SmtpSink,
) -> None:
    channel = email_channel(smtp_server.port, timeout=2.0)
    notice = make_notice(to="a@example.com", channel="email")
    smtp_server.stop()

    with pytest.raises(TemporaryDeliveryError) as caught:
        await channel.send(notice)
    smtp_server.start()  # the same port, as a restarted server would
    await channel.send(notice)

    assert caught.value.reason in {"connect_error", "timeout"}
    assert len(smtp_server.messages) == 1


# The subjects of every language, as notices have them and longer than one header line: the
# stdlib folder left a space between two encoded words there, and readers dropped it.
SUBJECTS = {
    "en": "Update: internet, TV and phone line disruption in your area, still being repaired",
    "de": "Neues zur Störung: Internet, TV und Telefon in Ihrer Region, Behebung läuft weiter",
    "es": "Novedades: incidencia en internet, televisión y teléfono en su zona, en reparación",
    "vi": "Cập nhật: sự cố Internet, truyền hình và điện thoại tại khu vực của bạn đã khắc phục",
    "hi": "अपडेट: आपके क्षेत्र में इंटरनेट सेवा, टीवी और फ़ोन की बाधा अभी ठीक की जा रही है",
}


def rendered_subjects(language: str) -> list[str]:
    renderer = Renderer()
    opened = datetime(2026, 12, 3, 14, 41, tzinfo=UTC)
    subjects = []
    for stage in ("detected", "update", "resolved", "overnight", "maintenance_scheduled"):
        facts = NoticeFacts(
            stage=stage,
            language=language,
            timezone="Europe/Berlin",
            customer_name="Anna Weber",
            services=("internet", "tv", "voice"),
            started_at=opened,
            resolved_at=opened + timedelta(hours=1),
            next_update_due=opened + timedelta(minutes=30),
            eta=None,
            status_url="https://status.example.net/o/abc",
            window_start=opened,
            window_end=opened + timedelta(hours=4),
        )
        subjects.append(renderer.render(facts).subject)
    return subjects


@pytest.mark.parametrize("language", sorted(SUBJECTS))
async def test_an_email_subject_decodes_to_its_exact_words_with_a_date(
    smtp_server: SmtpSink, language: str
) -> None:
    channel = email_channel(smtp_server.port)
    subjects = [SUBJECTS[language], SUBJECTS[language] * 3, *rendered_subjects(language)]
    before = datetime.now(UTC).replace(microsecond=0)
    for n, subject in enumerate(subjects):
        notice = dataclasses.replace(
            make_notice(to="anna@example.com", channel="email", key=f"k-{n}"), subject=subject
        )
        await channel.send(notice)

    assert len(smtp_server.raw) == len(subjects)
    for raw, subject in zip(smtp_server.raw, subjects, strict=True):
        for policy in (email.policy.strict, email.policy.default):
            parsed = email.message_from_bytes(raw, policy=policy)
            assert parsed["Subject"] == subject, raw.split(b"\r\n\r\n")[0].decode()
            assert parsed["Message-ID"]
            date = parsed["Date"].datetime
            assert date.tzinfo is not None and before <= date <= datetime.now(UTC)
        header = raw.split(b"\r\n\r\n")[0]
        assert all(len(line) <= 78 for line in header.split(b"\r\n"))
