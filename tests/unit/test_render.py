"""Notices in every language: each stage renders, times in the customer's zone, HTML escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_time

from app.inventory.schemas import Language
from app.locales import notice_locale
from notifiers.render import NoticeFacts, Renderer
from notifiers.segments import sms_length
from tests.factories import NOTICE_STAGES as STAGES
from tests.factories import notice_facts

LANGUAGES = [language.value for language in Language]
LINKED_STAGES = tuple(stage for stage in STAGES if stage != "survey")  # the survey asks a reply
OPENED = datetime(2026, 11, 24, 7, 5, tzinfo=UTC)


def facts(**changes: object) -> NoticeFacts:
    return notice_facts(OPENED, **changes)


def test_every_language_a_customer_may_choose_has_every_stage() -> None:
    renderer = Renderer()
    for stage in STAGES:
        assert set(renderer.languages(stage)) == {language.value for language in Language}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_renders_in_each_language_with_name_link_and_no_blanks(
    language: str, stage: str
) -> None:
    name = "Trần Thị Anna" if language == "vi" else "Anna Weber"  # Vietnamese: family first
    rendered = Renderer().render(facts(stage=stage, language=language, customer_name=name))

    for part in (rendered.subject, rendered.sms, rendered.text):
        assert part and "{{" not in part and "{%" not in part and "  " not in part
    assert "\n\n\n" not in rendered.text
    assert "Anna" in rendered.sms and "Anna" in rendered.text
    if stage in LINKED_STAGES:
        assert "https://status.example.net/o/abc" in rendered.sms
    assert "\u202f" not in rendered.sms and "\u00a0" not in rendered.sms
    assert rendered.html.startswith("<!doctype html>")


def test_times_are_shown_in_the_customers_zone_and_locale() -> None:
    german = Renderer().render(facts(language="de"))
    english = Renderer().render(facts(language="en", timezone="America/New_York"))

    assert "24.11.26, 08:05" in german.sms  # 07:05 UTC is 08:05 in Berlin
    assert "bis 08:35" in german.sms
    assert "11/24/26, 2:05 AM" in english.sms  # and 02:05 in New York
    assert "Internet und TV" in german.sms and "internet and TV" in english.sms


def test_a_promised_update_on_another_day_names_the_day() -> None:
    rendered = Renderer().render(facts(next_update_due=OPENED + timedelta(days=1)))
    assert "by 25/11/2026" in rendered.sms  # English in Europe/Berlin: en_DE, day first


def test_the_html_mail_escapes_what_it_is_given() -> None:
    rendered = Renderer().render(facts(customer_name="<script>alert(1)</script> Mallory"))

    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html


# Each language's greeting and a name as written in it; the given name is the greeted one.
GREETINGS = {
    "en": ("Hi Priya,", "Hello Priya,", "Priya Sharma"),
    "de": ("Hallo Jürgen,", "Hallo Jürgen,", "Jürgen Müller"),
    "es": ("Hola María,", "Hola María:", "María García López"),
    "vi": ("Chào An,", "Chào An,", "Nguyễn Văn An"),
    "hi": ("नमस्ते Priya,", "नमस्ते Priya,", "Priya Sharma"),
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("stage", STAGES)
def test_the_greeting_uses_the_given_name_where_the_language_writes_it(
    language: str, stage: str
) -> None:
    sms_greeting, text_greeting, name = GREETINGS[language]
    rendered = Renderer().render(facts(stage=stage, language=language, customer_name=name))

    assert rendered.sms.startswith(sms_greeting), rendered.sms
    assert rendered.text.startswith(text_greeting), rendered.text


def test_a_one_word_name_is_greeted_as_it_is_in_every_language() -> None:
    for language in LANGUAGES:
        assert "Lan," in Renderer().render(facts(language=language, customer_name="Lan")).sms


def test_an_unknown_language_falls_back_to_english() -> None:
    assert Renderer().render(facts(language="xx")).sms.startswith("Hi Anna")


# Realistic values for measuring an SMS: a first name of 10 letters, "internet and TV" in the
# customer's language, two-digit hours (the longest a 12-hour clock prints), a status URL
# like the real ones and an update of 80 characters from the NOC.
REALISTIC_URL = "https://status.example.net/o/AbCdEfGhIjKlMnOpQrStUvWx"
REALISTIC_START = datetime(2026, 11, 24, 9, 5, tzinfo=UTC)  # 10:05 in Berlin
NOC_MESSAGE = {
    "en": "A fibre cable was damaged by building work. Our technicians are now repairing it",
    "de": "Ein Glasfaserkabel wurde bei Bauarbeiten beschädigt. Unsere Technik repariert es",
    "es": "Unas obras han dañado un cable de fibra. Nuestros equipos lo reparan ahora mismo",
    "vi": "Cáp quang bị hư hỏng do thi công. Kỹ thuật viên của chúng tôi đang sửa chữa ngay",
    "hi": "निर्माण कार्य में एक फाइबर केबल टूट गई है। हमारे तकनीशियन इसकी मरम्मत कर रहे हैं",
}
CAUSE = {
    "en": "a damaged fibre cable",
    "de": "ein beschädigtes Glasfaserkabel",
    "es": "un cable de fibra dañado",
    "vi": "cáp quang bị hư hỏng",
    "hi": "फाइबर केबल में खराबी",
}
# How many segments an SMS may take: 2 in the GSM-7 languages, 3 in the UCS-2 ones.
GSM7_LANGUAGES = {"en", "de", "es"}
# The automatic line of an update without the NOC's words: (in the SMS, in the e-mail text).
STILL_WORKING = {
    "en": ("we are still working on it", "are still working on it"),
    "de": ("Wir arbeiten weiter daran", "arbeitet weiter daran"),
    "es": ("seguimos trabajando", "sigue trabajando"),
    "vi": ("vẫn đang được khắc phục", "vẫn đang xử lý"),
    "hi": ("काम जारी है", "अब भी इस पर काम कर रहे हैं"),
}


def realistic(stage: str, language: str, **changes: object) -> NoticeFacts:
    base: dict[str, object] = {
        "stage": stage,
        "language": language,
        # Vietnamese names are written family name first; the greeting takes the given name.
        "customer_name": "Nguyễn Maximilian" if language == "vi" else "Maximilian Schmidt",
        "started_at": REALISTIC_START,
        "resolved_at": REALISTIC_START + timedelta(hours=1),
        "next_update_due": REALISTIC_START + timedelta(minutes=30),
        "status_url": REALISTIC_URL,
        "window_start": REALISTIC_START + timedelta(hours=12, minutes=25),  # 22:30
        "window_end": REALISTIC_START + timedelta(hours=18, minutes=25),  # 04:30 the next day
    }
    base.update(changes)
    return facts(**base)


def next_update_shown(language: str) -> str:
    moment = REALISTIC_START + timedelta(minutes=30)
    locale = notice_locale(language, "Europe/Berlin")  # en_DE, de_DE; es, vi, hi alone
    shown = format_time(moment, "short", tzinfo=ZoneInfo("Europe/Berlin"), locale=locale)
    return shown.replace("\u202f", " ").replace("\u00a0", " ")


def variants(stage: str, language: str) -> list[NoticeFacts]:
    """The realistic notices of a stage, the longest ones each template can produce."""
    eta = REALISTIC_START + timedelta(hours=3)
    if stage == "update":
        return [
            realistic(stage, language, message=NOC_MESSAGE[language]),
            realistic(stage, language, message=NOC_MESSAGE[language], eta=eta),
            realistic(stage, language, cause=CAUSE[language], eta=eta),
        ]
    if stage == "maintenance_scheduled":
        reason = NOC_MESSAGE[language][:60]  # the longest reason an SMS names
        return [realistic(stage, language), realistic(stage, language, message=reason)]
    return [realistic(stage, language)]


def test_the_realistic_messages_are_80_characters() -> None:
    assert {len(message) for message in NOC_MESSAGE.values()} == {80}
    assert len(REALISTIC_URL) >= 48


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("stage", STAGES)
def test_every_sms_stays_within_its_segment_limit(language: str, stage: str) -> None:
    for notice in variants(stage, language):
        rendered = Renderer().render(notice)
        length = sms_length(rendered.sms)

        if language in GSM7_LANGUAGES:
            # Spanish too: its SMS say "TV" for "televisión" and avoid á, í, ó, ú.
            assert length.encoding == "GSM-7", rendered.sms
            assert length.segments <= 2, (length, rendered.sms)
        else:
            assert length.segments <= 3, (length, rendered.sms)
        assert "Maximilian" in rendered.sms
        if stage in LINKED_STAGES:
            assert REALISTIC_URL in rendered.sms
        for part in (rendered.subject, rendered.sms, rendered.text):
            assert "{{" not in part and "  " not in part
        assert "\n\n\n" not in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_update_always_promises_the_next_one(language: str) -> None:
    for notice in variants("update", language):
        rendered = Renderer().render(notice)
        assert next_update_shown(language) in rendered.sms
        assert next_update_shown(language) in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_update_shows_the_nocs_words_or_else_that_we_are_still_working(language: str) -> None:
    renderer = Renderer()
    told = renderer.render(realistic("update", language, message=NOC_MESSAGE[language]))
    automatic = renderer.render(realistic("update", language, message="  "))
    sms_line, text_line = STILL_WORKING[language]

    for rendered in (told, automatic):
        assert "Maximilian" in rendered.sms and "Maximilian" in rendered.text
        assert next_update_shown(language) in rendered.sms
    assert NOC_MESSAGE[language] in told.sms and NOC_MESSAGE[language] in told.text
    assert sms_line not in told.sms and text_line not in told.text
    assert sms_line in automatic.sms and text_line in automatic.text
    assert NOC_MESSAGE[language] not in automatic.sms + automatic.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_update_tells_the_cause_and_the_expected_fix(language: str) -> None:
    eta = REALISTIC_START + timedelta(hours=3)
    locale = notice_locale(language, "Europe/Berlin")
    shown_eta = format_time(eta, "short", tzinfo=ZoneInfo("Europe/Berlin"), locale=locale)
    shown_eta = shown_eta.replace("\u202f", " ")
    rendered = Renderer().render(realistic("update", language, cause=CAUSE[language], eta=eta))

    assert CAUSE[language] in rendered.text and shown_eta in rendered.text
    assert shown_eta in rendered.sms
    if language in GSM7_LANGUAGES:  # UCS-2 SMS leave the cause to the e-mail
        assert CAUSE[language] in rendered.sms


def test_an_nocs_message_ends_with_a_full_stop_in_the_sms() -> None:
    english = Renderer().render(realistic("update", "en", message="Fibre cut"))
    hindi = Renderer().render(realistic("update", "hi", message="फाइबर केबल कट गई है"))
    assert "Fibre cut. " in english.sms
    assert "फाइबर केबल कट गई है। " in hindi.sms


def test_spanish_sms_say_tv_but_the_mail_says_television() -> None:
    rendered = Renderer().render(realistic("detected", "es"))
    assert "internet y TV" in rendered.sms and "internet y televisión" in rendered.text


@pytest.mark.parametrize("stage", ["overnight", "maintenance_scheduled", "maintenance_started"])
def test_overnight_and_maintenance_name_their_times(stage: str) -> None:
    rendered = Renderer().render(realistic(stage, "de"))
    if stage == "overnight":
        assert "zwischen 24.11.26, 10:05 und 24.11.26, 11:05" in rendered.sms
    else:
        assert "25.11.26, 04:30" in rendered.sms
        assert "25.11.26, 04:30" in rendered.text


def test_a_maintenance_sms_names_a_short_reason_and_leaves_a_long_one_to_the_mail() -> None:
    renderer = Renderer()
    short = renderer.render(realistic("maintenance_scheduled", "en", message="Network upgrade."))
    long_reason = "We are replacing the optical equipment in the exchange that serves your street"
    long = renderer.render(realistic("maintenance_scheduled", "en", message=long_reason))

    assert "Reason: Network upgrade." in short.sms and "Network upgrade" in short.text
    assert long_reason not in long.sms and long_reason in long.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_survey_asks_for_a_number_from_1_to_5(language: str) -> None:
    rendered = Renderer().render(realistic("survey", language))
    assert "1 (" in rendered.sms and "5 (" in rendered.sms
    assert "1 (" in rendered.text and "5 (" in rendered.text


@pytest.mark.parametrize("stage", STAGES)
def test_a_spanish_sms_forced_into_ucs2_still_fits_three_segments(stage: str) -> None:
    # "Concepción" and "móvil" are not GSM-7: the whole SMS goes as UCS-2. Only the plain
    # notices are measured; the NOC's words, ETA and cause fit only while GSM-7.
    notice = realistic(
        stage, "es", customer_name="Concepción Ruiz", services=("internet", "mobile")
    )
    rendered = Renderer().render(notice)
    length = sms_length(rendered.sms)

    assert length.encoding == "UCS-2"
    assert length.segments <= 3, (length, rendered.sms)


def test_an_sms_over_the_segment_limit_keeps_the_nocs_words_and_the_promise_over_the_link() -> None:
    long_message = "Bauarbeiten an der Hauptstraße haben ein Glasfaserkabel beschädigt. " * 4
    facts_ = facts(stage="update", language="de", message=long_message.strip())
    full = Renderer().render(facts_)
    limited = Renderer().render(facts_, max_sms_segments=2)
    tiny = Renderer().render(facts_, max_sms_segments=1)

    assert sms_length(full.sms).segments > 2
    assert sms_length(limited.sms).segments <= 2
    # Too long to keep whole: the short form without the link, the NOC's words cut at a word,
    # the promised time kept (before, the words were dropped and the promise cut instead).
    assert "Glasfaserkabel" in limited.sms and "… Nächstes Update bis 08:35." in limited.sms
    assert "https://" not in limited.sms
    assert long_message.strip() in limited.text  # the e-mail still says it all
    assert sms_length(tiny.sms).segments == 1
    assert tiny.sms.endswith("Nächstes Update bis 08:35.")


@pytest.mark.parametrize(
    ("language", "timezone", "locale", "shown"),
    [
        # 14:41 UTC on 12 March 2026, in the customer's zone and the format of their place.
        ("en", "Europe/London", None, "12/03/2026, 14:41"),  # was "3/12/26, 2:41 PM"
        ("en", "America/New_York", None, "3/12/26, 10:41 AM"),
        ("de", "Europe/Vienna", None, "12.03.26, 15:41"),
        ("es", "America/Mexico_City", None, "12/03/26, 8:41 a.m."),
        ("en", "Europe/Berlin", "en-GB", "12/03/2026, 15:41"),  # the inventory's locale wins
        ("en", "UTC", None, "3/12/26, 2:41 PM"),  # no territory: the language alone
    ],
)
def test_dates_follow_the_customers_place_not_only_their_language(
    language: str, timezone: str, locale: str | None, shown: str
) -> None:
    moment = datetime(2026, 3, 12, 14, 41, tzinfo=UTC)
    rendered = Renderer().render(
        facts(language=language, timezone=timezone, locale=locale, started_at=moment)
    )
    assert shown in rendered.sms and shown in rendered.text, rendered.sms
