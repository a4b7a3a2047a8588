"""Place names: the reader's language, else the default language, else the plain name, else
the id made readable — never the raw id."""

from __future__ import annotations

from dataclasses import replace

from app.domain.places import humanise, place_name
from app.domain.services import service_name

NAMES = {"en": "Riverside", "de": "Flussufer"}


def test_a_place_is_named_in_the_readers_language_then_in_the_default_one() -> None:
    assert place_name("node-a", "de", NAMES) == "Flussufer"
    assert place_name("node-a", "vi", NAMES) == "Riverside"
    assert place_name("node-a", "vi", {"de": "Flussufer"}, name="Riverside Nord") == (
        "Riverside Nord"
    )


def test_a_place_without_a_name_is_its_id_made_readable() -> None:
    assert place_name("node-a", "en") == "Node A"
    assert place_name("hub_north.2", "de", {"de": "  "}) == "Hub North 2"
    assert humanise("node-17") == "Node 17"


def test_services_are_named_in_the_readers_words() -> None:
    assert service_name("voice", "de") == "Telefon"
    assert service_name("voice", "fr") == "phone line"  # a language we do not speak: English
    assert service_name("iptv-plus", "en") == "iptv-plus"


def test_the_e_mail_names_the_area_in_every_language_and_the_sms_does_not_grow() -> None:
    from datetime import UTC, datetime, timedelta

    from notifiers.render import NoticeFacts, Renderer

    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    renderer = Renderer()
    for language in ("en", "de", "es", "vi", "hi"):
        for stage in ("detected", "maintenance_scheduled"):
            base = NoticeFacts(
                stage=stage,
                language=language,
                timezone="UTC",
                customer_name="Anna",
                services=("internet",),
                started_at=start,
                resolved_at=None,
                next_update_due=start + timedelta(minutes=30),
                eta=None,
                status_url="https://status.example.net/o/abc",
                window_start=start,
                window_end=start + timedelta(hours=2),
            )
            plain = renderer.render(base)
            named = renderer.render(replace(base, area="Flussufer"))
            assert "Flussufer" in named.text and "Flussufer" in named.html
            assert "\n\n\n" not in named.text
            assert named.sms == plain.sms
