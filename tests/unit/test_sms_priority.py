"""SMS length by priority: over its segment limit an SMS first loses its fixed phrases, then the
status link, and only last the end of the NOC's words; the promised next update stays."""

from __future__ import annotations

import string
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_time
from hypothesis import given, settings
from hypothesis import strategies as st

from app.inventory.schemas import Language
from notifiers.render import NoticeFacts, Renderer
from notifiers.segments import sms_length
from tests.factories import NOTICE_STAGES as STAGES
from tests.factories import notice_facts

START = datetime(2026, 12, 3, 16, 11, tzinfo=UTC)
URL = "https://status.example.net/o/AbCdEfGhIjKlMnOpQrStUvWx"
RENDERER = Renderer()

SCRIPTS = {
    "latin": string.ascii_letters + string.digits + "  .,",
    "accented latin": string.ascii_lowercase + "áéíóúñüçàèâêîôûäößÁÉÓÚ  .,",
    "vietnamese": string.ascii_lowercase + "ạảãàáâậầấẩẫăắằặẳẵêềếệểễôồốộổỗơờớợởỡưừứựửữđĐ  .,",
    "devanagari": "".join(chr(c) for c in range(0x0905, 0x093A))
    + "".join(chr(c) for c in range(0x093E, 0x094E))
    + "  ।",
}
NAMES = ("Maximilian Schmidt", "Ramón García", "Nguyễn Văn An", "राहुल शर्मा", "")


def promise(language: str, timezone: str = "UTC") -> str:
    """The promised next-update time as the notices show it."""
    shown = format_time(
        START + timedelta(minutes=30), "short", tzinfo=ZoneInfo(timezone), locale=language
    )
    return shown.replace("\u202f", " ").replace("\u00a0", " ")


def notice(**changes: object) -> NoticeFacts:
    base: dict[str, object] = {
        "stage": "update",
        "language": "es",
        "timezone": "UTC",
        "customer_name": "Maximilian Schmidt",
        "status_url": URL,
        "window_start": START + timedelta(hours=5),
        "window_end": START + timedelta(hours=9),
    }
    return notice_facts(START, **{**base, **changes})


@st.composite
def notices(draw: st.DrawFn) -> tuple[NoticeFacts, int]:
    script = draw(st.sampled_from(sorted(SCRIPTS)))
    message = draw(st.text(alphabet=SCRIPTS[script], max_size=240))  # the API's longest
    facts = notice(
        stage=draw(st.sampled_from(STAGES)),
        language=draw(st.sampled_from([language.value for language in Language])),
        customer_name=draw(st.sampled_from(NAMES)),
        services=draw(st.sampled_from([("internet",), ("internet", "tv"), ("mobile", "voice")])),
        message=message,
        cause=draw(st.one_of(st.none(), st.text(alphabet=SCRIPTS[script], max_size=240))),
        eta=draw(st.one_of(st.none(), st.just(START + timedelta(hours=2)))),
    )
    return facts, draw(st.integers(min_value=1, max_value=4))


def fits(sms: str, segments: int) -> bool:
    return sms_length(sms).segments <= segments


@settings(max_examples=1500, deadline=None)
@given(notices())
def test_every_sms_fits_and_keeps_the_nocs_words_and_promise_whenever_they_can_fit(
    case: tuple[NoticeFacts, int],
) -> None:
    facts, segments = case
    sms = RENDERER.render(facts, max_sms_segments=segments).sms
    full, short, unlinked = RENDERER.sms_forms(facts)
    note = " ".join((facts.message or "").split())
    promised = promise(facts.language)

    assert 0 < sms_length(sms).segments <= segments, sms
    # The order: the full SMS, else the short one with the link, else the short one without.
    if fits(full, segments):
        assert sms == full
    elif fits(short, segments):
        assert sms == short and (URL in sms or URL not in full)
    elif fits(unlinked, segments):
        assert sms == unlinked and URL not in sms
    if facts.stage == "update":
        # The shortest SMS that still says everything: the NOC's words and the promise.
        assert promised in unlinked and (not note or note in unlinked), unlinked
        if fits(unlinked, segments):
            assert promised in sms and note in sms, sms
        elif fits(RENDERER.sms_forms(replace(facts, message=None, cause=None))[2], segments):
            assert promised in sms and URL not in sms, (sms, facts)  # the NOC's words cut


@pytest.mark.parametrize(
    ("name", "words"),
    [
        # "Ramón" is not GSM-7: the full SMS goes as UCS-2 (67 units a segment) and needs 4.
        ("Ramón García", "Unas obras han dañado un cable de fibra. Nuestros equipos lo reparan"),
        # The NOC's own accents keep even the short form in UCS-2.
        ("Ramón García", "Unas obras han dañado la fibra óptica. Los técnicos la están reparando"),
    ],
)
def test_a_spanish_update_forced_into_ucs2_keeps_the_nocs_words_and_the_promise(
    name: str, words: str
) -> None:
    # Before, the NOC's words went and the promise was cut:
    # "…Prevemos resolverlo antes de 17:41. No hace falta llamar. Nuevo… https://…".
    facts = notice(
        language="es",
        timezone="Europe/Madrid",
        customer_name=name,
        message=words,
        eta=START + timedelta(minutes=30),
    )
    full = RENDERER.render(facts).sms
    sms = RENDERER.render(facts, max_sms_segments=3).sms

    assert sms_length(full).encoding == "UCS-2" and sms_length(full).segments > 3
    assert sms_length(sms).segments <= 3, (sms_length(sms), sms)
    assert words + "." in sms
    assert "antes de 17:41" in sms and sms.count("17:41") == 2  # the expected fix and the promise
    assert "Nuevo aviso antes de 17:41." in sms
