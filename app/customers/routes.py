"""`/v1/customers/{id}/outages` and `/v1/lookup`: "is there a known outage?" for the IVR and
the contact centre.

Every answered question is also a customer contact: it goes to the `contacts` topic (through
the app's `contact_sink`, after the answer is sent), where it dates the outage's first
contact and feeds the `contacts_spike` rule.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from pydantic import AfterValidator

from app.clock import utc_now
from app.customers.consents import customer_consent, set_consent
from app.customers.schemas import ConsentIn, CustomerConsent, CustomerOutages
from app.customers.service import ContactSink, customer_id_by_phone, customer_outages
from app.deps import Engineer, SessionDep, SettingsDep, Viewer
from app.inventory.schemas import Channel, normalise_phone

router = APIRouter(tags=["customers"])

PhoneQuery = Annotated[
    str,
    Query(max_length=32, description="In E.164 or international format, e.g. +49 151 12345678"),
    AfterValidator(normalise_phone),
]


def _record_contact(request: Request, tasks: BackgroundTasks, customer_id: str) -> None:
    sink: ContactSink | None = getattr(request.app.state, "contact_sink", None)
    if sink is not None:
        tasks.add_task(sink.record, customer_id, utc_now())


@router.get("/v1/customers/{customer_id}/outages")
async def get_customer_outages(
    customer_id: str,
    request: Request,
    tasks: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    _viewer: Viewer,
) -> CustomerOutages:
    """The known outages affecting this customer's services now."""
    answer = await customer_outages(
        session=session, customer_id=customer_id, base_url=settings.public_base_url
    )
    _record_contact(request, tasks, customer_id)
    return answer


@router.get("/v1/lookup")
async def lookup_by_phone(
    phone: PhoneQuery,
    request: Request,
    tasks: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    _viewer: Viewer,
) -> CustomerOutages:
    """The known outages affecting the customer who calls from this number."""
    customer_id = await customer_id_by_phone(session=session, phone=phone)
    answer = await customer_outages(
        session=session, customer_id=customer_id, base_url=settings.public_base_url
    )
    _record_contact(request, tasks, customer_id)
    return answer


@router.get("/v1/customers/{customer_id}/consents")
async def get_customer_consents(
    customer_id: str, session: SessionDep, _viewer: Viewer
) -> CustomerConsent:
    """What the customer is opted out of, what the inventory lists, and every choice on record."""
    return await customer_consent(session=session, customer_id=customer_id)


@router.put("/v1/customers/{customer_id}/consents/{channel}")
async def put_customer_consent(
    customer_id: str, channel: Channel, choice: ConsentIn, session: SessionDep, engineer: Engineer
) -> CustomerConsent:
    """Record a choice the customer told the contact centre; stored before the answer."""
    return await set_consent(
        session=session,
        customer_id=customer_id,
        channel=channel.value,
        opted_out=choice.opted_out,
        actor=engineer.name,
        now=utc_now(),
    )
