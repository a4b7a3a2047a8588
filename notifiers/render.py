"""Render a notice for one customer: Jinja2 templates per stage and language, Babel dates.

Each `templates/<language>/<stage>.j2` defines the blocks `subject`, `sms`, `sms_short`,
`text` and `link_label`; the HTML e-mail is the text's paragraphs in `templates/email.html.j2`
(autoescaped). Times are shown in the customer's time zone, formatted for their locale: the
inventory's `locale`, else their language where their zone is (`app.locales.notice_locale`).

An SMS over its segment limit loses, in this order, until it fits (`Renderer.render`):
1. its fixed phrases: `sms_short` says the same in fewer words (no greeting, no "no need to
   call"), still with the NOC's words, the expected fix and the promised next update;
2. the status link;
3. the end of the NOC's words (cut at a word, marked "…"), the promise still kept;
4. only when even that cannot fit: the end of the short form, cut at a word.
So the NOC's words and the promised time are in every SMS they can fit in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime, format_time
from babel.lists import format_list
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.runtime import Context

from app.domain.services import ANY_SERVICE, SERVICE_NAMES
from app.locales import notice_locale
from notifiers.segments import sms_length

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_LANGUAGE = "en"

# Which word of a full name is the given name, by which each language greets: the first in
# English, German, Spanish and Hindi ("Priya Sharma": "Priya"); the last in Vietnamese, which
# writes the family name first ("Nguyễn Văn An": "Chào An", never "Chào Nguyễn").
GIVEN_NAME_POSITION: dict[str, int] = {"en": 0, "de": 0, "es": 0, "vi": -1, "hi": 0}


class TemplateMissingError(LookupError):
    """No template for this stage in this language, nor in the default language."""


@dataclass(frozen=True, slots=True)
class NoticeFacts:
    """What a notice says, before it is put into words."""

    stage: str
    language: str
    timezone: str
    customer_name: str
    services: tuple[str, ...]
    started_at: datetime
    resolved_at: datetime | None
    next_update_due: datetime | None
    eta: datetime | None
    status_url: str
    unsubscribe_url: str | None = None
    message: str | None = None  # the NOC's words for an update (already in this language)
    cause: str | None = None
    window_start: datetime | None = None  # planned maintenance
    window_end: datetime | None = None
    area: str = ""  # the place's name in this language (app/domain/places.py), never its id
    locale: str | None = None  # BCP 47 (en-GB); None: the language where the time zone is


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    sms: str
    text: str
    html: str


def _plain(text: str) -> str:
    """Babel uses narrow and no-break spaces; plain ones keep an SMS in GSM-7."""
    return text.replace("\u202f", " ").replace("\u00a0", " ")


# A fan-out renders the same few times, zones and service lists for every customer: Babel
# formatting is the costly part, so it is memoised.
@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@lru_cache(maxsize=16384)
def _when(moment: datetime, zone: str, locale: str) -> str:
    return _plain(format_datetime(moment, "short", tzinfo=_zone(zone), locale=locale))


@lru_cache(maxsize=16384)
def _clock(moment: datetime, since: datetime, zone: str, locale: str) -> str:
    """The time alone when it falls on the same local day as `since`, else date and time."""
    tz = _zone(zone)
    if moment.astimezone(tz).date() == since.astimezone(tz).date():
        return _plain(format_time(moment, "short", tzinfo=tz, locale=locale))
    return _when(moment, zone, locale)


@lru_cache(maxsize=1024)
def _services(services: tuple[str, ...], language: str) -> str:
    if not services:
        return ANY_SERVICE[language]
    names = SERVICE_NAMES[language]
    return _plain(format_list([names.get(s, s) for s in services], locale=language))


def given_name(full_name: str, language: str) -> str:
    """The word of `full_name` a notice in `language` greets the customer by."""
    words = full_name.split()
    if not words:
        return ""
    return words[GIVEN_NAME_POSITION.get(language, 0)]


def _fits(sms: str, segments: int) -> bool:
    return sms_length(sms).segments <= segments


def _cut(sms: str, segments: int) -> str:
    """Shorten `sms` at a word (at a character if one word is too long) so it fits."""
    words = sms.split()
    while len(words) > 1:
        words.pop()
        candidate = " ".join(words) + "…"
        if _fits(candidate, segments):
            return candidate
    candidate = sms
    while candidate and not _fits(candidate + "…", segments):
        candidate = candidate[:-1]
    return candidate + "…"


class Renderer:
    """Turn `NoticeFacts` into a subject, an SMS body, a text and an HTML e-mail."""

    def __init__(self, templates: Path = TEMPLATES) -> None:
        self._text = Environment(
            loader=FileSystemLoader(templates),
            autoescape=False,  # noqa: S701 - plain text and SMS; HTML uses the other environment
            undefined=StrictUndefined,
            keep_trailing_newline=False,
        )
        self._html = Environment(
            loader=FileSystemLoader(templates),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
        )
        self._templates = templates
        self._cache: dict[tuple[str, str], Template] = {}

    def _template(self, stage: str, language: str) -> Template:
        key = (stage, language)
        if key not in self._cache:
            for candidate in (language, DEFAULT_LANGUAGE):
                try:
                    self._cache[key] = self._text.get_template(f"{candidate}/{stage}.j2")
                    break
                except TemplateNotFound:
                    continue
            else:
                raise TemplateMissingError(f"no template for stage {stage!r}")
        return self._cache[key]

    def languages(self, stage: str) -> list[str]:
        """The languages with a template for `stage`."""
        return sorted(p.parent.name for p in self._templates.glob(f"*/{stage}.j2"))

    def render(self, facts: NoticeFacts, *, max_sms_segments: int | None = None) -> Rendered:
        """Render every part; an SMS over `max_sms_segments` is shortened by priority (see the
        module's docstring): fixed phrases first, then the link, the NOC's words last."""
        rendered = self._render(facts)
        if max_sms_segments is None or _fits(rendered.sms, max_sms_segments):
            return rendered
        return replace(rendered, sms=self._short_sms(facts, max_sms_segments))

    def sms_forms(self, facts: NoticeFacts) -> tuple[str, str, str]:
        """The SMS in the order they are tried: full, short, short without the link."""
        return (
            self._render(facts).sms,
            self._sms_short(facts),
            self._sms_short(replace(facts, status_url="")),
        )

    def _short_sms(self, facts: NoticeFacts, segments: int) -> str:
        for sms in self.sms_forms(facts)[1:]:
            if _fits(sms, segments):
                return sms
        unlinked = replace(facts, status_url="")
        if facts.stage == "update":
            # The NOC's words: their message, or else the cause an automatic update names.
            by_message = bool((facts.message or "").strip())

            def saying(words: str | None) -> NoticeFacts:
                if by_message:
                    return replace(unlinked, message=words)
                return replace(unlinked, cause=words)

            words = ((facts.message if by_message else facts.cause) or "").split()
            while len(words) > 1:  # cut at a word, longest first, until the rest fits
                words.pop()
                sms = self._sms_short(saying(" ".join(words) + "…"))
                if _fits(sms, segments):
                    return sms
            unlinked = replace(unlinked, message=None, cause=None)  # no words left: the promise
            sms = self._sms_short(unlinked)
            if _fits(sms, segments):
                return sms
        return _cut(self._sms_short(unlinked), segments)

    def _sms_short(self, facts: NoticeFacts) -> str:
        template, context = self._context(facts)
        return " ".join("".join(template.blocks["sms_short"](context)).split())

    def _context(self, facts: NoticeFacts) -> tuple[Template, Context]:
        template = self._template(facts.stage, facts.language)
        language = facts.language if facts.language in SERVICE_NAMES else DEFAULT_LANGUAGE
        own = facts.locale if facts.language == language else None  # not for a fallback text
        locale = notice_locale(language, facts.timezone, own)

        def when(moment: datetime | None) -> str:
            return "" if moment is None else _when(moment, facts.timezone, locale)

        def clock(moment: datetime | None) -> str:
            if moment is None:
                return ""
            return _clock(moment, facts.started_at, facts.timezone, locale)

        services = _services(facts.services, language)
        context = template.new_context(
            {
                # The templates call it first_name; it is the given name, wherever it stands.
                "first_name": given_name(facts.customer_name, language),
                "services": services,
                "started": when(facts.started_at),
                "resolved": when(facts.resolved_at),
                "next_update": clock(facts.next_update_due),
                "eta": clock(facts.eta),
                "status_url": facts.status_url,
                "message": facts.message or "",
                "cause": facts.cause or "",
                "window_start": when(facts.window_start),
                "window_end": when(facts.window_end),
                "area": facts.area,
            }
        )
        return template, context

    def _render(self, facts: NoticeFacts) -> Rendered:
        template, context = self._context(facts)
        language = facts.language if facts.language in SERVICE_NAMES else DEFAULT_LANGUAGE

        def block(name: str) -> str:
            return "".join(template.blocks[name](context)).strip()

        text = block("text")
        subject = " ".join(block("subject").split())
        html = self._html.get_template("email.html.j2").render(
            language=language,
            subject=subject,
            paragraphs=[" ".join(p.split()) for p in text.split("\n\n") if p.strip()],
            status_url=facts.status_url,
            link_label=block("link_label"),
            unsubscribe_url=facts.unsubscribe_url,
        )
        return Rendered(subject=subject, sms=" ".join(block("sms").split()), text=text, html=html)
