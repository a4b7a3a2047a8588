"""Notices in every language: each stage renders, times in the customer's zone, HTML escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_time

from app.inventory.schemas import Language
from notifiers.render import NoticeFacts, Renderer
from notifiers.segments import sms_length

LANGUAGES = [language.value for language in Language]
STAGES = (
    "detected",
    "update",
    "resolved",
    "overnight",
    "survey",
    "maintenance_scheduled",
    "maintenance_started",
    "maintenance_completed",
)
LINKED_STAGES = tuple(stage for stage in STAGES if stage != "survey")  # the survey asks a reply
OPENED = datetime(2026, 11, 24, 7, 5, tzinfo=UTC)


def facts(**changes: object) -> NoticeFacts:
    base: dict[str, object] = {
        "stage": "detected",
        "language": "en",
        "timezone": "Europe/Berlin",
        "customer_name": "Anna Weber",
        "services": ("internet", "tv"),
        "started_at": OPENED,
        "resolved_at": OPENED + timedelta(hours=1),
        "next_update_due": OPENED + timedelta(minutes=30),
        "eta": None,
        "status_url": "https://status.example.net/o/abc",
        "window_start": OPENED + timedelta(hours=15),
        "window_end": OPENED + timedelta(hours=19),
    }
    base.update(changes)
    return NoticeFacts(**base)  # type: ignore[arg-type]


def test_every_language_a_customer_may_choose_has_every_stage() -> None:
    renderer = Renderer()
    for stage in STAGES:
        assert set(renderer.languages(stage)) == {language.value for language in Language}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_renders_in_each_language_with_name_link_and_no_blanks(
    language: str, stage: str
) -> None:
    rendered = Renderer().render(facts(stage=stage, language=language))

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
    assert "by 11/25/26" in rendered.sms


def test_the_html_mail_escapes_what_it_is_given() -> None:
    rendered = Renderer().render(facts(customer_name="<script>alert(1)</script> Mallory"))

    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html


def test_an_unknown_language_falls_back_to_english() -> None:
    assert Renderer().render(facts(language="xx")).sms.startswith("Hi Anna")
