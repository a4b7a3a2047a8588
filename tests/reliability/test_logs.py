"""No personal data in the logs: every line every storm process wrote (JSON from structlog,
plain text from anything else), and a provider webhook forged with a customer's number.

The storm's notifiers run at debug level, so every notice sent or retried is logged; the API
answers lookups by phone and the webhooks below. None of it may show a phone number or an
e-mail address in clear (app/logs.py masks `+4915112345678` as `+49•••••••5678`).
"""

from __future__ import annotations

import re

import httpx
import pytest

from app.webhooks import twilio
from tests.e2e.processes import json_lines
from tests.reliability.conftest import STORM_TIMEOUT
from tests.reliability.figures import record
from tests.reliability.storm import StormResult

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(STORM_TIMEOUT)]

# Stricter than app/logs.py: any `+` and 7 or more digits (spaces or dashes between), any
# run of 10 or more digits, any e-mail address.
PHONE = re.compile(r"\+\d(?:[ \-]?\d){6,}|(?<![\w.])\d{10,}(?![\w.])")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
TIMESTAMP = re.compile(r'"timestamp": "[^"]*"')


def clear_personal_data(text: str, storm: StormResult) -> list[str]:
    """Every phone number or e-mail address in `text`, generic or a customer's own."""
    text = TIMESTAMP.sub("", text)
    found = PHONE.findall(text) + EMAIL.findall(text)
    for customer in storm.network.customers.values():
        for value in (customer["phone"], customer["phone"][1:], customer["email"]):
            if value in text:
                found.append(value)
    return found


async def test_a_forged_provider_webhook_is_refused_with_403_and_its_number_is_not_logged(
    storm: StormResult,
) -> None:
    customer = next(iter(storm.network.customers.values()))
    base = storm.public_base_url
    inbound = {"From": customer["phone"], "To": "Forewarn", "Body": "STOP"}
    receipt = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "To": customer["phone"]}
    good_inbound = twilio.signature(
        storm.gateway_auth_token, base + "/v1/webhooks/sms/inbound", inbound.items()
    )
    answers = {}
    async with httpx.AsyncClient(base_url=storm.api_url, timeout=10) as client:

        async def post(path: str, form: dict[str, str], signature: str | None) -> int:
            headers = {} if signature is None else {twilio.SIGNATURE_HEADER: signature}
            return (await client.post(path, data=form, headers=headers)).status_code

        answers["no signature"] = await post("/v1/webhooks/sms/inbound", inbound, None)
        answers["garbage signature"] = await post("/v1/webhooks/sms/inbound", inbound, "Zm9yZ2Vk")
        answers["signed with another token"] = await post(
            "/v1/webhooks/sms/inbound",
            inbound,
            twilio.signature("not-the-token", base + "/v1/webhooks/sms/inbound", inbound.items()),
        )
        answers["signed, then the body altered"] = await post(
            "/v1/webhooks/sms/inbound", {**inbound, "Body": "STOPALL"}, good_inbound
        )
        answers["forged receipt"] = await post("/v1/webhooks/sms/status", receipt, "Zm9yZ2Vk")
        # The control: the same requests, correctly signed, are accepted.
        chatter = {
            "From": customer["phone"],
            "Body": f"call me on {customer['phone']} or write to {customer['email']}",
        }
        answers["signed reply (control)"] = await post(
            "/v1/webhooks/sms/inbound",
            chatter,
            twilio.signature(
                storm.gateway_auth_token, base + "/v1/webhooks/sms/inbound", chatter.items()
            ),
        )
        answers["signed receipt (control)"] = await post(
            "/v1/webhooks/sms/status",
            receipt,
            twilio.signature(
                storm.gateway_auth_token, base + "/v1/webhooks/sms/status", receipt.items()
            ),
        )
    assert answers == {
        "no signature": 403,
        "garbage signature": 403,
        "signed with another token": 403,
        "signed, then the body altered": 403,
        "forged receipt": 403,
        "signed reply (control)": 200,
        "signed receipt (control)": 204,
    }
    log = storm.api.log()
    rejected = [
        line for line in json_lines(log) if line.get("event") == "webhook signature rejected"
    ]
    assert len(rejected) == 5
    assert any(line.get("event") == "sms reply" for line in json_lines(log))
    assert not clear_personal_data(log, storm)


def test_no_phone_number_or_email_address_appears_in_clear_in_any_process_log(
    storm: StormResult,
) -> None:
    logs = storm.logs()
    assert {name.split("-")[0] for name in logs} >= {"api", "detector", "planner", "notifier"}
    leaks = {
        name: found for name, text in logs.items() if (found := clear_personal_data(text, storm))
    }
    lines = sum(len(text.splitlines()) for text in logs.values())
    structured = sum(len(json_lines(text)) for text in logs.values())
    notices_logged = sum(
        1
        for text in logs.values()
        for line in json_lines(text)
        if line.get("event") in ("notice sent", "notice will be retried")
    )
    record(
        "logs",
        {
            "files": len(logs),
            "lines": lines,
            "json_lines": structured,
            "notice_lines": notices_logged,
            "leaks": sum(len(found) for found in leaks.values()),
        },
    )
    assert not leaks, {name: found[:10] for name, found in leaks.items()}
    # The check had something to find: the notifiers logged every notice they handled.
    assert notices_logged >= len([r for r in storm.rows if r["state"] == "sent"]) // 2
