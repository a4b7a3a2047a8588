"""Pages customers reach from a notice: an outage's status, and one-click unsubscribe.

Neither needs a token: the outage page is found by an unguessable public token, and the
unsubscribe link carries an HMAC signature (RFC 8058 one-click: a POST unsubscribes, a GET
only asks, so link scanners cannot opt anyone out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime
from babel.lists import format_list
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import as_utc, utc_now
from app.deps import SessionDep, SettingsDep
from app.domain.services import service_name
from app.exceptions import NotFoundError
from app.inventory.consent import Source, record_consent
from app.inventory.models import Customer
from app.inventory.places import places_of
from app.links import read_unsubscribe_token
from app.locales import notice_locale
from app.maintenance.models import Maintenance
from app.outages.models import TimelineEntry
from app.outages.queries import outage_by_token, outage_near
from app.outages.update_texts import update_text
from app.public_texts import MAINTENANCE_TEXTS, TEXTS, pick_language
from app.settings import Settings

router = APIRouter(tags=["public"], include_in_schema=True)
_pages = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["j2", "html"]),
)


def _page(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_pages.get_template(name).render(**context))


def _services(services: list[str] | None, language: str) -> str:
    """The services in the reader's words, as a list in their language ("TV und Telefon")."""
    if not services:
        return ""
    return format_list([service_name(s, language) for s in services], locale=language)


def _reader_zone(tz: str | None) -> str | None:
    """The zone a notice link names, if it is a real one (anything else is ignored)."""
    if not tz or len(tz) > 64:
        return None
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return tz


@dataclass(frozen=True, slots=True)
class _Shown:
    """A moment for the page: its ISO form (for `<time datetime>`) and its text."""

    iso: str
    text: str

    def __bool__(self) -> bool:
        return bool(self.iso)


def _formatter(language: str, zone: str | None) -> Callable[[datetime | None], _Shown]:
    tzinfo = ZoneInfo(zone) if zone else UTC
    locale = notice_locale(language, zone or "UTC")

    def when(moment: datetime | None) -> _Shown:
        if moment is None:
            return _Shown("", "")
        moment = as_utc(moment)
        text = format_datetime(moment, "medium", tzinfo=tzinfo, locale=locale)
        return _Shown(moment.isoformat().replace("+00:00", "Z"), text)

    return when


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads a public page: their language (with its words), the zone their notice link
    named (None: the browser's, by the page's script), and how a moment is shown to them."""

    language: str
    zone: str | None
    when: Callable[[datetime | None], _Shown]

    @property
    def words(self) -> dict[str, str]:
        return TEXTS[self.language]

    def zone_context(self) -> dict[str, Any]:
        """What every public page's footer and <html lang> need of the reader."""
        before, _, after = self.words["times"].partition("{zone}")
        return {
            "lang": self.language,
            "words": self.words,
            "zone": self.zone or "UTC",
            "zone_fixed": self.zone is not None,
            "times_before": before,
            "times_after": after,
        }


def _reader(
    lang: str | None = None,
    tz: str | None = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> Reader:
    """`?lang=` (else Accept-Language, else English) and `?tz=` (a notice link's zone)."""
    language = pick_language(lang, accept_language)
    zone = _reader_zone(tz)
    return Reader(language, zone, _formatter(language, zone))


ReaderDep = Annotated[Reader, Depends(_reader)]


@router.get("/o/{token}", response_class=HTMLResponse)
async def outage_page(token: str, session: SessionDep, reader: ReaderDep) -> HTMLResponse:
    """The public status page of one outage, in the reader's language; no personal data.

    Times are shown in `tz`, the zone a customer's notice link names; without one (or with an
    unknown one) in UTC, which a small script on the page turns into the browser's zone."""
    outage = await outage_by_token(session=session, token=token)
    language, words, when = reader.language, reader.words, reader.when
    entries = await session.scalars(
        select(TimelineEntry)
        .where(
            TimelineEntry.outage_id == outage.id,
            TimelineEntry.kind.in_(("transition", "update")),
        )
        .order_by(TimelineEntry.at, TimelineEntry.id)
    )
    timeline = []
    for entry in entries:
        if entry.kind == "update":
            text = update_text(
                entry.message.get("messages") or {},
                entry.message.get("template"),
                language,
                entry.message.get("fallback_language"),
            )
            label = words["update"]
        else:
            text = ""
            label = words["resolved_state" if entry.state == "resolved" else entry.state]
        timeline.append({"at": when(entry.at), "label": label, "text": text})
    state = "resolved_state" if outage.state == "resolved" else outage.state
    places = await places_of(session=session, scopes=[(outage.scope_level, outage.scope_id)])
    return _page(
        "outage.html.j2",
        title=words["title"],
        state_label=words[state],
        outage=outage,
        area=places[(outage.scope_level, outage.scope_id)].called(language),
        services=_services(outage.services, language) or words["all"],
        started=when(outage.opened_at or outage.started_at),
        eta=when(outage.eta),
        next_update=when(outage.next_update_due),
        resolved=when(outage.resolved_at),
        timeline=timeline,
        **reader.zone_context(),
    )


@router.get("/m/{token}", response_class=HTMLResponse)
async def maintenance_page(token: str, session: SessionDep, reader: ReaderDep) -> HTMLResponse:
    """The public page of one maintenance window, in the reader's language and zone as the
    outage page is. It says "completed" only once the work has ended and nothing under or
    over its place is failing; otherwise that a disruption is being fixed."""
    window = await session.scalar(select(Maintenance).where(Maintenance.public_token == token))
    if window is None or window.cancelled_at is not None:
        raise NotFoundError("no such maintenance window")
    language, words, when = reader.language, reader.words, reader.when
    now = utc_now()
    started, ended = as_utc(window.starts_at) <= now, as_utc(window.ends_at) <= now
    if not ended:
        status = "in_progress" if started else "scheduled"
    else:
        failing = await outage_near(session=session, scope_id=window.scope_id)
        status = "disrupted" if failing else "completed"
    places = await places_of(session=session, scopes=[("place", window.scope_id)])
    return _page(
        "maintenance.html.j2",
        title=MAINTENANCE_TEXTS[language]["title"],
        texts=MAINTENANCE_TEXTS[language],
        status=status,
        window=window,
        area=places[("place", window.scope_id)].called(language),
        services=_services(window.services, language) or words["all"],
        starts=when(window.starts_at),
        ends=when(window.ends_at),
        **reader.zone_context(),
    )


async def _customer_channel(
    settings: Settings, session: AsyncSession, token: str
) -> tuple[Customer, str]:
    if settings.link_secret is None:
        raise NotFoundError("this link is not valid")
    customer_id, channel = read_unsubscribe_token(settings.link_secret.get_secret_value(), token)
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFoundError("this link is not valid")
    return customer, channel


@router.get("/u/{token}", response_class=HTMLResponse)
async def unsubscribe_page(token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """Ask before unsubscribing (a GET changes nothing)."""
    _customer, channel = await _customer_channel(settings, session, token)
    return _page("unsubscribe.html.j2", title="Unsubscribe", channel=channel, done=False)


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(
    token: str, request: Request, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """Opt the customer out of the link's channel (one-click, RFC 8058); the page answers only
    once the opt-out is committed (a busy database is a 503: the mail client retries)."""
    customer, channel = await _customer_channel(settings, session, token)
    record_consent(
        session=session,
        customer_id=customer.id,
        channel=channel,
        opted_out=True,
        source=Source.UNSUBSCRIBE_LINK,
        at=utc_now(),
    )
    return _page("unsubscribe.html.j2", title="Unsubscribed", channel=channel, done=True)
