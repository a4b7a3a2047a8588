"""The inventory document `PUT /v1/inventory` takes: topology, devices and customers.

Each field is checked on its own here (phone numbers normalised to E.164, e-mail addresses,
time zones, languages); references between them are checked by the service, which reports
every problem at once.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, model_validator

from app.locales import check_locale

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][\w.:-]*$")]
Service = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class Language(StrEnum):
    """Languages customers can be told in: every stage has a template in each."""

    EN = "en"
    DE = "de"
    ES = "es"
    VI = "vi"
    HI = "hi"


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    WEBHOOK = "webhook"


def normalise_phone(value: str) -> str:
    """Return the number in E.164; reject what is not a valid international number."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number; use E.164, e.g. +4915112345678") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number for its country code")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(value: str) -> str:
    """Return the address normalised; reject an invalid one (no DNS lookup)."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def check_timezone(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", value):
        raise ValueError("not an IANA time zone name, e.g. Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown IANA time zone, e.g. Europe/Berlin") from None
    return value


Phone = Annotated[str, Field(max_length=32), AfterValidator(normalise_phone)]
Email = Annotated[str, Field(max_length=320), AfterValidator(normalise_email)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(check_timezone)]
LocaleTag = Annotated[str, Field(max_length=35), AfterValidator(check_locale)]


class NodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    level: Literal["region", "hub", "node"]
    parent: Identifier | None = None
    name: str | None = Field(default=None, max_length=256)
    names: dict[Language, Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        default=None,
        description='The name customers know, per language: {"en": "Riverside", "de": ...}.',
    )


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    node: Identifier
    services: list[Service] = Field(default_factory=list, max_length=32)


class QuietHours(BaseModel):
    """Local clock times between which non-urgent notices wait (may span midnight)."""

    model_config = ConfigDict(extra="forbid")

    start: ClockTime
    end: ClockTime


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    name: str = Field(min_length=1, max_length=256)
    phone: Phone | None = None
    email: Email | None = None
    language: Language = Language.EN
    timezone: TimeZone = "UTC"
    locale: LocaleTag | None = Field(
        default=None,
        description="Formats dates and numbers (en-GB); default: the language where the zone is.",
    )
    channels: list[Channel] = Field(min_length=1, max_length=3)
    devices: list[Identifier] = Field(default_factory=list, max_length=1000)
    quiet_hours: QuietHours | None = None
    opt_outs: list[Channel] = Field(default_factory=list)
    priority: bool = Field(default=False, description="Medical, emergency or SLA: told first.")
    webhook_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _locale_speaks_the_language(self) -> CustomerIn:
        if self.locale is not None and self.locale.split("-")[0] != self.language.value:
            raise ValueError(f"locale {self.locale} is not in the language {self.language.value}")
        return self


class InventoryIn(BaseModel):
    """The whole inventory; a PUT replaces what is stored with exactly this."""

    model_config = ConfigDict(extra="forbid")

    nodes: list[NodeIn] = Field(max_length=100_000)
    devices: list[DeviceIn] = Field(default_factory=list, max_length=5_000_000)
    customers: list[CustomerIn] = Field(default_factory=list, max_length=5_000_000)


class InventorySummary(BaseModel):
    nodes: int
    devices: int
    customers: int
