"""`/v1/webhooks`: what the SMS provider tells Forewarn — delivery receipts and replies.

No bearer token: the provider calls these. Each request must carry a valid Twilio signature
(`X-Twilio-Signature`, see `app.webhooks.twilio`) over `FOREWARN_PUBLIC_BASE_URL` + the path
and the form it posts; without one, or with no gateway token configured, the answer is 403.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qsl

import structlog
from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import ForbiddenError
from app.clock import utc_now
from app.deps import SessionDep, SettingsDep
from app.exceptions import InvalidInputError
from app.inventory.consent import Source, record_consent
from app.inventory.models import Customer
from app.inventory.schemas import normalise_phone
from app.notifications.models import OutboxRow, SurveyResponse
from app.webhooks import twilio
from app.webhooks.metrics import webhook_metrics

log = structlog.get_logger("forewarn.webhooks")

router = APIRouter(prefix="/v1/webhooks", tags=["provider webhooks"])

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

# Replies that opt a customer out of SMS, compared after NFC normalisation and casefolding.
STOP_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"),
    "de": ("STOPP", "ABMELDEN"),
    "es": ("BAJA", "CANCELAR", "ALTO"),
    "vi": ("HUY", "HỦY", "DUNG", "DỪNG"),
    "hi": ("रोकें", "बंद", "BAND"),
}
# Replies that opt a customer back in to SMS after a STOP.
START_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("START", "UNSTOP"),
    "de": ("START", "ANMELDEN"),
    "es": ("ALTA", "INICIAR"),
    "vi": ("BAT DAU", "BẮT ĐẦU"),
    "hi": ("शुरू", "SHURU"),
}


def _keywords(words: dict[str, tuple[str, ...]]) -> frozenset[str]:
    return frozenset(
        unicodedata.normalize("NFC", word).casefold() for group in words.values() for word in group
    )


_STOP = _keywords(STOP_WORDS)
_START = _keywords(START_WORDS)
_SCORE = re.compile(r"[1-5]")
# Punctuation people put after a one-word reply ("Stop!", "4.", "रोकें।").
_TRAILING = " \t\r\n.!?।"

# Statuses Twilio reports; others are stored but counted as `other` (bounded label values).
_KNOWN_STATUSES = frozenset(
    {"accepted", "queued", "sending", "sent", "delivered", "undelivered", "failed", "read"}
)
_FINAL = frozenset({"delivered", "undelivered", "failed", "read"})
_FAILED = frozenset({"undelivered", "failed"})
_STATUS = re.compile(r"[a-z_]{1,32}")


async def _signed_form(request: Request, settings: SettingsDep) -> dict[str, str]:
    """Return the posted form once its Twilio signature checks out; raise 403 otherwise."""
    credential = settings.sms_gateway_token
    token = twilio.auth_token(credential.get_secret_value()) if credential else None
    if token is None:
        raise ForbiddenError("webhook signatures cannot be checked: no SMS gateway token is set")
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise ForbiddenError("the request body is not a form Forewarn can check") from None
    url = settings.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += f"?{request.url.query}"
    if not twilio.is_valid(token, url, pairs, request.headers.get(twilio.SIGNATURE_HEADER)):
        log.warning("webhook signature rejected", path=request.url.path)
        raise ForbiddenError(f"missing or invalid {twilio.SIGNATURE_HEADER} header")
    return dict(pairs)


SignedForm = Annotated[dict[str, str], Depends(_signed_form)]


def _required(form: dict[str, str], names: Sequence[str]) -> None:
    missing = [{"field": n, "reason": "is required"} for n in names if not form.get(n, "").strip()]
    if missing:
        raise InvalidInputError(missing)


@router.post("/sms/status", status_code=204)
async def sms_status(form: SignedForm, request: Request, session: SessionDep) -> Response:
    """Record a delivery receipt on the notice it is about; unknown messages are only counted."""
    _required(form, ("MessageSid", "MessageStatus"))
    status = form["MessageStatus"].strip().lower()
    if not _STATUS.fullmatch(status):
        raise InvalidInputError([{"field": "MessageStatus", "reason": "not a message status"}])
    matched = await record_receipt(
        session=session,
        provider_id=form["MessageSid"].strip(),
        status=status,
        error_code=form.get("ErrorCode", "").strip() or None,
        now=utc_now(),
    )
    registry: CollectorRegistry = request.app.state.registry
    label = status if status in _KNOWN_STATUSES else "other"
    webhook_metrics(registry).receipts.labels(label, "true" if matched else "false").inc()
    if not matched:
        log.info("delivery receipt for no known notice", status=label)
    return Response(status_code=204)


async def record_receipt(
    *,
    session: AsyncSession,
    provider_id: str,
    status: str,
    error_code: str | None,
    now: datetime,
) -> bool:
    """Set the delivery status of the SMS notice the provider knows as `provider_id`.

    Receipts can arrive out of order: a late `sent` never overwrites a final status. Return
    whether any notice matched.
    """
    query = select(OutboxRow).where(
        OutboxRow.provider_id == provider_id, OutboxRow.channel == "sms"
    )
    rows = list(await session.scalars(query))
    for row in rows:
        if row.delivery_status in _FINAL and status not in _FINAL:
            continue
        row.delivery_status = status
        if status == "delivered":
            row.delivered_at = now
        elif status in _FAILED:
            row.last_error = f"delivery_{status}" + (f" (error {error_code})" if error_code else "")
    return bool(rows)


@router.post("/sms/inbound")
async def sms_inbound(form: SignedForm, request: Request, session: SessionDep) -> Response:
    """Act on a customer's reply: a STOP word opts out of SMS, a START word opts back in, a
    digit 1-5 rates the handling. The choice is committed before the answer (or it is a 503).

    Answers empty TwiML: Forewarn sends no reply message.
    """
    _required(form, ("From",))
    action = await handle_reply(
        session=session, sender=form["From"], body=form.get("Body", ""), now=utc_now()
    )
    registry: CollectorRegistry = request.app.state.registry
    webhook_metrics(registry).replies.labels(action).inc()
    return Response(content=EMPTY_TWIML, media_type="application/xml")


def reply_word(body: str) -> str:
    """Return the reply as compared with the keywords: NFC, trimmed, casefolded."""
    return unicodedata.normalize("NFC", body).strip(_TRAILING).casefold()


async def handle_reply(*, session: AsyncSession, sender: str, body: str, now: datetime) -> str:
    """Apply one inbound SMS; return what it did: `opt_out`, `opt_in`, `survey` or `ignored`."""
    try:
        phone = normalise_phone(sender)
    except ValueError:
        log.info("sms reply ignored", reason="sender_not_a_phone_number")
        return "ignored"
    customers = list(
        await session.scalars(select(Customer).where(Customer.phone == phone).order_by(Customer.id))
    )
    word = reply_word(body)
    action = "ignored"
    if not customers:
        reason = "unknown_sender"
    elif word in _STOP or word in _START:
        opted_out = word in _STOP
        for customer in customers:
            record_consent(
                session=session,
                customer_id=customer.id,
                channel="sms",
                opted_out=opted_out,
                source=Source.SMS_KEYWORD,
                at=now,
            )
        action, reason = ("opt_out", "stop_word") if opted_out else ("opt_in", "start_word")
    elif _SCORE.fullmatch(word):
        rated = [
            c.id for c in customers if await record_score(session, c.id, int(word), now) is not None
        ]
        action, reason = ("survey", "score") if rated else ("ignored", "no_survey_sent")
    else:
        reason = "not_a_keyword"
    log.info("sms reply", action=action, reason=reason, customers=[c.id for c in customers])
    return action


async def record_score(
    session: AsyncSession, customer_id: str, score: int, now: datetime
) -> str | None:
    """Store the score for the customer's latest surveyed outage; return its id, or None."""
    outage_id: str | None = await session.scalar(
        select(OutboxRow.outage_id)
        .where(
            OutboxRow.customer_id == customer_id,
            OutboxRow.stage == "survey",
            OutboxRow.state == "sent",
        )
        .order_by(OutboxRow.sent_at.desc(), OutboxRow.id.desc())
        .limit(1)
    )
    if outage_id is None:
        return None
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(SurveyResponse).values(
        customer_id=customer_id, outage_id=outage_id, score=score, received_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id", "outage_id"],
            set_={"score": statement.excluded.score, "received_at": statement.excluded.received_at},
        )
    )
    return outage_id
