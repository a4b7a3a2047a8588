"""The words of an update in a customer's language: theirs, the named fallback, or none."""

from __future__ import annotations

from app.outages.update_texts import UPDATE_TEXTS, UpdateTemplate, update_text

MESSAGES = {"en": "The cable is being replaced.", "de": "Das Kabel wird ersetzt."}


def test_a_language_left_out_gets_no_words_rather_than_another_languages() -> None:
    assert update_text(MESSAGES, None, "de") == "Das Kabel wird ersetzt."
    assert update_text(MESSAGES, None, "hi") == ""


def test_a_named_fallback_language_is_used_for_the_languages_left_out() -> None:
    assert update_text(MESSAGES, None, "hi", fallback="de") == "Das Kabel wird ersetzt."
    assert update_text(MESSAGES, None, "en", fallback="de") == "The cable is being replaced."


def test_a_template_speaks_every_language() -> None:
    texts = UPDATE_TEXTS[UpdateTemplate.REPAIR_IN_PROGRESS]
    for language in ("en", "de", "es", "vi", "hi"):
        assert update_text({}, "repair_in_progress", language) == texts[language]
