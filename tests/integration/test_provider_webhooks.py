"""Provider webhooks against a real database: signed receipts, STOP replies, survey scores."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twilio.request_validator import RequestValidator

from app.db import transaction
from app.main import create_app
from app.notifications.models import OutboxRow, SurveyResponse
from app.webhooks import twilio
from tests.factories import open_outage_on_node_17
from tests.integration.api_client import api_settings
from tests.integration.consents import opt_outs

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
AUTH_TOKEN = "twilio-auth-token-0123456789"
PUBLIC = "https://status.example.net"
PHONE = "+4915112345678"

Post = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def expected_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's scheme, written out independently of the code under test."""
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def test_the_signature_matches_twilios_published_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio.signature("12345", url, params.items()) == "GvWf1cFY/Q7PnoempGyD5oXAezc="
    assert expected_signature("12345", url, params) == "GvWf1cFY/Q7PnoempGyD5oXAezc="


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def provider(
    database_url: str, sessions: async_sessionmaker[AsyncSession], registry: CollectorRegistry
) -> Post:
    """An anonymous client on the app, as the SMS provider calls it."""
    settings = api_settings(database_url, sms_gateway_token=SecretStr(f"AC0123456789:{AUTH_TOKEN}"))
    app = create_app(settings=settings, sessions=sessions, registry=registry)

    @asynccontextmanager
    async def client() -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://10.0.0.7:8000"
        ) as http:
            yield http

    return client


async def signed_post(
    http: httpx.AsyncClient, path: str, params: dict[str, str], *, token: str = AUTH_TOKEN
) -> httpx.Response:
    """POST a form signed for the public URL, as the provider does behind a proxy."""
    signature = expected_signature(token, PUBLIC + path, params)
    return await http.post(
        path,
        content=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )


async def seed(sessions: async_sessionmaker[AsyncSession]) -> str:
    """Customer c-1 on node-17, an open outage there and an SMS notice sent about it."""
    inventory = {
        "nodes": [
            {"id": "north", "level": "region"},
            {"id": "hub-1", "level": "hub", "parent": "north"},
            {"id": "node-17", "level": "node", "parent": "hub-1"},
        ],
        "devices": [{"id": "cpe-1", "node": "node-17", "services": ["internet"]}],
        "customers": [
            {
                "id": "c-1",
                "name": "Anna Weber",
                "phone": PHONE,
                "email": "anna@example.com",
                "language": "de",
                "channels": ["sms", "email"],
                "devices": ["cpe-1"],
            }
        ],
    }
    async with transaction(sessions) as session:
        event = await open_outage_on_node_17(
            session=session, inventory=inventory, services=["internet"], at=T0
        )
        session.add(notice(event.outage_id, "detected", "sent", provider_id="SM0001"))
    return event.outage_id


def notice(outage_id: str, stage: str, state: str, provider_id: str | None = None) -> OutboxRow:
    return OutboxRow(
        customer_id="c-1",
        outage_id=outage_id,
        stage=stage,
        sequence=0,
        channel="sms",
        language="de",
        state=state,
        attempts=1 if state == "sent" else 0,
        priority=0,
        created_at=T0,
        next_attempt_at=T0,
        sent_at=T0 if state == "sent" else None,
        provider="sms_http",
        provider_id=provider_id,
    )


async def outbox_row(sessions: async_sessionmaker[AsyncSession], provider_id: str) -> OutboxRow:
    async with sessions() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.provider_id == provider_id))
    assert row is not None
    return row


async def scores(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(SurveyResponse.customer_id, SurveyResponse.outage_id, SurveyResponse.score)
        )
    return [(c, o, s) for c, o, s in rows]


async def test_a_delivery_receipt_marks_the_notice_delivered(
    provider: Post, sessions: async_sessionmaker[AsyncSession], registry: CollectorRegistry
) -> None:
    await seed(sessions)
    async with provider() as http:
        sent = await signed_post(
            http, "/v1/webhooks/sms/status", {"MessageSid": "SM0001", "MessageStatus": "sent"}
        )
        delivered = await signed_post(
            http, "/v1/webhooks/sms/status", {"MessageSid": "SM0001", "MessageStatus": "delivered"}
        )
        late = await signed_post(
            http, "/v1/webhooks/sms/status", {"MessageSid": "SM0001", "MessageStatus": "sent"}
        )
        unknown = await signed_post(
            http, "/v1/webhooks/sms/status", {"MessageSid": "SM9999", "MessageStatus": "failed"}
        )

    assert [r.status_code for r in (sent, delivered, late, unknown)] == [204, 204, 204, 204]
    row = await outbox_row(sessions, "SM0001")
    assert row.delivery_status == "delivered" and row.delivered_at is not None
    counted = registry.get_sample_value(
        "forewarn_delivery_receipts_total", {"status": "failed", "matched": "false"}
    )
    assert counted == 1.0


async def test_an_undelivered_receipt_records_the_error_code(
    provider: Post, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    receipt = {"MessageSid": "SM0001", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    async with provider() as http:
        response = await signed_post(http, "/v1/webhooks/sms/status", receipt)

    assert response.status_code == 204
    row = await outbox_row(sessions, "SM0001")
    assert row.delivery_status == "undelivered" and row.delivered_at is None
    assert row.last_error is not None
    assert row.last_error.startswith("delivery_undelivered") and "30003" in row.last_error


async def test_a_forged_or_missing_signature_gets_403_and_changes_nothing(
    provider: Post, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    receipt = {"MessageSid": "SM0001", "MessageStatus": "delivered"}
    stop = {"From": PHONE, "Body": "STOP"}
    async with provider() as http:
        forged = await signed_post(http, "/v1/webhooks/sms/status", receipt, token="guessed")
        unsigned = await http.post("/v1/webhooks/sms/inbound", data=stop)
        # Signed, then altered on the way: the signature covers every parameter.
        signature = expected_signature(AUTH_TOKEN, PUBLIC + "/v1/webhooks/sms/inbound", stop)
        altered = await http.post(
            "/v1/webhooks/sms/inbound",
            data={**stop, "Body": "hello"},
            headers={"X-Twilio-Signature": signature},
        )

    for response in (forged, unsigned, altered):
        assert response.status_code == 403
        assert "X-Twilio-Signature" in response.json()["detail"]
    row = await outbox_row(sessions, "SM0001")
    assert row.delivery_status is None and row.delivered_at is None
    assert await opt_outs(sessions) == []


async def test_webhooks_are_refused_when_no_gateway_token_is_configured(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = create_app(
        settings=api_settings(database_url), sessions=sessions, registry=CollectorRegistry()
    )
    params = {"MessageSid": "SM0001", "MessageStatus": "delivered"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://forewarn"
    ) as http:
        response = await signed_post(http, "/v1/webhooks/sms/status", params)
    assert response.status_code == 403
    assert "no SMS gateway token" in response.json()["detail"]


@pytest.mark.parametrize("word", ["STOP", " stop ", "Stop!", "Dừng", "BAJA", "रोकें", "abmelden"])
async def test_a_stop_word_in_any_language_opts_the_customer_out_of_sms(
    provider: Post, sessions: async_sessionmaker[AsyncSession], word: str
) -> None:
    await seed(sessions)
    async with provider() as http:
        response = await signed_post(
            http, "/v1/webhooks/sms/inbound", {"From": "+49 151 12345678", "Body": word}
        )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert await opt_outs(sessions) == ["sms"]


async def test_a_stop_word_written_with_combining_accents_still_opts_out(
    provider: Post, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    decomposed = "D\u01b0\u0300ng"  # "Dừng" as some phones send it: ư + combining grave
    async with provider() as http:
        await signed_post(http, "/v1/webhooks/sms/inbound", {"From": PHONE, "Body": decomposed})
    assert await opt_outs(sessions) == ["sms"]


async def test_an_ordinary_reply_opts_nobody_out(
    provider: Post, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    async with provider() as http:
        response = await signed_post(
            http, "/v1/webhooks/sms/inbound", {"From": PHONE, "Body": "please stop the outage"}
        )
    assert response.status_code == 200
    assert await opt_outs(sessions) == []


async def test_a_digit_after_a_sent_survey_records_the_score_and_a_second_updates_it(
    provider: Post, sessions: async_sessionmaker[AsyncSession]
) -> None:
    outage_id = await seed(sessions)
    async with transaction(sessions) as session:
        session.add(notice(outage_id, "survey", "sent", provider_id="SM0002"))
    async with provider() as http:
        first = await signed_post(http, "/v1/webhooks/sms/inbound", {"From": PHONE, "Body": "4"})
        after_first = await scores(sessions)
        second = await signed_post(http, "/v1/webhooks/sms/inbound", {"From": PHONE, "Body": " 5 "})

    assert first.status_code == 200 and second.status_code == 200
    assert after_first == [("c-1", outage_id, 4)]
    assert await scores(sessions) == [("c-1", outage_id, 5)]


async def test_a_digit_without_a_sent_survey_is_ignored(
    provider: Post, sessions: async_sessionmaker[AsyncSession]
) -> None:
    outage_id = await seed(sessions)
    async with transaction(sessions) as session:
        session.add(notice(outage_id, "survey", "pending"))  # planned, not sent yet
    async with provider() as http:
        response = await signed_post(http, "/v1/webhooks/sms/inbound", {"From": PHONE, "Body": "3"})
        stranger = await signed_post(
            http, "/v1/webhooks/sms/inbound", {"From": "+4915199999999", "Body": "3"}
        )

    assert response.status_code == 200 and stranger.status_code == 200
    assert await scores(sessions) == []
    assert await opt_outs(sessions) == []


@pytest.mark.parametrize("signed_url", [PUBLIC, "https://status.example.net:443"])
async def test_a_stop_signed_by_twilios_own_validator_with_or_without_the_default_port_is_taken(
    provider: Post, sessions: async_sessionmaker[AsyncSession], signed_url: str
) -> None:
    """Twilio may sign the URL with its default port written out; its own RequestValidator
    accepts both forms, and so must we (a refused STOP is a lost STOP)."""
    await seed(sessions)
    params = {"From": "+49 151 12345678", "Body": "STOP"}
    path = "/v1/webhooks/sms/inbound"
    validator = RequestValidator(AUTH_TOKEN)
    signature = validator.compute_signature(signed_url + path, params)
    assert validator.validate(PUBLIC + path, params, signature)  # Twilio's view of it
    async with provider() as http:
        response = await http.post(
            path,
            content=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
        )
    assert response.status_code == 200
    assert await opt_outs(sessions) == ["sms"]


def test_a_signature_over_another_port_is_not_the_default_ports() -> None:
    params = {"From": "+49 151 12345678", "Body": "STOP"}
    other = RequestValidator(AUTH_TOKEN).compute_signature(
        "https://status.example.net:8443/v1/webhooks/sms/inbound", params
    )
    url = PUBLIC + "/v1/webhooks/sms/inbound"
    assert not twilio.is_valid(AUTH_TOKEN, url, params.items(), other)
